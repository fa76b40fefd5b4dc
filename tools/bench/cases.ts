// Benchmark cases: the same packet content expressed for wren's codec and for mqtt-packet, the
// per-op functions that are timed, and a correctness check run before any timing.
//
// Fairness rules:
//  - encode: ours `encode(packet, version)`, theirs `mqtt.generate(obj, { protocolVersion })`.
//  - decode: both sides get the SAME bytes, one whole packet per call, into ONE long-lived decoder
//    per side: ours `createDecoder(version, 1 << 28).push(bytes)`, theirs
//    `mqtt.parser({ protocolVersion }).parse(bytes)` counting 'packet' events (as MQTT.js does).
//  - every op's result is counted and folded into a sink (payload length etc.), and the harness
//    checks that each batch of n ops produced n results, so neither side can skip work.

import mqtt from 'mqtt-packet';
import type { Packet as TheirPacket } from 'mqtt-packet';
import { createDecoder, encode } from '../../firmware/mqtt/index';
import { PacketType } from '../../firmware/mqtt/types';
import type { Packet, Version } from '../../firmware/mqtt/index';

/** A timed operation: performs n ops, returns how many produced a correct-looking result. */
export type Op = (n: number) => number;

export interface Row {
  name: string;
  version: Version;
  op: 'encode' | 'decode';
  /** Required ratio ours/theirs. */
  target: number;
  ours: Op;
  theirs: Op;
}

/** Folded results of every timed op, so nothing can be optimised away. Read at the end. */
let sink = 0;
export function sinkValue(): number {
  return sink;
}

/** Deterministic pseudo-random bytes (xorshift32) as a Buffer (a Uint8Array: fine for both sides). */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const TOPIC = 'sensors/dev-0042/tmp'; // 20 bytes
if (Buffer.byteLength(TOPIC) !== 20) throw new Error('topic must be 20 bytes');

/** Fields both decoders must agree on, in a neutral shape (compared as JSON). */
type Norm = { [k: string]: unknown };

interface CaseDef {
  name: string;
  ours(version: Version): Packet;
  theirs(version: Version): TheirPacket;
  /** Neutral view of a decoded packet, each side. */
  normOurs(p: Packet): Norm;
  normTheirs(p: TheirPacket): Norm;
  /** What a decoded packet adds to the sink (same quantity both sides). */
  weighOurs(p: Packet): number;
  weighTheirs(p: TheirPacket): number;
  encodeTarget: number;
  decodeTarget: number;
}

function publishCase(name: string, size: number, encodeTarget: number, decodeTarget: number): CaseDef {
  const payload = bytes(size, size);
  return {
    name: name,
    ours: () => ({
      type: PacketType.PUBLISH,
      topic: TOPIC,
      payload: payload,
      qos: 1,
      retain: false,
      dup: false,
      packetId: 4242,
    }),
    theirs: () => ({
      cmd: 'publish',
      topic: TOPIC,
      payload: payload,
      qos: 1,
      retain: false,
      dup: false,
      messageId: 4242,
    }),
    normOurs: (p) => {
      if (p.type !== PacketType.PUBLISH) return { type: p.type };
      return {
        type: 'publish',
        topic: p.topic,
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
        id: p.packetId,
        len: p.payload.length,
        payload: Buffer.from(p.payload).equals(payload),
      };
    },
    normTheirs: (p) => {
      if (p.cmd !== 'publish') return { type: p.cmd };
      const pl = p.payload as Buffer;
      return {
        type: 'publish',
        topic: p.topic,
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
        id: p.messageId,
        len: pl.length,
        payload: Buffer.from(pl).equals(payload),
      };
    },
    weighOurs: (p) => (p as { payload: Uint8Array }).payload.length,
    weighTheirs: (p) => (p as { payload: Buffer }).payload.length,
    encodeTarget: encodeTarget,
    decodeTarget: decodeTarget,
  };
}

const PASSWORD = Buffer.from('secret-token-1234');
const WILL_PAYLOAD = Buffer.from('offline');

