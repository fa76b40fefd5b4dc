// firmware/liveness/pathlimit.ts: the learned NAT idle limit per network: learn, cap, daily probe,
// clear, bounded persistence (virtual time).

import { describe, expect, it } from 'vitest';
import { PathLimits, pathLimitDefaults } from '../firmware/liveness/pathlimit';
import type { PathLimitConfig } from '../firmware/liveness/pathlimit';

const DAY = 86400000;
function limits(over?: Partial<PathLimitConfig>, saved?: string): PathLimits {
  return new PathLimits(Object.assign(pathLimitDefaults(), over ?? {}), saved);
}

describe('PathLimits defaults', () => {
  it('are the documented ones', () => {
    expect(pathLimitDefaults()).toEqual({ marginSec: 30, minSec: 30, probeEveryMs: DAY, deathsToLearn: 2 });
  });
});

describe('PathLimits learning', () => {
  it('nothing learned: undefined', () => {
    const p = limits();
    expect(p.capFor('lte', 0)).toBeUndefined();
    p.survived('lte', 60, 0);
    expect(p.capFor('lte', 1)).toBeUndefined();
  });

  it('two deaths at about the same idle, with a shorter idle surviving -> cap = shortest dying idle - margin', () => {
    const p = limits();
    p.survived('lte', 60, 0);
    p.died('lte', 300, 1000);
    expect(p.capFor('lte', 1500)).toBeUndefined();
    p.died('lte', 305, 2000);
    expect(p.capFor('lte', 3000)).toBe(270);
    const q = limits();
    q.survived('lte', 60, 0);
    q.died('lte', 305, 0);
    q.died('lte', 300, 0);
    expect(q.capFor('lte', 0)).toBe(270);
  });

  it('deathsToLearn 1 learns from one death; 3 needs three', () => {
    const one = limits({ deathsToLearn: 1 });
    one.survived('n', 60, 0);
    one.died('n', 300, 0);
    expect(one.capFor('n', 0)).toBe(270);
    const three = limits({ deathsToLearn: 3 });
    three.survived('n', 60, 0);
    three.died('n', 300, 0);
    three.died('n', 300, 0);
    expect(three.capFor('n', 0)).toBeUndefined();
    three.died('n', 300, 0);
    expect(three.capFor('n', 0)).toBe(270);
  });

  it('no shorter survival on this network: deaths teach nothing (a failing network, not an idle limit)', () => {
    const p = limits();
    p.died('bad', 300, 0);
    p.died('bad', 300, 1);
    p.died('bad', 300, 2);
    expect(p.capFor('bad', 3)).toBeUndefined();
    p.survived('bad', 300, 4); // survived at the same idle: still not shorter
    p.died('bad', 300, 5);
    p.died('bad', 300, 6);
    expect(p.capFor('bad', 7)).toBeUndefined();
  });

  it('deaths at an idle no longer than the shortest survival are random losses', () => {
    const p = limits();
    p.survived('lte', 60, 0);
    p.died('lte', 60, 1);
    p.died('lte', 60, 2);
    p.died('lte', 45, 3);
    expect(p.capFor('lte', 4)).toBeUndefined();
  });

  it('a survival at the candidate idle between two deaths resets the count: only consecutive deaths add up', () => {
    const p = limits();
    p.survived('lte', 60, 0);
    p.died('lte', 300, 1);
    p.survived('lte', 300, 2);
    p.died('lte', 300, 3);
    expect(p.capFor('lte', 4)).toBeUndefined();
    p.survived('lte', 290, 5); // shorter than the candidate: consistent with a limit in (290, 300)
    p.died('lte', 300, 6);
    expect(p.capFor('lte', 7)).toBe(270);
  });

  it('"about the same interval" is within marginSec; a shorter death restarts the count, a longer one is not counted', () => {
    const p = limits();
    p.survived('lte', 60, 0);
    p.died('lte', 300, 1);
    p.died('lte', 1800, 2); // longer: consistent, not counted
    expect(p.capFor('lte', 3)).toBeUndefined();
    p.died('lte', 331, 4); // 31 s away: not the same interval
    expect(p.capFor('lte', 5)).toBeUndefined();
    p.died('lte', 330, 6); // 30 s away: the same
    expect(p.capFor('lte', 7)).toBe(270);

    const q = limits();
    q.survived('lte', 60, 0);
    q.died('lte', 1800, 1);
    q.died('lte', 300, 2); // shorter: restarts at 300
    expect(q.capFor('lte', 3)).toBeUndefined();
    q.died('lte', 290, 4);
    expect(q.capFor('lte', 5)).toBe(260); // the shortest dying idle (290) - 30
  });

  it('never below minSec', () => {
    const p = limits();
    p.survived('n', 10, 0);
    p.died('n', 40, 1);
    p.died('n', 45, 2);
    expect(p.capFor('n', 3)).toBe(30);
    const q = limits({ minSec: 100, marginSec: 10 });
    q.survived('n', 60, 0);
    q.died('n', 105, 1);
    q.died('n', 105, 2);
    expect(q.capFor('n', 3)).toBe(100);
  });

  it('the cap only goes down: deaths at the cap lower it, longer deaths do not raise it', () => {
    const p = limits();
    p.survived('lte', 60, 0);
    p.died('lte', 300, 1);
    p.died('lte', 300, 2);
    expect(p.capFor('lte', 3)).toBe(270);
    p.died('lte', 270, 4); // the NAT shrank: deaths at the capped interval
    p.died('lte', 270, 5);
    expect(p.capFor('lte', 6)).toBe(240);
    p.died('lte', 1800, 7);
    p.died('lte', 1800, 8);
    expect(p.capFor('lte', 9)).toBe(240);
  });

  it('networks are independent', () => {
    const p = limits();
    p.survived('a', 60, 0);
    p.survived('b', 60, 0);
    p.died('a', 300, 1);
    p.died('b', 300, 2);
    expect(p.capFor('a', 3)).toBeUndefined();
    p.died('a', 300, 4);
    expect(p.capFor('a', 5)).toBe(270);
    expect(p.capFor('b', 5)).toBeUndefined();
  });
});

