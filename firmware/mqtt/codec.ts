// wren's MQTT codec: every control packet's layout written once for both directions.
//
// One walk per packet layout serves decoding and encoding: every field primitive reads a field in
// READ mode, and in SIZE / WRITE mode takes the application's value, checks its type and counts or
// writes it, returning the value either way. A check placed after a primitive therefore sees the
// wire value when decoding and the application's value when encoding, so the decoder and the encoder
// enforce the same rules from the same lines: topic names and filters, packet ids, flags, reason
// codes per packet, session present on a refused CONNACK, and the v5 properties (one table).
// encode() walks a packet twice, SIZE then WRITE, so every check has run (and thrown) before the
// exactly-sized buffer is allocated or a byte is written: a bad packet is a ProtocolError, never
// bad bytes on the wire.
//
// The cursor is module state, not an object: the codec is synchronous and never re-entered (no
// callback runs while a packet is read or written), so one cursor serves every decoder and every
// encode() call, and each entry point sets all of it before use. Plain module variables
// minify to single letters (the 10 KB budget), and everything that touches them lives in this one
// module: read across modules, a live binding costs a getter call per access under tsx and vitest.
//
// Sections: cursor and field primitives; v5 properties; packet layouts; encode; decode.

import { malformed, ProtocolError, Reason, refuse } from './errors';
import { PacketType } from './types';
import type { Decoder, Packet, Version } from './types';
import { utf8Length, utf8Read, utf8Write } from './utf8';

// ---------------------------------------------------------------------------------------------
// Cursor and field primitives

const enum Mode {
  READ = 0,
  SIZE = 1,
  WRITE = 2,
}

const EMPTY = new Uint8Array(0);

/** Current direction. */
let mode: Mode = Mode.READ;
/** Packet bytes (READ, WRITE). */
let buf: Uint8Array = EMPTY;
/** Cursor: next byte to read, or bytes counted / written so far. */
let pos = 0;
/** READ: end of the packet, or of the property block being read. */
let end = 0;
/** Protocol level of the packet: 4 (3.1.1) or 5 (5.0). */
let ver = 4;

/** Advances over n bytes (READ: they must be there); returns where they start. */
function take(n: number): number {
  const p = pos;
  if (!mode && p + n > end) malformed('1.5', 'truncated');
  pos = p + n;
  return p;
}

function u8(v?: any): number {
  const p = take(1);
  if (!mode) return buf[p];
  if (mode > 1) buf[p] = v;
  return v;
}

function u16(v?: any): number {
  const p = take(2);
  if (!mode) return (buf[p] << 8) | buf[p + 1];
  if (mode > 1) {
    buf[p] = v >> 8;
    buf[p + 1] = v;
  }
  return v;
}

function u32(v?: any): number {
  const p = take(4);
  const b = buf;
  if (!mode) return b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  if (mode > 1) {
    b[p] = v / 0x1000000;
    b[p + 1] = v >> 16;
    b[p + 2] = v >> 8;
    b[p + 3] = v;
  }
  return v;
}

/**
 * Variable Byte Integer: at most 4 bytes [MQTT-1.5.5-1]; minimal in 5.0 (3.1.1 has no such rule for
 * the Remaining Length, its only one). Writes a checked value.
 */
function vbi(v?: any): number {
  if (mode) {
    let r = v;
    do u8(r > 0x7f ? (r & 0x7f) | 0x80 : r);
    while ((r >>= 7));
    return v;
  }
  let x = 0;
  for (let m = 1; ; m *= 128) {
    const b = u8();
    x += (b & 0x7f) * m;
    // minimal (no trailing 0 byte) and at most 4 bytes
    if (b < 0x80 ? m > 1 && !b && ver > 4 : m > 0x1fffff) malformed('1.5.5-1', 'bad varint');
    if (b < 0x80) return x;
  }
}

