// Cellular modem driver for the SIMCom SIM7000 family (LTE-M/NB-IoT) and SIM800 (2G) over a UART, with
// the same Link and Transport contracts as Wi-Fi (hal/types). It uses the TCP/IP command set both
// modules share (SIM800 "TCPIP Application Note", SIM7000 "TCPIP Application Note"):
//
//   power-on   AT probe; no answer -> PWRKEY pulse, poll AT; still none -> RESET pulse, poll AT;
//              still none -> PWRKEY again, poll AT; still none -> onDown('error: modem not responding')
//   handshake  ATE0, AT+CMEE=2, AT+CPIN? (waits for READY)
//   register   AT+CREG? and AT+CEREG? (a SIM800: AT+CREG? twice) polled until home (1) or roaming
//              (5); denied (3) -> 'error: registration denied'; not within regTimeoutMs -> 'no-network'
//   PDP        AT+CIPSHUT, AT+CIPMUX=0, AT+CIPRXGET=1 (manual receive), AT+CSTT="apn","user","pwd",
//              AT+CIICR, AT+CIFSR (the IP), AT+CSQ -> onUp
//   TCP        AT+CIPSTART="TCP","host",port -> OK ... "CONNECT OK" | "CONNECT FAIL";
//              AT+CIPSEND=<n> -> "> " -> bytes -> "SEND OK"; URC "+CIPRXGET: 1" (data waiting) ->
//              AT+CIPRXGET=2,<max> -> "+CIPRXGET: 2,<n>,<left>" + n raw bytes; URC "CLOSED" (peer
//              closed); AT+CIPCLOSE=1; URC "+PDP: DEACT" (network dropped the context) -> link lost
//   signal     AT+CSQ -> dBm = -113 + 2 * rssi (99 = unknown)
//   sleep      AT+CPSMS (PSM: periodic TAU, active time), AT+CEDRXS (eDRX, setEdrx())
//   down       AT+CIPSHUT, AT+CPOWD=1 -> onDown('requested')
//   recovery   a command timeout is followed by an AT probe; 3 consecutive timeouts -> the connection
//              gets onError + onClose, the link onDown('error: modem not responding'), then a RESET
//              pin pulse; the next up() starts again from the AT probe.
// TLS is not offered over the modem (the modules' own TLS needs certificates loaded into the modem):
// open() with tls fails with a 'tls' error.

import type { Link, LinkHandler, LinkKind, Log, OpenOptions, Transport, TransportErrorCode, TransportHandler } from '../types';
import { AtEngine } from './at';
import type { AtCallback, AtOptions } from './at';

/** The modem's options. A number left out (or 0) takes its default. */
export interface CellularOptions extends AtOptions {
  /** Espruino's E (toString / toUint8Array). */
  E: any;
  apn: string;
  user?: string;
  password?: string;
  /** 'sim7000' (default) or 'sim800' (2G only: polls AT+CREG? in place of AT+CEREG?). */
  model?: 'sim7000' | 'sim800';
  /** digitalWrite(pin, value). */
  setPin: (pin: any, value: number) => void;
  /** PWRKEY and RESET, active low as the modules' own pins. Without them power-on and reset are skipped. */
  pwrkeyPin?: any;
  resetPin?: any;
  /** Wait after a PWRKEY or RESET press (1200 ms) before polling AT (10 x 1 s): default 2500 ms. */
  bootMs?: number;
  /** Registration (polled every 2 s): give up after (default 180000 ms). */
  regTimeoutMs?: number;
  /** Transport write() returns false above this many unsent bytes (default 4096). */
  highWaterBytes?: number;
  /** Bytes per AT+CIPRXGET=2 read (default 1024; AT+CIPSEND sends at most 1024). */
  maxReadBytes?: number;
  /** Not used: the link's events tell what happens (the device logs them). */
  log?: Log;
}

/**
 * 3GPP TS 24.008 GPRS Timer 3 (T3412 extended, the periodic TAU) or, `active`, Timer 2 (T3324, the
 * active time) as the 8-bit string AT+CPSMS takes: "uuuvvvvv", the smallest unit whose 5-bit count
 * reaches `sec`.
 */
