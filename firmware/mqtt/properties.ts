// MQTT 5 properties (spec section 2.2.2), table-driven: one row per identifier with its name, data
// type and the packets that may carry it. A property in a packet that may not carry it is a
// Malformed Packet; a repeated single-valued property is a Protocol Error.

import { ProtocolError, Reason } from './errors';
import type { Properties } from './types';
import { Reader, Writer, varintSize } from './wire';
import { utf8Length } from './utf8';

const enum Kind {
  BOOL = 0, // Byte, 0 or 1
  BYTE = 1, // Byte (maximumQoS: 0 or 1)
  U16 = 2,
  U32 = 3,
  VARINT = 4,
  STRING = 5,
  BINARY = 6,
  PAIR = 7,
}

/** Bit per packet type (1 << type); WILL is the will properties inside CONNECT. */
export const WILL = 1 << 16;
const C = 1 << 1;
const CA = 1 << 2;
const P = 1 << 3;
const ACKS = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7);
const S = 1 << 8;
const SA = 1 << 9;
const U = 1 << 10;
const UA = 1 << 11;
const D = 1 << 14;
const AU = 1 << 15;

// [id, name, kind, where] — order is the order the encoder writes them in.
const TABLE: Array<[number, string, Kind, number]> = [
  [0x01, 'payloadFormatIndicator', Kind.BOOL, P | WILL],
  [0x02, 'messageExpiryInterval', Kind.U32, P | WILL],
  [0x03, 'contentType', Kind.STRING, P | WILL],
  [0x08, 'responseTopic', Kind.STRING, P | WILL],
  [0x09, 'correlationData', Kind.BINARY, P | WILL],
  [0x0b, 'subscriptionIdentifiers', Kind.VARINT, P | S],
  [0x11, 'sessionExpiryInterval', Kind.U32, C | CA | D],
  [0x12, 'assignedClientIdentifier', Kind.STRING, CA],
  [0x13, 'serverKeepAlive', Kind.U16, CA],
  [0x15, 'authenticationMethod', Kind.STRING, C | CA | AU],
  [0x16, 'authenticationData', Kind.BINARY, C | CA | AU],
  [0x17, 'requestProblemInformation', Kind.BOOL, C],
  [0x18, 'willDelayInterval', Kind.U32, WILL],
  [0x19, 'requestResponseInformation', Kind.BOOL, C],
  [0x1a, 'responseInformation', Kind.STRING, CA],
  [0x1c, 'serverReference', Kind.STRING, CA | D],
  [0x1f, 'reasonString', Kind.STRING, CA | ACKS | SA | UA | D | AU],
  [0x21, 'receiveMaximum', Kind.U16, C | CA],
  [0x22, 'topicAliasMaximum', Kind.U16, C | CA],
  [0x23, 'topicAlias', Kind.U16, P],
  [0x24, 'maximumQoS', Kind.BYTE, CA],
  [0x25, 'retainAvailable', Kind.BOOL, CA],
  [0x26, 'userProperties', Kind.PAIR, C | CA | P | ACKS | S | SA | U | UA | D | AU | WILL],
  [0x27, 'maximumPacketSize', Kind.U32, C | CA],
  [0x28, 'wildcardSubscriptionAvailable', Kind.BOOL, CA],
  [0x29, 'subscriptionIdentifiersAvailable', Kind.BOOL, CA],
  [0x2a, 'sharedSubscriptionAvailable', Kind.BOOL, CA],
];

// Index by identifier (sparse array, ids < 0x2b) and by name.
const BY_ID: Array<[number, string, Kind, number] | undefined> = [];
const BY_NAME: { [name: string]: [number, string, Kind, number] } = {};
for (let i = 0; i < TABLE.length; i++) {
  BY_ID[TABLE[i][0]] = TABLE[i];
  BY_NAME[TABLE[i][1]] = TABLE[i];
}

function misuse(msg: string): ProtocolError {
  return new ProtocolError('2.2.2', msg, Reason.PROTOCOL_ERROR);
}

function isUint(v: unknown, max: number): boolean {
  return typeof v === 'number' && v >= 0 && v <= max && Math.floor(v) === v;
}

/** Values that must not be 0 when present (Protocol Error if they are). */
function nonZero(name: string): boolean {
  return (
    name === 'receiveMaximum' ||
    name === 'maximumPacketSize' ||
    name === 'topicAlias' ||
    name === 'subscriptionIdentifiers'
  );
}

function checkValue(row: [number, string, Kind, number], v: unknown): number {
  // Returns the encoded size of one value (identifier byte included) or throws.
  const name = row[1];
  switch (row[2]) {
    case Kind.BOOL:
      if (typeof v !== 'boolean') throw misuse(name + ' not a boolean');
      return 2;
    case Kind.BYTE:
      if (v !== 0 && v !== 1) throw misuse(name + ' must be 0 or 1');
      return 2;
    case Kind.U16:
      if (!isUint(v, 0xffff) || (v === 0 && nonZero(name))) throw misuse(name + ' out of range');
      return 3;
    case Kind.U32:
      if (!isUint(v, 0xffffffff) || (v === 0 && nonZero(name))) throw misuse(name + ' out of range');
      return 5;
    case Kind.VARINT:
      if (!isUint(v, 268435455) || v === 0) throw misuse(name + ' out of range');
      return 1 + varintSize(v as number);
    case Kind.STRING:
      if (typeof v !== 'string') throw misuse(name + ' not a string');
      return 3 + stringSize(v, name);
    case Kind.BINARY:
      if (!(v instanceof Uint8Array)) throw misuse(name + ' not a Uint8Array');
      if (v.length > 0xffff) throw misuse(name + ' over 65535 bytes');
      return 3 + v.length;
    default: {
      const pair = v as [string, string];
      if (!pair || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw misuse('userProperties: [name, value] pairs');
      }
      return 5 + stringSize(pair[0], name) + stringSize(pair[1], name);
    }
  }
}

