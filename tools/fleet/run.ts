// One fleet run: N wren clients (Node HAL, one process, ONE shared Scheduler) against a real broker;
// the broker is SIGKILLed, stays down for a fixed outage, is started again on the same port, and we
// count every connection attempt until all N are connected again.
//
// What is counted, exactly: every Transport.open() a client makes (one per connection attempt; the
// client's stats.connects counts the same thing, cross-checked below), time-stamped on the same
// clock as the scheduler. Attempts are split at the moment the restarted broker accepts connections
// ("ready"): before it they hit a closed port (refused SYNs, no CONNECT packet can be sent); from it
// on, each attempt is a TCP connection carrying a CONNECT. The CONNECT packets written are counted
// too (first byte 0x10), as a second, independent view of the same storm.

import { readFileSync } from 'node:fs';
import { Client, clientDefaults } from '../../firmware/client/index';
import type { ClientOptions } from '../../firmware/client/index';
import { Scheduler } from '../../firmware/scheduler/index';
import { NodeClock, NodeRandom, NodeTimerHost, NodeTransport } from '../../hal/node/index';
import type { Log, LogLevel, OpenOptions, Transport, TransportHandler } from '../../hal/types';
import type { FleetBroker } from './broker';
import { isLoopback } from './broker';

export type Jitter = 'full' | 'none';

export interface RunConfig {
  devices: number;
  jitter: Jitter;
  baseMs: number;
  capMs: number;
  factor: number;
  stableAfterMs: number;
  /** From the kill until the restart is started. */
  outageMs: number;
  /** Clients are started this far apart (the initial connect must not be the storm measured). */
  rampStepMs: number;
  /** Client id prefix (distinct per run). */
  idPrefix: string;
  /** Progress lines (or nothing). */
  progress?: (line: string) => void;
}

export interface RunResult {
  jitter: Jitter;
  devices: number;
  /** Peak connection attempts in one 1 s bucket, buckets aligned on the broker's "ready" moment. */
  peakPerSec: number;
  /**
   * Most attempts in any 1 s window after ready (sliding; alignment-free, >= peakPerSec). The
   * headline "peak CONNECT/s": a bucket edge can split a lockstep burst in two, a window cannot.
   */
  peakSliding1s: number;
  /** Peak attempts in one 100 ms bucket (same alignment). */
  peakPer100ms: number;
  /** Peak CONNECT packets written in one 1 s bucket. */
  peakConnectPacketsPerSec: number;
  /** Attempts from ready until all were back (or the timeout). */
  attempts: number;
  /** Attempts between the kill and ready (against a closed port). */
  outageAttempts: number;
  /** Peak attempts in one 1 s bucket during the outage (buckets aligned on the kill). */
  outagePeakPerSec: number;
  /** Seconds from ready until the last client was connected again; undefined if not all came back. */
  allBackSec: number | undefined;
  /** Clients connected again at the end. */
  back: number;
  /** allBackSec <= 1.1 * cap. */
  withinCap: boolean;
  /** Seconds: initial connect of all N, kill -> every client saw the drop, kill -> ready. */
  initialConnectSec: number;
  dropDetectedSec: number;
  readyAfterKillSec: number;
  /** Histograms from ready: attempts per 1 s and per 100 ms; outage attempts per 1 s from the kill. */
  hist1s: number[];
  hist100ms: number[];
  outageHist1s: number[];
  /** Sum of the clients' stats.connects deltas (must equal outageAttempts + attempts). */
  statsConnects: number;
  /** Warnings/errors the clients logged (connection refused etc. are expected). */
  clientWarnings: number;
  schedulerErrors: number;
}

/** A Log that keeps nothing but counts warnings and errors. */
class CountingLog implements Log {
  warnings = 0;
  errors = 0;
  enabled(level: LogLevel): boolean {
    return level === 'warn' || level === 'error';
  }
  debug(): void {}
  info(): void {}
  warn(): void {
    this.warnings++;
  }
  error(): void {
    this.errors++;
  }
}

