// Packet objects -> bytes. Every field is checked first; a bad packet is a ProtocolError, never
// bad bytes on the wire. The buffer is sized exactly, then written once.

import { ProtocolError, Reason } from './errors';
import { propsSize, writeProps, WILL, whereOf } from './properties';
import { PacketType } from './types';
import type { Packet, Properties, QoS, Subscription, Version } from './types';
import { utf8Length } from './utf8';
import { VARINT_MAX, Writer, varintSize } from './wire';

function misuse(rule: string, msg: string): ProtocolError {
  return new ProtocolError(rule, msg, Reason.PROTOCOL_ERROR);
}

function isU16(v: unknown): boolean {
  return typeof v === 'number' && v >= 0 && v <= 0xffff && Math.floor(v) === v;
}

function checkId(id: unknown, version: Version): number {
  if (!isU16(id) || id === 0) {
    throw misuse(version === 5 ? '2.2.1-3' : '2.3.1-1', 'packet id must be 1..65535');
  }
  return id as number;
}

function checkQos(q: unknown, what: string): QoS {
  if (q !== 0 && q !== 1 && q !== 2) throw misuse('3.3.1-4', what + ' QoS not 0..2');
  return q;
}

function checkByte(v: unknown, what: string): number {
  if (typeof v !== 'number' || v < 0 || v > 255 || Math.floor(v) !== v) throw misuse('2.4', what + ' not a byte');
  return v;
}

/** Size of a length-prefixed string, after checking it. */
function strSize(s: unknown, what: string): number {
  if (typeof s !== 'string') throw misuse('1.5.4', what + ' not a string');
  const n = utf8Length(s);
  if (n > 0xffff) throw misuse('1.5.4', what + ' over 65535 bytes');
  return 2 + n;
}

function binSize(b: unknown, what: string): number {
  if (!(b instanceof Uint8Array)) throw misuse('1.5.6', what + ' not a Uint8Array');
  if (b.length > 0xffff) throw misuse('1.5.6', what + ' over 65535 bytes');
  return 2 + b.length;
}

/** A topic name in PUBLISH or a will: no wildcards [MQTT-3.3.2-2], not empty [MQTT-4.7.3-1]. */
export function checkTopicName(topic: unknown, emptyOk: boolean): void {
  if (typeof topic !== 'string') throw misuse('3.3.2-1', 'topic not a string');
  if (topic.length === 0 && !emptyOk) throw misuse('4.7.3-1', 'empty topic');
  if (topic.indexOf('+') >= 0 || topic.indexOf('#') >= 0) {
    throw new ProtocolError('3.3.2-2', 'wildcard in topic: ' + topic, Reason.TOPIC_NAME_INVALID);
  }
}

/** A topic filter: '#' last and alone in its level [MQTT-4.7.1-2], '+' alone in its level [MQTT-4.7.1-3]. */
export function checkTopicFilter(filter: unknown): void {
  if (typeof filter !== 'string') throw misuse('4.7.3-1', 'filter not a string');
  const n = filter.length;
  if (n === 0) throw misuse('4.7.3-1', 'empty filter');
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0x23 /* # */ || c === 0x2b /* + */) {
      const before = i === 0 || filter.charCodeAt(i - 1) === 0x2f;
      const after = c === 0x23 ? i === n - 1 : i === n - 1 || filter.charCodeAt(i + 1) === 0x2f;
      if (!before || !after) {
        throw misuse(c === 0x23 ? '4.7.1-2' : '4.7.1-3', 'bad wildcard: ' + filter);
      }
    }
  }
}

function v5Only(version: Version, props: Properties | undefined): void {
  if (version !== 5 && props) {
    for (const k in props) {
      if ((props as { [k: string]: unknown })[k] !== undefined) {
        throw misuse('2.2.2', 'properties need v5');
      }
    }
  }
}

/** Size of a property block's contents: -1 for 3.1.1 (no block at all). */
function propInner(version: Version, props: Properties | undefined, where: number): number {
  v5Only(version, props);
  return version === 5 ? propsSize(props, where) : -1;
}

/** Bytes a property block takes, length prefix included. */
function blockSize(inner: number): number {
  return inner < 0 ? 0 : varintSize(inner) + inner;
}

function start(type: number, flags: number, rem: number): Writer {
  if (rem > VARINT_MAX) throw new ProtocolError('2.2.3', 'packet too large', Reason.PACKET_TOO_LARGE);
  const w = new Writer(1 + varintSize(rem) + rem);
  w.u8((type << 4) | flags);
  w.varint(rem);
  return w;
}

/** Writes a property block whose contents are `inner` bytes long. */
function props(w: Writer, p: Properties | undefined, inner: number): void {
  if (inner < 0) return;
  w.varint(inner);
  writeProps(w, p);
}

