// firmware/liveness/keepalive.ts: declared/granted keep-alive, ping interval, phase jitter, ping and
// watchdog deadlines (virtual time).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_KEEPALIVE_SEC,
  declaredKeepAlive,
  firstPingDelayMs,
  grantedKeepAlive,
  keepAliveStep,
  nextPingAt,
  pathIdleSec,
  pingIntervalSec,
  probeDue,
} from '../firmware/liveness/keepalive';
import type { KeepAliveState } from '../firmware/liveness/keepalive';
import { modeDefaults } from '../firmware/liveness/modes';
import type { ModeConfig } from '../firmware/liveness/modes';

const M = modeDefaults();
function cfg(over: Partial<ModeConfig>): ModeConfig {
  return Object.assign(modeDefaults(), over);
}

describe('declaredKeepAlive: the idle interval once per connection, clamped', () => {
  it('active and idle declare the idle interval; held-connection sleep declares the check-in', () => {
    expect(declaredKeepAlive(M, 0, 'active', undefined)).toBe(300);
    expect(declaredKeepAlive(M, 0, 'idle', undefined)).toBe(300);
    expect(declaredKeepAlive(M, 0, 'sleep', undefined)).toBe(1800);
  });

  it('broker caps: AWS IoT 1200, Azure IoT Hub 1177, mosquitto max_keepalive 60; 0 = no cap', () => {
    expect(declaredKeepAlive(M, 1200, 'sleep', undefined)).toBe(1200);
    expect(declaredKeepAlive(M, 1200, 'idle', undefined)).toBe(300);
    expect(declaredKeepAlive(M, 1177, 'sleep', undefined)).toBe(1177);
    expect(declaredKeepAlive(M, 60, 'idle', undefined)).toBe(60);
    expect(declaredKeepAlive(cfg({ sleepCheckInSec: 86400 }), 0, 'sleep', undefined)).toBe(MAX_KEEPALIVE_SEC);
    expect(MAX_KEEPALIVE_SEC).toBe(65535);
  });

  it('the learned path cap lowers it (undefined or 0 = none); both caps: the lower wins', () => {
    expect(declaredKeepAlive(M, 0, 'idle', 270)).toBe(270);
    expect(declaredKeepAlive(M, 0, 'sleep', 270)).toBe(270);
    expect(declaredKeepAlive(M, 0, 'idle', 0)).toBe(300);
    expect(declaredKeepAlive(M, 0, 'active', 600)).toBe(300);
    expect(declaredKeepAlive(M, 240, 'idle', 270)).toBe(240);
    expect(declaredKeepAlive(M, 1200, 'sleep', 900)).toBe(900);
  });

  it('never 0 (keep-alive never disabled), whole seconds, the longer of active and idle', () => {
    expect(declaredKeepAlive(cfg({ activeKeepAliveSec: 0, idleKeepAliveSec: 0 }), 0, 'idle', undefined)).toBe(1);
    expect(declaredKeepAlive(cfg({ idleKeepAliveSec: 299.7 }), 0, 'idle', undefined)).toBe(299);
    expect(declaredKeepAlive(cfg({ activeKeepAliveSec: 600 }), 0, 'active', undefined)).toBe(600);
    expect(declaredKeepAlive(M, 0, 'idle', 0.5)).toBe(1);
  });
});

describe('grantedKeepAlive: v5 Server Keep Alive replaces the declared value [MQTT-3.2.2-21]', () => {
  it('uses the server value when present, else the declared one', () => {
    expect(grantedKeepAlive(300, undefined)).toBe(300);
    expect(grantedKeepAlive(300, 120)).toBe(120);
    expect(grantedKeepAlive(300, 1200)).toBe(1200);
    expect(grantedKeepAlive(300, 0)).toBe(0);
  });
});

