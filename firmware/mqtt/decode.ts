// Bytes -> packet objects, streaming. The fixed header is checked as soon as it is complete (type,
// flags, remaining length against maxPacketSize) so an oversized or bogus packet is refused before
// its body is buffered. Complete packets inside a chunk are decoded in place; only an incomplete
// tail is copied, into a buffer of exactly the packet's size.

import { malformed, ProtocolError, Reason, refuse } from './errors';
import { decodePacket, fixedFlags, publishFlags } from './packets';
import { PacketType } from './types';
import type { Decoder, Packet, Version } from './types';

/** Fixed header at data[pos, n): the packet's total length, or -1 when more bytes are needed. */
function header(data: Uint8Array, pos: number, n: number, max: number, version: number): number {
  const type = data[pos] >> 4;
  const flags = data[pos] & 15;
  const v5 = version > 4;
  if (!type || (type === PacketType.AUTH && !v5)) malformed(v5 ? '2.1.2' : '2.2.1', 'packet type ' + type);
  if (type === PacketType.PUBLISH) publishFlags(flags);
  else if (flags !== fixedFlags(type)) malformed(v5 ? '2.1.3-1' : '2.2.2-2', 'bad flags');
  let rem = 0;
  for (let i = pos + 1, m = 1; ; m *= 128) {
    if (i >= n) return -1;
    const b = data[i++];
    rem += (b & 0x7f) * m;
    if (b < 0x80) {
      if (m > 1 && !b && v5) malformed('1.5.5-1', 'bad remaining length');
      const total = i - pos + rem;
      if (total > max) refuse(v5 ? '3.1.2-24' : '2.2.3', 'packet of ' + total + ' > ' + max + ' bytes', Reason.PACKET_TOO_LARGE);
      return total;
    }
    if (m > 0x1fffff) malformed(v5 ? '1.5.5-1' : '2.2.3', 'bad remaining length');
  }
}

/**
 * A stream decoder for one connection speaking `version`. Packets larger than maxPacketSize bytes
 * (whole packet, fixed header included) are refused from their fixed header alone.
 */
export function createDecoder(version: Version, maxPacketSize: number): Decoder {
  if (version !== 4 && version !== 5) refuse('3.1.2-2', 'version not 4/5');
  if (!(maxPacketSize >= 2)) refuse('3.1.2-24', 'maxPacketSize < 2');
  const max = Math.min(maxPacketSize, 268435460);
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
      let pos = 0;
      try {
        // 1. Finish a packet held from earlier chunks.
        while (held && pos < n) {
          if (!need) {
            part[held++] = chunk[pos++];
            const total = header(part, 0, held, max, version);
            if (total < 0) continue;
            part = new Uint8Array(total);
            part.set(head.subarray(0, held));
            need = total;
          }
          const take = Math.min(need - held, n - pos);
          part.set(chunk.subarray(pos, pos + take), held);
          held += take;
          pos += take;
          if (held === need) {
            const whole = part;
            reset();
            out.push(decodePacket(whole, 0, whole.length, version, 0));
          }
        }
        // 2. Whole packets straight from the chunk; 3. keep an incomplete tail.
        while (pos < n) {
          const total = header(chunk, pos, n, max, version);
          if (total < 0 || pos + total > n) {
            if (total > 0) part = new Uint8Array((need = total));
            part.set(chunk.subarray(pos, n));
            held = n - pos;
            break;
          }
          out.push(decodePacket(chunk, pos, pos + total, version, n));
          pos += total;
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
