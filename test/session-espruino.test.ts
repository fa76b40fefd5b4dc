// firmware/session on the real Espruino interpreter (ESPRUINO_BIN, an Espruino Linux build): one
// scenario (queue, overflow, QoS 1/2 flows, inbound QoS 2, reset, compactions, reboot, torn tail) is
// bundled with the shared Espruino esbuild options and run there, and the same scenario runs on Node.
// Every printed line must match, including the hex of the persisted log: the on-flash format is the
// same on both (Espruino's native E.CRC32 = the table CRC-32 used on Node), and the log written on
// Espruino loads on Node. The bundle must also pass tools/bundle-check.mjs.
// Without ESPRUINO_BIN the interpreter part is skipped with a printed reason.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../hal/mock/index';
import { Session } from '../firmware/session/index';
import { bundleForEspruino, espruinoSkipReason, runOnEspruino, type EspruinoRunResult } from '../tools/espruino-run';

const SESSION = fileURLToPath(new URL('../firmware/session/index', import.meta.url));

interface Finding {
  rule: string;
  message: string;
  line: number;
}
const { checkBundle } = (await import(new URL('../tools/bundle-check.mjs', import.meta.url).href)) as {
  checkBundle(js: string): Finding[];
};

const LIMITS = { maxMessages: 40, maxBytes: 4000, overflow: 'drop-oldest-qos0', compactBytes: 300 };

// The scenario, in the Espruino subset (it is bundled for Espruino as it is).
const SCENARIO = `
import { Session } from ${JSON.stringify(SESSION)};

function hex(b) {
  if (b === undefined) return 'none';
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

function bytes(n, seed) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

class Mem {
  constructor() { this.r = {}; }
  read(n) { const v = this.r[n]; return v === undefined ? undefined : new Uint8Array(v); }
  size(n) { const v = this.r[n]; return v === undefined ? undefined : v.length; }
  append(n, b) {
    const o = this.r[n] || new Uint8Array(0);
    const x = new Uint8Array(o.length + b.length);
    x.set(o, 0);
    x.set(b, o.length);
    this.r[n] = x;
    return true;
  }
  replace(n, b) { this.r[n] = new Uint8Array(b); return true; }
  erase(n) { delete this.r[n]; }
  list() { return Object.keys(this.r).sort(); }
  free() { return undefined; }
}

// Strings as code units (console output and JSON escaping differ between Node and Espruino).
function canon(v) {
  if (typeof v === 'string') {
    const c = [];
    for (let i = 0; i < v.length; i++) c.push(v.charCodeAt(i).toString(16));
    return 's:' + c.join('.');
  }
  if (v instanceof Uint8Array) return 'b:' + hex(v);
  if (Array.isArray(v)) {
    const a = [];
    for (let i = 0; i < v.length; i++) a.push(canon(v[i]));
    return '[' + a.join(',') + ']';
  }
  if (v !== null && typeof v === 'object') {
    const k = Object.keys(v);
    const a = [];
    for (let i = 0; i < k.length; i++) a.push(k[i] + '=' + canon(v[k[i]]));
    return '{' + a.join(',') + '}';
  }
  return String(v);
}

export function view(s) {
  const out = [];
  const a = s.all();
  for (let i = 0; i < a.length; i++) {
    const m = a[i];
    const props = m.properties === undefined ? 'none' : canon(m.properties);
    out.push([m.seq, canon(m.topic), hex(m.payload), m.qos, m.retain, m.packetId, m.state, props].join('|'));
  }
  return out.join(' ; ') + ' ; inbound ' + s.inboundIds().join(',');
}

export function run(out) {
  const lim = ${JSON.stringify(LIMITS)};
  const st = new Mem();
  const s = new Session(st, 'esp', lim);
  out('load ' + JSON.stringify(s.load()));
  const r = [];
  r.push(s.enqueue('a/\\u00fc/\\u2713', bytes(40, 1), 1, true, {
    correlationData: new Uint8Array([0, 255, 16]),
    userProperties: [['k', 'v'], ['k', '\\u00e9']],
    contentType: 'text/plain',
    messageExpiryInterval: 4000000000,
  }));
  r.push(s.enqueue('b/q0', bytes(5, 2), 0, false));
  r.push(s.enqueue('c/q2', bytes(300, 3), 2, false));
  r.push(s.enqueue('d/q0', bytes(3000, 4), 0, false)); // evicts b/q0 by bytes
  r.push(s.enqueue('e/q1', bytes(1000, 5), 1, false)); // evicts d/q0
  r.push(s.enqueue('f/big', bytes(5000, 6), 1, false)); // too-large
  out('results ' + JSON.stringify(r));
  out('state1 ' + view(s));
  out('hex1 ' + hex(st.read('esp.l')));
  let m = s.nextQueued();
  s.markSent(m.seq, s.allocateId());
  m = s.nextQueued();
  s.markSent(m.seq, s.allocateId());
  out('rec ' + (s.received(m.packetId) === m) + ' ' + (s.received(m.packetId) === m) + ' ' + (s.received(999) === undefined));
  out('in2 ' + s.inboundQos2(7) + ' ' + s.inboundQos2(7) + ' ' + s.inboundQos2(65535) + ' ' + s.inboundRelease(7) + ' ' + s.inboundRelease(7));
  out('state ' + view(s));
  s.resetForNewSession();
  out('reset ' + view(s));
  for (let i = 0; i < 150; i++) {
    const e = s.enqueue('loop/' + i, bytes(i % 40, i), 1 + (i % 2), false);
    if (!e.ok) { out('loop enqueue failed ' + JSON.stringify(e)); break; }
    const q = s.nextQueued();
    const id = s.allocateId();
    s.markSent(q.seq, id);
    if (q.qos === 2) s.received(id);
    if (i % 4 !== 0) s.complete(id, q.qos === 1 ? 'puback' : 'pubcomp');
    else s.remove(q.seq);
  }
  s.inboundQos2(42);
  out('stats ' + JSON.stringify(s.stats()) + ' ' + JSON.stringify(s.storageStats()));
  out('state ' + view(s));
  const s2 = new Session(st, 'esp', lim);
  out('reload ' + JSON.stringify(s2.load()));
  out('state ' + view(s2));
  out('hex ' + hex(st.read('esp.l')));
  st.append('esp.l', new Uint8Array([0, 40, 1, 2, 3, 255, 255]));
  const s3 = new Session(st, 'esp', lim);
  out('torn ' + JSON.stringify(s3.load()));
  out('state ' + view(s3));
  out('next ' + JSON.stringify(s3.enqueue('z', bytes(1, 9), 0, false)) + ' ' + s3.allocateId());
  s3.clear();
  const s4 = new Session(st, 'esp', lim);
  out('cleared ' + JSON.stringify(s4.load()) + ' ' + hex(st.read('esp.l')).length);
}
`;

