// The cellular modem driver (hal/espruino/modem.ts + at.ts) against a simulated SIM7000/SIM800
// (test/helpers/fake-modem.ts) over a mock UART, in virtual time: power-on, registration, PDP, TCP
// open/send/receive/close, remote close, signal, PSM/eDRX, recovery; with ERROR replies, timeouts,
// unsolicited CLOSED, lines split across reads (down to one byte per read), garbage between lines and a
// stuck modem that only recovers after RESET.

import { transportRecorder } from './helpers/transport-recorder';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../hal/mock/index';
import type { TransportError } from '../hal/types';
import { AtEngine, CellularModem, csqToDbm, psmActiveBits, psmTauBits, regStatus } from '../hal/espruino/index';
import type { CellularOptions } from '../hal/espruino/index';
import { binToBytes, bytesToBin, makeFakeE } from './helpers/fake-espruino';
import { FakeModem } from './helpers/fake-modem';
import { setEdrx } from '../hal/espruino/modem';
import type { FakeModemOptions } from './helpers/fake-modem';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const allBytes = () => Uint8Array.from({ length: 256 }, (_, i) => i);

/** A modem + driver + recorded events; asserts no event is delivered inside a driver call. */
class Rig {
  clock = new VirtualClock();
  fm: FakeModem;
  m: CellularModem;
  events: string[] = [];
  errors: TransportError[] = [];
  data: Uint8Array[] = [];
  pins: Array<[string, number]> = [];
  inCall = false;

  constructor(fo: FakeModemOptions = {}, mo: Partial<CellularOptions> = {}) {
    this.fm = new FakeModem(this.clock, fo);
    this.m = new CellularModem({
      uart: this.fm.uart,
      timers: this.clock,
      E: makeFakeE(),
      apn: 'iot.example',
      user: 'u',
      password: 'p',
      setPin: (pin: unknown, v: number) => {
        this.pins.push([String(pin), v]);
        this.fm.setPin(pin, v);
      },
      pwrkeyPin: 'PWR',
      resetPin: 'RST',
      regTimeoutMs: 20000,
      ...mo,
    });
    const ev = (e: string) => {
      expect(this.inCall, e + ' delivered synchronously').toBe(false);
      this.events.push(e);
    };
    this.m.setHandler({ onUp: () => ev('up'), onDown: (r) => ev('down:' + r) });
    this.m.transport.setHandler(transportRecorder(ev, this));
  }
  call<T>(f: () => T): T {
    this.inCall = true;
    try {
      return f();
    } finally {
      this.inCall = false;
    }
  }
  /** Run until `e` happens once more (at most maxMs of virtual time). */
  until(e: string, maxMs = 120000): void {
    const n = this.count(e);
    const ok = this.clock.runUntil(() => this.count(e) > n, maxMs);
    if (!ok) throw new Error('no ' + e + ' within ' + maxMs + ' ms; events ' + this.events.join(',') + '; commands ' + this.fm.names().join(' '));
  }
  up(): void {
    this.call(() => this.m.up());
    this.until('up');
  }
  open(): void {
    this.call(() => this.m.transport.open({ host: 'broker.example', port: 1883 }));
    this.until('open', 5000);
  }
  received(): string {
    return this.data.map((d) => bytesToBin(d)).join('');
  }
  count(e: string): number {
    return this.events.filter((x) => x === e).length;
  }
}

