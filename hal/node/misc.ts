// The small parts of the Node HAL: randomness, a console log, power and a link that is always there.

import { randomBytes } from 'node:crypto';
import { LevelLog } from '../level-log';
import type { Link, LinkHandler, LinkKind, LogLevel, Power, Random, SleepMode, WakeCause } from '../types';

/** Random from node:crypto. */
export class NodeRandom implements Random {
  next(): number {
    return randomBytes(4).readUInt32BE(0) / 4294967296;
  }
}

/** Log to the console (stderr for warn/error) with a timestamp, above a level. */
export class ConsoleLog extends LevelLog {
  constructor(public level: LogLevel = 'info') {
    super();
  }
  protected write(level: LogLevel, tag: string, message: string): void {
    const line = new Date().toISOString() + ' ' + level.toUpperCase() + ' ' + tag + ': ' + message;
    if (level === 'warn' || level === 'error') console.error(line);
    else console.log(line);
  }
}

/** Power on a desktop: sleeps are recorded (and logged by the caller), never taken. */
export class NodePower implements Power {
  readonly sleeps: Array<{ mode: SleepMode; durationMs: number }> = [];
  constructor(
    private readonly cause: WakeCause = 'power-on',
    private readonly battery?: number,
  ) {}
  sleep(mode: SleepMode, durationMs: number): void {
    this.sleeps.push({ mode, durationMs });
  }
  wakeCause(): WakeCause {
    return this.cause;
  }
  batteryMv(): number | undefined {
    return this.battery;
  }
}

/**
 * The desktop's "radio": the host's network is assumed present. up() reports onUp on the next turn,
 * down() reports onDown('requested'). Events are deferred with setImmediate.
 */
export class NodeLink implements Link {
  readonly kind: LinkKind = 'ethernet';
  private handler: LinkHandler | undefined;
  private state: 'down' | 'attaching' | 'up' = 'down';
  private epoch = 0;
  constructor(private readonly id: string = 'desktop') {}
  setHandler(handler: LinkHandler): void {
    this.handler = handler;
  }
  up(): void {
    if (this.state !== 'down') return;
    this.state = 'attaching';
    const e = ++this.epoch;
    setImmediate(() => {
      if (this.epoch !== e || this.state !== 'attaching') return;
      this.state = 'up';
      if (this.handler) this.handler.onUp();
    });
  }
  down(): void {
    if (this.state === 'down') return;
    this.state = 'down';
    const e = ++this.epoch;
    setImmediate(() => {
      if (this.epoch === e && this.handler) this.handler.onDown('requested');
    });
  }
  isUp(): boolean {
    return this.state === 'up';
  }
  signal(): number | undefined {
    return undefined;
  }
  networkId(): string {
    return this.id;
  }
}
