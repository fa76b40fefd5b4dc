// Virtual time for tests: a Clock and a TimerHost in one object. Nothing happens until the test
// advances the clock; then every due timer fires in order, at its exact virtual time (ties in the
// order they were set), so tests can assert timings to the millisecond and simulate days in
// milliseconds of wall time. Runs on Node only.

import type { Clock, TimerHandle, TimerHost } from '../types';

export interface VirtualClockOptions {
  /** Initial time in ms (default 0). */
  startMs?: number;
  /**
   * Make now() wrap like a device clock: now() = time mod wrapAtMs (use 2 ** 32). Timers and
   * advance() keep working on the unwrapped time.
   */
  wrapAtMs?: number;
  /**
   * More than this many timers firing without virtual time moving is treated as a zero-delay livelock
   * and throws (default 100000).
   */
  maxFiresPerInstant?: number;
}

interface VTimer {
  id: number;
  at: number;
  seq: number;
  cb: () => void;
}

export class VirtualClock implements Clock, TimerHost {
  /** Unwrapped virtual time in ms. */
  private t: number;
  private wrapAtMs: number | undefined;
  private maxFires: number;
  private timers: VTimer[] = [];
  private nextId = 1;
  private nextSeq = 0;
  /** Timers fired since construction. */
  fired = 0;

  constructor(options?: VirtualClockOptions) {
    const o = options ?? {};
    this.t = o.startMs ?? 0;
    this.wrapAtMs = o.wrapAtMs;
    this.maxFires = o.maxFiresPerInstant ?? 100000;
  }

  /** The unwrapped virtual time (equals now() unless wrapAtMs is set). */
  get time(): number {
    return this.t;
  }

  now(): number {
    return this.wrapAtMs === undefined ? this.t : this.t % this.wrapAtMs;
  }

  elapsed(since: number): number {
    const d = this.now() - since;
    return d < 0 ? d + 4294967296 : d;
  }

  set(delayMs: number, cb: () => void): TimerHandle {
    if (!(delayMs >= 0)) delayMs = 0; // NaN and negatives fire as soon as possible, like setTimeout
    const timer: VTimer = { id: this.nextId++, at: this.t + delayMs, seq: this.nextSeq++, cb };
    const q = this.timers;
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid].at <= timer.at) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, timer);
    return timer.id;
  }

  clear(handle: TimerHandle): void {
    const q = this.timers;
    for (let i = 0; i < q.length; i++) {
      if (q[i].id === handle) {
        q.splice(i, 1);
        return;
      }
    }
  }

  /** Number of timers waiting. */
  pendingTimers(): number {
    return this.timers.length;
  }

  /** Virtual time of the next timer, or undefined. */
  nextTimerAt(): number | undefined {
    return this.timers.length > 0 ? this.timers[0].at : undefined;
  }

  /**
   * Move time forward by `ms`, firing every timer due on the way at its own time (timers set by those
   * callbacks included). Ends with time = start + ms. Returns the number of timers fired. An exception
   * thrown by a callback propagates (time is left at that timer's time).
   */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new Error('VirtualClock.advance: ms must be >= 0');
    const target = this.t + ms;
    let n = 0;
    while (this.timers.length > 0 && this.timers[0].at <= target) {
      this.fireFirst();
      n++;
    }
    this.t = target;
    return n;
  }

  /** Same as advance(ms). */
  runFor(ms: number): number {
    return this.advance(ms);
  }

  /** Fire the timers due now (0 ms), including zero-delay timers they set. */
  flush(): number {
    return this.advance(0);
  }

  /**
   * Fire timers in order until pred() is true (checked first, then after each timer) or until
   * `maxMs` of virtual time have passed. Returns true if pred() became true; time is then left at the
   * moment it did. On false, time is start + maxMs.
   */
  runUntil(pred: () => boolean, maxMs: number): boolean {
    const limit = this.t + maxMs;
    if (pred()) return true;
    while (this.timers.length > 0 && this.timers[0].at <= limit) {
      this.fireFirst();
      if (pred()) return true;
    }
    this.t = limit;
    return pred();
  }

  /** Fire timers until none is left, bounded by maxMs of virtual time (default one day). */
  runAll(maxMs?: number): number {
    const limit = this.t + (maxMs ?? 86400000);
    let n = 0;
    while (this.timers.length > 0 && this.timers[0].at <= limit) {
      this.fireFirst();
      n++;
    }
    return n;
  }

  private firesAtInstant = 0;
  private instant = -1;

  private fireFirst(): void {
    const timer = this.timers.shift() as VTimer;
    if (timer.at > this.t) this.t = timer.at;
    if (this.instant === this.t) {
      if (++this.firesAtInstant > this.maxFires) {
        throw new Error(
          'VirtualClock: more than ' + this.maxFires + ' timers fired at t=' + this.t + ' ms (zero-delay loop?)',
        );
      }
    } else {
      this.instant = this.t;
      this.firesAtInstant = 1;
    }
    this.fired++;
    timer.cb();
  }
}
