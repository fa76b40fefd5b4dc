// What every Node-side Log shares (the console log of hal/node, the in-memory log of hal/mock, the
// simulator's): the level order, enabled(), and debug/info/warn/error as one write() at a level.
// (hal/espruino has its own, smaller one: it runs on the device.)

import type { Log, LogLevel } from './types';

export const LOG_ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export abstract class LevelLog implements Log {
  /** Lowest level written. */
  abstract readonly level: LogLevel;
  /** Writes one line that enabled() let through. */
  protected abstract write(level: LogLevel, tag: string, message: string): void;

  enabled(level: LogLevel): boolean {
    return LOG_ORDER[level] >= LOG_ORDER[this.level];
  }
  debug(tag: string, message: string): void {
    if (this.enabled('debug')) this.write('debug', tag, message);
  }
  info(tag: string, message: string): void {
    if (this.enabled('info')) this.write('info', tag, message);
  }
  warn(tag: string, message: string): void {
    if (this.enabled('warn')) this.write('warn', tag, message);
  }
  error(tag: string, message: string): void {
    if (this.enabled('error')) this.write('error', tag, message);
  }
}
