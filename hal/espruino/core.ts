// Clock, TimerHost, Log, Random and Power on Espruino (ESP32).

import type { Clock, Log, LogLevel, Power, Random, SleepMode, TimerHandle, TimerHost, WakeCause } from '../types';
import type { EspruinoEnv } from './env';

/** A TimerHost handle: the Espruino timer id plus a "done" flag (ids are reused; see clear()). */
interface EspTimer {
  id: any;
  done: boolean;
}

/**
 * Clock, TimerHost and Random in one object (one class and one instance fewer each: JsVars).
 *
 * Clock: monotonic milliseconds from getTime(). getTime() is the system clock in seconds: it starts at
 * 0 at boot, but setTime() and SNTP (Wifi.setSNTP, lwIP) move it, e.g. from 1970 to today in one step.
 * The clock therefore accumulates the steps it sees: a step backwards, or forwards by 2^31 ms (24.8
 * days, more than any TimerHost delay, so more than any gap between two reads of a running scheduler)
 * or more, counts as 0 ms. A small SNTP correction (seconds) passes through as it is. Starts at 0 when
 * constructed; never wraps.
 *
 * TimerHost: setTimeout/clearTimeout, the only timers in the system. A handle is an object (never
 * undefined); clear() of a timer that already fired or was cleared does nothing, so it can never cancel
 * a later timer that reused the id, and clearTimeout is never given undefined (which clears ALL timers).
 * Each timer that fires reads the clock, which keeps its step detection fed across long sleeps.
 *
 * Random: E.hwRand() (the ESP32 hardware RNG) when there is one, Math.random() otherwise.
 */
export class EspruinoClock implements Clock, TimerHost, Random {
  private env_: EspruinoEnv;
  private last_: number;
  private t_: number;
  constructor(env: EspruinoEnv) {
    this.env_ = env;
    this.last_ = env.getTime() * 1000;
    this.t_ = 0;
  }
  now(): number {
    const raw = this.env_.getTime() * 1000;
    const d = raw - this.last_;
    this.last_ = raw;
    if (d > 0 && d < 2147483648) this.t_ += d;
    return this.t_;
  }
  elapsed(since: number): number {
    const d = this.now() - since;
    return d < 0 ? d + 4294967296 : d;
  }
  set(delayMs: number, cb: () => void): TimerHandle {
    let d = delayMs;
    if (!(d >= 0)) d = 0;
    if (d > 2147483647) d = 2147483647;
    const t: EspTimer = { id: undefined, done: false };
    const self = this;
    t.id = this.env_.setTimeout(function () {
      if (t.done) return;
      t.done = true;
      self.now();
      cb();
    }, d);
    return t;
  }
  clear(handle: TimerHandle): void {
    const t = handle as EspTimer;
    if (!t || t.done) return;
    t.done = true;
    if (t.id !== undefined && t.id !== null) {
      try {
        this.env_.clearTimeout(t.id);
      } catch (e) {
        // an id Espruino no longer knows: nothing to clear
      }
    }
  }
  next(): number {
    const E = this.env_.E;
    if (E && typeof E.hwRand === 'function') return (E.hwRand() >>> 0) / 4294967296;
    return Math.random();
  }
}

/** The TimerHost: the same class as the clock (new EspruinoTimerHost(env)). */
export const EspruinoTimerHost = EspruinoClock;
/** The Random: the same class as the clock (new EspruinoRandom(env)). */
export const EspruinoRandom = EspruinoClock;

/** Log lines to the console: "<seconds> <L> <tag>: <message>", at or above a level. */
export class EspruinoLog implements Log {
  level: LogLevel;
  private env_: EspruinoEnv;
  private clock_: Clock | undefined;
  constructor(env: EspruinoEnv, level?: LogLevel, clock?: Clock) {
    this.env_ = env;
    this.level = level || 'info';
    this.clock_ = clock;
  }
  enabled(level: LogLevel): boolean {
    // levels in order by first letter: debug, info, warn, error
    return 'diwe'.indexOf(level.charAt(0)) >= 'diwe'.indexOf(this.level.charAt(0));
  }
  private out_(level: LogLevel, tag: string, message: string): void {
    if (!this.enabled(level)) return;
    try {
      const c = this.clock_;
      this.env_.print((c !== undefined ? (c.now() / 1000).toFixed(3) + ' ' : '') + level.charAt(0).toUpperCase() + ' ' + tag + ': ' + message);
    } catch (e) {
      // a log never throws
    }
  }
  debug(tag: string, message: string): void {
    this.out_('debug', tag, message);
  }
  info(tag: string, message: string): void {
    this.out_('info', tag, message);
  }
  warn(tag: string, message: string): void {
    this.out_('warn', tag, message);
  }
  error(tag: string, message: string): void {
    this.out_('error', tag, message);
  }
}