function timerBits(sec: number, active?: boolean): string {
  // seconds per step, from the smallest unit; the unit codes in that order
  const units = active ? [2, 60, 360] : [2, 30, 60, 600, 3600, 36000, 1152000];
  let i = 0;
  while (units[i + 1] && sec > 31 * units[i]) i++;
  return (256 + +(active ? i : '3450126'[i]) * 32 + Math.min(31, Math.ceil(sec / units[i]))).toString(2).substr(1);
}

/** 3GPP TS 24.008 GPRS Timer 3 (T3412 extended, periodic TAU) as the 8-bit string AT+CPSMS takes. */
export function psmTauBits(sec: number): string {
  return timerBits(sec);
}

/** 3GPP TS 24.008 GPRS Timer 2 (T3324, active time) as the 8-bit string AT+CPSMS takes. */
export function psmActiveBits(sec: number): string {
  return timerBits(sec, true);
}

/** AT+CSQ rssi (0..31, 99 unknown) -> dBm. */
export function csqToDbm(rssi: number): number | undefined {
  return rssi >= 0 && rssi <= 31 ? -113 + 2 * rssi : undefined;
}

/** The registration status in a +CREG:/+CEREG: query reply ("+CREG: 0,5" -> 5, "+CEREG: 2" -> 2), or -1. */
export function regStatus(lines: string[], prefix: string): number {
  for (let i = 0; i < lines.length; i++) if (lines[i].indexOf(prefix) === 0) return parseInt(lines[i].split(',')[1] || lines[i].substr(prefix.length));
  return -1;
}

/** eDRX on for access technology `act` (4 = LTE-M, 5 = NB-IoT) with cycle code 0..15, or off (code < 0). */
export function setEdrx(m: CellularModem, act: number, code: number, cb?: (ok: boolean) => void): void {
  m.at(code >= 0 ? 'AT+CEDRXS=1,' + act + ',"' + ('000' + code.toString(2)).substr(-4) + '"' : 'AT+CEDRXS=0', 5000, cb);
}

const STUCK = 'error: modem not responding';

/** Link states. */
const enum St {
  DOWN,
  /** down() called, onDown('requested') is coming. */
  CLOSING,
  /** Probing (and pressing keys): timeouts are expected, RDY / POWER DOWN are not news. */
  BOOT,
  ATTACH,
  UP,
}

/** The attach steps, in order (see attach_). */
const enum Step {
  PROBE,
  ATE0,
  CMEE,
  CPIN,
  CREG,
  CEREG,
  SHUT,
  MUX,
  RX_GET,
  CSTT,
  CIICR,
  CIFSR,
  CSQ,
}

/** A connection attempt's state (undefined: connecting). */
const enum Tcp {
  OPEN = 1,
  /** No more events but onClose (close() called, or over). */
  ENDED,
}

/** A connection attempt (flags start undefined: false). */
interface MAttempt {
  s?: Tcp;
  /** The peer closed: end once its last bytes are read. */
  remote?: boolean;
  /** The modem holds received bytes: read them. */
  rx?: boolean;
  /** A command of the attempt is in flight (they go one at a time). */
  inFlight?: boolean;
  /** Bytes not yet handed to AT+CIPSEND. */
  unsent: string;
  needDrain?: boolean;
  /** The result of every command of the attempt, and of its timers (then without arguments). */
  cb: AtCallback;
}

/**
 * The modem: a hal Link (attach = power-on, SIM, registration, PDP) and, as its own `transport`, the
 * hal Transport of its one TCP connection, over the AT engine (at() for any other command, queued
 * behind the driver's own).
 */
export class CellularModem extends AtEngine implements Link, Transport {
  readonly kind: LinkKind;
  readonly transport: Transport;
  declare o: CellularOptions;
  th_!: TransportHandler;
  lh_!: LinkHandler;
  /** Recoveries from a stuck modem (RESET pulses); counted in tests only. */
  resets!: number;
  /** The link state (undefined at first: DOWN too). */
  private st_!: St;
  /** Attach generation: a reply to an older one is ignored. */
  private epoch_: number;
  /**
   * Tries left of the attach step that repeats: probes (32 at first: a key is pressed at 30, 20 and
   * 10 left), SIM checks, registration polls.
   */
  private n_!: number;
  /** The CREG status, until CEREG's comes. */
  private creg_!: number;
  /** The last AT+CSQ rssi. */
  private rssi_?: number;
  /** The current connection attempt. */
  private tcp_?: MAttempt | null;