function reasonOk(code: unknown, what: string): number {
  return checkByte(code === undefined ? 0 : code, what + ' reason code');
}

/**
 * Encodes one control packet for protocol version 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
 * Throws ProtocolError when the packet is not valid for that version.
 */
export function encode(packet: Packet, version: Version): Uint8Array {
  if (version !== 4 && version !== 5) throw misuse('3.1.2-2', 'version must be 4 or 5');
  if (!packet || typeof packet !== 'object') throw misuse('2.1', 'not a packet');
  switch (packet.type) {
    case PacketType.PUBLISH: {
      const qos = checkQos(packet.qos, 'PUBLISH');
      const p = packet.properties;
      const alias = version === 5 && p !== undefined && p.topicAlias !== undefined;
      checkTopicName(packet.topic, alias);
      if (packet.dup && qos === 0) throw misuse('3.3.1-2', 'DUP on QoS 0');
      const payload = packet.payload;
      if (!(payload instanceof Uint8Array)) throw misuse('3.3.3', 'payload not a Uint8Array');
      const pb = propInner(version, p, whereOf(PacketType.PUBLISH));
      const rem = strSize(packet.topic, 'topic') + (qos > 0 ? 2 : 0) + blockSize(pb) + payload.length;
      const id = qos > 0 ? checkId(packet.packetId, version) : 0;
      const w = start(PacketType.PUBLISH, (packet.dup ? 8 : 0) | (qos << 1) | (packet.retain ? 1 : 0), rem);
      w.str(packet.topic);
      if (qos > 0) w.u16(id);
      props(w, p, pb);
      w.bytes(payload);
      return w.buf;
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP: {
      const id = checkId(packet.packetId, version);
      const flags = packet.type === PacketType.PUBREL ? 2 : 0;
      const code = reasonOk(packet.reasonCode, 'ack');
      const pb = propInner(version, packet.properties, whereOf(packet.type));
      if (version === 4 || (code === 0 && pb === 0)) {
        const w = start(packet.type, flags, 2);
        w.u16(id);
        return w.buf;
      }
      if (pb === 0) {
        const w = start(packet.type, flags, 3);
        w.u16(id);
        w.u8(code);
        return w.buf;
      }
      const w = start(packet.type, flags, 3 + blockSize(pb));
      w.u16(id);
      w.u8(code);
      props(w, packet.properties, pb);
      return w.buf;
    }
    case PacketType.PINGREQ:
    case PacketType.PINGRESP:
      return start(packet.type, 0, 0).buf;
    case PacketType.CONNECT:
      return encodeConnect(packet, version);
    case PacketType.CONNACK: {
      const code = reasonOk(packet.reasonCode, 'CONNACK');
      if (version === 4 && code > 5) throw misuse('3.2.2-5', 'return code > 5');
      const pb = propInner(version, packet.properties, whereOf(PacketType.CONNACK));
      const w = start(PacketType.CONNACK, 0, 2 + blockSize(pb));
      w.u8(packet.sessionPresent ? 1 : 0);
      w.u8(code);
      props(w, packet.properties, pb);
      return w.buf;
    }
    case PacketType.SUBSCRIBE: {
      const id = checkId(packet.packetId, version);
      const subs = packet.subscriptions;
      if (!Array.isArray(subs) || subs.length === 0) {
        throw misuse(version === 5 ? '3.8.3-2' : '3.8.3-3', 'no topic filter');
      }
      const pb = propInner(version, packet.properties, whereOf(PacketType.SUBSCRIBE));
      let rem = 2 + blockSize(pb);
      for (let i = 0; i < subs.length; i++) {
        const s = subs[i];
        checkTopicFilter(s && s.topic);
        checkQos(s.qos, 'subscription');
        if (version === 5) {
          if (s.retainHandling !== undefined && s.retainHandling !== 0 && s.retainHandling !== 1 && s.retainHandling !== 2) {
            throw misuse('3.8.3-6', 'retainHandling > 2');
          }
          if (s.noLocal && s.topic.indexOf('$share/') === 0) throw misuse('3.8.3-4', 'noLocal on shared');
        } else if (s.noLocal || s.retainAsPublished || s.retainHandling) {
          throw misuse('3.8.3-4', 'options need v5');
        }
        rem += strSize(s.topic, 'topic filter') + 1;
      }
      const w = start(PacketType.SUBSCRIBE, 2, rem);
      w.u16(id);
      props(w, packet.properties, pb);
      for (let i = 0; i < subs.length; i++) {
        const s: Subscription = subs[i];
        w.str(s.topic);
        w.u8(s.qos | (s.noLocal ? 4 : 0) | (s.retainAsPublished ? 8 : 0) | ((s.retainHandling || 0) << 4));
      }
      return w.buf;
    }
    case PacketType.SUBACK:
    case PacketType.UNSUBACK: {
      const id = checkId(packet.packetId, version);
      const codes = packet.reasonCodes || [];
      if (!Array.isArray(codes)) throw misuse('3.9.3', 'reasonCodes not an array');
      if (packet.type === PacketType.UNSUBACK && version === 4) {
        if (codes.length) throw misuse('3.11.3', 'reason codes need v5');
        v5Only(version, packet.properties);
        const w = start(PacketType.UNSUBACK, 0, 2);
        w.u16(id);
        return w.buf;
      }
      if (codes.length === 0) throw misuse('3.9.3', 'no reason codes');
      for (let i = 0; i < codes.length; i++) checkByte(codes[i], 'reason code');
      const pb = propInner(version, packet.properties, whereOf(packet.type));
      const w = start(packet.type, 0, 2 + blockSize(pb) + codes.length);
      w.u16(id);
      props(w, packet.properties, pb);
      for (let i = 0; i < codes.length; i++) w.u8(codes[i]);
      return w.buf;
    }
    case PacketType.UNSUBSCRIBE: {
      const id = checkId(packet.packetId, version);
      const topics = packet.topics;
      if (!Array.isArray(topics) || topics.length === 0) throw misuse('3.10.3-2', 'no topic filter');
      const pb = propInner(version, packet.properties, whereOf(PacketType.UNSUBSCRIBE));
      let rem = 2 + blockSize(pb);
      for (let i = 0; i < topics.length; i++) {
        checkTopicFilter(topics[i]);
        rem += strSize(topics[i], 'topic filter');
      }
      const w = start(PacketType.UNSUBSCRIBE, 2, rem);
      w.u16(id);
      props(w, packet.properties, pb);
      for (let i = 0; i < topics.length; i++) w.str(topics[i]);
      return w.buf;
    }
    case PacketType.DISCONNECT:
    case PacketType.AUTH: {
      if (packet.type === PacketType.AUTH && version !== 5) throw misuse('2.1.2', 'AUTH needs MQTT 5');
      const code = reasonOk(packet.reasonCode, 'DISCONNECT');
      if (version === 4) {
        if (code !== 0) throw misuse('3.14', 'reason code needs v5');
        v5Only(version, packet.properties);
        return start(PacketType.DISCONNECT, 0, 0).buf;
      }
      const pb = propInner(version, packet.properties, whereOf(packet.type));
      if (code === 0 && pb === 0) return start(packet.type, 0, 0).buf;
      const w = start(packet.type, 0, 1 + (pb === 0 ? 0 : blockSize(pb)));
      w.u8(code);
      if (pb > 0) props(w, packet.properties, pb);
      return w.buf;
    }
    default:
      throw misuse('2.1.2', 'packet type ' + (packet as { type: unknown }).type);
  }
}

function encodeConnect(
  packet: Extract<Packet, { type: PacketType.CONNECT }>,
  version: Version,
): Uint8Array {
  const ka = packet.keepAliveSec;
  if (!isU16(ka)) throw misuse('3.1.2-10', 'keepAliveSec > 65535');
  let flags = packet.clean ? 2 : 0;
  const pb = propInner(version, packet.properties, whereOf(PacketType.CONNECT));
  let rem = 10 + blockSize(pb) + strSize(packet.clientId, 'clientId');
  if (version === 4 && packet.clientId.length === 0 && !packet.clean) {
    throw misuse('3.1.3-7', 'empty clientId needs clean');
  }
  const will = packet.will;
  let wpb = -1;
  if (will) {
    checkQos(will.qos, 'will');
    checkTopicName(will.topic, false);
    wpb = propInner(version, will.properties, WILL);
    rem += blockSize(wpb) + strSize(will.topic, 'will topic') + binSize(will.payload, 'will payload');
    flags |= 4 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  }
  if (packet.username !== undefined) {
    rem += strSize(packet.username, 'username');
    flags |= 0x80;
  }
  if (packet.password !== undefined) {
    if (version === 4 && packet.username === undefined) throw misuse('3.1.2-22', 'password, no username');
    rem += binSize(packet.password, 'password');
    flags |= 0x40;
  }
  const w = start(PacketType.CONNECT, 0, rem);
  w.str('MQTT');
  w.u8(version);
  w.u8(flags);
  w.u16(ka);
  props(w, packet.properties, pb);
  w.str(packet.clientId);
  if (will) {
    props(w, will.properties, wpb);
    w.str(will.topic);
    w.bin(will.payload);
  }
  if (packet.username !== undefined) w.str(packet.username);
  if (packet.password !== undefined) w.bin(packet.password);
  return w.buf;
}
