// The radio meter: a Transport wrapper between the firmware and the mock network that records every
// MQTT packet on the air (direction, type, size, virtual time) and every connection opened. The power
// model (power.ts) turns these records into radio-on time, bytes on the air and charge.
import type { OpenOptions, Transport, TransportHandler } from '../../hal/types';
import type { MockTransport } from '../../hal/mock/index';

export interface AirPacket {
  at: number;
  dir: 'tx' | 'rx';
  /** MQTT control packet type (1 CONNECT ... 14 DISCONNECT). */
  type: number;
  /** MQTT bytes (fixed header included). */
  bytes: number;
}

/** Packet types that start an exchange (the rest answer one, or belong to the connection setup). */
const STARTS_EXCHANGE: { [type: number]: boolean } = {
  3: true, // PUBLISH (either way)
  6: true, // PUBREL (QoS 2, second half)
  8: true, // SUBSCRIBE
  10: true, // UNSUBSCRIBE
  12: true, // PINGREQ
  14: true, // DISCONNECT
};

export const PACKET_NAMES = ['', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

export function startsExchange(p: AirPacket): boolean {
  return STARTS_EXCHANGE[p.type] === true;
}

/** Everything one side put on the air. */
export class Radio {
  packets: AirPacket[] = [];
  /** Times of Transport.open() calls (each one is a full reconnect in the power model). */
  connects: number[] = [];

  count(dir: 'tx' | 'rx', type: number): number {
    let n = 0;
    for (const p of this.packets) if (p.dir === dir && p.type === type) n++;
    return n;
  }
}

/**
 * Splits a byte stream into MQTT packets (fixed header: type nibble, remaining length varint) and
 * reports each complete one; a partial packet waits for the next chunk.
 */
class Framer {
  private buf: Uint8Array = new Uint8Array(0);
  constructor(private readonly onPacket: (type: number, bytes: number) => void) {}

  push(chunk: Uint8Array): void {
    let b = chunk;
    if (this.buf.length) {
      b = new Uint8Array(this.buf.length + chunk.length);
      b.set(this.buf, 0);
      b.set(chunk, this.buf.length);
    }
    let i = 0;
    for (;;) {
      if (b.length - i < 2) break;
      let len = 0;
      let mul = 1;
      let j = i + 1;
      let complete = false;
      while (j < b.length && j < i + 5) {
        const d = b[j++];
        len += (d & 0x7f) * mul;
        mul *= 128;
        if ((d & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || b.length < j + len) break;
      this.onPacket(b[i] >> 4, j + len - i);
      i = j + len;
    }
    this.buf = i < b.length ? b.slice(i) : new Uint8Array(0);
  }

  reset(): void {
    this.buf = new Uint8Array(0);
  }
}

export class MeteredTransport implements Transport {
  private tx: Framer;
  private rx: Framer;

  constructor(
    private readonly inner: MockTransport,
    private readonly radio: Radio,
    private readonly now: () => number,
  ) {
    this.tx = new Framer((type, bytes) => radio.packets.push({ at: now(), dir: 'tx', type, bytes }));
    this.rx = new Framer((type, bytes) => radio.packets.push({ at: now(), dir: 'rx', type, bytes }));
  }

  setHandler(h: TransportHandler): void {
    const rx = this.rx;
    this.inner.setHandler({
      onOpen: () => h.onOpen(),
      onData: (b) => {
        rx.push(b);
        h.onData(b);
      },
      onDrain: () => h.onDrain(),
      onError: (e) => h.onError(e),
      onClose: () => h.onClose(),
    });
  }

  open(o: OpenOptions): void {
    this.radio.connects.push(this.now());
    this.tx.reset();
    this.rx.reset();
    this.inner.open(o);
  }

  write(bytes: Uint8Array): boolean {
    // Bytes written to a connection that is not open are dropped by the transport: not on the air.
    if (this.inner.state === 'open') this.tx.push(bytes);
    return this.inner.write(bytes);
  }

  close(): void {
    this.inner.close();
  }
}
