// Real time on Node: a monotonic clock (performance.now) and the one setTimeout the scheduler sleeps on.

import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle, TimerHost } from '../types';

/**
 * Real time, optionally sped up: with speed N, now() advances N ms per real ms (the desktop's
 * `--speed`), and NodeTimerHost built with the same speed sleeps delay / N real ms.
 */
export class NodeClock implements Clock {
  private speed: number;
  private t0: number;
  constructor(speed?: number) {
    this.speed = speed !== undefined && speed > 0 ? speed : 1;
    this.t0 = performance.now();
  }
  now(): number {
    return this.speed === 1 ? performance.now() : this.t0 + (performance.now() - this.t0) * this.speed;
  }
  elapsed(since: number): number {
    const d = this.now() - since;
    return d < 0 ? d + 4294967296 : d;
  }
}

/** The scheduler's timer on Node: one setTimeout. */
export class NodeTimerHost implements TimerHost {
  /**
   * @param unref when true the timer does not keep the process alive (tests, tools). Default false:
   *   a running scheduler keeps a desktop firmware process running, as on the device.
   */
  constructor(
    private readonly unref?: boolean,
    private readonly speed: number = 1,
  ) {}

  set(delayMs: number, cb: () => void): TimerHandle {
    let d = Math.ceil(delayMs / (this.speed > 0 ? this.speed : 1));
    if (!(d >= 0)) d = 0;
    if (d > 2147483647) d = 2147483647;
    const h = setTimeout(cb, d);
    if (this.unref) h.unref();
    return h;
  }

  clear(handle: TimerHandle): void {
    if (handle !== undefined && handle !== null) clearTimeout(handle as ReturnType<typeof setTimeout>);
  }
}
