// `npm run fleet`: the reconnect storm. N wren clients (Node HAL, one process, one shared scheduler)
// on a real broker on 127.0.0.1; the broker is SIGKILLed and restarted after a fixed outage; we count
// every connection attempt until all N are back. Two runs, one after the other: full jitter (the
// client's default) and no jitter (ClientOptions.backoff.jitter = 'none', which exists for this).
//
//   npm run fleet                          1000 devices (about 100 s)
//   npm run fleet -- --devices 200         a smaller fleet
//   npm run fleet -- --json out.json       also write the results (with histograms) as JSON
//   npm run fleet -- --strict              exit 1 when a target is missed
//
// Targets (issue): full-jitter peak CONNECT/s <= 0.10 x the no-jitter peak, and with full jitter all
// clients back within the backoff cap + 10% after the restart. See tools/fleet/README.md.

import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { mosquittoBin } from './brokers';
import { killAllSync, startBroker } from './fleet/broker';
import type { BrokerKind, FleetBroker } from './fleet/broker';
import { runFleet } from './fleet/run';
import type { Jitter, RunConfig, RunResult } from './fleet/run';

const DEFAULTS = {
  devices: 1000,
  baseMs: 500,
  capMs: 30000,
  outageMs: 25000,
  stableAfterMs: 1000,
  factor: 2,
  rampStepMs: 2,
};

const TARGET_RATIO = 0.1;

const USAGE = `usage: npm run fleet -- [options]

The reconnect storm: N wren clients (Node HAL, one process, one shared scheduler) on a real broker on
127.0.0.1. The broker is killed (SIGKILL), stays down for the outage, and is restarted on the same
port; every connection attempt is counted until all N are connected again. Two runs: full jitter
(the default backoff) and no jitter. Prints the peak CONNECT attempts per second after the restart
and the time until all are back.

options:
  --devices <n>      clients (default ${DEFAULTS.devices}; 1..20000)
  --broker <kind>    auto | mosquitto | aedes (default auto: mosquitto if installed, else aedes in a
                     child process)
  --outage-ms <ms>   from the kill to the restart (default ${DEFAULTS.outageMs})
  --base-ms <ms>     backoff base (default ${DEFAULTS.baseMs})
  --cap-ms <ms>      backoff cap (default ${DEFAULTS.capMs}); the wait for all to come back is 3 x cap
  --only <jitter>    full | none: only that run (no ratio)
  --strict           exit 1 when a target is missed (default: report only, exit 0)
  --json <file>      write the results (with histograms) to <file> as JSON
  -h, --help         show this help

Backoff factor ${DEFAULTS.factor}, stableAfterMs ${DEFAULTS.stableAfterMs}, MQTT 3.1.1, clean sessions. Targets: full-jitter
peak <= ${TARGET_RATIO.toFixed(2)} x no-jitter peak; full jitter all back within cap + 10% after the restart.

exit codes: 0 done (targets met, or missed without --strict), 1 target missed with --strict or the
run failed, 2 bad usage.`;

function fail(code: number, msg: string): never {
  process.stderr.write('fleet: ' + msg + (code === 2 ? ' (see --help)' : '') + '\n');
  process.exit(code);
}

function intArg(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) fail(2, '--' + name + ' must be a whole number, got ' + JSON.stringify(v));
  const n = Number(v);
  if (n < min || n > max) fail(2, '--' + name + ' must be between ' + min + ' and ' + max + ', got ' + n);
  return n;
}

interface Parsed {
  devices: number;
  broker: 'auto' | BrokerKind;
  outageMs: number;
  baseMs: number;
  capMs: number;
  only: Jitter | undefined;
  strict: boolean;
  json: string | undefined;
}