describe('pingIntervalSec = min(mode interval, granted, path cap)', () => {
  it('the mode interval while the granted value is longer', () => {
    expect(pingIntervalSec(M, 'active', 300, undefined)).toBe(60);
    expect(pingIntervalSec(M, 'idle', 300, undefined)).toBe(300);
    expect(pingIntervalSec(M, 'sleep', 1800, undefined)).toBe(1800);
    expect(pingIntervalSec(M, 'idle', 1200, undefined)).toBe(300);
  });

  it('a shorter grant (v5 Server Keep Alive, AWS 1200, Azure 1177) wins', () => {
    expect(pingIntervalSec(M, 'idle', grantedKeepAlive(300, 120), undefined)).toBe(120);
    expect(pingIntervalSec(M, 'active', grantedKeepAlive(300, 30), undefined)).toBe(30);
    expect(pingIntervalSec(M, 'sleep', declaredKeepAlive(M, 1200, 'sleep', undefined), undefined)).toBe(1200);
    expect(pingIntervalSec(M, 'sleep', declaredKeepAlive(M, 1177, 'sleep', undefined), undefined)).toBe(1177);
  });

  it('the path cap wins when shorter; granted 0 (disabled by the server) does not limit', () => {
    expect(pingIntervalSec(M, 'idle', 300, 270)).toBe(270);
    expect(pingIntervalSec(M, 'active', 300, 270)).toBe(60);
    expect(pingIntervalSec(M, 'sleep', 1200, 270)).toBe(270);
    expect(pingIntervalSec(M, 'idle', 0, undefined)).toBe(300);
    expect(pingIntervalSec(M, 'idle', 0, 200)).toBe(200);
  });

  it('at least 1 s, whole seconds', () => {
    expect(pingIntervalSec(cfg({ activeKeepAliveSec: 0 }), 'active', 300, undefined)).toBe(1);
    expect(pingIntervalSec(cfg({ activeKeepAliveSec: 59.9 }), 'active', 300, undefined)).toBe(59);
  });

  it('property: never above the mode interval, the grant (if > 0) or the cap (if > 0); never below 1', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<'active' | 'idle' | 'sleep'>('active', 'idle', 'sleep'),
        fc.integer({ min: 0, max: 65535 }),
        fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined }),
        (mode, granted, cap) => {
          const v = pingIntervalSec(M, mode, granted, cap);
          const modeSec = mode === 'active' ? 60 : mode === 'idle' ? 300 : 1800;
          expect(v).toBeGreaterThanOrEqual(1);
          expect(v).toBeLessThanOrEqual(modeSec);
          if (granted > 0) expect(v).toBeLessThanOrEqual(granted);
          if (cap !== undefined && cap > 0) expect(v).toBeLessThanOrEqual(Math.max(1, cap));
          // and it is one of them (the minimum), never something in between
          const cands = [modeSec, granted > 0 ? granted : Infinity, cap !== undefined && cap > 0 ? cap : Infinity];
          expect(v).toBe(Math.max(1, Math.min(...cands)));
        },
      ),
    );
  });
});

describe('firstPingDelayMs: phase jitter after a connect', () => {
  it('interval * (1 - 0.2 r): r = 0 -> the full interval, r -> 1 -> 80 %', () => {
    expect(firstPingDelayMs(60, 0)).toBe(60000);
    expect(firstPingDelayMs(60, 0.9999999)).toBe(48000);
    expect(firstPingDelayMs(60, 0.5)).toBe(54000);
    expect(firstPingDelayMs(300, 0.25)).toBe(285000);
  });

  it('custom spread, clamped to [0, 1]; r clamped to [0, 1]', () => {
    expect(firstPingDelayMs(60, 1, 0.5)).toBe(30000);
    expect(firstPingDelayMs(60, 0.5, 0)).toBe(60000);
    expect(firstPingDelayMs(60, 0.5, 2)).toBe(30000);
    expect(firstPingDelayMs(60, 0.5, -1)).toBe(60000);
    expect(firstPingDelayMs(60, -3)).toBe(60000);
    expect(firstPingDelayMs(60, 5)).toBe(48000);
    expect(firstPingDelayMs(60, NaN)).toBe(60000);
  });

  it('property: within [interval * (1 - spread), interval], never later than the interval', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (sec, r, spread) => {
          const d = firstPingDelayMs(sec, r, spread);
          expect(d).toBeLessThanOrEqual(sec * 1000);
          expect(d).toBeGreaterThanOrEqual(Math.floor(sec * 1000 * (1 - spread)));
        },
      ),
    );
  });

  it('a fleet that reconnected together pings spread over the window, not in lockstep', () => {
    const at = new Set<number>();
    for (let k = 0; k < 100; k++) at.add(firstPingDelayMs(60, k / 100));
    expect(at.size).toBe(100);
    expect(Math.min(...at)).toBe(48120);
    expect(Math.max(...at)).toBe(60000);
  });
});

describe('nextPingAt: TX idle OR RX idle', () => {
  it('the older of the last send and the last receive sets the deadline', () => {
    expect(nextPingAt(1000, 5000, 60000)).toBe(61000); // inbound traffic does not hide an idle TX
    expect(nextPingAt(5000, 1000, 60000)).toBe(61000); // our retransmits do not hide a silent broker
    expect(nextPingAt(3000, 3000, 60000)).toBe(63000);
  });
});

describe('probeDue: an overdue QoS >= 1 ack probes the link early', () => {
  it('oldest unacked send + ackProbeMs; none without unacked, with a ping outstanding, or ackProbeMs 0', () => {
    expect(probeDue(1000, 5000, false)).toBe(6000);
    expect(probeDue(undefined, 5000, false)).toBeUndefined();
    expect(probeDue(1000, 5000, true)).toBeUndefined();
    expect(probeDue(1000, 0, false)).toBeUndefined();
  });

  it('after an answered probe, the next one is ackProbeMs after that ping (lastPingMs)', () => {
    expect(probeDue(1000, 5000, false, 6000)).toBe(11000);
    expect(probeDue(1000, 5000, false, 500)).toBe(6000);
  });
});