  constructor(options: CellularOptions) {
    super(options);
    this.kind = 'cellular';
    this.transport = this;
    this.epoch_ = 0;
    if (typeof WREN_DEVICE === 'undefined') this.resets = 0;
  }

  /** The Transport's handler, or the Link's: told apart by their events. */
  setHandler(handler: TransportHandler | LinkHandler): void {
    if ((handler as TransportHandler).onOpen) this.th_ = handler as TransportHandler;
    else this.lh_ = handler as LinkHandler;
  }

  // ---- Link

  up(): void {
    if (this.st_ > St.CLOSING) return; // attaching or up
    this.st_ = St.BOOT;
    this.n_ = 32;
    this.attach_(++this.epoch_, Step.PROBE);
  }

  down(): void {
    const self = this;
    if (!(this.st_ > St.CLOSING)) return; // down or going down
    this.epoch_++; // stops the attach
    this.st_ = St.CLOSING;
    this.at('AT+CIPSHUT', 10000);
    // onDown once the modem is off (or did not answer), unless up() came in between or the link failed meanwhile
    this.at('AT+CPOWD=1', 5000, function () {
      if (self.st_ === St.CLOSING) self.fail_('requested');
    });
  }

  isUp(): boolean {
    return this.st_ === St.UP;
  }

  /** The last AT+CSQ as dBm (-113 + 2 * rssi; 99: unknown) while up; each call refreshes it in the background. */
  signal(): number | undefined {
    const rssi = this.rssi_ as number;
    if (this.st_ !== St.UP) return undefined;
    if (this.idle()) this.attach_(this.epoch_, Step.CSQ);
    return rssi < 32 ? 2 * rssi - 113 : undefined;
  }

  networkId(): string {
    return this.o.apn;
  }

  /**
   * PSM: on with a periodic TAU of `tauSec` and an active time of `activeSec` (AT+CPSMS=1,,,...), or
   * off when tauSec is 0. The network may grant other values.
   */
  setPsm(tauSec: number, activeSec: number, cb?: (ok: boolean) => void): void {
    this.at('AT+CPSMS=' + (tauSec > 0 ? '1,,,"' + timerBits(tauSec) + '","' + timerBits(activeSec, true) + '"' : 0), 5000, cb);
  }

