// A Log that keeps its lines in memory (optionally echoing them), for assertions.

import { LevelLog } from '../level-log';
import type { Clock, LogLevel } from '../types';

export interface LogLine {
  level: LogLevel;
  tag: string;
  message: string;
  /** Clock time (if a clock was given). */
  atMs: number | undefined;
}

export class MemoryLog extends LevelLog {
  readonly lines: LogLine[] = [];
  /** Lowest level kept. */
  level: LogLevel;
  /** Also print to the console. */
  echo: boolean;
  private clock: Clock | undefined;

  constructor(options: { level?: LogLevel; echo?: boolean; clock?: Clock } = {}) {
    super();
    this.level = options.level ?? 'debug';
    this.echo = options.echo ?? false;
    this.clock = options.clock;
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

  protected write(level: LogLevel, tag: string, message: string): void {
    const line: LogLine = { level, tag, message, atMs: this.clock?.now() };
    this.lines.push(line);
    if (this.echo) console.log('[' + (line.atMs ?? '') + '] ' + level.toUpperCase() + ' ' + tag + ': ' + message);
  }
}
