// Detection latency: how long the real client takes to declare a black-holed link dead (the 'dead'
// event: no PINGRESP within pingTimeoutMs), per power mode, with and without application traffic,
// against the bound the design promises:
//   no traffic:   the mode's ping interval + pingTimeoutMs (a PINGREQ goes out at most one interval
//                 after the last exchange, and must be answered within pingTimeoutMs);
//   with traffic: ackProbeMs + pingTimeoutMs (the application publishes a QoS 1 message as the link
//                 dies; its PUBACK is overdue after ackProbeMs, which sends a PINGREQ at once: the early
//                 probe).
// Each row: the worst case (the link dies just after a PINGRESP) and the mean over random moments in
// the ping cycle. The device is held in the mode (the other mode timers are switched off). Sleep has a
// row only for a held connection (cellular); on Wi-Fi a sleeping device holds no connection.
import { Client } from '../../firmware/client/index';
import { Device } from '../../firmware/device/index';
import { clientOptionsFor, deviceOptionsFor } from '../../firmware/config/index';
import type { Board } from '../../firmware/config/index';
import { declaredKeepAlive, pingIntervalSec } from '../../firmware/liveness/keepalive';
import type { PowerMode } from '../../firmware/liveness/modes';
import { Scheduler } from '../../firmware/scheduler/index';
import { MemoryStorage, MockNetwork, MockPower, SeededRandom, VirtualClock } from '../../hal/mock/index';
import { SimBroker } from './broker';
import { SimLog } from './log';

export type DetectionKind = PowerMode | 'fixed-60s';

export interface DetectionRow {
  kind: DetectionKind;
  traffic: boolean;
  /** Worst case (black-holed just after a PINGRESP), ms; undefined = not detected. */
  worstMs: number | undefined;
  /** Mean over random moments, ms; undefined = some run did not detect. */
  meanMs: number | undefined;
  boundMs: number;
  boundText: string;
  ok: boolean;
  /** Set for a row that cannot be measured (no held connection). */
  note?: string;
}

export interface DetectionResult {
  ok: boolean;
  rows: DetectionRow[];
  lines: string[];
}

function intervalSecFor(board: Board, kind: DetectionKind): number {
  if (kind === 'fixed-60s') return 60;
  const d = deviceOptionsFor(board);
  const held = kind === 'sleep';
  const declared = declaredKeepAlive(d.modes, d.maxKeepAliveSec, held ? 'sleep' : 'idle', undefined);
  return pingIntervalSec(d.modes, kind, declared, undefined);
}

/**
 * One run: detection time in ms after the link is black-holed, undefined when not detected, or 'slept'
 * when the device went to deep sleep instead of holding the connection. phase in [0, 1).
 */
function measure(board: Board, kind: DetectionKind, traffic: boolean, phase: number, seed: number): number | 'slept' | undefined {
  const clock = new VirtualClock();
  const now = () => clock.time;
  const net = new MockNetwork(clock);
  const b0 = board.brokers[0];
  const broker = new SimBroker(net, b0.host, b0.port, now, '');
  const log = new SimLog('det', now, undefined, 'error');
  const sched = new Scheduler(clock, clock, log);
  const opts = clientOptionsFor(board);
  if (kind === 'fixed-60s') opts.keepAliveSec = 60;
  const client = new Client(opts, { scheduler: sched, transport: net.transport(), storage: new MemoryStorage(), random: new SeededRandom(seed), log });
  let device: Device | undefined;
  const power = new MockPower({ clock });
  if (kind !== 'fixed-60s') {
    const d = deviceOptionsFor(board);
    if (kind === 'active') d.modes.idleAfterSec = 0;
    if (kind === 'idle') d.modes.sleepAfterSec = 0;
    device = new Device(client, { scheduler: sched, power, storage: new MemoryStorage(), random: new SeededRandom(seed + 7), log }, d);
    device.start();
    if (kind === 'sleep') device.sleep();
  } else client.start();
  const inMode = () => client.state === 'connected' && (device === undefined || device.mode === kind);
  if (!clock.runUntil(inMode, 3600000)) return undefined;
  let pongs = 0;
  let deadAt = -1;
  client.on('pong', () => pongs++);
  client.on('dead', () => {
    if (deadAt < 0) deadAt = clock.time;
  });
  const intervalMs = intervalSecFor(board, kind) * 1000;
  // Two answered pings in the mode: the ping cycle has settled.
  const slept = () => power.sleeps.length > 0;
  if (!clock.runUntil(() => (pongs >= 2 && inMode()) || slept(), 4 * intervalMs + 60000)) return undefined;
  if (slept()) return 'slept';
  if (phase > 0) clock.advance(Math.floor(phase * intervalMs));
  const peer = broker.lastPeer;
  if (!peer) return undefined;
  peer.blackhole();
  const t0 = clock.time;
  if (traffic) client.publish('wren/detection/probe', 'x', { qos: 1 });
  const limit = intervalMs + opts.pingTimeoutMs + opts.ackProbeMs + 120000;
  if (!clock.runUntil(() => deadAt >= 0, limit)) return undefined;
  return deadAt - t0;
}

