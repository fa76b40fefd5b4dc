// Cellular modem driver for the SIMCom SIM7000 family (LTE-M/NB-IoT) and SIM800 (2G) over a UART, with
// the same Link and Transport contracts as Wi-Fi (hal/types). It uses the TCP/IP command set both
// modules share (SIM800 "TCPIP Application Note", SIM7000 "TCPIP Application Note"):
//
//   power-on   AT probe; no answer -> PWRKEY pulse, poll AT; still none -> RESET pulse, poll AT;
//              still none -> PWRKEY again, poll AT; still none -> onDown('error: modem not responding')
//   handshake  ATE0, AT+CMEE=2, AT+CPIN? (waits for READY)
//   register   AT+CREG? (and AT+CEREG? on SIM7000) polled until home (1) or roaming (5); denied (3)
//              -> 'error: registration denied'; not within regTimeoutMs -> 'no-network'
//   PDP        AT+CIPSHUT, AT+CIPMUX=0, AT+CIPRXGET=1 (manual receive), AT+CSTT="apn","user","pwd",
//              AT+CIICR, AT+CIFSR (the IP) -> onUp
//   TCP        AT+CIPSTART="TCP","host",port -> OK ... "CONNECT OK" | "CONNECT FAIL";
//              AT+CIPSEND=<n> -> "> " -> bytes -> "SEND OK"; URC "+CIPRXGET: 1" (data waiting) ->
//              AT+CIPRXGET=2,<max> -> "+CIPRXGET: 2,<n>,<left>" + n raw bytes; URC "CLOSED" (peer
//              closed); AT+CIPCLOSE=1; URC "+PDP: DEACT" (network dropped the context) -> link lost
//   signal     AT+CSQ -> dBm = -113 + 2 * rssi (99 = unknown)
//   sleep      AT+CPSMS (PSM: periodic TAU, active time), AT+CEDRXS (eDRX)
//   recovery   a command timeout is followed by an AT probe; stuckAfter consecutive timeouts (default
//              3) -> the connection gets onError + onClose, the
//              link onDown('error: modem not responding'), then a RESET pin pulse; the next up()
//              starts again from the AT probe.
// TLS is not offered over the modem (the modules' own TLS needs certificates loaded into the modem):
// open() with tls fails with a 'tls' error.

import type { Link, LinkHandler, LinkKind, Log, OpenOptions, TimerHost, Transport, TransportError, TransportErrorCode, TransportHandler } from '../types';
import { AtEngine } from './at';
import type { AtCallback, Uart } from './at';

export interface CellularOptions {
  uart: Uart;
  timers: TimerHost;
  /** Espruino's E (toString / toUint8Array). */
  E: any;
  apn: string;
  user?: string;
  password?: string;
  /** 'sim7000' (default: also polls AT+CEREG) or 'sim800'. */
  model?: 'sim7000' | 'sim800';
  /** digitalWrite(pin, value). Without it (or the pins) power-on and reset are skipped. */
  setPin?: (pin: any, value: number) => void;
  pwrkeyPin?: any;
  resetPin?: any;
  /** Pin level that presses PWRKEY / RESET (default 0: the module's own pins are active low). */
  pwrkeyActive?: number;
  resetActive?: number;
  /** PWRKEY press (default 1200 ms), RESET press (default 300 ms). */
  pwrkeyMs?: number;
  resetMs?: number;
  /** Wait after a PWRKEY/RESET press before polling AT (default 2500 ms), and AT polls (default 10 x 1 s). */
  bootMs?: number;
  bootPolls?: number;
  /** Default command timeout (2000 ms). */
  cmdTimeoutMs?: number;
  /** Registration: give up after (default 180000 ms), poll every (default 2000 ms). */
  regTimeoutMs?: number;
  regPollMs?: number;
  /** Consecutive command timeouts that mean the modem is stuck (default 3). */
  stuckAfter?: number;
  /** Transport write() returns false above this many unsent bytes (default 4096). */
  highWaterBytes?: number;
  /** Bytes per AT+CIPSEND (default 1024) and per AT+CIPRXGET=2 read (default 1024). */
  maxSendBytes?: number;
  maxReadBytes?: number;
  /** down() also powers the modem off with AT+CPOWD=1 (default true). */
  powerOffOnDown?: boolean;
  log?: Log;
}

