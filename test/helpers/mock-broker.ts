// A scripted MQTT broker on the mock network (virtual time): decodes what the client writes with our
// codec, answers by default like a well-behaved broker, and lets a test override any answer or inject
// raw bytes (garbage, a second CONNACK, an ack for an id never issued...).
import { createDecoder, encode } from '../../firmware/mqtt/index';
import { PacketType } from '../../firmware/mqtt/types';
import type { Packet, Version } from '../../firmware/mqtt/types';
import type { MockNetwork, MockPeer, ListenOptions } from '../../hal/mock/index';

export interface MockBrokerOptions {
  /** Versions the broker accepts; a v5 CONNECT to a 3.1.1-only broker gets a 3.1.1 CONNACK rc 1 (like Aedes). */
  versions?: Version[];
  /** CONNACK return/reason code for every CONNECT (default 0). */
  connackCode?: number;
  /** Session present flag (default: true when the client asked for a persistent session and one exists). */
  sessionPresent?: boolean;
  /** v5 CONNACK properties. */
  connackProps?: Packet extends never ? never : Record<string, unknown>;
  /** Answer PUBLISH/PUBREL/SUBSCRIBE/PINGREQ automatically (default true). */
  autoAck?: boolean;
  /** Answer PINGREQ (default true). */
  pingresp?: boolean;
  listen?: ListenOptions;
}

export interface Received {
  at: number;
  conn: number;
  packet: Packet;
}

export class MockBroker {
  opts: MockBrokerOptions;
  received: Received[] = [];
  peers: MockPeer[] = [];
  versionOf: Version[] = [];
  /** Per connection: the time of the last packet in either direction (a NAT's idle timer). */
  activity: number[] = [];
  /** Client ids that have a session here (for sessionPresent). */
  sessions: string[] = [];
  now: () => number;

  constructor(net: MockNetwork, host: string, port: number, now: () => number, opts?: MockBrokerOptions) {
    this.opts = opts ?? {};
    this.now = now;
    net.listen(host, port, this.opts.listen ?? {}, (peer) => this.accept(peer));
  }

  get last(): MockPeer {
    return this.peers[this.peers.length - 1];
  }

  /** Packets of a type received (all connections). */
  of(type: number): Packet[] {
    return this.received.filter((r) => r.packet.type === type).map((r) => r.packet);
  }

  /** Send a packet to the latest connection, encoded for its version. */
  send(p: Packet, conn?: number): void {
    const i = conn ?? this.peers.length - 1;
    this.activity[i] = this.now();
    this.peers[i].send(encode(p, this.versionOf[i] ?? 4));
  }

  private accept(peer: MockPeer): void {
    const conn = this.peers.length;
    this.peers.push(peer);
    this.activity[conn] = this.now();
    let dec = createDecoder(5, 1 << 20);
    let version: Version | undefined;
    peer.onData = (bytes) => {
      this.activity[conn] = this.now();
      let packets: Packet[];
      try {
        packets = dec.push(bytes);
      } catch (e) {
        peer.reset();
        return;
      }
      for (const p of packets) {
        if (p.type === PacketType.CONNECT) {
          version = p.protocolVersion as Version;
          this.versionOf[conn] = version;
          dec = createDecoder(version, 1 << 20);
        }
        this.received.push({ at: this.now(), conn, packet: p });
        this.answer(peer, conn, p, version ?? 4);
      }
    };
  }

  private answer(peer: MockPeer, conn: number, p: Packet, v: Version): void {
    const o = this.opts;
    const auto = o.autoAck !== false;
    const out = (q: Packet) => {
      this.activity[conn] = this.now();
      peer.send(encode(q, v));
    };
    switch (p.type) {
      case PacketType.CONNECT: {
        const versions = o.versions ?? [4, 5];
        if (versions.indexOf(v) < 0) {
          peer.send([0x20, 0x02, 0x00, 0x01]);
          peer.end();
          return;
        }
        const code = o.connackCode ?? 0;
        const had = this.sessions.indexOf(p.clientId) >= 0;
        if (code === 0 && !p.clean && !had) this.sessions.push(p.clientId);
        if (p.clean) this.sessions = this.sessions.filter((c) => c !== p.clientId);
        const present = code === 0 && !p.clean && (o.sessionPresent ?? had);
        const ack: Packet = { type: PacketType.CONNACK, sessionPresent: present, reasonCode: code };
        if (v === 5 && o.connackProps) ack.properties = o.connackProps as never;
        out(ack);
        return;
      }
      case PacketType.PUBLISH:
        if (!auto) return;
        if (p.qos === 1) out({ type: PacketType.PUBACK, packetId: p.packetId as number });
        if (p.qos === 2) out({ type: PacketType.PUBREC, packetId: p.packetId as number });
        return;
      case PacketType.PUBREL:
        if (auto) out({ type: PacketType.PUBCOMP, packetId: p.packetId });
        return;
      case PacketType.SUBSCRIBE:
        if (auto) out({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: p.subscriptions.map((s) => s.qos) });
        return;
      case PacketType.UNSUBSCRIBE:
        if (auto) out({ type: PacketType.UNSUBACK, packetId: p.packetId, reasonCodes: v === 5 ? p.topics.map(() => 0) : undefined });
        return;
      case PacketType.PINGREQ:
        if (o.pingresp !== false) out({ type: PacketType.PINGRESP });
        return;
      case PacketType.DISCONNECT:
        peer.end();
        return;
    }
    void conn;
  }
}
