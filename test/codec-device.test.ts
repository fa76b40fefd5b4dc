// The codec as a device build compiles it (WREN_DEVICE true, firmware/flags.d.ts): a client's codec,
// without what only a broker needs (reading CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ; writing
// CONNACK, SUBACK, UNSUBACK, PINGRESP) and without the checks of the firmware's own packets. Every
// other test sees the full codec (WREN_DEVICE is undefined in Node), so this one bundles
// firmware/mqtt/index.ts with the device defines, for both kinds of board (MQTT 5 compiled in or
// not), and checks it against the full codec on what a client does:
//   - the packets a client sends encode to the very same bytes;
//   - the packets a client receives decode to the same objects, in any chunking;
//   - a packet only a broker receives is a Protocol Error [MQTT-2.1.2];
//   - mutated streams: the same packets, or the same error (or that Protocol Error, when such a
//     packet comes first);
//   - what the application hands over (topics, filters, QoS, properties) is refused the same way.
// The device reads and writes strings with Espruino's E (utf8.ts): here a stand-in with the
// semantics of the Linux build's UTF8 strings.

import { build } from 'esbuild';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PacketType } from '../firmware/mqtt/types';
import type { Decoder, Packet, Version } from '../firmware/mqtt/types';
import { kinds } from './helpers/arbitraries';
import { createDecoder, encode, UNLIMITED } from './helpers/vectors';

interface Codec {
  encode(p: Packet, v: Version): Uint8Array;
  createDecoder(v: Version, max: number): Decoder;
}

/** Packet types a client sends, and those it receives (bit per type). */
const SENDS = (1 << 1) | (1 << 3) | (0xf << 4) | (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14) | (1 << 15);
const RECEIVES = (1 << 2) | (1 << 3) | (0xf << 4) | (1 << 9) | (1 << 11) | (1 << 13) | (1 << 14) | (1 << 15);
const RUNS = 150;

const ENTRY = fileURLToPath(new URL('../firmware/mqtt/index.ts', import.meta.url));
let dir = '';
const builds: { [name: string]: Codec } = {};

/** The stand-in for Espruino's E: strings are UTF-16 here, E.toString gives a byte string. */
const FAKE_E = {
  isUTF8: (s: string) => s.length === 1 && s.charCodeAt(0) > 0x7f,
  toUint8Array: (s: string) => new Uint8Array(Buffer.from(s, 'utf8')),
  toString: (b: Uint8Array) => Buffer.from(b).toString('latin1'),
  asUTF8: (s: string) => Buffer.from(s, 'latin1').toString('utf8'),
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wren-codec-device-'));
  (globalThis as { E?: unknown }).E = FAKE_E;
  for (const v5 of [true, false]) {
    const r = await build({
      entryPoints: [ENTRY],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      define: { WREN_DEVICE: 'true', WREN_V5: String(v5), WREN_TLS: 'false' },
    });
    const file = join(dir, 'codec-' + v5 + '.mjs');
    writeFileSync(file, r.outputFiles[0].text);
    builds[String(v5)] = (await import(pathToFileURL(file).href)) as Codec;
  }
}, 60_000);

