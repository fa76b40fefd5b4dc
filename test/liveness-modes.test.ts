// firmware/liveness/modes.ts: power modes with exact transition times (virtual time: the tests pass nowMs).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PowerModes, modeDefaults } from '../firmware/liveness/modes';
import type { ModeConfig } from '../firmware/liveness/modes';

function cfg(over?: Partial<ModeConfig>): ModeConfig {
  return Object.assign(modeDefaults(), over ?? {});
}

describe('PowerModes defaults', () => {
  it('are the documented ones', () => {
    expect(modeDefaults()).toEqual({
      activeKeepAliveSec: 60,
      idleKeepAliveSec: 300,
      sleepCheckInSec: 1800,
      idleAfterSec: 120,
      sleepAfterSec: 600,
      lowBatteryMv: 0,
    });
  });
});

describe('PowerModes time-based transitions', () => {
  it('starts active; idle at exactly idleAfterSec after the last traffic; sleep exactly sleepAfterSec later', () => {
    const m = new PowerModes(cfg(), 1000);
    expect(m.mode).toBe('active');
    expect(m.nextDeadline()).toBe(121000);
    expect(m.tick(120999)).toBeUndefined();
    expect(m.mode).toBe('active');
    expect(m.tick(121000)).toEqual({ from: 'active', to: 'idle', reason: 'idle-timeout', atMs: 121000 });
    expect(m.mode).toBe('idle');
    expect(m.nextDeadline()).toBe(721000);
    expect(m.tick(720999)).toBeUndefined();
    expect(m.tick(721000)).toEqual({ from: 'idle', to: 'sleep', reason: 'sleep-timeout', atMs: 721000 });
    expect(m.mode).toBe('sleep');
    expect(m.nextDeadline()).toBeUndefined();
    expect(m.tick(1e12)).toBeUndefined();
    expect(m.mode).toBe('sleep');
  });

  it('traffic while active moves the idle deadline and is not a change', () => {
    const m = new PowerModes(cfg(), 0);
    expect(m.to('active', 'publish', 50000)).toBeUndefined();
    expect(m.nextDeadline()).toBe(170000);
    expect(m.tick(169999)).toBeUndefined();
    expect(m.tick(170000)?.atMs).toBe(170000);
  });

  it('a late tick reports the time each transition was due; both due at once -> one change active -> sleep', () => {
    const a = new PowerModes(cfg(), 0);
    expect(a.tick(500000)).toEqual({ from: 'active', to: 'idle', reason: 'idle-timeout', atMs: 120000 });
    expect(a.nextDeadline()).toBe(720000);
    const b = new PowerModes(cfg(), 0);
    expect(b.tick(10000000)).toEqual({ from: 'active', to: 'sleep', reason: 'sleep-timeout', atMs: 720000 });
    expect(b.mode).toBe('sleep');
  });

  it('traffic in idle or sleep returns to active with the caller\'s reason; the countdown restarts', () => {
    const m = new PowerModes(cfg(), 0);
    m.tick(120000);
    expect(m.to('active', 'inbound', 200000)).toEqual({ from: 'idle', to: 'active', reason: 'inbound', atMs: 200000 });
    expect(m.nextDeadline()).toBe(320000);
    m.tick(320000);
    m.tick(920000);
    expect(m.mode).toBe('sleep');
    expect(m.to('active', 'wake', 1000000)).toEqual({ from: 'sleep', to: 'active', reason: 'wake', atMs: 1000000 });
    expect(m.nextDeadline()).toBe(1120000);
  });

  it('idleAfterSec 0 / sleepAfterSec 0 disable those transitions', () => {
    const a = new PowerModes(cfg({ idleAfterSec: 0 }), 0);
    expect(a.nextDeadline()).toBeUndefined();
    expect(a.tick(1e12)).toBeUndefined();
    expect(a.mode).toBe('active');
    const b = new PowerModes(cfg({ sleepAfterSec: 0 }), 0);
    expect(b.tick(1e12)).toEqual({ from: 'active', to: 'idle', reason: 'idle-timeout', atMs: 120000 });
    expect(b.nextDeadline()).toBeUndefined();
    expect(b.tick(2e12)).toBeUndefined();
    expect(b.mode).toBe('idle');
  });

  it('property: ticking at every nextDeadline() reproduces a late tick', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 2000000 }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 5000000 }),
        (gaps, tail) => {
          const eager = new PowerModes(cfg(), 0);
          const lazy = new PowerModes(cfg(), 0);
          let t = 0;
          for (const g of gaps) {
            // eager: tick at each deadline before the traffic
            let d = eager.nextDeadline();
            while (d !== undefined && d <= t + g) {
              const ch = eager.tick(d);
              expect(ch?.atMs).toBe(d);
              d = eager.nextDeadline();
            }
            t += g;
            lazy.tick(t);
            eager.to('active', 'publish', t);
            lazy.to('active', 'publish', t);
            expect(lazy.mode).toBe(eager.mode);
          }
          eager.tick(t + tail);
          lazy.tick(t + tail);
          expect(lazy.mode).toBe(eager.mode);
          expect(lazy.nextDeadline()).toBe(eager.nextDeadline());
          // exactly: idle 120 s after the last traffic, sleep 600 s after that
          expect(lazy.mode).toBe(tail >= 720000 ? 'sleep' : tail >= 120000 ? 'idle' : 'active');
        },
      ),
    );
  });
});

