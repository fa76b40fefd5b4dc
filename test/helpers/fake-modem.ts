// A simulated SIMCom SIM7000 (or SIM800) behind a mock UART, in virtual time (hal/mock VirtualClock),
// for testing hal/espruino/modem.ts. It answers the AT commands the driver uses the way the modules'
// manuals describe (echo until ATE0, "> " prompt for AT+CIPSEND, "+CIPRXGET: 2,<n>,<left>" followed
// by n raw bytes, URCs "+CIPRXGET: 1", "CLOSED", "+PDP: DEACT", "RDY"...), powers on with a PWRKEY
// press (>= 1 s, active low) and reboots with a RESET press (>= 100 ms), and has a remote TCP peer the
// test drives (remoteSend, remoteClose).
//
// Faults: errorOn[prefix] = n (the next n such commands answer ERROR), silentOn[prefix] = n (no
// answer: a timeout), stick() (ignores everything until RESET is pressed), split (output cut into
// UART chunks: 'bytes' = one byte per 'data' event, or a list of sizes), garbage (noise bytes and
// noise lines between outputs), accept = false (CONNECT FAIL), brownout() ("UNDER-VOLTAGE POWER DOWN").

import type { VirtualClock } from '../../hal/mock/index';
import type { Uart } from '../../hal/espruino/at';

export interface FakeModemOptions {
  /** On at start (default false: needs a PWRKEY press). */
  powered?: boolean;
  /** From PWRKEY/RESET release to answering AT (default 3000 ms). */
  bootMs?: number;
  /** Response latency (default 5 ms). */
  latencyMs?: number;
  /** 'sim800': no AT+CEREG (answers ERROR), 2G registration on CREG only. */
  model?: 'sim7000' | 'sim800';
  /** Registration: after this many ms from boot (default 1000); status 1 home or 5 roaming. */
  registerAfterMs?: number;
  regStat?: number;
  /** Registration denied (stat 3) / never registers (stat 2 forever). */
  denied?: boolean;
  neverRegisters?: boolean;
  /** SIM7000 on LTE-M only: CREG stays 0, CEREG carries the registration. */
  lteOnly?: boolean;
  sim?: 'READY' | 'SIM PIN' | 'NOT INSERTED';
  csq?: number;
}

/**
 * A one-byte string made at run time. On Espruino a non-ASCII literal ('\xff' is bundled as UTF-8)
 * is a UTF-8 string, and concatenating it with binary data re-encodes that data as UTF-8.
 */
function ch(c: number): string {
  return String.fromCharCode(c);
}

export class FakeModem {
  readonly uart: Uart;
  /** Every command line received. */
  readonly commands: string[] = [];
  power: 'off' | 'booting' | 'on';
  echo = true;
  stuck = false;
  errorOn: Record<string, number> = {};
  silentOn: Record<string, number> = {};
  split: 'whole' | 'bytes' | number[] = 'whole';
  garbage = false;
  /** Accept TCP connections (else CONNECT FAIL). */
  accept = true;
  tcp: 'closed' | 'connecting' | 'open' = 'closed';
  pdp = false;
  apn = '';
  /** Device -> remote bytes (binary string); remote -> device bytes not yet read. */
  received = '';
  rx = '';
  target = '';
  psm: string | undefined;
  edrx: string | undefined;
  pwrkeyPresses = 0;
  resetPresses = 0;
  boots = 0;
  opts: FakeModemOptions;

  private listeners: Array<(d: string) => void> = [];
  private line = '';
  private sendLen = 0;
  private sendBuf = '';
  private bootedAt = 0;
  private pressed: Record<string, number> = {};
  private gen = 0;
  private splitIndex = 0;

  constructor(
    readonly clock: VirtualClock,
    options?: FakeModemOptions,
  ) {
    // (written in the Espruino subset too: test/espruino/hal-modem-entry.ts runs it on the interpreter)
    this.opts = options ?? {};
    options = this.opts;
    this.power = options.powered ? 'on' : 'off';
    if (options.powered) {
      this.echo = true;
      this.bootedAt = clock.now();
    }
    const self = this;
    this.uart = {
      write(s: string) {
        self.input(s);
      },
      on(_ev: 'data', cb: (d: string) => void) {
        self.listeners.push(cb);
      },
    };
  }

  // ---- test side ----

  /** Pin change from the driver's setPin (pins named 'PWR' and 'RST', active low). */
  setPin(pin: unknown, value: number): void {
    const name = String(pin);
    if (value === 0) {
      this.pressed[name] = this.clock.now();
      return;
    }
    const at = this.pressed[name];
    if (at === undefined) return;
    delete this.pressed[name];
    const held = this.clock.now() - at;
    if (name === 'PWR' && held >= 1000) {
      this.pwrkeyPresses++;
      if (this.power === 'off') this.boot();
      else if (!this.stuck) this.powerDown('NORMAL POWER DOWN');
      else this.powerDown(undefined); // a hung firmware still powers off on a long press
    } else if (name === 'RST' && held >= 100) {
      this.resetPresses++;
      if (this.power !== 'off') this.boot();
    }
  }