describe('PathLimits daily probe and clearing', () => {
  function learned(at: number): PathLimits {
    const p = limits();
    p.survived('lte', 60, 0);
    p.died('lte', 300, at);
    p.died('lte', 300, at);
    return p;
  }

  it('the cap is lifted at most once per probeEveryMs, from when it was learned', () => {
    const p = learned(2000);
    expect(p.capFor('lte', 2000 + DAY - 1)).toBe(270);
    expect(p.capFor('lte', 2000 + DAY)).toBeUndefined(); // probe starts
    expect(p.capFor('lte', 2000 + DAY + 5)).toBeUndefined(); // still probing (until a verdict)
    p.survived('lte', 60, 2000 + DAY + 6); // a short survival is no verdict
    expect(p.capFor('lte', 2000 + DAY + 7)).toBeUndefined();
  });

  it('a death during the probe keeps the cap; the next probe is probeEveryMs after it', () => {
    const p = learned(0);
    expect(p.capFor('lte', DAY)).toBeUndefined();
    p.died('lte', 300, DAY + 100000);
    expect(p.capFor('lte', DAY + 100001)).toBe(270);
    expect(p.capFor('lte', 2 * DAY + 99999)).toBe(270);
    expect(p.capFor('lte', 2 * DAY + 100000)).toBeUndefined();
  });

  it('the death that ends a probe at the long interval confirms the cap and is not new evidence', () => {
    const p = learned(0);
    expect(p.capFor('lte', DAY)).toBeUndefined();
    p.died('lte', 300, DAY + 100000); // confirmation
    p.died('lte', 280, DAY + 200000); // one death at about that idle: not yet two
    expect(p.capFor('lte', DAY + 200001)).toBe(270);
    p.died('lte', 280, DAY + 300000); // the second: learned lower
    expect(p.capFor('lte', DAY + 300001)).toBe(250);
  });

  it('a death during the probe at a much shorter idle ends the probe and counts as evidence', () => {
    const p = learned(0);
    expect(p.capFor('lte', DAY)).toBeUndefined();
    p.died('lte', 200, DAY + 1);
    expect(p.capFor('lte', DAY + 2)).toBe(270);
    p.died('lte', 200, DAY + 3);
    expect(p.capFor('lte', DAY + 4)).toBe(170);
  });

  it('a survival at the cap\'s dying interval clears it, for good', () => {
    const p = learned(0);
    expect(p.capFor('lte', DAY)).toBeUndefined();
    p.survived('lte', 300, DAY + 300000);
    expect(p.capFor('lte', DAY + 300001)).toBeUndefined();
    expect(p.capFor('lte', 10 * DAY)).toBeUndefined();
    expect(JSON.parse(JSON.stringify(p.recs))[0].slice(4, 6)).toEqual([0, 0]);
  });

  it('a survival at the dying interval clears the cap even outside a probe', () => {
    const p = learned(0);
    p.survived('lte', 320, 5);
    expect(p.capFor('lte', 6)).toBeUndefined();
  });

  it('a clock that restarted (nowMs before the stored time) waits at most one more period', () => {
    const p = learned(5 * DAY);
    expect(p.capFor('lte', 1000)).toBe(270);
    expect(p.capFor('lte', 1000 + DAY - 1)).toBe(270);
    expect(p.capFor('lte', 1000 + DAY)).toBeUndefined();
  });
});

