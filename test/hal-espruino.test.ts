// hal/espruino against a fake Espruino environment (test/helpers/fake-espruino.ts) in virtual time:
// each contract rule of hal/types (Transport, Link, Storage, Clock, TimerHost, Power, Log, Random) and
// each Espruino trap the HAL exists to hide (connect throwing, 536-byte binary-string chunks, write()
// needing strings, 28-character names, flash that cannot be rewritten, clearTimeout(undefined)).

import { transportRecorder } from './helpers/transport-recorder';
import { afterEach, describe, expect, it } from 'vitest';
import type { LinkHandler, OpenOptions, TransportError } from '../hal/types';
import {
  createCellular,
  createEspruinoHal,
  createWifi,
  EspruinoClock,
  EspruinoLog,
  EspruinoNetTransport,
  EspruinoPower,
  EspruinoRandom,
  EspruinoStorage,
  EspruinoTimerHost,
  MAX_DEEP_SLEEP_US,
  setWifiPowerSave,
  WifiLink,
} from '../hal/espruino/index';
import { Session } from '../firmware/session/index';
import { binToBytes, bytesToBin, FakeEspruino, FakePowerLoss, FakeStorage } from './helpers/fake-espruino';

const allBytes = () => {
  const b = new Uint8Array(256);
  for (let i = 0; i < 256; i++) b[i] = i;
  return b;
};
const bytes = (n: number, seed: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 17 + (i >> 3)) & 0xff;
  return b;
};
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const hex = (b: Uint8Array | undefined) => (b === undefined ? 'none' : Buffer.from(b).toString('hex'));

let envs: FakeEspruino[] = [];
function fake(o?: ConstructorParameters<typeof FakeEspruino>[0]): FakeEspruino {
  const f = new FakeEspruino(o);
  envs.push(f);
  return f;
}
afterEach(() => {
  // no HAL part may ever call clearTimeout(undefined): on Espruino that stops every timer
  for (const f of envs) expect(f.clearAllCalls).toBe(0);
  envs = [];
});

// ---------------------------------------------------------------------------------------------
// Transport

class Probe {
  events: string[] = [];
  data: Uint8Array[] = [];
  errors: TransportError[] = [];
  inCall = false;
  t: EspruinoNetTransport;
  constructor(readonly f: FakeEspruino) {
    const hal = createEspruinoHal({ env: f.env });
    this.t = new EspruinoNetTransport(f.env, hal.timers);
    const ev = (name: string) => {
      expect(this.inCall, 'event ' + name + ' delivered synchronously').toBe(false);
      this.events.push(name);
    };
    this.t.setHandler(transportRecorder(ev, this));
  }
  call<T>(fn: () => T): T {
    this.inCall = true;
    try {
      return fn();
    } finally {
      this.inCall = false;
    }
  }
  open(o: OpenOptions): void {
    this.call(() => this.t.open(o));
  }
  write(b: Uint8Array): boolean {
    return this.call(() => this.t.write(b));
  }
  close(): void {
    this.call(() => this.t.close());
  }
  received(): Uint8Array {
    return cat(...this.data);
  }
  count(name: string): number {
    return this.events.filter((e) => e === name).length;
  }
}

