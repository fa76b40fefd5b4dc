// The simulator's broker: a small MQTT 3.1.1/5.0 broker on the mock network (virtual time), with what a
// sleeping device needs from a real one and nothing more:
// - persistent sessions per client id (clean = false): subscriptions survive a disconnect, QoS >= 1
//   messages for an absent client are HELD and delivered after its next CONNACK (sessionPresent = 1),
//   unacknowledged ones are resent with DUP; QoS 0 messages for an absent client are dropped (as
//   mosquitto does by default);
// - a new connection with a client id already connected takes the session over (the old one is reset);
// - it counts what it received, for the delivery check: application messages by their "seq:N;"
//   payload prefix (duplicates counted once), acknowledged commands (QoS 1 PUBACK / QoS 2 PUBCOMP,
//   QoS 0 when written), and the device's status messages per connection.
// Wills, retained messages, session expiry and v5 flow control are not modelled (not needed here).
import { createDecoder, encode, utf8Read } from '../../firmware/mqtt/index';
import { PacketType } from '../../firmware/mqtt/types';
import type { Packet, PublishPacket, QoS, Version } from '../../firmware/mqtt/types';
import { topicMatches } from '../../firmware/client/topic';
import type { MockNetwork, MockPeer } from '../../hal/mock/index';

interface Held {
  /** Command id (for the delivery count). */
  id: number;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  /** Broker packet id once sent on a connection (QoS >= 1). */
  packetId: number;
  /** QoS 2: PUBREC seen, PUBREL sent. */
  released: boolean;
}

interface Session {
  clientId: string;
  subs: Array<{ topic: string; qos: QoS }>;
  /** Not yet sent on the current connection. */
  queue: Held[];
  /** Sent, not yet acknowledged. */
  inflight: Held[];
  nextId: number;
  conn: Conn | undefined;
}

interface Conn {
  index: number;
  peer: MockPeer;
  version: Version;
  session: Session | undefined;
  open: boolean;
}

export interface AppArrival {
  at: number;
  seq: number;
  topic: string;
  conn: number;
}

export class SimBroker {
  /** Connections accepted (CONNECT or not). */
  connections = 0;
  /** CONNECT packets received. */
  connects = 0;
  /** Application messages received: seq -> first arrival. */
  appSeen: { [seq: string]: AppArrival } = {};
  /** Commands acknowledged by the client (id -> time). */
  commandsAcked: { [id: string]: number } = {};
  /** Status messages received: payload per connection index. */
  statusByConn: { [conn: string]: string[] } = {};
  /** PINGREQs received. */
  pings = 0;
  /** Connection index -> CONNECT accepted (CONNACK 0 sent). */
  connectedConns: boolean[] = [];
  /** Protocol version of every CONNECT. */
  versions: Version[] = [];
  statusTopic: string;

  private sessions: { [clientId: string]: Session } = {};
  private conns: Conn[] = [];
  private now: () => number;

  constructor(net: MockNetwork, host: string, port: number, now: () => number, statusTopic: string) {
    this.now = now;
    this.statusTopic = statusTopic;
    net.listen(host, port, {}, (peer) => this.accept(peer));
  }

  /** The peer of the latest connection (for fault injection). */
  get lastPeer(): MockPeer | undefined {
    const c = this.conns[this.conns.length - 1];
    return c ? c.peer : undefined;
  }

  /**
   * A command for every session subscribed to `topic` (created if the client has not connected yet
   * and `clientId` is given): sent now if connected, else held (QoS >= 1) until the next connection.
   */
  inject(id: number, topic: string, payload: Uint8Array, qos: QoS): void {
    for (const k in this.sessions) {
      const s = this.sessions[k];
      let q = -1;
      for (const sub of s.subs) if (topicMatches(sub.topic, topic)) q = Math.max(q, sub.qos);
      if (q < 0) continue;
      const eff = Math.min(q, qos) as QoS;
      if (!s.conn && eff === 0) continue; // QoS 0 for an absent client: dropped
      s.queue.push({ id, topic, payload, qos: eff, packetId: 0, released: false });
      if (s.conn) this.pump(s);
    }
  }

  private accept(peer: MockPeer): void {
    const conn: Conn = { index: this.connections++, peer, version: 4, session: undefined, open: true };
    this.conns.push(conn);
    let dec = createDecoder(5, 1 << 20);
    peer.onClose = () => this.closed(conn);
    peer.onData = (bytes) => {
      let packets: Packet[];
      try {
        packets = dec.push(bytes);
      } catch (e) {
        this.drop(conn, true);
        return;
      }
      for (const p of packets) {
        if (!conn.open) return;
        if (p.type === PacketType.CONNECT) {
          conn.version = p.protocolVersion as Version;
          dec = createDecoder(conn.version, 1 << 20);
        }
        this.handle(conn, p);
      }
    };
  }

  private out(conn: Conn, p: Packet): void {
    if (conn.open) conn.peer.send(encode(p, conn.version));
  }

