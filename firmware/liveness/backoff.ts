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
// - attempt counts failures since the last reset (per broker); every failure adds one.
// - Reset only after the link STAYED up stableAfterMs: down() resets the attempts only then. A broker
//   that accepts CONNECT and kicks us at once (duplicate client id, rate limit, bad ACL) must keep
//   backing off, or a connect-then-kicked loop hammers it (brokers rate-limit CONNECT: AWS IoT
//   1 per second per client id).
// - A failure that retrying soon cannot fix (CONNACK "not authorized", "bad user name or password")
//   waits uniform in [floor(cap/2), cap] (capped): long, but still jittered.
// - When the link (Wi-Fi / cellular) comes back the client attempts at once (Client.linkUp); the
//   attempts are kept, so if that attempt fails the next delay still reflects the failures so far.
// - The attempts are persisted across deep sleep (toJSON/restore); the up time is not (a deep sleep
//   ends the connection, and the ms timeline restarts at boot).
//
// Failover (BrokerRotation), decided here:
// - Each broker has its own attempt count and a readyAt time (its last failure + the delay drawn for
//   it). No broker is ever retried before its own full-jitter delay has passed, so each broker sees
//   exactly the schedule a single-broker client would give it; the device as a whole makes at most
//   `count` times as many attempts.
// - After a failure on broker i (connect refused/timed out, CONNACK refusal, or a connection that
//   dropped before it was stable), the next attempt goes to broker (i + 1) % count (round robin),
//   after max(its remaining wait, failover jitter), where failover jitter = the full-jitter delay of
//   attempt 0, floor(r * (min(base, cap) + 1)): a small delay that spreads a fleet moving from a dead
//   broker to the next one at the same moment over baseMs. While the other brokers have not failed
//   recently this is the small jitter; once every broker has failed, it is the remaining backoff of
//   the next one in turn.
// - A broker that was up stays preferred: after a connection that had been up >= stableAfterMs
//   drops, the next failed() stays on the same broker (delay = its own backoff, which was just reset,
//   so uniform in [0, baseMs]), and every broker's attempt is reset (the network proved good, old
//   failures are stale; a wait already drawn for another broker still applies). A connection that
//   dropped sooner counts as a failure and rotates.
// - With one broker, failed() is exactly the single backoff (class Backoff below, for tests and
//   tools; the device's radio re-attach backoff is a one-broker rotation).
//
// Espruino-safe: no class fields, no default params, no self-reference inside a class body.

export interface BackoffConfig {
  baseMs: number;
  capMs: number;
  factor: number;
  stableAfterMs: number;
}

/**
 * The delay after `attempt` earlier failures, from r in [0, 1) (NaN and negatives count as 0, r >= 1
 * as just below 1): uniform integer in [0, min(capMs, floor(baseMs * factor^attempt))], or for a
 * capped failure in [floor(cap/2), cap]. (board.json validation makes baseMs and capMs whole ms > 0.)
 */
function delayFor(c: BackoffConfig, attempt: number, r: number, capped: boolean): number {
  const cap = c.capMs;
  const v = Math.floor(c.baseMs * Math.pow(c.factor, attempt));
  const lo = capped ? Math.floor(cap / 2) : 0;
  const hi = capped || !(v < cap) ? cap : v;
  // (r >= 1 gives at least hi - lo + 1 here: the clamp below makes it hi)
  const d = lo + Math.floor((r > 0 ? r : 0) * (hi - lo + 1));
  return d < hi ? d : hi;
}

/** A persisted count: a whole number >= 0 (anything else, NaN and strings that are no number too, is 0). */
function count(v: any): number {
  return v >= 0 && v < 1e9 ? Math.floor(v) : 0;
}

export interface BrokerChoice {
  delayMs: number;
  broker: number;
}

export class BrokerRotation {
  cfg: BackoffConfig;
  /** The broker to use for the next attempt (index into the caller's list). */
  current: number;
  /** Per broker: failures since the last reset. */
  attempts: number[];
  /** Per broker: earliest time its own backoff allows another attempt (ms timeline). */
  readyAt: number[];
  /** When the connection to `current` came up (-1: not up). */
  upAt: number;
  /** The last connection on `current` was stable: the next failed() stays on it. */
  stay: boolean;

