// Packet objects -> bytes. The packet is walked twice by the same layout code the decoder uses
// (packets.ts): first counting bytes, which checks every field (a bad packet is a ProtocolError,
// never bad bytes on the wire), then writing into a buffer of exactly that size.

import { Reason, refuse } from './errors';
import { body, fixedFlags } from './packets';
import type { Packet, Version } from './types';
import { begin, EMPTY, Mode, pos, u8, vbi, vbiSize } from './wire';

/**
 * Encodes one control packet for protocol version 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
 * Throws ProtocolError when the packet is not valid for that version.
 */
export function encode(packet: Packet, version: Version): Uint8Array {
  if (version !== 4 && version !== 5) refuse('3.1.2-2', 'version not 4/5');
  const type = packet && (packet as { type: any }).type;
  if (!type || type !== (type & 15) || (type === 15 && version < 5)) refuse('2.1.2', 'packet type ' + type);
  begin(Mode.SIZE, EMPTY, 0, 0, version);
  const flags = body(packet, type, fixedFlags(type));
  const n = pos;
  if (n > 268435455) refuse('2.2.3', 'packet too large', Reason.PACKET_TOO_LARGE);
  const out = new Uint8Array(1 + vbiSize(n) + n);
  begin(Mode.WRITE, out, 0, 0, version);
  u8((type << 4) | flags);
  vbi(n);
  body(packet, type, flags);
  begin(Mode.READ, EMPTY, 0, 0, 4); // do not pin the buffer
  return out;
}