function s(ms: number | undefined): string {
  return ms === undefined ? 'not detected' : (ms / 1000).toFixed(1) + ' s';
}

export function runDetection(board: Board, seed?: number, samples?: number): DetectionResult {
  const n = samples ?? 20;
  const rnd = new SeededRandom(seed ?? 1);
  const o = clientOptionsFor(board);
  const held = board.transport.type === 'cellular';
  const kinds: DetectionKind[] = ['active', 'idle', 'sleep', 'fixed-60s'];
  const rows: DetectionRow[] = [];
  for (const kind of kinds) {
    for (const traffic of [false, true]) {
      const intervalSec = intervalSecFor(board, kind);
      const boundMs = traffic ? o.ackProbeMs + o.pingTimeoutMs : intervalSec * 1000 + o.pingTimeoutMs;
      const boundText = traffic ? o.ackProbeMs / 1000 + ' s ack probe + ' + o.pingTimeoutMs / 1000 + ' s' : intervalSec + ' s ping + ' + o.pingTimeoutMs / 1000 + ' s';
      if (kind === 'sleep' && !held) {
        if (!traffic) rows.push({ kind, traffic, worstMs: undefined, meanMs: undefined, boundMs, boundText: '-', ok: true, note: 'no held connection on ' + board.transport.type + ': deep sleep, each check-in connects afresh' });
        continue;
      }
      if (traffic && o.ackProbeMs <= 0) {
        rows.push({ kind, traffic, worstMs: undefined, meanMs: undefined, boundMs, boundText: '-', ok: true, note: 'early probe off (keepAlive.ackProbeMs = 0)' });
        continue;
      }
      const first = measure(board, kind, traffic, 0, 1000 + rows.length);
      if (first === 'slept') {
        rows.push({ kind, traffic, worstMs: undefined, meanMs: undefined, boundMs, boundText, ok: false, note: 'NOT HELD: the device went to deep sleep instead of holding the connection' });
        continue;
      }
      const worstMs = first;
      let sum = 0;
      let all = true;
      let worstSeen = worstMs ?? 0;
      for (let i = 0; i < n; i++) {
        const d = measure(board, kind, traffic, rnd.next(), 2000 + rows.length * 100 + i);
        if (d === undefined || d === 'slept') all = false;
        else {
          sum += d;
          worstSeen = Math.max(worstSeen, d);
        }
      }
      const meanMs = all ? sum / n : undefined;
      const ok = worstMs !== undefined && all && worstSeen <= boundMs;
      rows.push({ kind, traffic, worstMs, meanMs, boundMs, boundText, ok });
    }
  }
  const lines: string[] = [];
  lines.push('detection of a black-holed link (' + board.device + ', ' + board.transport.type + '): time from the link going silent to the client\'s ping-timeout verdict');
  lines.push('  worst = silent just after a PINGRESP; mean = over ' + n + ' random moments in the ping cycle; "QoS 1" = the application publishes as the link dies (early probe)');
  lines.push('');
  const head = ['mode', 'traffic', 'worst', 'mean', 'bound', '', 'within'];
  const cells = rows.map((r) => {
    const name = r.kind === 'fixed-60s' ? 'fixed 60 s' : r.kind;
    return r.note
      ? [name, r.traffic ? 'QoS 1' : 'none']
      : [name, r.traffic ? 'QoS 1' : 'none', s(r.worstMs), s(r.meanMs), (r.boundMs / 1000).toFixed(1) + ' s', '(' + r.boundText + ')', r.ok ? 'yes' : 'NO'];
  });
  const all = [head].concat(cells);
  const widths = head.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  const fmt = (row: string[]) =>
    row[0].padEnd(widths[0]) + '  ' + row[1].padEnd(widths[1]) + '  ' + row[2].padStart(widths[2]) + '  ' + row[3].padStart(widths[3]) + '  ' + row[4].padStart(widths[4]) + ' ' + row[5].padEnd(widths[5]) + '  ' + row[6];
  lines.push(fmt(head));
  rows.forEach((r, i) => lines.push(r.note ? cells[i][0].padEnd(widths[0]) + '  ' + cells[i][1].padEnd(widths[1]) + '  ' + r.note : fmt(cells[i])));
  const ok = rows.every((r) => r.ok);
  lines.push('');
  const bad = rows.filter((r) => !r.ok).length;
  lines.push(ok ? 'every detection within its bound' : 'FAILED: ' + bad + ' row' + (bad === 1 ? '' : 's') + ' not detected within the bound (see above)');
  return { ok, rows, lines };
}
