// A scripted radio link for tests. up() starts an attach; the test completes it (attach()), fails it
// (fail(reason)) or lets it complete by itself after autoUpMs. lose(reason) drops an established link.
// Events go through the TimerHost (the VirtualClock), never synchronously.

import type { Link, LinkHandler, LinkKind, TimerHost } from '../types';

export interface ScriptedLinkOptions {
  kind?: LinkKind;
  networkId?: string;
  /** dBm while up. */
  signal?: number;
  /** If set, every attach completes by itself after this many ms (otherwise call attach()). */
  autoUpMs?: number;
  /** If set (with autoUpMs), attaches fail with this reason instead of completing. */
  failReason?: string;
}

export type LinkState = 'down' | 'attaching' | 'up';

export class ScriptedLink implements Link {
  readonly kind: LinkKind;
  private handler: LinkHandler | undefined;
  /** Current state as the link itself sees it (changes when events are delivered). */
  state: LinkState = 'down';
  /** Bumped at every up()/down()/loss so stale scheduled events are dropped. */
  private epoch = 0;
  private sig: number | undefined;
  private id: string;
  upCalls = 0;
  downCalls = 0;
  /** Every event delivered, e.g. 'up', 'down:lost'. */
  readonly events: string[] = [];

  constructor(
    private readonly timers: TimerHost,
    public options: ScriptedLinkOptions = {},
  ) {
    this.kind = options.kind ?? 'mock';
    this.sig = options.signal ?? -60;
    this.id = options.networkId ?? 'mocknet';
  }

  setHandler(handler: LinkHandler): void {
    this.handler = handler;
  }

  up(): void {
    this.upCalls++;
    if (this.state !== 'down') return;
    this.state = 'attaching';
    const epoch = ++this.epoch;
    const o = this.options;
    if (o.autoUpMs !== undefined) {
      this.timers.set(o.autoUpMs, () => {
        if (this.epoch !== epoch || this.state !== 'attaching') return;
        if (o.failReason !== undefined) this.deliverDown(o.failReason);
        else this.deliverUp();
      });
    }
  }

  down(): void {
    this.downCalls++;
    if (this.state === 'down') return;
    this.state = 'down';
    const epoch = ++this.epoch;
    this.timers.set(0, () => {
      if (this.epoch !== epoch) return;
      this.emitDown('requested');
    });
  }

  isUp(): boolean {
    return this.state === 'up';
  }

  signal(): number | undefined {
    return this.state === 'up' ? this.sig : undefined;
  }

  networkId(): string {
    return this.id;
  }

  // ---- test side ----

  /** Complete a pending attach: onUp is delivered (next turn). */
  attach(): void {
    if (this.state !== 'attaching') throw new Error('ScriptedLink.attach: not attaching (state ' + this.state + ')');
    const epoch = this.epoch;
    this.timers.set(0, () => {
      if (this.epoch === epoch && this.state === 'attaching') this.deliverUp();
    });
  }

  /** Fail a pending attach or drop the link: onDown(reason) is delivered (next turn). */
  fail(reason: string): void {
    if (this.state === 'down') return;
    const epoch = ++this.epoch;
    this.timers.set(0, () => {
      if (this.epoch === epoch && this.state !== 'down') this.deliverDown(reason);
    });
  }

  /** Drop an established link (default reason 'lost'). */
  lose(reason?: string): void {
    this.fail(reason ?? 'lost');
  }

  setSignal(dbm: number | undefined): void {
    this.sig = dbm;
  }

  setNetworkId(id: string): void {
    this.id = id;
  }

  private deliverUp(): void {
    this.state = 'up';
    this.events.push('up');
    if (this.handler) this.handler.onUp();
  }

  private deliverDown(reason: string): void {
    this.state = 'down';
    this.emitDown(reason);
  }

  private emitDown(reason: string): void {
    this.events.push('down:' + reason);
    if (this.handler) this.handler.onDown(reason);
  }
}
