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
//   are cut to 32 characters (an SSID's length). Persisted as compact JSON: each record is kept as
//   the row it is saved as, so the saved text is JSON.stringify(recs) (the constructor reads it back).
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

/**
 * One network's record, kept as the row it is persisted as: [id, s, x, d, c, cx, p, q] (R names the
 * columns). s: shortest idle that survived (0: none). x: candidate dying idle (0: none) and d: how
 * many deaths at about that idle. c: cap in seconds (0: none) and cx: the dying idle it was learned
 * from. p: when the cap was learned or last probed (ms). q: 1 while a probe is running.
 */
export type PathRow = [string, number, number, number, number, number, number, number];

const enum R {
  ID,
  SURVIVED,
  CANDIDATE,
  DEATHS,
  CAP,
  CAP_IDLE,
  PROBED,
  PROBING,
}

const ID_MAX = 32;

export class PathLimits {
  cfg: PathLimitConfig;
  /** Most recently used first; what is persisted (as JSON text). */
  recs: PathRow[];
  /** maxNetworks (default 8). */
  max: number;

  /** Nothing learned, or JSON.stringify(recs) saved earlier (unreadable input: nothing; bad rows are skipped). */
  constructor(cfg: PathLimitConfig, saved?: string) {
    this.cfg = cfg;
    this.recs = [];
    this.max = cfg.maxNetworks || 8;
    try {
      // (not an array: no length, or null.length throws)
      const v = JSON.parse(saved as string);
      for (let i = 0; i < v.length && this.recs.length < this.max; i++) {
        const e = v[i];
        if (!Array.isArray(e) || typeof e[0] !== 'string') continue;
        const r = [e[0].substring(0, ID_MAX)] as unknown as PathRow;
        for (let j = 1; j <= R.PROBING; j++) {
          const n = e[j];
          r.push(n >= 0 && n < 1e16 ? +n : 0); // (null: +null is 0; not a number: 0)
        }
        this.recs.push(r);
      }
    } catch (e) {
      // unreadable: nothing learned
    }
  }

  /** The record for a network, moved to the front; created when `create` (dropping the oldest beyond maxNetworks). */
  rec(networkId: string, create: boolean, nowMs: number): PathRow | undefined {
    const id = networkId.substring(0, ID_MAX);
    const a = this.recs;
    let i = 0;
    while (i < a.length && a[i][R.ID] !== id) i++;
    // (not found: i is a.length, and the splice takes nothing)
    const r: PathRow | false = a.splice(i, 1)[0] || (create && [id, 0, 0, 0, 0, 0, nowMs, 0]);
    if (!r) return undefined;
    a.unshift(r);
    a.splice(this.max);
    if (nowMs < r[R.PROBED]) r[R.PROBED] = nowMs;
    return r;
  }

  /** A held connection died (watchdog fired) on a ping sent after idleSec of idle on networkId. */
  died(networkId: string, idleSec: number, nowMs: number): void {
    const r = this.rec(networkId, true, nowMs) as PathRow;
    const c = this.cfg;
    const tol = c.marginSec;
    if (r[R.PROBING]) {
      // The probe ends; a death at about the long interval confirms the cap, it is not new evidence.
      r[R.PROBING] = 0;
      r[R.PROBED] = nowMs;
      if (idleSec >= r[R.CAP_IDLE] - tol) return;
    }
    if (!(r[R.SURVIVED] > 0 && r[R.SURVIVED] < idleSec)) return;
    const x = r[R.CANDIDATE];
    // Longer than the candidate: consistent, not counted. About the same: counted. Shorter, or the first: a new candidate.
    if (r[R.DEATHS] && idleSec > x + tol) return;
    if (r[R.DEATHS] && idleSec >= x - tol) {
      r[R.DEATHS]++;
      if (idleSec < x) r[R.CANDIDATE] = idleSec;
    } else {
      r[R.CANDIDATE] = idleSec;
      r[R.DEATHS] = 1;
    }
    if (r[R.DEATHS] >= c.deathsToLearn) {
      const cap = Math.max(c.minSec, r[R.CANDIDATE] - tol);
      if (r[R.CAP] === 0 || cap < r[R.CAP]) {
        // (not probing: a death ends a probe, above)
        r[R.CAP] = cap;
        r[R.CAP_IDLE] = r[R.CANDIDATE];
        r[R.PROBED] = nowMs;
      }
      r[R.DEATHS] = 0;
      r[R.CANDIDATE] = 0;
    }
  }

  /** A ping sent after idleSec of idle was answered on networkId. */
  survived(networkId: string, idleSec: number, nowMs: number): void {
    const r = this.rec(networkId, true, nowMs) as PathRow;
    if (idleSec > 0 && (r[R.SURVIVED] === 0 || idleSec < r[R.SURVIVED])) r[R.SURVIVED] = idleSec;
    // (no candidate is 0 deaths at 0 s, and no cap is 0 s at 0 s: resetting them again changes nothing)
    if (idleSec >= r[R.CANDIDATE]) {
      r[R.DEATHS] = 0;
      r[R.CANDIDATE] = 0;
    }
    if (idleSec >= r[R.CAP_IDLE]) {
      r[R.CAP] = 0;
      r[R.CAP_IDLE] = 0;
      r[R.PROBING] = 0;
    }
  }

  /**
   * The keep-alive cap for this network (seconds), or undefined when nothing is learned or the cap is
   * lifted for a probe (starting one when probeEveryMs has passed since the last).
   */
  capFor(networkId: string, nowMs: number): number | undefined {
    const r = this.rec(networkId, false, nowMs);
    if (r === undefined || r[R.CAP] === 0 || r[R.PROBING]) return undefined;
    if (nowMs - r[R.PROBED] >= this.cfg.probeEveryMs) {
      r[R.PROBING] = 1;
      r[R.PROBED] = nowMs;
      return undefined;
    }
    return r[R.CAP];
  }
}
