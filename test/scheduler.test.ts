import { describe, expect, it } from 'vitest';
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { every, MAX_TIMER_MS, pending, Scheduler } from '../firmware/scheduler/index';
import type { TaskId } from '../firmware/scheduler/index';
import type { TimerHandle, TimerHost } from '../hal/types';
import { MemoryLog, VirtualClock } from '../hal/mock/index';
import { NodeClock, NodeTimerHost } from '../hal/node/index';
import { espruinoBuildOptions } from '../tools/esbuild-espruino.mjs';
import { bundleForEspruino, espruinoSkipReason, runOnEspruino } from '../tools/espruino-run';

/** Wraps a TimerHost to count armed timers (the scheduler must keep at most one). */
class CountingHost implements TimerHost {
  armed = 0;
  maxArmed = 0;
  sets: number[] = [];
  private live: TimerHandle[] = [];
  constructor(private inner: TimerHost) {}
  set(delayMs: number, cb: () => void): TimerHandle {
    this.sets.push(delayMs);
    const box: { h?: TimerHandle } = {};
    const h = this.inner.set(delayMs, () => {
      this.live = this.live.filter((x) => x !== box.h);
      this.armed = this.live.length;
      cb();
    });
    box.h = h;
    this.live.push(h);
    this.armed = this.live.length;
    this.maxArmed = Math.max(this.maxArmed, this.armed);
    return h;
  }
  clear(handle: TimerHandle): void {
    expect(handle).not.toBeUndefined();
    this.live = this.live.filter((x) => x !== handle);
    this.armed = this.live.length;
    this.inner.clear(handle);
  }
}

/** Is the task still pending (or a periodic task not cancelled)? */
function has(s: Scheduler, id: TaskId): boolean {
  return pending(s).some((p) => p.id === id);
}

function setup(opts?: { startMs?: number; wrapAtMs?: number; maxPerTurn?: number }) {
  const clock = new VirtualClock({ startMs: opts?.startMs, wrapAtMs: opts?.wrapAtMs });
  const host = new CountingHost(clock);
  const log = new MemoryLog({ clock });
  const s = new Scheduler(clock, host, log, opts?.maxPerTurn);
  return { clock, host, log, s };
}

