// Deterministic Random for tests: mulberry32 over a 32-bit seed.

import type { Random } from '../types';

export class SeededRandom implements Random {
  private s: number;
  constructor(seed?: number) {
    this.s = (seed ?? 1) >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** A Random that returns the given values in turn (repeating the last one), for exact jitter tests. */
export class FixedRandom implements Random {
  private i = 0;
  constructor(private readonly values: number[]) {
    if (values.length === 0) throw new Error('FixedRandom: no values');
  }
  next(): number {
    const v = this.values[Math.min(this.i, this.values.length - 1)];
    this.i++;
    return v;
  }
}