describe('Transport over net/tls', () => {
  it('round-trips every byte value (0x00 and 0xFF included) both ways, as strings through E.toString/E.toUint8Array', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1883);
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    expect(p.events).toEqual([]);
    f.run(10);
    expect(p.events).toEqual(['open']);
    const out = cat(allBytes(), allBytes().reverse(), new Uint8Array([0, 0, 255, 255]));
    expect(p.write(out)).toBe(true);
    f.run(10);
    const sock = f.net.sockets[0];
    // nothing but strings reached socket.write (a Uint8Array would have been sent as "0,1,2,...")
    expect(sock.writes.every((w) => typeof w === 'string')).toBe(true);
    expect(hex(binToBytes(srv.conns[0].received))).toBe(hex(out));
    srv.conns[0].send(cat(allBytes(), new Uint8Array([255, 0])));
    f.run(10);
    expect(hex(p.received())).toBe(hex(cat(allBytes(), new Uint8Array([255, 0]))));
    expect(f.E.calls.toString).toBeGreaterThan(0);
    expect(f.E.calls.toUint8Array).toBe(p.data.length);
  });

  it('the fake really sends a Uint8Array as decimal text (what the HAL must avoid)', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1);
    const s = f.net.connect({ host: '10.0.0.1', port: 1 });
    f.run(10);
    s.write(new Uint8Array([48, 128]) as unknown as string);
    f.run(10);
    expect(srv.conns[0].received).toBe('48,128');
  });

  it('delivers data arriving in chunks of any size (1 byte .. 536) intact and in order', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1883, { chunks: [1, 7, 536, 100, 2, 535] });
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    f.run(10);
    const payload = bytes(5000, 3);
    srv.conns[0].send(payload);
    f.run(10);
    expect(hex(p.received())).toBe(hex(payload));
    expect(p.data.length).toBeGreaterThan(10);
    expect(Math.max(...p.data.map((d) => d.length))).toBeLessThanOrEqual(536);
    expect(p.data.some((d) => d.length === 1)).toBe(true);
  });

  it('a refused connect (connect() throws synchronously) becomes onError(refused) + onClose, asynchronously', () => {
    const f = fake();
    const p = new Probe(f);
    p.open({ host: '10.0.0.9', port: 1883 }); // nobody listens: the fake throws like Espruino
    expect(p.events).toEqual([]);
    f.run(0);
    expect(p.events).toEqual(['error:refused', 'close']);
    expect(p.errors[0].message).toContain('Unable to create socket');
    // the transport is reusable
    f.net.listen('10.0.0.9', 1883);
    p.open({ host: '10.0.0.9', port: 1883 });
    f.run(10);
    expect(p.events.slice(2)).toEqual(['open']);
  });

  it('an unresolvable host (connect() throws "Unable to locate host") becomes onError(dns) + onClose', () => {
    const f = fake();
    const p = new Probe(f);
    p.open({ host: 'no.such.host', port: 1883 });
    expect(p.events).toEqual([]);
    f.run(0);
    expect(p.events).toEqual(['error:dns', 'close']);
  });

  it('a peer close gives exactly one onClose and no error, although Espruino emits end and close', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1883);
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    f.run(10);
    srv.conns[0].send('bye');
    srv.conns[0].end();
    f.run(10);
    expect(p.events).toEqual(['open', 'data', 'close']);
  });

  it('data emitted before the connect callback (Espruino does that) comes after onOpen', () => {
    const f = fake();
    f.net.listen('10.0.0.1', 1883, { greeting: 'hello' });
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    f.run(10);
    expect(p.events).toEqual(['open', 'data']);
    expect(bytesToBin(p.received())).toBe('hello');
  });

  it('a reset gives onError(reset) then exactly one onClose (error, end and close from the socket)', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1883);
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    f.run(10);
    srv.conns[0].reset(-9, 'ECONNRESET');
    f.run(10);
    expect(p.events).toEqual(['open', 'error:reset', 'close']);
    expect(p.errors[0].message).toContain('-9');
  });

  it('close() ends the socket with end(), delivers one onClose asynchronously, and nothing after it', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1883);
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    f.run(10);
    expect(p.write(new Uint8Array([1, 2, 3]))).toBe(true);
    p.close();
    p.close(); // idempotent
    expect(p.events).toEqual(['open']);
    srv.conns[0].send('late'); // arrives after close(): dropped
    f.run(20);
    expect(p.events).toEqual(['open', 'close']);
    expect(f.net.sockets[0].endCalls).toBe(1);
    expect(srv.conns[0].received).toBe('\x01\x02\x03'); // accepted bytes were flushed before the end
    expect(srv.conns[0].closedByClient).toBe(true);
    expect(p.write(new Uint8Array([4]))).toBe(false);
    srv.conns[0].reset();
    f.run(10);
    expect(p.count('close')).toBe(1);
  });

  it('close() while connecting: one onClose, never onOpen', () => {
    const f = fake();
    f.net.listen('10.0.0.1', 1883, { connectDelayMs: 50 });
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    f.run(10);
    p.close();
    f.run(100);
    expect(p.events).toEqual(['close']);
  });

  it('open() without a handler or before the previous attempt closed is a programmer error; write() when not open is false', () => {
    const f = fake();
    f.net.listen('10.0.0.1', 1883);
    const hal = createEspruinoHal({ env: f.env });
    const t = new EspruinoNetTransport(f.env, hal.timers);
    expect(() => t.open({ host: '10.0.0.1', port: 1883 })).toThrow();
    const p = new Probe(f);
    expect(p.write(new Uint8Array([1]))).toBe(false);
    p.open({ host: '10.0.0.1', port: 1883 });
    expect(() => p.open({ host: '10.0.0.1', port: 1883 })).toThrow();
    expect(p.write(new Uint8Array([1]))).toBe(false); // not yet onOpen
    p.close();
    expect(() => p.open({ host: '10.0.0.1', port: 1883 })).toThrow(); // onClose not yet delivered
    f.run(0);
    p.open({ host: '10.0.0.1', port: 1883 });
  });

  it('write() returns false above the high-water mark (4096 bytes) and onDrain follows when Espruino drains', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1883, { drainDelayMs: Infinity });
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 1883 });
    f.run(10);
    expect(p.events).toEqual(['open']); // the 'drain' Espruino emits at connect is not an onDrain
    expect(p.write(bytes(4000, 1))).toBe(true);
    expect(p.write(bytes(96, 2))).toBe(true);
    expect(p.write(bytes(1, 3))).toBe(false);
    f.run(10);
    expect(p.count('drain')).toBe(0);
    f.net.sockets[0].flush();
    expect(p.count('drain')).toBe(1);
    expect(srv.conns[0].received.length).toBe(4097);
    expect(p.write(bytes(10, 3))).toBe(true);
    f.net.sockets[0].flush();
    expect(p.count('drain')).toBe(1); // only after a write() returned false
  });

  it('TLS: PEM certificates are passed to tls.connect as DER; a verification failure is a tls error', () => {
    const f = fake();
    const der = new Uint8Array([0x30, 0x82, 0x01, 0x0a, 0xff, 0x00]);
    const pem = '-----BEGIN CERTIFICATE-----\n' + Buffer.from(der).toString('base64') + '\n-----END CERTIFICATE-----\n';
    f.net.listen('10.0.0.1', 8883, { tlsErrorCode: -14 });
    const p = new Probe(f);
    p.open({ host: '10.0.0.1', port: 8883, tls: { ca: pem, cert: pem, key: pem } });
    f.run(20);
    expect(f.requires).toContain('tls');
    const opts = f.net.sockets[0].connectOptions;
    expect(hex(binToBytes(opts.ca as string))).toBe(hex(der));
    expect(hex(binToBytes(opts.key as string))).toBe(hex(der));
    expect(p.events).toEqual(['error:tls', 'close']);
    expect(p.errors[0].message).toContain('certificate verification failed');
    // anything without a PEM header (DER already) is passed as it is
    p.open({ host: '10.0.0.1', port: 8883, tls: { ca: 'raw' } });
    f.run(20);
    expect(f.net.sockets[1].connectOptions.ca).toBe('raw');
  });

  it('maps Espruino socket error codes', () => {
    const f = fake();
    const srv = f.net.listen('10.0.0.1', 1883);
    const p = new Probe(f);
    for (const [code, want] of [
      [-3, 'timeout'],
      [-4, 'unreachable'],
      [-6, 'dns'],
      [-9, 'reset'],
      [-13, 'tls'],
      [-2, 'io'],
    ] as Array<[number, string]>) {
      p.open({ host: '10.0.0.1', port: 1883 });
      f.run(10);
      srv.conns[srv.conns.length - 1].reset(code, code === -2 ? 'no memory' : 'x');
      f.run(10);
      expect(p.errors[p.errors.length - 1].code).toBe(want);
    }
    expect(p.count('close')).toBe(6);
  });
});

