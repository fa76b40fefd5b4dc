// Side-by-side timing: two operations measured interleaved in one process. Each side is calibrated
// to a batch size taking about 1 ms (which doubles as the first warm-up), warmed up for a fixed
// time, then measured for `rounds` rounds of `roundMs` each, alternating which side goes first.
// The reported rate is the median of the per-round rates.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Op } from './cases';

export interface Settings {
  rounds: number;
  roundMs: number;
  warmupMs: number;
}

export interface Result {
  /** Median ops/s over the rounds. */
  ours: number;
  theirs: number;
  oursRounds: number[];
  theirsRounds: number[];
}

const now = process.hrtime.bigint;

// A full GC before every timed stretch, so neither side pays for the other's garbage (this matters
// for the 64 KB cases, whose cost is mostly allocation). `npm run bench` runs node without
// --expose-gc, so expose it at run time; fall back to no GC if that is refused.
function exposeGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    if (typeof f === 'function') return f as () => void;
  } catch {
    // ignore: measure without forced GCs
  }
  return () => {};
}
const gc = exposeGc();
const BATCH_NS = 1_000_000n;

function runChecked(op: Op, n: number, label: string): void {
  const good = op(n);
  if (good !== n) throw new Error(label + ': ' + good + ' good results out of ' + n + ' ops');
}

/** Smallest power-of-two batch taking at least ~1 ms. */
function calibrate(op: Op, label: string): number {
  let n = 1;
  for (;;) {
    const t0 = now();
    runChecked(op, n, label);
    if (now() - t0 >= BATCH_NS || n >= 1 << 24) return n;
    n *= 2;
  }
}

/** Runs whole batches until `ms` elapsed; returns ops/s. */
function timed(op: Op, batch: number, ms: number, label: string): number {
  const budget = BigInt(Math.round(ms * 1e6));
  gc();
  let ops = 0;
  const t0 = now();
  let t = t0;
  do {
    runChecked(op, batch, label);
    ops += batch;
    t = now();
  } while (t - t0 < budget);
  return ops / (Number(t - t0) / 1e9);
}

export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function compare(ours: Op, theirs: Op, settings: Settings, label: string): Result {
  const lo = label + ' (ours)';
  const lt = label + ' (mqtt-packet)';
  const bo = calibrate(ours, lo);
  const bt = calibrate(theirs, lt);
  timed(ours, bo, settings.warmupMs, lo);
  timed(theirs, bt, settings.warmupMs, lt);
  const oursRounds: number[] = [];
  const theirsRounds: number[] = [];
  for (let r = 0; r < settings.rounds; r++) {
    if (r % 2 === 0) {
      oursRounds.push(timed(ours, bo, settings.roundMs, lo));
      theirsRounds.push(timed(theirs, bt, settings.roundMs, lt));
    } else {
      theirsRounds.push(timed(theirs, bt, settings.roundMs, lt));
      oursRounds.push(timed(ours, bo, settings.roundMs, lo));
    }
  }
  return { ours: median(oursRounds), theirs: median(theirsRounds), oursRounds: oursRounds, theirsRounds: theirsRounds };
}
