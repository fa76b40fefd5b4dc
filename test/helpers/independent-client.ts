// An independent MQTT peer for interop tests: node:net (or node:tls) + mqtt-packet 9. It never
// uses wren's codec (firmware/mqtt), so it can count what a broker really delivered.
//
// - acks inbound QoS 1 (PUBACK) and QoS 2 (PUBREC, then PUBCOMP on PUBREL); a QoS 2 message is
//   recorded once per packet id until its PUBREL (a DUP resend before PUBREL is not recorded again);
//   a QoS 1 resend IS recorded again (that is what at-least-once delivers).
// - publish() resolves on PUBACK (QoS 1) / PUBCOMP (QoS 2) / socket write (QoS 0).
// - sends PINGREQ every keepalive/2 seconds so brokers do not drop it.
// - messages[] + counts() make it "the independent subscriber that counts deliveries".

import net from 'node:net';
import tls from 'node:tls';
import mqtt from 'mqtt-packet';
import type { Packet, IPublishPacket, IConnackPacket, IConnectPacket, IDisconnectPacket } from 'mqtt-packet';

export type QoS = 0 | 1 | 2;

export interface PeerMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  dup: boolean;
  retain: boolean;
  messageId?: number;
  properties?: IPublishPacket['properties'];
  /** Date.now() when it arrived. */
  at: number;
}

export interface PeerOptions {
  host: string;
  port: number;
  clientId: string;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5.0 */
  version: 4 | 5;
  /** Clean session (3.1.1) / clean start (5). Default true. */
  clean?: boolean;
  /** Seconds; default 60. 0 disables pings. */
  keepalive?: number;
  /** v5 Session Expiry Interval. Default: 0 when clean, 3600 when clean === false (so the session outlives the connection like 3.1.1). */
  sessionExpiry?: number;
  username?: string;
  password?: string;
  will?: { topic: string; payload: string | Buffer; qos?: QoS; retain?: boolean; properties?: Record<string, unknown> };
  /** Extra v5 CONNECT properties. */
  properties?: Record<string, unknown>;
  /** Use TLS (node:tls options: ca, servername, rejectUnauthorized, ...). */
  tls?: tls.ConnectionOptions;
  /** Bound on TCP connect + CONNACK. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Continue counting from an earlier (closed) peer of the same session: shares its messages[] and
   * its set of QoS 2 packet ids awaiting PUBREL, so a resent QoS 2 after reconnect is not counted twice.
   */
  resumeFrom?: Peer;
}

export interface SeqCounts {
  /** Messages whose payload starts with the prefix. */
  received: number;
  /** Distinct sequence numbers among them. */
  unique: number;
  /** received - unique. */
  duplicates: number;
  /** Sequence numbers in [from, to] never received, at most maxMissing of them. */
  missing: number[];
  missingCount: number;
  /** First arrivals of a number lower than one already seen. */
  outOfOrder: number;
  /** Highest number seen (-1 if none). */
  max: number;
}

export interface CountOptions {
  /** Only messages on this topic. */
  topic?: string;
  /** First expected number (default 0). */
  from?: number;
  /** Last expected number (default: highest seen). */
  to?: number;
  /** Length cap of the missing list (default 20). */
  maxMissing?: number;
}

/** Count "seq:<n>" style payloads (n = decimal digits right after the prefix). */
export function countSeq(messages: readonly PeerMessage[], prefix = 'seq:', opts: CountOptions = {}): SeqCounts {
  const seen = new Set<number>();
  let received = 0;
  let outOfOrder = 0;
  let max = -1;
  for (const m of messages) {
    if (opts.topic !== undefined && m.topic !== opts.topic) continue;
    const text = m.payload.toString('latin1');
    if (!text.startsWith(prefix)) continue;
    const match = /^\d+/.exec(text.slice(prefix.length));
    if (!match) continue;
    const n = Number(match[0]);
    received++;
    if (!seen.has(n)) {
      if (n < max) outOfOrder++;
      seen.add(n);
    }
    if (n > max) max = n;
  }
  const from = opts.from ?? 0;
  const to = opts.to ?? max;
  const maxMissing = opts.maxMissing ?? 20;
  const missing: number[] = [];
  let missingCount = 0;
  for (let n = from; n <= to; n++) {
    if (!seen.has(n)) {
      missingCount++;
      if (missing.length < maxMissing) missing.push(n);
    }
  }
  return { received, unique: seen.size, duplicates: received - seen.size, missing, missingCount, outOfOrder, max };
}