/** NodeTransport with every open() and every CONNECT packet time-stamped. */
class CountingTransport implements Transport {
  private inner = new NodeTransport();
  constructor(private readonly rec: Recorder) {}
  setHandler(handler: TransportHandler): void {
    this.inner.setHandler(handler);
  }
  open(options: OpenOptions): void {
    if (!isLoopback(options.host)) throw new Error('fleet: refusing to connect to non-loopback host ' + options.host);
    this.rec.attempts.push(this.rec.now());
    this.inner.open(options);
  }
  write(bytes: Uint8Array): boolean {
    if (bytes.length > 0 && bytes[0] === 0x10) this.rec.connectPackets.push(this.rec.now());
    return this.inner.write(bytes);
  }
  close(): void {
    this.inner.close();
  }
}

interface Recorder {
  now: () => number;
  attempts: number[];
  connectPackets: number[];
}

/** Counts per bucket of `width` ms for the times in [from, to). */
export function histogram(times: number[], from: number, to: number, width: number): number[] {
  const n = Math.max(1, Math.ceil((to - from) / width));
  const h = new Array<number>(n).fill(0);
  for (const t of times) {
    if (t < from || t >= to) continue;
    const k = Math.floor((t - from) / width);
    if (k >= 0 && k < n) h[k]++;
  }
  return h;
}

/** Most events in any window of `width` ms (times in [from, to)). */
export function slidingPeak(times: number[], from: number, to: number, width: number): number {
  const s = times.filter((t) => t >= from && t < to).sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i] - s[j] >= width) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/**
 * TCP connections from this host to 127.0.0.1:<port> that are still established (Linux: read from
 * /proc/net/tcp; 0 elsewhere). Used to check that every client socket was closed.
 */
export function openSockets(port: number): number {
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return 0;
  }
  const remote = '0100007F:' + port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 3 && f[2] === remote && f[3] === '01') n++;
  }
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(pred: () => boolean, timeoutMs: number, pollMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) return false;
    await sleep(pollMs);
  }
  return true;
}

