// Real time on Node: a monotonic clock (performance.now) and the one setTimeout the scheduler sleeps on.

import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle, TimerHost } from '../types';

export class NodeClock implements Clock {
  now(): number {
    return performance.now();
  }
  elapsed(since: number): number {
    const d = performance.now() - since;
    return d < 0 ? d + 4294967296 : d;
  }
}

/** The scheduler's timer on Node: one setTimeout. */
export class NodeTimerHost implements TimerHost {
  /**
   * @param unref when true the timer does not keep the process alive (tests, tools). Default false:
   *   a running scheduler keeps a desktop firmware process running, as on the device.
   */
  constructor(private readonly unref?: boolean) {}

  set(delayMs: number, cb: () => void): TimerHandle {
    let d = Math.ceil(delayMs);
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
