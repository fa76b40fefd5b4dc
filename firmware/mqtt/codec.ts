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
// minify to single letters, and everything that touches them lives in this one module: read across
// modules, a live binding costs a getter call per access under tsx and vitest.
//
// Errors name the rule broken (ProtocolError.rule). Where 3.1.1 numbers a statement differently,
// the fixed header, UTF-8 and size errors cite the 5.0 number; the others each version's own.
//
// MQTT 5 is compiled in unless a device build for a 3.1.1 board defines WREN_V5 false
// (firmware/flags.d.ts): every `(typeof WREN_V5 === 'undefined' || WREN_V5) && ...` below then
// folds to false and esbuild drops the MQTT 5 code (properties, 5.0 reason codes, subscription
// options, AUTH) with it. The test is written out where MQTT 5 code starts: esbuild folds neither
// a module constant holding it nor a helper function returning it, only a function's own const
// declared ahead of its other statements (`v5` in body()).
//
// A device build (WREN_DEVICE) is a client: body() leaves out reading what only a client sends and
// writing what only a broker sends (`broker` in body()), the decoder refuses the packets only a
// broker receives, and the checks of the firmware's own packets (version, type, ids, keep-alive) go.
// test/codec-device.test.ts checks that codec against the full one.
//
// Sections: cursor and field primitives; v5 properties; packet layouts; encode; decode.

import { malformed, Reason, refuse } from './errors';
import { PacketType } from './types';
import type { Decoder, Packet, Version } from './types';
import { utf8Read, utf8Write } from './utf8';

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
  if (!mode && p + n > end) malformed('1.5');
  pos = p + n;
  return p;
}

/** A big-endian unsigned integer of n bytes (1, 2 or 4). SIZE / WRITE: v, checked by the caller. */
function uint(n: number, v?: any): number {
  const p = take(n);
  if (!mode) v = 0;
  // (a typed array keeps the low 8 bits of what it is given; >> works on the low 32 bits)
  for (let i = 0; i < n; i++) {
    if (!mode) v = v * 256 + buf[p + i];
    else if (mode > 1) buf[p + i] = v >> (8 * (n - 1 - i));
  }
  return v;
}

/**
 * Variable Byte Integer: at most 4 bytes [MQTT-1.5.5-1]; minimal in 5.0 (3.1.1 has no such rule for
 * the Remaining Length, its only one). Writes a checked value.
 */
function vbi(v?: any): number {
  let x = 0;
  for (let m = 1; ; m *= 128) {
    // SIZE / WRITE: the digit (7 bits), with the continuation bit when more follow
    const r = (v / m) | 0;
    const b = uint(1, r > 0x7f ? r | 0x80 : r);
    x += (b & 0x7f) * m;
    // at most 4 bytes, and in 5.0 minimal (no last byte 0 after the first)
    if (b > 0x7f ? m > 0x1fffff : (typeof WREN_V5 === 'undefined' || WREN_V5) && ver > 4 && m > 1 && !b) {
      malformed('1.5.5-1');
    }
    if (b < 0x80) return x;
  }
}

/** What data() reads or writes. */
const enum Data {
  STRING = 0,
  BINARY = 1,
  PAYLOAD = 2,
}

/**
 * A UTF-8 string [MQTT-1.5.4] or Binary Data [MQTT-1.5.6] with its 2-byte length (READ gives a copy
 * of binary data, never a view of the input); SIZE / WRITE also a PUBLISH payload (no length).
 */
function data(v: any, kind: Data): any {
  // SIZE / WRITE: its length, checked (a string is measured, or written after its length)
  let n = !mode
    ? 0
    : kind
      ? v instanceof Uint8Array
        ? v.length
        : -1
      : typeof v === 'string'
        ? utf8Write(v, (mode > 1 && buf) as Uint8Array, pos + 2) - pos - 2
        : -1;
  if (n < 0 || (n > 0xffff && kind < Data.PAYLOAD)) refuse(kind ? '1.5.6' : '1.5.4');
  if (kind < Data.PAYLOAD) n = uint(2, n);
  const p = take(n);
  if (mode) {
    if (mode > 1 && kind) buf.set(v, p);
    return v;
  }
  return kind ? new Uint8Array(buf.subarray(p, p + n)) : utf8Read(buf, p, p + n);
}