/** Smallest unit (pairs: seconds per step, unit code) whose 5-bit count reaches `sec`. */
function timerBits(sec: number, units: number[]): string {
  let i = 0;
  while (i < units.length - 2 && Math.ceil(sec / units[i]) > 31) i += 2;
  const v = Math.min(31, Math.max(0, Math.ceil(sec / units[i])));
  return ('00' + units[i + 1].toString(2)).substr(-3) + ('0000' + v.toString(2)).substr(-5);
}

/** 3GPP TS 24.008 GPRS Timer 3 (T3412 extended, periodic TAU) as the 8-bit string AT+CPSMS takes. */
export function psmTauBits(sec: number): string {
  return timerBits(sec, [2, 3, 30, 4, 60, 5, 600, 0, 3600, 1, 36000, 2, 1152000, 6]);
}

/** 3GPP TS 24.008 GPRS Timer 2 (T3324, active time) as the 8-bit string AT+CPSMS takes. */
export function psmActiveBits(sec: number): string {
  return timerBits(sec, [2, 0, 60, 1, 360, 2]);
}

/** AT+CSQ rssi (0..31, 99 unknown) -> dBm. */
export function csqToDbm(rssi: number): number | undefined {
  return rssi >= 0 && rssi <= 31 ? -113 + 2 * rssi : undefined;
}

/** The registration status in a +CREG:/+CEREG: query reply ("+CREG: 0,5" -> 5), or -1. */
export function regStatus(lines: string[], prefix: string): number {
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].indexOf(prefix) !== 0) continue;
    const p = lines[i].substr(prefix.length).split(',');
    return parseInt(p.length > 1 ? p[1] : p[0], 10);
  }
  return -1;
}

function SEND_FINAL(l: string): number {
  return l === 'SEND OK' ? 1 : l === 'SEND FAIL' ? 2 : 0;
}

function shutFinal(l: string): number {
  return l === 'SHUT OK' ? 1 : 0;
}

function ipFinal(l: string): number {
  return /^\d+\.\d+\.\d+\.\d+$/.test(l) ? 1 : 0;
}


interface MAttempt {
  opened: boolean;
  closed: boolean;
  ended: boolean;
  errored: boolean;
  /** Peer closed while a read was running: end after it. */
  remote: boolean;
  reading: boolean;
  left: number;
  out: string[];
  sending: boolean;
  pending: number;
  needDrain: boolean;
}

/** The modem's one TCP connection as a hal Transport. */
export class ModemTransport implements Transport {
  private m_: CellularModem;
  private h_: TransportHandler | undefined;
  cur: MAttempt | undefined;

  constructor(m: CellularModem) {
    this.m_ = m;
    this.h_ = undefined;
    this.cur = undefined;
  }

  setHandler(handler: TransportHandler): void {
    this.h_ = handler;
  }

  open(o: OpenOptions): void {
    if (this.h_ === undefined) throw new Error('transport: no handler');
    if (this.cur !== undefined) throw new Error('transport: previous connection not closed');
    const a: MAttempt = {
      opened: false, closed: false, ended: false, errored: false, remote: false, reading: false,
      left: 0, out: [], sending: false, pending: 0, needDrain: false,
    };
    this.cur = a;
    const self = this;
    let err: TransportError | undefined;
    if (!this.m_.isUp()) err = { code: 'unreachable', message: 'cellular link is down' };
    else if (o.tls !== undefined) err = { code: 'tls', message: 'TLS is not supported over the cellular modem' };
    if (err !== undefined) {
      const e = err;
      this.m_.timers.set(0, function () {
        self.finish_(a, e);
      });
      return;
    }
    this.m_.at('AT+CIPSTART="TCP","' + o.host + '",' + o.port, 10000, function (ok, lines, fin) {
      if (!ok) self.finish_(a, { code: 'io', message: 'AT+CIPSTART: ' + fin });
    });
  }