describe('attach', () => {
  it('powers the modem on with PWRKEY, then handshake, SIM, registration and PDP: one onUp', () => {
    const r = new Rig();
    r.call(() => r.m.up());
    r.call(() => r.m.up()); // idempotent
    expect(r.events).toEqual([]);
    r.until('up');
    expect(r.events).toEqual(['up']);
    expect(r.fm.pwrkeyPresses).toBe(1);
    expect(r.pins.slice(0, 2)).toEqual([
      ['PWR', 0],
      ['PWR', 1],
    ]);
    const names = r.fm.names();
    const order = ['ATE0', 'AT+CMEE', 'AT+CPIN', 'AT+CREG', 'AT+CEREG', 'AT+CIPSHUT', 'AT+CIPMUX', 'AT+CIPRXGET', 'AT+CSTT', 'AT+CIICR', 'AT+CIFSR', 'AT+CSQ'];
    let at = 0;
    for (const n of order) {
      const i = names.indexOf(n, at);
      expect(i, n + ' in order').toBeGreaterThanOrEqual(at);
      at = i;
    }
    expect(r.fm.apn).toBe('iot.example');
    expect(r.fm.commands).toContain('AT+CSTT="iot.example","u","p"');
    expect(r.m.isUp()).toBe(true);
    expect(r.m.signal()).toBe(-73); // +CSQ: 20 -> -113 + 40
    expect(r.m.networkId()).toBe('iot.example');
    expect(r.m.kind).toBe('cellular');
    r.clock.advance(60000);
    expect(r.events).toEqual(['up']);
  });

  it('a modem that already answers is not pressed; roaming (5) counts as registered', () => {
    const r = new Rig({ powered: true, regStat: 5 });
    r.up();
    expect(r.fm.pwrkeyPresses).toBe(0);
    expect(r.pins).toEqual([]);
  });

  it('waits for registration with bounded polling; never registered -> no-network; denied -> error', () => {
    const slow = new Rig({ powered: true, registerAfterMs: 9000 });
    slow.up();
    expect(slow.fm.names().filter((n) => n === 'AT+CREG').length).toBeGreaterThan(3);
    const never = new Rig({ powered: true, neverRegisters: true });
    never.call(() => never.m.up());
    never.until('down:no-network', 60000);
    const polls = never.fm.names().filter((n) => n === 'AT+CREG').length;
    expect(polls).toBeGreaterThan(8);
    expect(polls).toBeLessThan(14); // regTimeoutMs 20 s / 2 s
    const denied = new Rig({ powered: true, denied: true });
    denied.call(() => denied.m.up());
    denied.until('down:error: registration denied', 10000);
  });

  it('LTE-M only (CREG 0, CEREG 1) registers; SIM800 polls CREG only', () => {
    const lte = new Rig({ powered: true, lteOnly: true });
    lte.up();
    const s800 = new Rig({ powered: true, model: 'sim800' }, { model: 'sim800' });
    s800.up();
    expect(s800.fm.names()).not.toContain('AT+CEREG');
  });

  it('no SIM -> onDown(error: sim ...)', () => {
    const r = new Rig({ powered: true, sim: 'NOT INSERTED' });
    r.call(() => r.m.up());
    r.until('down:error: sim no answer', 30000);
  });

  it('an ERROR reply during PDP setup fails the attach with the command in the reason; up() again works', () => {
    const r = new Rig({ powered: true });
    r.fm.errorOn['AT+CIICR'] = 1;
    r.call(() => r.m.up());
    r.until('down:error: AT+CIICR -> ERROR', 30000);
    expect(r.m.isUp()).toBe(false);
    r.up();
    expect(r.events).toEqual(['down:error: AT+CIICR -> ERROR', 'up']);
  });

  it('a command that times out once fails the attach (not a stuck modem); the next attach works', () => {
    const r = new Rig({ powered: true });
    r.fm.silentOn['AT+CIFSR'] = 1;
    r.call(() => r.m.up());
    r.until('down:error: AT+CIFSR -> TIMEOUT', 30000);
    expect(r.m.resets).toBe(0);
    r.up();
  });

  it('a modem that never answers: PWRKEY, RESET, PWRKEY again, then onDown(error: modem not responding)', () => {
    const r = new Rig();
    r.fm.stick();
    r.fm.power = 'on'; // on but hung: ignores AT, PWRKEY turns it off
    r.call(() => r.m.up());
    r.clock.runUntil(() => r.events.length > 0, 120000);
    // the third press turned it back on, and it answered: the attach completes
    expect(r.events).toEqual(['up']);
    expect(r.fm.pwrkeyPresses).toBe(2);
    expect(r.fm.resetPresses).toBe(1);
    const dead = new Rig();
    dead.m.o.pwrkeyPin = dead.m.o.resetPin = undefined; // no pins wired: nothing to press
    dead.call(() => dead.m.up());
    dead.until('down:error: modem not responding', 30000);
  });
});