const connectCase: CaseDef = {
  name: 'connect',
  ours: (version) => ({
    type: PacketType.CONNECT,
    clientId: 'wren-bench-client-01',
    keepAliveSec: 60,
    clean: true,
    username: 'device-0042',
    password: PASSWORD,
    will: {
      topic: 'devices/0042/status',
      payload: WILL_PAYLOAD,
      qos: 1,
      retain: true,
      properties: version === 5 ? { willDelayInterval: 30 } : undefined,
    },
    properties: version === 5 ? { sessionExpiryInterval: 3600, receiveMaximum: 20 } : undefined,
  }),
  theirs: (version) => {
    const p: TheirPacket = {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: version,
      clientId: 'wren-bench-client-01',
      keepalive: 60,
      clean: true,
      username: 'device-0042',
      password: PASSWORD,
      will: { topic: 'devices/0042/status', payload: WILL_PAYLOAD, qos: 1, retain: true },
    };
    if (version === 5) {
      p.properties = { sessionExpiryInterval: 3600, receiveMaximum: 20 };
      p.will!.properties = { willDelayInterval: 30 };
    }
    return p;
  },
  normOurs: (p) => {
    if (p.type !== PacketType.CONNECT) return { type: p.type };
    const w = p.will;
    return {
      type: 'connect',
      version: p.protocolVersion,
      clientId: p.clientId,
      keepAlive: p.keepAliveSec,
      clean: p.clean,
      username: p.username,
      password: p.password ? Buffer.from(p.password).toString() : undefined,
      willTopic: w && w.topic,
      willPayload: w && Buffer.from(w.payload).toString(),
      willQos: w && w.qos,
      willRetain: w && w.retain,
      willDelay: w && w.properties ? w.properties.willDelayInterval : undefined,
      sessionExpiry: p.properties ? p.properties.sessionExpiryInterval : undefined,
      receiveMaximum: p.properties ? p.properties.receiveMaximum : undefined,
    };
  },
  normTheirs: (p) => {
    if (p.cmd !== 'connect') return { type: p.cmd };
    const w = p.will;
    return {
      type: 'connect',
      version: p.protocolVersion,
      clientId: p.clientId,
      keepAlive: p.keepalive,
      clean: p.clean,
      username: p.username,
      password: p.password ? Buffer.from(p.password).toString() : undefined,
      willTopic: w && w.topic,
      willPayload: w && Buffer.from(w.payload as Buffer).toString(),
      willQos: w && w.qos,
      willRetain: w && w.retain,
      willDelay: w && w.properties ? w.properties.willDelayInterval : undefined,
      sessionExpiry: p.properties ? p.properties.sessionExpiryInterval : undefined,
      receiveMaximum: p.properties ? p.properties.receiveMaximum : undefined,
    };
  },
  weighOurs: (p) => (p as { clientId: string }).clientId.length + (p as { password: Uint8Array }).password.length,
  weighTheirs: (p) => (p as { clientId: string }).clientId.length + (p as { password: Buffer }).password.length,
  encodeTarget: 1,
  decodeTarget: 1,
};

const GRANTED = [0, 1, 2];

const subackCase: CaseDef = {
  name: 'suback',
  ours: () => ({ type: PacketType.SUBACK, packetId: 77, reasonCodes: GRANTED }),
  theirs: () => ({ cmd: 'suback', messageId: 77, granted: GRANTED }),
  normOurs: (p) =>
    p.type === PacketType.SUBACK ? { type: 'suback', id: p.packetId, codes: p.reasonCodes } : { type: p.type },
  normTheirs: (p) => (p.cmd === 'suback' ? { type: 'suback', id: p.messageId, codes: p.granted } : { type: p.cmd }),
  weighOurs: (p) => (p as { reasonCodes: number[] }).reasonCodes.length,
  weighTheirs: (p) => (p as { granted: number[] }).granted.length,
  encodeTarget: 1,
  decodeTarget: 1,
};

export const CASES: CaseDef[] = [
  publishCase('publish-32B', 32, 1.5, 2.0),
  publishCase('publish-1KB', 1024, 1, 1),
  publishCase('publish-64KB', 65536, 1, 1),
  connectCase,
  subackCase,
];

function same(a: Norm, b: Norm): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function decodeOursOnce(version: Version, buf: Uint8Array): Packet {
  const out = createDecoder(version, 1 << 28).push(buf);
  if (out.length !== 1) throw new Error('ours decoded ' + out.length + ' packets, want 1');
  return out[0];
}

