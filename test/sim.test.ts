// The day simulator (tools/sim): the real client + device on the mock HAL for 24 virtual hours against
// the fixed 60 s keep-alive baseline, the delivery check (and that it can fail), the report format,
// the SVG series, the profile validation, the detection-latency table, and the command line.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSim } from '../tools/sim/run';
import type { SimResult } from '../tools/sim/run';
import { loadBoard, loadProfile } from '../tools/sim/load';
import { expand, parseProfile } from '../tools/sim/profile';
import { runDetection } from '../tools/sim/detection';
import { topicMatches } from '../firmware/client/topic';
import type { Board } from '../firmware/config/index';

const ROOT = path.resolve(__dirname, '..');

function board(file = 'board.json'): Board {
  const b = loadBoard(path.join(ROOT, file), file);
  if (b.error !== undefined) throw new Error(b.error);
  return b.value;
}

function dayRun(): SimResult {
  const b = board();
  const p = loadProfile(path.join(ROOT, 'profiles/day.json'), 'profiles/day.json', b);
  if (p.error !== undefined) throw new Error(p.error);
  return runSim({ hours: 24, board: b, boardName: 'board.json', profile: p.value, profileName: 'profiles/day.json', svg: true });
}

describe('sim: 24 h of the default profile', () => {
  const r = dayRun();

  it('delivers every application message, command and check-in on both sides', () => {
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    for (const side of [r.wren, r.baseline]) {
      expect(side.app.sent).toBeGreaterThan(0);
      expect(side.app.delivered).toBe(side.app.sent);
      expect(side.commands.sent).toBeGreaterThan(0);
      expect(side.commands.delivered).toBe(side.commands.sent);
    }
    expect(r.wren.checkIns.count).toBeGreaterThan(20);
    expect(r.wren.checkIns.delivered).toBe(r.wren.checkIns.count);
  });

  it('wren deep-sleeps and reboots on timer wakes; the baseline holds one connection', () => {
    expect(r.wren.wakes.timer).toBeGreaterThan(20);
    expect(r.wren.account.deepSleepMs).toBeGreaterThan(20 * 3600000);
    expect(r.wren.account.connects).toBeGreaterThan(r.wren.wakes.timer);
    expect(r.baseline.account.connects).toBe(1);
    expect(r.baseline.account.deepSleepMs).toBe(0);
  });

  it('sends fewer PINGREQs and uses at least 10x less charge than the fixed 60 s baseline', () => {
    expect(r.wren.account.pingreqs).toBeLessThan(r.baseline.account.pingreqs);
    // Always connected and pinging every 60 s for a day: about 1440 pings (publishes stand in for some).
    expect(r.baseline.account.pingreqs).toBeGreaterThan(1400);
    expect(r.baseline.account.pingreqs).toBeLessThanOrEqual(1440);
    expect(r.ratio).toBeCloseTo(r.baseline.account.chargeMah / r.wren.account.chargeMah, 9);
    expect(r.ratio).toBeGreaterThanOrEqual(10);
  });

  it('charges by the documented model: deep sleep + awake + radio-on', () => {
    const m = board().power;
    for (const side of [r.wren, r.baseline]) {
      const a = side.account;
      expect(a.awakeMs + a.deepSleepMs).toBe(24 * 3600000);
      expect(a.radioOnMs).toBe(a.connects * m.reconnectMs + a.exchanges * m.exchangeMs);
      const mah = (a.deepSleepMs * m.deepSleepUa / 1000 + a.awakeMs * m.idleConnectedMa + a.radioOnMs * m.radioActiveMa) / 3600000;
      expect(a.chargeMah).toBeCloseTo(mah, 9);
      expect(side.series[side.series.length - 1]).toBeCloseTo(a.chargeMah, 9);
      expect(a.airBytes).toBeGreaterThan(a.mqttBytes + a.packets * 80);
    }
  });

  it('prints the table with the ratio as its last line', () => {
    const last = r.lines[r.lines.length - 1];
    expect(last).toMatch(/^charge vs fixed-60s baseline: \d+\.\dx less$/);
    expect(last).toBe('charge vs fixed-60s baseline: ' + r.ratio.toFixed(1) + 'x less');
    const text = r.lines.join('\n');
    for (const row of ['PINGREQs sent', 'reconnects', 'bytes on the air', 'radio-on seconds', 'charge (mAh)', 'app messages delivered', 'check-ins delivered']) expect(text).toContain(row);
    const pingRow = r.lines.find((l) => l.startsWith('PINGREQs sent')) as string;
    expect(pingRow.split(/\s+/).slice(-2)).toEqual([String(r.wren.account.pingreqs), String(r.baseline.account.pingreqs)]);
  });

  it('draws every series in the SVG', () => {
    const svg = r.svg as string;
    expect(svg.startsWith('<svg')).toBe(true);
    const group = (id: string) => {
      const m = new RegExp('<g id="' + id + '">([\\s\\S]*?)</g>').exec(svg);
      expect(m, id).not.toBeNull();
      return (m as RegExpExecArray)[1];
    };
    const modes = group('mode-wren');
    for (const state of ['active', 'idle, connected', 'awake to check in', 'deep sleep']) expect(modes).toContain('<title>' + state);
    expect(group('mode-baseline')).toContain('idle, connected');
    const ticks = (id: string) => (group(id).match(/v16/g) || []).length;
    expect(ticks('pings-wren')).toBe(r.wren.account.pingreqs);
    expect(ticks('pings-baseline')).toBe(r.baseline.account.pingreqs);
    expect((group('connections-wren').match(/<title>check-in /g) || []).length).toBeGreaterThan(20);
    expect((group('connections-baseline').match(/<path/g) || []).length).toBe(1);
    expect((group('publishes-wren').match(/<circle/g) || []).length).toBe(r.wren.app.sent);
    expect((group('publishes-baseline').match(/<circle/g) || []).length).toBe(r.baseline.app.sent);
    expect((group('commands-wren').match(/<path/g) || []).length).toBe(r.wren.commands.sent);
    for (const id of ['charge-wren', 'charge-baseline']) {
      const pts = /<polyline points="([^"]+)"/.exec(group(id)) as RegExpExecArray;
      expect(pts[1].split(' ').length).toBe(r.seriesTimes.length);
    }
  });
});

