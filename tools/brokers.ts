// Real brokers on free 127.0.0.1 ports, for the interop tests and the tools (fleet, desktop), stopped
// by PID. No test framework here: test/helpers/brokers.ts adds describeMosquitto() for vitest.
//
// - startAedes(): Aedes 1.2 in-process (MQTT 3.1/3.1.1 only; a v5 CONNECT gets CONNACK rc 1).
//   Always available (npm dev dependency).
// - startMosquitto(): the `mosquitto` binary (3.1.1 and 5.0) as a child process, stopped by PID.
//   Only when mosquittoBin() finds it (PATH, /usr/sbin, or $MOSQUITTO_BIN); tests use
//   describeMosquitto() (test/helpers/brokers.ts) / describe.skipIf(!hasMosquitto).
//
// Every spawned PID and temp dir is tracked and killed/removed on process 'exit' as a safety net;
// tests must still stop their brokers in afterAll.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Aedes } from 'aedes';
import type { AedesOptions } from 'aedes';

export type MqttVersion = 4 | 5;

export interface BrokerHandle {
  readonly kind: 'aedes' | 'mosquitto';
  readonly host: string;
  /** Plain MQTT listener. Stays the same across restart(). */
  readonly port: number;
  /** TLS listener (mosquitto with opts.tls only). */
  readonly tlsPort?: number;
  /** Protocol levels the broker speaks: aedes [4], mosquitto [4, 5]. */
  readonly versions: MqttVersion[];
  /** True between a successful start/restart and stop()/kill(). */
  running(): boolean;
  /** Graceful stop: aedes closes listener, broker and every socket; mosquitto SIGTERM (SIGKILL after 2 s). */
  stop(): Promise<void>;
  /** stop() (if running) then listen again on the SAME port. */
  restart(): Promise<void>;
  /** Crash: aedes destroys every socket without publishing wills; mosquitto SIGKILL. */
  kill(): Promise<void>;
  /** Graceful stop that keeps the handle for a later restart(): aedes closes; mosquitto SIGTERM (saves its db). */
  halt(): Promise<void>;
  /** TCP connections accepted by the broker and still open. */
  connections(): number;
}

export interface AedesHandle extends BrokerHandle {
  readonly kind: 'aedes';
  /** The current Aedes instance (a new one after each restart); undefined while stopped. */
  readonly broker: Aedes | undefined;
  /** Errors the broker emitted as 'error' (kept so they do not crash the test process). */
  readonly errors: Error[];
}

export interface MosquittoHandle extends BrokerHandle {
  readonly kind: 'mosquitto';
  /** PID of the current mosquitto process; undefined while stopped. */
  pid(): number | undefined;
  /** Temp dir holding mosquitto.conf (and mosquitto.db with persistence). Removed by stop(). */
  readonly dir: string;
  /** The last 64 KiB of mosquitto's stderr/stdout (its log), across restarts. */
  log(): string;
}

export const LOOPBACK = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// Safety net: kill every child we spawned and remove temp dirs if the test process exits.

const livePids = new Set<number>();
const liveDirs = new Set<string>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of liveDirs) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Small net helpers

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.removeListener('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Free TCP ports on 127.0.0.1: bind port 0, read the number, close (all held open together so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      ports.push(await listen(s, 0, LOOPBACK));
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return ports;
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0];
}