  /** Stop answering anything until RESET is pressed. */
  stick(): void {
    this.stuck = true;
  }

  /** The remote peer sends bytes (binary string). */
  remoteSend(data: string): void {
    if (this.tcp !== 'open') return;
    const wasEmpty = this.rx.length === 0;
    this.rx += data;
    if (wasEmpty) this.out('\r\n+CIPRXGET: 1\r\n');
  }

  /** The remote peer closes the connection. */
  remoteClose(): void {
    if (this.tcp !== 'open') return;
    this.tcp = 'closed';
    // data received before the peer's FIN stays readable with AT+CIPRXGET=2
    this.out('\r\nCLOSED\r\n');
  }

  /** The network deactivates the PDP context. */
  pdpDeact(): void {
    this.pdp = false;
    this.tcp = 'closed';
    this.out('\r\n+PDP: DEACT\r\n');
  }

  /** Supply voltage dip: the module powers down by itself. */
  brownout(): void {
    this.powerDown('UNDER-VOLTAGE POWER DOWN');
  }

  /** Command names received, e.g. ['AT', 'ATE0', ...]. */
  names(): string[] {
    return this.commands.map((c) => c.replace(/[=?].*$/, ''));
  }

  // ---- modem side ----

  private boot(): void {
    this.power = 'booting';
    this.stuck = false;
    this.echo = true;
    this.tcp = 'closed';
    this.pdp = false;
    this.rx = '';
    this.sendLen = 0;
    this.line = '';
    const g = ++this.gen;
    this.clock.set(this.opts.bootMs ?? 3000, () => {
      if (this.gen !== g || this.power !== 'booting') return;
      this.power = 'on';
      this.boots++;
      this.bootedAt = this.clock.now();
      this.out('\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n');
    });
  }

  private powerDown(msg: string | undefined): void {
    const wasOn = this.power === 'on';
    this.gen++;
    if (msg !== undefined && wasOn) this.out('\r\n' + msg + '\r\n');
    this.power = 'off';
    this.stuck = false;
    this.tcp = 'closed';
    this.pdp = false;
  }

  private registered(): number {
    const o = this.opts;
    if (o.denied) return 3;
    if (o.neverRegisters || this.clock.now() - this.bootedAt < (o.registerAfterMs ?? 1000)) return 2;
    return o.regStat ?? 1;
  }

  private out(s: string, delayMs?: number): void {
    const g = this.gen;
    const chunks: string[] = [];
    const text = this.garbage ? ch(0) + ch(0xff) + ch(0x13) + s + '\r\n#~%noise%~#\r\n' + ch(0xfe) + ch(0) : s;
    if (this.split === 'whole') chunks.push(text);
    else {
      let i = 0;
      while (i < text.length) {
        let n = 1;
        if (this.split !== 'bytes') n = this.split[this.splitIndex++ % this.split.length];
        chunks.push(text.substr(i, n));
        i += n;
      }
    }
    // one timer, one UART 'data' event per chunk (no closure per loop iteration: on Espruino those
    // would all see the last chunk)
    this.clock.set(delayMs ?? this.opts.latencyMs ?? 5, () => {
      for (let i = 0; i < chunks.length; i++) {
        if (this.gen !== g) return; // powered off / rebooted meanwhile
        for (let k = 0; k < this.listeners.length; k++) this.listeners[k](chunks[i]);
      }
    });
  }

  private input(s: string): void {
    if (this.power !== 'on' || this.stuck) return;
    if (this.sendLen > 0) {
      const need = this.sendLen - this.sendBuf.length;
      this.sendBuf += s.substr(0, need);
      s = s.substr(need);
      if (this.sendBuf.length === this.sendLen) {
        const data = this.sendBuf;
        this.sendLen = 0;
        this.sendBuf = '';
        if (this.tcp === 'open') {
          this.received += data;
          this.out('\r\nSEND OK\r\n', 20);
        } else this.out('\r\nSEND FAIL\r\n');
      }
      if (s.length === 0) return;
    }
    for (const ch of s) {
      if (ch === '\r') {
        const cmd = this.line;
        this.line = '';
        if (cmd.length > 0) this.command(cmd);
      } else if (ch !== '\n') this.line += ch;
    }
  }

