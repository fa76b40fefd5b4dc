// Conversion between the codec's packet objects (firmware/mqtt/types.ts) and mqtt-packet 9's
// objects, and thin wrappers around mqtt-packet's generate and parser.
//
// mqtt-packet's shape (read from node_modules/mqtt-packet: parser.js, writeToStream.js):
// - `cmd` names ('connect', 'puback', ...), `messageId` for the packet identifier;
// - CONNECT: protocolId 'MQTT', protocolVersion, clean, keepalive, clientId, username, password
//   (Buffer), will {topic, payload, qos, retain, properties};
// - CONNACK: `returnCode` in 3.1.1, `reasonCode` in 5.0;
// - SUBSCRIBE subscriptions {topic, qos, nl, rap, rh}; SUBACK/UNSUBACK codes in `granted`;
//   UNSUBSCRIBE topics in `unsubscriptions`;
// - properties under the same names as ours except `subscriptionIdentifier` (a number, or an
//   array when repeated) and `userProperties` (an object: name -> value, or -> array of values
//   when a name repeats; so the order *between* different names is lost, and integer-like names
//   are enumerated first by JavaScript itself).
// - The parser adds `retain`, `qos`, `dup`, `length`, `topic`, `payload` to every packet; they
//   mean nothing outside PUBLISH and are ignored here.

import mqtt from 'mqtt-packet';
import { PacketType } from '../../firmware/mqtt/types';
import type { Packet, Properties, Version } from '../../firmware/mqtt/types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;

const CMD: { [t: number]: string } = {
  1: 'connect',
  2: 'connack',
  3: 'publish',
  4: 'puback',
  5: 'pubrec',
  6: 'pubrel',
  7: 'pubcomp',
  8: 'subscribe',
  9: 'suback',
  10: 'unsubscribe',
  11: 'unsuback',
  12: 'pingreq',
  13: 'pingresp',
  14: 'disconnect',
  15: 'auth',
};
const TYPE: { [cmd: string]: number } = {};
for (const k of Object.keys(CMD)) TYPE[CMD[Number(k)]] = Number(k);

