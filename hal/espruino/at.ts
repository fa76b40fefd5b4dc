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
  private uart_: Uart;
  private timers_: TimerHost;
  private q_: Item[];
  private cur_: Item | undefined;
  private timer_: TimerHandle | undefined;
  private buf_: string;
  private raw_: number;
  private rawData_: string;
  /** Consecutive command timeouts (reset by any complete line). */
  timeouts: number;
  urc: UrcHook | undefined;
  onRaw: ((data: string) => void) | undefined;
  /** Every line seen (for a debug log), or undefined. */
  trace: ((dir: string, s: string) => void) | undefined;

  constructor(uart: Uart, timers: TimerHost) {
    this.uart_ = uart;
    this.timers_ = timers;
    this.q_ = [];
    this.cur_ = undefined;
    this.timer_ = undefined;
    this.buf_ = '';
    this.raw_ = 0;
    this.rawData_ = '';
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
    this.q_.push({ c: c, t: timeoutMs, p: prompt, f: final, a: undefined, cb: cb, lines: [] });
    this.next_();
  }

  /** Queue an action (e.g. a pin change) and a pause of `pauseMs` after it. */
  act(a: () => void, pauseMs: number, cb?: AtCallback): void {
    this.q_.push({ c: '', t: pauseMs, p: undefined, f: undefined, a: a, cb: cb, lines: [] });
    this.next_();
  }

  /** Drop every queued and running item (their callbacks are not called). */
  flush(): void {
    this.q_ = [];
    this.cur_ = undefined;
    this.buf_ = '';
    this.raw_ = 0;
    this.rawData_ = '';
    if (this.timer_ !== undefined) this.timers_.clear(this.timer_);
    this.timer_ = undefined;
  }

  /** True when nothing is running or queued. */
  idle(): boolean {
    return this.cur_ === undefined && this.q_.length === 0;
  }

  private next_(): void {
    if (this.cur_ !== undefined || this.q_.length === 0) return;
    const it = this.q_.shift() as Item;
    this.cur_ = it;
    const self = this;
    this.timer_ = this.timers_.set(it.t, function () {
      self.timer_ = undefined;
      if (self.cur_ !== it) return;
      if (it.a !== undefined) self.done_(true, 'DONE');
      else {
        self.timeouts++;
        self.done_(false, 'TIMEOUT');
      }
    });
    if (it.a !== undefined) it.a();
    else {
      if (this.trace) this.trace('>', it.c);
      this.uart_.write(it.c + '\r');
    }
  }

  private done_(ok: boolean, final: string): void {
    const it = this.cur_ as Item;
    this.cur_ = undefined;
    if (this.timer_ !== undefined) this.timers_.clear(this.timer_);
    this.timer_ = undefined;
    if (it.cb !== undefined) it.cb(ok, it.lines, final);
    this.next_();
  }

  /** Bytes from the UART. */
  input(d: string): void {
    this.buf_ += d;
    for (;;) {
      if (this.raw_ > 0) {
        const n = Math.min(this.raw_, this.buf_.length);
        if (n === 0) return;
        this.rawData_ += this.buf_.substr(0, n);
        this.buf_ = this.buf_.substr(n);
        this.raw_ -= n;
        if (this.raw_ > 0) return;
        const data = this.rawData_;
        this.rawData_ = '';
        if (this.onRaw !== undefined) this.onRaw(data);
        continue;
      }
      const it = this.cur_;
      if (it !== undefined && it.p !== undefined) {
        const g = this.buf_.indexOf('>');
        if (g >= 0 && /^[\r\n ]*$/.test(this.buf_.substr(0, g))) {
          // the data prompt ("> ", no line end): send the payload
          this.buf_ = this.buf_.substr(g + 1);
          if (this.buf_.charAt(0) === ' ') this.buf_ = this.buf_.substr(1);
          this.prompt_(it);
          continue;
        }
      }
      const i = this.buf_.indexOf('\n');
      if (i < 0) return;
      const line = this.buf_.substr(0, i).replace(/[^\x20-\x7e]/g, '').trim();
      this.buf_ = this.buf_.substr(i + 1);
      if (line.length > 0) this.line_(line);
    }
  }

  private prompt_(it: Item): void {
    const p = it.p as string;
    it.p = undefined;
    if (this.trace) this.trace('>', '<' + p.length + ' bytes>');
    this.uart_.write(p);
  }

  private line_(line: string): void {
    this.timeouts = 0;
    if (this.trace) this.trace('<', line);
    const it = this.cur_;
    if (it !== undefined && it.a === undefined && line === it.c) return; // echo
    if (it !== undefined && it.p !== undefined && line.charAt(0) === '>') {
      this.prompt_(it); // a prompt with noise before it
      return;
    }
    if (this.urc !== undefined) {
      const r = this.urc(line);
      if (r > 0) {
        this.raw_ = r;
        this.rawData_ = '';
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
    else this.done_(f === 1, line);
  }
}