afterAll(() => {
  delete (globalThis as { E?: unknown }).E;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What a decoder does with a stream in chunks: its packets, or its error's rule and reason. */
function outcome(d: Decoder, bytes: Uint8Array, size: number): unknown {
  const out: Packet[] = [];
  try {
    for (let at = 0; at < bytes.length; at += size) out.push(...d.push(bytes.subarray(at, at + size)));
    return out;
  } catch (e) {
    const pe = e as { rule?: string; reasonCode?: number };
    if (typeof pe.rule !== 'string') throw e; // not a ProtocolError
    return { rule: pe.rule, reasonCode: pe.reasonCode };
  }
}

/** Whether a packet of a type only a broker receives starts in the stream (read header by header). */
function brokerOnlyHeader(bytes: Uint8Array): boolean {
  for (let at = 0; at < bytes.length; ) {
    if ((0x1502 >> (bytes[at] >> 4)) & 1) return true;
    let n = 0;
    let i = at + 1;
    for (let m = 1; i < bytes.length; m *= 128) {
      n += (bytes[i] & 127) * m;
      if (bytes[i++] < 128) break;
    }
    at = i + n;
  }
  return false;
}

function concat(list: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(list.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of list) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

for (const [v5, versions] of [
  [true, [4, 5]],
  [false, [4]],
] as Array<[boolean, Version[]]>) {
  for (const version of versions) {
    describe('device build' + (v5 ? '' : ' without MQTT 5') + ', v' + version, () => {
      const device = (): Codec => builds[String(v5)];
      const typeOf = (p: Packet): number => p.type;

      for (const [name, arb] of kinds(version)) {
        it(name + ': a client encodes it to the same bytes, decodes it to the same packet, or refuses it as a broker-only packet', () => {
          fc.assert(
            fc.property(arb, fc.integer({ min: 1, max: 9 }), (p, size) => {
              const bytes = encode(p, version);
              if ((SENDS >> typeOf(p)) & 1) expect(device().encode(p, version)).toEqual(bytes);
              const full = outcome(createDecoder(version, UNLIMITED), bytes, size);
              const got = outcome(device().createDecoder(version, UNLIMITED), bytes, size);
              if ((RECEIVES >> typeOf(p)) & 1) expect(got).toEqual(full);
              else expect(got).toEqual({ rule: 'MQTT-2.1.2', reasonCode: 0x82 });
            }),
            { numRuns: RUNS },
          );
        });
      }

      it('mutated streams of received packets: the same packets or the same error', () => {
        const received = kinds(version).filter(([n]) => !/^(CONNECT|SUBSCRIBE|UNSUBSCRIBE|PINGREQ)$/.test(n));
        const anyReceived = fc.oneof(...received.map(([, a]) => a));
        fc.assert(
          fc.property(
            fc.array(anyReceived, { minLength: 1, maxLength: 4 }),
            fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
            fc.integer({ min: 1, max: 64 }),
            (packets, flips, size) => {
              const bytes = concat(packets.map((p) => encode(p, version)));
              for (const [at, b] of flips) bytes[at % bytes.length] = b;
              const full = outcome(createDecoder(version, UNLIMITED), bytes, size);
              const got = outcome(device().createDecoder(version, UNLIMITED), bytes, size);
              if (isDeepStrictEqual(got, full)) return;
              // Else a mutation made a packet only a broker receives, which the device refuses at its
              // first byte (where the full codec decodes it, holds it, or fails on it or after it).
              expect(got).toEqual({ rule: 'MQTT-2.1.2', reasonCode: 0x82 });
              expect(brokerOnlyHeader(bytes)).toBe(true);
            },
          ),
          { numRuns: RUNS * 4 },
        );
      });

      it("refuses the application's bad packets as the full codec does", () => {
        const pub = (extra: object): Packet => ({ type: PacketType.PUBLISH, topic: 'a/b', payload: new Uint8Array(0), qos: 0, retain: false, dup: false, ...extra }) as Packet;
        const sub = (s: object): Packet => ({ type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: 'a', qos: 0, ...s }] }) as Packet;
        const bad: Packet[] = [
          pub({ topic: 'a/+' }),
          pub({ topic: '' }),
          pub({ topic: 'a\u0000b' }),
          pub({ qos: 3, packetId: 1 }),
          pub({ qos: 1, packetId: 0 }),
          pub({ dup: true }),
          pub({ payload: 'text' }),
          pub({ properties: { bogus: 1 } }),
          pub({ properties: { messageExpiryInterval: -1 } }),
          pub({ properties: { topicAlias: 0 } }),
          pub({ properties: { responseTopic: 'r/#' } }),
          pub({ properties: { userProperties: [['k']] } }),
          pub({ properties: { sessionExpiryInterval: 1 } }),
          sub({ topic: 'a/#/b' }),
          sub({ topic: 'a+' }),
          sub({ topic: '' }),
          sub({ qos: 3 }),
          { type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: [] } as Packet,
          { type: PacketType.UNSUBSCRIBE, packetId: 1, topics: ['a/#/b'] } as Packet,
          { type: PacketType.CONNECT, clientId: '', keepAliveSec: 60, clean: false } as Packet,
          { type: PacketType.CONNECT, clientId: 'c', keepAliveSec: 60, clean: true, password: new Uint8Array(1) } as Packet,
          { type: PacketType.CONNECT, clientId: 'c', keepAliveSec: 60, clean: true, will: { topic: 'w/+', payload: new Uint8Array(0), qos: 0, retain: false } } as Packet,
          { type: PacketType.CONNECT, clientId: 'c', keepAliveSec: 60, clean: true, will: { topic: 'w', payload: new Uint8Array(0), qos: 3, retain: false } } as unknown as Packet,
        ];
        // (3.1.1: a device build sends no reason code, and does not check for one)
        if (version === 5) bad.push({ type: PacketType.DISCONNECT, reasonCode: 0x05 } as Packet);
        // (a build without MQTT 5 does not look at the v5 subscription options at all)
        if (v5) bad.push(sub({ noLocal: true }), sub({ retainHandling: 3 }), sub({ noLocal: true, topic: '$share/g/a' }));
        for (const p of bad) {
          let want: unknown = 'encoded';
          try {
            encode(p, version);
          } catch (e) {
            want = (e as { rule: string }).rule;
          }
          let got: unknown = 'encoded';
          try {
            device().encode(p, version);
          } catch (e) {
            got = (e as { rule: string }).rule;
          }
          expect(got, JSON.stringify(p)).toEqual(want);
        }
      });
    });
  }
}
