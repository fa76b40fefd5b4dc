// Reconnect backoff: full-jitter exponential backoff and failover over a list of brokers.
// Pure policy: no I/O, no timers, no clock reads. The caller passes the time (nowMs, on any monotonic
// ms timeline) and the random value r in [0, 1) (FreeRTOS backoffAlgorithm style: the caller owns the
// random source, so tests are exact), and schedules the returned delay itself.
//
// Rules (DESIGN.md section 3, "Reconnect storms"):
// - Full jitter (AWS "Exponential Backoff And Jitter"): delay = uniform integer in
//   [0, ceiling], ceiling = min(capMs, floor(baseMs * factor^attempt)); computed as
//   floor(r * (ceiling + 1)) so r = 0 gives 0 and r -> 1 gives exactly the ceiling (FreeRTOS:
//   random % (max + 1)). Full jitter does the least total work of the variants; un-jittered
//   exponential is the worst (a fleet that lost its broker together retries together).
//   r outside [0, 1) (or NaN) is clamped: < 0 or NaN -> 0, >= 1 -> the ceiling.
// - attempt counts failures since the last reset; every next()/nextCapped() adds one.
// - Reset only after the link STAYED up stableAfterMs: down() resets attempt to 0 only then. A broker
//   that accepts CONNECT and kicks us at once (duplicate client id, rate limit, bad ACL) must keep
//   backing off, or a connect-then-kicked loop hammers it (brokers rate-limit CONNECT: AWS IoT
//   1 per second per client id).
// - A failure that retrying soon cannot fix (CONNACK "not authorized", "bad user name or password")
//   waits uniform in [floor(cap/2), cap] (nextCapped): long, but still jittered.
// - immediate(): the link (Wi-Fi / cellular) just came back, so the first attempt goes now (delay 0);
//   attempt is kept, so if that attempt fails the next delay still reflects the failures so far.
// - attempt is persisted across deep sleep (toJSON/restore); the up time is not (a deep sleep ends
//   the connection, and the ms timeline restarts at boot).
//
// Failover (BrokerRotation), decided here:
// - Each broker has its own Backoff and a readyAt time (its last failure + the delay drawn for it).
//   No broker is ever retried before its own full-jitter delay has passed, so each broker sees
//   exactly the schedule a single-broker client would give it; the device as a whole makes at most
//   `count` times as many attempts.
// - After a failure on broker i (connect refused/timed out, CONNACK refusal, or a connection that
//   dropped before it was stable), the next attempt goes to broker (i + 1) % count (round robin),
//   after max(its remaining wait, failover jitter), where failover jitter = floor(r * (min(base,
//   cap) + 1)): a small delay that spreads a fleet moving from a dead broker to the next one at the
//   same moment over baseMs. While the other brokers have not failed recently this is the small
//   jitter; once every broker has failed, it is the remaining backoff of the next one in turn.
// - A broker that was up stays preferred: after a connection that had been up >= stableAfterMs
//   drops, the next failed() stays on the same broker (delay = its own backoff, which was just reset,
//   so uniform in [0, baseMs]), and every broker's attempt is reset (the network proved good, old
//   failures are stale; a wait already drawn for another broker still applies). A connection that
//   dropped sooner counts as a failure and rotates.
// - With one broker, failed() is exactly Backoff.next()/nextCapped().
//
// Espruino-safe: no class fields, no default params, no self-reference inside a class body.

export interface BackoffConfig {
  baseMs: number;
  capMs: number;
  factor: number;
  stableAfterMs: number;
}

/** Uniform integer in [lo, hi] from r in [0, 1) (NaN and negatives count as 0, r >= 1 as just below 1). */
function pick(lo: number, hi: number, r: number): number {
  if (hi <= lo) return lo;
  const v = lo + Math.floor((r > 0 ? (r < 1 ? r : 0.9999999999) : 0) * (hi - lo + 1));
  return v < hi ? v : hi;
}

function count(v: unknown): number {
  return typeof v === 'number' && v >= 0 && v < 1e9 ? Math.floor(v) : 0;
}

/** capMs as a whole number of ms (never negative). */
function capOf(c: BackoffConfig): number {
  return c.capMs > 0 ? Math.floor(c.capMs) : 0;
}

export class Backoff {
  cfg: BackoffConfig;
  /** Failures since the last reset. */
  attempt: number;
  /** When the connection came up (-1: not up). */
  upAt: number;

  constructor(cfg: BackoffConfig) {
    this.cfg = cfg;
    this.attempt = 0;
    this.upAt = -1;
  }

  /** The current ceiling: min(capMs, floor(baseMs * factor^attempt)) (never negative). */
  ceilingMs(): number {
    const c = this.cfg;
    const cap = capOf(c);
    const v = Math.floor(c.baseMs * Math.pow(c.factor, this.attempt));
    return v >= 0 && v < cap ? v : cap;
  }