/** A string or binary field: read into o[key], or o[key] checked and counted/written. */
function field(o: any, key: string, kind: Data): any {
  const v = data(o[key], kind);
  if (!mode) o[key] = v;
  return v;
}

// ---------------------------------------------------------------------------------------------
// MQTT 5 properties (spec section 2.2.2), table-driven: one row per identifier with its data type
// and the packets that may carry it. The same code reads a block and checks/measures/writes one,
// so both directions apply the same rules: a property a packet may not carry is a Malformed Packet,
// a repeated single-valued property or a bad value a Protocol Error; the encoder also refuses
// unknown names (a typo must not vanish) and wrong JS types.

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
  SUBSCRIBE = 1 << 8,
}

// The rows, ONE string split on use (a table of arrays holds ~170 JsVars on Espruino, a string a
// few): the id-th ','-separated row is property identifier id's (empty: none). A row is one
// character for the kind (64 + kind: its bits test as they are), the mask of packets that may carry
// it (4 hex digits), then the name. The encoder writes in this order.
//   0x01 payloadFormatIndicator, 0x02 messageExpiryInterval, 0x03 contentType, 0x08 responseTopic,
//   0x09 correlationData, 0x0b subscriptionIdentifiers, 0x11 sessionExpiryInterval,
//   0x12 assignedClientIdentifier, 0x13 serverKeepAlive, 0x15 authenticationMethod,
//   0x16 authenticationData, 0x17 requestProblemInformation, 0x18 willDelayInterval,
//   0x19 requestResponseInformation, 0x1a responseInformation, 0x1c serverReference, 0x1f reasonString,
//   0x21 receiveMaximum, 0x22 topicAliasMaximum, 0x23 topicAlias, 0x24 maximumQoS, 0x25 retainAvailable,
//   0x26 userProperties, 0x27 maximumPacketSize, 0x28 wildcardSubscriptionAvailable,
//   0x29 subscriptionIdentifiersAvailable, 0x2a sharedSubscriptionAvailable
const PROPS =
  ',@0009payloadFormatIndicator,C0009messageExpiryInterval,E0009contentType,,,,,e0009responseTopic' +
  ',F0009correlationData,,\\0108subscriptionIdentifiers,,,,,,C4006sessionExpiryInterval' +
  ',E0004assignedClientIdentifier,B0004serverKeepAlive,,E8006authenticationMethod,F8006authenticationData' +
  ',@0002requestProblemInformation,C0001willDelayInterval,@0002requestResponseInformation' +
  ',E0004responseInformation,,E4004serverReference,,,Ecaf4reasonString,,J0006receiveMaximum' +
  ',B0006topicAliasMaximum,J0008topicAlias,A0004maximumQoS,@0004retainAvailable,WcfffuserProperties' +
  ',K0006maximumPacketSize,@0004wildcardSubscriptionAvailable,@0004subscriptionIdentifiersAvailable' +
  ',@0004sharedSubscriptionAvailable,';