// ---------------------------------------------------------------------------------------------
// Wi-Fi Link

function linkProbe(link: { setHandler(h: LinkHandler): void }) {
  const events: string[] = [];
  link.setHandler({ onUp: () => events.push('up'), onDown: (r) => events.push('down:' + r) });
  return events;
}

describe('Wi-Fi Link', () => {
  it('connects with ssid/password and power save, reports up, signal (RSSI) and the SSID as network id', () => {
    const f = fake();
    const hal = createEspruinoHal({ env: f.env });
    const net = createWifi(hal, { ssid: 'home', password: 'secret', powersave: 'min' });
    const ev = linkProbe(net.link);
    expect(net.link.kind).toBe('wifi');
    net.link.up();
    net.link.up(); // idempotent while attaching
    expect(ev).toEqual([]);
    expect(f.wifi.connects).toEqual([{ ssid: 'home', options: { password: 'secret' } }]);
    expect(f.wifi.configs).toEqual([{ powersave: 'min' }]);
    expect(net.link.signal()).toBeUndefined();
    f.run(200);
    expect(ev).toEqual(['up']); // once, although both the callback and the 'connected' event came
    expect(net.link.isUp()).toBe(true);
    expect(net.link.signal()).toBe(-61);
    expect(net.link.networkId()).toBe('home');
    net.link.up();
    f.run(200);
    expect(f.wifi.connects.length).toBe(1);
  });

  it('maps failure reasons: AUTH_FAIL -> auth, NO_AP_FOUND -> no-network, others -> error: ..., one onDown each', () => {
    for (const [reason, want] of [
      [202, 'auth'],
      [15, 'auth'],
      [201, 'no-network'],
      [203, 'error: wifi ASSOC_FAIL'],
    ] as Array<[number, string]>) {
      const f = fake();
      const link = new WifiLink(f.env, createEspruinoHal({ env: f.env }).timers, { ssid: 's' });
      const ev = linkProbe(link);
      f.wifi.script = { failReason: reason };
      link.up();
      f.run(500);
      expect(ev).toEqual(['down:' + want]);
      expect(link.isUp()).toBe(false);
    }
    // a reason name in any case
    const f = fake();
    const link = new WifiLink(f.env, createEspruinoHal({ env: f.env }).timers, { ssid: 's' });
    const ev = linkProbe(link);
    f.wifi.script = { silent: true };
    link.up();
    f.wifi.emit('disconnected', { reason: '201', msg: 'no_ap_found' });
    expect(ev).toEqual(['down:no-network']);
  });

  it('a lost association is onDown(lost); up() again reconnects', () => {
    const f = fake();
    const net = createWifi(createEspruinoHal({ env: f.env }), { ssid: 's' });
    const ev = linkProbe(net.link);
    net.link.up();
    f.run(200);
    f.wifi.drop(200);
    f.run(10);
    expect(ev).toEqual(['up', 'down:lost']);
    expect(net.link.signal()).toBeUndefined();
    net.link.up();
    f.run(200);
    expect(ev).toEqual(['up', 'down:lost', 'up']);
    expect(f.wifi.connects.length).toBe(2);
  });

  it('down() gives onDown(requested) asynchronously; the ASSOC_LEAVE it causes does not fail the next attach', () => {
    const f = fake();
    const net = createWifi(createEspruinoHal({ env: f.env }), { ssid: 's' });
    const ev = linkProbe(net.link);
    net.link.up();
    f.run(200);
    net.link.down();
    net.link.down(); // idempotent
    expect(ev).toEqual(['up']);
    net.link.up(); // at once: the 'disconnected' (reason 8) of down() arrives during this attach
    f.run(0);
    expect(ev).toEqual(['up']); // the requested down was superseded by the new attach
    f.run(300);
    expect(f.wifi.disconnects).toBe(1);
    expect(ev).toEqual(['up', 'up']);
    net.link.down();
    f.run(10);
    expect(ev).toEqual(['up', 'up', 'down:requested']);
  });

  it('down() while attaching ends the attach with onDown(requested); a late success is ignored', () => {
    const f = fake();
    const net = createWifi(createEspruinoHal({ env: f.env }), { ssid: 's' });
    const ev = linkProbe(net.link);
    net.link.up();
    f.run(50);
    net.link.down();
    f.run(500);
    expect(ev).toEqual(['down:requested']);
    expect(net.link.isUp()).toBe(false);
  });

  it('dhcp_timeout while attaching is onDown(dhcp); setWifiPowerSave applies at once', () => {
    const f = fake();
    const net = createWifi(createEspruinoHal({ env: f.env }), { ssid: 's' });
    const ev = linkProbe(net.link);
    f.wifi.script = { silent: true };
    net.link.up();
    f.wifi.emit('dhcp_timeout');
    expect(ev).toEqual(['down:dhcp']);
    setWifiPowerSave(net.link, 'none');
    expect(f.wifi.configs).toEqual([{ powersave: 'none' }]);
  });
});

