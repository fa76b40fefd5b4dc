// Runs ON the Espruino Linux interpreter (bundled by test/hal-espruino-real.test.ts): hal/espruino's
// Transport (real `net` sockets to Node servers on 127.0.0.1), Storage (the interpreter's flash file),
// clock and timers, with the real globals (defaultEnv). Prints one line per check; Node compares.
// Written in the Espruino subset. WREN_ECHO_PORT / WREN_BYE_PORT / WREN_PHASE come from esbuild define.

import { createEspruinoHal, EspruinoNetTransport } from '../../hal/espruino/index';
import type { TransportError } from '../../hal/types';
import { Session } from '../../firmware/session/index';

declare const WREN_ECHO_PORT: number;
declare const WREN_BYE_PORT: number;
declare const WREN_PHASE: number;
declare function quit(): void;

const hal = createEspruinoHal({ logLevel: 'warn' });
const out = function (s: string) {
  console.log(s);
};

function hex(b: Uint8Array | undefined): string {
  if (b === undefined) return 'none';
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 255;
  return b;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Rec {
  events: string[];
  chunks: Uint8Array[];
  len: number;
  err: TransportError | undefined;
}

function probe(t: EspruinoNetTransport): Rec {
  const r: Rec = { events: [], chunks: [], len: 0, err: undefined };
  let inCall = false;
  const ev = function (e: string) {
    r.events.push(inCall ? 'SYNC-' + e : e);
  };
  t.setHandler({
    onOpen: function () {
      ev('open');
    },
    onData: function (b: Uint8Array) {
      r.chunks.push(b);
      r.len += b.length;
      ev('data');
    },
    onDrain: function () {
      ev('drain');
    },
    onError: function (e: TransportError) {
      r.err = e;
      ev('error:' + e.code);
    },
    onClose: function () {
      ev('close');
    },
  });
  return r;
}

function joined(chunks: Uint8Array[], len: number): Uint8Array {
  const all = new Uint8Array(len);
  let o = 0;
  for (let i = 0; i < chunks.length; i++) {
    all.set(chunks[i], o);
    o += chunks[i].length;
  }
  return all;
}

function summary(r: Rec): string {
  const e: string[] = [];
  for (let i = 0; i < r.events.length; i++) if (r.events[i] !== 'data' && r.events[i] !== 'drain') e.push(r.events[i]);
  return e.join(',');
}

/** Echo: every byte value and a 3000-byte pattern go out and come back; then close(). */
function echo(next: () => void): void {
  const t = new EspruinoNetTransport(hal.env, hal.timers);
  const r = probe(t);
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  const big = pattern(3000, 1);
  const want = new Uint8Array(256 + 3000);
  want.set(all, 0);
  want.set(big, 256);
  let done = false;
  t.setHandler({
    onOpen: function () {
      r.events.push('open');
      t.write(all);
      t.write(big);
    },
    onData: function (b: Uint8Array) {
      r.chunks.push(b);
      r.len += b.length;
      if (r.len >= want.length && !done) {
        done = true;
        t.close();
        t.close();
      }
    },
    onDrain: function () {},
    onError: function (e: TransportError) {
      r.events.push('error:' + e.code);
    },
    onClose: function () {
      r.events.push('close');
      out('ECHO ' + sameBytes(joined(r.chunks, r.len), want) + ' ' + r.len + ' chunks>1=' + (r.chunks.length > 1) + ' ' + summary(r));
      hal.timers.set(300, next); // a late event would show up in the next line
    },
  });
  t.open({ host: '127.0.0.1', port: WREN_ECHO_PORT });
}

function refused(next: () => void): void {
  const t = new EspruinoNetTransport(hal.env, hal.timers);
  const r = probe(t);
  t.open({ host: '127.0.0.1', port: 1 });
  out('REFUSED-SYNC ' + r.events.length);
  hal.timers.set(500, function () {
    out('REFUSED ' + summary(r));
    next();
  });
}

function dns(next: () => void): void {
  const t = new EspruinoNetTransport(hal.env, hal.timers);
  const r = probe(t);
  t.open({ host: 'no.such.host.invalid', port: 1883 });
  hal.timers.set(500, function () {
    out('DNS ' + summary(r));
    next();
  });
}

function bye(next: () => void): void {
  const t = new EspruinoNetTransport(hal.env, hal.timers);
  const r = probe(t);
  t.open({ host: '127.0.0.1', port: WREN_BYE_PORT });
  hal.timers.set(1500, function () {
    let s = '';
    const b = joined(r.chunks, r.len);
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    out('BYE ' + s + ' ' + summary(r));
    next();
  });
}

function timers(next: () => void): void {
  const c = hal.clock;
  const t0 = c.now();
  const fired: string[] = [];
  const a = hal.timers.set(50, function () {
    fired.push('a');
  });
  hal.timers.set(100, function () {
    fired.push('b');
  });
  hal.timers.clear(a);
  hal.timers.clear(a);
  hal.timers.set(200, function () {
    hal.timers.clear(a); // long fired or cleared: must not clear anything else
    const d = c.elapsed(t0);
    out('TIMERS ' + fired.join('') + ' ' + (d >= 190 && d < 2000));
    next();
  });
}

const LIMITS: any = { maxMessages: 50, maxBytes: 8000, overflow: 'drop-oldest-qos0', compactBytes: 400 };

function storage1(next: () => void): void {
  const s = hal.storage;
  const bin = new Uint8Array([0, 1, 0xfe, 0xff, 0xfe, 0x02, 0xff, 0x0d, 0x0a]);
  out('S1 append ' + s.append('bin', bin) + ' ' + s.append('bin', pattern(600, 2)));
  out('S1 replace ' + s.replace('cfg', new Uint8Array([1, 2, 3])) + ' ' + s.replace('cfg', new Uint8Array([4, 5, 6, 0xff])));
  out('S1 long ' + s.append('a-name-that-is-28-characters', new Uint8Array([9])));
  const ses = new Session(s, 'dev', LIMITS);
  ses.load();
  for (let i = 0; i < 30; i++) {
    ses.enqueue('t/' + i, pattern(20, i), 1, false);
    const m = ses.nextQueued();
    if (m === undefined) break;
    const id = ses.allocateId();
    ses.markSent(m.seq, id);
    if (i % 3 !== 0) ses.complete(id, 'puback');
  }
  out('S1 session ' + ses.all().length);
  next();
}

function storage2(next: () => void): void {
  const s = hal.storage;
  const bin = s.read('bin') as Uint8Array;
  out('S2 bin ' + hex(bin.subarray(0, 9)) + ' ' + bin.length + ' ' + sameBytes(bin.subarray(9), pattern(600, 2)));
  out('S2 cfg ' + hex(s.read('cfg')) + ' ' + s.size('cfg'));
  out('S2 long ' + hex(s.read('a-name-that-is-28-characters')));
  out('S2 list ' + s.list().join(','));
  // appending after a reboot goes on in place: no new flash file for a small append
  const files = function () {
    return hal.env.require('Storage').list().filter(function (n: string) {
      return n.indexOf('bin') === 0;
    }).length;
  };
  const before = files();
  out('S2 append ' + s.append('bin', new Uint8Array([0xff, 0xfe, 7])) + ' ' + before + ' ' + files() + ' ' + hex((s.read('bin') as Uint8Array).subarray(609)));
  const ses = new Session(s, 'dev', LIMITS);
  const l = ses.load();
  out('S2 session ' + ses.all().length + ' dropped ' + l.droppedBytes);
  s.erase('cfg');
  out('S2 erased ' + (s.read('cfg') === undefined) + ' ' + s.list().join(','));
  next();
}

function run(steps: Array<(next: () => void) => void>): void {
  let i = 0;
  const next = function () {
    if (i >= steps.length) {
      out('DONE');
      quit();
      return;
    }
    const f = steps[i++];
    try {
      f(next);
    } catch (e) {
      out('FAIL ' + (e && (e as any).message ? (e as any).message : e));
      next();
    }
  };
  hal.timers.set(10, next); // quit() works from a callback only
}

if (WREN_PHASE === 1) run([echo, refused, dns, bye, timers, storage1]);
else run([storage2]);