describe('PathLimits bounds and persistence', () => {
  it('keeps at most 8 networks, least recently used dropped first', () => {
    const p = limits();
    for (let i = 0; i < 8; i++) {
      p.survived('net' + i, 60, i);
      p.died('net' + i, 300, i);
      p.died('net' + i, 300, i);
    }
    expect(p.capFor('net0', 10)).toBe(270); // touch net0: now most recent
    p.survived('net8', 60, 11); // a 9th network drops the least recently used: net1
    expect(p.recs.length).toBe(8);
    expect(p.capFor('net1', 12)).toBeUndefined();
    expect(p.capFor('net0', 12)).toBe(270);
    expect(p.capFor('net2', 12)).toBe(270);
    const two = limits({ maxNetworks: 2 });
    two.survived('a', 60, 0);
    two.survived('b', 60, 0);
    two.survived('c', 60, 0);
    expect(two.recs.map((r) => r[0])).toEqual(['c', 'b']);
  });

  it('capFor on an unknown network creates nothing', () => {
    const p = limits();
    p.capFor('x', 0);
    expect(JSON.stringify(p.recs)).toBe('[]');
  });

  it('network ids are cut to 32 characters (lookups too)', () => {
    const p = limits();
    const long = 'an-ssid-that-is-much-longer-than-thirty-two-characters';
    p.survived(long, 60, 0);
    p.died(long, 300, 0);
    p.died(long, 300, 0);
    expect(p.recs[0][0]).toBe(long.substring(0, 32));
    expect(p.capFor(long, 1)).toBe(270);
  });

  it('round trip through the JSON text; small', () => {
    const p = limits();
    for (let i = 0; i < 8; i++) {
      p.survived('mcc262-0' + i, 60, 0);
      p.died('mcc262-0' + i, 300, 1700000000000);
      p.died('mcc262-0' + i, 300, 1700000000000);
    }
    p.died('mcc262-00', 120, 1700000000001); // a pending candidate
    p.capFor('mcc262-01', 1700000000000 + DAY); // a running probe
    const text = JSON.stringify(p.recs);
    expect(text.length).toBeLessThan(450);
    const back = limits(undefined, text);
    expect(JSON.stringify(back.recs)).toBe(text);
    expect(back.recs).toEqual(p.recs);
    expect(back.capFor('mcc262-01', 1700000000000 + DAY + 1)).toBeUndefined();
    expect(back.capFor('mcc262-00', 1700000000002)).toBe(270);
    back.died('mcc262-00', 125, 1700000000003);
    expect(back.capFor('mcc262-00', 1700000000004)).toBe(90);
  });

  it('unreadable input leaves nothing learned; bad rows are skipped; too many rows are cut', () => {
    for (const bad of [undefined, '', 'not json', '{}', 'null', '42', '[1,2]', '[[5,1,2]]']) {
      expect(JSON.stringify(limits(undefined, bad).recs)).toBe('[]');
    }
    const p = limits(undefined, '[["a",60,"x",-1,270,300,null,1],["b"]]');
    // rows: [id, s, x, d, c, cx, p, q]
    expect(p.recs).toEqual([
      ['a', 60, 0, 0, 270, 300, 0, 1],
      ['b', 0, 0, 0, 0, 0, 0, 0],
    ]);
    const rows = [];
    for (let i = 0; i < 20; i++) rows.push(['n' + i, 60, 0, 0, 0, 0, 0, 0]);
    expect(limits(undefined, JSON.stringify(rows)).recs.length).toBe(8);
  });
});
