// Fuzz: at least 100,000 random and mutated inputs per run (both versions), each fed to a fresh
// decoder in random chunks. Only ProtocolError may escape, with a rule "MQTT-..." and a reason
// code >= 0x80; whatever the decoder does accept must be a whole packet: it re-encodes and
// decodes back to itself. And the encoder, given garbage packet objects, either throws
// ProtocolError or writes bytes that our decoder accepts as exactly one packet.
//
// The decoder loop uses its own seeded generator (fast, and the seed is in every failure
// message: rerun with FUZZ_SEED=<seed>); the encoder fuzz uses fast-check (which prints its seed).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Packet, Version } from '../firmware/mqtt/types';
import { anyPacket } from './helpers/arbitraries';
import { canon, createDecoder, decodeChunks, describeThrown, encode, ProtocolError, toHex, UNLIMITED } from './helpers/vectors';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
const PER_VERSION = 60000;

/** xorshift32: small, fast, reproducible. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function vbiBytes(n: number): number[] {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    out.push(d);
  } while (n > 0);
  return out;
}

/** Splits a packet's bytes into [first byte, body] (assumes our encoder's well-formed output). */
function split(p: Uint8Array): { first: number; body: Uint8Array } {
  let i = 1;
  while (p[i] & 0x80) i++;
  return { first: p[0], body: p.subarray(i + 1) };
}

function frame(first: number, body: Uint8Array | number[], rl?: number): Uint8Array {
  const len = vbiBytes(rl === undefined ? body.length : rl);
  const out = new Uint8Array(1 + len.length + body.length);
  out[0] = first;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

const VALID_FIRST = [0x10, 0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x3a, 0x3d, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xa2, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0];
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0xc0, 0xed, 0xf4, 0x23, 0x2b, 0x26, 0x0b];

function mutate(r: () => number, corpus: Uint8Array[]): Uint8Array {
  const pick = () => corpus[r() % corpus.length];
  const randBytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = r() & 0xff;
    return b;
  };
  switch (r() % 10) {
    case 0: // pure noise
      return randBytes(r() % 48);
    case 1: {
      // noise behind a plausible fixed header
      const body = randBytes(r() % 40);
      return frame(VALID_FIRST[r() % VALID_FIRST.length], body);
    }
    case 2: {
      // bit flips
      const p = new Uint8Array(pick());
      const flips = 1 + (r() % 3);
      for (let k = 0; k < flips && p.length; k++) p[r() % p.length] ^= 1 << (r() % 8);
      return p;
    }
    case 3: {
      // interesting byte values at random places
      const p = new Uint8Array(pick());
      const n = 1 + (r() % 3);
      for (let k = 0; k < n && p.length; k++) p[r() % p.length] = INTERESTING[r() % INTERESTING.length];
      return p;
    }
    case 4: {
      // truncated body with the remaining length fixed to match
      const { first, body } = split(pick());
      return frame(first, body.subarray(0, body.length ? r() % body.length : 0));
    }
    case 5: {
      // bytes inserted into the body, remaining length fixed to match
      const { first, body } = split(pick());
      const at = body.length ? r() % (body.length + 1) : 0;
      const ins = randBytes(1 + (r() % 6));
      const nb = new Uint8Array(body.length + ins.length);
      nb.set(body.subarray(0, at), 0);
      nb.set(ins, at);
      nb.set(body.subarray(at), at + ins.length);
      return frame(first, nb);
    }
    case 6: {
      // remaining length off by a little, body unchanged (then another packet behind it)
      const { first, body } = split(pick());
      const d = (r() % 7) - 3;
      return concat(frame(first, body, Math.max(0, body.length + (d === 0 ? 1 : d))), pick());
    }
    case 7: {
      // remaining length bytes rewritten: non-minimal or overlong forms
      const { first, body } = split(pick());
      const len = vbiBytes(body.length);
      const pad = 1 + (r() % 4);
      const rl: number[] = len.map((b) => b | 0x80);
      for (let k = 1; k < pad; k++) rl.push(0x80);
      rl.push(0x00);
      const out = new Uint8Array(1 + rl.length + body.length);
      out[0] = first;
      out.set(rl, 1);
      out.set(body, 1 + rl.length);
      return out;
    }
    case 8: {
      // splice: the head of one packet, the tail of another
      const a = pick();
      const b = pick();
      return concat(a.subarray(0, r() % (a.length + 1)), b.subarray(r() % (b.length + 1)));
    }
    default: {
      // a valid packet, then a mutated one
      const a = pick();
      const b = new Uint8Array(pick());
      if (b.length) b[r() % b.length] = r() & 0xff;
      return concat(a, b);
    }
  }
}