describe('Scheduler on the virtual clock', () => {
  it('runs a task at exactly its deadline', () => {
    const { clock, s } = setup();
    const ranAt: number[] = [];
    s.at(1000, () => ranAt.push(clock.now()), 'a');
    s.after(250, () => ranAt.push(clock.now()), 'b');
    clock.advance(249);
    expect(ranAt).toEqual([]);
    clock.advance(1);
    expect(ranAt).toEqual([250]);
    clock.advance(749);
    expect(ranAt).toEqual([250]);
    clock.advance(1);
    expect(ranAt).toEqual([250, 1000]);
    expect(pending(s).length).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('orders by deadline, ties by insertion order', () => {
    const { clock, s } = setup();
    const order: string[] = [];
    s.at(300, () => order.push('c300'));
    s.at(100, () => order.push('a100'));
    s.at(200, () => order.push('b200-1'));
    s.at(200, () => order.push('b200-2'));
    s.at(100, () => order.push('a100-2'));
    s.at(200, () => order.push('b200-3'));
    clock.advance(1000);
    expect(order).toEqual(['a100', 'a100-2', 'b200-1', 'b200-2', 'b200-3', 'c300']);
  });

  it('keeps exactly one host timer armed, for the earliest deadline', () => {
    const { clock, host, s } = setup();
    for (let i = 0; i < 50; i++) s.after(1000 + ((i * 37) % 500), () => {});
    expect(host.armed).toBe(1);
    expect(clock.pendingTimers()).toBe(1);
    expect(clock.nextTimerAt()).toBe(1000);
    s.after(10, () => {});
    expect(host.armed).toBe(1);
    expect(clock.nextTimerAt()).toBe(10);
    clock.advance(2000);
    expect(host.maxArmed).toBe(1);
    expect(host.armed).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('cancel is idempotent and safe with unknown ids', () => {
    const { clock, s, host } = setup();
    const ran: string[] = [];
    const a = s.after(100, () => ran.push('a'));
    const b = s.after(200, () => ran.push('b'));
    expect(has(s, a)).toBe(true);
    s.cancel(a);
    expect(has(s, a)).toBe(false);
    // ignored: already cancelled, unknown, undefined
    s.cancel(a);
    s.cancel(9999);
    s.cancel(undefined);
    expect(has(s, b)).toBe(true);
    expect(pending(s).length).toBe(1);
    // the host timer moved to b's deadline
    expect(clock.nextTimerAt()).toBe(200);
    expect(host.armed).toBe(1);
    clock.advance(1000);
    expect(ran).toEqual(['b']);
    s.cancel(b); // already run: ignored
    // cancelling the last task disarms the host
    const c = s.after(50, () => ran.push('c'));
    s.cancel(c);
    expect(clock.pendingTimers()).toBe(0);
    clock.advance(100);
    expect(ran).toEqual(['b']);
  });

  it('a task can cancel another task due in the same turn', () => {
    const { clock, s } = setup();
    const ran: string[] = [];
    let victim: TaskId;
    s.at(100, () => {
      ran.push('killer');
      s.cancel(victim);
    });
    victim = s.at(100, () => ran.push('victim'));
    clock.advance(100);
    expect(ran).toEqual(['killer']);
  });

  it('work added during a turn that is already due runs in the same turn, in order', () => {
    const { clock, s } = setup();
    const ran: string[] = [];
    s.at(100, () => {
      ran.push('first@' + clock.now());
      s.post(() => ran.push('posted@' + clock.now()));
      s.after(0, () => ran.push('after0@' + clock.now()));
      s.at(50, () => ran.push('past@' + clock.now()));
      s.after(1, () => ran.push('after1@' + clock.now()));
      expect(s.runDue()).toBe(0); // nested runDue is a no-op
    });
    s.at(100, () => ran.push('second@' + clock.now()));
    const fired = clock.advance(100);
    expect(ran).toEqual(['first@100', 'second@100', 'posted@100', 'after0@100', 'past@100']);
    expect(fired).toBe(1); // one host timer fire ran all five
    clock.advance(1);
    expect(ran[ran.length - 1]).toBe('after1@101');
  });

  it('post() delivers work into the loop, never re-entrantly', () => {
    const { clock, s } = setup();
    const trace: string[] = [];
    s.post(() => {
      trace.push('outer start');
      s.post(() => trace.push('inner'));
      trace.push('outer end');
    });
    expect(trace).toEqual([]); // nothing runs inside post()
    clock.flush();
    expect(trace).toEqual(['outer start', 'outer end', 'inner']);
  });

  it('an exception in a task is logged and does not stop the loop', () => {
    const { clock, s, log } = setup();
    const ran: string[] = [];
    s.at(10, () => {
      throw new Error('boom');
    }, 'exploder');
    s.at(10, () => ran.push('next'));
    s.at(20, () => {
      throw 'a string';
    });
    s.at(30, () => ran.push('later'));
    clock.advance(100);
    expect(ran).toEqual(['next', 'later']);
    expect(s.errors).toBe(2);
    const errs = log.lines.filter((l) => l.level === 'error');
    expect(errs.map((l) => l.message)).toEqual(['task exploder threw: boom', 'task ? threw: a string']);
    expect(errs[0].atMs).toBe(10);
    expect(errs[0].tag).toBe('sched');
  });

  it('a zero-delay loop is bounded per turn and yields to the host between turns', () => {
    const { clock, s, host } = setup({ maxPerTurn: 10 });
    let n = 0;
    const spin = () => {
      n++;
      if (n < 35) s.post(spin);
    };
    s.post(spin);
    // an unrelated timer set on the host meanwhile (e.g. I/O) gets its turn between scheduler turns
    let ioAt = -1;
    clock.set(0, () => (ioAt = n));
    clock.flush();
    expect(n).toBe(35);
    expect(ioAt).toBe(10); // ran after the first bounded turn, not after all 35
    expect(host.sets.slice(1)).toEqual([0, 0, 0]); // three turns stopped at maxPerTurn and yielded
    expect(clock.now()).toBe(0);
  });

  it('runDue with a manual host: stops at maxPerTurn and re-arms with delay 0', () => {
    const sets: number[] = [];
    const clock = new VirtualClock();
    const host: TimerHost = { set: (d) => (sets.push(d), sets.length), clear: () => {} };
    const s = new Scheduler(clock, host, undefined, 4);
    for (let i = 0; i < 6; i++) s.post(() => {});
    expect(s.runDue()).toBe(4);
    expect(sets[sets.length - 1]).toBe(0);
    expect(s.runDue()).toBe(2);
    expect(pending(s).length).toBe(0);
  });

  it('every() fires 1440 times in a simulated day at exact 60 s multiples', () => {
    const { clock, s, host } = setup();
    const times: number[] = [];
    const t0 = performance.now();
    every(s, 60_000, () => times.push(clock.now()), 'heartbeat');
    clock.runFor(24 * 3600 * 1000);
    const wallMs = performance.now() - t0;
    expect(times.length).toBe(1440);
    expect(times.every((t, i) => t === (i + 1) * 60_000)).toBe(true);
    expect(host.maxArmed).toBe(1);
    console.log('simulated 24 h of a 60 s periodic task in ' + wallMs.toFixed(1) + ' ms wall');
  });

  it('a task that re-arms itself with after() does not drift on the virtual clock', () => {
    const { clock, s } = setup();
    const times: number[] = [];
    const tick = () => {
      times.push(clock.now());
      s.after(60_000, tick);
    };
    s.after(60_000, tick);
    clock.runFor(24 * 3600 * 1000);
    expect(times.length).toBe(1440);
    expect(times[1439]).toBe(86_400_000);
  });

  it('every() can be cancelled from inside its own run, and skips missed runs instead of bunching', () => {
    const { clock, s } = setup();
    let n = 0;
    const id = every(s, 100, () => {
      n++;
      if (n === 3) s.cancel(id);
    });
    expect(has(s, id)).toBe(true);
    clock.advance(1000);
    expect(n).toBe(3);
    expect(has(s, id)).toBe(false);

    // fell behind: the host timer is late by 350 ms (e.g. a long blocking task elsewhere)
    const times: number[] = [];
    const manualClock = new VirtualClock();
    let armed: (() => void) | undefined;
    const host: TimerHost = { set: (_d, cb) => ((armed = cb), 1), clear: () => (armed = undefined) };
    const s2 = new Scheduler(manualClock, host);
    every(s2, 100, () => times.push(manualClock.now()));
    manualClock.advance(450);
    armed!();
    expect(times).toEqual([450]);
    manualClock.advance(100);
    armed!();
    expect(times).toEqual([450, 550]); // next deadline was 450 + 100, not 200/300/400
  });

  it('pending() lists the tasks in run order, the earliest first', () => {
    const { clock, s } = setup();
    expect(pending(s)).toEqual([]);
    const late = s.after(500, () => {}, 'late');
    const early = s.after(300, () => {});
    clock.advance(100);
    expect(s.now()).toBe(100);
    const p = pending(s);
    expect(p).toEqual([
      { id: early, name: '', due: 300 },
      { id: late, name: 'late', due: 500 },
    ]);
    expect(p[0].id).toBe(early);
    expect(p[1].id).toBe(late);
  });

  it('handles a device clock that wraps at 2^32 ms', () => {
    const W = 2 ** 32;
    const { clock, s } = setup({ startMs: W - 90_000, wrapAtMs: W });
    expect(clock.now()).toBe(W - 90_000);
    const seen: Array<[number, number]> = [];
    const start = s.now();
    every(s, 60_000, () => seen.push([clock.now(), s.now() - start]));
    const once: number[] = [];
    s.after(100_000, () => once.push(clock.now()));
    clock.runFor(300_000);
    expect(seen.map((x) => x[1])).toEqual([60_000, 120_000, 180_000, 240_000, 300_000]);
    // raw clock values wrapped past 2^32 back to small numbers
    expect(seen.map((x) => x[0])).toEqual([W - 30_000, 30_000, 90_000, 150_000, 210_000]);
    expect(once).toEqual([10_000]);
    expect(clock.elapsed(W - 90_000)).toBe(300_000);
  });

  it('reads the clock wrap-safe and never backwards', () => {
    let raw = 0;
    const s = new Scheduler({ now: () => raw, elapsed: () => 0 }, new VirtualClock());
    /** How far the scheduler timeline moves when the raw clock goes from `from` to `to`. */
    const elapsed = (from: number, to: number) => {
      raw = from;
      const t = s.now();
      raw = to;
      return s.now() - t;
    };
    expect(elapsed(100, 250)).toBe(150);
    expect(elapsed(2 ** 32 - 10, 5)).toBe(15);
    expect(elapsed(2 ** 32 - 0.5, 0.25)).toBe(0.75);
    expect(elapsed(1000, 999)).toBe(0); // a small backwards step is not a wrap
    expect(elapsed(5, 5)).toBe(0);
  });

  it('clamps very long sleeps to the host limit and re-arms', () => {
    const { clock, s, host } = setup();
    const ran: number[] = [];
    s.after(30 * 24 * 3600 * 1000, () => ran.push(clock.now())); // 30 days > 2^31-1 ms
    expect(host.sets[0]).toBe(MAX_TIMER_MS);
    clock.advance(MAX_TIMER_MS);
    expect(ran).toEqual([]);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(30 * 24 * 3600 * 1000 - MAX_TIMER_MS);
    expect(ran).toEqual([30 * 24 * 3600 * 1000]);
  });
});

describe('Scheduler on the real Node clock', () => {
  it('runs short real delays in deadline order', async () => {
    const clock = new NodeClock();
    const host = new CountingHost(new NodeTimerHost(true));
    const s = new Scheduler(clock, host);
    const t0 = clock.now();
    const order: Array<[string, number]> = [];
    await new Promise<void>((resolve) => {
      s.after(60, () => {
        order.push(['c', clock.elapsed(t0)]);
        resolve();
      });
      s.after(20, () => order.push(['a', clock.elapsed(t0)]));
      s.after(40, () => {
        order.push(['b', clock.elapsed(t0)]);
        s.post(() => order.push(['posted', clock.elapsed(t0)]));
      });
      const x = s.after(30, () => order.push(['cancelled', 0]));
      s.cancel(x);
    });
    expect(order.map((o) => o[0])).toEqual(['a', 'b', 'posted', 'c']);
    // loose bounds: never early, not absurdly late
    expect(order[0][1]).toBeGreaterThanOrEqual(19);
    expect(order[3][1]).toBeGreaterThanOrEqual(59);
    expect(order[3][1]).toBeLessThan(2000);
    expect(host.maxArmed).toBe(1);
    expect(host.armed).toBe(0);
  });
});

// The scheduler on the real thing: bundled with the shared Espruino options, checked by the bundle
// check, and run on the Espruino Linux interpreter (skipped, with the reason, without ESPRUINO_BIN).
const ESPRUINO_ENTRY = `
import { Scheduler, every, pending } from ${JSON.stringify(path.resolve(__dirname, '../firmware/scheduler/index.ts'))};
declare const getTime: () => number;
declare function quit(): void;
const clock = {
  now: function () { return getTime() * 1000; },
  elapsed: function (since: number) { const d = getTime() * 1000 - since; return d < 0 ? d + 4294967296 : d; },
};
let spins = 0;
// A turn that stopped at maxPerTurn re-arms with delay 0: count those while the spin loop runs.
let yields = 0;
// As the TimerHost contract asks, clearing a timer that already fired does nothing (Espruino reuses ids).
const host = {
  set: function (d: number, cb: () => void) {
    if (d === 0 && spins > 0 && spins < 30) yields++;
    const t = { id: 0 as unknown, done: false };
    t.id = setTimeout(function () { t.done = true; cb(); }, d);
    return t;
  },
  clear: function (h: unknown) { const t = h as { id: unknown; done: boolean }; if (!t.done) { t.done = true; clearTimeout(t.id as number); } },
};
const errs: string[] = [];
const log = {
  enabled: function () { return true; },
  debug: function () {}, info: function () {}, warn: function () {},
  error: function (tag: string, m: string) { errs.push(tag + ':' + m); },
};
const s = new Scheduler(clock, host, log, 8);
const order: string[] = [];
s.after(60, function () { order.push('c'); });
s.after(20, function () {
  order.push('a');
  s.post(function () { order.push('posted'); });
  throw new Error('boom');
}, 'thrower');
const x = s.after(30, function () { order.push('cancelled'); });
s.cancel(x);
s.cancel(x);
s.cancel(424242);
s.after(40, function () { order.push('b'); });
let n = 0;
const id = every(s, 15, function () { n++; if (n === 3) s.cancel(id); });
function spin() { spins++; if (spins < 30) s.post(spin); }
s.post(spin);
s.after(100, function () {
  console.log('RESULT ' + JSON.stringify({ order: order, errs: errs, n: n, spins: spins, yields: yields, size: pending(s).length }));
  quit();
});
`;

const ESPRUINO_SKIP = espruinoSkipReason();
if (ESPRUINO_SKIP !== undefined) console.log('skipping the scheduler run on Espruino: ' + ESPRUINO_SKIP);

describe('Scheduler is Espruino-safe', () => {
  it('bundles with the Espruino options and passes the bundle check', async () => {
    const r = await esbuild.build({
      ...espruinoBuildOptions(),
      entryPoints: ['firmware/scheduler/index.ts'],
      write: false,
      globalName: 'sched',
    });
    const code = r.outputFiles![0].text;
    expect(code).toContain('runDue');
    expect(code).not.toMatch(/\bsetTimeout\b|\bsetInterval\b/);
    const url = pathToFileURL(path.resolve(__dirname, '../tools/bundle-check.mjs')).href;
    const { checkBundle } = (await import(url)) as { checkBundle: (js: string, o?: object) => unknown[] };
    expect(checkBundle(code, { fileName: 'scheduler.js' })).toEqual([]);
  });

  it('hal/types.ts is types only: it compiles to no code', async () => {
    const src = fs.readFileSync(path.resolve(__dirname, '../hal/types.ts'), 'utf8');
    const out = await esbuild.transform(src, { loader: 'ts', format: 'esm' });
    expect(out.code.trim()).toBe('');
  });

  it.skipIf(ESPRUINO_SKIP !== undefined)('runs on the Espruino interpreter with its real timers', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-sched-'));
    try {
      const entry = path.join(dir, 'entry.ts');
      fs.writeFileSync(entry, ESPRUINO_ENTRY);
      const js = await bundleForEspruino(entry);
      const url = pathToFileURL(path.resolve(__dirname, '../tools/bundle-check.mjs')).href;
      const { checkBundle } = (await import(url)) as { checkBundle: (js: string, o?: object) => unknown[] };
      expect(checkBundle(js, { fileName: 'entry.js' })).toEqual([]);
      const res = await runOnEspruino(js, { timeoutMs: 10_000 });
      expect(res.uncaught).toEqual([]);
      expect(res.timedOut).toBe(false);
      const line = res.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      expect(line, res.stdout).toBeDefined();
      const got = JSON.parse(line!.slice(7)) as { yields: number };
      expect(got).toEqual({
        order: ['a', 'posted', 'b', 'c'],
        errs: ['sched:task thrower threw: boom'],
        n: 3,
        spins: 30,
        yields: expect.any(Number),
        size: 0,
      });
      // 30 spins at 8 per turn need at least 3 yields to the host; on a loaded machine real timers
      // fall due during the loop and share turns, so there may be a few more (never one per spin).
      expect(got.yields).toBeGreaterThanOrEqual(3);
      expect(got.yields).toBeLessThanOrEqual(8);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Scheduler.halt (power cut / before deep sleep)', () => {
  it('drops every task, also from inside a running task, and ignores later ones', async () => {
    const { VirtualClock } = await import('../hal/mock/index');
    const { Scheduler } = await import('../firmware/scheduler/index');
    const clock = new VirtualClock();
    const s = new Scheduler(clock, clock);
    const ran: string[] = [];
    s.at(10, () => {
      ran.push('a');
      s.halt();
    });
    s.at(10, () => ran.push('b'));
    s.at(20, () => ran.push('c'));
    clock.runFor(100);
    s.post(() => ran.push('d'));
    s.after(5, () => ran.push('e'));
    clock.runFor(100);
    expect(ran).toEqual(['a']);
    expect(pending(s).length).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });
});