// ---------------------------------------------------------------------------------------------
// Storage

/**
 * Run a storage call during which the power fails (the fake flash throws FakePowerLoss at the cut and
 * stays dead). The HAL may catch that throw and report false (it maps Storage exceptions to false),
 * and may even go on calling a dead flash: on a device nothing runs after the cut, so only what is on
 * flash afterwards matters. Returns the call's result, or 'threw'.
 */
function powerFails(flash: FakeStorage, fn: () => unknown): unknown {
  let r: unknown;
  try {
    r = fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FakePowerLoss);
    r = 'threw';
  }
  expect(flash.dead).toBe(true);
  return r;
}

function store(flash: FakeStorage, f?: FakeEspruino) {
  const env = f ?? fake({ storage: flash });
  env.storage = flash;
  return new EspruinoStorage(env.env);
}

describe('Storage on Espruino Storage', () => {
  it('append, read, size, replace, erase, list; bytes 0x00..0xFF (escaped on flash) come back exactly', () => {
    const flash = new FakeStorage();
    const s = store(flash);
    expect(s.read('a')).toBeUndefined();
    expect(s.size('a')).toBeUndefined();
    expect(s.append('a', allBytes())).toBe(true);
    expect(s.append('a', new Uint8Array([0xfe, 0xff, 0xfe, 0x01, 0xfe, 0x02]))).toBe(true);
    const want = cat(allBytes(), new Uint8Array([0xfe, 0xff, 0xfe, 0x01, 0xfe, 0x02]));
    expect(hex(s.read('a'))).toBe(hex(want));
    expect(s.size('a')).toBe(262);
    expect(s.replace('a', new Uint8Array([1, 2, 3]))).toBe(true);
    expect(hex(s.read('a'))).toBe('010203');
    expect(s.replace('b', new Uint8Array(0))).toBe(true);
    expect(s.read('b')).toEqual(new Uint8Array(0));
    expect(s.append('c', new Uint8Array(0))).toBe(true); // creates an empty record
    expect(s.list()).toEqual(['a', 'b', 'c']);
    expect(s.list('b')).toEqual(['b']);
    s.erase('b');
    s.erase('b');
    expect(s.list()).toEqual(['a', 'c']);
    // no stored byte is 0xFF except erased space after the data
    for (const fl of flash.files.filter((x) => !x.trash)) {
      const d = fl.data;
      const end = d.indexOf(0xff);
      expect(end < 0 ? d.length : d.subarray(end).every((b) => b === 0xff)).toBeTruthy();
    }
    // a fresh instance (a reboot) sees the same
    const s2 = store(flash.reboot());
    expect(hex(s2.read('a'))).toBe('010203');
    expect(s2.list()).toEqual(['a', 'c']);
    expect(s2.free()).toBe(flash.getFree());
  });

  it('names: 1..28 printable characters; 28-character names work although the stem must fit with a suffix', () => {
    const flash = new FakeStorage();
    const s = store(flash);
    const n27 = 'x'.repeat(27);
    const n28a = 'y'.repeat(27) + 'a';
    const n28b = 'y'.repeat(27) + 'b';
    expect(s.append(n27, new Uint8Array([1]))).toBe(true);
    expect(s.append(n28a, new Uint8Array([2]))).toBe(true);
    expect(s.append(n28b, new Uint8Array([3]))).toBe(true);
    expect(hex(s.read(n28a))).toBe('02');
    expect(hex(s.read(n28b))).toBe('03');
    expect(s.list()).toEqual([n27, n28a, n28b]);
    expect(flash.list().every((n) => n.length <= 28)).toBe(true);
    for (const bad of ['', 'z'.repeat(29), 'a\nb', 'caf\u00e9']) {
      expect(() => s.append(bad, new Uint8Array([1]))).toThrow();
      expect(() => s.read(bad)).toThrow();
    }
    // the fake truncates long names like Espruino does: that is why the HAL must never pass one
    flash.write('q'.repeat(30), 'v');
    expect(flash.read('q'.repeat(28))).toBe('v');
  });

  it('ignores files that are not its records (saved code, StorageFile chunks, other apps)', () => {
    const flash = new FakeStorage();
    flash.write('.bootcde', 'print(1)');
    flash.write('log\x01', 'abc', 0, 100);
    flash.write('cfg\x80', 'junk that is not a header');
    const s = store(flash);
    s.append('cfg', new Uint8Array([9]));
    expect(s.list()).toEqual(['cfg']);
    expect(hex(s.read('cfg'))).toBe('09');
  });

  it('append never rewrites: 2,000 x 40-byte appends program ~the bytes appended, no file is trashed', () => {
    const flash = new FakeStorage(512 * 1024);
    const s = store(flash);
    let total = 0;
    const all: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      const b = bytes(40, i);
      all.push(b);
      total += 40;
      expect(s.append('log', b)).toBe(true);
    }
    expect(s.size('log')).toBe(total);
    expect(flash.getStats().trashCount).toBe(0);
    // data + escapes (~2/256) + headers of ~20 segments + the record header
    expect(flash.programmed).toBeLessThan(total * 1.02 + 32 * 30 + 64);
    expect(flash.created).toBeLessThan(30);
    expect(hex(store(flash.reboot()).read('log'))).toBe(hex(cat(...all)));
  });

  it('a torn append (power loss at every byte) leaves the old bytes + a prefix of the new ones; appends go on', () => {
    const base = new FakeStorage();
    const s0 = store(base);
    const old = bytes(300, 1); // spans the first 256-byte segment
    s0.append('r', old);
    const add = cat(bytes(500, 2), new Uint8Array([0xff, 0xfe, 0xff]));
    // bytes the append programs: measure once
    const probe = base.reboot();
    const before = probe.programmed;
    store(probe).append('r', add);
    const cost = probe.programmed - before;
    expect(cost).toBeGreaterThan(add.length);
    for (let n = 0; n < cost; n++) {
      const flash = base.reboot();
      const s = store(flash);
      s.size('r'); // state loaded before the power fails
      flash.failAfterBytes(n);
      powerFails(flash, () => s.append('r', add));
      const after = flash.reboot();
      const s2 = store(after);
      const got = s2.read('r') as Uint8Array;
      expect(hex(got.subarray(0, old.length))).toBe(hex(old));
      const tail = got.subarray(old.length);
      expect(tail.length).toBeLessThanOrEqual(add.length);
      // the tail is a prefix of the new bytes, except possibly its last byte (half an escape pair)
      expect(hex(tail.subarray(0, Math.max(0, tail.length - 1)))).toBe(hex(add.subarray(0, Math.max(0, tail.length - 1))));
      expect(s2.size('r')).toBe(got.length);
      expect(s2.append('r', new Uint8Array([7, 7]))).toBe(true);
      const again = store(after.reboot()).read('r') as Uint8Array;
      expect(hex(again)).toBe(hex(cat(got, new Uint8Array([7, 7]))));
    }
  });

  it('a torn append that leaves garbage (half-programmed flash) loses nothing before it; later appends still work', () => {
    const base = new FakeStorage();
    store(base).append('r', bytes(100, 1));
    for (const n of [1, 5, 37, 90]) {
      const flash = base.reboot();
      const s = store(flash);
      s.size('r');
      flash.failAfterBytes(n, 0x00);
      powerFails(flash, () => s.append('r', bytes(120, 2)));
      const after = flash.reboot();
      const s2 = store(after);
      const got = s2.read('r') as Uint8Array;
      expect(hex(got.subarray(0, 100))).toBe(hex(bytes(100, 1)));
      expect(s2.append('r', new Uint8Array([0xaa, 0xbb]))).toBe(true);
      const again = store(after.reboot()).read('r') as Uint8Array;
      expect(hex(again.subarray(0, 100))).toBe(hex(bytes(100, 1)));
      expect(hex(again.subarray(again.length - 2))).toBe('aabb');
    }
  });

  it('replace is atomic: a power loss at every programmed byte leaves exactly the old or the new content', () => {
    const base = new FakeStorage();
    const s0 = store(base);
    s0.replace('r', bytes(700, 1)); // several segments
    s0.append('r', bytes(300, 2)); // plus appended data
    const oldContent = s0.read('r') as Uint8Array;
    const next = cat(bytes(900, 3), new Uint8Array([0xff, 0xfe]));
    const probe = base.reboot();
    const before = probe.programmed;
    store(probe).replace('r', next);
    const cost = probe.programmed - before;
    const seen = { old: 0, new: 0 };
    for (let n = 0; n < cost; n++) {
      const flash = base.reboot();
      const s = store(flash);
      s.size('r');
      flash.failAfterBytes(n);
      const ok = powerFails(flash, () => s.replace('r', next));
      const after = flash.reboot();
      const s2 = store(after);
      const got = hex(s2.read('r'));
      if (got === hex(next)) seen.new++;
      else {
        expect(got).toBe(hex(oldContent));
        expect(ok).not.toBe(true);
        seen.old++;
      }
      // and the record stays usable
      expect(s2.append('r', new Uint8Array([5]))).toBe(true);
      expect(hex(store(after.reboot()).read('r'))).toBe(got + '05');
    }
    expect(seen.old).toBeGreaterThan(0);
    expect(seen.new).toBeGreaterThan(0);
  });

  it('a first replace interrupted at every byte leaves no record or the complete one', () => {
    const probe = new FakeStorage();
    store(probe).replace('fresh', bytes(400, 9));
    const cost = probe.programmed;
    for (let n = 0; n < cost; n++) {
      const flash = new FakeStorage();
      const s = store(flash);
      flash.failAfterBytes(n);
      powerFails(flash, () => s.replace('fresh', bytes(400, 9)));
      const got = store(flash.reboot()).read('fresh');
      expect(got === undefined || hex(got) === hex(bytes(400, 9))).toBe(true);
      expect(store(flash.reboot()).list()).toEqual(got === undefined ? [] : ['fresh']);
    }
  });

  it('compacts when free space runs short (trash from replaces), and says false when full, keeping the old content', () => {
    const flash = new FakeStorage(20 * 1024);
    const s = store(flash);
    for (let i = 0; i < 40; i++) expect(s.replace('snap', bytes(3000, i))).toBe(true);
    expect(flash.compactions).toBeGreaterThan(0);
    expect(hex(store(flash.reboot()).read('snap'))).toBe(hex(bytes(3000, 39)));
    // fill up
    let n = 0;
    while (s.append('fill', bytes(1000, n))) n++;
    expect(n).toBeGreaterThan(5);
    const size = s.size('fill');
    expect(s.append('fill', bytes(4000, 1))).toBe(false);
    expect(s.size('fill')).toBe(size);
    expect(hex(store(flash.reboot()).read('fill'))).toBe(hex(s.read('fill')));
    expect(s.replace('snap', bytes(9000, 1))).toBe(false);
    expect(hex(s.read('snap'))).toBe(hex(bytes(3000, 39)));
  });

  it('firmware/session persists through it and reloads the same state after a reboot', () => {
    const flash = new FakeStorage();
    const limits = { maxMessages: 100, maxBytes: 20000, overflow: 'drop-oldest-qos0', compactBytes: 600 } as never;
    const s = new Session(store(flash), 'dev', limits);
    s.load();
    for (let i = 0; i < 60; i++) {
      expect(s.enqueue('t/' + i, bytes(30, i), 1, false).ok).toBe(true);
      const m = s.nextQueued();
      if (m === undefined) throw new Error('no message');
      const id = s.allocateId();
      s.markSent(m.seq, id);
      if (i % 3 !== 0) s.complete(id, 'puback');
    }
    const s2 = new Session(store(flash.reboot()), 'dev', limits);
    expect(s2.load().droppedBytes).toBe(0);
    expect(s2.all().map((m) => m.topic)).toEqual(s.all().map((m) => m.topic));
    expect(flash.getStats().trashCount).toBeGreaterThan(0); // compactions went through replace()
  });
});

