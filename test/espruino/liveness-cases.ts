// A deterministic run through every liveness module (firmware/liveness), one output line per step.
// test/liveness-espruino.test.ts runs it on Node and, bundled with liveness-driver.ts, on the Espruino
// interpreter, and requires the same lines from both. Random values are fixed (no Math.random), so
// the lines are exact.

import { Backoff, BrokerRotation } from '../../firmware/liveness/backoff';
import { PowerModes, modeDefaults } from '../../firmware/liveness/modes';
import {
  declaredKeepAlive,
  firstPingDelayMs,
  grantedKeepAlive,
  keepAliveStep,
  nextPingAt,
  pathIdleSec,
  pingIntervalSec,
  probeDue,
} from '../../firmware/liveness/keepalive';
import { PathLimits, pathLimitDefaults } from '../../firmware/liveness/pathlimit';

const RS = [0, 0.999999, 0.5, 0.25, 0.75, 0.123456, 0.987654, 0.1, 0.9, 1, -1, 0.3333333];

export function runLivenessCases(out: (line: string) => void): void {
  const cfg = { baseMs: 1000, capMs: 300000, factor: 2, stableAfterMs: 60000 };

  // Backoff: growth, cap, capped delays, stable reset, persistence.
  const b = new Backoff(cfg);
  const ds: number[] = [];
  for (let i = 0; i < 12; i++) ds.push(b.next(RS[i % RS.length]));
  out('backoff ' + JSON.stringify(ds) + ' attempt=' + b.attempt + ' ceil=' + b.ceilingMs());
  out('capped ' + b.nextCapped(0) + ' ' + b.nextCapped(0.999999) + ' ' + b.nextCapped(0.5));
  b.up(1000);
  out('down-unstable ' + b.down(60999) + ' attempt=' + b.attempt);
  b.up(100000);
  out('down-stable ' + b.down(160000) + ' attempt=' + b.attempt);
  b.next(0.5);
  b.next(0.5);
  const b2 = new Backoff(cfg);
  b2.restore(JSON.parse(JSON.stringify(b)));
  out('restore ' + JSON.stringify(b2) + ' ' + b2.next(0.999999));

  // BrokerRotation over 3 brokers, time advancing by the returned delay.
  const rot = new BrokerRotation(3, cfg);
  let t = 0;
  const seq: string[] = [];
  for (let i = 0; i < 15; i++) {
    const c = rot.failed(t, 0.999999, false);
    seq.push(c.broker + ':' + c.delayMs);
    t += c.delayMs;
  }
  out('rotation ' + seq.join(','));
  rot.up(t);
  rot.down(t + 60000);
  const st = rot.failed(t + 60000, 0.5, false);
  out('stay ' + st.broker + ':' + st.delayMs + ' ' + JSON.stringify(rot));
  const rot2 = new BrokerRotation(3, cfg);
  rot2.restore(JSON.parse(JSON.stringify(rot)));
  out('rot-restore ' + JSON.stringify(rot2) + ' ' + JSON.stringify(rot2.failed(0, 0, true)));

  // PowerModes: exact transition times, battery lock, persistence.
  const mc = modeDefaults();
  mc.lowBatteryMv = 3300;
  const m = new PowerModes(mc, 1000);
  const ev: string[] = [];
  const note = function (x: { from: string; to: string; reason: string; atMs: number } | undefined): void {
    ev.push(x === undefined ? '-' : x.from + '>' + x.to + '@' + x.atMs + ':' + x.reason);
  };
  note(m.tick(120999));
  note(m.tick(121000));
  ev.push('dl=' + m.nextDeadline());
  note(m.to('active', 'inbound', 200000));
  note(m.tick(2000000));
  note(m.to('active', 'wake', 2000001));
  note(m.battery(3299, 2000002));
  note(m.to('active', 'publish', 2000003));
  note(m.battery(3350, 2000004));
  note(m.battery(3400, 2000005));
  note(m.to('active', 'publish', 2000006));
  note(m.to('sleep', 'app-request', 2000007));
  note(m.to('sleep', 'app-request', 2000008));
  out('modes ' + ev.join(' '));
  const m2 = new PowerModes(mc, 5000, JSON.parse(JSON.stringify({ mode: 'idle', low: false })));
  out('modes-restore ' + m2.mode + ' ' + m2.nextDeadline() + ' ' + JSON.stringify(m));

  // Keep-alive: clamps, jitter, deadlines.
  const k: Array<number | string | undefined> = [];
  k.push(declaredKeepAlive(mc, 0, 'active', undefined));
  k.push(declaredKeepAlive(mc, 1200, 'sleep', undefined));
  k.push(declaredKeepAlive(mc, 1177, 'sleep', undefined));
  k.push(declaredKeepAlive(mc, 0, 'idle', 270));
  k.push(grantedKeepAlive(300, 120));
  k.push(pingIntervalSec(mc, 'active', 300, undefined));
  k.push(pingIntervalSec(mc, 'idle', grantedKeepAlive(300, 120), undefined));
  k.push(pingIntervalSec(mc, 'sleep', 1200, 270));
  for (let i = 0; i < RS.length; i++) k.push(firstPingDelayMs(60, RS[i]));
  k.push(firstPingDelayMs(300, 0.5, 0.5));
  k.push(nextPingAt(1000, 5000, 60000));
  k.push(probeDue(1000, 5000, false));
  k.push(probeDue(1000, 5000, false, 4000));
  k.push(probeDue(1000, 5000, true));
  k.push(pathIdleSec(100000, 10000, 40000));
  const s = {
    lastTxMs: 0, lastRxMs: 0, intervalMs: 60000, pingSentMs: -1, pingTimeoutMs: 10000,
    lastPingMs: -1, oldestUnackedSentMs: undefined as number | undefined, ackProbeMs: 5000,
  };
  const a1 = keepAliveStep(59999, s);
  const a2 = keepAliveStep(60000, s);
  s.pingSentMs = 60000;
  s.lastPingMs = 60000;
  s.lastTxMs = 60000;
  const a3 = keepAliveStep(69999, s);
  const a4 = keepAliveStep(70000, s);
  k.push(a1.action + a1.atMs, a2.action + a2.atMs, a3.action + a3.atMs, a4.action + a4.atMs);
  out('keepalive ' + JSON.stringify(k));

  // PathLimits: learn, probe daily, clear, persistence.
  const p = new PathLimits(pathLimitDefaults());
  const caps: Array<number | string | undefined> = [];
  p.survived('mcc262-01', 60, 0);
  p.died('mcc262-01', 300, 1000);
  caps.push(p.capFor('mcc262-01', 1500));
  p.died('mcc262-01', 305, 2000);
  caps.push(p.capFor('mcc262-01', 3000));
  caps.push(p.capFor('mcc262-01', 2000 + 86400000 - 1));
  caps.push(p.capFor('mcc262-01', 2000 + 86400000));
  p.died('mcc262-01', 300, 86500000);
  caps.push(p.capFor('mcc262-01', 86500001));
  caps.push(p.capFor('mcc262-01', 86500000 + 86400000));
  p.survived('mcc262-01', 300, 172950000);
  caps.push(p.capFor('mcc262-01', 172950001));
  p.survived('home-wifi', 60, 0);
  p.died('home-wifi', 200, 10);
  p.died('home-wifi', 190, 20);
  caps.push(p.capFor('home-wifi', 30));
  const json = JSON.stringify(p.recs);
  const p2 = new PathLimits(pathLimitDefaults(), json);
  caps.push(p2.capFor('home-wifi', 40));
  caps.push(JSON.stringify(p2.recs) === json ? 'same' : 'differs');
  caps.push(JSON.stringify(new PathLimits(pathLimitDefaults(), 'not json').recs));
  out('pathlimit ' + JSON.stringify(caps) + ' ' + json);
}