  write(bytes: Uint8Array): boolean {
    const a = this.cur;
    if (a === undefined || !a.opened || a.closed || a.ended) return false;
    if (bytes.length === 0) return true;
    a.out.push(this.m_.E.toString(bytes));
    a.pending += bytes.length;
    this.pump_(a);
    if (a.pending > this.m_.o.highWaterBytes) {
      a.needDrain = true;
      return false;
    }
    return true;
  }

  close(): void {
    const a = this.cur;
    if (a === undefined || a.closed) return;
    a.closed = true;
    a.out = [];
    if (!a.ended) {
      a.ended = true;
      if (this.m_.isUp()) {
        this.m_.at('AT+CIPCLOSE=1', 5000, undefined, undefined, function (l) {
          return l === 'CLOSE OK' ? 1 : 0;
        });
      }
      const self = this;
      this.m_.timers.set(0, function () {
        self.deliverClose_(a);
      });
    }
  }

  private pump_(a: MAttempt): void {
    if (a.sending || a.out.length === 0 || a.ended) return;
    const max = this.m_.o.maxSendBytes;
    let s = a.out[0];
    if (s.length > max) {
      a.out[0] = s.substr(max);
      s = s.substr(0, max);
    } else a.out.shift();
    a.sending = true;
    const self = this;
    this.m_.at('AT+CIPSEND=' + s.length, 20000, function (ok, lines, fin) {
      a.sending = false;
      if (self.cur !== a || a.ended) return;
      if (!ok) {
        self.finish_(a, { code: 'io', message: 'AT+CIPSEND: ' + fin });
        self.m_.at('AT+CIPCLOSE=1', 5000);
        return;
      }
      a.pending -= s.length;
      if (a.out.length > 0) self.pump_(a);
      else if (a.needDrain) {
        a.needDrain = false;
        (self.h_ as TransportHandler).onDrain();
      }
    }, s, SEND_FINAL);
  }

  // ---- from the modem's URC hook ----

  connectResult(ok: boolean, line: string): void {
    const a = this.cur;
    if (a === undefined || a.opened || a.ended) return;
    if (!ok) {
      this.finish_(a, { code: 'io', message: line });
      return;
    }
    a.opened = true;
    (this.h_ as TransportHandler).onOpen();
  }

  readable(): void {
    const a = this.cur;
    if (a !== undefined && a.opened && !a.ended) this.read_(a);
  }

  private read_(a: MAttempt): void {
    if (a.reading) return;
    a.reading = true;
    const self = this;
    this.m_.at('AT+CIPRXGET=2,' + this.m_.o.maxReadBytes, 5000, function (ok) {
      a.reading = false;
      if (self.cur !== a || a.ended) return;
      if (a.remote) self.finish_(a, undefined);
      else if (ok && a.left > 0) self.read_(a);
    });
  }

  /** "+CIPRXGET: 2,<n>,<left>": n bytes follow. */
  rxHeader(left: number): void {
    if (this.cur !== undefined) this.cur.left = left;
  }

  data(d: string): void {
    const a = this.cur;
    if (a !== undefined && a.opened && !a.closed && !a.ended) (this.h_ as TransportHandler).onData(this.m_.E.toUint8Array(d));
  }

  remoteClosed(): void {
    const a = this.cur;
    if (a === undefined || !a.opened || a.ended) return;
    // data that came before the FIN may still wait in the modem: one last read, then the end
    a.remote = true;
    this.read_(a);
  }

  /** The link went away under the connection. */
  lost(message: string): void {
    const a = this.cur;
    if (a === undefined || a.ended) return;
    const code: TransportErrorCode = a.opened ? 'reset' : 'unreachable';
    this.finish_(a, { code: code, message: message });
  }