/** UTF-8 string with a 2-byte length [MQTT-1.5.4]. */
function str(s?: any): string {
  if (!mode) {
    const n = u16();
    const p = take(n);
    return utf8Read(buf, p, p + n);
  }
  if (mode > 1) {
    // checked and counted in the SIZE pass: write it, then its length in front
    const p = take(2);
    const n = (pos = utf8Write(s, buf, pos)) - p - 2;
    buf[p] = n >> 8;
    buf[p + 1] = n;
    return s;
  }
  let n = 0;
  if (typeof s !== 'string' || (n = utf8Length(s)) > 0xffff) refuse('1.5.4', 'bad string');
  take(n + 2);
  return s;
}

/** Binary Data with a 2-byte length [MQTT-1.5.6]; READ gives a copy, never a view of the input. */
function bin(b?: any): Uint8Array {
  if (!mode) {
    const n = u16();
    const p = take(n);
    return new Uint8Array(buf.subarray(p, p + n));
  }
  if (!(b instanceof Uint8Array) || b.length > 0xffff) refuse('1.5.6', 'bad binary');
  u16(b.length);
  return bytes(b);
}

/** SIZE / WRITE: raw bytes (a payload), copied with set. */
function bytes(b: any): Uint8Array {
  if (!(b instanceof Uint8Array)) refuse('3.3.3', 'bad payload');
  const p = take(b.length);
  if (mode > 1) buf.set(b, p);
  return b;
}

/** An unsigned integer no larger than max (SIZE / WRITE: checks the application's value). */
function isUint(v: any, max: number): boolean {
  return v === v >>> 0 && v <= max;
}

// ---------------------------------------------------------------------------------------------
// MQTT 5 properties (spec section 2.2.2), table-driven: one row per identifier with its name, data
// type and the packets that may carry it. The same walk reads a block and checks/measures/writes
// one, so both directions apply the same rules: a property a packet may not carry is a Malformed
// Packet, a repeated single-valued property or a bad value a Protocol Error; the encoder also
// refuses unknown names (a typo must not vanish) and wrong JS types.

const enum K {
  BOOL = 0, // Byte 0 or 1, a boolean in the packet object
  BYTE = 1, // Byte 0 or 1, a number (maximumQoS)
  U16 = 2,
  U32 = 3,
  VARINT = 4,
  STRING = 5,
  BINARY = 6,
  PAIR = 7, // user property: two strings
  NONZERO = 8, // 0 is a Protocol Error
  LIST = 16, // may repeat: an array in the packet object
  TOPIC = 32, // a Topic Name: no wildcards (the response topic [MQTT-3.3.2-14])
}

/** Mask bit per packet type (1 << type); bit 0 (type 0 is reserved) stands for the will properties. */
const enum W {
  WILL = 1,
  C = 1 << 1,
  CA = 1 << 2,
  P = 1 << 3,
  ACKS = 0xf0, // PUBACK, PUBREC, PUBREL, PUBCOMP
  S = 1 << 8,
  SA = 1 << 9,
  U = 1 << 10,
  UA = 1 << 11,
  D = 1 << 14,
  AU = 1 << 15,
}