  /** Delay before the next attempt: uniform integer in [0, ceilingMs()] from r in [0, 1); then attempt++. */
  next(r: number): number {
    const d = pick(0, this.ceilingMs(), r);
    this.attempt++;
    return d;
  }

  /** Delay after a failure retrying soon cannot fix (auth refusal): uniform in [floor(cap/2), cap]; attempt++. */
  nextCapped(r: number): number {
    const cap = capOf(this.cfg);
    this.attempt++;
    return pick(Math.floor(cap / 2), cap, r);
  }

  /** The link came back: attempt now (returns 0); attempt is kept. */
  immediate(): number {
    return 0;
  }

  /** The connection came up (CONNACK accepted) at nowMs. */
  up(nowMs: number): void {
    this.upAt = nowMs;
  }

  /**
   * The connection went down at nowMs. Resets attempt to 0 only if it had stayed up >= stableAfterMs.
   * Returns true when it did (the connection was stable).
   */
  down(nowMs: number): boolean {
    const stable = this.upAt >= 0 && nowMs - this.upAt >= this.cfg.stableAfterMs;
    this.upAt = -1;
    if (stable) this.attempt = 0;
    return stable;
  }

  toJSON(): { attempt: number } {
    return { attempt: this.attempt };
  }

  /** Restore what toJSON() saved (invalid input -> attempt 0). */
  restore(o: { attempt: number }): void {
    this.attempt = count(o && o.attempt);
    this.upAt = -1;
  }
}

export interface BrokerChoice {
  delayMs: number;
  broker: number;
}

export class BrokerRotation {
  cfg: BackoffConfig;
  /** The broker to use for the next attempt (index into the caller's list). */
  current: number;
  /** One Backoff per broker. */
  list: Backoff[];
  /** Per broker: earliest time its own backoff allows another attempt (ms timeline). */
  readyAt: number[];
  /** The last connection on `current` was stable: the next failed() stays on it. */
  stay: boolean;

  constructor(n: number, cfg: BackoffConfig) {
    this.cfg = cfg;
    this.current = 0;
    this.list = [];
    this.readyAt = [];
    do {
      this.list.push(new Backoff(cfg));
      this.readyAt.push(0);
    } while (this.list.length < n);
    this.stay = false;
  }

  /** The Backoff of the current broker. */
  backoff(): Backoff {
    return this.list[this.current];
  }

  /**
   * The attempt on the current broker failed (or its connection dropped, after down()) at nowMs.
   * capped: the failure was one retrying soon cannot fix (auth refusal). Returns the broker to try
   * next and the delay before trying it (see the rules at the top of this file).
   */
  failed(nowMs: number, r: number, capped: boolean): BrokerChoice {
    const i = this.current;
    const b = this.list[i];
    const d = capped ? b.nextCapped(r) : b.next(r);
    const n = this.list.length;
    this.readyAt[i] = nowMs + d;
    if (n === 1 || this.stay) {
      this.stay = false;
      return { delayMs: d, broker: i };
    }
    const j = (this.current = (i + 1) % n);
    const c = this.cfg;
    const wait = this.readyAt[j] - nowMs;
    const jitter = pick(0, Math.floor(Math.min(c.baseMs, c.capMs)), r);
    return { delayMs: wait > jitter ? wait : jitter, broker: j };
  }

  /** The connection to the current broker came up at nowMs. */
  up(nowMs: number): void {
    this.backoff().up(nowMs);
    this.stay = false;
  }

  /**
   * The connection to the current broker went down at nowMs. If it had been up >= stableAfterMs,
   * every broker's backoff is reset and the next failed() stays on this broker.
   */
  down(nowMs: number): void {
    if (this.backoff().down(nowMs)) {
      for (let i = 0; i < this.list.length; i++) this.list[i].attempt = 0;
      this.stay = true;
    }
  }

  /** The link came back: attempt the current broker now (returns 0). */
  immediate(): number {
    return 0;
  }

  toJSON(): { current: number; attempts: number[] } {
    return { current: this.current, attempts: this.list.map((b) => b.attempt) };
  }

  /** Restore what toJSON() saved; extra entries are ignored, missing ones are 0, bad input resets. */
  restore(o: { current: number; attempts: number[] }): void {
    const a = o && o.attempts;
    const l = this.list;
    for (let i = 0; i < l.length; i++) {
      l[i].restore({ attempt: a && a.length > i ? a[i] : 0 });
      this.readyAt[i] = 0;
    }
    const cur = count(o && o.current);
    this.current = cur < l.length ? cur : 0;
    this.stay = false;
  }
}
