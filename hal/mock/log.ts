// A Log that keeps its lines in memory (optionally echoing them), for assertions.

import type { Clock, Log, LogLevel } from '../types';

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LogLine {
  level: LogLevel;
  tag: string;
  message: string;
  /** Clock time (if a clock was given). */
  atMs: number | undefined;
}

export class MemoryLog implements Log {
  readonly lines: LogLine[] = [];
  /** Lowest level kept. */
  level: LogLevel;
  /** Also print to the console. */
  echo: boolean;
  private clock: Clock | undefined;

  constructor(options: { level?: LogLevel; echo?: boolean; clock?: Clock } = {}) {
    this.level = options.level ?? 'debug';
    this.echo = options.echo ?? false;
    this.clock = options.clock;
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.level];
  }
  debug(tag: string, message: string): void {
    this.add('debug', tag, message);
  }
  info(tag: string, message: string): void {
    this.add('info', tag, message);
  }
  warn(tag: string, message: string): void {
    this.add('warn', tag, message);
  }
  error(tag: string, message: string): void {
    this.add('error', tag, message);
  }

  /** Lines as text: "LEVEL tag: message". */
  text(): string {
    return this.lines.map((l) => l.level.toUpperCase() + ' ' + l.tag + ': ' + l.message).join('\n');
  }

  /** Lines whose message contains `s` (optionally only at `level`). */
  find(s: string, level?: LogLevel): LogLine[] {
    return this.lines.filter((l) => l.message.includes(s) && (level === undefined || l.level === level));
  }

  clear(): void {
    this.lines.length = 0;
  }

  private add(level: LogLevel, tag: string, message: string): void {
    if (!this.enabled(level)) return;
    const line: LogLine = { level, tag, message, atMs: this.clock?.now() };
    this.lines.push(line);
    if (this.echo) console.log('[' + (line.atMs ?? '') + '] ' + level.toUpperCase() + ' ' + tag + ': ' + message);
  }
}