  private fault(table: Record<string, number>, cmd: string): boolean {
    for (const k of Object.keys(table)) {
      if (cmd.indexOf(k) === 0 && table[k] > 0) {
        table[k]--;
        return true;
      }
    }
    return false;
  }

  private command(cmd: string): void {
    this.commands.push(cmd);
    const echo = this.echo ? cmd + '\r' : '';
    if (this.fault(this.silentOn, cmd)) {
      if (echo) this.out(echo);
      return;
    }
    if (this.fault(this.errorOn, cmd)) {
      this.out(echo + '\r\nERROR\r\n');
      return;
    }
    const ok = (pre: string) => this.out(echo + pre + '\r\nOK\r\n');
    const err = (text?: string) => this.out(echo + '\r\n' + (text ?? 'ERROR') + '\r\n');
    const o = this.opts;
    if (cmd === 'AT' || cmd === 'AT+CMEE=2' || cmd === 'AT+CIPMUX=0' || cmd === 'AT+CIPRXGET=1') ok('');
    else if (cmd === 'ATE0') {
      this.echo = false;
      ok('');
    } else if (cmd === 'AT+CPIN?') {
      const sim = o.sim ?? 'READY';
      if (sim === 'NOT INSERTED') err('+CME ERROR: SIM not inserted');
      else ok('\r\n+CPIN: ' + sim + '\r\n');
    } else if (cmd === 'AT+CREG?') {
      ok('\r\n+CREG: 0,' + (o.lteOnly ? 0 : this.registered()) + '\r\n');
    } else if (cmd === 'AT+CEREG?') {
      if (o.model === 'sim800') err();
      else ok('\r\n+CEREG: 0,' + this.registered() + '\r\n');
    } else if (cmd === 'AT+CSQ') ok('\r\n+CSQ: ' + (o.csq ?? 20) + ',0\r\n');
    else if (cmd === 'AT+CIPSHUT') {
      this.pdp = false;
      this.tcp = 'closed';
      this.out(echo + '\r\nSHUT OK\r\n');
    } else if (cmd.indexOf('AT+CSTT=') === 0) {
      this.apn = cmd.split('"')[1];
      ok('');
    } else if (cmd === 'AT+CIICR') {
      if (this.registered() !== 1 && this.registered() !== 5) err();
      else {
        this.pdp = true;
        this.out(echo + '\r\nOK\r\n', 300);
      }
    } else if (cmd === 'AT+CIFSR') {
      if (this.pdp) this.out(echo + '\r\n10.64.12.7\r\n');
      else err();
    } else if (cmd.indexOf('AT+CIPSTART=') === 0) {
      if (this.tcp === 'closed') this.rx = '';
      if (!this.pdp) err();
      else if (this.tcp !== 'closed') this.out(echo + '\r\nERROR\r\n\r\nALREADY CONNECT\r\n');
      else {
        this.target = cmd.substr(12);
        this.tcp = 'connecting';
        ok('');
        const g = this.gen;
        this.clock.set(100, () => {
          if (this.gen !== g || this.tcp !== 'connecting') return;
          if (this.accept) {
            this.tcp = 'open';
            this.out('\r\nCONNECT OK\r\n');
          } else {
            this.tcp = 'closed';
            this.out('\r\nCONNECT FAIL\r\n');
          }
        });
      }
    } else if (cmd.indexOf('AT+CIPSEND=') === 0) {
      if (this.tcp !== 'open') err();
      else {
        this.sendLen = parseInt(cmd.substr(11), 10);
        this.sendBuf = '';
        this.out(echo + '\r\n> ');
      }
    } else if (cmd.indexOf('AT+CIPRXGET=2,') === 0) {
      const max = parseInt(cmd.substr(14), 10);
      const n = Math.min(max, this.rx.length);
      const data = this.rx.substr(0, n);
      this.rx = this.rx.substr(n);
      this.out(echo + '\r\n+CIPRXGET: 2,' + n + ',' + this.rx.length + '\r\n' + data + '\r\nOK\r\n');
    } else if (cmd === 'AT+CIPCLOSE=1') {
      if (this.tcp === 'closed') err();
      else {
        this.tcp = 'closed';
        this.rx = '';
        this.out(echo + '\r\nCLOSE OK\r\n');
      }
    } else if (cmd.indexOf('AT+CPSMS=') === 0) {
      this.psm = cmd.substr(9);
      ok('');
    } else if (cmd.indexOf('AT+CEDRXS=') === 0) {
      this.edrx = cmd.substr(10);
      ok('');
    } else if (cmd === 'AT+CPOWD=1') {
      this.out(echo + '\r\nNORMAL POWER DOWN\r\n');
      const g = this.gen;
      this.clock.set(10, () => {
        if (this.gen === g) this.powerDown(undefined);
      });
    } else err();
  }
}
