// UTF-8 for MQTT strings without TextEncoder/TextDecoder (Espruino has neither).
// MQTT forbids ill-formed UTF-8 and UTF-16 surrogate code points [MQTT-1.5.4-1] and U+0000
// [MQTT-1.5.4-2]. Both directions check both.

import { ProtocolError, Reason } from './errors';

// String.fromCharCode.apply takes at most 256 arguments on Espruino.
const APPLY_MAX = 256;

// Engines differ in what a string is:
// - Node: UTF-16 code units; characters above U+FFFF are surrogate pairs.
// - Espruino (ESP32 builds, no ESPR_UNICODE_SUPPORT): byte strings. A string written in source is
//   already its UTF-8 bytes, and String.fromCharCode keeps only the low byte of a code.
// - Espruino with unicode support: a "UTF8 string" (E.isUTF8) whose charCodeAt gives code points;
//   E.asUTF8 makes one from UTF-8 bytes. Other strings there are byte strings too.
// On Espruino byte strings go to the wire as they are (checked to be well-formed UTF-8) and come back
// as byte strings (made UTF8 strings where the engine has them), converted natively, not per byte.
declare const E: any;
// (Decided by the presence of Espruino's E, which a bundler cannot fold away, unlike a probe such as
// String.fromCharCode(0x100).charCodeAt(0), which esbuild evaluates at build time.)
const BYTE_STRINGS = typeof E !== 'undefined';
let UTF8_STRINGS = false;
if (BYTE_STRINGS) {
  try {
    UTF8_STRINGS = E.isUTF8(E.asUTF8('\xc3\xa9'));
  } catch (e) {
    UTF8_STRINGS = false; // "Unicode not supported on this build" (the ESP32 builds)
  }
}

function isByteString(s: string): boolean {
  return BYTE_STRINGS && !(UTF8_STRINGS && E.isUTF8(s));
}

function fromCodes(codes: ArrayLike<number>): string {
  const n = codes.length;
  if (n <= APPLY_MAX) return String.fromCharCode.apply(null, codes as number[]);
  let s = '';
  for (let i = 0; i < n; i += APPLY_MAX) {
    const part = (codes as Uint8Array).subarray
      ? (codes as Uint8Array).subarray(i, i + APPLY_MAX)
      : [].slice.call(codes, i, i + APPLY_MAX);
    s += String.fromCharCode.apply(null, part as number[]);
  }
  return s;
}

function badUtf8(what: string): ProtocolError {
  return new ProtocolError('1.5.4-1', what, Reason.MALFORMED_PACKET);
}

/** Number of UTF-8 bytes in s. Throws ProtocolError for a lone surrogate or U+0000. */
export function utf8Length(s: string): number {
  if (isByteString(s)) {
    const b = E.toUint8Array(s);
    utf8Read(b, 0, b.length); // validates; throws ProtocolError on ill-formed UTF-8 or U+0000
    return b.length;
  }
  const n = s.length;
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) throw new ProtocolError('1.5.4-2', 'U+0000 in string');
    } else if (c < 0x800) {
      len += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) throw badUtf8('lone surrogate');
      len += 2; // 4 bytes for 2 UTF-16 units
      i++;
    } else if (c > 0xffff) {
      len += 3; // a code point from a unicode Espruino string
    } else {
      len += 2;
    }
  }
  return len;
}

/** Writes s (already measured with utf8Length) into buf at pos; returns the new position. */
export function utf8Write(s: string, buf: Uint8Array, pos: number): number {
  if (isByteString(s)) {
    const b = E.toUint8Array(s);
    buf.set(b, pos);
    return pos + b.length;
  }
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if ((c >= 0xd800 && c <= 0xdbff) || c > 0xffff) {
      if (c <= 0xffff) c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      buf[pos++] = 0xf0 | (c >> 18);
      buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/**
 * Decodes buf[start, end) as MQTT UTF-8. Throws ProtocolError (0x81 Malformed Packet) on ill-formed
 * sequences, overlong forms, surrogates, code points above U+10FFFF and U+0000.
 */
export function utf8Read(buf: Uint8Array, start: number, end: number): string {
  let i = start;
  // Fast path: ASCII, checked with one loop, converted natively.
  while (i < end) {
    const b = buf[i];
    if (b === 0) throw new ProtocolError('1.5.4-2', 'U+0000 in string');
    if (b >= 0x80) break;
    i++;
  }
  if (i === end) return fromCodes(buf.subarray(start, end));
  const units: number[] = [];
  if (!BYTE_STRINGS) for (let j = start; j < i; j++) units.push(buf[j]);
  while (i < end) {
    const b = buf[i++];
    if (b < 0x80) {
      if (b === 0) throw new ProtocolError('1.5.4-2', 'U+0000 in string');
      if (!BYTE_STRINGS) units.push(b);
      continue;
    }
    let cp: number;
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      cp = b & 0x1f;
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      cp = b & 0x0f;
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      cp = b & 0x07;
      need = 3;
      min = 0x10000;
    } else {
      throw badUtf8('bad UTF-8 0x' + b.toString(16));
    }
    if (i + need > end) throw badUtf8('truncated UTF-8');
    for (let k = 0; k < need; k++) {
      const c = buf[i++];
      if ((c & 0xc0) !== 0x80) throw badUtf8('bad UTF-8');
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min) throw badUtf8('overlong UTF-8');
    if (cp >= 0xd800 && cp <= 0xdfff) throw badUtf8('UTF-8 surrogate');
    if (cp > 0x10ffff) throw badUtf8('UTF-8 over U+10FFFF');
    if (BYTE_STRINGS) {
      // validated only; converted natively below
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      units.push(cp);
    }
  }
  if (BYTE_STRINGS) {
    const bin: string = E.toString(buf.subarray(start, end));
    return UTF8_STRINGS ? E.asUTF8(bin) : bin;
  }
  return fromCodes(units);
}
