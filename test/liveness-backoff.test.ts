// firmware/liveness/backoff.ts: full-jitter exponential backoff and broker failover, in virtual time
// (the tests pass nowMs and the random value r themselves).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Backoff, BrokerRotation } from '../firmware/liveness/backoff';
import type { BackoffConfig } from '../firmware/liveness/backoff';

const CFG: BackoffConfig = { baseMs: 1000, capMs: 300000, factor: 2, stableAfterMs: 60000 };
const R_MAX = 0.9999999; // r -> 1
const CEILINGS = [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000, 300000];

describe('Backoff.next: full jitter, uniform in [0, min(cap, base * factor^attempt)]', () => {
  it('ceiling doubles from base and stops at the cap', () => {
    const b = new Backoff(CFG);
    const seen: number[] = [];
    for (let i = 0; i < CEILINGS.length; i++) {
      expect(b.attempt).toBe(i);
      seen.push(b.ceilingMs());
      b.next(0.5);
    }
    expect(seen).toEqual(CEILINGS);
    expect(b.attempt).toBe(CEILINGS.length);
  });

  it('r = 0 gives 0 and r -> 1 gives exactly the ceiling, at every attempt', () => {
    const lo = new Backoff(CFG);
    const hi = new Backoff(CFG);
    const los: number[] = [];
    const his: number[] = [];
    for (let i = 0; i < CEILINGS.length; i++) {
      los.push(lo.next(0));
      his.push(hi.next(R_MAX));
    }
    expect(los).toEqual(CEILINGS.map(() => 0));
    expect(his).toEqual(CEILINGS);
  });

  it('mid values: floor(r * (ceiling + 1))', () => {
    const b = new Backoff(CFG);
    expect(b.next(0.5)).toBe(500); // 0.5 * 1001
    expect(b.next(0.25)).toBe(500); // 0.25 * 2001
    expect(b.next(0.75)).toBe(3000); // 0.75 * 4001
    expect(b.next(0.1)).toBe(800); // 0.1 * 8001
  });

  it('r outside [0, 1) is clamped: negative and NaN -> 0, >= 1 -> the ceiling', () => {
    const b = new Backoff(CFG);
    expect(b.next(-0.5)).toBe(0);
    expect(b.next(NaN)).toBe(0);
    expect(b.next(1)).toBe(4000);
    expect(b.next(7)).toBe(8000);
    expect(b.attempt).toBe(4);
  });

  it('property: every delay lies in [0, ceiling] and attempt grows by one', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { maxLength: 40 }), (rs) => {
        const b = new Backoff(CFG);
        for (let i = 0; i < rs.length; i++) {
          const ceiling = b.ceilingMs();
          const d = b.next(rs[i]);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(ceiling);
          expect(ceiling).toBe(Math.min(300000, 1000 * Math.pow(2, i)));
          expect(b.attempt).toBe(i + 1);
        }
      }),
    );
  });

  it('a huge attempt (restored) stays at the cap; factor 1 is constant; base above cap is the cap', () => {
    const b = new Backoff(CFG);
    b.restore({ attempt: 5000 });
    expect(b.ceilingMs()).toBe(300000);
    expect(b.next(R_MAX)).toBe(300000);
    const f1 = new Backoff({ baseMs: 2000, capMs: 60000, factor: 1, stableAfterMs: 0 });
    expect([f1.next(R_MAX), f1.next(R_MAX), f1.next(R_MAX)]).toEqual([2000, 2000, 2000]);
    const big = new Backoff({ baseMs: 90000, capMs: 60000, factor: 2, stableAfterMs: 0 });
    expect(big.next(R_MAX)).toBe(60000);
    const fr = new Backoff({ baseMs: 1000, capMs: 60000, factor: 1.5, stableAfterMs: 0 });
    fr.next(0);
    expect(fr.ceilingMs()).toBe(1500);
    fr.next(0);
    expect(fr.ceilingMs()).toBe(2250);
  });
});

describe('Backoff.nextCapped: failures that retrying soon cannot fix', () => {
  it('uniform in [cap/2, cap] whatever the attempt, and attempt grows', () => {
    const b = new Backoff(CFG);
    expect(b.nextCapped(0)).toBe(150000);
    expect(b.nextCapped(R_MAX)).toBe(300000);
    expect(b.nextCapped(0.5)).toBe(225000); // 150000 + floor(0.5 * 150001)
    expect(b.attempt).toBe(3);
    // the next ordinary delay reflects the three failures
    expect(b.ceilingMs()).toBe(8000);
  });

  it('odd cap: [floor(cap/2), cap]', () => {
    const b = new Backoff({ baseMs: 10, capMs: 1001, factor: 2, stableAfterMs: 0 });
    expect(b.nextCapped(0)).toBe(500);
    expect(b.nextCapped(R_MAX)).toBe(1001);
  });
});