  private finish_(a: MAttempt, err: TransportError | undefined): void {
    if (a.ended) return;
    a.ended = true;
    if (err !== undefined && !a.errored && !a.closed) {
      a.errored = true;
      if (this.cur === a) (this.h_ as TransportHandler).onError(err);
    }
    this.deliverClose_(a);
  }

  private deliverClose_(a: MAttempt): void {
    if (this.cur !== a) return;
    this.cur = undefined;
    (this.h_ as TransportHandler).onClose();
  }
}

interface Opts {
  apn: string;
  user: string;
  password: string;
  sim800: boolean;
  setPin: ((pin: any, value: number) => void) | undefined;
  pwrkeyPin: any;
  resetPin: any;
  pwrkeyActive: number;
  resetActive: number;
  pwrkeyMs: number;
  resetMs: number;
  bootMs: number;
  bootPolls: number;
  cmdTimeoutMs: number;
  regTimeoutMs: number;
  regPollMs: number;
  stuckAfter: number;
  highWaterBytes: number;
  maxSendBytes: number;
  maxReadBytes: number;
  powerOffOnDown: boolean;
}

function num(v: number | undefined, d: number): number {
  return v !== undefined ? v : d;
}

/**
 * The modem: a hal Link (attach = power-on, SIM, registration, PDP) with its Transport in
 * `transport`. Also: at() for any other command, setPsm/setEdrx, powerOff.
 */
export class CellularModem implements Link {
  readonly kind: LinkKind;
  readonly transport: ModemTransport;
  readonly timers: TimerHost;
  readonly E: any;
  readonly o: Opts;
  private eng_: AtEngine;
  private log_: Log | undefined;
  private h_: LinkHandler | undefined;
  private st_: number; // 0 down, 1 attaching, 2 up
  private epoch_: number;
  /** Timeouts are expected (probing a modem that may be off): no stuck recovery. */
  private booting_: boolean;
  /** We asked for the power down: "NORMAL POWER DOWN" is an answer, not news. */
  private poweringDown_: boolean;
  private dbm_: number | undefined;
  private csqFresh_: boolean;
  /** Recoveries from a stuck modem (RESET pulses). */
  resets: number;

  constructor(options: CellularOptions) {
    const o = options;
    this.kind = 'cellular';
    this.timers = o.timers;
    this.E = o.E;
    this.log_ = o.log;
    this.o = {
      apn: o.apn,
      user: o.user || '',
      password: o.password || '',
      sim800: o.model === 'sim800',
      setPin: o.setPin,
      pwrkeyPin: o.pwrkeyPin,
      resetPin: o.resetPin,
      pwrkeyActive: num(o.pwrkeyActive, 0),
      resetActive: num(o.resetActive, 0),
      pwrkeyMs: num(o.pwrkeyMs, 1200),
      resetMs: num(o.resetMs, 300),
      bootMs: num(o.bootMs, 2500),
      bootPolls: num(o.bootPolls, 10),
      cmdTimeoutMs: num(o.cmdTimeoutMs, 2000),
      regTimeoutMs: num(o.regTimeoutMs, 180000),
      regPollMs: num(o.regPollMs, 2000),
      stuckAfter: num(o.stuckAfter, 3),
      highWaterBytes: num(o.highWaterBytes, 4096),
      maxSendBytes: num(o.maxSendBytes, 1024),
      maxReadBytes: num(o.maxReadBytes, 1024),
      powerOffOnDown: o.powerOffOnDown !== false,
    };
    this.h_ = undefined;
    this.st_ = 0;
    this.epoch_ = 0;
    this.booting_ = false;
    this.poweringDown_ = false;
    this.dbm_ = undefined;
    this.csqFresh_ = false;
    this.resets = 0;
    this.transport = new ModemTransport(this);
    const self = this;
    this.eng_ = new AtEngine(o.uart, o.timers);
    this.eng_.urc = function (line) {
      return self.urc_(line);
    };
    this.eng_.onRaw = function (d) {
      self.transport.data(d);
    };
    if (this.log_ !== undefined && this.log_.enabled('debug')) {
      const log = this.log_;
      this.eng_.trace = function (dir, s) {
        log.debug('modem', dir + ' ' + (s.indexOf('AT+CSTT=') === 0 ? 'AT+CSTT=<apn, credentials>' : s));
      };
    }
  }

