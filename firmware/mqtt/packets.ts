// Every control packet's layout, written once for both directions (wire.ts explains the modes):
// body() reads a packet into a new object, or checks and counts/writes the application's packet.
// The checks sit after the field they are about, so the decoder and the encoder enforce the same
// rules from the same lines: topic names and filters, packet ids, flags, reason codes per packet,
// session present on a refused CONNACK, and the v5 properties (properties.ts).

import { malformed, Reason, refuse } from './errors';
import { props, propsSize, W } from './properties';
import { PacketType } from './types';
import type { Packet } from './types';
import { begin, bin, bytes, EMPTY, end, isUint, Mode, mode, pos, rest, setVersion, str, u16, u8, ver } from './wire';

/** Fixed-header flags of every type but PUBLISH: 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE, else 0. */
export function fixedFlags(type: number): number {
  return (0x540 >> (type - 1)) & 2;
}

/** PUBLISH flags: QoS 3 [MQTT-3.3.1-4] and DUP on QoS 0 [MQTT-3.3.1-2] are malformed. */
export function publishFlags(flags: number): number {
  if ((flags & 6) === 6) malformed('3.3.1-4', 'QoS 3');
  if (flags & 8 && !(flags & 6)) malformed('3.3.1-2', 'DUP on QoS 0');
  return flags;
}