describe('Backoff reset only after the link stayed up stableAfterMs', () => {
  it('a connect-then-kicked loop keeps backing off', () => {
    const b = new Backoff(CFG);
    let t = 0;
    const ceilings: number[] = [];
    for (let i = 0; i < 6; i++) {
      b.next(0.5);
      b.up(t);
      t += 59999; // kicked just before stableAfterMs
      expect(b.down(t)).toBe(false);
      ceilings.push(b.ceilingMs());
    }
    expect(b.attempt).toBe(6);
    expect(ceilings).toEqual([2000, 4000, 8000, 16000, 32000, 64000]);
  });

  it('resets at exactly stableAfterMs of uptime, and reports it', () => {
    const b = new Backoff(CFG);
    b.next(0);
    b.next(0);
    b.next(0);
    b.up(5000);
    expect(b.down(65000)).toBe(true);
    expect(b.attempt).toBe(0);
    expect(b.next(R_MAX)).toBe(1000);
  });

  it('down() without up() (a failed attempt) does not reset; up is forgotten after down', () => {
    const b = new Backoff(CFG);
    b.next(0);
    expect(b.down(1e9)).toBe(false);
    expect(b.attempt).toBe(1);
    b.up(0);
    b.down(10);
    expect(b.down(1e9)).toBe(false);
    expect(b.attempt).toBe(1);
  });

  it('immediate() returns 0 and keeps attempt', () => {
    const b = new Backoff(CFG);
    b.next(0);
    b.next(0);
    expect(b.immediate()).toBe(0);
    expect(b.attempt).toBe(2);
    expect(b.ceilingMs()).toBe(4000);
  });
});

describe('Backoff persistence (deep sleep)', () => {
  it('toJSON/restore round trip through JSON text', () => {
    const b = new Backoff(CFG);
    for (let i = 0; i < 5; i++) b.next(0.3);
    const text = JSON.stringify(b);
    expect(text).toBe('{"attempt":5}');
    const c = new Backoff(CFG);
    c.restore(JSON.parse(text));
    expect(c.attempt).toBe(5);
    expect(c.next(R_MAX)).toBe(32000);
  });

  it('invalid input restores attempt 0; fractions are floored; the up time is not restored', () => {
    const c = new Backoff(CFG);
    c.restore({ attempt: 3.7 });
    expect(c.attempt).toBe(3);
    for (const bad of [{ attempt: -1 }, { attempt: NaN }, { attempt: 'x' }, {}, null, undefined]) {
      c.restore(bad as unknown as { attempt: number });
      expect(c.attempt).toBe(0);
    }
    c.up(0);
    c.restore({ attempt: 4 });
    expect(c.down(1e9)).toBe(false);
    expect(c.attempt).toBe(4);
  });
});

