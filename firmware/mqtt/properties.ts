// MQTT 5 properties (spec section 2.2.2), table-driven: one row per identifier with its name, data
// type and the packets that may carry it. The same walk reads a block and checks/measures/writes
// one (wire.ts explains the modes), so both directions apply the same rules: a property a packet
// may not carry is a Malformed Packet, a repeated single-valued property or a bad value a Protocol
// Error; the encoder also refuses unknown names (a typo must not vanish) and wrong JS types.

import { malformed, refuse } from './errors';
import { bin, end, isUint, measure, mode, pos, setEnd, str, take, u16, u32, u8, vbi, ver } from './wire';

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
}

/** Mask bit per packet type (1 << type); bit 0 (type 0 is reserved) stands for the will properties. */
export const enum W {
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

type Row = [number, string, number, number];

// [identifier, name, kind, where]; the encoder writes in this order.
const TABLE: Row[] = [
  [0x01, 'payloadFormatIndicator', K.BOOL, W.P | W.WILL],
  [0x02, 'messageExpiryInterval', K.U32, W.P | W.WILL],
  [0x03, 'contentType', K.STRING, W.P | W.WILL],
  [0x08, 'responseTopic', K.STRING, W.P | W.WILL],
  [0x09, 'correlationData', K.BINARY, W.P | W.WILL],
  [0x0b, 'subscriptionIdentifiers', K.VARINT | K.NONZERO | K.LIST, W.P | W.S],
  [0x11, 'sessionExpiryInterval', K.U32, W.C | W.CA | W.D],
  [0x12, 'assignedClientIdentifier', K.STRING, W.CA],
  [0x13, 'serverKeepAlive', K.U16, W.CA],
  [0x15, 'authenticationMethod', K.STRING, W.C | W.CA | W.AU],
  [0x16, 'authenticationData', K.BINARY, W.C | W.CA | W.AU],
  [0x17, 'requestProblemInformation', K.BOOL, W.C],
  [0x18, 'willDelayInterval', K.U32, W.WILL],
  [0x19, 'requestResponseInformation', K.BOOL, W.C],
  [0x1a, 'responseInformation', K.STRING, W.CA],
  [0x1c, 'serverReference', K.STRING, W.CA | W.D],
  [0x1f, 'reasonString', K.STRING, W.CA | W.ACKS | W.SA | W.UA | W.D | W.AU],
  [0x21, 'receiveMaximum', K.U16 | K.NONZERO, W.C | W.CA],
  [0x22, 'topicAliasMaximum', K.U16, W.C | W.CA],
  [0x23, 'topicAlias', K.U16 | K.NONZERO, W.P],
  [0x24, 'maximumQoS', K.BYTE, W.CA],
  [0x25, 'retainAvailable', K.BOOL, W.CA],
  [0x26, 'userProperties', K.PAIR | K.LIST, W.C | W.CA | W.P | W.ACKS | W.S | W.SA | W.U | W.UA | W.D | W.AU | W.WILL],
  [0x27, 'maximumPacketSize', K.U32 | K.NONZERO, W.C | W.CA],
  [0x28, 'wildcardSubscriptionAvailable', K.BOOL, W.CA],
  [0x29, 'subscriptionIdentifiersAvailable', K.BOOL, W.CA],
  [0x2a, 'sharedSubscriptionAvailable', K.BOOL, W.CA],
];

/** Rows by identifier (a sparse array). */
const BY_ID: Row[] = [];
for (const row of TABLE) BY_ID[row[0]] = row;

/** One value of a property: read, or checked and counted/written. */
function value(row: Row, v?: any): any {
  const kind = row[2];
  const k = kind & 7;
  const name = row[1];
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
    if (row[0] === 0x08 && /[+#]/.test(x)) refuse('3.3.2-14', 'wildcard');
    return x;
  }
  if (k === K.BINARY) return bin(v);
  if (mode && !Array.isArray(v)) refuse('2.2.2', 'bad ' + name);
  return [str(v && v[0]), str(v && v[1])];
}

/** SIZE / WRITE: the block's contents, in table order, after checking each property. */
function walk(bag: any, where: number): void {
  if (!bag) return;
  let known = 0;
  for (const row of TABLE) {
    const v = bag[row[1]];
    if (v === undefined) continue;
    known++;
    if (!(row[3] & where)) refuse('2.2.2', row[1] + ' not allowed');
    if (row[2] & K.LIST) {
      if (!Array.isArray(v)) refuse('2.2.2', 'bad ' + row[1]);
      if (where === W.S && row[0] === 0x0b && v.length !== 1) refuse('3.8.2.1.2', 'not 1 subscription id');
      for (const x of v) {
        u8(row[0]);
        value(row, x);
      }
    } else {
      u8(row[0]);
      value(row, v);
    }
  }
  for (const k in bag) if (bag[k] !== undefined) known--;
  if (known) refuse('2.2.2', 'unknown property');
}

/**
 * SIZE / WRITE: size of the property block's contents (without its length) of o.properties in a
 * packet `where` (a mask bit), after checking them; 3.1.1: throws unless there are none.
 */
export function propsSize(o: any, where: number): number {
  return measure(() => walk(o.properties, ver < 5 ? 0 : where));
}

/**
 * The property block (length included) of a packet `where` (a mask bit): READ sets o.properties
 * unless the block is empty; SIZE / WRITE count or write o.properties. Nothing in 3.1.1 (where the
 * encoder refuses properties).
 */
export function props(o: any, where: number): void {
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
  const outer = setEnd(pos + n);
  const bag: any = {};
  while (pos < end) {
    const id = vbi();
    const row = BY_ID[id];
    if (!row || !(row[3] & where)) malformed('2.2.2', 'bad property 0x' + id.toString(16));
    const name = row[1];
    const v = value(row);
    const had = bag[name];
    if (!(row[2] & K.LIST)) {
      if (had !== undefined) refuse('2.2.2', name + ' repeated');
      bag[name] = v;
    } else if (!had) bag[name] = [v];
    else if (where === W.S && row[0] === 0x0b) refuse('3.8.2.1.2', 'not 1 subscription id');
    else had.push(v);
  }
  setEnd(outer);
  o.properties = bag;
}