/** A topic name (PUBLISH, will): not empty [MQTT-4.7.3-1] unless a v5 topic alias stands in, no wildcards [MQTT-3.3.2-2]. */
export function checkTopicName(topic: unknown, emptyOk: boolean): void {
  if (typeof topic !== 'string' || !(topic || emptyOk)) refuse('4.7.3-1', 'no topic');
  if (/[+#]/.test(topic)) refuse('3.3.2-2', 'wildcard', Reason.TOPIC_NAME_INVALID);
}

/** A topic filter: not empty [MQTT-4.7.3-1], '#' last and alone in its level [MQTT-4.7.1-2], '+' alone in its level [MQTT-4.7.1-3]. */
export function checkTopicFilter(filter: unknown): void {
  if (typeof filter !== 'string' || !filter) refuse('4.7.3-1', 'no filter');
  const h = filter.indexOf('#');
  if (h >= 0 && (h < filter.length - 1 || (h > 0 && filter[h - 1] !== '/'))) refuse('4.7.1-2', '# misplaced');
  if (/[^\/]\+|\+[^\/]/.test(filter)) refuse('4.7.1-3', '+ misplaced');
}

// Reason codes each packet type may carry in 5.0 (section 2.4 and each packet's table), one character
// per code so they stay ASCII in the bundle: code + 0x20 for 0x00..0x1f, code - 0x40 for 0x80..0xbf.
const V5_CODES = [
  '',
  '',
  ' @ABCDEFGHIJLPUWYZ[\\]_', // CONNACK: 00 80-8a 8c 90 95 97 99-9d 9f
  '',
  ' 0@CGPQWY', // PUBACK: 00 10 80 83 87 90 91 97 99
  ' 0@CGPQWY', // PUBREC: the same
  ' R', // PUBREL: 00 92
  ' R', // PUBCOMP: 00 92
  '',
  ' !"@CGOQW^ab', // SUBACK: 00 01 02 80 83 87 8f 91 97 9e a1 a2
  '',
  ' 1@CGOQ', // UNSUBACK: 00 11 80 83 87 8f 91
  '',
  '',
  ' $@ABCGIKMNOPSTUVWXYZ[\\]^_`ab', // DISCONNECT: 00 04 80-83 87 89 8b 8d-90 93-a2
  ' 89', // AUTH: 00 18 19
];

/** A reason code the packet type may carry (3.1.1: CONNACK 0..5, SUBACK 0, 1, 2, 0x80, else none but 0). */
function checkCode(type: number, c: any): number {
  const valid = ver > 4 ? V5_CODES[type] : type === 2 ? ' !"#$%' : type === 9 ? ' !"@' : ' ';
  if (c !== (c & 0xff) || valid.indexOf(String.fromCharCode(c < 0x20 ? c + 0x20 : c < 0x80 ? 0 : c - 0x40)) < 0) {
    refuse('3.' + type + (type === 9 || type === 11 ? '.3-2' : type !== 2 ? '.2-1' : ver > 4 ? '.2-8' : '.2'), 'bad reason code ' + c);
  }
  return c;
}

/** SIZE / WRITE: a 2-bit field of the application's packet (QoS, retain handling), 3 included. */
function twoBits(v: any, rule: string): number {
  if (v !== (v & 3)) refuse(rule, 'not 0..2');
  return v;
}

/** A field: read into o[key], or o[key] checked by the primitive and counted/written. */
function field(o: any, key: string, primitive: (v?: any) => any): any {
  const v = primitive(o[key]);
  if (!mode) o[key] = v;
  return v;
}

/** READ: sets o[key] (a value the encoder does not write itself, e.g. from flags). */
function put(o: any, key: string, v: any): void {
  if (!mode) o[key] = v;
}

/** Packet Identifier, 1..65535 [MQTT-2.2.1-3] / [MQTT-2.3.1-1]. */
function packetId(o: any): void {
  const id = field(o, 'packetId', u16);
  if (!id || !isUint(id, 0xffff)) refuse(ver > 4 ? '2.2.1-3' : '2.3.1-1', 'bad packet id');
}

/** A non-empty list: READ until the packet ends; SIZE / WRITE each element of the array o[key]. */
function list(o: any, key: string, rule: string, item: (x?: any) => any): void {
  const a = mode ? o[key] : (o[key] = []);
  if (!Array.isArray(a)) refuse(rule, 'no ' + key);
  let i = 0;
  for (; mode ? i < a.length : pos < end; i++) {
    const x = item(a[i]);
    if (!mode) a.push(x);
  }
  if (!i) refuse(rule, 'no ' + key);
}

/**
 * v5 acks, DISCONNECT, AUTH: [reason code [properties]], the code omitted when it is 0 and nothing
 * follows, the properties when empty. Decoded, reasonCode is always set. 3.1.1: nothing (the
 * encoder refuses a reason code other than 0, and properties).
 */
function tail(o: any, type: number): void {
  const where = 1 << type;
  if (mode) {
    const c = checkCode(type, o.reasonCode === undefined ? 0 : o.reasonCode);
    const n = propsSize(o, where);
    if (ver > 4 && (c || n)) {
      u8(c);
      if (n) props(o, where);
    }
  } else if (ver > 4) {
    o.reasonCode = pos < end ? checkCode(type, u8()) : 0;
    if (pos < end) props(o, where);
  }
}

/** READ: copy a PUBLISH payload out of the chunk unless it is at least half of this many bytes. */
let viewFrom = 0;

/**
 * The variable header and payload of one packet of `type` with fixed-header `flags` (SIZE / WRITE:
 * the flags fixedFlags() gives). Returns the flags to write (PUBLISH: from dup, qos, retain).
 */
export function body(o: any, type: number, flags: number): number {
  const where = 1 << type;
  switch (type) {
    case PacketType.PUBLISH: {
      if (mode) flags = (o.dup ? 8 : 0) | (twoBits(o.qos, '3.3.1-4') << 1) | (o.retain ? 1 : 0);
      publishFlags(flags);
      const qos = (flags >> 1) & 3;
      const topic = field(o, 'topic', str);
      if (qos) packetId(o);
      props(o, where);
      // An empty topic needs a v5 topic alias, which comes after it: checked after the properties.
      const p = o.properties;
      checkTopicName(topic, ver > 4 && !!p && p.topicAlias !== undefined);
      if (mode) bytes(o.payload);
      else {
        o.payload = rest(viewFrom);
        o.qos = qos;
        o.retain = (flags & 1) === 1;
        o.dup = (flags & 8) === 8;
      }
      break;
    }
    case PacketType.CONNECT: {
      if (str('MQTT') !== 'MQTT') refuse('3.1.2-1', 'protocol name');
      const level = u8(ver);
      if (level !== 4 && level !== 5) refuse('3.1.2-2', 'protocol level ' + level, Reason.UNSUPPORTED_PROTOCOL_VERSION);
      setVersion(level);
      const v5 = level > 4;
      let will = o.will;
      const f = u8(
        mode
          ? (o.clean ? 2 : 0) |
              (will ? 4 | (twoBits(will.qos, '3.3.1-4') << 3) | (will.retain ? 0x20 : 0) : 0) |
              (o.password !== undefined ? 0x40 : 0) |
              (o.username !== undefined ? 0x80 : 0)
          : 0,
      );
      const willQos = (f >> 3) & 3;
      if (f & 1) malformed('3.1.2-3', 'reserved flag');
      if (willQos === 3) malformed(v5 ? '3.1.2-12' : '3.1.2-14', 'will QoS 3');
      if (!(f & 4) && willQos) malformed(v5 ? '3.1.2-11' : '3.1.2-13', 'will QoS, no will');
      if (!(f & 4) && f & 0x20) malformed(v5 ? '3.1.2-13' : '3.1.2-15', 'will retain, no will');
      if (!v5 && (f & 0xc0) === 0x40) malformed('3.1.2-22', 'password, no user name');
      put(o, 'protocolVersion', level);
      if (!isUint(field(o, 'keepAliveSec', u16), 0xffff)) refuse('3.1.2-10', 'bad keep alive');
      put(o, 'clean', (f & 2) === 2);
      props(o, where);
      // A server must read this to answer it with return code 2 [MQTT-3.1.3-8]; a client must not send it.
      if (!field(o, 'clientId', str) && mode && !v5 && !(f & 2)) refuse('3.1.3-7', 'empty client id, not clean');
      if (f & 4) {
        if (!mode) o.will = will = {};
        props(will, W.WILL);
        checkTopicName(field(will, 'topic', str), false);
        field(will, 'payload', bin);
        put(will, 'qos', willQos);
        put(will, 'retain', (f & 0x20) === 0x20);
      }
      if (f & 0x80) field(o, 'username', str);
      if (f & 0x40) field(o, 'password', bin);
      break;
    }
    case PacketType.CONNACK: {
      const ack = u8(mode ? (o.sessionPresent ? 1 : 0) : 0);
      if (ack & 0xfe) malformed('3.2.2-1', 'reserved flags');
      const c = checkCode(type, u8(mode ? (o.reasonCode === undefined ? 0 : o.reasonCode) : 0));
      if (c && ack) refuse(ver > 4 ? '3.2.2-6' : '3.2.2-4', 'session present, refused');
      put(o, 'sessionPresent', ack === 1);
      put(o, 'reasonCode', c);
      props(o, where);
      break;
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      packetId(o);
      tail(o, type);
      break;
    case PacketType.SUBSCRIBE:
      packetId(o);
      props(o, where);
      list(o, 'subscriptions', ver > 4 ? '3.8.3-2' : '3.8.3-3', (s?: any): any => {
        s = mode ? s || {} : {};
        const topic = field(s, 'topic', str);
        checkTopicFilter(topic);
        const opts = u8(
          mode
            ? twoBits(s.qos, '3.3.1-4') |
                (s.noLocal ? 4 : 0) |
                (s.retainAsPublished ? 8 : 0) |
                (twoBits(s.retainHandling || 0, '3.8.3.1') << 4)
            : 0,
        );
        if ((opts & 3) === 3) malformed('3-8.3-4', 'QoS 3');
        put(s, 'qos', opts & 3);
        if (ver < 5) {
          if (opts & 0xfc) malformed('3-8.3-4', 'reserved bits');
        } else {
          if (opts & 0xc0) malformed('3.8.3-5', 'reserved bits');
          if ((opts & 0x30) === 0x30) refuse('3.8.3.1', 'retain handling 3');
          if (opts & 4 && topic.indexOf('$share/') === 0) refuse('3.8.3-4', 'no local, shared');
          put(s, 'noLocal', (opts & 4) === 4);
          put(s, 'retainAsPublished', (opts & 8) === 8);
          put(s, 'retainHandling', (opts >> 4) & 3);
        }
        return s;
      });
      break;
    case PacketType.UNSUBSCRIBE:
      packetId(o);
      props(o, where);
      list(o, 'topics', '3.10.3-2', (t?: any): any => {
        t = str(t);
        checkTopicFilter(t);
        return t;
      });
      break;
    case PacketType.SUBACK:
    case PacketType.UNSUBACK:
      packetId(o);
      props(o, where);
      if (ver > 4 || type === PacketType.SUBACK) {
        list(o, 'reasonCodes', '3.' + type + '.3', (c?: any): any => checkCode(type, u8(c)));
      } else if (mode && o.reasonCodes && o.reasonCodes.length !== 0) {
        refuse('3.11.3', 'reason codes need v5');
      }
      break;
    case PacketType.DISCONNECT:
    case PacketType.AUTH:
      tail(o, type);
  }
  return flags;
}

/**
 * Decodes the packet at data[start, stop) (fixed header checked by the caller). The payload of a
 * PUBLISH is a view into data unless it is under half of viewFromLen bytes (0: always a view).
 */
export function decodePacket(data: Uint8Array, start: number, stop: number, version: number, viewFromLen: number): Packet {
  let p = start + 1;
  while (data[p] & 0x80) p++;
  begin(Mode.READ, data, p + 1, stop, version);
  viewFrom = viewFromLen;
  const type = data[start] >> 4;
  const o: any = { type: type };
  body(o, type, data[start] & 15);
  if (pos !== stop) malformed('2.1.4', 'bytes left over');
  begin(Mode.READ, EMPTY, 0, 0, 4); // do not pin the chunk
  return o;
}