export async function runFleet(broker: FleetBroker, cfg: RunConfig): Promise<RunResult> {
  if (!isLoopback(broker.host)) throw new Error('fleet: refusing to run against non-loopback broker ' + broker.host);
  const say = cfg.progress ?? (() => {});
  const clock = new NodeClock();
  const log = new CountingLog();
  // The single loop all N clients share, as on one device (unref: it never keeps the process up).
  const sched = new Scheduler(clock, new NodeTimerHost(true), log);
  const rec: Recorder = { now: () => clock.now(), attempts: [], connectPackets: [] };
  const N = cfg.devices;
  const clients: Client[] = [];
  // Live count of connected clients, kept from the 'state' events; the moment it reaches N again
  // after the kill is "all back".
  const prev: string[] = new Array<string>(N).fill('idle');
  let live = 0;
  let measuring = false;
  let tAllBack = -1;

  const base = clientDefaults();
  for (let i = 0; i < N; i++) {
    const opts: ClientOptions = {
      ...base,
      clientId: cfg.idPrefix + i,
      brokers: [{ host: broker.host, port: broker.port }],
      version: 4, // Aedes speaks 3.1.1 only; mosquitto either. Same CONNECT for both.
      clean: true, // no persistent sessions: the storm is about connects, not session resumption
      keepAliveSec: 120, // no keep-alive traffic to speak of during a run
      backoff: { baseMs: cfg.baseMs, capMs: cfg.capMs, factor: cfg.factor, stableAfterMs: cfg.stableAfterMs, jitter: cfg.jitter },
    };
    // storage undefined: the session lives in RAM only (Session supports it).
    const c = new Client(opts, { scheduler: sched, transport: new CountingTransport(rec), storage: undefined, random: new NodeRandom(), log });
    const idx = i;
    c.on('state', (st: string) => {
      if (prev[idx] === 'connected' && st !== 'connected') live--;
      else if (prev[idx] !== 'connected' && st === 'connected') live++;
      prev[idx] = st;
      if (measuring && live === N && tAllBack < 0) tAllBack = clock.now();
    });
    clients.push(c);
  }
  const countConnected = () => live;

  try {
    // 1. Ramp all N in, one every rampStepMs, through the shared scheduler.
    const t0 = clock.now();
    for (let i = 0; i < N; i++) {
      const c = clients[i];
      sched.after(i * cfg.rampStepMs, () => c.start(), 'fleet.start');
    }
    const initialLimit = 30000 + N * (cfg.rampStepMs + 10);
    if (!(await waitFor(() => countConnected() === N, initialLimit, 20))) {
      throw new Error('only ' + countConnected() + ' of ' + N + ' clients connected within ' + initialLimit + ' ms (broker ' + broker.label + ')');
    }
    const initialConnectSec = (clock.now() - t0) / 1000;
    say('  ' + N + ' connected in ' + initialConnectSec.toFixed(1) + ' s');
    // 2. Let every connection become "stable", so the backoff starts from attempt 0 at the drop.
    await sleep(cfg.stableAfterMs + 500);
    if (countConnected() !== N) throw new Error('clients dropped before the broker was killed (' + countConnected() + ' of ' + N + ' connected)');

    // 3. Crash the broker.
    const statsBefore = clients.reduce((s, c) => s + c.stats.connects, 0);
    rec.attempts.length = 0;
    rec.connectPackets.length = 0;
    measuring = true;
    const tKill = clock.now();
    await broker.kill();
    const allDropped = await waitFor(() => countConnected() === 0, Math.max(5000, cfg.outageMs), 5);
    if (!allDropped) throw new Error(countConnected() + ' of ' + N + ' clients did not notice the broker kill');
    const dropDetectedSec = (clock.now() - tKill) / 1000;
    say('  broker killed; all ' + N + ' saw the drop within ' + (dropDetectedSec * 1000).toFixed(0) + ' ms');

    // 4. The outage, then the restart on the same port.
    const wait = tKill + cfg.outageMs - clock.now();
    if (wait > 0) await sleep(wait);
    await broker.restart();
    const tReady = clock.now();
    const readyAfterKillSec = (tReady - tKill) / 1000;
    say('  broker restarted (accepting ' + readyAfterKillSec.toFixed(2) + ' s after the kill)');

    // 5. Until all are back, or 3 x cap.
    const limitMs = cfg.capMs * 3;
    await waitFor(() => countConnected() === N, limitMs, 10);
    const tEnd = clock.now();
    measuring = false;
    const back = countConnected();
    const allBackSec = tAllBack >= 0 ? Math.max(0, tAllBack - tReady) / 1000 : undefined;
    say('  ' + back + ' of ' + N + ' back' + (allBackSec !== undefined ? ' after ' + allBackSec.toFixed(2) + ' s' : ' (timeout ' + limitMs + ' ms)'));

    const windowEnd = tEnd + 1; // include the last attempt
    const hist1s = histogram(rec.attempts, tReady, windowEnd, 1000);
    const hist100ms = histogram(rec.attempts, tReady, windowEnd, 100);
    const outageHist1s = histogram(rec.attempts, tKill, tReady, 1000);
    const statsConnects = clients.reduce((s, c) => s + c.stats.connects, 0) - statsBefore;
    const attempts = hist1s.reduce((a, b) => a + b, 0);
    const outageAttempts = outageHist1s.reduce((a, b) => a + b, 0);
    return {
      jitter: cfg.jitter,
      devices: N,
      peakPerSec: Math.max(...hist1s),
      peakSliding1s: slidingPeak(rec.attempts, tReady, windowEnd, 1000),
      peakPer100ms: Math.max(...hist100ms),
      peakConnectPacketsPerSec: Math.max(...histogram(rec.connectPackets, tReady, windowEnd, 1000)),
      attempts,
      outageAttempts,
      outagePeakPerSec: Math.max(...outageHist1s),
      allBackSec,
      back,
      withinCap: allBackSec !== undefined && allBackSec * 1000 <= cfg.capMs * 1.1,
      initialConnectSec,
      dropDetectedSec,
      readyAfterKillSec,
      hist1s,
      hist100ms,
      outageHist1s,
      statsConnects,
      clientWarnings: log.warnings + log.errors,
      schedulerErrors: sched.errors,
    };
  } finally {
    // Close every socket: a clean stop (DISCONNECT where connected), then wait for the closes.
    for (const c of clients) c.stop();
    await waitFor(() => openSockets(broker.port) === 0, 5000, 20);
    sched.halt();
  }
}