function feed(version: Version, input: Uint8Array, r: () => number, maxPacketSize: number): Packet[] {
  const d = createDecoder(version, maxPacketSize);
  const out: Packet[] = [];
  let at = 0;
  const mode = r() % 3; // whole, byte by byte, random chunks
  while (at < input.length) {
    const n = mode === 0 ? input.length : mode === 1 ? 1 : 1 + (r() % 17);
    const got = d.push(input.subarray(at, at + n));
    for (const p of got) out.push(p);
    at += n;
    // the decoder never holds more than one packet's worth, and never more than the limit
    if (d.buffered > maxPacketSize) throw new Error('decoder holds ' + d.buffered + ' bytes, limit ' + maxPacketSize);
  }
  return out;
}

/**
 * Failures are collected by kind (first example kept) so that one run reports every distinct
 * problem instead of stopping at the first.
 */
class Failures {
  byKind: { [kind: string]: { count: number; example: string } } = {};
  add(kind: string, example: string): void {
    const k = kind.replace(/[0-9a-f]{6,}/g, '…').replace(/\d+/g, 'N').slice(0, 160);
    const f = this.byKind[k];
    if (f) {
      f.count++;
      if (example.length < f.example.length) f.example = example;
    } else this.byKind[k] = { count: 1, example };
  }
  report(): string[] {
    return Object.keys(this.byKind).map((k) => k + '  x' + this.byKind[k].count + '\n    e.g. ' + this.byKind[k].example);
  }
}

function errorKind(e: unknown): string {
  if (e instanceof ProtocolError) return 'ProtocolError ' + e.rule;
  if (e instanceof Error) return (e.constructor ? e.constructor.name : 'Error') + ': ' + e.message.split('\n')[0];
  return typeof e + ': ' + String(e);
}

function checkError(e: unknown, ctx: string): void {
  if (!(e instanceof ProtocolError)) throw new Error('non-ProtocolError escaped: ' + ctx + '\n' + describeThrown(e));
  if (typeof e.rule !== 'string' || !/^MQTT-\d/.test(e.rule)) throw new Error('bad rule ' + JSON.stringify(e.rule) + ': ' + ctx);
  if (typeof e.message !== 'string' || e.message.length === 0) throw new Error('empty message: ' + ctx);
  if (!(e.reasonCode >= 0x80 && e.reasonCode <= 0xff)) throw new Error('bad reasonCode ' + e.reasonCode + ': ' + ctx);
}

/** A packet the decoder returned must be whole: it encodes, and the bytes decode back to it. */
function checkAccepted(p: Packet, version: Version, ctx: string): void {
  const v = (p.type === 1 && (p as { protocolVersion?: Version }).protocolVersion) || version;
  // The one legitimate asymmetry: a 3.1.1 client must not send a zero-byte client id without
  // clean session [MQTT-3.1.3-7], but a server must read such a CONNECT to answer it with return
  // code 2 [MQTT-3.1.3-8]. So the decoder accepts what the encoder refuses.
  const c = p as { type: number; clientId?: string; clean?: boolean };
  if (v === 4 && c.type === 1 && c.clientId === '' && !c.clean) return;
  let bytes: Uint8Array;
  try {
    bytes = encode(p, v);
  } catch (e) {
    throw new Error('decoder accepted a packet the encoder refuses: ' + ctx + '\n' + describeThrown(e) + '\n' + JSON.stringify(canon(p, v)));
  }
  const back = decodeChunks(bytes, v);
  expect(back.length, ctx).toBe(1);
  expect(canon(back[0], v), ctx).toEqual(canon(p, v));
}