export class ConnackError extends Error {
  code: number;
  connack: IConnackPacket;
  constructor(connack: IConnackPacket) {
    const code = (connack.reasonCode ?? connack.returnCode ?? -1) as number;
    super('CONNACK refused: code ' + code);
    this.name = 'ConnackError';
    this.code = code;
    this.connack = connack;
  }
}

interface Pending {
  kind: 'puback' | 'pubcomp' | 'suback' | 'unsuback';
  resolve: (p: Packet) => void;
  reject: (e: Error) => void;
}

export class Peer {
  readonly clientId: string;
  readonly version: 4 | 5;
  readonly messages: PeerMessage[];
  /** Every control packet received, in order (PUBLISH included). */
  readonly inbound: Packet[] = [];
  connack!: IConnackPacket;
  /** The broker's DISCONNECT (v5), if it sent one. */
  serverDisconnect?: IDisconnectPacket;
  closed = false;
  /** The socket error that ended the connection, if any (e.g. ECONNRESET). */
  closeError?: NodeJS.ErrnoException;

  private socket: net.Socket;
  private parser: ReturnType<typeof mqtt.parser>;
  private pending = new Map<number, Pending>();
  private awaitingRel: Set<number>;
  private nextId = 1;
  private pinger?: NodeJS.Timeout;
  private waiters = new Set<() => void>();
  private closeWaiters: Array<() => void> = [];
  /** @internal used by connectPeer() */
  onConnack?: (p: IConnackPacket) => void;

  /** Use connectPeer(). */
  constructor(socket: net.Socket, opts: PeerOptions) {
    this.socket = socket;
    this.clientId = opts.clientId;
    this.version = opts.version;
    this.messages = opts.resumeFrom ? opts.resumeFrom.messages : [];
    this.awaitingRel = opts.resumeFrom ? opts.resumeFrom.awaitingRel : new Set();
    this.parser = mqtt.parser({ protocolVersion: opts.version });
    this.parser.on('packet', (p: Packet) => this.onPacket(p));
    this.parser.on('error', (err: Error) => {
      this.closeError = err as NodeJS.ErrnoException;
      this.socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.parser.parse(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.closeError) this.closeError = err;
    });
    socket.on('close', () => this.onClose());
  }

