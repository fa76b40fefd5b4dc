// A fake Espruino environment for testing hal/espruino on Node, in virtual time (hal/mock VirtualClock).
// Each fake follows what the Espruino 2v29 sources do (libs/network/socketserver.c, jswrap_net.c,
// libs/network/esp32/jswrap_esp32_network.c, src/jsflash.c, jswrap_storage.c, targets/esp32):
//
// - net/tls: connect() THROWS synchronously ("Unable to create socket" when nobody listens, "Unable
//   to locate host" for an unknown name); data reaches the client as binary strings in chunks of at
//   most 536 bytes (or smaller, as the test says), the first one possibly before the connect callback
//   (greeting); write() takes a string and turns anything else into
//   its toString() ("48,128" for a Uint8Array); write() returns false; 'drain' when the send buffer is
//   empty (also right after connect); errors are {code, message} then 'end' then 'close'(true); a peer
//   close is 'end' then 'close'(false); end() closes after the buffer is sent, with 'end' + 'close'.
// - Wifi: connect(ssid, {password}, cb(err)), events 'associated', 'connected', 'disconnected'
//   {reason: "<number>", msg: "<NAME>"}, disconnect() -> 'disconnected' reason 8 (ASSOC_LEAVE),
//   getStatus().rssi, setConfig({powersave}).
// - Storage: a flash of `capacity` bytes holding files (32-byte header + data, 4-byte aligned) in
//   journal order; write(name, data, offset, size) with jsfWriteFile's rules (offset 0 re-creates,
//   offset > 0 writes inside, only into erased 0xFF bytes, else throws); names silently truncated
//   to 28 characters; erase() leaves trash; compact() drops trash; automatic compaction when a new
//   file needs the trash space; failAfterBytes(n) cuts the power after n more programmed bytes.
// - E: toString/toUint8Array/CRC32/hwRand; ESP32: deepSleep/getWakeupCause/setAtten; analogRead,
//   digitalWrite; clearTimeout(undefined) clears EVERY timer (and is counted, so tests catch it).

import { crc32 } from 'node:zlib';
import { VirtualClock } from '../../hal/mock/index';
import type { EspruinoEnv } from '../../hal/espruino/env';

// ---------------------------------------------------------------------------------------------
// E

function toBinary(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String.fromCharCode(v & 255);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.length).toString('latin1');
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString('latin1');
  if (ArrayBuffer.isView(v)) return toBinary(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  if (Array.isArray(v)) return v.map(toBinary).join('');
  throw new Error('fake E: cannot convert ' + typeof v);
}

export function binToBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

