// Learned idle limit of the network path (NAT / middlebox), per network. Pure policy: the client
// reports what happened to held connections, and asks for the keep-alive cap at each connect.
//
// Why (DESIGN.md section 3, "NAT and middleboxes"): cellular carrier NATs drop idle TCP bindings after
// about 150-300 s on some networks, AWS NLB TLS listeners after 350 s; RFC 5382 asks for 2 h 4 min but
// carriers ignore it. A binding that is dropped silently leaves a half-open connection: our next ping
// gets no answer and the watchdog fires. Like WeChat's Mars smart heartbeat, the limit is learned
// with a margin and remembered per network; unlike Mars we do not walk upward in steps, we only lower
// to a measured limit and retry the longer interval at most once a day.
//
// Rules, exactly (idle = seconds since the last packet in EITHER direction, keepalive.pathIdleSec,
// measured when the PINGREQ is sent, before it updates lastTx):
// - survived(net, idle): a ping sent after `idle` was answered. The shortest such idle is kept as
//   evidence that the network holds short-idle connections at all.
// - died(net, idle): the watchdog fired on a ping sent after `idle`. It is evidence of an idle limit
//   only when a SHORTER idle survived on this network (else the network is just failing, and learning
//   would ratchet the cap down to nothing). Deaths "at about the same interval" (within marginSec of
//   the candidate) are counted; a shorter death restarts the count at the shorter idle; a longer one
//   is consistent but not counted. A survival at >= the candidate idle resets the count, so random
//   losses separated by good pings never add up: only consecutive deaths do.
// - deathsToLearn such deaths -> cap = max(minSec, shortest dying idle - marginSec). A cap only goes
//   down (a new one must be lower than the current one).
// - A survival at >= the cap's dying interval clears the cap (the path allows it again).
// - Probe: at most once per probeEveryMs (timed from when the cap was learned or last probed), capFor()
//   lifts the cap: it returns undefined and the connection uses its mode interval. The probe ends at the
//   next death on that network (the cap stays, next probe probeEveryMs later) or at a survival at the
//   cap's dying interval (the cap is cleared). A death during the probe at the long interval is a
//   confirmation, not new evidence.
// - nowMs must be a timeline that survives deep sleep for the daily probe to be daily (wall-clock ms
//   after SNTP, or the boot timeline plus persisted sleep time). If nowMs is earlier than a stored time
//   (the clock restarted), the stored time is taken as now: the probe waits at most one more period.
// - Bounded: at most maxNetworks records (default 8), least recently used dropped first; network ids
//   are cut to 32 characters (an SSID's length). Persisted as compact JSON (toJSON/restore).
//
// Espruino-safe: no Map (records in an array, most recently used first), no class fields.

export interface PathLimitConfig {
  /** Cap = dying idle - margin (30). Also the tolerance for "about the same interval". */
  marginSec: number;
  /** Never cap below this (30). */
  minSec: number;
  /** Retry the longer interval at most this often (86400000: daily). */
  probeEveryMs: number;
  /** Deaths at about the same interval needed to learn a cap (2). */
  deathsToLearn: number;
  /** Most networks remembered (default 8). */
  maxNetworks?: number;
}

export function pathLimitDefaults(): PathLimitConfig {
  return { marginSec: 30, minSec: 30, probeEveryMs: 86400000, deathsToLearn: 2 };
}

/** One network's record. Serialized as [id, s, x, d, c, cx, p, q]. */
export interface PathRecord {
  id: string;
  /** Shortest idle that survived (0: none). */
  s: number;
  /** Candidate dying idle (0: none) and how many deaths at about that idle (d). */
  x: number;
  d: number;
  /** Cap in seconds (0: none) and the dying idle it was learned from. */
  c: number;
  cx: number;
  /** When the cap was learned or last probed (ms). */
  p: number;
  /** A probe is running. */
  q: boolean;
}

const ID_MAX = 32;

function num(v: unknown): number {
  return typeof v === 'number' && v >= 0 && v < 1e16 ? v : 0;
}

/** maxNetworks, default 8. */
function maxOf(c: PathLimitConfig): number {
  const m = c.maxNetworks as number;
  return m >= 1 ? m : 8;
}