  private send(packet: Packet): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed || this.socket.destroyed) {
        reject(new Error(this.clientId + ': connection closed'));
        return;
      }
      const bytes = mqtt.generate(packet, { protocolVersion: this.version });
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  private allocId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new Error('no free packet id');
  }

  private expect(id: number, kind: Pending['kind']): Promise<Packet> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { kind, resolve, reject });
    });
  }

  startPings(keepalive: number): void {
    if (keepalive <= 0) return;
    this.pinger = setInterval(() => {
      this.send({ cmd: 'pingreq' }).catch(() => undefined);
    }, (keepalive * 1000) / 2);
    this.pinger.unref();
  }

  private settle(id: number, kind: Pending['kind'], p: Packet): void {
    const w = this.pending.get(id);
    if (!w || w.kind !== kind) return;
    this.pending.delete(id);
    w.resolve(p);
  }

  private onPacket(p: Packet): void {
    this.inbound.push(p);
    switch (p.cmd) {
      case 'publish': {
        const qos = p.qos as QoS;
        const id = p.messageId;
        const msg: PeerMessage = {
          topic: p.topic,
          payload: Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload),
          qos,
          dup: !!p.dup,
          retain: !!p.retain,
          messageId: id,
          properties: p.properties,
          at: Date.now(),
        };
        if (qos === 0) {
          this.record(msg);
        } else if (qos === 1) {
          this.record(msg);
          this.send({ cmd: 'puback', messageId: id }).catch(() => undefined);
        } else {
          if (id !== undefined && !this.awaitingRel.has(id)) {
            this.awaitingRel.add(id);
            this.record(msg);
          }
          this.send({ cmd: 'pubrec', messageId: id }).catch(() => undefined);
        }
        break;
      }
      case 'pubrel':
        if (p.messageId !== undefined) this.awaitingRel.delete(p.messageId);
        this.send({ cmd: 'pubcomp', messageId: p.messageId }).catch(() => undefined);
        break;
      case 'puback':
        if (p.messageId !== undefined) this.settle(p.messageId, 'puback', p);
        break;
      case 'pubrec': {
        const id = p.messageId as number;
        const w = this.pending.get(id);
        if (w && w.kind === 'pubcomp' && p.reasonCode !== undefined && p.reasonCode >= 0x80) {
          this.pending.delete(id);
          w.reject(new Error('PUBREC reason code 0x' + p.reasonCode.toString(16)));
          break;
        }
        this.send({ cmd: 'pubrel', messageId: id }).catch(() => undefined);
        break;
      }
      case 'pubcomp':
        if (p.messageId !== undefined) this.settle(p.messageId, 'pubcomp', p);
        break;
      case 'suback':
        if (p.messageId !== undefined) this.settle(p.messageId, 'suback', p);
        break;
      case 'unsuback':
        if (p.messageId !== undefined) this.settle(p.messageId, 'unsuback', p);
        break;
      case 'connack':
        if (this.onConnack) this.onConnack(p);
        this.onConnack = undefined;
        break;
      case 'disconnect':
        this.serverDisconnect = p;
        break;
      default:
        break;
    }
  }

  private record(msg: PeerMessage): void {
    this.messages.push(msg);
    for (const w of Array.from(this.waiters)) w();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pinger) clearInterval(this.pinger);
    const err = new Error(this.clientId + ': connection closed' + (this.closeError ? ' (' + this.closeError.message + ')' : ''));
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
    for (const w of Array.from(this.waiters)) w();
    for (const w of this.closeWaiters.splice(0)) w();
  }

  /** Resolves with the granted QoS (v5: the reason code, >= 0x80 = refused). */
  async subscribe(topic: string, qos: QoS, opts: { nl?: boolean; rap?: boolean; rh?: number } = {}): Promise<number> {
    const id = this.allocId();
    const acked = this.expect(id, 'suback');
    const sub: { topic: string; qos: QoS; nl?: boolean; rap?: boolean; rh?: number } = { topic, qos };
    if (this.version === 5) Object.assign(sub, opts);
    await this.send({ cmd: 'subscribe', messageId: id, subscriptions: [sub] } as Packet);
    const p = (await acked) as Packet & { granted: Array<number | { qos: number }> };
    const g = p.granted[0];
    return typeof g === 'number' ? g : g.qos;
  }

  async unsubscribe(topic: string): Promise<void> {
    const id = this.allocId();
    const acked = this.expect(id, 'unsuback');
    await this.send({ cmd: 'unsubscribe', messageId: id, unsubscriptions: [topic] } as Packet);
    await acked;
  }

  /** QoS 0: resolves when written; QoS 1: on PUBACK; QoS 2: on PUBCOMP. Rejects on v5 reason >= 0x80 or close. */
  async publish(
    topic: string,
    payload: string | Buffer,
    qos: QoS,
    opts: { retain?: boolean; properties?: IPublishPacket['properties'] } = {},
  ): Promise<void> {
    const packet: IPublishPacket = {
      cmd: 'publish',
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos,
      dup: false,
      retain: !!opts.retain,
    };
    if (opts.properties && this.version === 5) packet.properties = opts.properties;
    if (qos === 0) {
      await this.send(packet);
      return;
    }
    const id = this.allocId();
    packet.messageId = id;
    const acked = this.expect(id, qos === 1 ? 'puback' : 'pubcomp');
    await this.send(packet);
    const ack = (await acked) as Packet & { reasonCode?: number };
    if (ack.reasonCode !== undefined && ack.reasonCode >= 0x80) {
      throw new Error('publish refused: reason code 0x' + ack.reasonCode.toString(16));
    }
  }

  /** Resolves once pred(messages) is true; rejects on timeout or when the connection closes first. */
  waitFor(pred: (messages: PeerMessage[]) => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred(this.messages)) {
          done();
          resolve();
        } else if (this.closed) {
          done();
          reject(new Error(this.clientId + ': closed while waiting (have ' + this.messages.length + ' messages)'));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(this.clientId + ': waitFor timed out after ' + timeoutMs + ' ms (have ' + this.messages.length + ' messages)'));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves when the connection is closed (by either side); rejects after timeoutMs. */
  waitForClose(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(this.clientId + ': still open after ' + timeoutMs + ' ms')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** countSeq() over this peer's messages. */
  counts(prefix = 'seq:', opts: CountOptions = {}): SeqCounts {
    return countSeq(this.messages, prefix, opts);
  }

  /** Graceful: DISCONNECT, then end the socket; resolves when closed (bounded 2 s, then destroyed). */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.send({ cmd: 'disconnect' } as Packet);
    } catch {
      // already broken
    }
    this.socket.end();
    try {
      await this.waitForClose(2000);
    } catch {
      this.destroy();
      await this.waitForClose(1000);
    }
  }

  /** Abrupt: drop the TCP connection without DISCONNECT (the broker publishes the will). */
  destroy(): void {
    this.socket.destroy();
  }

  /** The local TCP port of this connection (to find it in proxies or /proc). */
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
}