/** One value of a property of `kind` (its row's first character code): read, or checked and counted/written. */
function value(kind: number, v?: any): any {
  const k = kind & 7;
  if (k > K.BINARY) {
    if (mode && !Array.isArray(v)) refuse('2.2.2');
    return [data(v && v[0], Data.STRING), data(v && v[1], Data.STRING)];
  }
  if (k > K.VARINT) {
    v = data(v, k - K.STRING);
    if (kind & K.TOPIC && WILDCARD.test(v)) refuse('3.3.2-14');
    return v;
  }
  if (mode) {
    // integers; a boolean goes as 1 or 0 (anything else as 2, refused)
    if (!k) v = v === true ? 1 : v === false ? 0 : 2;
    // in range: masked (a U32 as an unsigned 32-bit value), it stays the same
    if (v !== (k === K.U32 ? v >>> 0 : v & (k > K.U32 ? 0xfffffff : k > K.BYTE ? 0xffff : 1))) refuse('2.2.2');
  }
  const x = k > K.U32 ? vbi(v) : uint(k > K.U16 ? 4 : k || 1, v);
  if (k < K.U16 ? x > 1 : !x && kind & K.NONZERO) refuse('2.2.2');
  return k ? x : x === 1;
}

/**
 * The contents of a property block of a packet `where` (a mask bit): READ up to `end` into a new
 * bag, returned; SIZE / WRITE the bag's properties in table order, each checked first.
 */
// Node keeps the table split, names cut once (the same key strings every time are what makes V8's
// lookups fast: the benchmark's path); a device splits it per block instead of holding ~90 strings
// (JsVars) for good.
// When writing, Node also visits only the ids of the names present (INDEX: name -> id), in table
// order, instead of every row of the table.
let ROWS: string[] | undefined;
let NAMES: string[] | undefined;
let INDEX: { [name: string]: number } | undefined;

function block(bag: any, where: number): any {
  const rows = (typeof WREN_DEVICE === 'undefined' && ROWS) || PROPS.split(',');
  let ids: number[] | undefined;
  let k = 0;
  if (typeof WREN_DEVICE === 'undefined') {
    if (!ROWS) {
      ROWS = rows;
      NAMES = rows.map((r) => r.slice(5));
      INDEX = {};
      for (let i = 1; i < rows.length; i++) if (rows[i]) INDEX[NAMES[i]] = i;
    }
    if (mode) {
      ids = [];
      for (const name in bag) if (bag[name] !== undefined && (INDEX as any)[name]) ids.push((INDEX as any)[name]);
      ids.sort((a, b) => a - b);
    }
  }
  // SIZE / WRITE: defined values not written yet (any left after the table has an unknown name)
  let left = 0;
  if (mode) {
    for (const name in bag) if (bag[name] !== undefined) left++;
  } else bag = {};
  for (let id = 0; mode ? (ids ? (id = k < ids.length ? ids[k++] : rows.length) : ++id) < rows.length : pos < end; ) {
    if (!mode) id = vbi();
    const row = rows[id] || '';
    const kind = row.charCodeAt(0);
    const name = typeof WREN_DEVICE === 'undefined' ? (NAMES as string[])[id] || '' : row.slice(5);
    let v = bag[name];
    if (mode && (!row || v === undefined)) continue;
    if (!row || !(parseInt(row.slice(1, 5), 16) & where)) malformed('2.2.2');
    if (mode) {
      left--;
      if (!(kind & K.LIST)) v = [v];
      if (!Array.isArray(v)) refuse('2.2.2');
      for (let i = 0; i < v.length; i++) {
        uint(1, id);
        value(kind, v[i]);
      }
    } else {
      const x = value(kind);
      if (kind & K.LIST) (v = v || []).push(x);
      else if (v !== undefined) refuse('2.2.2');
      else v = x;
      bag[name] = v;
    }
  }
  // SUBSCRIBE carries at most one subscription identifier [MQTT-3.8.2.1.2] (the encoder: exactly
  // one). A device build (a client) reads no SUBSCRIBE, and writes its own without properties.
  if (left) refuse('2.2.2');
  if (typeof WREN_DEVICE === 'undefined' && where === W.SUBSCRIBE) {
    const ids = bag.subscriptionIdentifiers;
    if (ids && ids.length !== 1) refuse('2.2.2');
  }
  return bag;
}