describe('TCP', () => {
  it('open, send and receive every byte value (CR LF, "OK", "CLOSED" inside the data), close once', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.open();
    expect(r.fm.target).toBe('"TCP","broker.example",1883');
    const tricky = bytesToBin(allBytes()) + '\r\nOK\r\n\r\nCLOSED\r\n> +CIPRXGET: 1\r\n';
    expect(r.call(() => r.m.transport.write(binToBytes(tricky)))).toBe(true);
    r.clock.advance(2000);
    expect(r.fm.received).toBe(tricky);
    r.fm.remoteSend(tricky);
    r.clock.advance(2000);
    expect(r.received()).toBe(tricky);
    r.call(() => r.m.transport.close());
    r.call(() => r.m.transport.close());
    r.clock.advance(2000);
    expect(r.events).toEqual(['up', 'open', 'data', 'close']);
    expect(r.fm.commands).toContain('AT+CIPCLOSE=1');
    expect(r.fm.tcp).toBe('closed');
  });

  it('large writes go out in CIPSEND pieces of at most 1024 bytes; write() is false above the high-water mark, then onDrain', () => {
    const r = new Rig({ powered: true }, { highWaterBytes: 2000 });
    r.up();
    r.open();
    const big = new Uint8Array(5000).map((_, i) => (i * 7) & 255);
    expect(r.call(() => r.m.transport.write(big.subarray(0, 1500)))).toBe(true);
    expect(r.call(() => r.m.transport.write(big.subarray(1500)))).toBe(false);
    r.until('drain', 30000);
    expect(hex(binToBytes(r.fm.received))).toBe(hex(big));
    const sends = r.fm.commands.filter((c) => c.indexOf('AT+CIPSEND=') === 0).map((c) => parseInt(c.substr(11), 10));
    expect(Math.max(...sends)).toBeLessThanOrEqual(1024);
    expect(sends.reduce((a, b) => a + b, 0)).toBe(5000);
    expect(r.count('drain')).toBe(1);
  });

  it('receives more than one read holds (+CIPRXGET: 2 with bytes left): reads until empty', () => {
    const r = new Rig({ powered: true }, { maxReadBytes: 100 });
    r.up();
    r.open();
    const payload = bytesToBin(new Uint8Array(1000).map((_, i) => (i * 13) & 255));
    r.fm.remoteSend(payload);
    r.clock.advance(5000);
    expect(r.received()).toBe(payload);
    expect(r.data.length).toBe(10);
  });

  it('an unsolicited CLOSED ends the connection with one onClose, no error; a new connection works', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.open();
    r.fm.remoteSend('last words');
    r.fm.remoteClose();
    r.clock.advance(2000);
    expect(r.events).toEqual(['up', 'open', 'data', 'close']);
    expect(r.call(() => r.m.transport.write(new Uint8Array([1])))).toBe(false);
    r.call(() => r.m.transport.close()); // after onClose: nothing
    r.clock.advance(1000);
    expect(r.count('close')).toBe(1);
    r.open();
    expect(r.count('open')).toBe(2);
    // data whose "+CIPRXGET: 1" was never seen is still read before the end
    r.fm.rx = 'unannounced';
    r.fm.remoteClose();
    r.until('close', 5000);
    expect(r.received()).toBe('last wordsunannounced');
  });

  it('CONNECT FAIL is onError + onClose; open() while the link is down or with TLS fails the same way', () => {
    const r = new Rig({ powered: true });
    r.call(() => r.m.transport.open({ host: 'h', port: 1 }));
    r.until('close', 1000);
    expect(r.events).toEqual(['error:unreachable', 'close']);
    r.up();
    r.fm.accept = false;
    r.call(() => r.m.transport.open({ host: 'h', port: 1 }));
    r.until('error:io', 5000);
    expect(r.errors[1].message).toContain('CONNECT FAIL');
    r.call(() => r.m.transport.open({ host: 'h', port: 1, tls: {} }));
    r.clock.advance(10);
    expect(r.events.slice(-2)).toEqual(['error:tls', 'close']);
    expect(() => {
      r.m.transport.open({ host: 'h', port: 1 });
      r.m.transport.open({ host: 'h', port: 1 });
    }).toThrow();
  });

  it('close() while connecting: one onClose, no onOpen even though CONNECT OK follows', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.call(() => r.m.transport.open({ host: 'h', port: 1 }));
    r.clock.advance(20);
    r.call(() => r.m.transport.close());
    r.clock.advance(3000);
    expect(r.events).toEqual(['up', 'close']);
  });

  it('+PDP: DEACT takes the link down (lost) and breaks the connection (reset)', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.open();
    r.fm.pdpDeact();
    r.clock.advance(100);
    expect(r.events).toEqual(['up', 'open', 'error:reset', 'close', 'down:lost']);
    expect(r.m.signal()).toBeUndefined();
    r.up();
  });

  it('an unexpected power down (brownout) is reported as a restart', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.fm.brownout();
    r.clock.advance(100);
    expect(r.events).toEqual(['up', 'down:error: modem restarted (UNDER-VOLTAGE POWER DOWN)']);
  });
});

