// An AT command engine over a UART (Espruino Serial2 or a mock): one command at a time from a FIFO
// queue, a timeout per command (TimerHost), lines assembled across 'data' chunks of any size, control
// and non-ASCII noise dropped from lines, the "> " data prompt, raw binary reads of a known length
// (e.g. after "+CIPRXGET: 2,<n>,<left>"), and unsolicited result codes (URCs) handed to a hook.
// Queue items may also be actions (pin toggles) followed by a pause, so power sequences keep order.

import type { TimerHandle, TimerHost } from '../types';

/** The UART: Espruino's Serial (setup elsewhere). Strings are binary. */
export interface Uart {
  write(data: string): void;
  on(event: 'data', cb: (data: string) => void): void;
}

/** A command's outcome: ok, the lines it returned (info lines, not echo/URCs), its final line or 'TIMEOUT'. */
export type AtCallback = (ok: boolean, lines: string[], final: string) => void;

interface Item {
  /** Command text without CR; '' for an action item. */
  c: string;
  /** Timeout (ms) or, for an action, the pause after it. */
  t: number;
  /** Data sent after the '>' prompt. */
  p: string | undefined;
  /** Extra final lines: 1 = success, 2 = failure, 0 = not final. */
  f: ((line: string) => number) | undefined;
  a: (() => void) | undefined;
  cb: AtCallback | undefined;
  lines: string[];
}

/**
 * URC hook: return -1 when the line is not a URC (it then belongs to the running command), 0 when
 * consumed, N > 0 when consumed and the next N bytes are raw data for `onRaw`.
 */
export type UrcHook = (line: string) => number;

export class AtEngine {
  private uart: Uart;
  private timers: TimerHost;
  private q: Item[];
  private cur: Item | undefined;
  private timer: TimerHandle | undefined;
  private buf: string;
  private raw: number;
  private rawData: string;
  /** Consecutive command timeouts (reset by any complete line). */
  timeouts: number;
  urc: UrcHook | undefined;
  onRaw: ((data: string) => void) | undefined;
  /** Every line seen (for a debug log), or undefined. */
  trace: ((dir: string, s: string) => void) | undefined;

  constructor(uart: Uart, timers: TimerHost) {
    this.uart = uart;
    this.timers = timers;
    this.q = [];
    this.cur = undefined;
    this.timer = undefined;
    this.buf = '';
    this.raw = 0;
    this.rawData = '';
    this.timeouts = 0;
    this.urc = undefined;
    this.onRaw = undefined;
    this.trace = undefined;
    const self = this;
    uart.on('data', function (d: string) {
      self.input(d);
    });
  }

  /** Queue a command. `prompt`: data to send at the '>' prompt; `final`: extra final lines. */
  cmd(c: string, timeoutMs: number, cb?: AtCallback, prompt?: string, final?: (line: string) => number): void {
    this.q.push({ c: c, t: timeoutMs, p: prompt, f: final, a: undefined, cb: cb, lines: [] });
    this.next();
  }

  /** Queue an action (e.g. a pin change) and a pause of `pauseMs` after it. */
  act(a: () => void, pauseMs: number, cb?: AtCallback): void {
    this.q.push({ c: '', t: pauseMs, p: undefined, f: undefined, a: a, cb: cb, lines: [] });
    this.next();
  }

  /** Drop every queued and running item (their callbacks are not called). */
  flush(): void {
    this.q = [];
    this.cur = undefined;
    this.buf = '';
    this.raw = 0;
    this.rawData = '';
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
  }

  /** True when nothing is running or queued. */
  idle(): boolean {
    return this.cur === undefined && this.q.length === 0;
  }

  private next(): void {
    if (this.cur !== undefined || this.q.length === 0) return;
    const it = this.q.shift() as Item;
    this.cur = it;
    const self = this;
    this.timer = this.timers.set(it.t, function () {
      self.timer = undefined;
      if (self.cur !== it) return;
      if (it.a !== undefined) self.done(true, 'DONE');
      else {
        self.timeouts++;
        self.done(false, 'TIMEOUT');
      }
    });
    if (it.a !== undefined) it.a();
    else {
      if (this.trace) this.trace('>', it.c);
      this.uart.write(it.c + '\r');
    }
  }

  private done(ok: boolean, final: string): void {
    const it = this.cur as Item;
    this.cur = undefined;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    if (it.cb !== undefined) it.cb(ok, it.lines, final);
    this.next();
  }

  /** Bytes from the UART. */
  input(d: string): void {
    this.buf += d;
    for (;;) {
      if (this.raw > 0) {
        const n = Math.min(this.raw, this.buf.length);
        if (n === 0) return;
        this.rawData += this.buf.substr(0, n);
        this.buf = this.buf.substr(n);
        this.raw -= n;
        if (this.raw > 0) return;
        const data = this.rawData;
        this.rawData = '';
        if (this.onRaw !== undefined) this.onRaw(data);
        continue;
      }
      const it = this.cur;
      if (it !== undefined && it.p !== undefined) {
        const g = this.buf.indexOf('>');
        if (g >= 0 && /^[\r\n ]*$/.test(this.buf.substr(0, g))) {
          // the data prompt ("> ", no line end): send the payload
          this.buf = this.buf.substr(g + 1);
          if (this.buf.charAt(0) === ' ') this.buf = this.buf.substr(1);
          this.prompt(it);
          continue;
        }
      }
      const i = this.buf.indexOf('\n');
      if (i < 0) return;
      const line = this.buf.substr(0, i).replace(/[^\x20-\x7e]/g, '').trim();
      this.buf = this.buf.substr(i + 1);
      if (line.length > 0) this.line(line);
    }
  }

  private prompt(it: Item): void {
    const p = it.p as string;
    it.p = undefined;
    if (this.trace) this.trace('>', '<' + p.length + ' bytes>');
    this.uart.write(p);
  }

  private line(line: string): void {
    this.timeouts = 0;
    if (this.trace) this.trace('<', line);
    const it = this.cur;
    if (it !== undefined && it.a === undefined && line === it.c) return; // echo
    if (it !== undefined && it.p !== undefined && line.charAt(0) === '>') {
      this.prompt(it); // a prompt with noise before it
      return;
    }
    if (this.urc !== undefined) {
      const r = this.urc(line);
      if (r > 0) {
        this.raw = r;
        this.rawData = '';
      }
      if (r >= 0) return;
    }
    if (it === undefined || it.a !== undefined) return; // noise between commands
    let f = it.f !== undefined ? it.f(line) : 0;
    if (f === 0) {
      if (line === 'OK') f = 1;
      else if (line === 'ERROR' || line.indexOf('+CME ERROR') === 0 || line.indexOf('+CMS ERROR') === 0) f = 2;
    }
    if (f === 0) it.lines.push(line);
    else this.done(f === 1, line);
  }
}