/**
 * The property block (length included) of a packet `where` (a mask bit): READ sets o.properties
 * unless the block is empty; SIZE / WRITE count or write o.properties, or with `measure` only
 * return the size of its contents (without the length). Nothing in 3.1.1, where the encoder
 * refuses any property.
 */
function props(o: any, where: number, measure?: boolean): any {
  const bag = o.properties;
  if (!(typeof WREN_V5 === 'undefined' || WREN_V5)) {
    // built without MQTT 5
    if (mode && bag) for (const name in bag) if (bag[name] !== undefined) refuse('2.2.2');
  } else if (mode) {
    // measured first (3.1.1: where no property is allowed), then written after its length
    const m = mode;
    const p = pos;
    mode = Mode.SIZE;
    if (bag) block(bag, ver > 4 ? where : 0);
    const n = pos - p;
    mode = m;
    pos = p;
    if (ver > 4 && !measure) {
      vbi(n);
      if (mode > 1 && bag) block(bag, where);
      else take(n);
    }
    return n;
  } else if (ver > 4) {
    // `end` is the block's end while it is read (vbi() first: it moves pos)
    const outer = end;
    if ((end = vbi() + pos) > outer) malformed('2.2.2');
    if (end > pos) o.properties = block(0, where);
    end = outer;
  }
}

// ---------------------------------------------------------------------------------------------
// Packet layouts