describe('robust line handling', () => {
  for (const [name, split] of [
    ['one byte per read', 'bytes'],
    ['odd chunk sizes', [1, 2, 3, 5, 7, 64, 11]],
  ] as Array<[string, 'bytes' | number[]]>) {
    it('attach, send, receive and remote close with output split ' + name, () => {
      const r = new Rig({ powered: true });
      r.fm.split = split;
      r.up();
      r.open();
      const tricky = bytesToBin(allBytes()) + '\r\nOK\r\n';
      r.call(() => r.m.transport.write(binToBytes(tricky)));
      r.fm.remoteSend(tricky);
      r.clock.advance(20000);
      expect(r.fm.received).toBe(tricky);
      expect(r.received()).toBe(tricky);
      r.fm.remoteClose();
      r.until('close', 10000);
      expect(r.errors).toEqual([]);
    });
  }

  it('garbage bytes and noise lines between responses do not disturb anything', () => {
    const r = new Rig({ powered: true });
    r.fm.garbage = true;
    r.up();
    r.open();
    const tricky = bytesToBin(allBytes());
    r.call(() => r.m.transport.write(binToBytes(tricky)));
    r.fm.remoteSend(tricky);
    r.clock.advance(20000);
    expect(r.fm.received).toBe(tricky);
    expect(r.received()).toBe(tricky);
    expect(r.m.signal()).toBe(-73);
  });

  it('garbage and byte-at-a-time together, from power-on', () => {
    const r = new Rig();
    r.fm.garbage = true;
    r.fm.split = 'bytes';
    r.up();
    r.open();
    r.fm.remoteSend('hi');
    r.clock.advance(5000);
    expect(r.received()).toBe('hi');
  });

  it('the AT engine: echo, URC hook, raw reads, prompt, timeouts, flush', () => {
    const clock = new VirtualClock();
    const sent: string[] = [];
    let feed: (d: string) => void = () => {};
    const eng = new AtEngine({ uart: { write: (s) => sent.push(s), on: (_e, cb) => (feed = cb) }, timers: clock });
    const urcs: string[] = [];
    const raws: string[] = [];
    eng.urc = (l) => {
      if (l === 'RING') {
        urcs.push(l);
        return 0;
      }
      if (l.indexOf('+RAW:') === 0) return parseInt(l.substr(5), 10);
      return -1;
    };
    eng.onRaw = (d) => raws.push(d);
    const results: string[] = [];
    eng.at('AT+X', 1000, (ok, lines, fin) => results.push(ok + ' ' + lines.join('|') + ' ' + fin));
    eng.at('AT+Y', 1000, (ok, lines, fin) => results.push(ok + ' ' + fin));
    expect(sent).toEqual(['AT+X\r']);
    feed('AT+X\r\r\n+X: 1\r\nRI');
    feed('NG\r\n+RAW:5\r\nab\r\nc\r\nOK');
    feed('\r\n');
    expect(results).toEqual(['true +X: 1 OK']);
    expect(urcs).toEqual(['RING']);
    expect(raws).toEqual(['ab\r\nc']);
    expect(sent).toEqual(['AT+X\r', 'AT+Y\r']);
    clock.advance(1000);
    expect(results[1]).toBe('false TIMEOUT');
    expect(eng.timeouts_).toBe(1);
    eng.at('AT+S=3', 1000, (ok, _l, fin) => results.push(ok + ' ' + fin), 'xyz');
    feed('\r\n>');
    expect(sent[sent.length - 1]).toBe('xyz');
    feed(' \r\nSEND OK\r\n');
    expect(results[2]).toBe('true SEND OK');
    expect(eng.timeouts_).toBe(0);
    eng.at('AT+Z', 1000, () => results.push('never'));
    eng.flush();
    clock.advance(5000);
    expect(results.length).toBe(3);
    expect(eng.idle()).toBe(true);
  });
});