function parse(): Parsed {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      options: {
        devices: { type: 'string' },
        broker: { type: 'string' },
        'outage-ms': { type: 'string' },
        'base-ms': { type: 'string' },
        'cap-ms': { type: 'string' },
        only: { type: 'string' },
        strict: { type: 'boolean' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    fail(2, (err as Error).message.split('\n')[0]);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const broker = (values.broker as string | undefined) ?? 'auto';
  if (broker !== 'auto' && broker !== 'mosquitto' && broker !== 'aedes') fail(2, '--broker must be auto, mosquitto or aedes, got ' + JSON.stringify(broker));
  const only = values.only as string | undefined;
  if (only !== undefined && only !== 'full' && only !== 'none') fail(2, '--only must be full or none, got ' + JSON.stringify(only));
  const baseMs = intArg('base-ms', values['base-ms'] as string | undefined, DEFAULTS.baseMs, 10, 60000);
  const capMs = intArg('cap-ms', values['cap-ms'] as string | undefined, DEFAULTS.capMs, 100, 300000);
  if (capMs < baseMs) fail(2, '--cap-ms (' + capMs + ') must not be below --base-ms (' + baseMs + ')');
  const json = values.json as string | undefined;
  if (json !== undefined && json === '') fail(2, '--json needs a file name');
  return {
    devices: intArg('devices', values.devices as string | undefined, DEFAULTS.devices, 1, 20000),
    broker,
    outageMs: intArg('outage-ms', values['outage-ms'] as string | undefined, DEFAULTS.outageMs, 0, 600000),
    baseMs,
    capMs,
    only: only as Jitter | undefined,
    strict: !!values.strict,
    json,
  };
}

function pad(s: string, n: number, right?: boolean): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

const COLS: Array<[string, number, boolean]> = [
  ['run', 11, false],
  ['peak CONNECT/s', 14, true],
  ['attempts', 8, true],
  ['all back after (s)', 18, true],
  ['within cap+10%', 14, false],
  ['peak 1 s bucket', 15, true],
  ['peak /100 ms', 12, true],
  ['outage attempts', 15, true],
  ['outage peak/s', 13, true],
];

function row(cells: string[]): string {
  return cells.map((c, i) => pad(c, COLS[i][1], COLS[i][2])).join(' | ');
}

function runName(j: Jitter): string {
  return j === 'full' ? 'full jitter' : 'no jitter';
}

async function main(): Promise<void> {
  const p = parse();
  const started = Date.now();
  let kind: BrokerKind;
  if (p.broker === 'auto') kind = mosquittoBin() ? 'mosquitto' : 'aedes';
  else kind = p.broker;

  // Bound the whole tool: two runs of (ramp + settle + outage + 3 x cap) plus slack.
  const perRunMs = 30000 + p.devices * (DEFAULTS.rampStepMs + 10) + DEFAULTS.stableAfterMs + p.outageMs + 3 * p.capMs + 20000;
  const hardLimitMs = 2 * perRunMs + 30000;
  const watchdog = setTimeout(() => {
    killAllSync();
    fail(1, 'gave up after ' + Math.round(hardLimitMs / 1000) + ' s (time bound)');
  }, hardLimitMs);

  const jitters: Jitter[] = p.only ? [p.only] : ['full', 'none'];
  const results: RunResult[] = [];
  let label = '';
  let brokerPort = 0;
  for (const j of jitters) {
    // A fresh broker per run: the second run starts from the same state as the first.
    let broker: FleetBroker | undefined;
    try {
      broker = await startBroker({ kind });
      label = broker.label;
      brokerPort = broker.port;
      console.log('run ' + runName(j) + ': ' + p.devices + ' clients on ' + broker.label + ' at ' + broker.host + ':' + broker.port);
      const cfg: RunConfig = {
        devices: p.devices,
        jitter: j,
        baseMs: p.baseMs,
        capMs: p.capMs,
        factor: DEFAULTS.factor,
        stableAfterMs: DEFAULTS.stableAfterMs,
        outageMs: p.outageMs,
        rampStepMs: DEFAULTS.rampStepMs,
        idPrefix: 'fleet-' + j + '-' + process.pid + '-',
        progress: (line) => console.log(line),
      };
      results.push(await runFleet(broker, cfg));
    } finally {
      if (broker) await broker.stop();
    }
  }
  clearTimeout(watchdog);

  const full = results.find((r) => r.jitter === 'full');
  const none = results.find((r) => r.jitter === 'none');
  console.log('');
  console.log(
    'fleet: ' + p.devices + ' devices, ' + label + ' on 127.0.0.1, MQTT 3.1.1; backoff base ' + p.baseMs + ' ms x' + DEFAULTS.factor +
      ', cap ' + p.capMs + ' ms, stable after ' + DEFAULTS.stableAfterMs + ' ms; outage ' + p.outageMs + ' ms',
  );
  console.log('(after the restart, from the moment the broker accepts: peak CONNECT/s = most connection attempts in');
  console.log(' any 1 s window; 1 s / 100 ms buckets are aligned on that moment. outage = attempts against the closed');
  console.log(' port between the kill and the restart, peak per 1 s bucket from the kill)');
  console.log('');
  console.log(row(COLS.map((c) => c[0])));
  console.log(COLS.map((c) => '-'.repeat(c[1])).join('-|-'));
  for (const r of results) {
    console.log(
      row([
        runName(r.jitter),
        String(r.peakSliding1s),
        String(r.attempts),
        r.allBackSec !== undefined ? r.allBackSec.toFixed(2) : 'not all (' + r.back + ')',
        r.withinCap ? 'yes' : 'no',
        String(r.peakPerSec),
        String(r.peakPer100ms),
        String(r.outageAttempts),
        String(r.outagePeakPerSec),
      ]),
    );
  }
  let ratio: number | undefined;
  const missed: string[] = [];
  if (full && none) {
    ratio = none.peakSliding1s > 0 ? full.peakSliding1s / none.peakSliding1s : undefined;
    const r = ratio !== undefined ? ratio.toFixed(3) : 'n/a';
    console.log('');
    console.log('full-jitter peak / no-jitter peak: ' + r + ' (target <= ' + TARGET_RATIO.toFixed(2) + ')' + (ratio !== undefined && ratio <= TARGET_RATIO ? '' : '  MISSED'));
    if (!(ratio !== undefined && ratio <= TARGET_RATIO)) missed.push('peak ratio ' + r + ' > ' + TARGET_RATIO.toFixed(2));
  }
  if (full) {
    const capS = (p.capMs * 1.1) / 1000;
    console.log('full jitter all back within cap + 10% (' + capS.toFixed(1) + ' s): ' + (full.withinCap ? 'yes' : 'no  MISSED'));
    if (!full.withinCap) missed.push('full jitter not all back within cap + 10%');
  }
  for (const r of results) {
    if (r.statsConnects !== r.attempts + r.outageAttempts) {
      process.stderr.write('fleet: warning: ' + runName(r.jitter) + ': stats.connects ' + r.statsConnects + ' != counted attempts ' + (r.attempts + r.outageAttempts) + '\n');
    }
  }
  console.log('took ' + ((Date.now() - started) / 1000).toFixed(0) + ' s');

  if (p.json) {
    const out = {
      tool: 'fleet',
      date: new Date().toISOString(),
      host: { node: process.version, platform: process.platform + ' ' + os.release(), cpus: os.cpus().length },
      broker: { label, port: brokerPort },
      config: {
        devices: p.devices,
        version: 4,
        clean: true,
        backoff: { baseMs: p.baseMs, capMs: p.capMs, factor: DEFAULTS.factor, stableAfterMs: DEFAULTS.stableAfterMs },
        outageMs: p.outageMs,
        rampStepMs: DEFAULTS.rampStepMs,
      },
      runs: results,
      ratio,
      targets: { ratioMax: TARGET_RATIO, allBackWithinCapFactor: 1.1, met: missed.length === 0, missed },
    };
    writeFileSync(p.json, JSON.stringify(out, null, 2) + '\n');
  }
  if (p.strict && missed.length) process.exit(1);
  process.exit(0);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAllSync();
    process.stderr.write('fleet: interrupted (' + sig + ')\n');
    process.exit(130);
  });
}

main().catch((err) => {
  killAllSync();
  fail(1, err instanceof Error ? err.message : String(err));
});
