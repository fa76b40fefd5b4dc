import { describe, expect, it } from 'vitest';
import type { TransportError, TransportHandler } from '../hal/types';
import {
  FixedRandom,
  MemoryLog,
  MemoryStorage,
  MockNetwork,
  MockPower,
  PowerLoss,
  ScriptedLink,
  SeededRandom,
  VirtualClock,
} from '../hal/mock/index';
import type { MockPeer, MockTransport } from '../hal/mock/index';

const bytes = (...b: number[]) => new Uint8Array(b);
const text = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
const str = (u: Uint8Array) => String.fromCharCode(...u);

/** A recording TransportHandler: every event with its virtual time. */
function recorder(clock: VirtualClock) {
  const events: string[] = [];
  const data: Uint8Array[] = [];
  const errors: TransportError[] = [];
  let inCall = false;
  const h: TransportHandler = {
    onOpen: () => {
      expect(inCall).toBe(false);
      events.push('open@' + clock.now());
    },
    onData: (b) => {
      expect(inCall).toBe(false);
      data.push(b);
      events.push('data' + b.length + '@' + clock.now());
    },
    onDrain: () => events.push('drain@' + clock.now()),
    onError: (e) => {
      errors.push(e);
      events.push('error:' + e.code + '@' + clock.now());
    },
    onClose: () => events.push('close@' + clock.now()),
  };
  /** Run a transport call and assert no event was delivered synchronously inside it. */
  const call = <T>(f: () => T): T => {
    inCall = true;
    const n = events.length;
    try {
      return f();
    } finally {
      inCall = false;
      expect(events.length).toBe(n);
    }
  };
  return { h, events, data, errors, call, received: () => str(concat(data)) };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function net() {
  const clock = new VirtualClock();
  const network = new MockNetwork(clock);
  const t: MockTransport = network.transport();
  const r = recorder(clock);
  t.setHandler(r.h);
  return { clock, network, t, r };
}

describe('VirtualClock', () => {
  it('fires timers in order at their exact times, ties in set order', () => {
    const c = new VirtualClock({ startMs: 5 });
    const fired: string[] = [];
    c.set(10, () => fired.push('b@' + c.now()));
    c.set(3, () => fired.push('a@' + c.now()));
    c.set(10, () => fired.push('b2@' + c.now()));
    const h = c.set(7, () => fired.push('never'));
    c.clear(h);
    c.clear(h); // idempotent
    c.clear(12345);
    c.set(0, () => {
      fired.push('z@' + c.now());
      c.set(0, () => fired.push('zz@' + c.now()));
    });
    expect(c.advance(9)).toBe(3);
    expect(fired).toEqual(['z@5', 'zz@5', 'a@8']);
    expect(c.now()).toBe(14);
    c.advance(1);
    expect(fired).toEqual(['z@5', 'zz@5', 'a@8', 'b@15', 'b2@15']);
  });

  it('runUntil stops at the moment the predicate holds, or after maxMs', () => {
    const c = new VirtualClock();
    let n = 0;
    const tick = () => {
      n++;
      c.set(100, tick);
    };
    c.set(100, tick);
    expect(c.runUntil(() => n === 5, 10_000)).toBe(true);
    expect(c.now()).toBe(500);
    expect(c.runUntil(() => n === 1000, 1_000)).toBe(false);
    expect(c.now()).toBe(1500);
    expect(n).toBe(15);
  });

  it('wraps now() at 2^32 when asked, with wrap-safe elapsed()', () => {
    const W = 2 ** 32;
    const c = new VirtualClock({ startMs: W - 10, wrapAtMs: W });
    const t0 = c.now();
    c.advance(25);
    expect(c.now()).toBe(15);
    expect(c.time).toBe(W + 15);
    expect(c.elapsed(t0)).toBe(25);
  });

  it('detects a zero-delay livelock instead of hanging', () => {
    const c = new VirtualClock({ maxFiresPerInstant: 1000 });
    const spin = () => c.set(0, spin);
    c.set(0, spin);
    expect(() => c.flush()).toThrow(/zero-delay loop/);
  });
});

describe('MockTransport', () => {
  it('connects, carries data both ways, and closes once; events are never synchronous', () => {
    const { clock, network, t, r } = net();
    const accepted: MockPeer[] = [];
    network.listen('broker', 1883, {}, (p) => {
      accepted.push(p);
      p.onData = (b) => p.send(text('echo:' + str(b)));
    });
    r.call(() => t.open({ host: 'broker', port: 1883 }));
    expect(t.state).toBe('opening');
    clock.flush();
    expect(r.events).toEqual(['open@0']);
    expect(accepted).toHaveLength(1);
    expect(r.call(() => t.write(text('hi')))).toBe(true);
    clock.flush();
    expect(r.received()).toBe('echo:hi');
    expect(str(accepted[0].received)).toBe('hi');
    r.call(() => t.close());
    r.call(() => t.close()); // idempotent
    clock.flush();
    expect(r.events).toEqual(['open@0', 'data7@0', 'close@0']);
    expect(accepted[0].state).toBe('closed');
    expect(accepted[0].closedByClientFlag).toBe(true);
    expect(t.write(text('late'))).toBe(false);
    // reusable after onClose
    r.call(() => t.open({ host: 'broker', port: 1883 }));
    clock.flush();
    expect(r.events[r.events.length - 1]).toBe('open@0');
    expect(network.opens).toHaveLength(2);
  });

  it('open() while an attempt is running is a programmer error', () => {
    const { network, t } = net();
    network.listen('b', 1, {});
    t.open({ host: 'b', port: 1 });
    expect(() => t.open({ host: 'b', port: 1 })).toThrow(/not closed/);
  });

  it('refuse: error event then close, asynchronously', () => {
    const { clock, network, t, r } = net();
    network.listen('broker', 1883, { refuse: true });
    r.call(() => t.open({ host: 'broker', port: 1883 }));
    clock.flush();
    expect(r.events).toEqual(['error:refused@0', 'close@0']);
    // nobody listening on the port at all: also refused
    r.call(() => t.open({ host: 'broker', port: 9999 }));
    clock.flush();
    expect(r.events.slice(2)).toEqual(['error:refused@0', 'close@0']);
    expect(r.errors[1].message).toContain('ECONNREFUSED');
  });

  it('reset from the peer: error then close; no data after', () => {
    const { clock, network, t, r } = net();
    const l = network.listen('broker', 1883, {});
    t.open({ host: 'broker', port: 1883 });
    clock.flush();
    l.last!.send(bytes(1, 2));
    l.last!.reset();
    l.last!.send(bytes(3)); // ignored: the peer is gone
    clock.flush();
    expect(r.events).toEqual(['open@0', 'data2@0', 'error:reset@0', 'close@0']);
    expect(t.state).toBe('idle');
  });

  it('graceful end from the peer: pending data, then close without error', () => {
    const { clock, network, t, r } = net();
    const l = network.listen('broker', 1883, { delayMs: 20 });
    t.open({ host: 'broker', port: 1883 });
    clock.advance(20);
    l.last!.send(text('bye'));
    l.last!.end();
    clock.advance(20);
    expect(r.events).toEqual(['open@20', 'data3@40', 'close@40']);
  });

  it('blackhole: writes are swallowed, nothing comes back, the connection stays open', () => {
    const { clock, network, t, r } = net();
    const l = network.listen('broker', 1883, { highWaterMark: 10 });
    t.open({ host: 'broker', port: 1883 });
    clock.flush();
    const peer = l.last!;
    peer.blackhole();
    expect(t.write(text('ping'))).toBe(true);
    peer.send(text('pong'));
    clock.advance(60 * 60 * 1000);
    expect(peer.received.length).toBe(0);
    expect(r.events).toEqual(['open@0']); // no data, no error, no close for an hour
    expect(t.state).toBe('open');
    // the unacknowledged bytes pile up like a full send buffer
    expect(t.write(text('1234567'))).toBe(false);
    clock.advance(1000);
    expect(r.events).toEqual(['open@0']); // no drain either
    // only the client's own close ends it
    t.close();
    clock.flush();
    expect(r.events).toEqual(['open@0', 'close@3601000']);
  });

  it('blackholeConnect: open never completes until close()', () => {
    const { clock, network, t, r } = net();
    network.listen('broker', 1883, { blackholeConnect: true });
    t.open({ host: 'broker', port: 1883 });
    clock.advance(120_000);
    expect(r.events).toEqual([]);
    expect(t.state).toBe('opening');
    t.close();
    clock.flush();
    expect(r.events).toEqual(['close@120000']);
  });

  it('delay: connect and each direction take delayMs of virtual time, in order', () => {
    const { clock, network, t, r } = net();
    let peerGotAt = -1;
    network.listen('broker', 1883, { delayMs: 150 }, (p) => {
      p.onData = (b) => {
        peerGotAt = clock.now();
        p.send(b);
      };
    });
    t.open({ host: 'broker', port: 1883 });
    clock.advance(149);
    expect(r.events).toEqual([]);
    clock.advance(1);
    expect(r.events).toEqual(['open@150']);
    t.write(bytes(1, 2, 3));
    t.write(bytes(4));
    clock.advance(300);
    expect(peerGotAt).toBe(300);
    expect(r.events).toEqual(['open@150', 'data3@450', 'data1@450']);
    expect([...concat(r.data)]).toEqual([1, 2, 3, 4]);
  });

  it('partial writes: the peer receives each write split into chunks', () => {
    const { clock, network, t } = net();
    const l = network.listen('broker', 1883, { peerChunk: 3 });
    t.open({ host: 'broker', port: 1883 });
    clock.flush();
    t.write(bytes(1, 2, 3, 4, 5, 6, 7, 8));
    clock.flush();
    expect(l.last!.chunks.map((c) => [...c])).toEqual([[1, 2, 3], [4, 5, 6], [7, 8]]);
    expect([...l.last!.take()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(l.last!.take().length).toBe(0);
  });

  it('byte-at-a-time delivery to the client', () => {
    const { clock, network, t, r } = net();
    const l = network.listen('broker', 1883, { clientChunk: 1 });
    t.open({ host: 'broker', port: 1883 });
    clock.flush();
    l.last!.send(bytes(0x20, 0x02, 0x00, 0x00));
    clock.flush();
    expect(r.data.map((d) => d.length)).toEqual([1, 1, 1, 1]);
    expect([...concat(r.data)]).toEqual([0x20, 0x02, 0x00, 0x00]);
  });

  it('backpressure: write returns false above the high-water mark, then drain', () => {
    const { clock, network, t, r } = net();
    network.listen('broker', 1883, { highWaterMark: 4, delayMs: 10 });
    t.open({ host: 'broker', port: 1883 });
    clock.advance(10);
    expect(t.write(bytes(1, 2, 3))).toBe(true);
    expect(t.write(bytes(4, 5))).toBe(false);
    clock.advance(10);
    expect(r.events).toEqual(['open@10', 'drain@20']);
  });

  it('tlsError fails a TLS open with a tls error; plain TCP is unaffected', () => {
    const { clock, network, t, r } = net();
    network.listen('broker', 8883, { tlsError: 'TLS certificate verification failed: SELF_SIGNED_CERT_IN_CHAIN' });
    t.open({ host: 'broker', port: 8883, tls: { ca: 'x' } });
    clock.flush();
    expect(r.events).toEqual(['error:tls@0', 'close@0']);
    expect(r.errors[0].message).toMatch(/certificate verification/);
    t.open({ host: 'broker', port: 8883 });
    clock.flush();
    expect(r.events[2]).toBe('open@0');
  });

  it('after close() no data or error is delivered, and exactly one close', () => {
    const { clock, network, t, r } = net();
    const l = network.listen('broker', 1883, { delayMs: 5 });
    t.open({ host: 'broker', port: 1883 });
    clock.advance(5);
    l.last!.send(text('in flight'));
    l.last!.reset();
    t.close();
    clock.advance(100);
    expect(r.events).toEqual(['open@5', 'close@10']);
  });

  it('close() while connecting ends the attempt with one close', () => {
    const { clock, network, t, r } = net();
    const l = network.listen('broker', 1883, { delayMs: 50 });
    t.open({ host: 'broker', port: 1883 });
    clock.advance(10);
    t.close();
    clock.advance(100);
    expect(r.events).toEqual(['close@10']);
    expect(l.peers).toHaveLength(0);
  });
});

describe('MemoryStorage', () => {
  it('read, append, replace, erase, list, size', () => {
    const s = new MemoryStorage({ capacity: 100 });
    expect(s.read('log')).toBeUndefined();
    expect(s.append('log', bytes(1, 2))).toBe(true);
    expect(s.append('log', bytes(3))).toBe(true);
    expect([...s.read('log')!]).toEqual([1, 2, 3]);
    expect(s.size('log')).toBe(3);
    s.replace('cfg', bytes(9, 9));
    expect(s.list()).toEqual(['cfg', 'log']);
    expect(s.list('l')).toEqual(['log']);
    const r = s.read('cfg')!;
    r[0] = 0; // read() returns a copy
    expect([...s.read('cfg')!]).toEqual([9, 9]);
    s.erase('cfg');
    s.erase('cfg');
    expect(s.list()).toEqual(['log']);
    expect(s.free()).toBe(97);
    expect(s.append('log', new Uint8Array(98))).toBe(false);
    expect(s.size('log')).toBe(3);
    expect(() => s.read('x'.repeat(29))).toThrow(/invalid storage record name/);
    expect(() => s.append('', bytes(1))).toThrow();
    expect(s.append('x'.repeat(28), bytes(1))).toBe(true);
  });

  it('a torn append then reboot shows a truncated tail; earlier data intact', () => {
    const s = new MemoryStorage();
    s.append('q', text('AAAA'));
    s.failAfterBytes(2);
    expect(() => s.append('q', text('BBBB'))).toThrow(PowerLoss);
    expect(s.dead).toBe(true);
    expect(() => s.read('q')).toThrow(PowerLoss);
    const after = s.reboot();
    expect(str(after.read('q')!)).toBe('AAAABB');
    expect(after.dead).toBe(false);
    after.append('q', text('C'));
    expect(str(after.read('q')!)).toBe('AAAABBC');
  });

  it('a torn append can leave erased-flash padding (0xFF) instead of missing bytes', () => {
    const s = new MemoryStorage();
    s.failAfterBytes(1, 0xff);
    expect(() => s.append('q', bytes(1, 2, 3))).toThrow(PowerLoss);
    expect([...s.reboot().read('q')!]).toEqual([1, 0xff, 0xff]);
  });

  it('replace is atomic: a torn replace keeps the old content; a completed one the new', () => {
    const s = new MemoryStorage();
    s.replace('state', text('old-state'));
    s.failAfterBytes(4);
    expect(() => s.replace('state', text('new-state'))).toThrow(PowerLoss);
    expect(str(s.reboot().read('state')!)).toBe('old-state');

    const s2 = s.reboot();
    s2.failAfterBytes(4);
    expect(() => s2.replace('fresh', text('abcdef'))).toThrow(PowerLoss);
    expect(s2.reboot().read('fresh')).toBeUndefined();

    const s3 = s.reboot();
    s3.failAfterBytes(100); // power dies right after the write completed
    expect(() => s3.replace('state', text('new-state'))).toThrow(PowerLoss);
    expect(str(s3.reboot().read('state')!)).toBe('new-state');

    // every cut point of a replace gives old or new, never anything else
    for (let n = 0; n <= 9; n++) {
      const x = new MemoryStorage({ records: { r: text('old') } });
      x.failAfterBytes(n);
      expect(() => x.replace('r', text('new-value'))).toThrow(PowerLoss);
      expect(['old', 'new-value']).toContain(str(x.reboot().read('r')!));
    }
  });

  it('snapshot and reboot are copies', () => {
    const s = new MemoryStorage();
    s.append('a', bytes(1));
    const snap = s.snapshot();
    const r = s.reboot();
    s.append('a', bytes(2));
    expect([...snap.a]).toEqual([1]);
    expect([...r.read('a')!]).toEqual([1]);
    expect(s.writes).toBe(2);
    expect(s.bytesWritten).toBe(2);
  });
});

describe('ScriptedLink', () => {
  it('up/attach/lose/down events, idempotent calls, async delivery', () => {
    const clock = new VirtualClock();
    const link = new ScriptedLink(clock, { kind: 'wifi', networkId: 'home', signal: -55 });
    const ev: string[] = [];
    link.setHandler({ onUp: () => ev.push('up@' + clock.now()), onDown: (r) => ev.push('down:' + r + '@' + clock.now()) });
    expect(link.isUp()).toBe(false);
    expect(link.signal()).toBeUndefined();
    link.up();
    link.up(); // idempotent
    clock.advance(100);
    expect(ev).toEqual([]); // attach waits for the script
    link.attach();
    expect(ev).toEqual([]);
    clock.flush();
    expect(ev).toEqual(['up@100']);
    expect(link.isUp()).toBe(true);
    expect(link.signal()).toBe(-55);
    expect(link.networkId()).toBe('home');
    link.up(); // already up: nothing
    clock.advance(50);
    link.lose();
    clock.flush();
    expect(ev).toEqual(['up@100', 'down:lost@150']);
    expect(link.isUp()).toBe(false);
    link.down(); // already down: nothing
    clock.flush();
    expect(ev).toHaveLength(2);
    expect(link.upCalls).toBe(3);
  });

  it('autoUpMs completes or fails attaches by itself; down() while attaching', () => {
    const clock = new VirtualClock();
    const link = new ScriptedLink(clock, { autoUpMs: 2000 });
    const ev: string[] = [];
    link.setHandler({ onUp: () => ev.push('up@' + clock.now()), onDown: (r) => ev.push('down:' + r + '@' + clock.now()) });
    link.up();
    clock.advance(2000);
    expect(ev).toEqual(['up@2000']);
    link.down();
    clock.flush();
    link.options.failReason = 'auth';
    link.up();
    clock.advance(2000);
    expect(ev).toEqual(['up@2000', 'down:requested@2000', 'down:auth@4000']);
    link.options.failReason = undefined;
    link.up();
    clock.advance(500);
    link.down();
    clock.advance(5000);
    expect(ev.slice(3)).toEqual(['down:requested@4500']); // the cancelled attach never reports up
  });
});

describe('MockPower, SeededRandom, MemoryLog', () => {
  it('power records sleeps with times; wake cause and battery are settable', () => {
    const clock = new VirtualClock({ startMs: 42 });
    const p = new MockPower({ clock, wakeCause: 'timer', batteryMv: 3700 });
    p.sleep('deep', 60_000);
    expect(p.sleeps).toEqual([{ mode: 'deep', durationMs: 60_000, atMs: 42 }]);
    expect(p.wakeCause()).toBe('timer');
    expect(p.batteryMv()).toBe(3700);
    p.battery = undefined;
    expect(p.batteryMv()).toBeUndefined();
  });

  it('SeededRandom is deterministic, in [0,1), and spread out', () => {
    const a = new SeededRandom(7);
    const b = new SeededRandom(7);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(new SeededRandom(8).next()).not.toBe(xs[0]);
    const f = new FixedRandom([0.5, 0.25]);
    expect([f.next(), f.next(), f.next()]).toEqual([0.5, 0.25, 0.25]);
  });

  it('MemoryLog filters by level and captures lines', () => {
    const log = new MemoryLog({ level: 'info' });
    expect(log.enabled('debug')).toBe(false);
    expect(log.enabled('warn')).toBe(true);
    log.debug('x', 'hidden');
    log.info('mqtt', 'connected');
    log.error('sched', 'boom');
    expect(log.text()).toBe('INFO mqtt: connected\nERROR sched: boom');
    expect(log.find('boom', 'error')).toHaveLength(1);
  });
});