// ---------------------------------------------------------------------------------------------
// Clock, timers, power, log, random

describe('Clock and TimerHost', () => {
  it('now() is getTime() in ms from 0, monotonic across setTime/SNTP jumps', () => {
    const f = fake({ startSec: 12.5 });
    const c = new EspruinoClock(f.env);
    expect(c.now()).toBe(0);
    f.run(1500);
    expect(c.now()).toBe(1500);
    f.timeOffsetSec += 1.7e9; // SNTP: 1970 -> 2023
    f.run(10);
    expect(c.now()).toBe(1500);
    f.run(250);
    expect(c.now()).toBe(1750);
    f.timeOffsetSec -= 3600; // set back an hour
    expect(c.now()).toBe(1750);
    f.timeOffsetSec += 2; // a small correction passes
    expect(c.now()).toBe(3750);
    expect(c.elapsed(3000)).toBe(750);
  });

  it('set/clear: handles are never undefined, clear is idempotent and never clears another timer', () => {
    const f = fake();
    const t = new EspruinoTimerHost(f.env);
    const fired: string[] = [];
    const a = t.set(10, () => fired.push('a'));
    const b = t.set(20, () => fired.push('b'));
    expect(a).toBeDefined();
    t.clear(a);
    t.clear(a);
    t.clear(undefined);
    f.run(30);
    expect(fired).toEqual(['b']);
    t.clear(b); // already fired: nothing
    const c = t.set(5, () => fired.push('c'));
    t.clear(b);
    f.run(10);
    expect(fired).toEqual(['b', 'c']);
    t.clear(c);
    t.set(-5, () => fired.push('neg'));
    t.set(NaN, () => fired.push('nan'));
    expect(fired).toEqual(['b', 'c']); // never synchronously
    f.run(0);
    expect(fired).toEqual(['b', 'c', 'neg', 'nan']);
  });
});