const WILDCARD = /[+#]/;

/** A topic name (PUBLISH, will): not empty [MQTT-4.7.3-1] unless a v5 topic alias stands in, no wildcards [MQTT-3.3.2-2]. */
export function checkTopicName(topic: string, emptyOk: any): void {
  if (!(topic || emptyOk)) refuse('4.7.3-1');
  if (WILDCARD.test(topic)) refuse('3.3.2-2', Reason.TOPIC_NAME_INVALID);
}

/**
 * A topic filter: not empty [MQTT-4.7.3-1], '#' last and alone in its level [MQTT-4.7.1-2], '+' alone
 * in its level [MQTT-4.7.1-3]. (Its type is checked where it is encoded.)
 */
export function checkTopicFilter(filter: string): void {
  if (!filter) refuse('4.7.3-1');
  if (/#.|[^\/]#/.test(filter)) refuse('4.7.1-2');
  if (/[^\/]\+|\+[^\/]/.test(filter)) refuse('4.7.1-3');
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

// Node keeps V5_CODES split (a device splits it per code: no strings held for good).
let CODES: string[] | undefined;

/**
 * A reason code byte, one the packet type may carry [MQTT-2.4] (3.1.1: CONNACK 0..5, SUBACK 0, 1, 2
 * and 0x80): read, or c checked and counted/written.
 */
function code(type: number, c: any): number {
  c = uint(1, c);
  if (
    c !== (c & 0xff) ||
    !((typeof WREN_V5 === 'undefined' || WREN_V5) && ver > 4
      ? (typeof WREN_DEVICE === 'undefined' ? CODES || (CODES = V5_CODES.split(',')) : V5_CODES.split(','))[type].indexOf(String.fromCharCode(c < 0x20 ? c + 0x20 : c < 0x80 ? 0 : c - 0x40)) >= 0
      : type === PacketType.CONNACK
        ? c < 6
        : type === PacketType.SUBACK
          ? c < 3 || c === 0x80
          : !c)
  ) {
    refuse('2.4');
  }
  return c;
}

/** SIZE / WRITE: a 2-bit field of the application's packet (a QoS; retain handling), 3 included (refused later). */
function twoBits(v: any): number {
  if (v !== (v & 3)) refuse('3.3.1-4');
  return v;
}

/**
 * Packet Identifier, 1..65535 [MQTT-2.2.1-3] / [MQTT-2.3.1-1]. (A device build writes only its
 * session's ids, all in range: there only 0, which a read can bring, is checked.)
 */
function packetId(o: any): void {
  const id = uint(2, o.packetId);
  if (!id || (typeof WREN_DEVICE === 'undefined' && id !== (id & 0xffff))) refuse((typeof WREN_V5 === 'undefined' || WREN_V5) && ver > 4 ? '2.2.1-3' : '2.3.1-1');
  if (!mode) o.packetId = id;
}

/**
 * The variable header and payload of one packet of `type` with fixed-header `flags` (SIZE / WRITE:
 * the type's fixed flags, 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE, else 0). Returns the flags
 * to write (PUBLISH: from dup, qos, retain).
 */
function body(o: any, type: number, flags: number): number {
  // First: esbuild folds a const only ahead of any statement that may have side effects (or a const
  // whose value it does not know). A device build is a client: it never reads CONNECT, SUBSCRIBE,
  // UNSUBSCRIBE (the decoder refuses them there) nor writes CONNACK, SUBACK, UNSUBACK; there
  // `broker && !mode` (reading a packet only a client sends) and `broker && mode` (writing one only
  // a broker sends) fold to false.
  const broker = typeof WREN_DEVICE === 'undefined';
  const v5 = (typeof WREN_V5 === 'undefined' || WREN_V5) && ver > 4;
  const where = 1 << type;
  if (type === PacketType.PUBLISH) {
    // QoS 3 [MQTT-3.3.1-4]; DUP only with QoS 1 or 2 [MQTT-3.3.1-2]
    if (mode) flags = (o.dup ? 8 : 0) | (twoBits(o.qos) << 1) | (o.retain ? 1 : 0);
    const qos = (flags >> 1) & 3;
    if (qos > 2) malformed('3.3.1-4');
    if (flags & 8 && !qos) malformed('3.3.1-2');
    const topic = field(o, 'topic', Data.STRING);
    if (qos) packetId(o);
    props(o, where);
    // An empty topic needs a v5 topic alias, which comes after it: checked after the properties
    // (which 3.1.1 has none of: props() has refused any).
    checkTopicName(topic, (typeof WREN_V5 === 'undefined' || WREN_V5) && o.properties && o.properties.topicAlias !== undefined);
    if (mode) data(o.payload, Data.PAYLOAD);
    else {
      // the rest of the packet: a view into the chunk being decoded (buf), or a copy when it is
      // under half of it (a view keeps the whole chunk)
      const b = buf.subarray(take(end - pos), end);
      o.payload = b.length * 2 >= buf.length ? b : new Uint8Array(b);
      o.qos = qos;
      o.retain = !!(flags & 1);
      o.dup = !!(flags & 8);
    }
  } else if (type === PacketType.CONNECT) {
    // (encode() has checked the version it writes)
    if (data('MQTT', Data.STRING) !== 'MQTT' && broker && !mode) malformed('3.1.2-1');
    // the level: from here on, ver
    if (broker && !mode) {
      ver = uint(1);
      if (ver !== 4 && !((typeof WREN_V5 === 'undefined' || WREN_V5) && ver === 5)) {
        refuse('3.1.2-2', Reason.UNSUPPORTED_PROTOCOL_VERSION);
      }
    } else uint(1, ver);
    let will = o.will;
    const f = uint(
      1,
      broker && !mode
        ? 0
        : (o.clean ? 2 : 0) |
            (will ? 4 | (twoBits(will.qos) << 3) | (will.retain ? 0x20 : 0) : 0) |
            (o.password !== undefined ? 0x40 : 0) |
            (o.username !== undefined ? 0x80 : 0),
    );
    const willQos = (f >> 3) & 3;
    if (broker && f & 1) malformed('3.1.2-3');
    // will QoS 3 [MQTT-3.1.2-12]; will QoS [-11] or will retain [-13] without a will (only read:
    // the encoder sets neither without one). 3.1.1 numbers these three statements two higher, and
    // needs a user name for a password [-22].
    let n = willQos > 2 ? 12 : !broker || f & 4 ? 0 : willQos ? 11 : f & 0x20 ? 13 : 0;
    if (!((typeof WREN_V5 === 'undefined' || WREN_V5) && ver > 4)) n = n ? n + 2 : (f & 0xc0) === 0x40 ? 22 : 0;
    if (n) malformed('3.1.2-' + n);
    // The keep-alive (read by name: test/build.test.ts checks that the device build keeps such a
    // name); a device build's own is at most 65535 (board.json is validated).
    if (!broker) uint(2, o['keepAliveSec']);
    else {
      const keepAlive = uint(2, o['keepAliveSec']);
      if (keepAlive !== (keepAlive & 0xffff)) refuse('3.1.2-10');
      if (!mode) {
        o.protocolVersion = ver;
        o['keepAliveSec'] = keepAlive;
        o.clean = !!(f & 2);
      }
    }
    props(o, where);
    // A server must read this to answer it with return code 2 [MQTT-3.1.3-8]; a client must not send it.
    if (!field(o, 'clientId', Data.STRING) && (!broker || mode) && !(f & 2) && !((typeof WREN_V5 === 'undefined' || WREN_V5) && ver > 4)) {
      refuse('3.1.3-7');
    }
    if (f & 4) {
      if (broker && !mode) o.will = will = {};
      props(will, W.WILL);
      checkTopicName(field(will, 'topic', Data.STRING), false);
      field(will, 'payload', Data.BINARY);
      if (broker && !mode) {
        will.qos = willQos;
        will.retain = !!(f & 0x20);
      }
    }
    if (f & 0x80) field(o, 'username', Data.STRING);
    if (f & 0x40) field(o, 'password', Data.BINARY);
  } else if (type === PacketType.CONNACK) {
    const ack = uint(1, broker && mode && o.sessionPresent ? 1 : 0);
    if (ack & 0xfe) malformed('3.2.2-1');
    const c = code(type, broker && mode ? o.reasonCode || 0 : 0);
    if (c && ack) refuse(v5 ? '3.2.2-6' : '3.2.2-4');
    if (!broker || !mode) {
      o.sessionPresent = ack === 1;
      o.reasonCode = c;
    }
    props(o, where);
  } else if (type < PacketType.SUBSCRIBE || type > PacketType.PINGRESP) {
    // PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT, AUTH
    // The acks' packet id, then (v5 acks, DISCONNECT, AUTH) [reason code [properties]], the code
    // omitted when it is 0 and nothing follows, the properties when empty. Decoded, reasonCode is
    // always set. 3.1.1: nothing more.
    if (type < PacketType.SUBSCRIBE) packetId(o);
    if (v5) {
      let c = mode ? o.reasonCode || 0 : 0;
      // SIZE / WRITE: the block's size; READ: the bytes left
      const n = mode ? props(o, where, true) : end - pos;
      if (c || n) {
        c = code(type, c);
        if (mode ? n : pos < end) props(o, where);
      }
      if (!mode) o.reasonCode = c;
    } else if (broker && mode) {
      // the encoder refuses a reason code other than 0 [MQTT-2.4], and properties (a device build
      // sends neither in 3.1.1)
      if (o.reasonCode) refuse('2.4');
      props(o, where);
    }
  } else if (type < PacketType.PINGREQ) {
    // SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (PINGREQ and PINGRESP have nothing)
    packetId(o);
    props(o, where);
    // then a non-empty list: READ until the packet ends; SIZE / WRITE each element (3.1.1 UNSUBACK: none)
    if (type === PacketType.UNSUBACK && !v5) return flags;
    // (a device build writes only a SUBSCRIBE's and an UNSUBSCRIBE's list, reads only the codes)
    let a = mode ? (broker && type & 1 ? o.reasonCodes : type > PacketType.SUBSCRIBE ? o.topics : o.subscriptions) : [];
    // Not an array: refused as an empty one. (A device build writes only the firmware's own lists.)
    if (broker && !Array.isArray(a)) a = [];
    let i = 0;
    for (; mode ? i < a.length : pos < end; i++) {
      let x = a[i];
      if (type & 1) x = code(type, x);
      else if (type > PacketType.SUBSCRIBE) checkTopicFilter((x = data(x, Data.STRING)));
      else {
        // a subscription: its filter, then its options byte
        if (broker) x = mode ? x || {} : {};
        const topic = field(x, 'topic', Data.STRING);
        checkTopicFilter(topic);
        const opts = uint(
          1,
          broker && !mode
            ? 0
            : twoBits(x.qos) |
                ((typeof WREN_V5 === 'undefined' || WREN_V5)
                  ? (x.noLocal ? 4 : 0) | (x.retainAsPublished ? 8 : 0) | (twoBits(x.retainHandling || 0) << 4)
                  : 0),
        );
        // QoS 3 and the reserved bits (3.1.1: all but the QoS [MQTT-3-8.3-4]; 5.0: the top two [MQTT-3.8.3-5])
        if ((opts & 3) === 3 || opts & (v5 ? 0xc0 : 0xfc)) malformed(v5 ? '3.8.3-5' : '3-8.3-4');
        if (broker && !mode) x.qos = opts & 3;
        if (v5) {
          if ((opts & 0x30) === 0x30) refuse('3.8.3.1');
          if (opts & 4 && topic.indexOf('$share/') === 0) refuse('3.8.3-4');
          if (broker && !mode) {
            x.noLocal = !!(opts & 4);
            x.retainAsPublished = !!(opts & 8);
            x.retainHandling = (opts >> 4) & 3;
          }
        }
      }
      if (!mode) a.push(x);
    }
    if (!i) refuse('3.' + type + (type === PacketType.SUBSCRIBE && !v5 ? '.3-3' : type & 1 ? '.3' : '.3-2'));
    if (mode) {
      // written
    } else if (!broker || type & 1) o.reasonCodes = a;
    else if (type > PacketType.SUBSCRIBE) o.topics = a;
    else o.subscriptions = a;
  }
  return flags;
}

// ---------------------------------------------------------------------------------------------
// encode

/** The version is one this build speaks: 4, or 5 when MQTT 5 is compiled in. */
function checkVersion(version: unknown): void {
  if (version !== 4 && !((typeof WREN_V5 === 'undefined' || WREN_V5) && version === 5)) {
    refuse('3.1.2-2', Reason.UNSUPPORTED_PROTOCOL_VERSION);
  }
}

/**
 * Encodes one control packet for protocol version 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
 * Throws ProtocolError when the packet is not valid for that version.
 */
export function encode(packet: Packet, version: Version): Uint8Array {
  const type = packet && (packet as { type: any }).type;
  // (a device build encodes only the firmware's own packets, in the version it speaks)
  if (typeof WREN_DEVICE === 'undefined') {
    checkVersion(version);
    if (!type || type !== (type & 15) || (type === 15 && !((typeof WREN_V5 === 'undefined' || WREN_V5) && version > 4))) {
      malformed('2.1.2');
    }
  }
  mode = Mode.SIZE;
  pos = 0;
  ver = version;
  const flags = body(packet, type, (0x540 >> (type - 1)) & 2);
  const n = pos;
  // (256 MB: more than a device has)
  if (typeof WREN_DEVICE === 'undefined' && n > 0xfffffff) refuse('2.2.3', Reason.PACKET_TOO_LARGE);
  vbi(n); // counts the Remaining Length's bytes
  const out = (buf = new Uint8Array(pos + 1));
  mode = Mode.WRITE;
  pos = 0; // (ver is still version: a CONNECT sets it to its level, which is version)
  uint(1, (type << 4) | flags);
  vbi(n);
  body(packet, type, flags);
  buf = EMPTY; // do not pin the buffer
  return out;
}

// ---------------------------------------------------------------------------------------------
// decode: bytes -> packet objects, streaming. The fixed header is checked as soon as it is complete
// (type, flags, remaining length against maxPacketSize) so an oversized or bogus packet is refused
// before its body is buffered. Complete packets inside a chunk are decoded in place; only an
// incomplete tail is copied, into a buffer of exactly the packet's size, decoded as a chunk of its
// own once full. While the fixed header itself is incomplete, that buffer is one byte longer than
// the tail (the packet is at least that long): once it is full, it is decoded the same way, and so
// held again, with the header whole or one byte nearer (it has at most 5 bytes).

/**
 * A stream decoder for one connection speaking `version`. Packets larger than maxPacketSize bytes
 * (whole packet, fixed header included) are refused from their fixed header alone. After an error
 * the stream cannot be resynchronised: the caller drops the connection (and resets or replaces the
 * decoder).
 */
export function createDecoder(version: Version, maxPacketSize: number): Decoder {
  // (a device build passes its own version, and a maximum from its validated board.json)
  if (typeof WREN_DEVICE === 'undefined') {
    checkVersion(version);
    if (!(maxPacketSize >= 2)) refuse('3.1.2-24');
  }
  // A partial packet: its bytes so far, and the length of `part` (0: none held).
  let part = EMPTY;
  let held = 0;
  let need = 0;
  function reset(): void {
    part = EMPTY;
    held = need = 0;
  }
  function push(chunk: Uint8Array): Packet[] {
    const n = chunk.length;
    if (need) {
      // the rest of a packet held from earlier chunks
      const k = Math.min(need - held, n);
      part.set(chunk.subarray(0, k), held);
      held += k;
      if (held < need) return [];
      const whole = part;
      reset();
      return push(whole).concat(push(chunk.subarray(k)));
    }
    const out: Packet[] = [];
    for (let at = 0; at < n; ) {
      // The fixed header: a type the version has [MQTT-2.1.2], the fixed flags of every type but
      // PUBLISH (checked in body()) [MQTT-2.1.3-1]: 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE,
      // else 0. Then the Remaining Length once its last byte (or its 4th) is there, which leaves
      // the cursor on the variable header.
      const type = chunk[at] >> 4;
      const flags = chunk[at] & 15;
      if (!type || (type === 15 && !((typeof WREN_V5 === 'undefined' || WREN_V5) && version > 4))) {
        malformed('2.1.2');
      }
      // A device build is a client: a packet only a broker receives (CONNECT, SUBSCRIBE,
      // UNSUBSCRIBE, PINGREQ) is a Protocol Error there, refused here (body() cannot read them).
      if (typeof WREN_DEVICE !== 'undefined' && (0x1502 >> type) & 1) refuse('2.1.2');
      if (type !== PacketType.PUBLISH && flags !== ((0x540 >> (type - 1)) & 2)) malformed('2.1.3-1');
      let i = at + 1;
      while (i < n && chunk[i] > 0x7f && i < at + 4) i++;
      // (while the header is incomplete: one byte more than the tail, see above)
      let total = n - at + 1;
      if (i < n) {
        mode = Mode.READ;
        buf = chunk;
        pos = at + 1;
        end = n;
        ver = version;
        total = vbi() + pos - at;
        if (total > maxPacketSize) refuse('3.1.2-24', Reason.PACKET_TOO_LARGE);
      }
      if (at + total > n) {
        // keep the incomplete tail
        part = new Uint8Array((need = total));
        part.set(chunk.subarray(at));
        held = n - at;
        break;
      }
      end = at += total;
      const o: any = { type: type };
      body(o, type, flags);
      if (pos !== end) malformed('2.1.4');
      out.push(o);
    }
    buf = EMPTY; // do not pin the chunk
    return out;
  }
  return {
    push: push,
    reset: reset,
    get buffered(): number {
      return held;
    },
  };
}
