// Byte-level reader and writer over Uint8Array: big-endian integers, Variable Byte Integers,
// length-prefixed UTF-8 strings and binary data. Payload bytes are copied with set/subarray.

import { ProtocolError, Reason } from './errors';
import { utf8Read, utf8Write } from './utf8';

export const VARINT_MAX = 268435455;

export function varintSize(v: number): number {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

function truncated(): ProtocolError {
  return new ProtocolError('1.5', 'truncated', Reason.MALFORMED_PACKET);
}

export class Reader {
  buf: Uint8Array;
  pos: number;
  end: number;
  /** Protocol level, for version-specific rules (4 or 5). */
  version: number;

  constructor() {
    this.buf = new Uint8Array(0);
    this.pos = 0;
    this.end = 0;
    this.version = 4;
  }

  u8(): number {
    if (this.pos >= this.end) throw truncated();
    return this.buf[this.pos++];
  }

  u16(): number {
    const p = this.pos;
    if (p + 2 > this.end) throw truncated();
    this.pos = p + 2;
    return (this.buf[p] << 8) | this.buf[p + 1];
  }

  u32(): number {
    const p = this.pos;
    if (p + 4 > this.end) throw truncated();
    this.pos = p + 4;
    const b = this.buf;
    return b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  /** Variable Byte Integer: at most 4 bytes, minimal encoding [MQTT-1.5.5-1]. */
  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) {
        if (i > 0 && b === 0) {
          throw new ProtocolError('1.5.5-1', 'non-minimal varint', Reason.MALFORMED_PACKET);
        }
        return v;
      }
      mul *= 128;
    }
    throw new ProtocolError('1.5.5-1', 'varint over 4 bytes', Reason.MALFORMED_PACKET);
  }

  str(): string {
    const n = this.u16();
    const p = this.pos;
    if (p + n > this.end) throw truncated();
    this.pos = p + n;
    return utf8Read(this.buf, p, p + n);
  }

  /** Binary Data: a copy, never a view of the input. */
  bin(): Uint8Array {
    const n = this.u16();
    const p = this.pos;
    if (p + n > this.end) throw truncated();
    this.pos = p + n;
    return new Uint8Array(this.buf.subarray(p, p + n));
  }

  packetId(): number {
    const id = this.u16();
    if (id === 0) {
      throw new ProtocolError(
        this.version === 5 ? '2.2.1-3' : '2.3.1-1',
        'packet id 0',
        Reason.PROTOCOL_ERROR,
      );
    }
    return id;
  }

  /** Throws unless every byte of the packet was consumed. */
  done(): void {
    if (this.pos !== this.end) {
      throw new ProtocolError('2.1.4', 'trailing bytes', Reason.MALFORMED_PACKET);
    }
  }
}

export class Writer {
  buf: Uint8Array;
  pos: number;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.pos = 0;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    this.buf[this.pos++] = v >> 8;
    this.buf[this.pos++] = v & 0xff;
  }

  u32(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = (v / 0x1000000) & 0xff;
    b[p + 1] = (v >> 16) & 0xff;
    b[p + 2] = (v >> 8) & 0xff;
    b[p + 3] = v & 0xff;
    this.pos = p + 4;
  }

  varint(v: number): void {
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) b |= 0x80;
      this.buf[this.pos++] = b;
    } while (v > 0);
  }

  /** Length-prefixed UTF-8; the caller measured it (utf8Length) when sizing the buffer. */
  str(s: string): void {
    const start = this.pos + 2;
    const end = utf8Write(s, this.buf, start);
    const n = end - start;
    this.buf[start - 2] = n >> 8;
    this.buf[start - 1] = n & 0xff;
    this.pos = end;
  }

  bin(b: Uint8Array): void {
    this.u16(b.length);
    this.bytes(b);
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}