describe('Power', () => {
  it('deep sleep calls ESP32.deepSleep with microseconds, capped at 2^31-1 µs; light sleep returns', () => {
    const f = fake();
    const p = new EspruinoPower(f.env);
    p.sleep('light', 60000);
    expect(f.esp32.sleeps).toEqual([]);
    p.sleep('deep', 1500);
    p.sleep('deep', 3600000);
    expect(f.esp32.sleeps).toEqual([1500000, MAX_DEEP_SLEEP_US]);
  });

  it('maps the wake cause', () => {
    for (const [code, want] of [
      [0, 'power-on'],
      [4, 'timer'],
      [2, 'external'],
      [3, 'external'],
      [7, 'external'],
      [42, 'unknown'],
    ] as Array<[number, string]>) {
      const f = fake();
      f.esp32.wakeCause = code;
      expect(new EspruinoPower(f.env).wakeCause()).toBe(want);
    }
    const uf = fake();
    uf.esp32.wakeCause = undefined as unknown as number;
    expect(new EspruinoPower(uf.env).wakeCause()).toBe('unknown');
    const nf = fake({ noEsp32: true });
    const p = new EspruinoPower(nf.env);
    expect(p.wakeCause()).toBe('power-on');
    p.sleep('deep', 1000); // no ESP32: nothing to call
  });

  it('battery millivolts from the ADC: reading x full scale x divider, averaged; undefined without a divider or an analog pin', () => {
    const f = fake();
    f.analog.D35 = 0.55;
    const p = new EspruinoPower(f.env, { battery: { pin: 'D35', dividerRatio: 2 } });
    expect(p.batteryMv()).toBe(3630);
    expect(new EspruinoPower(f.env).batteryMv()).toBeUndefined();
    expect(new EspruinoPower(f.env, { battery: { pin: 'D1', dividerRatio: 2 } }).batteryMv()).toBeUndefined(); // NaN
  });
});