function stringSize(s: string, what: string): number {
  const n = utf8Length(s);
  if (n > 0xffff) throw new ProtocolError('1.5.4', what + ' over 65535 bytes', Reason.PROTOCOL_ERROR);
  return n;
}

/**
 * Size in bytes of the property block's contents (without its length prefix), after checking every
 * property is allowed in `where` and well-typed. Unknown names are refused (a typo must not vanish).
 */
export function propsSize(props: Properties | undefined, where: number): number {
  if (!props) return 0;
  let size = 0;
  const bag = props as { [k: string]: unknown };
  for (const name in bag) {
    const v = bag[name];
    if (v === undefined) continue;
    const row = BY_NAME[name];
    if (!row) throw misuse('unknown property ' + name);
    if (!(row[3] & where)) throw misuse(name + ' not allowed here');
    if (row[2] === Kind.PAIR || row[2] === Kind.VARINT) {
      if (!Array.isArray(v)) throw misuse(name + ' not an array');
      if (row[2] === Kind.VARINT && where === S && v.length !== 1) {
        throw misuse('one subscription id only');
      }
      for (let i = 0; i < v.length; i++) size += checkValue(row, v[i]);
    } else {
      size += checkValue(row, v);
    }
  }
  return size;
}

/** Writes the property block contents measured by propsSize (in table order). */
export function writeProps(w: Writer, props: Properties | undefined): void {
  if (!props) return;
  const bag = props as { [k: string]: unknown };
  for (let t = 0; t < TABLE.length; t++) {
    const row = TABLE[t];
    const v = bag[row[1]];
    if (v === undefined) continue;
    if (row[2] === Kind.PAIR || row[2] === Kind.VARINT) {
      const list = v as unknown[];
      for (let i = 0; i < list.length; i++) writeOne(w, row, list[i]);
    } else {
      writeOne(w, row, v);
    }
  }
}

function writeOne(w: Writer, row: [number, string, Kind, number], v: unknown): void {
  w.u8(row[0]);
  switch (row[2]) {
    case Kind.BOOL:
      w.u8(v ? 1 : 0);
      break;
    case Kind.BYTE:
      w.u8(v as number);
      break;
    case Kind.U16:
      w.u16(v as number);
      break;
    case Kind.U32:
      w.u32(v as number);
      break;
    case Kind.VARINT:
      w.varint(v as number);
      break;
    case Kind.STRING:
      w.str(v as string);
      break;
    case Kind.BINARY:
      w.bin(v as Uint8Array);
      break;
    default:
      w.str((v as string[])[0]);
      w.str((v as string[])[1]);
  }
}

/**
 * Reads a property block (length prefix included) allowed in `where`. Returns undefined when the block
 * is empty. Misplaced or unknown identifiers are Malformed (0x81); repeats and bad values are
 * Protocol Errors (0x82).
 */
export function readProps(r: Reader, where: number): Properties | undefined {
  const len = r.varint();
  if (len === 0) return undefined;
  const end = r.pos + len;
  if (end > r.end) throw new ProtocolError('2.2.2', 'property length', Reason.MALFORMED_PACKET);
  const props: { [k: string]: unknown } = {};
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end) {
    const id = r.varint();
    const row = id < BY_ID.length ? BY_ID[id] : undefined;
    if (!row || !(row[3] & where)) {
      throw new ProtocolError(
        '2.2.2',
        'property 0x' + id.toString(16) + (row ? ' not allowed here' : ' unknown'),
        Reason.MALFORMED_PACKET,
      );
    }
    const name = row[1];
    let v: unknown;
    switch (row[2]) {
      case Kind.BOOL:
      case Kind.BYTE: {
        const b = r.u8();
        if (b > 1) throw new ProtocolError('2.2.2', name + ' must be 0 or 1', Reason.PROTOCOL_ERROR);
        v = row[2] === Kind.BOOL ? b === 1 : b;
        break;
      }
      case Kind.U16:
        v = r.u16();
        break;
      case Kind.U32:
        v = r.u32();
        break;
      case Kind.VARINT:
        v = r.varint();
        break;
      case Kind.STRING:
        v = r.str();
        break;
      case Kind.BINARY:
        v = r.bin();
        break;
      default:
        v = [r.str(), r.str()];
    }
    if (v === 0 && nonZero(name)) {
      throw new ProtocolError('2.2.2', name + ' must not be 0', Reason.PROTOCOL_ERROR);
    }
    if (row[2] === Kind.PAIR || row[2] === Kind.VARINT) {
      const list = props[name] as unknown[] | undefined;
      if (!list) props[name] = [v];
      else if (row[2] === Kind.VARINT && where === S) {
        throw new ProtocolError('3.8.2.1', 'repeated subscription id', Reason.PROTOCOL_ERROR);
      } else list.push(v);
    } else {
      if (props[name] !== undefined) {
        throw new ProtocolError('2.2.2', name + ' repeated', Reason.PROTOCOL_ERROR);
      }
      props[name] = v;
    }
  }
  r.end = outerEnd;
  return props as Properties;
}

/** Mask bit for a packet type's properties. */
export function whereOf(type: number): number {
  return 1 << type;
}