describe('PowerModes app requests and battery', () => {
  it('the app asks for sleep (to sleep, app-request): -> sleep once; again is no change; no timed transitions while asleep', () => {
    const m = new PowerModes(cfg(), 0);
    expect(m.to('sleep', 'app-request', 5000)).toEqual({ from: 'active', to: 'sleep', reason: 'app-request', atMs: 5000 });
    expect(m.to('sleep', 'app-request', 6000)).toBeUndefined();
    expect(m.nextDeadline()).toBeUndefined();
    expect(m.tick(1e9)).toBeUndefined();
  });

  it('low battery forces sleep and holds it until the battery recovers past the hysteresis', () => {
    const m = new PowerModes(cfg({ lowBatteryMv: 3300 }), 0);
    expect(m.battery(3300, 1)).toBeUndefined(); // not under
    expect(m.mode).toBe('active');
    expect(m.battery(3299, 2)).toEqual({ from: 'active', to: 'sleep', reason: 'low-battery', atMs: 2 });
    expect(m.lowBattery).toBe(true);
    expect(m.to('active', 'publish', 3)).toBeUndefined();
    expect(m.to('active', 'wake', 4)).toBeUndefined();
    expect(m.mode).toBe('sleep');
    expect(m.battery(3399, 5)).toBeUndefined(); // recovering but inside the 100 mV hysteresis
    expect(m.lowBattery).toBe(true);
    expect(m.to('active', 'publish', 6)).toBeUndefined();
    expect(m.battery(3400, 7)).toBeUndefined(); // lock lifted, still asleep
    expect(m.lowBattery).toBe(false);
    expect(m.mode).toBe('sleep');
    expect(m.to('active', 'publish', 8)).toEqual({ from: 'sleep', to: 'active', reason: 'publish', atMs: 8 });
  });

  it('low battery while already asleep: no change reported, but the lock holds', () => {
    const m = new PowerModes(cfg({ lowBatteryMv: 3300 }), 0);
    m.to('sleep', 'app-request', 1);
    expect(m.battery(3000, 2)).toBeUndefined();
    expect(m.to('active', 'wake', 3)).toBeUndefined();
    expect(m.mode).toBe('sleep');
  });

  it('low battery from idle; custom hysteresis; lowBatteryMv 0 disables the rule', () => {
    const m = new PowerModes(cfg({ lowBatteryMv: 3300, batteryHysteresisMv: 0 }), 0);
    m.tick(120000);
    expect(m.battery(3200, 130000)).toEqual({ from: 'idle', to: 'sleep', reason: 'low-battery', atMs: 130000 });
    m.battery(3300, 130001);
    expect(m.lowBattery).toBe(false);
    const off = new PowerModes(cfg(), 0);
    expect(off.battery(0, 1)).toBeUndefined();
    expect(off.mode).toBe('active');
    expect(off.lowBattery).toBe(false);
  });

  it('traffic while locked is still recorded', () => {
    const m = new PowerModes(cfg({ lowBatteryMv: 3300 }), 0);
    m.battery(3000, 1);
    m.to('active', 'publish', 500);
    expect(m.lastTrafficMs).toBe(500);
  });
});

describe('PowerModes persistence (deep sleep)', () => {
  it('round trip through JSON text; times restart at the construction time', () => {
    const m = new PowerModes(cfg({ lowBatteryMv: 3300 }), 0);
    m.tick(120000);
    const text = JSON.stringify(m);
    expect(text).toBe('{"mode":"idle","low":false}');
    const back = new PowerModes(cfg({ lowBatteryMv: 3300 }), 5000, JSON.parse(text));
    expect(back.mode).toBe('idle');
    expect(back.nextDeadline()).toBe(605000);
    m.battery(3000, 130000);
    const low = new PowerModes(cfg({ lowBatteryMv: 3300 }), 0, JSON.parse(JSON.stringify(m)));
    expect(low.toJSON()).toEqual({ mode: 'sleep', low: true });
    expect(low.to('active', 'wake', 1)).toBeUndefined();
  });

  it('bad input changes nothing it cannot read', () => {
    let m = new PowerModes(cfg(), 0, null as unknown as { mode: 'active'; low: boolean });
    expect(m.toJSON()).toEqual({ mode: 'active', low: false });
    m = new PowerModes(cfg(), 0, { mode: 'turbo' as unknown as 'active', low: 'yes' as unknown as boolean });
    expect(m.toJSON()).toEqual({ mode: 'active', low: false });
    m = new PowerModes(cfg(), 0, { mode: 'sleep', low: false });
    expect(m.mode).toBe('sleep');
  });
});
