// The byte cursor both directions share, and its field primitives.
//
// One walk per packet layout serves decoding and encoding (packets.ts): every primitive reads a
// field in READ mode, and in SIZE / WRITE mode takes the application's value and counts or writes
// it, returning the value either way. So a layout and its checks are written once: a check placed
// after a primitive sees the wire value when decoding and the application's value when encoding.
// encode() walks a packet twice, SIZE then WRITE, so every check has run (and thrown) before the
// exactly-sized buffer is allocated or a byte is written.
//
// The cursor is module state, not an object: the codec is synchronous and never re-entered (no
// callback runs while a packet is read or written), so one cursor serves every decoder and every
// encode() call, and each entry point sets all of it before use (begin()). Plain module variables
// also minify to single letters, which matters for the 10 KB budget.

import { malformed, refuse } from './errors';
import { utf8Length, utf8Read, utf8Write } from './utf8';

export const enum Mode {
  READ = 0,
  SIZE = 1,
  WRITE = 2,
}

export const EMPTY = new Uint8Array(0);

/** Current direction. */
export let mode: Mode = Mode.READ;
/** Packet bytes (READ, WRITE). */
export let buf: Uint8Array = EMPTY;
/** Cursor: next byte to read, or bytes counted / written so far. */
export let pos = 0;
/** READ: end of the packet, or of the property block being read. */
export let end = 0;
/** Protocol level of the packet: 4 (3.1.1) or 5 (5.0). */
export let ver = 4;

export function begin(m: Mode, b: Uint8Array, p: number, e: number, v: number): void {
  mode = m;
  buf = b;
  pos = p;
  end = e;
  ver = v;
}

/** Sets the protocol level (a decoded CONNECT names its own). */
export function setVersion(v: number): void {
  ver = v;
}

/** READ: narrows (or restores) the readable end; returns the previous one. */
export function setEnd(e: number): number {
  const was = end;
  end = e;
  return was;
}

/** Advances over n bytes (READ: they must be there); returns where they start. */
export function take(n: number): number {
  const p = pos;
  if (!mode && p + n > end) malformed('1.5', 'truncated');
  pos = p + n;
  return p;
}

/** Runs f in SIZE mode from the current position; returns the bytes it counted (the cursor is restored). */
export function measure(f: () => void): number {
  const m = mode;
  const p = pos;
  mode = Mode.SIZE;
  f();
  const n = pos - p;
  mode = m;
  pos = p;
  return n;
}

/** READ: the rest of the packet, a view (or a copy when it is under half of `viewFrom` bytes). */
export function rest(viewFrom: number): Uint8Array {
  const b = buf.subarray(take(end - pos), end);
  return b.length * 2 >= viewFrom ? b : new Uint8Array(b);
}

export function u8(v?: any): number {
  const p = take(1);
  if (!mode) return buf[p];
  if (mode > 1) buf[p] = v;
  return v;
}

export function u16(v?: any): number {
  const p = take(2);
  if (!mode) return (buf[p] << 8) | buf[p + 1];
  if (mode > 1) {
    buf[p] = v >> 8;
    buf[p + 1] = v;
  }
  return v;
}

export function u32(v?: any): number {
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

/** Variable Byte Integer: at most 4 bytes, minimal encoding [MQTT-1.5.5-1]. Writes a checked value. */
export function vbi(v?: any): number {
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
    if (b < 0x80 ? m > 1 && !b : m > 0x1fffff) malformed('1.5.5-1', 'bad varint');
    if (b < 0x80) return x;
  }
}

/** Bytes a Variable Byte Integer takes. */
export function vbiSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : 4;
}

/** UTF-8 string with a 2-byte length [MQTT-1.5.4]. */
export function str(s?: any): string {
  if (!mode) {
    const n = u16();
    const p = take(n);
    return utf8Read(buf, p, p + n);
  }
  let n = 0;
  if (typeof s !== 'string' || (n = utf8Length(s)) > 0xffff) refuse('1.5.4', 'not a string < 64 KB');
  u16(n);
  if (mode > 1) utf8Write(s, buf, pos);
  take(n);
  return s;
}

/** Binary Data with a 2-byte length [MQTT-1.5.6]; READ gives a copy, never a view of the input. */
export function bin(b?: any): Uint8Array {
  if (!mode) {
    const n = u16();
    const p = take(n);
    return new Uint8Array(buf.subarray(p, p + n));
  }
  if (!(b instanceof Uint8Array) || b.length > 0xffff) refuse('1.5.6', 'not bytes < 64 KB');
  u16(b.length);
  return bytes(b);
}

/** SIZE / WRITE: raw bytes (a payload), copied with set. */
export function bytes(b: any): Uint8Array {
  if (!(b instanceof Uint8Array)) refuse('3.3.3', 'payload not bytes');
  const p = take(b.length);
  if (mode > 1) buf.set(b, p);
  return b;
}

/** An unsigned integer no larger than max (SIZE / WRITE: checks the application's value). */
export function isUint(v: any, max: number): boolean {
  return v === v >>> 0 && v <= max;
}
