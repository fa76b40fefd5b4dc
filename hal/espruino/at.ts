// An AT command engine over a UART (Espruino Serial2 or a mock): one command at a time from a FIFO
// queue, a timeout per command (TimerHost), lines assembled across 'data' chunks of any size, control
// and non-ASCII noise dropped from lines, the "> " data prompt, raw binary reads of a known length
// (e.g. after "+CIPRXGET: 2,<n>,<left>"), and unsolicited result codes (URCs) handed to a hook.
// Queue items may also be actions (pin toggles) or pauses, so power sequences and polls keep order.
// The final lines are those of the SIMCom modules (OK, SEND OK, ...). The cellular modem (modem.ts)
// extends it and implements the hooks.

import type { TimerHandle, TimerHost } from '../types';

/** The UART: Espruino's Serial (setup elsewhere). Strings are binary. */
export interface Uart {
  write(data: string): void;
  on(event: 'data', cb: (data: string) => void): void;
}

/** The engine's options (the modem's extend them). */
export interface AtOptions {
  uart: Uart;
  timers: TimerHost;
  /** Timeout of a command queued without one (default 2000 ms). */
  cmdTimeoutMs?: number;
}

/** A command's outcome: ok, the lines it returned (info lines, not echo/URCs), its final line or 'TIMEOUT'. */
export type AtCallback = (ok: boolean, lines: string[], final: string) => void;

/** A queue item: a command, an action (run when the item starts) or, undefined, a pause. */
export type AtItem = string | (() => void) | undefined;

interface Item {
  /** The command, or '' for an action or a pause. */
  c: string;
  /** The action (a function), if any. */
  a: AtItem;
  /** Timeout (ms) or, for an action or pause, its length. */
  t: number;
  /** Data sent after the '>' prompt. */
  p: string | undefined;
  cb: AtCallback | undefined;
  lines: string[];
}

/**
 * URC hook: return -1 when the line is not a URC (it then belongs to the running command), 0 when
 * consumed, N > 0 when consumed and the next N bytes are raw data for `onRaw`.
 */
export type UrcHook = (line: string) => number;

// The hooks: set as properties, or implemented as methods by a subclass. urc is required, onRaw as
// soon as urc asks for raw bytes; timedOut (below) does nothing unless replaced.
export interface AtEngine {
  urc?(line: string): number;
  onRaw?(data: string): void;
}

export class AtEngine {
  o: AtOptions;
  timers_: TimerHost;
  /** Consecutive command timeouts (reset by any complete line). */
  timeouts_!: number;
  private q_!: Item[];
  private cur_?: Item | null;
  private timer_?: TimerHandle;
  private buf_!: string;
  /** Raw bytes expected (they wait in buf_ until all are there). */
  private raw_!: number;

  constructor(options: AtOptions) {
    this.o = options;
    this.timers_ = options.timers;
    this.flush();
    const self = this;
    // bytes from the UART
    options.uart.on('data', function (d: string) {
      self.buf_ += d;
      for (;;) {
        const b = self.buf_;
        const n = self.raw_;
        const it = self.cur_;
        if (n) {
          if (b.length < n) return;
          self.raw_ = 0;
          self.buf_ = b.substr(n);
          (self.onRaw as (data: string) => void)(b.substr(0, n));
          continue;
        }
        // the data prompt "> " (no line end), after nothing printable: send the payload
        if (it && it.p && /^[^!-~]*>/.test(b)) {
          self.buf_ = b.substr(b.indexOf('>') + 1);
          self.o.uart.write(it.p);
          it.p = '';
          continue;
        }
        const i = b.indexOf('\n');
        if (i < 0) return;
        self.buf_ = b.substr(i + 1);
        const line = b.substr(0, i).replace(/[^ -~]/g, '').trim();
        if (!line) continue;
        self.timeouts_ = 0;
        if (it && line === it.c) continue; // echo
        const r = (self.urc as UrcHook)(line);
        if (r > 0) self.raw_ = r;
        // (not a URC, nor noise between commands) final lines: success (OK, or what a command says
        // instead: SHUT OK, SEND OK, CLOSE OK, NORMAL POWER DOWN of AT+CPOWD=1, the IP address of
        // AT+CIFSR), failure (ERROR, +CME ERROR: ..., SEND FAIL); else an info line. (Espruino's
        // regular expressions ignore a `$` after a group of alternatives, fail on `^a|b` (but not on
        // `a|^b|^c`), `(x)?`, `{n}` and `(?:`: keep them simple; these two patterns are checked on the
        // interpreter.)
        if (r < 0 && it && it.c) {
          if (/POWER DOWN|^[A-Z ]*OK$|^\d+\.\d+\.\d+\.\d+$/.test(line)) self.next_(true, line);
          else if (/ERROR|FAIL/.test(line)) self.next_(false, line);
          else it.lines.push(line);
        }
      }
    });
  }

  /** Queue a command (timeout default cmdTimeoutMs), an action or a pause (of timeoutMs). `prompt`: data to send at the '>' prompt. */
  at(c: AtItem, timeoutMs?: number, cb?: AtCallback, prompt?: string): void {
    this.q_.push({ c: typeof c === 'string' ? c : '', a: c, t: timeoutMs || this.o.cmdTimeoutMs || 2000, p: prompt, cb: cb, lines: [] });
    this.next_();
  }

  /** Drop every queued and running item (their callbacks are not called) and the timeout count. */
  flush(): void {
    this.q_ = [];
    this.cur_ = null;
    this.buf_ = '';
    this.raw_ = 0;
    this.timeouts_ = 0;
    this.timers_.clear(this.timer_); // (a TimerHost ignores an undefined handle)
  }

  /** A command timed out (already counted in `timeouts_`); its callback follows. */
  timedOut(): void {}

  /** True when nothing is running or queued (items only wait behind a running one). */
  idle(): boolean {
    return !this.cur_;
  }

  /** With `final` (never ''): end the running item with that outcome. Then start the next item if none runs. */
  private next_(ok?: boolean, final?: string): void {
    const it = this.cur_ as Item;
    if (final) {
      this.cur_ = null;
      this.timers_.clear(this.timer_);
      // a timeout is counted (++ is never 0) and told to the hook, then the callback
      if (final === 'TIMEOUT' && ++this.timeouts_) this.timedOut();
      if (it.cb) it.cb(ok as boolean, it.lines, final);
    }
    if (this.cur_ || !this.q_.length) return;
    const n = (this.cur_ = this.q_.shift() as Item);
    // the end of its time: a command times out; an action or a pause is over
    this.timer_ = this.timers_.set(n.t, this.next_.bind(this, !n.c, n.c ? 'TIMEOUT' : 'done'));
    if (n.c) this.o.uart.write(n.c + '\r');
    else if (n.a) (n.a as () => void)();
  }
}