describe('sim: the delivery check can fail', () => {
  it('reports messages the device could not queue (a one-message queue, a burst held across a sleep)', () => {
    const b = board();
    b.queue = { maxMessages: 1, maxBytes: 16384, overflow: 'reject' };
    const p = parseProfile({ events: [{ at: '03:00', type: 'publish', count: 20, overMin: 10 }] }, b.device, ['wren/desk-1/cmd'], topicMatches);
    const r = runSim({ hours: 6, board: b, boardName: 'test', profile: p.profile!, profileName: 'test', svg: false });
    expect(r.ok).toBe(false);
    expect(r.wren.app.delivered).toBeLessThan(20);
    expect(r.baseline.app.delivered).toBe(20);
    expect(r.problems.join('\n')).toMatch(/^wren application messages: \d+ of 20 not delivered/);
    expect(r.lines[r.lines.length - 1]).toMatch(/^charge vs fixed-60s baseline: \d+\.\dx less$/);
  });
});

describe('sim: profiles', () => {
  const subs = ['wren/desk-1/cmd'];
  it('names every bad field', () => {
    const r = parseProfile(
      { events: [{ at: '25:00', type: 'publish' }, { at: '07:00', type: 'command', topic: 'other/x' }, { at: '07:00', type: 'nap', count: 0, colour: 1 }] },
      'desk-1',
      subs,
      topicMatches,
    );
    expect(r.profile).toBeUndefined();
    expect(r.errors).toEqual([
      'events[0].at: must be "HH:MM" or "HH:MM:SS" (00:00..23:59:59), got "25:00"',
      'events[1].topic: "other/x" matches none of the board\'s subscriptions (wren/desk-1/cmd): the device would never get it',
      'events[2].colour: unknown key (allowed: at, type, count, overMin, qos, bytes, topic, wake)',
      'events[2].type: must be "publish" or "command", got "nap"',
      'events[2].count: must be a whole number 1..100000, got 0',
    ]);
  });

  it('spreads a burst over its minutes and repeats the day', () => {
    const r = parseProfile({ events: [{ at: '23:00', type: 'publish', count: 4, overMin: 120 }] }, 'desk-1', subs, topicMatches);
    const msgs = expand(r.profile!, 48 * 3600000);
    expect(msgs.map((m) => m.atMs / 60000)).toEqual([1380, 1410, 1440, 1470, 2820, 2850]);
    expect(msgs.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(msgs[0].topic).toBe('wren/desk-1/data');
  });
});

describe('sim: detection latency of a black-holed link', () => {
  it('is within the bound in every mode, exactly the bound in the worst case', () => {
    const d = runDetection(board(), 1, 4);
    expect(d.ok).toBe(true);
    const row = (kind: string, traffic: boolean) => d.rows.find((r) => r.kind === kind && r.traffic === traffic)!;
    expect(row('active', false).worstMs).toBe(70000);
    expect(row('idle', false).worstMs).toBe(310000);
    expect(row('fixed-60s', false).worstMs).toBe(70000);
    for (const k of ['active', 'idle', 'fixed-60s']) {
      expect(row(k, true).worstMs).toBe(15000);
      expect(row(k, true).meanMs!).toBeLessThanOrEqual(15000);
      expect(row(k, false).meanMs!).toBeLessThanOrEqual(row(k, false).boundMs);
    }
    expect(row('sleep', false).note).toMatch(/no held connection/);
    expect(d.lines[d.lines.length - 1]).toBe('every detection within its bound');
  });
});

describe('sim: command line', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'tools/sim.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });

  it('--help exits 0; a bad option or value exits 2 with one line on stderr; a missing file exits 1', () => {
    const h = run('--help');
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('usage: npm run sim');
    const bad = run('--hourz', '3');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^sim: .*--help/);
    const zero = run('--hours', '0');
    expect(zero.status).toBe(2);
    expect(zero.stderr).toMatch(/^sim: --hours must be/);
    const missing = run('--board', 'no-such-board.json');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^sim: cannot read the board file no-such-board.json .*--board\n$/);
  });

  it('runs a short day and ends with the ratio line', () => {
    const r = run('--hours', '2');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^charge vs fixed-60s baseline: \d+\.\dx less$/);
  });
});