  /** Send any AT command (queued behind the driver's own). Timeout default cmdTimeoutMs. */
  at(c: string, timeoutMs?: number, cb?: AtCallback, prompt?: string, final?: (line: string) => number): void {
    const self = this;
    this.eng_.cmd(c, timeoutMs || this.o.cmdTimeoutMs, function (ok, lines, fin) {
      if (fin === 'TIMEOUT' && !self.booting_) {
        if (self.eng_.timeouts >= self.o.stuckAfter) {
          self.stuck_();
          return;
        }
        // is it the modem or just this command? a quick AT tells (counts towards stuckAfter)
        if (self.eng_.idle()) self.at('AT', 1000);
      }
      if (cb !== undefined) cb(ok, lines, fin);
    }, prompt, final);
  }

  setHandler(handler: LinkHandler): void {
    this.h_ = handler;
  }

  up(): void {
    if (this.st_ !== 0) return;
    this.st_ = 1;
    const ep = ++this.epoch_;
    const self = this;
    this.booting_ = true;
    const o = this.o;
    // AT; else PWRKEY (power on); else RESET (hung); else PWRKEY again (the first press may have
    // switched a hung modem off)
    this.poll_(ep, 2, function (ok) {
      if (ok) return self.init_(ep);
      self.press_(ep, o.pwrkeyPin, o.pwrkeyActive, o.pwrkeyMs, function (ok2) {
        if (ok2) return self.init_(ep);
        self.press_(ep, o.resetPin, o.resetActive, o.resetMs, function (ok3) {
          if (ok3) return self.init_(ep);
          self.press_(ep, o.pwrkeyPin, o.pwrkeyActive, o.pwrkeyMs, function (ok4) {
            if (ok4) self.init_(ep);
            else self.fail_(ep, 'error: modem not responding');
          });
        });
      });
    });
  }

  down(): void {
    if (this.st_ === 0) return;
    this.st_ = 0;
    const ep = ++this.epoch_;
    this.booting_ = false;
    this.at('AT+CIPSHUT', 10000, undefined, undefined, shutFinal);
    if (this.o.powerOffOnDown) this.powerOff();
    const self = this;
    this.timers.set(0, function () {
      self.transport.lost('cellular link down');
      if (self.epoch_ === ep && self.h_ !== undefined) self.h_.onDown('requested');
    });
  }

  isUp(): boolean {
    return this.st_ === 2;
  }

  /** Last AT+CSQ as dBm while up; refreshed in the background when older than 30 s. */
  signal(): number | undefined {
    if (this.st_ !== 2) return undefined;
    if (!this.csqFresh_ && this.eng_.idle()) this.csq_(undefined);
    return this.dbm_;
  }

  networkId(): string {
    return this.o.apn;
  }

  /** AT+CPOWD=1 (normal power down). */
  powerOff(cb?: (ok: boolean) => void): void {
    this.poweringDown_ = true;
    const self = this;
    this.at('AT+CPOWD=1', 5000, function (ok) {
      self.poweringDown_ = false;
      if (cb !== undefined) cb(ok);
    }, undefined, function (l) {
      return l.indexOf('POWER DOWN') >= 0 ? 1 : 0;
    });
  }

  /**
   * PSM: on with a periodic TAU of `tauSec` and an active time of `activeSec` (AT+CPSMS=1,,,...), or
   * off when tauSec is 0. The network may grant other values.
   */
  setPsm(tauSec: number, activeSec: number, cb?: (ok: boolean) => void): void {
    const c = tauSec > 0 ? 'AT+CPSMS=1,,,"' + psmTauBits(tauSec) + '","' + psmActiveBits(activeSec) + '"' : 'AT+CPSMS=0';
    this.at(c, 5000, function (ok) {
      if (cb !== undefined) cb(ok);
    });
  }