/** Battery measurement through a resistor divider on an ADC pin. */
export interface BatteryOptions {
  /** The ADC pin (e.g. D35). */
  pin: any;
  /** Battery voltage / pin voltage (e.g. 2 for two equal resistors). */
  dividerRatio: number;
  /** Millivolts at analogRead() = 1 (ADC full scale with the chosen attenuation). Default 3300. */
  fullScaleMv?: number;
  /** If set, ESP32.setAtten(pin, atten) first (3 = 11 dB, about 0-3.3 V). */
  atten?: number;
  /** Readings averaged (default 4). */
  samples?: number;
}

/** ESP32.getWakeupCause() values (esp_sleep_wakeup_cause_t) -> WakeCause. */
export function mapWakeCause(code: number | undefined): WakeCause {
  if (code === 0) return 'power-on'; // not a wake from deep sleep: cold boot or reset (ESP32 cannot tell here)
  if (code === 4) return 'timer';
  if (code === 2 || code === 3 || code === 5 || code === 6 || code === 7 || code === 8) return 'external';
  return 'unknown';
}

/** The longest deep sleep ESP32.deepSleep(us) takes: its argument is a 32-bit signed int (µs). */
export const MAX_DEEP_SLEEP_US = 2147483647;

/**
 * Power on ESP32: deep sleep through ESP32.deepSleep(µs) (does not return: the chip reboots, RAM lost),
 * the wake cause read once at start, the battery from an ADC pin. 'light' sleep is a hint and returns
 * at once (Espruino already sleeps between timers; Wi-Fi power save is the Link's setting).
 * Deep sleeps longer than 2^31-1 µs (35.79 min) are cut to that: the device then wakes with 'timer'
 * and the firmware sleeps again for the rest.
 */
export class EspruinoPower implements Power {
  private env_: EspruinoEnv;
  private cause_: WakeCause;
  private battery_: BatteryOptions | undefined;
  private attenSet_: boolean;
  /** Called just before a deep sleep (e.g. to flush logs); a throw does not stop the sleep. */
  onBeforeDeepSleep: ((durationMs: number) => void) | undefined;
  constructor(env: EspruinoEnv, battery?: BatteryOptions) {
    this.env_ = env;
    this.battery_ = battery;
    this.attenSet_ = false;
    this.onBeforeDeepSleep = undefined;
    let code: number | undefined;
    try {
      if (env.ESP32 && typeof env.ESP32.getWakeupCause === 'function') code = env.ESP32.getWakeupCause();
    } catch (e) {
      code = undefined;
    }
    this.cause_ = env.ESP32 ? mapWakeCause(code) : 'power-on';
  }
  sleep(mode: SleepMode, durationMs: number): void {
    const esp = this.env_.ESP32;
    if (mode !== 'deep' || !esp || typeof esp.deepSleep !== 'function') return;
    let us = Math.round(durationMs * 1000);
    if (!(us >= 1)) us = 1;
    if (us > MAX_DEEP_SLEEP_US) us = MAX_DEEP_SLEEP_US;
    if (this.onBeforeDeepSleep !== undefined) {
      try {
        this.onBeforeDeepSleep(durationMs);
      } catch (e) {
        // sleep anyway
      }
    }
    esp.deepSleep(us);
  }
  wakeCause(): WakeCause {
    return this.cause_;
  }
  maxDeepSleepMs(): number {
    return Math.floor(MAX_DEEP_SLEEP_US / 1000);
  }
  batteryMv(): number | undefined {
    const b = this.battery_;
    const env = this.env_;
    const read = env.analogRead;
    if (b === undefined || typeof read !== 'function') return undefined;
    if (!this.attenSet_) {
      this.attenSet_ = true;
      if (b.atten !== undefined && env.ESP32 && typeof env.ESP32.setAtten === 'function') env.ESP32.setAtten(b.pin, b.atten);
    }
    const n = b.samples !== undefined && b.samples > 0 ? b.samples : 4;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += read(b.pin);
    const v = sum / n;
    if (!(v >= 0) || v > 1) return undefined; // NaN: not an analog pin
    return Math.round(v * (b.fullScaleMv !== undefined ? b.fullScaleMv : 3300) * b.dividerRatio);
  }
}