export class PathLimits {
  cfg: PathLimitConfig;
  /** Most recently used first. */
  recs: PathRecord[];

  constructor(cfg: PathLimitConfig) {
    this.cfg = cfg;
    this.recs = [];
  }

  /** The record for a network, moved to the front; created when `create` (dropping the oldest beyond maxNetworks). */
  rec(networkId: string, create: boolean, nowMs: number): PathRecord | undefined {
    const id = String(networkId).substring(0, ID_MAX);
    const a = this.recs;
    const i = a.findIndex((x) => x.id === id);
    let r = i >= 0 ? a.splice(i, 1)[0] : undefined;
    if (r === undefined) {
      if (!create) return undefined;
      r = { id: id, s: 0, x: 0, d: 0, c: 0, cx: 0, p: nowMs, q: false };
    }
    a.unshift(r);
    const max = maxOf(this.cfg);
    while (a.length > max) a.pop();
    if (nowMs < r.p) r.p = nowMs;
    return r;
  }

  /** A held connection died (watchdog fired) on a ping sent after idleSec of idle on networkId. */
  died(networkId: string, idleSec: number, nowMs: number): void {
    const r = this.rec(networkId, true, nowMs) as PathRecord;
    const c = this.cfg;
    const tol = c.marginSec;
    if (r.q) {
      r.q = false;
      r.p = nowMs;
      if (idleSec >= r.cx - tol) return;
    }
    if (!(r.s > 0 && r.s < idleSec)) return;
    if (r.d > 0 && idleSec >= r.x - tol && idleSec <= r.x + tol) {
      r.d++;
      if (idleSec < r.x) r.x = idleSec;
    } else if (r.d === 0 || idleSec < r.x - tol) {
      r.x = idleSec;
      r.d = 1;
    } else {
      return;
    }
    if (r.d >= c.deathsToLearn) {
      const cap = Math.max(c.minSec, r.x - c.marginSec);
      if (r.c === 0 || cap < r.c) {
        r.c = cap;
        r.cx = r.x;
        r.p = nowMs;
        r.q = false;
      }
      r.d = 0;
      r.x = 0;
    }
  }

  /** A ping sent after idleSec of idle was answered on networkId. */
  survived(networkId: string, idleSec: number, nowMs: number): void {
    const r = this.rec(networkId, true, nowMs) as PathRecord;
    if (idleSec > 0 && (r.s === 0 || idleSec < r.s)) r.s = idleSec;
    if (r.d > 0 && idleSec >= r.x) {
      r.d = 0;
      r.x = 0;
    }
    if (r.c > 0 && idleSec >= r.cx) {
      r.c = 0;
      r.cx = 0;
      r.q = false;
    }
  }

  /**
   * The keep-alive cap for this network (seconds), or undefined when nothing is learned or the cap is
   * lifted for a probe (starting one when probeEveryMs has passed since the last).
   */
  capFor(networkId: string, nowMs: number): number | undefined {
    const r = this.rec(networkId, false, nowMs);
    if (r === undefined || r.c === 0 || r.q) return undefined;
    if (nowMs - r.p >= this.cfg.probeEveryMs) {
      r.q = true;
      r.p = nowMs;
      return undefined;
    }
    return r.c;
  }

  toJSON(): string {
    return JSON.stringify(this.recs.map((r) => [r.id, r.s, r.x, r.d, r.c, r.cx, r.p, r.q ? 1 : 0]));
  }

  /** Restore what toJSON() saved; unreadable input leaves nothing learned, bad rows are skipped. */
  restore(s: string): void {
    this.recs = [];
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      return;
    }
    if (!Array.isArray(v)) return;
    const max = maxOf(this.cfg);
    for (let i = 0; i < v.length && this.recs.length < max; i++) {
      const e = v[i];
      if (!Array.isArray(e) || typeof e[0] !== 'string') continue;
      this.recs.push({
        id: e[0].substring(0, ID_MAX),
        s: num(e[1]),
        x: num(e[2]),
        d: num(e[3]),
        c: num(e[4]),
        cx: num(e[5]),
        p: num(e[6]),
        q: e[7] === 1,
      });
    }
  }
}