  /**
   * The attach, one step per command: attach_(ep, i) sends step i; its reply comes back as
   * attach_(ep, i, ok, lines, final), which picks the next step, a retry or the end.
   */
  private attach_(ep: number, i: Step, ok?: boolean, lines?: string[], fin?: string): void {
    if (ep !== this.epoch_) return; // a step of an attach that is over
    const o = this.o;
    // the commands after "AT" (a SIM800 is 2G only: its CEREG step asks CREG again)
    const cmd = 'AT' + ' E0 +CMEE=2 +CPIN? +CREG? +CEREG? +CIPSHUT +CIPMUX=0 +CIPRXGET=1 +CSTT= +CIICR +CIFSR +CSQ'.split(' ')[
      i === Step.CEREG && o.model === 'sim800' ? Step.CREG : i
    ];
    if (!lines)
      return this.at(
        i === Step.CSTT ? cmd + '"' + [o.apn, o.user, o.password].join('","') + '"' : cmd, // (join: undefined -> "")
        [1, 0, 0, 5, 0, 0, 65, 0, 0, 0, 85, 10][i] * 1000, // (0 or NaN: the default timeout)
        this.attach_.bind(this, ep, i),
      );
    // a query's reply, its last info line with a value ("+CPIN: READY" -> v "READY"; "+CREG: 0,5" ->
    // v "0,5", reg 5): the reply comes just before the final line, after any unsolicited line
    let v = '';
    for (const l of lines) v = l.split(': ')[1] || v;
    const reg = +v.split(',')[1];
    let next = i + 1;
    // a retry waits this long (a pause in the command queue: the step waits its turn behind it)
    let wait = 0;
    // the end of the attach; with a wait, only once the tries are over
    let why = '';
    if (i === Step.PROBE) {
      if (ok) {
        this.st_ = St.ATTACH;
        this.n_ = 10; // SIM checks
      } else if (--this.n_ % 10) next = i;
      else {
        // 10 polls after each press: PWRKEY (power on), RESET (hung), PWRKEY again (the first press
        // may have switched a hung modem off). A press is skipped when its pin is not wired.
        while (this.n_ && !this.pulse_(this.n_ === 20 ? o.resetPin : o.pwrkeyPin)) this.n_ -= 10;
        if (this.n_) next = i;
        else why = STUCK;
      }
    } else if (i === Step.CPIN) {
      if (v === 'READY') this.n_ = (o.regTimeoutMs || 180000) / 2000 + 1; // registration polls
      else {
        next = i;
        wait = 1000;
        why = 'error: sim ' + (v || 'no answer');
      }
    } else if (i === Step.CREG) this.creg_ = reg;
    else if (i === Step.CEREG) {
      const c = this.creg_;
      if (c % 4 === 1 || reg % 4 === 1) {
        // registered: 1 at home, 5 roaming (and 9: home, CSFB not preferred)
      } else if (c === 3 && reg !== 2) why = 'error: registration denied';
      else {
        next = Step.CREG;
        wait = 2000;
        why = 'no-network';
      }
    } else if (i === Step.CSQ) {
      // also the background refresh of signal()
      this.rssi_ = parseInt(v);
      if (this.st_ === St.ATTACH) {
        this.st_ = St.UP;
        if (this.lh_) this.lh_.onUp();
      }
      return;
    } else if (!ok && i > Step.CMEE) why = 'error: ' + cmd + ' -> ' + fin; // ATE0 and CMEE may fail
    if (wait && --this.n_) why = ''; // tries left
    if (why) return this.fail_(why);
    if (wait) this.at(undefined, wait);
    this.attach_(ep, next);
  }

  /**
   * Press PWRKEY or RESET for 1.2 s (the modules' pins are active low), then wait bootMs (in the command queue:
   * what follows waits for it). False when the pin is not wired.
   */
  private pulse_(pin: any): boolean {
    const o = this.o;
    let level = 0;
    if (pin == null) return false;
    // run twice: press (0), then release (1)
    const toggle = function () {
      o.setPin(pin, level++);
    };
    this.at(toggle, 1200); // (PWRKEY wants >= 1 s, RESET >= 0.1 s)
    this.at(toggle, o.bootMs || 2500);
    return true;
  }

  /** The end of the link (failed, lost or down()): the connection over it ends too, then onDown. */
  private fail_(reason: string): void {
    const a = this.tcp_;
    if (!this.st_) return; // down already (no connection then: open() fails at once while down)
    this.st_ = St.DOWN;
    this.epoch_++;
    if (a) this.end_(a, a.s ? 'reset' : 'unreachable', reason);
    if (this.lh_) this.lh_.onDown(reason);
  }

  // ---- Transport

  open(options: OpenOptions): void {
    if (!this.th_ || this.tcp_) throw Error('busy');
    const self = this;
    // a link that is down, and TLS, fail like a failed CIPSTART, a turn later
    const why: TransportErrorCode | '' = !this.isUp() ? 'unreachable' : (typeof WREN_TLS === 'undefined' || WREN_TLS) && options.tls ? 'tls' : '';
    // (CIPSTART is in flight, but nothing else goes out before CONNECT OK)
    const a: MAttempt = {
      unsent: '',
      cb: function (ok, lines, fin) {
        a.inFlight = false;
        if (!ok && !a.remote) self.end_(a, why || 'io', fin || why);
        else if (a.s === Tcp.ENDED || (a.remote && !a.rx)) self.end_(a);
        else {
          if (a.needDrain && !a.unsent) {
            a.needDrain = false;
            self.th_.onDrain();
          }
          self.io_(a);
        }
      },
    };
    this.tcp_ = a;
    if (why) this.timers_.set(0, a.cb as () => void);
    else this.at('AT+CIPSTART="TCP","' + options.host + '",' + options.port, 10000, a.cb);
  }