function decodeTheirsOnce(version: Version, buf: Uint8Array): TheirPacket {
  const got: TheirPacket[] = [];
  const parser = mqtt.parser({ protocolVersion: version });
  parser.on('packet', (p) => got.push(p));
  parser.on('error', (e) => {
    throw e;
  });
  parser.parse(Buffer.from(buf));
  if (got.length !== 1) throw new Error('mqtt-packet decoded ' + got.length + ' packets, want 1');
  return got[0];
}

export interface Prepared {
  rows: Row[];
  /** Notes from the pre-timing checks (e.g. encodings that differ byte-wise but decode equal). */
  notes: string[];
}

/**
 * Builds the 20 rows. Before returning, checks for each case and version that: both encoders
 * produce bytes both decoders accept, and all four decodings agree on every field (topic, payload
 * length and content, QoS, ids, will, properties). Throws on any disagreement.
 */
export function prepare(): Prepared {
  const rows: Row[] = [];
  const notes: string[] = [];
  const versions: Version[] = [4, 5];
  for (const c of CASES) {
    for (const version of versions) {
      const tag = c.name + ' v' + version;
      const ourPacket = c.ours(version);
      const theirPacket = c.theirs(version);
      const opts = { protocolVersion: version };
      const ourBytes = encode(ourPacket, version);
      const theirBytes = mqtt.generate(theirPacket, opts);

      // Cross-check: every encoding through every decoder gives the same fields.
      const want = c.normOurs(ourPacket);
      const views: Array<[string, Norm]> = [
        ['ours(our bytes)', c.normOurs(decodeOursOnce(version, ourBytes))],
        ['ours(their bytes)', c.normOurs(decodeOursOnce(version, theirBytes))],
        ['theirs(our bytes)', c.normTheirs(decodeTheirsOnce(version, ourBytes))],
        ['theirs(their bytes)', c.normTheirs(decodeTheirsOnce(version, theirBytes))],
      ];
      // The input packet, as ours would report it after a round trip (protocolVersion is set by the decoder).
      if (ourPacket.type === PacketType.CONNECT) want.version = version;
      for (const [label, got] of views) {
        if (!same(got, want)) {
          throw new Error(
            tag + ': ' + label + ' decodes to ' + JSON.stringify(got) + ', expected ' + JSON.stringify(want),
          );
        }
      }
      if (!Buffer.from(ourBytes).equals(theirBytes)) {
        notes.push(
          tag + ': encodings differ byte-wise (' + ourBytes.length + ' vs ' + theirBytes.length + ' bytes) but decode equal',
        );
      }

      // Decode input: the same bytes for both sides (mqtt-packet's encoding, as a peer would send it).
      const wire = theirBytes;
      const ourLen = ourBytes.length;
      const theirLen = theirBytes.length;

      const weighOurs = c.weighOurs;
      const weighTheirs = c.weighTheirs;

      const encOurs: Op = (n) => {
        let good = 0;
        for (let i = 0; i < n; i++) {
          const b = encode(ourPacket, version);
          if (b.length === ourLen) good++;
          sink += b[b.length - 1];
        }
        return good;
      };
      const encTheirs: Op = (n) => {
        let good = 0;
        for (let i = 0; i < n; i++) {
          const b = mqtt.generate(theirPacket, opts);
          if (b.length === theirLen) good++;
          sink += b[b.length - 1];
        }
        return good;
      };

      const decoder = createDecoder(version, 1 << 28);
      const decOurs: Op = (n) => {
        let good = 0;
        for (let i = 0; i < n; i++) {
          const out = decoder.push(wire);
          for (let j = 0; j < out.length; j++) {
            good++;
            sink += weighOurs(out[j]);
          }
        }
        return good;
      };

      const parser = mqtt.parser(opts);
      let parsed = 0;
      parser.on('packet', (p: TheirPacket) => {
        parsed++;
        sink += weighTheirs(p);
      });
      parser.on('error', (e: Error) => {
        throw e;
      });
      const decTheirs: Op = (n) => {
        const before = parsed;
        for (let i = 0; i < n; i++) parser.parse(wire);
        return parsed - before;
      };

      rows.push({ name: c.name, version: version, op: 'encode', target: c.encodeTarget, ours: encOurs, theirs: encTheirs });
      rows.push({ name: c.name, version: version, op: 'decode', target: c.decodeTarget, ours: decOurs, theirs: decTheirs });
    }
  }
  return { rows: rows, notes: notes };
}
