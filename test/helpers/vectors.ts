// Helpers shared by the codec tests: annotated byte vectors, decoding in chunks, and the
// normalisation used to compare packets.

import { createDecoder, encode, ProtocolError } from '../../firmware/mqtt/index';
import type { Packet, Properties, Version } from '../../firmware/mqtt/types';

/** Large enough for any packet the vectors hold (268,435,455 + 5 header bytes). */
export const UNLIMITED = 268435460;

/** A byte vector written as annotated fields: hex('30', 'PUBLISH QoS 0', '08', 'remaining length 8', ...). */
export interface Hex {
  bytes: Uint8Array;
  /** "hex  note" per field, for failure messages. */
  notes: string[];
}

function parseHex(h: string): number[] {
  const clean = h.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error('bad hex field: ' + JSON.stringify(h));
  const out: number[] = [];
  for (let i = 0; i < clean.length; i += 2) out.push(parseInt(clean.slice(i, i + 2), 16));
  return out;
}

/**
 * Arguments alternate: hex field, annotation. A field may also be a Uint8Array (for long
 * generated payloads). Throws on an odd count or bad hex so that a typo fails loudly.
 */
export function hex(...parts: Array<string | Uint8Array>): Hex {
  if (parts.length % 2 !== 0) throw new Error('hex(): fields and annotations must alternate');
  const chunks: number[][] = [];
  const big: Array<Uint8Array | number[]> = [];
  const notes: string[] = [];
  let total = 0;
  for (let i = 0; i < parts.length; i += 2) {
    const f = parts[i];
    const note = parts[i + 1];
    if (typeof note !== 'string') throw new Error('hex(): annotation must be a string');
    if (typeof f === 'string') {
      const b = parseHex(f);
      chunks.push(b);
      big.push(b);
      total += b.length;
      notes.push(f.replace(/\s+/g, ' ').trim() + '  ' + note);
    } else {
      big.push(f);
      total += f.length;
      notes.push('<' + f.length + ' bytes>  ' + note);
    }
  }
  const bytes = new Uint8Array(total);
  let o = 0;
  for (const b of big) {
    bytes.set(b, o);
    o += b.length;
  }
  return { bytes, notes };
}

/** Hex of an MQTT UTF-8 string: two-byte big-endian length, then the UTF-8 bytes. */
export function s(text: string): string {
  const b = Buffer.from(text, 'utf8');
  return b.length.toString(16).padStart(4, '0') + ' ' + b.toString('hex');
}

/** Hex of a variable byte integer (spec 1.5.5), computed independently of the codec. */
export function vbi(n: number): string {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    out.push(d);
  } while (n > 0);
  return Buffer.from(out).toString('hex');
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function bytesOf(...xs: number[]): Uint8Array {
  return new Uint8Array(xs);
}

