// Power for tests: records sleep requests; wake cause and battery are set by the test.

import type { Clock, Power, SleepMode, WakeCause } from '../types';

export interface SleepRecord {
  mode: SleepMode;
  durationMs: number;
  /** Clock time of the request (if a clock was given). */
  atMs: number | undefined;
}

export class MockPower implements Power {
  readonly sleeps: SleepRecord[] = [];
  wake: WakeCause;
  battery: number | undefined;
  /** Called on every sleep() (e.g. a simulator that models a deep-sleep reboot). */
  onSleep: ((mode: SleepMode, durationMs: number) => void) | undefined;
  private clock: Clock | undefined;
  /** Longest single deep sleep, like the ESP32's 35.79 min (absent: unlimited). */
  maxDeepSleepMs: (() => number) | undefined;

  constructor(
    options: { wakeCause?: WakeCause; batteryMv?: number; clock?: Clock; maxDeepSleepMs?: number } = {},
  ) {
    this.wake = options.wakeCause ?? 'power-on';
    this.battery = options.batteryMv;
    this.clock = options.clock;
    const cap = options.maxDeepSleepMs;
    this.maxDeepSleepMs = cap === undefined ? undefined : () => cap;
  }

  sleep(mode: SleepMode, durationMs: number): void {
    this.sleeps.push({ mode, durationMs, atMs: this.clock?.now() });
    if (this.onSleep) this.onSleep(mode, durationMs);
  }

  wakeCause(): WakeCause {
    return this.wake;
  }

  batteryMv(): number | undefined {
    return this.battery;
  }
}