describe('BrokerRotation: failover over 3 brokers', () => {
  it('round robin 1, 2, 0, ...; once all failed the delay is the next broker\'s remaining backoff', () => {
    const rot = new BrokerRotation(3, CFG);
    expect(rot.current).toBe(0);
    let t = 0;
    const got: string[] = [];
    const attemptsAt: number[][] = [[0], [], []];
    for (let i = 0; i < 15; i++) {
      const c = rot.failed(t, R_MAX, false);
      expect(rot.current).toBe(c.broker);
      got.push(c.broker + ':' + c.delayMs);
      t += c.delayMs;
      attemptsAt[c.broker].push(t);
    }
    // hand-computed: each broker draws 1000, 2000, 4000, 8000, 16000 (r -> 1); the failover jitter is
    // 1000; the delay is max(remaining wait of the next broker, 1000).
    expect(got).toEqual([
      '1:1000', '2:1000', '0:1000',
      '1:1000', '2:1000', '0:1000',
      '1:1000', '2:1000', '0:2000',
      '1:1000', '2:1000', '0:6000',
      '1:1000', '2:1000', '0:14000',
    ]);
    // broker 0 is attempted at 0, 3000, 6000, 10000, 18000, 34000: never before its own draw
    // (1000, 2000, 4000, 8000, 16000) has passed since its previous failure.
    expect(attemptsAt[0]).toEqual([0, 3000, 6000, 10000, 18000, 34000]);
    expect(rot.toJSON()).toEqual({ current: 0, attempts: [5, 5, 5] });
  });

  it('r = 0: the failover is immediate while others have not failed', () => {
    const rot = new BrokerRotation(3, CFG);
    expect(rot.failed(0, 0, false)).toEqual({ delayMs: 0, broker: 1 });
    expect(rot.failed(0, 0, false)).toEqual({ delayMs: 0, broker: 2 });
    expect(rot.failed(0, 0, false)).toEqual({ delayMs: 0, broker: 0 });
  });

  it('failover jitter: a fleet leaving a dead broker together is spread over [0, baseMs]', () => {
    const delays: number[] = [];
    for (let k = 0; k <= 10; k++) {
      const rot = new BrokerRotation(2, CFG);
      delays.push(rot.failed(0, k / 10 === 1 ? R_MAX : k / 10, false).delayMs);
    }
    expect(delays).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  });

  it('capped failures (auth refused) on every broker: then the wait is the next broker\'s [cap/2, cap]', () => {
    const rot = new BrokerRotation(3, CFG);
    expect(rot.failed(0, 0, true)).toEqual({ delayMs: 0, broker: 1 });
    expect(rot.failed(0, 0, true)).toEqual({ delayMs: 0, broker: 2 });
    expect(rot.failed(0, 0, true)).toEqual({ delayMs: 150000, broker: 0 });
    expect(rot.toJSON().attempts).toEqual([1, 1, 1]);
  });

  it('a broker that was up (stably) stays preferred, and every backoff is reset', () => {
    const rot = new BrokerRotation(3, CFG);
    rot.failed(0, 0.5, false); // 0 failed -> 1
    rot.failed(500, 0.5, false); // 1 failed -> 2
    expect(rot.current).toBe(2);
    rot.up(1000);
    expect(rot.upAt).toBe(1000);
    rot.down(61000);
    expect(rot.toJSON().attempts).toEqual([0, 0, 0]);
    // first failure after the stable connection: stay on 2, own backoff at attempt 0
    expect(rot.failed(61000, R_MAX, false)).toEqual({ delayMs: 1000, broker: 2 });
    // then it rotates again
    expect(rot.failed(62000, 0, false)).toEqual({ delayMs: 0, broker: 0 });
  });

  it('a connection that dropped before stableAfterMs counts as a failure and rotates', () => {
    const rot = new BrokerRotation(3, CFG);
    rot.up(0);
    rot.down(59999);
    expect(rot.failed(59999, 0, false)).toEqual({ delayMs: 0, broker: 1 });
    expect(rot.toJSON().attempts).toEqual([1, 0, 0]);
  });

  it('one broker: exactly Backoff.next / nextCapped', () => {
    const rot = new BrokerRotation(1, CFG);
    const b = new Backoff(CFG);
    const rs = [0.5, R_MAX, 0.1, 0.9, 0.3];
    for (const r of rs) expect(rot.failed(0, r, false)).toEqual({ delayMs: b.next(r), broker: 0 });
    expect(rot.failed(0, 0.4, true)).toEqual({ delayMs: b.nextCapped(0.4), broker: 0 });
    expect(new BrokerRotation(0, CFG).toJSON()).toEqual({ current: 0, attempts: [0] });
  });

  it('property: no broker is retried before its own drawn delay; delays within [0, cap]; strict round robin', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.boolean()), { minLength: 1, maxLength: 60 }),
        (n, steps) => {
          const rot = new BrokerRotation(n, CFG);
          const shadow: Backoff[] = [];
          for (let i = 0; i < n; i++) shadow.push(new Backoff(CFG));
          const ready: number[] = new Array(n).fill(0);
          let t = 0;
          for (const [r, capped] of steps) {
            const i = rot.current;
            expect(t).toBeGreaterThanOrEqual(ready[i]);
            const d = capped ? shadow[i].nextCapped(r) : shadow[i].next(r);
            ready[i] = t + d;
            const c = rot.failed(t, r, capped);
            expect(c.broker).toBe((i + 1) % n);
            expect(c.delayMs).toBeGreaterThanOrEqual(0);
            expect(c.delayMs).toBeLessThanOrEqual(300000);
            expect(c.delayMs).toBeGreaterThanOrEqual(Math.floor(r * 1001));
            t += c.delayMs;
          }
        },
      ),
    );
  });
});

describe('BrokerRotation persistence', () => {
  it('round trip through JSON text; the current broker and attempts survive', () => {
    const rot = new BrokerRotation(3, CFG);
    rot.failed(0, 0, false);
    rot.failed(0, 0, false);
    rot.failed(0, 0, false);
    rot.failed(0, 0, false);
    rot.failed(0, 0, false);
    const text = JSON.stringify(rot);
    expect(text).toBe('{"current":2,"attempts":[2,2,1]}');
    const back = new BrokerRotation(3, CFG);
    back.restore(JSON.parse(text));
    expect(back.toJSON()).toEqual({ current: 2, attempts: [2, 2, 1] });
    // waits drawn before the sleep are not restored (the timeline restarts at boot)
    expect(back.readyAt).toEqual([0, 0, 0]);
    // the restored attempt of the current broker (1) draws from [0, 2000]
    expect(back.backoff()).toEqual({ attempt: 1 });
    back.failed(0, R_MAX, false);
    expect(back.readyAt[2]).toBe(2000);
  });

  it('a different broker count or bad input restores what fits', () => {
    const r2 = new BrokerRotation(2, CFG);
    r2.restore({ current: 2, attempts: [4, 5, 6] });
    expect(r2.toJSON()).toEqual({ current: 0, attempts: [4, 5] });
    const r4 = new BrokerRotation(4, CFG);
    r4.restore({ current: 3, attempts: [1] });
    expect(r4.toJSON()).toEqual({ current: 3, attempts: [1, 0, 0, 0] });
    r4.restore(null as unknown as { current: number; attempts: number[] });
    expect(r4.toJSON()).toEqual({ current: 0, attempts: [0, 0, 0, 0] });
    r4.restore({ current: -1, attempts: 'x' as unknown as number[] });
    expect(r4.toJSON()).toEqual({ current: 0, attempts: [0, 0, 0, 0] });
  });
});