/** One TCP connect attempt; resolves true if accepted, false on any error. */
export function probe(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      s.destroy();
      resolve(false);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Aedes

export interface StartAedesOptions {
  /** Port to listen on; 0 or absent = a free port. restart() reuses the port actually bound. */
  port?: number;
  /**
   * 'memory': one aedes-persistence memory instance is kept across restart()/kill(), so
   * persistent sessions (clean=false), their subscriptions, queued QoS 1/2 messages and retained
   * messages survive. Absent: every (re)start gets a fresh broker with empty state.
   */
  persistence?: 'memory';
  /** Extra Aedes options (keepaliveLimit, connectTimeout, authenticate, ...). */
  aedes?: Omit<AedesOptions, 'persistence'>;
}

export async function startAedes(opts: StartAedesOptions = {}): Promise<AedesHandle> {
  const host = LOOPBACK;
  let port = opts.port ?? 0;
  // aedes-persistence is not a direct dependency: take the instance the first broker creates
  // (aedes' default memory()) and hand it to later brokers. setup(broker) rebinds it.
  let keptPersistence: unknown = undefined;
  let broker: Aedes | undefined;
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  const errors: Error[] = [];

  async function up(): Promise<void> {
    const aedesOpts: AedesOptions = { ...(opts.aedes ?? {}) };
    if (opts.persistence === 'memory' && keptPersistence !== undefined) aedesOpts.persistence = keptPersistence;
    const b = await Aedes.createBroker(aedesOpts);
    if (opts.persistence === 'memory') keptPersistence = (b as unknown as { persistence: unknown }).persistence;
    // 'error' is missing from aedes' typed events but aedes.js emits it.
    (b as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
      errors.push(err);
    });
    const s = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {
        // aedes handles its own stream errors; this only keeps a late RST from being unhandled.
      });
      b.handle(sock);
    });
    try {
      port = await listen(s, port, host);
    } catch (err) {
      await new Promise<void>((r) => b.close(() => r()));
      throw err;
    }
    broker = b;
    server = s;
  }

  async function down(crash: boolean): Promise<void> {
    const b = broker;
    const s = server;
    broker = undefined;
    server = undefined;
    // close() stops accepting at once; its callback waits for the accepted sockets to be gone.
    const serverClosed = s ? new Promise<void>((r) => s.close(() => r())) : Promise.resolve();
    if (b) {
      if (crash) {
        // A crashed broker publishes nothing more: no wills, no forwarding of in-flight messages.
        (b as unknown as { publish: (p: unknown, c: unknown, d?: unknown) => void }).publish = function (
          _p: unknown,
          c: unknown,
          d?: unknown,
        ) {
          const done = typeof c === 'function' ? c : d;
          if (typeof done === 'function') (done as (e?: Error) => void)();
        };
        for (const sock of sockets) sock.resetAndDestroy();
      }
      await new Promise<void>((r) => b.close(() => r()));
    }
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    await serverClosed;
  }

  await up();

  const handle: AedesHandle = {
    kind: 'aedes',
    host,
    get port() {
      return port;
    },
    versions: [4],
    get broker() {
      return broker;
    },
    errors,
    running: () => broker !== undefined,
    stop: () => down(false),
    halt: () => down(false),
    kill: () => down(true),
    async restart() {
      await down(false);
      await up();
    },
    connections: () => sockets.size,
  };
  return handle;
}

// ---------------------------------------------------------------------------------------------
// Mosquitto

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

let binCache: string | null | undefined;

/** Path of the mosquitto broker: $MOSQUITTO_BIN, then PATH, then /usr/sbin, /usr/local/sbin, ... ($WREN_NO_MOSQUITTO=1: none). */
export function mosquittoBin(): string | undefined {
  if (binCache !== undefined) return binCache ?? undefined;
  if (process.env.WREN_NO_MOSQUITTO) {
    binCache = null; // to exercise the skip path
    return undefined;
  }
  const candidates: string[] = [];
  if (process.env.MOSQUITTO_BIN) candidates.push(process.env.MOSQUITTO_BIN);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir) candidates.push(path.join(dir, 'mosquitto'));
  }
  candidates.push('/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/opt/homebrew/sbin/mosquitto');
  binCache = candidates.find(isExecutable) ?? null;
  return binCache ?? undefined;
}

export const hasMosquitto = !!mosquittoBin();

export interface StartMosquittoOptions {
  /** Plain listener port; 0 or absent = a free port. */
  port?: number;
  /**
   * Keep sessions in <dir>/mosquitto.db across restart(). mosquitto writes the db on a clean
   * shutdown (SIGTERM, i.e. stop()/restart()) and every autosaveInterval. After kill() (SIGKILL)
   * only the last autosave survives; set autosaveOnChanges to save after every N changes.
   */
  persistence?: boolean;
  /** autosave_interval: seconds (or number of changes with autosaveOnChanges). mosquitto default 1800. */
  autosaveInterval?: number;
  /** autosave_on_changes true: autosaveInterval counts changes instead of seconds. */
  autosaveOnChanges?: boolean;
  /** max_keepalive (v5: Server Keep Alive; v3.1.1: a larger keepalive is refused with CONNACK rc 2). */
  maxKeepalive?: number;
  /** Extra global config lines (placed before the listeners). */
  extra?: string[];
  /** Adds a TLS listener on its own free port (handle.tlsPort). */
  tls?: { caFile: string; certFile: string; keyFile: string; port?: number; extra?: string[] };
  /** Bound on waiting for the port to accept connections. Default 5000 ms. */
  startTimeoutMs?: number;
}