export function bytesToBin(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

export interface FakeE {
  toString(...args: unknown[]): string;
  toUint8Array(...args: unknown[]): Uint8Array;
  CRC32(d: string | Uint8Array): number;
  hwRand(): number;
  /** Calls, for assertions (e.g. that bytes are converted natively, not byte by byte). */
  calls: { toString: number; toUint8Array: number };
}

export function makeFakeE(): FakeE {
  const calls = { toString: 0, toUint8Array: 0 };
  let seed = 12345;
  return {
    calls,
    toString(...args: unknown[]): string {
      calls.toString++;
      return args.map(toBinary).join('');
    },
    toUint8Array(...args: unknown[]): Uint8Array {
      calls.toUint8Array++;
      return binToBytes(args.map(toBinary).join(''));
    },
    CRC32(d: string | Uint8Array): number {
      return crc32(typeof d === 'string' ? Buffer.from(d, 'latin1') : Buffer.from(d)) >>> 0;
    },
    hwRand(): number {
      seed = (seed * 1103515245 + 12345) | 0;
      return seed;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Events

class Emitter {
  private ls: Record<string, Array<(a?: unknown) => void>> = {};
  on(ev: string, cb: (a?: unknown) => void): void {
    (this.ls[ev] ??= []).push(cb);
  }
  emit(ev: string, arg?: unknown): void {
    for (const cb of (this.ls[ev] ?? []).slice()) cb(arg);
  }
  listeners(ev: string): number {
    return (this.ls[ev] ?? []).length;
  }
}

// ---------------------------------------------------------------------------------------------
// net / tls

export interface FakeServerOptions {
  /** Split each server->client send into chunks of these sizes (cycled); default [536]. */
  chunks?: number[];
  /** ms from connect() to the connect callback (default 5). */
  connectDelayMs?: number;
  /** The client's send buffer drains this many ms after a write (default 1); Infinity = never. */
  drainDelayMs?: number;
  /** TLS only: after connecting, fail with this Espruino code (-13 handshake, -14 invalid cert). */
  tlsErrorCode?: number;
  /** Sent by the server as soon as the client connects, emitted BEFORE the connect callback (as
   * Espruino 2v29 does when the data is already there at the first poll). */
  greeting?: string;
}

/** The server side of one fake connection. */
export class FakeServerConn {
  /** What the client sent (binary string). */
  received = '';
  closedByClient = false;
  constructor(
    readonly net: FakeNet,
    readonly sock: FakeSocket,
  ) {}
  /** Bytes as the client will see them: split into the server's chunk sizes, one event each. */
  send(data: Uint8Array | string): void {
    const s = typeof data === 'string' ? data : bytesToBin(data);
    const sizes = this.sock.opts.chunks ?? [536];
    let i = 0;
    let k = 0;
    while (i < s.length) {
      const n = Math.max(1, Math.min(536, sizes[k++ % sizes.length]));
      const part = s.substr(i, n);
      i += n;
      this.net.later(() => this.sock.deliver('data', part));
    }
  }
  /** Graceful close from the server: 'end' then 'close'(false). */
  end(): void {
    this.net.later(() => this.sock.kill(undefined));
  }
  /** Connection broken: 'error' {code, message}, 'end', 'close'(true). */
  reset(code = -9, message = 'Connection reset'): void {
    this.net.later(() => this.sock.kill({ code, message }));
  }
}

export class FakeSocket extends Emitter {
  state: 'connecting' | 'open' | 'closed' = 'connecting';
  /** Unsent bytes in Espruino's send buffer. */
  sendBuffer = '';
  /** Every write() argument as received (to check nothing but strings arrives). */
  writes: unknown[] = [];
  endCalls = 0;
  server: FakeServerConn | undefined;
  private ending = false;
  private drainTimer = false;
  constructor(
    readonly net: FakeNet,
    readonly opts: FakeServerOptions,
    readonly connectOptions: Record<string, unknown>,
  ) {
    super();
  }
  write(data: unknown): boolean {
    this.writes.push(data);
    if (this.state === 'closed') throw new Error('This socket is closed');
    // Espruino: "Data that is passed in (including arrays) will be converted to a string with the
    // normal JavaScript toString method"
    this.sendBuffer += typeof data === 'string' ? data : String(data);
    this.scheduleDrain();
    return false;
  }
  end(): void {
    this.endCalls++;
    if (this.state === 'closed' || this.ending) return;
    this.ending = true;
    this.scheduleDrain();
  }
  private scheduleDrain(): void {
    if (this.drainTimer || this.state !== 'open') return;
    const d = this.opts.drainDelayMs ?? 1;
    if (d === Infinity) return;
    this.drainTimer = true;
    this.net.clock.set(d, () => {
      this.drainTimer = false;
      this.flush();
    });
  }
  /** The send buffer goes out to the server (the test may call it when drainDelayMs is Infinity). */
  flush(): void {
    if (this.state !== 'open') return;
    if (this.sendBuffer.length > 0) {
      if (this.server) this.server.received += this.sendBuffer;
      this.sendBuffer = '';
      if (!this.ending) this.deliver('drain');
    }
    if (this.ending) {
      if (this.server) this.server.closedByClient = true;
      this.kill(undefined);
    }
  }
  deliver(ev: string, arg?: unknown): void {
    if (this.state === 'closed') return;
    this.emit(ev, arg);
  }
  kill(err: { code: number; message: string } | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (err) this.emit('error', err);
    this.emit('end');
    this.emit('close', err !== undefined);
  }
  connected(cb: ((s: FakeSocket) => void) | undefined): void {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    if (cb) cb(this);
    this.emit('connect', this);
    if (this.sendBuffer.length === 0) this.emit('drain');
    else this.scheduleDrain();
  }
}

export class FakeNet {
  readonly servers: Record<string, { opts: FakeServerOptions; conns: FakeServerConn[] }> = {};
  /** Host names that resolve (besides dotted IPs). */
  readonly hosts: string[] = ['localhost', 'broker.example'];
  readonly sockets: FakeSocket[] = [];
  connectCalls = 0;
  constructor(
    readonly clock: VirtualClock,
    readonly tls: boolean,
    private readonly shared?: FakeNet,
  ) {}
  private root(): FakeNet {
    return this.shared ?? this;
  }
  listen(host: string, port: number, opts: FakeServerOptions = {}): { opts: FakeServerOptions; conns: FakeServerConn[] } {
    const s = { opts, conns: [] as FakeServerConn[] };
    this.root().servers[host + ':' + port] = s;
    return s;
  }
  later(fn: () => void, ms = 0): void {
    this.clock.set(ms, fn);
  }
  connect(options: Record<string, unknown>, cb?: (s: FakeSocket) => void): FakeSocket {
    const root = this.root();
    root.connectCalls++;
    const host = String(options.host);
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(host) && root.hosts.indexOf(host) < 0) throw new Error('Unable to locate host');
    const server = root.servers[host + ':' + options.port];
    if (!server) throw new Error('Unable to create socket');
    const sock = new FakeSocket(root, server.opts, options);
    root.sockets.push(sock);
    const conn = new FakeServerConn(root, sock);
    sock.server = conn;
    server.conns.push(conn);
    this.later(() => {
      if (this.tls && server.opts.tlsErrorCode !== undefined) {
        sock.kill({ code: server.opts.tlsErrorCode, message: server.opts.tlsErrorCode === -14 ? 'SSL invalid' : 'SSL handshake failed' });
        return;
      }
      if (server.opts.greeting !== undefined) sock.deliver('data', server.opts.greeting);
      sock.connected(cb);
    }, server.opts.connectDelayMs ?? 5);
    return sock;
  }
}

// ---------------------------------------------------------------------------------------------
// Wifi

export interface WifiScript {
  /** undefined = success; otherwise the ESP-IDF reason number the attempt fails with. */
  failReason?: number;
  /** ms from connect() to the outcome (default 100). */
  delayMs?: number;
  /** Never answer (no event, no callback). */
  silent?: boolean;
}

export const WIFI_REASON_NAMES: Record<number, string> = {
  2: 'AUTH_EXPIRE',
  8: 'ASSOC_LEAVE',
  15: '4WAY_HANDSHAKE_TIMEOUT',
  200: 'BEACON_TIMEOUT',
  201: 'NO_AP_FOUND',
  202: 'AUTH_FAIL',
  203: 'ASSOC_FAIL',
  204: 'HANDSHAKE_TIMEOUT',
};

export class FakeWifi extends Emitter {
  script: WifiScript = {};
  connected = false;
  rssi = -61;
  connects: Array<{ ssid: string; options: Record<string, unknown> }> = [];
  configs: Array<Record<string, unknown>> = [];
  disconnects = 0;
  constructor(readonly clock: VirtualClock) {
    super();
  }
  connect(ssid: string, options: Record<string, unknown>, cb?: (err: string | null) => void): void {
    this.connects.push({ ssid, options });
    const s = this.script;
    if (s.silent) return;
    this.clock.set(s.delayMs ?? 100, () => {
      if (s.failReason === undefined) {
        this.connected = true;
        this.emit('associated', { ssid });
        if (cb) cb(null);
        this.emit('connected', { ip: '192.168.1.50' });
      } else {
        const msg = WIFI_REASON_NAMES[s.failReason] ?? 'UNSPECIFIED';
        this.emit('disconnected', { ssid, reason: String(s.failReason), msg });
        if (cb) cb(msg);
      }
    });
  }
  disconnect(cb?: () => void): void {
    this.disconnects++;
    const was = this.connected;
    this.connected = false;
    this.clock.set(5, () => {
      if (was) this.emit('disconnected', { reason: '8', msg: 'ASSOC_LEAVE' });
      if (cb) cb();
    });
  }
  /** The AP goes away (test side). */
  drop(reason = 200): void {
    this.connected = false;
    this.clock.set(0, () => this.emit('disconnected', { reason: String(reason), msg: WIFI_REASON_NAMES[reason] ?? 'UNSPECIFIED' }));
  }
  getStatus(): Record<string, unknown> {
    return this.connected ? { station: 'connected', rssi: this.rssi } : { station: 'NO_AP_FOUND' };
  }
  setConfig(o: Record<string, unknown>): void {
    this.configs.push(o);
  }
}

// ---------------------------------------------------------------------------------------------
// Storage (flash)

/** Thrown by FakeStorage when the simulated power fails (and by every call until reboot()). */
export class FakePowerLoss extends Error {
  constructor(m: string) {
    super(m);
    this.name = 'FakePowerLoss';
  }
}

interface FlashFile {
  name: string;
  size: number;
  data: Uint8Array;
  trash: boolean;
}

const HEADER = 32;
const align = (n: number) => (n + 3) & ~3;

export class FakeStorage {
  files: FlashFile[] = [];
  capacity: number;
  /** Flash wear accounting: bytes programmed (headers, data, erase markers), files created, compactions. */
  programmed = 0;
  created = 0;
  compactions = 0;
  dead = false;
  private budget: number | undefined;
  private tornFill: number | undefined;

  constructor(capacity = 256 * 1024) {
    this.capacity = capacity;
  }

  /** Power fails after `n` more programmed bytes; the rest of the interrupted write is left erased,
   * or (tornFill) programmed with that byte, like a half-programmed flash word. */
  failAfterBytes(n: number, tornFill?: number): void {
    this.budget = n;
    this.tornFill = tornFill;
  }

  /** The flash as it is now, in a fresh instance (a reboot). */
  reboot(): FakeStorage {
    const s = new FakeStorage(this.capacity);
    s.files = this.files.map((f) => ({ name: f.name, size: f.size, data: new Uint8Array(f.data), trash: f.trash }));
    return s;
  }

  private alive(): void {
    if (this.dead) throw new FakePowerLoss('flash is powered off');
  }

  private spend(n: number): number {
    if (this.budget === undefined) return n;
    const k = Math.min(n, this.budget);
    this.budget -= k;
    return k;
  }

  private lose(what: string): never {
    this.dead = true;
    this.budget = undefined;
    throw new FakePowerLoss('power lost during ' + what);
  }

  private find(name: string): FlashFile | undefined {
    return this.files.find((f) => !f.trash && f.name === name);
  }

  private used(): number {
    let n = 0;
    for (const f of this.files) n += HEADER + align(f.size);
    return n;
  }

  private trashBytes(): number {
    let n = 0;
    for (const f of this.files) if (f.trash) n += HEADER + align(f.size);
    return n;
  }

  private markTrash(f: FlashFile): void {
    if (this.spend(1) < 1) this.lose('erase of ' + JSON.stringify(f.name));
    f.trash = true;
    this.programmed += 1;
  }

  private create(name: string, size: number): FlashFile {
    const need = HEADER + align(size);
    if (this.capacity - this.used() < need) {
      if (this.capacity - this.used() + this.trashBytes() >= need) this.compact();
      else throw new Error('Unable to find or create file');
    }
    if (this.spend(HEADER) < HEADER) this.lose('header of ' + JSON.stringify(name));
    const f: FlashFile = { name, size, data: new Uint8Array(size).fill(0xff), trash: false };
    this.files.push(f);
    this.programmed += HEADER;
    this.created++;
    return f;
  }

  write(nameIn: string, data: unknown, offset?: number, size?: number): boolean {
    this.alive();
    const name = String(nameIn).substr(0, 28);
    const d = binToBytes(typeof data === 'string' ? data : toBinary(data));
    const off = offset ?? 0;
    let sz = size ?? 0;
    if (off < 0 || sz < 0) return false;
    if (sz === 0) sz = d.length;
    if (sz === 0) throw new Error("Can't create zero length file");
    let f = this.find(name);
    const erased = (ff: FlashFile, a: number, n: number) => ff.data.subarray(a, a + n).every((b) => b === 0xff);
    if ((!f && off === 0) || (f && off === 0 && (sz !== f.size || !erased(f, 0, f.size)))) {
      if (f && off === 0 && sz === f.size && d.length === sz && Buffer.from(f.data).equals(Buffer.from(d))) return true;
      if (f) this.markTrash(f);
      f = this.create(name, sz);
    }
    if (!f) throw new Error('Unable to find or create file');
    if (off + d.length > f.size) throw new Error('Too much data for file size');
    if (!erased(f, off, d.length)) throw new Error('File already written with different data');
    const k = this.spend(d.length);
    f.data.set(d.subarray(0, k), off);
    this.programmed += k;
    if (k < d.length) {
      if (this.tornFill !== undefined) f.data.fill(this.tornFill, off + k, off + d.length);
      this.lose('write of ' + JSON.stringify(name) + ' after ' + k + ' of ' + d.length + ' bytes');
    }
    return true;
  }

  read(nameIn: string, offset?: number, length?: number): string | undefined {
    this.alive();
    const f = this.find(String(nameIn).substr(0, 28));
    if (!f) return undefined;
    let off = offset ?? 0;
    let len = length ?? 0;
    if (off < 0) off = 0;
    if (len <= 0) len = f.size;
    if (off > f.size) off = f.size;
    if (off + len > f.size) len = f.size - off;
    return bytesToBin(f.data.subarray(off, off + len));
  }

  readArrayBuffer(name: string): ArrayBuffer | undefined {
    const s = this.read(name);
    return s === undefined ? undefined : (binToBytes(s).buffer as ArrayBuffer);
  }

  erase(name: string): void {
    this.alive();
    const f = this.find(String(name).substr(0, 28));
    if (f) this.markTrash(f);
  }

  list(regex?: RegExp): string[] {
    this.alive();
    return this.files.filter((f) => !f.trash && (!regex || regex.test(f.name))).map((f) => f.name);
  }

  getFree(): number {
    this.alive();
    return this.capacity - this.used();
  }

  getStats(): Record<string, number> {
    const live = this.files.filter((f) => !f.trash);
    return {
      totalBytes: this.capacity,
      freeBytes: this.getFree(),
      fileBytes: this.used() - this.trashBytes(),
      fileCount: live.length,
      trashBytes: this.trashBytes(),
      trashCount: this.files.length - live.length,
    };
  }

  compact(): void {
    this.alive();
    this.files = this.files.filter((f) => !f.trash);
    this.compactions++;
  }
}

// ---------------------------------------------------------------------------------------------
// ESP32, pins, serial

export class FakeESP32 {
  sleeps: number[] = [];
  wakeCause = 0;
  attens: Array<[unknown, number]> = [];
  deepSleep(us: number): void {
    this.sleeps.push(us);
  }
  getWakeupCause(): number {
    return this.wakeCause;
  }
  setAtten(pin: unknown, atten: number): void {
    this.attens.push([pin, atten]);
  }
}

export class FakeSerial extends Emitter {
  setups: Array<[number, Record<string, unknown>]> = [];
  written: string[] = [];
  /** Where writes go (a fake modem). */
  sink: ((s: string) => void) | undefined;
  setup(baud: number, opts: Record<string, unknown>): void {
    this.setups.push([baud, opts]);
  }
  write(s: string): void {
    this.written.push(s);
    if (this.sink) this.sink(s);
  }
}

// ---------------------------------------------------------------------------------------------
// The whole environment

export interface FakeEspruinoOptions {
  /** Flash capacity (default 256 KiB, like the Linux build). */
  flashBytes?: number;
  /** A storage to use (e.g. a rebooted one). */
  storage?: FakeStorage;
  /** getTime() at start, seconds (default 0). */
  startSec?: number;
  /** No ESP32 object (another board). */
  noEsp32?: boolean;
}

export class FakeEspruino {
  readonly clock: VirtualClock;
  readonly E: FakeE;
  readonly net: FakeNet;
  readonly tls: FakeNet;
  readonly wifi: FakeWifi;
  storage: FakeStorage;
  readonly esp32: FakeESP32;
  readonly serial2 = new FakeSerial();
  readonly printed: string[] = [];
  readonly pinWrites: Array<[unknown, number | boolean]> = [];
  analog: Record<string, number> = {};
  /** Added to the virtual clock by getTime() (setTime / SNTP jumps). */
  timeOffsetSec = 0;
  /** clearTimeout(undefined) calls: each one cleared EVERY timer. */
  clearAllCalls = 0;
  requires: string[] = [];
  readonly env: EspruinoEnv;
  private timerIds: number[] = [];

  constructor(options: FakeEspruinoOptions = {}) {
    this.clock = new VirtualClock();
    this.timeOffsetSec = options.startSec ?? 0;
    this.E = makeFakeE();
    this.net = new FakeNet(this.clock, false);
    this.tls = new FakeNet(this.clock, true, this.net);
    this.wifi = new FakeWifi(this.clock);
    this.storage = options.storage ?? new FakeStorage(options.flashBytes);
    this.esp32 = new FakeESP32();
    const self = this;
    this.env = {
      require(name: string): unknown {
        self.requires.push(name);
        if (name === 'net') return self.net;
        if (name === 'tls') return self.tls;
        if (name === 'Wifi') return self.wifi;
        if (name === 'Storage') return self.storage;
        throw new Error('Module ' + name + ' not found');
      },
      E: this.E,
      ESP32: options.noEsp32 ? undefined : this.esp32,
      getTime: () => this.clock.now() / 1000 + this.timeOffsetSec,
      setTimeout: (cb: () => void, ms: number) => {
        const id = this.clock.set(ms, () => {
          this.timerIds = this.timerIds.filter((x) => x !== id);
          cb();
        }) as number;
        this.timerIds.push(id);
        return id;
      },
      clearTimeout: (id: unknown) => {
        if (id === undefined) {
          // Espruino: clearTimeout() with no id stops EVERY timer
          this.clearAllCalls++;
          for (const t of this.timerIds) this.clock.clear(t);
          this.timerIds = [];
          return;
        }
        this.clock.clear(id);
        this.timerIds = this.timerIds.filter((x) => x !== id);
      },
      analogRead: (pin: unknown) => this.analog[String(pin)] ?? NaN,
      digitalWrite: (pin: unknown, v: number | boolean) => {
        this.pinWrites.push([pin, v]);
      },
      pinMode: () => {},
      atob: (s: string) => Buffer.from(s, 'base64').toString('latin1'),
      print: (line: string) => {
        this.printed.push(line);
      },
      Serial2: this.serial2,
    };
  }

  /** Run timers for `ms` of virtual time. */
  run(ms: number): void {
    this.clock.advance(ms);
  }
}