  private handle(conn: Conn, p: Packet): void {
    switch (p.type) {
      case PacketType.CONNECT: {
        this.connects++;
        this.connectedConns[conn.index] = true;
        this.versions.push(conn.version);
        let s = this.sessions[p.clientId];
        const present = !!s && !p.clean;
        if (!s || p.clean) {
          s = { clientId: p.clientId, subs: [], queue: [], inflight: [], nextId: 1, conn: undefined };
          this.sessions[p.clientId] = s;
        }
        if (s.conn && s.conn !== conn) this.drop(s.conn, true); // session takeover
        s.conn = conn;
        conn.session = s;
        this.out(conn, { type: PacketType.CONNACK, sessionPresent: present, reasonCode: 0 });
        // Resend what was not acknowledged (DUP), then the held messages.
        for (const h of s.inflight) {
          if (h.released) this.out(conn, { type: PacketType.PUBREL, packetId: h.packetId });
          else this.out(conn, this.publishOf(h, true));
        }
        this.pump(s);
        return;
      }
      case PacketType.PUBLISH:
        this.onPublish(conn, p);
        return;
      case PacketType.PUBREL:
        this.out(conn, { type: PacketType.PUBCOMP, packetId: p.packetId });
        return;
      case PacketType.PUBACK:
      case PacketType.PUBCOMP:
        this.acked(conn, p.packetId);
        return;
      case PacketType.PUBREC: {
        const s = conn.session;
        const h = s ? s.inflight.find((x) => x.packetId === p.packetId) : undefined;
        if (h) h.released = true;
        this.out(conn, { type: PacketType.PUBREL, packetId: p.packetId });
        return;
      }
      case PacketType.SUBSCRIBE: {
        const s = conn.session;
        if (s) {
          for (const sub of p.subscriptions) {
            s.subs = s.subs.filter((x) => x.topic !== sub.topic);
            s.subs.push({ topic: sub.topic, qos: sub.qos });
          }
        }
        this.out(conn, { type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: p.subscriptions.map((x) => x.qos) });
        return;
      }
      case PacketType.UNSUBSCRIBE: {
        const s = conn.session;
        if (s) s.subs = s.subs.filter((x) => p.topics.indexOf(x.topic) < 0);
        this.out(conn, { type: PacketType.UNSUBACK, packetId: p.packetId, reasonCodes: conn.version === 5 ? p.topics.map(() => 0) : undefined });
        return;
      }
      case PacketType.PINGREQ:
        this.pings++;
        this.out(conn, { type: PacketType.PINGRESP });
        return;
      case PacketType.DISCONNECT:
        this.drop(conn, false);
        return;
      default:
        this.drop(conn, true);
    }
  }

  private onPublish(conn: Conn, p: PublishPacket): void {
    const text = utf8Read(p.payload, 0, Math.min(p.payload.length, 64));
    if (p.topic === this.statusTopic) {
      (this.statusByConn[conn.index] || (this.statusByConn[conn.index] = [])).push(utf8Read(p.payload, 0, p.payload.length));
    } else {
      const m = /^seq:(\d+);/.exec(text);
      if (m && !this.appSeen[m[1]]) this.appSeen[m[1]] = { at: this.now(), seq: Number(m[1]), topic: p.topic, conn: conn.index };
    }
    if (p.qos === 1) this.out(conn, { type: PacketType.PUBACK, packetId: p.packetId as number });
    if (p.qos === 2) this.out(conn, { type: PacketType.PUBREC, packetId: p.packetId as number });
  }

  private acked(conn: Conn, packetId: number): void {
    const s = conn.session;
    if (!s) return;
    const i = s.inflight.findIndex((x) => x.packetId === packetId);
    if (i < 0) return;
    const h = s.inflight[i];
    s.inflight.splice(i, 1);
    if (this.commandsAcked[h.id] === undefined) this.commandsAcked[h.id] = this.now();
    this.pump(s);
  }

  private publishOf(h: Held, dup: boolean): PublishPacket {
    const p: PublishPacket = { type: PacketType.PUBLISH, topic: h.topic, payload: h.payload, qos: h.qos, retain: false, dup: dup && h.qos > 0 };
    if (h.qos > 0) p.packetId = h.packetId;
    return p;
  }

  private pump(s: Session): void {
    const conn = s.conn;
    if (!conn || !conn.open) return;
    while (s.queue.length) {
      const h = s.queue.shift() as Held;
      if (h.qos > 0) {
        h.packetId = s.nextId;
        s.nextId = s.nextId >= 65535 ? 1 : s.nextId + 1;
        s.inflight.push(h);
      } else if (this.commandsAcked[h.id] === undefined) {
        this.commandsAcked[h.id] = this.now();
      }
      this.out(conn, this.publishOf(h, false));
    }
  }

  private drop(conn: Conn, reset: boolean): void {
    if (!conn.open) return;
    this.closed(conn);
    if (reset) conn.peer.reset();
    else conn.peer.end();
  }

  private closed(conn: Conn): void {
    conn.open = false;
    const s = conn.session;
    if (s && s.conn === conn) s.conn = undefined;
  }
}