function buf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function bytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** Our properties -> mqtt-packet's (undefined when there are none). */
export function propsToPeer(p: Properties | undefined): Obj | undefined {
  if (!p) return undefined;
  const out: Obj = {};
  for (const k of Object.keys(p) as Array<keyof Properties>) {
    const v = p[k];
    if (v === undefined) continue;
    if (k === 'userProperties') {
      const o: Obj = Object.create(null);
      for (const [name, value] of v as Array<[string, string]>) {
        if (!Object.prototype.hasOwnProperty.call(o, name)) o[name] = value;
        else if (Array.isArray(o[name])) o[name].push(value);
        else o[name] = [o[name], value];
      }
      out.userProperties = o;
    } else if (k === 'subscriptionIdentifiers') {
      const ids = v as number[];
      out.subscriptionIdentifier = ids.length === 1 ? ids[0] : ids.slice();
    } else if (v instanceof Uint8Array) {
      out[k] = buf(v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** mqtt-packet's properties -> ours (undefined when there are none). */
export function propsFromPeer(p: Obj): Properties | undefined {
  if (!p || typeof p !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(p)) {
    const v = p[k];
    if (v === undefined) continue;
    if (k === 'userProperties') {
      const list: Array<[string, string]> = [];
      for (const name of Object.keys(v)) {
        const val = v[name];
        if (Array.isArray(val)) for (const x of val) list.push([name, String(x)]);
        else list.push([name, String(val)]);
      }
      out.userProperties = list;
    } else if (k === 'subscriptionIdentifier') {
      out.subscriptionIdentifiers = Array.isArray(v) ? v.slice() : [v];
    } else if (v instanceof Uint8Array) {
      out[k] = bytes(v);
    } else {
      out[k] = v;
    }
  }
  return Object.keys(out).length ? (out as Properties) : undefined;
}

/** Our packet -> mqtt-packet's object for `version`. */
export function toPeer(packet: Packet, version: Version): Obj {
  const p = packet as Obj;
  const o: Obj = { cmd: CMD[p.type] };
  const props = version === 5 ? propsToPeer(p.properties) : undefined;
  switch (p.type as number) {
    case PacketType.CONNECT:
      o.protocolId = 'MQTT';
      o.protocolVersion = version;
      o.clean = p.clean;
      o.keepalive = p.keepAliveSec;
      o.clientId = p.clientId;
      if (p.username !== undefined) o.username = p.username;
      if (p.password !== undefined) o.password = buf(p.password);
      if (p.will) {
        o.will = { topic: p.will.topic, payload: buf(p.will.payload), qos: p.will.qos, retain: p.will.retain };
        const wp = version === 5 ? propsToPeer(p.will.properties) : undefined;
        if (wp) o.will.properties = wp;
      }
      break;
    case PacketType.CONNACK:
      o.sessionPresent = p.sessionPresent;
      if (version === 5) o.reasonCode = p.reasonCode;
      else o.returnCode = p.reasonCode;
      break;
    case PacketType.PUBLISH:
      o.topic = p.topic;
      o.payload = buf(p.payload);
      o.qos = p.qos;
      o.retain = p.retain;
      o.dup = p.dup;
      if (p.qos > 0) o.messageId = p.packetId;
      break;
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      o.messageId = p.packetId;
      if (version === 5) o.reasonCode = p.reasonCode === undefined ? 0 : p.reasonCode;
      break;
    case PacketType.SUBSCRIBE:
      o.messageId = p.packetId;
      o.subscriptions = p.subscriptions.map((s: Obj) => {
        const x: Obj = { topic: s.topic, qos: s.qos };
        if (version === 5) {
          x.nl = !!s.noLocal;
          x.rap = !!s.retainAsPublished;
          x.rh = s.retainHandling || 0;
        }
        return x;
      });
      break;
    case PacketType.SUBACK:
      o.messageId = p.packetId;
      o.granted = p.reasonCodes.slice();
      break;
    case PacketType.UNSUBSCRIBE:
      o.messageId = p.packetId;
      o.unsubscriptions = p.topics.slice();
      break;
    case PacketType.UNSUBACK:
      o.messageId = p.packetId;
      if (version === 5) o.granted = (p.reasonCodes || []).slice();
      break;
    case PacketType.PINGREQ:
    case PacketType.PINGRESP:
      break;
    case PacketType.DISCONNECT:
    case PacketType.AUTH:
      if (version === 5) o.reasonCode = p.reasonCode === undefined ? 0 : p.reasonCode;
      break;
    default:
      throw new Error('toPeer: unknown type ' + p.type);
  }
  if (props) o.properties = props;
  return o;
}

/** mqtt-packet's parsed object -> our packet shape for `version`. */
export function fromPeer(o: Obj, version: Version): Packet {
  const type = TYPE[o.cmd];
  if (!type) throw new Error('fromPeer: unknown cmd ' + o.cmd);
  const p: Obj = { type };
  const props = version === 5 ? propsFromPeer(o.properties) : undefined;
  switch (type) {
    case PacketType.CONNECT:
      p.protocolVersion = o.protocolVersion;
      p.clientId = o.clientId;
      p.keepAliveSec = o.keepalive;
      p.clean = o.clean;
      if (o.username !== undefined) p.username = o.username;
      if (o.password !== undefined) p.password = bytes(o.password);
      if (o.will) {
        p.will = { topic: o.will.topic, payload: bytes(o.will.payload), qos: o.will.qos, retain: o.will.retain };
        const wp = version === 5 ? propsFromPeer(o.will.properties) : undefined;
        if (wp) p.will.properties = wp;
      }
      break;
    case PacketType.CONNACK:
      p.sessionPresent = o.sessionPresent;
      p.reasonCode = version === 5 ? o.reasonCode : o.returnCode;
      break;
    case PacketType.PUBLISH:
      p.topic = o.topic;
      p.payload = bytes(o.payload);
      p.qos = o.qos;
      p.retain = o.retain;
      p.dup = o.dup;
      if (o.qos > 0) p.packetId = o.messageId;
      break;
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      p.packetId = o.messageId;
      if (version === 5) p.reasonCode = o.reasonCode;
      break;
    case PacketType.SUBSCRIBE:
      p.packetId = o.messageId;
      p.subscriptions = o.subscriptions.map((s: Obj) => {
        const x: Obj = { topic: s.topic, qos: s.qos };
        if (version === 5) {
          x.noLocal = s.nl;
          x.retainAsPublished = s.rap;
          x.retainHandling = s.rh;
        }
        return x;
      });
      break;
    case PacketType.SUBACK:
      p.packetId = o.messageId;
      p.reasonCodes = o.granted.slice();
      break;
    case PacketType.UNSUBSCRIBE:
      p.packetId = o.messageId;
      p.topics = o.unsubscriptions.slice();
      break;
    case PacketType.UNSUBACK:
      p.packetId = o.messageId;
      if (version === 5) p.reasonCodes = (o.granted || []).slice();
      break;
    case PacketType.DISCONNECT:
    case PacketType.AUTH:
      if (version === 5) p.reasonCode = o.reasonCode;
      break;
  }
  if (props) p.properties = props;
  return p as Packet;
}

/** mqtt-packet's bytes for our packet; throws if mqtt-packet refuses it. */
export function peerGenerate(packet: Packet, version: Version): Uint8Array {
  const out = mqtt.generate(toPeer(packet, version), { protocolVersion: version });
  return new Uint8Array(out);
}

/** Every packet mqtt-packet's parser finds in `data`; throws the parser's error if it emits one. */
export function peerParse(data: Uint8Array, version: Version): Obj[] {
  const parser = mqtt.parser({ protocolVersion: version });
  const packets: Obj[] = [];
  let error: unknown = null;
  parser.on('packet', (p: Obj) => packets.push(p));
  parser.on('error', (e: unknown) => {
    if (error === null) error = e;
  });
  const left = parser.parse(buf(data));
  if (error !== null) throw error;
  if (left !== 0) throw new Error('mqtt-packet left ' + left + ' bytes unparsed');
  return packets;
}