const DRIVER = `
import { run } from './scenario';
try {
  run(function (l) { console.log(l); });
} catch (e) {
  console.log('FAIL threw ' + (e && e.message ? e.message : e));
}
console.log('DONE');
setTimeout(function () { quit(); }, 1);
`;

let dir: string;
let nodeLines: string[];
let bundle: string;
let nodeView: (s: Session) => string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wren-session-'));
  writeFileSync(join(dir, 'scenario.js'), SCENARIO);
  writeFileSync(join(dir, 'driver.js'), DRIVER);
  // Node: the same scenario as an ES module.
  await esbuild.build({
    entryPoints: [join(dir, 'scenario.js')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    outfile: join(dir, 'scenario.mjs'),
    logLevel: 'silent',
  });
  const mod = (await import(pathToFileURL(join(dir, 'scenario.mjs')).href)) as {
    run(out: (l: string) => void): void;
    view(s: Session): string;
  };
  nodeView = mod.view;
  nodeLines = [];
  mod.run((l) => nodeLines.push(l));
  nodeLines.push('DONE');
  bundle = await bundleForEspruino(join(dir, 'driver.js'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function line(lines: string[], prefix: string): string {
  const l = lines.find((x) => x.startsWith(prefix + ' '));
  if (l === undefined) throw new Error('no line ' + prefix);
  return l.slice(prefix.length + 1);
}

describe('session scenario on Node', () => {
  it('behaves as specified (the baseline the Espruino run is compared with)', () => {
    expect(nodeLines.filter((l) => l.startsWith('FAIL') || l.startsWith('loop enqueue failed'))).toEqual([]);
    const results = JSON.parse(line(nodeLines, 'results'));
    expect(results).toEqual([
      { ok: true, seq: 1 },
      { ok: true, seq: 2 },
      { ok: true, seq: 3 },
      { ok: true, seq: 4 },
      { ok: true, seq: 5, dropped: [2, 4] }, // 53 + 9 + 304 + 3004 + 1004 > 4000: both QoS 0 go
      { ok: false, code: 'too-large', message: expect.any(String) },
    ]);
    expect(line(nodeLines, 'rec')).toBe('true true true');
    expect(line(nodeLines, 'in2')).toBe('true false true true false');
    expect(JSON.parse(line(nodeLines, 'reload'))).toEqual({ messages: 3, inboundQos2: 1, droppedBytes: 0 }); // the last 3 of the loop are queued
    expect(JSON.parse(line(nodeLines, 'torn'))).toMatchObject({ droppedBytes: 7 });
    expect(line(nodeLines, 'cleared')).toMatch(/^\{"messages":0,"inboundQos2":0,"droppedBytes":0\} \d+$/);
    // the persisted log loads with the real Session: same state
    const raw = Buffer.from(line(nodeLines, 'hex'), 'hex');
    const s = new Session(new MemoryStorage({ records: { 'esp.l': new Uint8Array(raw) } }), 'esp', LIMITS as never);
    expect(s.load().droppedBytes).toBe(0);
    expect(s.all().map((m) => m.topic)).toEqual(['loop/147', 'loop/148', 'loop/149']);
    expect(s.inboundIds()).toEqual([42]);
  });

  it('the scenario bundle passes the Espruino bundle check', () => {
    expect(checkBundle(bundle)).toEqual([]);
  });
});

const skipReason = espruinoSkipReason();
if (skipReason) console.log('skipped: ' + skipReason);

describe.skipIf(skipReason !== undefined)('session scenario on the Espruino interpreter (ESPRUINO_BIN)', () => {
  let run: EspruinoRunResult;

  beforeAll(async () => {
    run = await runOnEspruino(bundle, { timeoutMs: 60_000 });
  });

  it('prints exactly what Node prints, persisted log bytes included', () => {
    expect(run.uncaught).toEqual([]);
    expect(run.timedOut).toBe(false);
    const lines = run.stdout.split('\n').filter((l) => l.length > 0);
    // Espruino's JSON.stringify escapes non-ASCII ("\u00E9"), Node's does not: the first log (with
    // non-ASCII properties) differs in bytes but must load on Node to the same state.
    const other = (l: string[]) => l.filter((x) => !x.startsWith('hex1 '));
    expect(other(lines)).toEqual(other(nodeLines));
    const raw = Buffer.from(line(lines, 'hex1'), 'hex');
    const s = new Session(new MemoryStorage({ records: { 'esp.l': new Uint8Array(raw) } }), 'esp', LIMITS as never);
    expect(s.load().droppedBytes).toBe(0);
    expect(nodeView(s)).toBe(line(nodeLines, 'state1'));
  });
});
