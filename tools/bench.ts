// `npm run bench`: wren's MQTT codec against mqtt-packet (generate / parser), side by side in one
// process. For each case, version and direction both sides run interleaved rounds; the table shows
// the median ops/s of each, the ratio ours/theirs and the target. See tools/bench/cases.ts for the
// cases and the fairness rules, tools/bench/harness.ts for the timing.
//
//   npm run bench                       full run (about half a minute)
//   npm run bench -- --quick            fewer, shorter rounds
//   npm run bench -- --json out.json    also write the results as JSON
//   npm run bench -- --strict           exit 1 when a target is missed
//   npm run bench -- --only publish-32B only rows whose "case vN op" contains the text

import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { prepare, sinkValue } from './bench/cases';
import { compare } from './bench/harness';
import type { Settings } from './bench/harness';

const USAGE = `usage: npm run bench -- [options]

Benchmarks wren's MQTT codec (firmware/mqtt) against mqtt-packet: encode and decode of PUBLISH
(32 B, 1 KB, 64 KB payloads), CONNECT (will + credentials) and SUBACK, for MQTT 3.1.1 and 5.0.

options:
  --quick          fewer, shorter rounds (a few seconds; noisier)
  --strict         exit 1 when any target is missed (default: report only, exit 0)
  --json <file>    write the results to <file> as JSON
  --only <text>    run only rows whose "<case> v<version> <op>" contains <text>
  -h, --help       show this help

exit codes: 0 done (targets met, or missed without --strict), 1 target missed with --strict or
a correctness check failed, 2 bad usage.`;

function usageError(msg: string): never {
  process.stderr.write('bench: ' + msg + ' (see npm run bench -- --help)\n');
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      json: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
} catch (e) {
  usageError((e as Error).message);
}
const opts = args.values;
if (opts.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
if (opts.json !== undefined && opts.json === '') usageError('--json needs a file name');

const settings: Settings = opts.quick
  ? { rounds: 3, roundMs: 40, warmupMs: 40 }
  : { rounds: 5, roundMs: 120, warmupMs: 100 };

const cpus = os.cpus();
const cpu = cpus.length ? cpus[0].model.trim() : 'unknown CPU';
console.log('wren codec vs mqtt-packet');
console.log('node ' + process.version + ' (' + process.platform + '-' + process.arch + '), V8 ' + process.versions.v8);
console.log('cpu  ' + cpu + ' (' + cpus.length + ' logical)');
console.log(
  'mode ' +
    (opts.quick ? 'quick' : 'full') +
    ': ' +
    settings.rounds +
    ' interleaved rounds of ' +
    settings.roundMs +
    ' ms per side after ' +
    settings.warmupMs +
    ' ms warm-up; median ops/s',
);

let prepared;
try {
  prepared = prepare();
} catch (e) {
  console.error('bench: correctness check failed before timing: ' + (e as Error).message);
  process.exit(1);
}
for (const note of prepared.notes) console.log('note ' + note);
console.log('');

const rows = prepared.rows.filter((r) => {
  return opts.only === undefined || (r.name + ' v' + r.version + ' ' + r.op).indexOf(opts.only) >= 0;
});
if (rows.length === 0) usageError('--only ' + JSON.stringify(opts.only) + ' matches no row');

const COLS: Array<[string, number, 'l' | 'r']> = [
  ['case', 12, 'l'],
  ['version', 7, 'l'],
  ['op', 6, 'l'],
  ['ours ops/s', 12, 'r'],
  ['mqtt-packet ops/s', 17, 'r'],
  ['ratio', 7, 'r'],
  ['target', 7, 'l'],
  ['result', 6, 'l'],
];

function line(cells: string[]): string {
  return (
    '| ' +
    cells
      .map((c, i) => {
        const w = COLS[i][1];
        return COLS[i][2] === 'r' ? c.padStart(w) : c.padEnd(w);
      })
      .join(' | ') +
    ' |'
  );
}

function rate(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

console.log(line(COLS.map((c) => c[0])));
console.log('|' + COLS.map((c) => (c[2] === 'r' ? '-'.repeat(c[1] + 1) + ':' : ':' + '-'.repeat(c[1] + 1))).join('|') + '|');

interface Out {
  case: string;
  version: number;
  op: string;
  oursOpsPerSec: number;
  theirsOpsPerSec: number;
  ratio: number;
  /** Worst round-to-round spread of the two sides, (max - min) / median. */
  spread: number;
  target: number;
  pass: boolean;
  oursRounds: number[];
  theirsRounds: number[];
}
const results: Out[] = [];
/** Round-to-round spread of one side: (max - min) / median. */
function spread(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return (s[s.length - 1] - s[0]) / s[s.length >> 1];
}
const noisy: string[] = [];
let met = 0;
let missed = 0;
const t0 = Date.now();
for (const row of rows) {
  const label = row.name + ' v' + row.version + ' ' + row.op;
  let r;
  try {
    r = compare(row.ours, row.theirs, settings, label);
  } catch (e) {
    console.error('bench: ' + (e as Error).message);
    process.exit(1);
  }
  const ratio = r.ours / r.theirs;
  const sp = Math.max(spread(r.oursRounds), spread(r.theirsRounds));
  if (sp > 0.3) noisy.push(label + ' (' + Math.round(sp * 100) + '%)');
  const pass = ratio >= row.target;
  if (pass) met++;
  else missed++;
  console.log(
    line([
      row.name,
      row.version === 5 ? '5.0' : '3.1.1',
      row.op,
      rate(r.ours),
      rate(r.theirs),
      ratio.toFixed(2) + 'x',
      '>= ' + row.target.toFixed(1) + 'x',
      pass ? 'PASS' : 'FAIL',
    ]),
  );
  results.push({
    case: row.name,
    version: row.version,
    op: row.op,
    oursOpsPerSec: r.ours,
    theirsOpsPerSec: r.theirs,
    ratio: ratio,
    spread: sp,
    target: row.target,
    pass: pass,
    oursRounds: r.oursRounds,
    theirsRounds: r.theirsRounds,
  });
}
const seconds = (Date.now() - t0) / 1000;
console.log('');
if (noisy.length) {
  console.log('noisy (round-to-round spread > 30%; rerun on a quiet machine before trusting): ' + noisy.join(', '));
}
// The sink is read here so the timed work stays observable; its value means nothing.
if (Number.isNaN(sinkValue())) console.log('(sink NaN)');
console.log('targets: ' + met + ' met, ' + missed + ' missed (' + seconds.toFixed(1) + ' s)');

if (opts.json !== undefined) {
  const doc = {
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform + '-' + process.arch,
    cpu: cpu,
    date: new Date().toISOString(),
    mode: opts.quick ? 'quick' : 'full',
    settings: settings,
    notes: prepared.notes,
    rows: results,
    summary: { met: met, missed: missed },
  };
  try {
    writeFileSync(opts.json, JSON.stringify(doc, null, 2) + '\n');
  } catch (e) {
    console.error('bench: cannot write ' + opts.json + ': ' + (e as Error).message);
    process.exit(1);
  }
  console.log('wrote ' + opts.json);
}

process.exit(opts.strict && missed > 0 ? 1 : 0);