  /** eDRX on for access technology `act` (4 = LTE-M, 5 = NB-IoT) with cycle code 0..15, or off (code < 0). */
  setEdrx(act: number, code: number, cb?: (ok: boolean) => void): void {
    const c = code >= 0 ? 'AT+CEDRXS=1,' + act + ',"' + ('000' + code.toString(2)).substr(-4) + '"' : 'AT+CEDRXS=0';
    this.at(c, 5000, function (ok) {
      if (cb !== undefined) cb(ok);
    });
  }

  // ---- attach ----

  private csq_(cb: (() => void) | undefined): void {
    const self = this;
    this.at('AT+CSQ', 2000, function (ok, lines) {
      for (let i = 0; i < lines.length; i++) {
        if (lines[i].indexOf('+CSQ:') === 0) self.dbm_ = csqToDbm(parseInt(lines[i].substr(5), 10));
      }
      self.csqFresh_ = true;
      self.timers.set(30000, function () {
        self.csqFresh_ = false;
      });
      if (cb !== undefined) cb();
    });
  }

  /** Send AT up to `tries` times (1 s each); cb(true) at the first OK. */
  private poll_(ep: number, tries: number, cb: (ok: boolean) => void): void {
    const self = this;
    this.at('AT', 1000, function (ok) {
      if (ep !== self.epoch_) return;
      if (ok) cb(true);
      else if (tries > 1) self.poll_(ep, tries - 1, cb);
      else cb(false);
    });
  }

  /** Press a pin (PWRKEY or RESET) for `ms`, wait bootMs, poll AT. cb(false) without the pin. */
  private press_(ep: number, pin: any, active: number, ms: number, cb: (ok: boolean) => void): void {
    const set = this.o.setPin;
    if (set === undefined || pin === undefined) {
      cb(false);
      return;
    }
    const self = this;
    if (this.log_ !== undefined) this.log_.info('modem', 'pressing ' + (pin === this.o.resetPin ? 'RESET' : 'PWRKEY'));
    this.eng_.act(function () {
      set(pin, active);
    }, ms);
    this.eng_.act(function () {
      set(pin, active ? 0 : 1);
    }, this.o.bootMs);
    this.poll_(ep, this.o.bootPolls, cb);
  }

  private init_(ep: number): void {
    this.booting_ = false;
    const self = this;
    this.at('ATE0', 0, function () {
      self.at('AT+CMEE=2', 0, function () {
        self.sim_(ep, 10);
      });
    });
  }

  private sim_(ep: number, tries: number): void {
    const self = this;
    this.at('AT+CPIN?', 5000, function (ok, lines) {
      if (ep !== self.epoch_) return;
      let state = 'no answer';
      for (let i = 0; i < lines.length; i++) if (lines[i].indexOf('+CPIN:') === 0) state = lines[i].substr(6).trim();
      if (state === 'READY') self.register_(ep, 0);
      else if (tries > 1) {
        self.timers.set(1000, function () {
          if (ep === self.epoch_) self.sim_(ep, tries - 1);
        });
      } else self.fail_(ep, 'error: sim ' + state);
    });
  }

  private register_(ep: number, waitedMs: number): void {
    const self = this;
    this.at('AT+CREG?', 0, function (ok, lines) {
      if (ep !== self.epoch_) return;
      const creg = regStatus(lines, '+CREG:');
      if (self.o.sim800) self.registered_(ep, waitedMs, creg, -1);
      else {
        self.at('AT+CEREG?', 0, function (ok2, lines2) {
          if (ep === self.epoch_) self.registered_(ep, waitedMs, creg, regStatus(lines2, '+CEREG:'));
        });
      }
    });
  }