  constructor(n: number, cfg: BackoffConfig) {
    this.cfg = cfg;
    this.current = 0;
    const a = (this.attempts = [0]);
    while (a.length < n) a.push(0);
    this.readyAt = a.slice();
    this.upAt = -1;
    this.stay = false;
  }

  /**
   * The attempt on the current broker failed (or its connection dropped, after down()) at nowMs.
   * capped: the failure was one retrying soon cannot fix (auth refusal). Returns the broker to try
   * next and the delay before trying it (see the rules at the top of this file).
   */
  failed(nowMs: number, r: number, capped: boolean): BrokerChoice {
    const i = this.current;
    const d = delayFor(this.cfg, this.attempts[i]++, r, capped);
    this.readyAt[i] = nowMs + d;
    if (this.stay) {
      this.stay = false;
      return { delayMs: d, broker: i };
    }
    // (One broker: j is i again, its wait is d, and d is never below the jitter of attempt 0.)
    const j = (this.current = (i + 1) % this.attempts.length);
    const wait = this.readyAt[j] - nowMs;
    const jitter = delayFor(this.cfg, 0, r, false);
    return { delayMs: wait > jitter ? wait : jitter, broker: j };
  }

  /** The connection to the current broker came up (CONNACK accepted) at nowMs. */
  up(nowMs: number): void {
    this.upAt = nowMs;
    this.stay = false;
  }

  /**
   * The connection to the current broker went down at nowMs. If it had been up >= stableAfterMs,
   * every broker's attempts are reset and the next failed() stays on this broker; returns true then.
   */
  down(nowMs: number): boolean {
    const stable = this.upAt >= 0 && nowMs - this.upAt >= this.cfg.stableAfterMs;
    this.upAt = -1;
    if (stable) {
      this.attempts.fill(0);
      this.stay = true;
    }
    return stable;
  }

  /** What is persisted (for JSON.stringify: the attempts are not copied). */
  toJSON(): { current: number; attempts: number[] } {
    return { current: this.current, attempts: this.attempts };
  }

  /** Restore what toJSON() saved; extra entries are ignored, missing ones are 0, bad input resets. */
  restore(o: { current: number; attempts: number[] }): void {
    const a = o && o.attempts;
    const l = this.attempts;
    for (let i = 0; i < l.length; i++) {
      l[i] = count(a && a[i]);
      this.readyAt[i] = 0;
    }
    const cur = count(o && o.current);
    this.current = cur < l.length ? cur : 0;
    this.upAt = -1;
    this.stay = false;
  }
}

export interface BrokerRotation {
  /** The current broker's backoff state (tests and tools read its attempt; not in a device build). */
  backoff(): { attempt: number };
}

if (typeof WREN_DEVICE === 'undefined') {
  BrokerRotation.prototype.backoff = function (this: BrokerRotation) {
    return { attempt: this.attempts[this.current] };
  };
}

/**
 * One backoff alone: a one-broker rotation seen as a single counter (tests and tools; the firmware
 * uses BrokerRotation). next() is the full-jitter delay, nextCapped() the capped one; both count a
 * failure. Persisted as {attempt}.
 */
export class Backoff {
  rot: BrokerRotation;

  constructor(cfg: BackoffConfig) {
    this.rot = new BrokerRotation(1, cfg);
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.rot.attempts[0];
  }

  /** The current ceiling: min(capMs, floor(baseMs * factor^attempt)) (the delay r -> 1 gives). */
  ceilingMs(): number {
    return delayFor(this.rot.cfg, this.attempt, 1, false);
  }

  next(r: number): number {
    return this.rot.failed(0, r, false).delayMs;
  }

  nextCapped(r: number): number {
    return this.rot.failed(0, r, true).delayMs;
  }

  /** The link came back: attempt now (returns 0); attempt is kept. */
  immediate(): number {
    return 0;
  }

  up(nowMs: number): void {
    this.rot.up(nowMs);
  }

  /** Resets attempt to 0 only if the connection had stayed up >= stableAfterMs; true when it did. */
  down(nowMs: number): boolean {
    return this.rot.down(nowMs);
  }

  toJSON(): { attempt: number } {
    return { attempt: this.attempt };
  }

  /** Restore what toJSON() saved (invalid input -> attempt 0). */
  restore(o: { attempt: number }): void {
    this.rot.restore({ current: 0, attempts: [o && o.attempt] });
  }
}