describe('decoder fuzz', () => {
  const counts: { [v: number]: { inputs: number; refused: number; packets: number } } = {};

  for (const version of [4, 5] as Version[]) {
    it('v' + version + ': ' + PER_VERSION + ' random and mutated inputs, only ProtocolError escapes (seed ' + SEED + ')', () => {
      const corpus = fc.sample(anyPacket(version), { numRuns: 400, seed: SEED }).map((p) => encode(p, version));
      const r = rng(SEED + version);
      const c = { inputs: 0, refused: 0, packets: 0 };
      const failures = new Failures();
      for (let i = 0; i < PER_VERSION; i++) {
        const input = mutate(r, corpus);
        // mostly unlimited, sometimes a small limit so "too large" is exercised as well
        const max = r() % 8 === 0 ? 16 + (r() % 200) : UNLIMITED;
        const ctx = 'seed ' + SEED + ' v' + version + ' input #' + i + ' max ' + max + ': ' + toHex(input);
        c.inputs++;
        let packets: Packet[] = [];
        try {
          packets = feed(version, input, r, max);
        } catch (e) {
          c.refused++;
          try {
            checkError(e, ctx);
          } catch (x) {
            failures.add('refusal: ' + errorKind(e), ctx);
          }
          continue;
        }
        c.packets += packets.length;
        for (const p of packets) {
          try {
            checkAccepted(p, version, ctx);
          } catch (x) {
            failures.add('accepted packet: ' + errorKind(x), ctx + '\n    ' + (x as Error).message.split('\n').slice(0, 3).join('\n    '));
          }
        }
      }
      counts[version] = c;
      expect(failures.report(), 'distinct failures (seed ' + SEED + ')').toEqual([]);
      // the mix must exercise both paths, or the fuzz is not testing much
      expect(c.refused).toBeGreaterThan(PER_VERSION / 10);
      expect(c.packets).toBeGreaterThan(PER_VERSION / 10);
    });
  }

  it('ran at least 100,000 inputs in total', () => {
    const total = Object.keys(counts).reduce((n, k) => n + counts[Number(k)].inputs, 0);
    expect(total).toBeGreaterThanOrEqual(100000);
  });
});

// ---------------------------------------------------------------------------------------------
// Encoder fuzz: garbage packet objects

const garbage: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, NaN, Infinity, -Infinity, -1, 0, 1, 1.5, 2, 3, 4, 255, 256, 65535, 65536, 268435455, 268435456, 4294967296, -0),
  fc.constantFrom('', 'a', 'a/+', '#', '\u0000', '\ud800', 'x'.repeat(70000), '€'.repeat(22000)),
  fc.constantFrom(true, false),
  fc.constantFrom(new Uint8Array(0), new Uint8Array(3), new Uint8Array(70000)),
  fc.constantFrom([], [1, 2], [['a', 'b']], [['a']], [[1, 2]], [null], ['a'], [{ topic: 'a', qos: 3 }], [{ topic: 5 }]),
  fc.constantFrom({}, { a: 1 }, { userProperties: 5 }, { topicAlias: 'x' }, { subscriptionIdentifiers: [0] }, { correlationData: 'str' }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 5 }),
);