// The rows in identifier order, ONE string (a table of arrays holds ~170 JsVars on Espruino, a
// string a few): each row is ',' then one character for the identifier (48 + id), one for the kind
// (64 + kind: its bits test as they are), the mask of packets that may carry it (4 hex digits), then
// the name; a ',' ends the last row. Row characters are never ',', and no name ends with another
// one. The encoder writes in this order. A row is passed around as its text (without the ',').
//   0x01 payloadFormatIndicator, 0x02 messageExpiryInterval, 0x03 contentType, 0x08 responseTopic,
//   0x09 correlationData, 0x0b subscriptionIdentifiers, 0x11 sessionExpiryInterval,
//   0x12 assignedClientIdentifier, 0x13 serverKeepAlive, 0x15 authenticationMethod,
//   0x16 authenticationData, 0x17 requestProblemInformation, 0x18 willDelayInterval,
//   0x19 requestResponseInformation, 0x1a responseInformation, 0x1c serverReference, 0x1f reasonString,
//   0x21 receiveMaximum, 0x22 topicAliasMaximum, 0x23 topicAlias, 0x24 maximumQoS, 0x25 retainAvailable,
//   0x26 userProperties, 0x27 maximumPacketSize, 0x28 wildcardSubscriptionAvailable,
//   0x29 subscriptionIdentifiersAvailable, 0x2a sharedSubscriptionAvailable
const PROPS =
  ',1@0009payloadFormatIndicator,2C0009messageExpiryInterval,3E0009contentType' +
  ',8e0009responseTopic,9F0009correlationData,;\\0108subscriptionIdentifiers' +
  ',AC4006sessionExpiryInterval,BE0004assignedClientIdentifier,CB0004serverKeepAlive' +
  ',EE8006authenticationMethod,FF8006authenticationData,G@0002requestProblemInformation' +
  ',HC0001willDelayInterval,I@0002requestResponseInformation,JE0004responseInformation' +
  ',LE4004serverReference,OEcaf4reasonString,QJ0006receiveMaximum,RB0006topicAliasMaximum' +
  ',SJ0008topicAlias,TA0004maximumQoS,U@0004retainAvailable,VWcfffuserProperties' +
  ',WK0006maximumPacketSize,X@0004wildcardSubscriptionAvailable' +
  ',Y@0004subscriptionIdentifiersAvailable,Z@0004sharedSubscriptionAvailable,';

/** One value of a property: read, or checked and counted/written. */
function value(row: string, v?: any): any {
  const kind = row.charCodeAt(1);
  const k = kind & 7;
  const name = row.slice(6);
  let x: any;
  if (k < K.U16) {
    x = u8(k ? v : v === true ? 1 : v === false ? 0 : 2);
    if (x !== 0 && x !== 1) refuse('2.2.2', 'bad ' + name);
    return k ? x : x === 1;
  }
  if (k < K.STRING) {
    if (mode && !isUint(v, k === K.U16 ? 0xffff : k === K.U32 ? 0xffffffff : 0xfffffff)) refuse('2.2.2', 'bad ' + name);
    x = k === K.U16 ? u16(v) : k === K.U32 ? u32(v) : vbi(v);
    if (!x && kind & K.NONZERO) refuse('2.2.2', 'bad ' + name);
    return x;
  }
  if (k === K.STRING) {
    x = str(v);
    if (kind & K.TOPIC && WILDCARD.test(x)) refuse('3.3.2-14', 'wildcard');
    return x;
  }
  if (k === K.BINARY) return bin(v);
  if (mode && !Array.isArray(v)) refuse('2.2.2', 'bad ' + name);
  return [str(v && v[0]), str(v && v[1])];
}

/** SIZE / WRITE: the block's contents, in table order, after checking each property. */
function walk(bag: any, where: number): void {
  if (!bag) return;
  // Where each present property's row starts (a whole name: ',' and a row head before it), sorted
  // into identifier order; anything else is unknown, refused after the known ones are checked.
  const at: number[] = [];
  let unknown = false;
  for (const k in bag) {
    if (bag[k] === undefined) continue;
    const s = PROPS.indexOf(k + ',') - 6;
    if (PROPS[s - 1] === ',' && k.indexOf(',') < 0) at.push(s);
    else unknown = true;
  }
  at.sort((x, y) => x - y);
  for (const s of at) {
    const row = PROPS.slice(s, PROPS.indexOf(',', s));
    const id = row.charCodeAt(0) - 48;
    const kind = row.charCodeAt(1);
    const name = row.slice(6);
    const v = bag[name];
    if (!(parseInt(row.slice(2, 6), 16) & where)) refuse('2.2.2', name + ' not allowed');
    if (kind & K.LIST) {
      if (!Array.isArray(v)) refuse('2.2.2', 'bad ' + name);
      if (where === W.S && (kind & 7) === K.VARINT && v.length !== 1) refuse('3.8.2.1.2', 'not 1 subscription id');
      for (const x of v) {
        u8(id);
        value(row, x);
      }
    } else {
      u8(id);
      value(row, v);
    }
  }
  if (unknown) refuse('2.2.2', 'unknown property');
}