/** Connect and wait for CONNACK. Rejects with the socket error (err.code e.g. 'ECONNREFUSED'), a ConnackError, or a timeout. */
export function connectPeer(opts: PeerOptions): Promise<Peer> {
  const clean = opts.clean ?? true;
  const keepalive = opts.keepalive ?? 60;
  const timeoutMs = opts.connectTimeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = opts.tls
      ? tls.connect({ host: opts.host, port: opts.port, ...opts.tls })
      : net.connect({ host: opts.host, port: opts.port });
    socket.setNoDelay(true);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(opts.clientId + ': no CONNACK within ' + timeoutMs + ' ms')), timeoutMs);
    const peer = new Peer(socket, opts);
    socket.once('error', (err) => fail(err));
    socket.once('close', () => fail(peer.closeError ?? new Error(opts.clientId + ': closed before CONNACK')));
    peer.onConnack = (p: IConnackPacket) => {
      if (settled) return;
      const code = (p.reasonCode ?? p.returnCode ?? 0) as number;
      if (code !== 0) {
        fail(new ConnackError(p));
        return;
      }
      settled = true;
      clearTimeout(timer);
      peer.connack = p;
      peer.startPings(keepalive);
      resolve(peer);
    };

    const connect: IConnectPacket = {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: opts.version,
      clientId: opts.clientId,
      clean,
      keepalive,
    };
    if (opts.username !== undefined) connect.username = opts.username;
    if (opts.password !== undefined) connect.password = Buffer.from(opts.password);
    if (opts.will) {
      connect.will = {
        topic: opts.will.topic,
        payload: typeof opts.will.payload === 'string' ? Buffer.from(opts.will.payload) : opts.will.payload,
        qos: opts.will.qos ?? 0,
        retain: !!opts.will.retain,
      };
      if (opts.version === 5 && opts.will.properties) connect.will.properties = opts.will.properties;
    }
    if (opts.version === 5) {
      const props: Record<string, unknown> = { ...(opts.properties ?? {}) };
      const expiry = opts.sessionExpiry ?? (clean ? 0 : 3600);
      if (expiry > 0) props.sessionExpiryInterval = expiry;
      if (Object.keys(props).length > 0) connect.properties = props;
    }
    socket.write(mqtt.generate(connect, { protocolVersion: opts.version }));
  });
}
