// UTF-8 for MQTT strings without TextEncoder/TextDecoder (Espruino has neither).
// MQTT forbids ill-formed UTF-8 and UTF-16 surrogate code points [MQTT-1.5.4-1] and U+0000
// [MQTT-1.5.4-2]. Both directions check both.

import { malformed } from './errors';

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
    // Bytes built at run time: a literal would be bundled as UTF-8 (and break ASCII-only uploads).
    UTF8_STRINGS = E.isUTF8(E.asUTF8(E.toString(new Uint8Array([0xc3, 0xa9]))));
  } catch (e) {
    // "Unicode not supported on this build" (the ESP32 builds)
  }
}

/** Smallest code point for a sequence with 1, 2 or 3 continuation bytes (anything less is overlong). */
const MIN = [0, 0x80, 0x800, 0x10000];

function ill(): never {
  return malformed('1.5.4-1', 'bad UTF-8');
}

function nul(): never {
  return malformed('1.5.4-2', 'U+0000');
}

/**
 * The UTF-8 of s, checked: written into buf at pos when buf is given. Returns pos plus the byte count
 * (utf8Length and utf8Write are this one function). Throws ProtocolError for a lone surrogate or
 * U+0000 (and, for Espruino byte strings, ill-formed UTF-8).
 */
function encodeInto(s: string, buf?: Uint8Array, pos?: number): number {
  let n = pos || 0;
  if (BYTE_STRINGS && !(UTF8_STRINGS && E.isUTF8(s))) {
    const b: Uint8Array = E.toUint8Array(s);
    utf8Read(b, 0, b.length); // validates
    if (buf) buf.set(b, n);
    return n + b.length;
  }
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >> 10 === 54) {
      // high surrogate: must pair with a low one (0xdc00..0xdfff); at the end charCodeAt gives NaN
      const d = s.charCodeAt(++i);
      if (d >> 10 !== 55) ill();
      c = (c << 10) + d - 0x35fdc00;
    } else if (c >> 11 === 27) {
      ill(); // lone low surrogate
    } else if (!c) {
      nul();
    }
    // continuation bytes: 0 (ASCII), 1, 2, or 3 (above U+FFFF: a pair, or a unicode Espruino code point)
    const k = c < 0x80 ? 0 : c < 0x800 ? 1 : c < 0x10000 ? 2 : 3;
    if (buf) {
      buf[n] = k ? ((0xff00 >> (k + 1)) & 0xff) | (c >> (6 * k)) : c;
      for (let j = k; j > 0; j--) buf[n + j] = 0x80 | ((c >> (6 * (k - j))) & 0x3f);
    }
    n += k + 1;
  }
  return n;
}

/** utf8Length(s): number of UTF-8 bytes in s. Throws ProtocolError for a lone surrogate or U+0000. */
export const utf8Length: (s: string) => number = encodeInto;

/** utf8Write(s, buf, pos): writes s (measured with utf8Length) into buf at pos; returns the new position. */
export const utf8Write: (s: string, buf: Uint8Array, pos: number) => number = encodeInto;

/**
 * Decodes buf[start, end) as MQTT UTF-8. Throws ProtocolError (0x81 Malformed Packet) on ill-formed
 * sequences, overlong forms, surrogates, code points above U+10FFFF and U+0000.
 */
export function utf8Read(buf: Uint8Array, start: number, end: number): string {
  // UTF-16 code units (never more than the bytes), converted in one native call per 256 (the most
  // fromCharCode.apply takes on Espruino): faster than concatenating, and a flat string.
  const units: number[] = BYTE_STRINGS ? [] : new Array(end - start);
  let n = 0;
  let ascii = true;
  for (let i = start; i < end; ) {
    let c = buf[i++];
    if (c > 0x7f) {
      ascii = false;
      // continuation bytes: 1 for c2..df, 2 for e0..ef, 3 for f0..f7 (f5..f7 end above U+10FFFF)
      const k = c > 0xf7 ? 0 : c > 0xef ? 3 : c > 0xdf ? 2 : c > 0xc1 ? 1 : 0;
      if (!k || i + k > end) ill();
      c &= 0x3f >> k;
      for (let j = 0; j < k; j++) {
        const x = buf[i++];
        if ((x & 0xc0) !== 0x80) ill();
        c = (c << 6) | (x & 0x3f);
      }
      if (c < MIN[k] || c > 0x10ffff || c >> 11 === 27) ill();
    } else if (!c) {
      nul();
    }
    if (!BYTE_STRINGS) {
      if (c > 0xffff) {
        units[n++] = 0xd7c0 + (c >> 10);
        c = 0xdc00 | (c & 0x3ff);
      }
      units[n++] = c;
    }
  }
  let s = '';
  if (BYTE_STRINGS) {
    // validated above; converted natively (a UTF8 string where the engine has them)
    s = E.toString(buf.subarray(start, end));
    return UTF8_STRINGS && !ascii ? E.asUTF8(s) : s;
  }
  units.length = n;
  for (let i = 0; i < n; i += 256) s += String.fromCharCode.apply(null, n > 256 ? units.slice(i, i + 256) : units);
  return s;
}