describe('recovery', () => {
  it('a stuck modem: the connection errors and closes, the link goes down (modem not responding), RESET is pulsed, up() works again', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.open();
    r.fm.stick();
    r.call(() => r.m.transport.write(new Uint8Array([1, 2, 3])));
    r.until('down:error: modem not responding', 120000);
    expect(r.events).toEqual(['up', 'open', 'error:io', 'close', 'down:error: modem not responding']);
    expect(r.errors[0].message).toContain('TIMEOUT');
    expect(r.m.resets).toBe(1);
    r.clock.advance(5000);
    expect(r.pins).toEqual([
      ['RST', 0],
      ['RST', 1],
    ]);
    expect(r.fm.resetPresses).toBe(1);
    expect(r.fm.stuck).toBe(false);
    r.events.length = 0;
    r.up();
    expect(r.fm.pwrkeyPresses).toBe(0); // the reset revived it: no power key needed
    r.open();
  });

  it('a stuck modem with no traffic is found at the next command (signal refresh)', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.clock.advance(31000); // the CSQ value is stale now
    r.fm.stick();
    r.m.signal(); // queues AT+CSQ
    r.until('down:error: modem not responding', 60000);
    expect(r.m.resets).toBe(1);
  });

  it('down(): onDown(requested) asynchronously, CIPSHUT and power off; up() powers on again', () => {
    const r = new Rig({ powered: true });
    r.up();
    r.open();
    r.call(() => r.m.down());
    r.call(() => r.m.down());
    expect(r.events).toEqual(['up', 'open']);
    r.clock.advance(1000);
    expect(r.events).toEqual(['up', 'open', 'error:reset', 'close', 'down:requested']);
    expect(r.fm.commands.slice(-2)).toEqual(['AT+CIPSHUT', 'AT+CPOWD=1']);
    expect(r.fm.power).toBe('off');
    r.up();
    expect(r.fm.pwrkeyPresses).toBe(1);
  });

  it('down() while attaching ends the attach; the stale attach steps are ignored', () => {
    const r = new Rig({ powered: true, registerAfterMs: 5000 });
    r.call(() => r.m.up());
    r.clock.advance(1500);
    r.call(() => r.m.down());
    r.clock.advance(60000);
    expect(r.events).toEqual(['down:requested']);
    expect(r.m.isUp()).toBe(false);
  });
});

describe('sleep settings and conversions', () => {
  it('PSM and eDRX commands', () => {
    const r = new Rig({ powered: true });
    r.up();
    const res: boolean[] = [];
    r.m.setPsm(4 * 3600, 60, (ok) => res.push(ok));
    r.clock.advance(100);
    expect(r.fm.psm).toBe('1,,,"00011000","00011110"');
    r.m.setPsm(0, 0, (ok) => res.push(ok));
    setEdrx(r.m, 4, 5, (ok) => res.push(ok));
    r.clock.advance(100);
    expect(r.fm.psm).toBe('0');
    expect(r.fm.edrx).toBe('1,4,"0101"');
    expect(res).toEqual([true, true, true]);
  });

  it('3GPP timer encodings, CSQ to dBm, registration status parsing', () => {
    expect(psmTauBits(14400)).toBe('00011000'); // 24 x 10 min
    expect(psmTauBits(36000)).toBe('00101010'); // 10 x 1 h
    expect(psmTauBits(60)).toBe('01111110'); // 30 x 2 s
    expect(psmTauBits(320 * 3600 * 40)).toBe('11011111'); // capped at 31 x 320 h
    expect(psmActiveBits(60)).toBe('00011110'); // 30 x 2 s
    expect(psmActiveBits(600)).toBe('00101010'); // 10 x 1 min
    expect(psmActiveBits(3600)).toBe('01001010'); // 10 x 6 min
    expect(csqToDbm(0)).toBe(-113);
    expect(csqToDbm(31)).toBe(-51);
    expect(csqToDbm(99)).toBeUndefined();
    expect(regStatus(['+CREG: 0,5'], '+CREG:')).toBe(5);
    expect(regStatus(['+CEREG: 2'], '+CEREG:')).toBe(2);
    expect(regStatus(['junk'], '+CREG:')).toBe(-1);
  });
});