export function utf8(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/**
 * Reads the fixed header of a vector and checks that the remaining length it states matches the
 * bytes that follow. Catches mistakes in hand-written vectors before they are blamed on the codec.
 */
export function checkRemainingLength(bytes: Uint8Array): void {
  let mult = 1;
  let value = 0;
  let i = 1;
  for (;;) {
    const d = bytes[i++];
    value += (d & 127) * mult;
    mult *= 128;
    if ((d & 128) === 0) break;
    if (i > 4) throw new Error('vector has a remaining length over 4 bytes');
  }
  if (value !== bytes.length - i) {
    throw new Error('vector states remaining length ' + value + ' but carries ' + (bytes.length - i) + ' bytes');
  }
}

/** Feeds `bytes` to a fresh decoder in chunks whose sizes come from `sizes` (cycled; default whole). */
export function decodeChunks(bytes: Uint8Array, version: Version, sizes?: number[], maxPacketSize?: number): Packet[] {
  const d = createDecoder(version, maxPacketSize === undefined ? UNLIMITED : maxPacketSize);
  const out: Packet[] = [];
  if (!sizes || sizes.length === 0) {
    for (const p of d.push(bytes)) out.push(p);
  } else {
    let at = 0;
    let k = 0;
    while (at < bytes.length) {
      const n = Math.max(1, sizes[k++ % sizes.length]);
      for (const p of d.push(bytes.subarray(at, at + n))) out.push(p);
      at += n;
    }
  }
  if (d.buffered !== 0) throw new Error('decoder still holds ' + d.buffered + ' bytes after a whole stream');
  return out;
}

/** Feeds one byte at a time and checks that nothing comes out before the last byte of each packet. */
export function decodeBytewise(bytes: Uint8Array, version: Version): Packet[] {
  const d = createDecoder(version, UNLIMITED);
  const out: Packet[] = [];
  for (let i = 0; i < bytes.length; i++) {
    for (const p of d.push(bytes.subarray(i, i + 1))) out.push(p);
  }
  if (d.buffered !== 0) throw new Error('decoder still holds ' + d.buffered + ' bytes after a whole stream');
  return out;
}

export interface CanonOptions {
  /**
   * Sort user properties by name (stable, so values of one name keep their order). Only for
   * comparisons with mqtt-packet, whose object form cannot keep the order between names.
   */
  sortUserProperties?: boolean;
}

/**
 * Byte fields compare as "bytes:<hex>" strings: a Buffer and a Uint8Array with the same bytes are
 * equal, a plain Array is not, and deep-equality of megabyte payloads stays fast.
 */
function canonBytes(x: unknown): unknown {
  if (x instanceof Uint8Array) return 'bytes:' + toHex(x);
  return x;
}

function canonProperties(p: Properties | undefined, opts: CanonOptions): Properties | undefined {
  if (p === undefined || p === null) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(p)) {
    const v = (p as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (k === 'userProperties') {
      const list = (v as Array<[string, string]>).map((e) => [e[0], e[1]] as [string, string]);
      if (list.length === 0) continue;
      if (opts.sortUserProperties) {
        const idx = list.map((e, i) => ({ e, i }));
        idx.sort((a, b) => (a.e[0] < b.e[0] ? -1 : a.e[0] > b.e[0] ? 1 : a.i - b.i));
        out[k] = idx.map((x) => x.e);
      } else out[k] = list;
      continue;
    }
    if (k === 'subscriptionIdentifiers') {
      const list = (v as number[]).slice();
      if (list.length === 0) continue;
      out[k] = list;
      continue;
    }
    out[k] = canonBytes(v);
  }
  return Object.keys(out).length === 0 ? undefined : (out as Properties);
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/**
 * The form two packets are compared in: Buffers become plain Uint8Arrays, undefined fields and
 * empty `properties` are dropped, v5 subscription options get their defaults (v4 loses them when
 * they are the defaults). Everything that carries meaning is kept, including user property order
 * (unless sortUserProperties).
 */
export function canon(packet: Packet, version: Version, opts?: CanonOptions): Record<string, unknown> {
  const o = opts || {};
  const src = packet as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(src)) out[k] = canonBytes(src[k]);
  if ('properties' in out) out.properties = canonProperties(out.properties as Properties, o);
  if (out.will && typeof out.will === 'object') {
    const w = { ...(out.will as Record<string, unknown>) };
    w.payload = canonBytes(w.payload);
    if ('properties' in w) w.properties = canonProperties(w.properties as Properties, o);
    out.will = dropUndefined(w);
  }
  if (Array.isArray(out.subscriptions)) {
    out.subscriptions = (out.subscriptions as Array<Record<string, unknown>>).map((sub) => {
      const c: Record<string, unknown> = { ...sub };
      if (version === 5) {
        if (c.noLocal === undefined) c.noLocal = false;
        if (c.retainAsPublished === undefined) c.retainAsPublished = false;
        if (c.retainHandling === undefined) c.retainHandling = 0;
      } else {
        if (c.noLocal === false) delete c.noLocal;
        if (c.retainAsPublished === false) delete c.retainAsPublished;
        if (c.retainHandling === 0) delete c.retainHandling;
      }
      return dropUndefined(c);
    });
  }
  if (Array.isArray(out.reasonCodes)) out.reasonCodes = (out.reasonCodes as number[]).slice();
  if (Array.isArray(out.topics)) out.topics = (out.topics as string[]).slice();
  return dropUndefined(out);
}

/**
 * What the decoder must return for a packet the application handed to encode(): the CONNECT gets
 * its protocolVersion, and v5 acks, DISCONNECT and AUTH always carry a reasonCode (0 when the
 * short form omitted it), as types.ts documents.
 */
export function decodedForm(packet: Packet, version: Version): Packet {
  const p = { ...(packet as unknown as Record<string, unknown>) } as Record<string, unknown>;
  const t = p.type as number;
  if (t === 1) p.protocolVersion = version;
  if (version === 5 && (t === 4 || t === 5 || t === 6 || t === 7 || t === 14 || t === 15)) {
    if (p.reasonCode === undefined) p.reasonCode = 0;
  }
  if (t === 3 && !(p.qos as number)) delete p.packetId;
  return p as unknown as Packet;
}

/** Runs fn and returns the thrown value, or fails if nothing was thrown. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw, but the call returned');
}

/** Describes a thrown value for assertion messages. */
export function describeThrown(e: unknown): string {
  if (e instanceof ProtocolError) return 'ProtocolError(' + e.rule + ', 0x' + e.reasonCode.toString(16) + '): ' + e.message;
  if (e instanceof Error) return (e.constructor ? e.constructor.name : 'Error') + ': ' + e.message + '\n' + e.stack;
  return typeof e + ': ' + String(e);
}

export { encode, createDecoder, ProtocolError };