  private registered_(ep: number, waitedMs: number, a: number, b: number): void {
    if (a === 1 || a === 5 || b === 1 || b === 5) {
      this.pdp_(ep);
      return;
    }
    if (a === 3 && b !== 2) return this.fail_(ep, 'error: registration denied');
    if (waitedMs >= this.o.regTimeoutMs) return this.fail_(ep, 'no-network');
    const self = this;
    this.timers.set(this.o.regPollMs, function () {
      if (ep === self.epoch_) self.register_(ep, waitedMs + self.o.regPollMs);
    });
  }

  private pdp_(ep: number): void {
    const o = this.o;
    const steps: any[] = [
      ['AT+CIPSHUT', 65000, shutFinal],
      ['AT+CIPMUX=0', 0],
      ['AT+CIPRXGET=1', 0],
      ['AT+CSTT="' + o.apn + '","' + o.user + '","' + o.password + '"', 0],
      ['AT+CIICR', 85000],
      ['AT+CIFSR', 10000, ipFinal],
    ];
    const self = this;
    this.seq_(ep, steps, 0, function () {
      self.csq_(function () {
        if (ep !== self.epoch_ || self.st_ !== 1) return;
        self.st_ = 2;
        if (self.log_ !== undefined) self.log_.info('modem', 'up, ' + self.dbm_ + ' dBm');
        if (self.h_ !== undefined) self.h_.onUp();
      });
    });
  }

  private seq_(ep: number, steps: any[], i: number, done: () => void): void {
    if (i >= steps.length) {
      done();
      return;
    }
    const s = steps[i];
    const self = this;
    this.at(s[0], s[1], function (ok, lines, fin) {
      if (ep !== self.epoch_) return;
      if (!ok) self.fail_(ep, 'error: ' + s[0] + ' -> ' + fin);
      else self.seq_(ep, steps, i + 1, done);
    }, undefined, s[2]);
  }

  private fail_(ep: number, reason: string): void {
    if (ep !== this.epoch_ || this.st_ === 0) return;
    this.st_ = 0;
    this.epoch_++;
    this.booting_ = false;
    if (this.log_ !== undefined) this.log_.warn('modem', 'down: ' + reason);
    this.transport.lost(reason);
    if (this.h_ !== undefined) this.h_.onDown(reason);
  }

  /** The modem stopped answering: report, then pulse RESET (the next up() starts from the probe). */
  private stuck_(): void {
    this.eng_.flush();
    this.resets++;
    if (this.log_ !== undefined) this.log_.error('modem', 'not responding: resetting');
    this.fail_(this.epoch_, 'error: modem not responding');
    this.transport.lost('modem not responding');
    this.eng_.timeouts = 0;
    const set = this.o.setPin;
    const pin = this.o.resetPin;
    if (set !== undefined && pin !== undefined) {
      const active = this.o.resetActive;
      this.eng_.act(function () {
        set(pin, active);
      }, this.o.resetMs);
      this.eng_.act(function () {
        set(pin, active ? 0 : 1);
      }, this.o.bootMs);
    }
  }

  private urc_(line: string): number {
    const t = this.transport;
    let l = line;
    if (/^\d+, /.test(l)) l = l.substr(l.indexOf(' ') + 1); // "0, CLOSED" (multi-connection form)
    if (l.indexOf('+CIPRXGET: 1') === 0) {
      t.readable();
      return 0;
    }
    if (l.indexOf('+CIPRXGET: 2,') === 0) {
      const p = l.substr(13).split(',');
      t.rxHeader(parseInt(p[1], 10) || 0);
      const n = parseInt(p[0], 10);
      return n > 0 ? n : 0;
    }
    if (l === 'CONNECT OK') t.connectResult(true, l);
    else if (l === 'CONNECT FAIL' || l === 'ALREADY CONNECT') t.connectResult(false, l);
    else if (l === 'CLOSED') t.remoteClosed();
    else if (l === '+PDP: DEACT') this.fail_(this.epoch_, 'lost');
    else if (l.indexOf('POWER DOWN') >= 0 || l === 'RDY') {
      if (this.poweringDown_ || this.booting_) return -1;
      this.fail_(this.epoch_, 'error: modem restarted (' + l + ')');
    } else return -1;
    return 0;
  }
}
