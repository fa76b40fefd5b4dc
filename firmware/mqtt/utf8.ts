// UTF-8 for MQTT strings without TextEncoder/TextDecoder (Espruino has neither).
// MQTT forbids ill-formed UTF-8 and UTF-16 surrogate code points [MQTT-1.5.4-1] and U+0000
// [MQTT-1.5.4-2]. Both directions check both, in one place: check(), over the UTF-8 bytes.

import { malformed } from './errors';

// Engines differ in what a string is:
// - Espruino (ESP32 builds, no unicode support): byte strings. A string written in source is
//   already its UTF-8 bytes; E.toUint8Array and E.toString convert natively, not per byte.
// - Espruino with unicode support (the Linux build): also "UTF8 strings" (E.isUTF8), whose
//   charCodeAt gives code points. E.toUint8Array gives their UTF-8 bytes; E.asUTF8 makes one.
// - Node: UTF-16, encoded by a loop straight into the packet (the benchmark's path: npm run bench);
//   decoded with escape + decodeURIComponent after check().
declare const E: any;
// (Decided by the presence of Espruino's E, which a bundler cannot fold away, unlike a probe such as
// String.fromCharCode(0x100).charCodeAt(0), which esbuild evaluates at build time. A device build
// (WREN_DEVICE, firmware/flags.d.ts) always runs on Espruino: there it is true at build time, and the
// Node code below is left out. Written inline at each use: esbuild folds no module constant.)
const BYTE_STRINGS = typeof E !== 'undefined';
// JSON.parse makes a UTF8 string where the engine has them (an escape: the bundle stays ASCII)
const UTF8_STRINGS = (typeof WREN_DEVICE !== 'undefined' || BYTE_STRINGS) && E.isUTF8(JSON.parse('"\\u00e9"'));

/** Checks buf[start, end) is MQTT UTF-8 (see above). */
function check(buf: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; ) {
    let c = buf[i++];
    if (!c) malformed('1.5.4-2');
    if (c > 0x7f) {
      // continuation bytes: 1 for c2..df, 2 for e0..ef, 3 for f0..f7 (f5..f7 start above U+10FFFF)
      const k = c > 0xf7 ? 0 : c > 0xef ? 3 : c > 0xdf ? 2 : c > 0xc1 ? 1 : 0;
      // (bad: anything but 0 or false; a continuation byte is 10xxxxxx)
      let bad: any = !k || i + k > end;
      c &= 0x3f >> k;
      for (let j = k; j--; ) {
        const x = buf[i++];
        bad |= (x & 0xc0) ^ 0x80;
        c = (c << 6) | (x & 0x3f);
      }
      // Overlong: with k continuation bytes a code point is at least 2^(5k+1) (k = 2, 3; the leads
      // of k = 1 exclude c0 and c1). Then above U+10FFFF, and the surrogates d800..dfff.
      if (bad || c < 1 << (5 * k + 1) || c > 0x10ffff || c >> 11 === 27) malformed('1.5.4-1');
    }
  }
}

/**
 * Node: writes the UTF-8 of the UTF-16 string s into buf at pos (only counts without buf) and returns
 * the new position; refuses U+0000 and a lone surrogate. Always well-formed, so no check() after it.
 */
function nodeUtf8(s: string, buf: Uint8Array | undefined, pos: number): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      if (!c) malformed('1.5.4-2');
      if (buf) buf[pos] = c;
      pos++;
    } else if (c < 0x800) {
      if (buf) (buf[pos] = 0xc0 | (c >> 6)), (buf[pos + 1] = 0x80 | (c & 0x3f));
      pos += 2;
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = s.charCodeAt(i + 1);
        if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) malformed('1.5.4-1'); // a lone surrogate
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        if (buf) (buf[pos] = 0xf0 | (c >> 18)), (buf[pos + 1] = 0x80 | ((c >> 12) & 0x3f)), (buf[pos + 2] = 0x80 | ((c >> 6) & 0x3f)), (buf[pos + 3] = 0x80 | (c & 0x3f));
        pos += 4;
        continue;
      }
      if (buf) (buf[pos] = 0xe0 | (c >> 12)), (buf[pos + 1] = 0x80 | ((c >> 6) & 0x3f)), (buf[pos + 2] = 0x80 | (c & 0x3f));
      pos += 3;
    }
  }
  return pos;
}

/**
 * utf8Write(s, buf, pos): writes the UTF-8 of s into buf at pos (sized with utf8Length) and returns
 * the new position. Without buf it only counts: utf8Length is this function. Throws ProtocolError
 * for a lone surrogate or U+0000 (and, for Espruino byte strings, ill-formed UTF-8).
 */
export function utf8Write(s: string, buf?: Uint8Array, pos?: number): number {
  if (!(typeof WREN_DEVICE !== 'undefined' || BYTE_STRINGS)) return nodeUtf8(s, buf, pos || 0);
  const b = E.toUint8Array(s);
  check(b, 0, b.length);
  if (buf) buf.set(b, pos);
  return (pos || 0) + b.length;
}

// utf8Length(s): number of UTF-8 bytes in s. Throws ProtocolError for a lone surrogate or U+0000.
// (utf8Write under a second name: no variable of its own in a bundle)
export { utf8Write as utf8Length };

/**
 * Decodes buf[start, end) as MQTT UTF-8. Throws ProtocolError (0x81 Malformed Packet) on ill-formed
 * sequences, overlong forms, surrogates, code points above U+10FFFF and U+0000.
 */
export function utf8Read(buf: Uint8Array, start: number, end: number): string {
  check(buf, start, end);
  // Node: the bytes as a byte string, then decoded (they are well-formed: the decoding cannot fail)
  if (!(typeof WREN_DEVICE !== 'undefined' || BYTE_STRINGS)) {
    const t = String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
    for (let i = start; i < end; i++) if (buf[i] > 0x7f) return decodeURIComponent(escape(t));
    return t; // ASCII: the byte string is the string
  }
  // Espruino: a UTF8 string where the engine has them (for ASCII the same as a byte string)
  const b = E.toString(buf.subarray(start, end));
  return UTF8_STRINGS ? E.asUTF8(b) : b;
}