  write(bytes: Uint8Array): boolean {
    const a = this.tcp_;
    if (!a || a.s !== Tcp.OPEN) return false;
    a.unsent += this.o.E.toString(bytes);
    this.io_(a);
    if (a.unsent.length <= (this.o.highWaterBytes || 4096)) return true;
    a.needDrain = true;
    return false;
  }

  close(): void {
    const a = this.tcp_;
    if (!a || a.s === Tcp.ENDED) return;
    a.s = Tcp.ENDED;
    this.timers_.set(0, a.cb as () => void);
  }

  /** The connection's next command, one at a time: a read when the modem holds bytes, else a send. */
  private io_(a: MAttempt): void {
    const s = a.unsent.substr(0, 1024);
    if (a.inFlight || !(a.rx || s)) return;
    a.inFlight = true;
    if (a.rx) {
      a.rx = false;
      this.at('AT+CIPRXGET=2,' + (this.o.maxReadBytes || 1024), 5000, a.cb);
    } else {
      a.unsent = a.unsent.substr(1024);
      this.at('AT+CIPSEND=' + s.length, 20000, a.cb, s);
    }
  }

  /**
   * The one end of every attempt: onError (with a code, unless close() was called), then onClose. The
   * modem's socket is closed too unless the peer closed it or the link is down.
   */
  private end_(a: MAttempt, code?: TransportErrorCode, message?: string): void {
    const h = this.th_;
    if (this.tcp_ !== a) return;
    this.tcp_ = null;
    if (!a.remote && this.isUp()) this.at('AT+CIPCLOSE=1', 5000);
    if (code && a.s !== Tcp.ENDED) h.onError({ code: code, message: message as string });
    a.s = Tcp.ENDED;
    h.onClose();
  }

  // ---- the engine's hooks

  /** A command timed out (its callback follows). */
  timedOut(): void {
    // only while attaching or up (probing, a modem may be off; down, up() starts from the probe)
    if (!(this.st_ > St.BOOT)) return;
    // is it the modem or just this command? a quick AT, queued last, tells (its timeout counts too)
    if (this.timeouts_ < 3) this.at('AT', 1000);
    else {
      // stuck: report, then pulse RESET (the next up() starts again from the probe)
      this.flush();
      if (typeof WREN_DEVICE === 'undefined') this.resets++;
      this.fail_(STUCK);
      this.pulse_(this.o.resetPin);
    }
  }

  /** Every line; -1 when it is not a URC (see UrcHook). */
  urc(l: string): number {
    const a = this.tcp_;
    if (!l.indexOf('+CIPRXGET: 2,')) {
      // the reply to a read, "+CIPRXGET: 2,<n>,<left>": n raw bytes follow
      const f = l.split(',');
      if (a) a.rx = f[2] > '0'; // (a count: "0" or one that starts with 1..9)
      return +f[1];
    }
    if (l === '+CIPRXGET: 1' || l === 'CLOSED') {
      // bytes waiting; or the peer closed: read what it sent before, then end
      if (a && a.s === Tcp.OPEN) {
        a.rx = true;
        if (l === 'CLOSED') a.remote = true;
        this.io_(a);
      }
    } else if (l === 'CONNECT OK') {
      if (a && !a.s) {
        a.s = Tcp.OPEN;
        this.th_.onOpen();
      }
    } else if (l === 'CONNECT FAIL') {
      if (a) this.end_(a, 'io', l);
    } else if (l === '+PDP: DEACT') this.fail_('lost');
    // a restart: news while attaching or up. While booting we pressed a key (RDY is expected);
    // after down() NORMAL POWER DOWN is the answer to AT+CPOWD=1: not URCs then.
    else if (/POWER DOWN|^RDY$/.test(l) && this.st_ > St.BOOT) this.fail_('error: modem restarted (' + l + ')');
    else return -1;
    return 0;
  }

  /** The raw bytes of a read. */
  onRaw(data: string): void {
    const a = this.tcp_;
    if (a && a.s === Tcp.OPEN) this.th_.onData(this.o.E.toUint8Array(data));
  }
}

/** The modem's Transport side is the modem itself (kept as a name for hal/espruino/index.ts). */
export const ModemTransport = CellularModem;