export async function startMosquitto(opts: StartMosquittoOptions = {}): Promise<MosquittoHandle> {
  const bin = mosquittoBin();
  if (!bin) throw new Error('mosquitto not installed (apt-get install mosquitto)');
  hookExit();

  const host = LOOPBACK;
  const wanted = await freePorts(2);
  const port = opts.port || wanted[0];
  const tlsPort = opts.tls ? opts.tls.port || wanted[1] : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-mosquitto-'));
  liveDirs.add(dir);
  const confPath = path.join(dir, 'mosquitto.conf');

  const lines: string[] = ['allow_anonymous true', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', 'log_type information', 'log_timestamp false'];
  if (opts.persistence) {
    lines.push('persistence true', 'persistence_location ' + dir + '/', 'persistence_file mosquitto.db');
    if (opts.autosaveInterval !== undefined) lines.push('autosave_interval ' + opts.autosaveInterval);
    if (opts.autosaveOnChanges) lines.push('autosave_on_changes true');
  } else {
    lines.push('persistence false');
  }
  // As root, mosquitto 2.x drops privileges to user "mosquitto", which cannot write our temp dir.
  if (typeof process.getuid === 'function' && process.getuid() === 0) lines.push('user root');
  if (opts.maxKeepalive !== undefined) lines.push('max_keepalive ' + opts.maxKeepalive);
  if (opts.extra) lines.push(...opts.extra);
  lines.push('listener ' + port + ' ' + host);
  if (opts.tls && tlsPort !== undefined) {
    lines.push('listener ' + tlsPort + ' ' + host);
    lines.push('cafile ' + opts.tls.caFile, 'certfile ' + opts.tls.certFile, 'keyfile ' + opts.tls.keyFile);
    if (opts.tls.extra) lines.push(...opts.tls.extra);
  }
  fs.writeFileSync(confPath, lines.join('\n') + '\n');

  let logText = '';
  const appendLog = (chunk: Buffer) => {
    logText += chunk.toString('utf8');
    if (logText.length > 65536) logText = logText.slice(logText.length - 65536);
  };

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let removed = false;

  async function up(): Promise<void> {
    if (removed) throw new Error('mosquitto handle was stopped; start a new one');
    const c = spawn(bin as string, ['-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let hasExited = false;
    let exitInfo = '';
    exited = new Promise<void>((resolve) => {
      c.once('exit', (code, signal) => {
        hasExited = true;
        exitInfo = 'exit code ' + code + (signal ? ' signal ' + signal : '');
        if (c.pid !== undefined) livePids.delete(c.pid);
        resolve();
      });
      c.once('error', (err) => {
        hasExited = true;
        exitInfo = 'spawn error ' + err.message;
        resolve();
      });
    });
    c.stdout?.on('data', appendLog);
    c.stderr?.on('data', appendLog);
    if (c.pid !== undefined) livePids.add(c.pid);
    child = c;

    const deadline = Date.now() + (opts.startTimeoutMs ?? 5000);
    const ports = tlsPort !== undefined ? [port, tlsPort] : [port];
    for (;;) {
      if (hasExited) {
        child = undefined;
        throw new Error('mosquitto exited during start (' + exitInfo + '):\n' + logText);
      }
      let ok = true;
      for (const p of ports) if (!(await probe(p, host))) ok = false;
      if (ok) return;
      if (Date.now() > deadline) {
        await terminate('SIGKILL');
        throw new Error('mosquitto did not accept connections on ' + ports.join(',') + ' within the start timeout:\n' + logText);
      }
      await sleep(25);
    }
  }

  async function terminate(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) {
      await exited;
      return;
    }
    c.kill(signal);
    if (signal === 'SIGTERM') {
      const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
  }

  await up();

  const handle: MosquittoHandle = {
    kind: 'mosquitto',
    host,
    port,
    tlsPort,
    versions: [4, 5],
    dir,
    pid: () => child?.pid,
    log: () => logText,
    running: () => child !== undefined,
    async stop() {
      await terminate('SIGTERM');
      if (!removed) {
        removed = true;
        fs.rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
      }
    },
    kill: () => terminate('SIGKILL'),
    halt: () => terminate('SIGTERM'),
    async restart() {
      await terminate('SIGTERM');
      await up();
    },
    connections: () => countEstablished(tlsPort !== undefined ? [port, tlsPort] : [port]),
  };
  return handle;
}

/** Established TCP connections whose LOCAL port is one of `ports` on 127.0.0.1 (Linux /proc/net/tcp). */
export function countEstablished(ports: number[]): number {
  let text: string;
  try {
    text = fs.readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return -1; // not Linux
  }
  const wanted = new Set(ports.map((p) => '0100007F:' + p.toString(16).toUpperCase().padStart(4, '0')));
  let n = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 3 && wanted.has(f[1]) && f[3] === '01') n++;
  }
  return n;
}

/** True if a process with this PID exists (signal 0 probe; a zombie not yet reaped still counts). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
