// The broker for tools/fleet: a separate process on 127.0.0.1 that can be crashed (SIGKILL) and
// started again on the same port.
//
// - mosquitto (preferred): its own process, handles thousands of connections. Found by
//   tools/brokers.ts mosquittoBin(): $MOSQUITTO_BIN, PATH, /usr/sbin, /usr/local/sbin, /opt/homebrew/sbin.
// - aedes (fallback): tools/fleet/aedes-child.ts in a CHILD node process, so the broker's CPU does
//   not share the event loop with the clients being timed.
//
// The crash-and-restart process handling is the tool's own (it times a real SIGKILL); port, probe and
// binary lookup come from tools/brokers.ts. Every PID we spawn is tracked and SIGKILLed on process exit
// as a safety net; temp dirs are removed.

import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOOPBACK, freePort, mosquittoBin, probe } from '../brokers';

export { LOOPBACK };

export type BrokerKind = 'mosquitto' | 'aedes';

/** True for an IPv4/IPv6 loopback address or "localhost". */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.split('.')[0] === '127';
}

export interface FleetBroker {
  readonly kind: BrokerKind;
  /** e.g. "mosquitto 2.0.11" or "aedes 1.2 (child process)". */
  readonly label: string;
  readonly host: string;
  /** Fixed at the first start; restart() listens on the same port. */
  readonly port: number;
  /** PID of the running broker process (undefined while down). */
  pid(): number | undefined;
  /** Crash: SIGKILL, resolves when the process has exited. */
  kill(): Promise<void>;
  /** Start again on the same port; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Graceful stop for good (SIGTERM, SIGKILL after 2 s); removes temp files. */
  stop(): Promise<void>;
  /** The tail of the broker's output (for error messages). */
  log(): string;
}

// ------------------------------------------------------------------ safety net

const livePids = new Set<number>();
const liveDirs = new Set<string>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
}

/** SIGKILL every broker process still alive and remove temp dirs (safe to call from 'exit'). */
export function killAllSync(): void {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  livePids.clear();
  for (const dir of liveDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveDirs.clear();
}

// ------------------------------------------------------------------ helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Proc {
  child: ChildProcess;
  exited: Promise<void>;
  hasExited: () => boolean;
  exitInfo: () => string;
}

function track(child: ChildProcess, onOutput: (s: string) => void): Proc {
  let done = false;
  let info = '';
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      info = signal ? 'signal ' + signal : 'exit code ' + code;
      if (child.pid !== undefined) livePids.delete(child.pid);
      resolve();
    });
    child.once('error', (err) => {
      done = true;
      info = 'spawn error: ' + err.message;
      if (child.pid !== undefined) livePids.delete(child.pid);
      resolve();
    });
  });
  if (child.pid !== undefined) livePids.add(child.pid);
  child.stdout?.on('data', (b: Buffer) => onOutput(b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => onOutput(b.toString('utf8')));
  return { child, exited, hasExited: () => done, exitInfo: () => info };
}

async function terminate(p: Proc | undefined, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (!p) return;
  if (!p.hasExited()) {
    try {
      p.child.kill(signal);
    } catch {
      // gone between the check and the kill
    }
  }
  if (signal === 'SIGTERM') {
    const t = setTimeout(() => {
      try {
        p.child.kill('SIGKILL');
      } catch {
        // gone
      }
    }, 2000);
    await p.exited;
    clearTimeout(t);
  } else {
    await p.exited;
  }
}

// ------------------------------------------------------------------ start

export interface StartOptions {
  kind: BrokerKind;
  /** Bound on waiting for the broker to accept connections (default 15 s). */
  startTimeoutMs?: number;
}

export async function startBroker(opts: StartOptions): Promise<FleetBroker> {
  hookExit();
  const startTimeoutMs = opts.startTimeoutMs ?? 15000;
  const host = LOOPBACK;
  let logText = '';
  const onOutput = (s: string) => {
    logText += s;
    if (logText.length > 16384) logText = logText.slice(logText.length - 16384);
  };
  let cur: Proc | undefined;
  let port = 0;
  let label = '';
  let up: () => Promise<void>;
  let dir: string | undefined;

  if (opts.kind === 'mosquitto') {
    const bin = mosquittoBin();
    if (!bin) throw new Error('mosquitto not installed (apt-get install mosquitto), use --broker aedes');
    const v = spawnSync(bin, ['-h'], { encoding: 'utf8', timeout: 5000 });
    const m = /mosquitto version (\S+)/.exec((v.stdout ?? '') + (v.stderr ?? ''));
    label = 'mosquitto ' + (m ? m[1] : '(unknown version)');
    port = await freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-fleet-'));
    liveDirs.add(dir);
    const conf = path.join(dir, 'mosquitto.conf');
    const lines = [
      'allow_anonymous true',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'max_connections -1',
      // As root, mosquitto 2.x would drop privileges to user "mosquitto" (which cannot read our dir).
      ...(typeof process.getuid === 'function' && process.getuid() === 0 ? ['user root'] : []),
      'listener ' + port + ' ' + host,
    ];
    fs.writeFileSync(conf, lines.join('\n') + '\n');
    up = async () => {
      const p = track(spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }), onOutput);
      cur = p;
      const deadline = Date.now() + startTimeoutMs;
      for (;;) {
        if (p.hasExited()) {
          cur = undefined;
          throw new Error('mosquitto exited while starting (' + p.exitInfo() + '): ' + lastLine(logText));
        }
        if (await probe(port, LOOPBACK)) return;
        if (Date.now() > deadline) {
          await terminate(p, 'SIGKILL');
          cur = undefined;
          throw new Error('mosquitto did not accept connections on ' + host + ':' + port + ' within ' + startTimeoutMs + ' ms');
        }
        await sleep(5);
      }
    };
  } else {
    label = 'aedes (child process)';
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'aedes-child.ts');
    up = () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let settled = false;
        const p = track(child, (s) => {
          onOutput(s);
          if (settled) return;
          out += s;
          const mm = /listening (\d+)/.exec(out);
          if (mm) {
            settled = true;
            clearTimeout(timer);
            port = Number(mm[1]);
            resolve();
          }
        });
        cur = p;
        const timer = setTimeout(() => {
          if (settled) return;
          settled = true;
          void terminate(p, 'SIGKILL');
          cur = undefined;
          reject(new Error('aedes child did not listen within ' + startTimeoutMs + ' ms: ' + lastLine(logText)));
        }, startTimeoutMs);
        void p.exited.then(() => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          cur = undefined;
          reject(new Error('aedes child exited while starting (' + p.exitInfo() + '): ' + lastLine(logText)));
        });
      });
  }

  await up();

  return {
    kind: opts.kind,
    label,
    host,
    get port() {
      return port;
    },
    pid: () => (cur && !cur.hasExited() ? cur.child.pid : undefined),
    async kill() {
      const p = cur;
      cur = undefined;
      await terminate(p, 'SIGKILL');
    },
    async restart() {
      const p = cur;
      cur = undefined;
      await terminate(p, 'SIGKILL');
      await up();
    },
    async stop() {
      const p = cur;
      cur = undefined;
      if (p && p.child.stdin) p.child.stdin.end();
      await terminate(p, 'SIGTERM');
      if (dir) {
        fs.rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
        dir = undefined;
      }
    },
    log: () => logText,
  };
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] || '(no output)';
}
