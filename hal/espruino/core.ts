// Clock, TimerHost, Random, Log and Power on Espruino (ESP32), in ONE object: each class and each
// instance costs JsVars, and the five share the environment and the clock.

import type { Clock, Log, LogLevel, Power, Random, SleepMode, TimerHandle, TimerHost, WakeCause } from '../types';
import type { EspruinoEnv } from './env';

/** Battery measurement through a resistor divider on an ADC pin (ESP32 default: 11 dB, 0..3.3 V read). */
export interface BatteryOptions {
  /** The ADC pin (e.g. D35). */
  pin: any;
  /** Battery voltage / pin voltage (e.g. 2 for two equal resistors). */
  dividerRatio: number;
}

export interface EspruinoCoreOptions {
  /** Lowest log level printed (default 'info'). */
  logLevel?: LogLevel;
  /** Battery divider on an ADC pin; absent: batteryMv() is undefined. */
  battery?: BatteryOptions;
}

/** A TimerHost handle: the Espruino timer id plus a "done" flag (ids are reused; see clear()). */
interface EspTimer {
  id_?: any;
  done_?: boolean;
}

const enum Limit {
  /** The longest ESP32.deepSleep(µs): its argument is a 32-bit signed int (35.79 min). */
  DEEP_SLEEP_US = 2147483647,
  /** The same in ms, rounded down. */
  DEEP_SLEEP_MS = 2147483,
}

/** The longest deep sleep ESP32.deepSleep(us) takes. */
export const MAX_DEEP_SLEEP_US = Limit.DEEP_SLEEP_US;

/**
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
 * (The scheduler reads the clock at every timer, which keeps its step detection fed.)
 *
 * Random: E.hwRand() (the ESP32 hardware RNG).
 *
 * Log: lines "<seconds> <L> <tag>: <message>" through print(), at or above a level.
 *
 * Power: deep sleep through ESP32.deepSleep(µs) (does not return: the chip reboots, RAM lost), cut to
 * 2^31-1 µs (maxDeepSleepMs() tells the firmware, which sleeps again for the rest); 'light' sleep is a
 * hint and returns at once (Espruino already sleeps between timers; Wi-Fi power save is the Link's
 * setting). The battery from an ADC pin.
 */
export class EspruinoCore implements Clock, TimerHost, Random, Log, Power {
  private env_: EspruinoEnv;
  private last_: number;
  private t_: number;
  /** The lowest level printed: 0 debug, 1 info, 2 warn, 3 error. */
  private min_: number;
  private battery_: BatteryOptions | undefined;

  constructor(env: EspruinoEnv, options?: EspruinoCoreOptions) {
    const o = options || {};
    this.env_ = env;
    this.last_ = env.getTime() * 1000;
    this.t_ = 0;
    this.min_ = 'diwe'.indexOf((o.logLevel || 'info')[0]);
    this.battery_ = o.battery;
  }

  now(): number {
    const raw = this.env_.getTime() * 1000;
    const d = raw - this.last_;
    this.last_ = raw;
    if (d > 0 && d < 2147483648) this.t_ += d;
    return this.t_;
  }

  set(delayMs: number, cb: () => void): TimerHandle {
    const t: EspTimer = {};
    t.id_ = this.env_.setTimeout(() => {
      if (t.done_) return;
      t.done_ = true;
      cb();
    }, delayMs >= 0 ? delayMs : 0); // (at most 2^31-1, the callers' contract; Espruino's timers are 64-bit)
    return t;
  }

  clear(handle: TimerHandle): void {
    const t = handle as EspTimer;
    if (!t || t.done_) return;
    t.done_ = true;
    this.env_.clearTimeout(t.id_);
  }

  next(): number {
    return (this.env_.E.hwRand() >>> 0) / 4294967296;
  }

  enabled(level: LogLevel): boolean {
    return 'diwe'.indexOf(level[0]) >= this.min_;
  }

  debug(tag: string, message: string): void {
    this.error(tag, message, 0);
  }

  info(tag: string, message: string): void {
    this.error(tag, message, 1);
  }

  warn(tag: string, message: string): void {
    this.error(tag, message, 2);
  }

  /** A line at `level` (0 debug, 1 info, 2 warn; absent: 3, error). Never throws. */
  error(tag: string, message: string, level?: number): void {
    const l = level === undefined ? 3 : level;
    if (l < this.min_) return;
    try {
      this.env_.print((this.now() / 1000).toFixed(3) + ' ' + 'DIWE'[l] + ' ' + tag + ': ' + message);
    } catch (e) {
      // a log never throws
    }
  }

  sleep(mode: SleepMode, durationMs: number): void {
    const esp = this.env_.ESP32;
    // (deepSleep takes whole µs: Espruino drops the fraction)
    if (mode === 'deep' && esp) esp.deepSleep(Math.min(durationMs * 1000, Limit.DEEP_SLEEP_US));
  }

  /** From ESP32.getWakeupCause() (esp_sleep_wakeup_cause_t: 0 not a deep-sleep wake, 2 EXT0, 3 EXT1, 4 TIMER, 5 TOUCHPAD, 6 ULP, 7 GPIO, 8 UART). */
  wakeCause(): WakeCause {
    const esp = this.env_.ESP32;
    const c = esp && esp.getWakeupCause();
    // 0: a cold boot or a reset (ESP32 cannot tell them apart here)
    return !esp || c === 0 ? 'power-on' : c === 4 ? 'timer' : c > 1 && c < 9 ? 'external' : 'unknown';
  }

  maxDeepSleepMs(): number {
    return Limit.DEEP_SLEEP_MS;
  }

  /** Four readings averaged, x 3300 mV full scale x the divider. */
  batteryMv(): number | undefined {
    const b = this.battery_;
    if (!b) return undefined;
    let v = 0;
    for (let i = 0; i < 4; i++) v += (this.env_.analogRead as (pin: any) => number)(b.pin) / 4;
    // NaN: not an analog pin
    return v <= 1 ? Math.round(v * 3300 * b.dividerRatio) : undefined;
  }
}

// The parts under their own names: the same class (e.g. new EspruinoTimerHost(env)).
export const EspruinoClock = EspruinoCore;
export const EspruinoTimerHost = EspruinoCore;
export const EspruinoRandom = EspruinoCore;
export const EspruinoLog = EspruinoCore;
export const EspruinoPower = EspruinoCore;

// Node only (and bundles without WREN_DEVICE): what the firmware never calls (grep firmware/), left
// out of a device build (a class method would stay in it, called or not).
export interface EspruinoCore {
  /** This clock never wraps. */
  elapsed(since: number): number;
}

if (typeof WREN_DEVICE === 'undefined') {
  EspruinoCore.prototype.elapsed = function (this: EspruinoCore, since: number): number {
    return this.now() - since;
  };
}
