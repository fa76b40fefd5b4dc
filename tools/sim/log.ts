// Firmware log for the simulator: dropped, or written as one line per entry with the virtual time.
import { LevelLog } from '../../hal/level-log';
import type { LogLevel } from '../../hal/types';

/** hh:mm:ss.mmm of a virtual time (ms); days as a "d+" prefix. */
export function clockText(ms: number): string {
  const d = Math.floor(ms / 86400000);
  let r = ms - d * 86400000;
  const h = Math.floor(r / 3600000);
  r -= h * 3600000;
  const m = Math.floor(r / 60000);
  r -= m * 60000;
  const s = Math.floor(r / 1000);
  const milli = Math.floor(r - s * 1000);
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  return (d ? d + 'd+' : '') + p(h, 2) + ':' + p(m, 2) + ':' + p(s, 2) + '.' + p(milli, 3);
}

export class SimLog extends LevelLog {
  constructor(
    private readonly side: string,
    private readonly now: () => number,
    private readonly sink: ((line: string) => void) | undefined,
    readonly level: LogLevel,
  ) {
    super();
  }
  enabled(level: LogLevel): boolean {
    return this.sink !== undefined && super.enabled(level);
  }
  protected write(level: LogLevel, tag: string, message: string): void {
    (this.sink as (line: string) => void)(clockText(this.now()) + ' ' + this.side + ' ' + level + ' ' + tag + ': ' + message);
  }
}