describe('pathIdleSec: since the last packet in either direction', () => {
  it('whole seconds, never negative', () => {
    expect(pathIdleSec(100000, 10000, 40000)).toBe(60);
    expect(pathIdleSec(100999, 40000, 10000)).toBe(60);
    expect(pathIdleSec(1000, 5000, 0)).toBe(0);
  });
});

describe('keepAliveStep: ping, watchdog and probe in one rule', () => {
  function state(over?: Partial<KeepAliveState>): KeepAliveState {
    return Object.assign(
      {
        lastTxMs: 0,
        lastRxMs: 0,
        intervalMs: 60000,
        pingSentMs: -1,
        pingTimeoutMs: 10000,
        lastPingMs: -1,
        oldestUnackedSentMs: undefined,
        ackProbeMs: 5000,
      },
      over ?? {},
    );
  }

  it('ping at the interval; watchdog pingTimeoutMs after the PINGREQ; dead at exactly that time', () => {
    const s = state();
    expect(keepAliveStep(59999, s)).toEqual({ action: 'wait', atMs: 60000 });
    expect(keepAliveStep(60000, s)).toEqual({ action: 'ping', atMs: 60000 });
    s.pingSentMs = s.lastPingMs = s.lastTxMs = 60000;
    expect(keepAliveStep(60000, s)).toEqual({ action: 'wait', atMs: 70000 });
    expect(keepAliveStep(69999, s)).toEqual({ action: 'wait', atMs: 70000 });
    expect(keepAliveStep(70000, s)).toEqual({ action: 'dead', atMs: 70000 });
  });

  it('any packet answers: after it the next ping is one interval after the older of TX and RX', () => {
    const s = state({ pingSentMs: 60000, lastPingMs: 60000, lastTxMs: 60000 });
    // PINGRESP (or any packet) at 60050: the client clears pingSentMs and records RX
    s.pingSentMs = -1;
    s.lastRxMs = 60050;
    expect(keepAliveStep(60050, s)).toEqual({ action: 'wait', atMs: 120000 });
  });

  it('inbound QoS 0 traffic every second does not stop the ping (TX idle)', () => {
    const s = state();
    for (let t = 1000; t < 60000; t += 1000) {
      s.lastRxMs = t;
      expect(keepAliveStep(t, s).action).toBe('wait');
    }
    expect(keepAliveStep(60000, s)).toEqual({ action: 'ping', atMs: 60000 });
  });

  it('our own retransmits do not stop the ping (RX idle)', () => {
    const s = state({ lastTxMs: 55000 });
    expect(keepAliveStep(60000, s)).toEqual({ action: 'ping', atMs: 60000 });
  });

  it('an overdue ack probes early, once per ackProbeMs while it stays overdue', () => {
    const s = state({ lastTxMs: 10000, lastRxMs: 9000, oldestUnackedSentMs: 10000 });
    expect(keepAliveStep(14999, s)).toEqual({ action: 'wait', atMs: 15000 });
    expect(keepAliveStep(15000, s)).toEqual({ action: 'ping', atMs: 15000 });
    s.pingSentMs = s.lastPingMs = s.lastTxMs = 15000;
    expect(keepAliveStep(15000, s)).toEqual({ action: 'wait', atMs: 25000 });
    s.pingSentMs = -1;
    s.lastRxMs = 15020; // PINGRESP: link alive, the ack is just slow
    expect(keepAliveStep(15020, s)).toEqual({ action: 'wait', atMs: 20000 });
    // no probes: only the regular ping
    expect(keepAliveStep(15020, Object.assign({}, s, { ackProbeMs: 0 }))).toEqual({ action: 'wait', atMs: 75000 });
  });

  it('interval 0 (keep-alive off) and nothing unacked: nothing scheduled', () => {
    expect(keepAliveStep(1e9, state({ intervalMs: 0 }))).toEqual({ action: 'wait', atMs: undefined });
    expect(keepAliveStep(6000, state({ intervalMs: 0, oldestUnackedSentMs: 1000 }))).toEqual({ action: 'ping', atMs: 6000 });
  });

  it('a dead link is found within interval + pingTimeout of the last exchange (virtual-time loop)', () => {
    // broker answers pings until 200 s, then the link is half-open
    const s = state();
    let t = 0;
    let deadAt = -1;
    for (let guard = 0; guard < 100 && deadAt < 0; guard++) {
      const step = keepAliveStep(t, s);
      if (step.action === 'dead') deadAt = t;
      else if (step.action === 'ping') {
        s.pingSentMs = s.lastPingMs = s.lastTxMs = t;
        if (t < 200000) {
          s.pingSentMs = -1;
          s.lastRxMs = t + 40;
        }
      } else t = step.atMs as number;
    }
    // pings at 60, 120, 180 s (timed from our PINGREQ, the older of TX and RX), answered 40 ms later;
    // the one at 240 s is not: dead at 250 s, 70 s after the last answer
    expect(deadAt).toBe(250000);
  });
});