describe('Log and Random', () => {
  it('prints levelled lines with time and tag; enabled() follows the level; never throws', () => {
    const f = fake();
    const log = new EspruinoLog(f.env, { logLevel: 'info' }); // its own clock: 0 at construction
    f.run(1234);
    log.debug('x', 'hidden');
    log.info('mqtt', 'hello');
    log.error('link', 'bad');
    expect(f.printed).toEqual(['1.234 I mqtt: hello', '1.234 E link: bad']);
    expect(log.enabled('debug')).toBe(false);
    expect(log.enabled('warn')).toBe(true);
    f.env.print = () => {
      throw new Error('console gone');
    };
    log.warn('x', 'y');
  });

  it('Random uses E.hwRand and stays in [0, 1)', () => {
    const f = fake();
    const r = new EspruinoRandom(f.env);
    const v = Array.from({ length: 1000 }, () => r.next());
    expect(v.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(v.map((x) => Math.floor(x * 10))).size).toBe(10);
  });
});

describe('createEspruinoHal / createWifi / createCellular', () => {
  it('wires the parts on the given environment', () => {
    const f = fake();
    f.analog.D35 = 0.5;
    const hal = createEspruinoHal({ env: f.env, battery: { pin: 'D35', dividerRatio: 2 }, logLevel: 'warn' });
    expect(hal.power.batteryMv()).toBe(3300);
    expect(hal.log.enabled('info')).toBe(false);
    hal.storage.append('x', new Uint8Array([1]));
    expect(f.storage.list().length).toBe(1);
    const w = createWifi(hal, { ssid: 'n' });
    expect(w.link.networkId()).toBe('n');
    const c = createCellular(hal, { apn: 'iot.apn', rx: 'D26', tx: 'D27', baud: 57600, pwrkeyPin: 'D4' });
    expect(f.serial2.setups).toEqual([[57600, { rx: 'D26', tx: 'D27' }]]);
    expect(c.link.kind).toBe('cellular');
    expect(c.link.networkId()).toBe('iot.apn');
    c.link.up();
    f.run(1000); // the AT probe goes out on Serial2
    expect(f.serial2.written[0]).toBe('AT\r');
    c.link.down();
    f.run(100000);
  });

  it('bytes helpers agree', () => {
    expect(bytesToBin(binToBytes('\x00\xff'))).toBe('\x00\xff');
  });
});