const FIELDS = [
  'type',
  'topic',
  'payload',
  'qos',
  'retain',
  'dup',
  'packetId',
  'properties',
  'clientId',
  'keepAliveSec',
  'clean',
  'username',
  'password',
  'will',
  'protocolVersion',
  'sessionPresent',
  'reasonCode',
  'reasonCodes',
  'subscriptions',
  'topics',
];
const PROP_FIELDS = [
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'contentType',
  'responseTopic',
  'correlationData',
  'subscriptionIdentifiers',
  'sessionExpiryInterval',
  'topicAlias',
  'maximumQoS',
  'userProperties',
  'receiveMaximum',
  'reasonString',
  'authenticationData',
];

/** A valid packet with one to three fields (or properties, or will fields) replaced by garbage. */
function corrupted(version: Version): fc.Arbitrary<unknown> {
  const edit = fc.tuple(fc.constantFrom('top', 'prop', 'will', 'sub'), fc.constantFrom(...FIELDS), fc.constantFrom(...PROP_FIELDS), garbage);
  return fc.tuple(anyPacket(version), fc.array(edit, { minLength: 1, maxLength: 3 })).map(([p, edits]) => {
    const o = JSON.parse(JSON.stringify(p, (_k, v) => (v instanceof Uint8Array ? { __bytes: Array.from(v) } : v)), (_k, v) =>
      v && typeof v === 'object' && Array.isArray(v.__bytes) ? new Uint8Array(v.__bytes) : v,
    ) as Record<string, unknown>;
    for (const [where, field, prop, value] of edits) {
      if (where === 'top') o[field] = value;
      else if (where === 'prop') o.properties = { ...((o.properties as object) || {}), [prop]: value };
      else if (where === 'will') o.will = { topic: 'w', payload: new Uint8Array(0), qos: 0, retain: false, ...((o.will as object) || {}), [field]: value };
      else o.subscriptions = [{ topic: 'a', qos: 0, [field]: value }];
    }
    return o;
  });
}

/** Anything at all that looks a little like a packet. */
const wild: fc.Arbitrary<unknown> = fc.record(
  { type: fc.oneof(fc.integer({ min: -1, max: 17 }), garbage) },
  { requiredKeys: ['type'] },
).chain((base) => fc.dictionary(fc.constantFrom(...FIELDS), garbage, { maxKeys: 6 }).map((extra) => ({ ...extra, ...base })));

function show(p: unknown): string {
  return String(JSON.stringify(p, (_k, v) => (v instanceof Uint8Array ? 'bytes[' + v.length + ']' : typeof v === 'string' && v.length > 40 ? v.slice(0, 8) + '…(' + v.length + ')' : v))).slice(0, 400);
}

function encodeOrRefuse(p: unknown, version: Version): void {
  let bytes: Uint8Array;
  try {
    bytes = encode(p as Packet, version);
  } catch (e) {
    checkError(e, 'encode v' + version + ' ' + show(p));
    return;
  }
  // No bad bytes on the wire: whatever the encoder writes, our decoder reads as one packet.
  expect(bytes).toBeInstanceOf(Uint8Array);
  let got: Packet[];
  try {
    got = decodeChunks(bytes, version);
  } catch (e) {
    throw new Error('encoder wrote bytes the decoder refuses (' + errorKind(e) + '): ' + toHex(bytes).slice(0, 120));
  }
  expect(got.length).toBe(1);
}

describe('encoder fuzz', () => {
  function run(arb: fc.Arbitrary<unknown>, version: Version, n: number): string[] {
    const failures = new Failures();
    for (const p of fc.sample(arb, { numRuns: n, seed: SEED })) {
      try {
        encodeOrRefuse(p, version);
      } catch (x) {
        failures.add(errorKind(x), show(p));
      }
    }
    return failures.report();
  }
  for (const version of [4, 5] as Version[]) {
    it('v' + version + ': valid packets with garbage fields: ProtocolError or bytes that decode (seed ' + SEED + ')', () => {
      expect(run(corrupted(version), version, 5000)).toEqual([]);
    });
    it('v' + version + ': wild objects: ProtocolError or bytes that decode (seed ' + SEED + ')', () => {
      expect(run(wild, version, 3000)).toEqual([]);
    });
  }
});