/**
 * SIZE / WRITE: size of the property block's contents (without its length) of o.properties in a
 * packet `where` (a mask bit), after checking them; 3.1.1: throws unless there are none.
 */
function propsSize(o: any, where: number): number {
  const m = mode;
  const p = pos;
  mode = Mode.SIZE;
  walk(o.properties, ver < 5 ? 0 : where);
  const n = pos - p;
  mode = m;
  pos = p;
  return n;
}

/**
 * The property block (length included) of a packet `where` (a mask bit): READ sets o.properties
 * unless the block is empty; SIZE / WRITE count or write o.properties. Nothing in 3.1.1 (where the
 * encoder refuses properties).
 */
function props(o: any, where: number): void {
  if (mode) {
    const n = propsSize(o, where);
    if (ver > 4) {
      vbi(n);
      if (mode > 1) walk(o.properties, where);
      else take(n);
    }
    return;
  }
  if (ver < 5) return;
  const n = vbi();
  if (pos + n > end) malformed('2.2.2', 'property length');
  if (!n) return;
  const outer = end;
  end = pos + n;
  const bag: any = {};
  while (pos < end) {
    const id = vbi();
    // its row (identifiers above 0x2a are unknown, and would wrap in fromCharCode)
    const s = id < 0x2b ? PROPS.indexOf(',' + String.fromCharCode(48 + id)) + 1 : 0;
    const row = PROPS.slice(s, PROPS.indexOf(',', s));
    if (!s || !(parseInt(row.slice(2, 6), 16) & where)) malformed('2.2.2', 'bad property 0x' + id.toString(16));
    const name = row.slice(6);
    const v = value(row);
    const had = bag[name];
    if (!(row.charCodeAt(1) & K.LIST)) {
      if (had !== undefined) refuse('2.2.2', name + ' repeated');
      bag[name] = v;
    } else if (!had) bag[name] = [v];
    else if (where === W.S && id === 0x0b) refuse('3.8.2.1.2', 'not 1 subscription id');
    else had.push(v);
  }
  end = outer;
  o.properties = bag;
}

// ---------------------------------------------------------------------------------------------
// Packet layouts

/** PUBLISH flags: QoS 3 [MQTT-3.3.1-4] and DUP on QoS 0 [MQTT-3.3.1-2] are malformed. */
function publishFlags(flags: number): void {
  if ((flags & 6) === 6) malformed('3.3.1-4', 'QoS 3');
  if (flags & 8 && !(flags & 6)) malformed('3.3.1-2', 'DUP on QoS 0');
}

const WILDCARD = /[+#]/;
const BAD_PLUS = /[^\/]\+|\+[^\/]/;

/** A topic name (PUBLISH, will): not empty [MQTT-4.7.3-1] unless a v5 topic alias stands in, no wildcards [MQTT-3.3.2-2]. */
export function checkTopicName(topic: unknown, emptyOk: boolean): void {
  if (typeof topic !== 'string' || !(topic || emptyOk)) refuse('4.7.3-1', 'no topic');
  if (WILDCARD.test(topic)) refuse('3.3.2-2', 'wildcard', Reason.TOPIC_NAME_INVALID);
}

/** A topic filter: not empty [MQTT-4.7.3-1], '#' last and alone in its level [MQTT-4.7.1-2], '+' alone in its level [MQTT-4.7.1-3]. */
export function checkTopicFilter(filter: unknown): void {
  if (typeof filter !== 'string' || !filter) refuse('4.7.3-1', 'no filter');
  const h = filter.indexOf('#');
  if (h >= 0 && (h < filter.length - 1 || (h > 0 && filter[h - 1] !== '/'))) refuse('4.7.1-2', '# misplaced');
  if (BAD_PLUS.test(filter)) refuse('4.7.1-3', '+ misplaced');
}

// Reason codes each packet type may carry in 5.0 (section 2.4 and each packet's table), one string
// split on use (an array of strings holds ~35 JsVars on Espruino): the type-th ','-separated entry,
// one character per code so they stay ASCII in the bundle: code + 0x20 for 0x00..0x1f, code - 0x40
// for 0x80..0xbf (never ','). Empty for CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, PINGRESP.
//   CONNACK 00 80-8a 8c 90 95 97 99-9d 9f; PUBACK, PUBREC 00 10 80 83 87 90 91 97 99;
//   PUBREL, PUBCOMP 00 92; SUBACK 00 01 02 80 83 87 8f 91 97 9e a1 a2; UNSUBACK 00 11 80 83 87 8f 91;
//   DISCONNECT 00 04 80-83 87 89 8b 8d-90 93-a2; AUTH 00 18 19
const V5_CODES =
  ',, @ABCDEFGHIJLPUWYZ[\\]_,, 0@CGPQWY, 0@CGPQWY, R, R,, !"@CGOQW^ab,, 1@CGOQ,,' +
  ', $@ABCGIKMNOPSTUVWXYZ[\\]^_`ab, 89';

/** A reason code the packet type may carry (3.1.1: CONNACK 0..5, SUBACK 0, 1, 2, 0x80, else none but 0). */
function checkCode(type: number, c: any): number {
  const valid = ver > 4 ? V5_CODES.split(',')[type] : type === 2 ? ' !"#$%' : type === 9 ? ' !"@' : ' ';
  if (c !== (c & 0xff) || valid.indexOf(String.fromCharCode(c < 0x20 ? c + 0x20 : c < 0x80 ? 0 : c - 0x40)) < 0) {
    // the packet's statement: 3.<type>.2-1 (acks, DISCONNECT, AUTH), 3.9.3-2 / 3.11.3-2 (SUBACK,
    // UNSUBACK), 3.2.2-8 (CONNACK; 3.1.1 numbers none: its section 3.2.2)
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

/** Packet Identifier, 1..65535 [MQTT-2.2.1-3] / [MQTT-2.3.1-1]. */
function packetId(o: any): void {
  const id = u16(o.packetId);
  if (!id || !isUint(id, 0xffff)) refuse(ver > 4 ? '2.2.1-3' : '2.3.1-1', 'bad packet id');
  if (!mode) o.packetId = id;
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

/** READ: copy a PUBLISH payload out of the chunk unless it is at least half of this many bytes. */
let viewFrom = 0;

/**
 * The variable header and payload of one packet of `type` with fixed-header `flags` (SIZE / WRITE:
 * the type's fixed flags, 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE, else 0). Returns the flags
 * to write (PUBLISH: from dup, qos, retain).
 */
function body(o: any, type: number, flags: number): number {
  const where = 1 << type;
  switch (type) {
    case PacketType.PUBLISH: {
      if (mode) flags = (o.dup ? 8 : 0) | (twoBits(o.qos, '3.3.1-4') << 1) | (o.retain ? 1 : 0);
      publishFlags(flags);
      const qos = (flags >> 1) & 3;
      const topic = str(o.topic);
      if (qos) packetId(o);
      props(o, where);
      // An empty topic needs a v5 topic alias, which comes after it: checked after the properties.
      const p = o.properties;
      checkTopicName(topic, ver > 4 && !!p && p.topicAlias !== undefined);
      if (mode) bytes(o.payload);
      else {
        o.topic = topic;
        // the rest of the packet: a view, or a copy when it is under half of viewFrom bytes
        const b = buf.subarray(take(end - pos), end);
        o.payload = b.length * 2 >= viewFrom ? b : new Uint8Array(b);
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
      ver = level;
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
      if (!mode) o.protocolVersion = level;
      if (!isUint(field(o, 'keepAliveSec', u16), 0xffff)) refuse('3.1.2-10', 'bad keep alive');
      if (!mode) o.clean = (f & 2) === 2;
      props(o, where);
      // A server must read this to answer it with return code 2 [MQTT-3.1.3-8]; a client must not send it.
      if (!field(o, 'clientId', str) && mode && !v5 && !(f & 2)) refuse('3.1.3-7', 'empty client id, not clean');
      if (f & 4) {
        if (!mode) o.will = will = {};
        props(will, W.WILL);
        checkTopicName(field(will, 'topic', str), false);
        field(will, 'payload', bin);
        if (!mode) will.qos = willQos;
        if (!mode) will.retain = (f & 0x20) === 0x20;
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
      if (!mode) o.sessionPresent = ack === 1;
      if (!mode) o.reasonCode = c;
      props(o, where);
      break;
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
    case PacketType.DISCONNECT:
    case PacketType.AUTH:
      // The acks' packet id, then (v5 acks, DISCONNECT, AUTH) [reason code [properties]], the code
      // omitted when it is 0 and nothing follows, the properties when empty. Decoded, reasonCode is
      // always set. 3.1.1: nothing more (the encoder refuses a reason code other than 0, and properties).
      if (type < PacketType.SUBSCRIBE) packetId(o);
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
        if (!mode) s.qos = opts & 3;
        if (ver < 5) {
          if (opts & 0xfc) malformed('3-8.3-4', 'reserved bits');
        } else {
          if (opts & 0xc0) malformed('3.8.3-5', 'reserved bits');
          if ((opts & 0x30) === 0x30) refuse('3.8.3.1', 'retain handling 3');
          if (opts & 4 && topic.indexOf('$share/') === 0) refuse('3.8.3-4', 'no local, shared');
          if (!mode) s.noLocal = (opts & 4) === 4;
          if (!mode) s.retainAsPublished = (opts & 8) === 8;
          if (!mode) s.retainHandling = (opts >> 4) & 3;
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
  }
  return flags;
}

/**
 * Decodes the packet at data[start, stop) (fixed header checked by the caller). The payload of a
 * PUBLISH is a view into data unless it is under half of viewFromLen bytes (0: always a view).
 */
function decodePacket(data: Uint8Array, start: number, stop: number, version: number, viewFromLen: number): Packet {
  mode = Mode.READ;
  buf = data;
  pos = start + 1;
  end = stop;
  ver = version;
  vbi(); // the Remaining Length, checked by the caller
  viewFrom = viewFromLen;
  const type = data[start] >> 4;
  const o: any = { type: type };
  body(o, type, data[start] & 15);
  if (pos !== stop) malformed('2.1.4', 'bytes left over');
  buf = EMPTY; // do not pin the chunk
  return o;
}

// ---------------------------------------------------------------------------------------------
// encode

/**
 * Encodes one control packet for protocol version 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
 * Throws ProtocolError when the packet is not valid for that version.
 */
export function encode(packet: Packet, version: Version): Uint8Array {
  if (version !== 4 && version !== 5) refuse('3.1.2-2', 'version not 4/5');
  const type = packet && (packet as { type: any }).type;
  if (!type || type !== (type & 15) || (type === 15 && version < 5)) refuse('2.1.2', 'packet type ' + type);
  mode = Mode.SIZE;
  pos = 0;
  ver = version;
  const flags = body(packet, type, (0x540 >> (type - 1)) & 2);
  const n = pos;
  if (n > 268435455) refuse('2.2.3', 'packet too large', Reason.PACKET_TOO_LARGE);
  vbi(n); // counts the Remaining Length's bytes
  const out = new Uint8Array(pos + 1);
  mode = Mode.WRITE;
  buf = out;
  pos = 0;
  ver = version;
  u8((type << 4) | flags);
  vbi(n);
  body(packet, type, flags);
  buf = EMPTY; // do not pin the buffer
  return out;
}

// ---------------------------------------------------------------------------------------------
// decode: bytes -> packet objects, streaming. The fixed header is checked as soon as it is complete
// (type, flags, remaining length against maxPacketSize) so an oversized or bogus packet is refused
// before its body is buffered. Complete packets inside a chunk are decoded in place; only an
// incomplete tail is copied, into a buffer of exactly the packet's size.

/** Fixed header at data[at, n): the packet's total length, or -1 when more bytes are needed. */
function header(data: Uint8Array, at: number, n: number, max: number, version: number): number {
  const type = data[at] >> 4;
  const flags = data[at] & 15;
  const v5 = version > 4;
  if (!type || (type === PacketType.AUTH && !v5)) malformed(v5 ? '2.1.2' : '2.2.1', 'packet type ' + type);
  if (type === PacketType.PUBLISH) publishFlags(flags);
  // fixed-header flags of every type but PUBLISH: 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE, else 0
  else if (flags !== ((0x540 >> (type - 1)) & 2)) malformed(v5 ? '2.1.3-1' : '2.2.2-2', 'bad flags');
  // Remaining Length: wait until its last byte (or its 4th) is there.
  let i = at + 1;
  while (i < n && data[i] > 0x7f && i < at + 4) i++;
  if (i >= n) return -1;
  mode = Mode.READ;
  buf = data;
  pos = at + 1;
  end = n;
  ver = version;
  const total = vbi() + pos - at;
  if (total > max) refuse(v5 ? '3.1.2-24' : '2.2.3', 'packet of ' + total + ' > ' + max + ' bytes', Reason.PACKET_TOO_LARGE);
  return total;
}

/**
 * A stream decoder for one connection speaking `version`. Packets larger than maxPacketSize bytes
 * (whole packet, fixed header included) are refused from their fixed header alone.
 */
export function createDecoder(version: Version, maxPacketSize: number): Decoder {
  if (version !== 4 && version !== 5) refuse('3.1.2-2', 'version not 4/5');
  if (!(maxPacketSize >= 2)) refuse('3.1.2-24', 'maxPacketSize < 2');
  // A partial packet: its bytes so far (the 5-byte head until the fixed header is complete), and its
  // total length once known (else 0).
  const head = new Uint8Array(5);
  let part = head;
  let held = 0;
  let need = 0;
  function reset(): void {
    part = head;
    held = need = 0;
  }
  return {
    push(chunk: Uint8Array): Packet[] {
      const out: Packet[] = [];
      const n = chunk.length;
      let at = 0;
      try {
        // 1. Finish a packet held from earlier chunks.
        while (held && at < n) {
          if (!need) {
            part[held++] = chunk[at++];
            const total = header(part, 0, held, maxPacketSize, version);
            if (total < 0) continue;
            part = new Uint8Array(total);
            part.set(head.subarray(0, held));
            need = total;
          }
          const take = Math.min(need - held, n - at);
          part.set(chunk.subarray(at, at + take), held);
          held += take;
          at += take;
          if (held === need) {
            const whole = part;
            reset();
            out.push(decodePacket(whole, 0, whole.length, version, 0));
          }
        }
        // 2. Whole packets straight from the chunk; 3. keep an incomplete tail.
        while (at < n) {
          const total = header(chunk, at, n, maxPacketSize, version);
          if (total < 0 || at + total > n) {
            if (total > 0) part = new Uint8Array((need = total));
            part.set(chunk.subarray(at, n));
            held = n - at;
            break;
          }
          out.push(decodePacket(chunk, at, at + total, version, n));
          at += total;
        }
      } catch (e) {
        reset();
        // Anything but a ProtocolError is a codec bug; still surface it as the one error type callers handle.
        throw e instanceof ProtocolError ? e : new ProtocolError('1.5', 'bad input: ' + e);
      }
      return out;
    },
    reset: reset,
    get buffered(): number {
      return held;
    },
  };
}
