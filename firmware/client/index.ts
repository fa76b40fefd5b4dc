// The MQTT client: owns the connection, the session and every message the device sends or receives.
//
//   const c = new Client(options, { scheduler, transport, storage, random, log });
//   c.on('state', (s, why) => ...); c.on('message', (topic, payload, packet) => ...);
//   c.subscribe('cmd/#', 1, (topic, payload) => ..., (err, granted) => ...);
//   c.publish('sensor/t', '21.5', { qos: 1 }, (err) => ...);   // err undefined = acknowledged
//   c.start();                     // connect, and stay connected (reconnects with backoff)
//   c.stop();                      // clean DISCONNECT, no reconnect
//
// Everything runs in the scheduler's single loop: transport events are posted into it, every timer is
// a scheduler task. Nothing here reads a clock or opens a socket except through the HAL handed in.
//
// Delivery guarantees:
// - QoS >= 1 publishes are written to Storage (append-style) before publish() returns ok; they are
//   sent in order, resent with DUP after a reconnect when the broker kept the session, and sent again
//   as new when it did not. Acknowledged messages are never lost: a message leaves the store only
//   when its PUBACK / PUBCOMP arrives.
// - Inbound QoS 2 is delivered to the application exactly once: its packet id is held (and persisted)
//   from PUBLISH until PUBREL.
// - A broker that misbehaves (garbage, oversize, acks for ids never issued, a second CONNACK...) gets a
//   DISCONNECT (v5: with the matching reason code), the link is closed and the client reconnects with
//   backoff. Nothing the broker sends can throw out of the client.

import { createDecoder, encode, checkTopicFilter, checkTopicName, ProtocolError, utf8Length, utf8Write } from '../mqtt/index';
import { PacketType } from '../mqtt/types';
import type { Decoder, Packet, Properties, PublishPacket, QoS, Subscription, Version, Will } from '../mqtt/types';
import type { Log, Random, Storage, Transport, TlsOptions } from '../../hal/types';
import type { Scheduler, TaskId } from '../scheduler/index';
import { Session, MsgState } from '../session/index';
import type { OutMessage, SessionLimits } from '../session/index';
import { topicMatches } from './topic';
import { BrokerRotation } from '../liveness/backoff';

export { topicMatches };

export interface BrokerAddress {
  host: string;
  port: number;
  tls?: TlsOptions;
}

export interface ClientOptions {
  clientId: string;
  brokers: BrokerAddress[];
  /** 4 = MQTT 3.1.1, 5 = MQTT 5.0, 'auto' = try 5.0, fall back to 3.1.1 when the broker refuses it. */
  version: 4 | 5 | 'auto';
  keepAliveSec: number;
  /** true: a new session at every connect. false: a persistent session (v5: sessionExpirySec). */
  clean: boolean;
  /** v5 Session Expiry Interval for a persistent session (0xFFFFFFFF = never). */
  sessionExpirySec: number;
  username?: string;
  password?: string;
  will?: Will;
  /** Largest packet accepted from the broker (v5: also announced as Maximum Packet Size). */
  maxPacketSize: number;
  /** Most QoS >= 1 messages in flight at once (the broker's v5 Receive Maximum lowers it). */
  maxInflight: number;
  connectTimeoutMs: number;
  /** A PINGRESP (or any packet) must arrive this soon after a PINGREQ, or the link is dead. */
  pingTimeoutMs: number;
  /** A QoS >= 1 ack overdue by this much triggers a PINGREQ at once (early probe). 0 = off. */
  ackProbeMs: number;
  /** The first ping after a connect comes at interval * (1 - pingJitter * random): a fleet that
   *  reconnected together does not ping in lockstep. */
  pingJitter: number;
  /** SUBSCRIBE/UNSUBSCRIBE must be answered within this. */
  ackTimeoutMs: number;
  /** Reconnect backoff. jitter 'none' exists to measure what full jitter saves (tools/fleet). */
  backoff: { baseMs: number; capMs: number; factor: number; stableAfterMs: number; jitter?: 'full' | 'none' };
  queue: SessionLimits;
  /** Storage record prefix for the persistent session (<= 26 characters). */
  sessionName: string;
}

/** Defaults for every option but clientId and brokers. */
export function clientDefaults(): Omit<ClientOptions, 'clientId' | 'brokers'> {
  return {
    version: 'auto',
    keepAliveSec: 60,
    clean: false,
    sessionExpirySec: 86400,
    maxPacketSize: 65536,
    maxInflight: 16,
    connectTimeoutMs: 10000,
    pingTimeoutMs: 10000,
    ackProbeMs: 5000,
    pingJitter: 0.2,
    ackTimeoutMs: 15000,
    backoff: { baseMs: 1000, capMs: 300000, factor: 2, stableAfterMs: 60000 },
    queue: { maxMessages: 100, maxBytes: 32768, overflow: 'drop-oldest-qos0' },
    sessionName: 'wren',
  };
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'stopped';

/** Errors reported to the application: plain values, never thrown at it. */
export interface ClientError {
  /**
   * 'refused'   CONNACK refusal (bad credentials, not authorized, server unavailable, ...)
   * 'protocol'  the broker broke the protocol (we disconnected it)
   * 'transport' the connection failed or broke (refused, reset, TLS, DNS)
   * 'timeout'   CONNACK, PINGRESP, SUBACK or UNSUBACK did not come in time
   * 'rejected'  the broker refused a publish/subscribe (v5 reason code >= 0x80 / SUBACK failure)
   * 'invalid'   the application passed something invalid (bad topic, QoS, too large)
   * 'queue-full' | 'too-large' | 'storage-full'  the offline queue could not take the message
   * 'stopped'   the client was stopped before the operation completed
   */
  code: string;
  message: string;
  /** MQTT reason / return code when there is one. */
  reasonCode?: number;
}

export type MessageHandler = (topic: string, payload: Uint8Array, packet: PublishPacket) => void;
export type DoneCallback = (err?: ClientError) => void;
export type SubscribeCallback = (err: ClientError | undefined, granted: number[]) => void;

export interface ClientHal {
  scheduler: Scheduler;
  transport: Transport;
  storage?: Storage;
  random: Random;
  log: Log;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
  /**
   * Not application activity: the power modes ignore it (a status message, a reading taken during a
   * sleep check-in). Default false: a publish wakes the device to active.
   */
  quiet?: boolean;
}

interface SubEntry {
  sub: Subscription;
  handler: MessageHandler | undefined;
}

interface Pending {
  id: number;
  kind: number; // SUBSCRIBE or UNSUBSCRIBE
  packet: Packet;
  timer: TaskId;
  cb: SubscribeCallback | undefined;
}

const TAG = 'mqtt';

// CONNACK refusals that retrying soon cannot fix: back off to the cap.
function isAuthRefusal(code: number, v5: boolean): boolean {
  return v5 ? code === 0x86 || code === 0x87 || code === 0x8c || code === 0x85 : code === 4 || code === 5 || code === 2;
}

const CONNACK_TEXT: { [code: number]: string } = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8c: 'bad authentication method',
  0x90: 'topic name invalid',
  0x95: 'packet too large',
  0x97: 'quota exceeded',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9f: 'connection rate exceeded',
};

/** UTF-8 bytes of a string (payload convenience). */
export function utf8Bytes(s: string): Uint8Array {
  const b = new Uint8Array(utf8Length(s));
  utf8Write(s, b, 0);
  return b;
}

export class Client {
  options: ClientOptions;
  session: Session;
  state: ClientState;
  /** Protocol version of the current (or last) connection. */
  version: Version;
  /** Connection counters for the application and tests. */
  stats: {
    connects: number;
    connackOk: number;
    disconnects: number;
    pings: number;
    pingresps: number;
    protocolErrors: number;
    lastPingRttMs: number;
    /** Packets and bytes (MQTT level) each way, for the power estimate. */
    packetsIn: number;
    packetsOut: number;
    bytesIn: number;
    bytesOut: number;
  };

  private sched: Scheduler;
  private transport: Transport;
  private random: Random;
  private log: Log;
  private decoder: Decoder;
  private handlers: { [event: string]: Array<(a: unknown, b: unknown, c: unknown) => void> };
  private subs: SubEntry[];
  private pending: Pending[];
  private done: { [seq: string]: DoneCallback };
  /** Per-broker full-jitter backoff and failover order (firmware/liveness). */
  rotation: BrokerRotation;
  private gen: number;
  private open: boolean;
  private awaitingConnack: boolean;
  private connectedAt: number;
  private lastTx: number;
  private lastRx: number;
  private pingSentAt: number;
  /** RX idle time (ms) when the outstanding PINGREQ was sent (for path-limit learning). */
  private idleAtPingMs: number;
  /** When the last PINGREQ went out (for the round-trip time). */
  private lastPingAt: number;
  /** Keep-alive in force on this connection: declared, or the v5 Server Keep Alive. */
  private keepAliveMs: number;
  /** Ping interval asked for by the heartbeat policy (0 = the keep-alive in force). */
  private pingIntervalMs: number;
  /** Since when a QoS >= 1 ack has been awaited without progress (-1: nothing in flight). */
  private ackWaitSince: number;
  private inflightMax: number;
  private brokerMaxPacket: number;
  private timer: TaskId | undefined;
  private kaTimer: TaskId | undefined;
  private blocked: boolean;
  private nextFailCapped: boolean;
  /** A transport attempt is open or closing (its onClose not yet seen): open() must wait for it. */
  private linkBusy: boolean;
  /** The generation of the transport attempt in progress: its events count only while it is current. */
  private attemptGen: number;
  private connectWhenClosed: boolean;
  /** subscribe() callbacks waiting for a connection. */
  private queuedCbs: Array<{ list: Subscription[]; cb: SubscribeCallback }>;

  constructor(options: ClientOptions, hal: ClientHal) {
    if (!options || !options.clientId === undefined) throw new Error('Client: options needed');
    if (!options.brokers || options.brokers.length === 0) throw new Error('Client: at least one broker');
    this.options = options;
    this.sched = hal.scheduler;
    this.transport = hal.transport;
    this.random = hal.random;
    this.log = hal.log;
    this.session = new Session(hal.storage, options.sessionName, options.queue, hal.log);
    this.state = 'idle';
    this.version = options.version === 4 ? 4 : 5;
    this.stats = {
      connects: 0,
      connackOk: 0,
      disconnects: 0,
      pings: 0,
      pingresps: 0,
      protocolErrors: 0,
      lastPingRttMs: -1,
      packetsIn: 0,
      packetsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.decoder = createDecoder(this.version, options.maxPacketSize);
    this.handlers = {};
    this.subs = [];
    this.pending = [];
    this.done = {};
    this.rotation = new BrokerRotation(options.brokers.length, options.backoff);
    this.gen = 0;
    this.open = false;
    this.awaitingConnack = false;
    this.connectedAt = 0;
    this.lastTx = 0;
    this.lastRx = 0;
    this.pingSentAt = -1;
    this.idleAtPingMs = 0;
    this.lastPingAt = 0;
    this.keepAliveMs = options.keepAliveSec * 1000;
    this.pingIntervalMs = 0;
    this.ackWaitSince = -1;
    this.inflightMax = options.maxInflight;
    this.brokerMaxPacket = 268435460;
    this.timer = undefined;
    this.kaTimer = undefined;
    this.blocked = false;
    this.nextFailCapped = false;
    this.linkBusy = false;
    this.attemptGen = 0;
    this.connectWhenClosed = false;
    this.queuedCbs = [];
    const self = this;
    this.transport.setHandler({
      onOpen: function () {
        const g = self.attemptGen; // the attempt this event belongs to
        self.sched.post(function () {
          if (g === self.gen) self.onOpen();
        }, 'mqtt.open');
      },
      onData: function (bytes: Uint8Array) {
        const g = self.attemptGen; // the attempt this event belongs to
        self.sched.post(function () {
          if (g === self.gen) self.onData(bytes);
        }, 'mqtt.data');
      },
      onDrain: function () {
        const g = self.attemptGen; // the attempt this event belongs to
        self.sched.post(function () {
          if (g === self.gen) {
            self.blocked = false;
            self.pump();
          }
        }, 'mqtt.drain');
      },
      onError: function (err) {
        const g = self.attemptGen; // the attempt this event belongs to
        self.sched.post(function () {
          if (g === self.gen) self.emitError('transport', err.code + ': ' + err.message);
        }, 'mqtt.error');
      },
      onClose: function () {
        const g = self.attemptGen; // the attempt this event belongs to
        self.sched.post(function () {
          self.linkBusy = false;
          if (g === self.gen) self.onClosed('connection closed');
          else if (self.connectWhenClosed) {
            self.connectWhenClosed = false;
            self.connectNow();
          }
        }, 'mqtt.close');
      },
    });
    const found = this.session.load();
    if (found.messages || found.inboundQos2 || found.droppedBytes) {
      this.log.info(
        TAG,
        'session restored: ' + found.messages + ' messages, ' + found.inboundQos2 + ' inbound QoS 2 ids' +
          (found.droppedBytes ? ', dropped a torn tail of ' + found.droppedBytes + ' bytes' : ''),
      );
    }
  }

  // ------------------------------------------------------------------ application API

  /**
   * Listen: 'state' (state, why), 'message' (topic, payload, packet), 'error' (ClientError),
   * 'connack' (packet), 'dead' (idleSec: how long RX had been idle when the unanswered PINGREQ went out),
   * 'publish' (topic, qos, quiet: the application handed over a message),
   * 'pong' (rttMs, idleSec: a PINGREQ sent after idleSec of RX idle was answered).
   */
  on(event: 'state' | 'message' | 'error' | 'connack' | 'dead' | 'publish' | 'pong', fn: (a: any, b: any, c: any) => void): void {
    (this.handlers[event] || (this.handlers[event] = [])).push(fn);
  }

  /** Connect and stay connected until stop(). Idempotent. */
  start(): void {
    if (this.state === 'connecting' || this.state === 'connected' || this.state === 'waiting') return;
    this.connectNow();
  }

  /** Clean DISCONNECT and no reconnect. Pending QoS >= 1 messages stay in the session store. */
  /**
   * reasonCode (v5 only): 0 = normal disconnection, the will is discarded; 0x04 = "disconnect with
   * will message": the broker publishes the will after its Will Delay Interval unless the device
   * reconnects first (a planned sleep that still reports a device that never comes back).
   */
  stop(reasonCode?: number): void {
    if (this.state === 'stopped' || this.state === 'idle') {
      this.setState('stopped', 'stop()');
      return;
    }
    this.cancelTimers();
    this.connectWhenClosed = false;
    if (this.open && !this.awaitingConnack) {
      this.send(this.version === 5 && reasonCode ? { type: PacketType.DISCONNECT, reasonCode: reasonCode } : { type: PacketType.DISCONNECT });
    }
    this.failPending('stopped', 'client stopped');
    this.closeLink();
    this.setState('stopped', 'stop()');
  }

  /**
   * Publish. payload: bytes or a string (sent as UTF-8). Returns undefined when accepted (queued or
   * sent), or the error. `done` is called once: QoS 0 when written to the transport, QoS >= 1 when
   * acknowledged (PUBACK / PUBCOMP), or with the error.
   */
  publish(topic: string, payload: Uint8Array | string, opts?: PublishOptions, done?: DoneCallback): ClientError | undefined {
    const qos = opts && opts.qos !== undefined ? opts.qos : 0;
    const retain = opts ? !!opts.retain : false;
    const props = opts ? opts.properties : undefined;
    let err: ClientError | undefined;
    let bytes: Uint8Array | undefined;
    try {
      bytes = typeof payload === 'string' ? utf8Bytes(payload) : payload;
      // Validate by encoding once: topic, QoS, properties and size, exactly as the wire will see it.
      const size = encode(
        { type: PacketType.PUBLISH, topic: topic, payload: bytes, qos: qos, retain: retain, dup: false, packetId: qos ? 1 : undefined, properties: props },
        this.version,
      ).length;
      if (size > this.limitOut()) {
        err = { code: 'too-large', message: 'publish of ' + size + ' bytes exceeds the maximum packet size ' + this.limitOut() };
      }
    } catch (e) {
      err = { code: 'invalid', message: e instanceof ProtocolError ? e.message : String(e) };
    }
    if (!err) {
      const r = this.session.enqueue(topic, bytes as Uint8Array, qos, retain, props);
      if (r.ok) {
        if (done) this.done[String(r.seq)] = done;
        this.emit('publish', topic, qos, opts ? !!opts.quiet : false);
        if (r.dropped) {
          for (let i = 0; i < r.dropped.length; i++) {
            this.finish(r.dropped[i], { code: 'queue-full', message: 'dropped from the offline queue to make room' });
          }
        }
        this.pump();
        return undefined;
      }
      err = { code: r.code, message: r.message };
    }
    this.log.warn(TAG, 'publish to ' + topic + ' refused: ' + err.message);
    if (done) {
      const e = err;
      this.sched.post(function () {
        done(e);
      }, 'mqtt.done');
    }
    return err;
  }

  /**
   * Subscribe to a filter (or several) with a handler for matching messages. The subscription is kept
   * and restored after a reconnect whenever the broker has no session. cb gets the granted QoS (or
   * failure code >= 0x80) per filter; a failure also gives err.
   */
  subscribe(
    filter: string | Subscription[],
    qos?: QoS,
    handler?: MessageHandler,
    cb?: SubscribeCallback,
  ): ClientError | undefined {
    const list: Subscription[] = typeof filter === 'string' ? [{ topic: filter, qos: qos || 0 }] : filter;
    try {
      for (let i = 0; i < list.length; i++) checkTopicFilter(list[i].topic);
      encode({ type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: list }, this.version);
    } catch (e) {
      const err = { code: 'invalid', message: e instanceof ProtocolError ? e.message : String(e) };
      if (cb) this.sched.post(function () { cb(err, []); }, 'mqtt.done');
      return err;
    }
    for (let i = 0; i < list.length; i++) {
      let found = false;
      for (let j = 0; j < this.subs.length; j++) {
        if (this.subs[j].sub.topic === list[i].topic) {
          this.subs[j] = { sub: list[i], handler: handler || this.subs[j].handler };
          found = true;
        }
      }
      if (!found) this.subs.push({ sub: list[i], handler: handler });
    }
    if (this.state === 'connected') this.sendControl(PacketType.SUBSCRIBE, list, cb);
    else if (cb) {
      // Sent with the next connection; report then.
      this.queueControlCb(list, cb);
    }
    return undefined;
  }

  /** Stop a subscription (and its handler). */
  unsubscribe(filter: string, cb?: SubscribeCallback): void {
    const keep: SubEntry[] = [];
    for (let i = 0; i < this.subs.length; i++) if (this.subs[i].sub.topic !== filter) keep.push(this.subs[i]);
    this.subs = keep;
    if (this.state === 'connected') this.sendControl(PacketType.UNSUBSCRIBE, [{ topic: filter, qos: 0 }], cb);
    else if (cb) this.sched.post(function () { cb(undefined, []); }, 'mqtt.done');
  }

  /**
   * Close the connection cleanly (DISCONNECT, the will discarded) and connect again at once, with the
   * options as they are now (e.g. a new keep-alive or will delay). Queued and in-flight messages stay.
   */
  reconnect(why: string): void {
    if (this.state !== 'connected' && this.state !== 'waiting' && this.state !== 'connecting') return;
    if (this.open && !this.awaitingConnack) this.send({ type: PacketType.DISCONNECT });
    this.closeLink();
    this.cancelTimers();
    this.failPending('transport', 'reconnecting: ' + why);
    this.setState('waiting', why + '; reconnect now');
    this.connectNow();
  }

  /** True when nothing is queued, in flight, or awaiting a SUBACK/UNSUBACK. */
  isIdle(): boolean {
    return this.session.stats().messages === 0 && this.pending.length === 0 && this.queuedCbs.length === 0;
  }

  /**
   * The radio came back (Wi-Fi or cellular re-attached): if the client is waiting out a backoff,
   * try now instead.
   */
  linkUp(): void {
    if (this.state !== 'waiting') return;
    this.log.info(TAG, 'link up: reconnecting now');
    this.connectNow();
  }

  /** Subscriptions currently held (restored on reconnect). */
  subscriptions(): Subscription[] {
    const out: Subscription[] = [];
    for (let i = 0; i < this.subs.length; i++) out.push(this.subs[i].sub);
    return out;
  }

  // ------------------------------------------------------------------ connection

  private setState(s: ClientState, why: string): void {
    if (this.state === s) return;
    this.state = s;
    this.log.info(TAG, 'state ' + s + ' (' + why + ')');
    this.emit('state', s, why, undefined);
  }

  private emit(event: string, a: unknown, b: unknown, c: unknown): void {
    const list = this.handlers[event];
    if (!list) return;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i](a, b, c);
      } catch (e) {
        this.log.error(TAG, 'application ' + event + ' handler threw: ' + String(e));
      }
    }
  }

  private emitError(code: string, message: string, reasonCode?: number): void {
    const err: ClientError = { code: code, message: message };
    if (reasonCode !== undefined) err.reasonCode = reasonCode;
    this.log.warn(TAG, code + ': ' + message);
    this.emit('error', err, undefined, undefined);
  }

  private connectNow(): void {
    this.cancelTimers();
    if (this.linkBusy) {
      // The previous attempt has not reported onClose yet (the Transport contract): go when it does.
      this.connectWhenClosed = true;
      return;
    }
    const broker = this.options.brokers[this.rotation.current % this.options.brokers.length];
    this.gen++;
    this.open = false;
    this.awaitingConnack = false;
    this.blocked = false;
    this.stats.connects++;
    this.setState('connecting', 'to ' + broker.host + ':' + broker.port);
    const self = this;
    this.timer = this.sched.after(this.options.connectTimeoutMs, function () {
      self.timer = undefined;
      self.emitError('timeout', 'no CONNACK within ' + self.options.connectTimeoutMs + ' ms');
      self.dropLink('connect timeout');
    }, 'mqtt.connect-timeout');
    this.linkBusy = true;
    this.attemptGen = this.gen;
    this.transport.open({ host: broker.host, port: broker.port, tls: broker.tls });
  }

  private onOpen(): void {
    this.open = true;
    this.awaitingConnack = true;
    const o = this.options;
    const v = this.version;
    this.decoder = createDecoder(v, o.maxPacketSize);
    const props: Properties = {};
    if (v === 5) {
      if (!o.clean) props.sessionExpiryInterval = o.sessionExpirySec;
      props.maximumPacketSize = o.maxPacketSize;
      props.receiveMaximum = 65535;
    }
    const pkt: Packet = {
      type: PacketType.CONNECT,
      clientId: o.clientId,
      keepAliveSec: o.keepAliveSec,
      clean: o.clean,
      properties: v === 5 ? props : undefined,
    };
    if (o.username !== undefined) pkt.username = o.username;
    if (o.password !== undefined) pkt.password = utf8Bytes(o.password);
    if (o.will) {
      const w = o.will;
      pkt.will = { topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain };
      if (v === 5 && w.properties) pkt.will.properties = w.properties;
    }
    this.send(pkt);
  }

  private onData(bytes: Uint8Array): void {
    this.lastRx = this.sched.now();
    this.pingSentAt = -1; // any packet proves the link (issue: PINGRESP "or any packet")
    let packets: Packet[];
    try {
      if (this.awaitingConnack && this.version === 5 && this.decoder.buffered === 0 && bytes[0] === 0x20 && bytes[1] === 0x02) {
        // A 3.1.1 broker answers a v5 CONNECT with a 3.1.1 CONNACK (Aedes: return code 1).
        packets = createDecoder(4, 4).push(bytes.subarray(0, 4));
      } else {
        packets = this.decoder.push(bytes);
      }
    } catch (e) {
      const pe = e as ProtocolError;
      this.protocolError(pe.message, pe.reasonCode);
      return;
    }
    this.stats.bytesIn += bytes.length;
    this.stats.packetsIn += packets.length;
    for (let i = 0; i < packets.length; i++) {
      if (!this.open) return;
      this.handle(packets[i]);
    }
  }

  private protocolError(message: string, reasonCode: number): void {
    this.stats.protocolErrors++;
    this.emitError('protocol', message, reasonCode);
    if (this.version === 5 && this.open && !this.awaitingConnack) {
      this.send({ type: PacketType.DISCONNECT, reasonCode: reasonCode });
    }
    this.dropLink('protocol error');
  }

  private handle(p: Packet): void {
    if (this.awaitingConnack && p.type !== PacketType.CONNACK) {
      this.protocolError('expected CONNACK, got packet type ' + p.type, 0x82);
      return;
    }
    switch (p.type) {
      case PacketType.CONNACK:
        if (!this.awaitingConnack) {
          this.protocolError('second CONNACK', 0x82);
          return;
        }
        this.onConnack(p);
        return;
      case PacketType.PUBLISH:
        this.onPublish(p);
        return;
      case PacketType.PUBACK:
      case PacketType.PUBCOMP: {
        const m = this.session.complete(p.packetId, p.type === PacketType.PUBACK ? 'puback' : 'pubcomp');
        if (!m) {
          this.protocolError((p.type === PacketType.PUBACK ? 'PUBACK' : 'PUBCOMP') + ' for packet id ' + p.packetId + ' never issued', 0x82);
          return;
        }
        const rc = p.reasonCode || 0;
        this.ackProgress();
        this.finish(m.seq, rc >= 0x80 ? { code: 'rejected', message: 'broker refused the publish to ' + m.topic, reasonCode: rc } : undefined);
        this.pump();
        return;
      }
      case PacketType.PUBREC: {
        const rc = p.reasonCode || 0;
        if (rc >= 0x80) {
          // v5: the broker refused the message; the QoS 2 flow ends here.
          const m = this.session.complete(p.packetId, 'pubcomp');
          if (!m) {
            this.protocolError('PUBREC for packet id ' + p.packetId + ' never issued', 0x82);
            return;
          }
          this.finish(m.seq, { code: 'rejected', message: 'broker refused the publish to ' + m.topic, reasonCode: rc });
          this.pump();
          return;
        }
        const m = this.session.received(p.packetId);
        if (!m) {
          this.protocolError('PUBREC for packet id ' + p.packetId + ' never issued', 0x82);
          return;
        }
        this.ackProgress();
        this.send({ type: PacketType.PUBREL, packetId: p.packetId });
        return;
      }
      case PacketType.PUBREL: {
        const held = this.session.inboundRelease(p.packetId);
        this.send({ type: PacketType.PUBCOMP, packetId: p.packetId, reasonCode: held || this.version === 4 ? 0 : 0x92 });
        return;
      }
      case PacketType.SUBACK:
      case PacketType.UNSUBACK:
        this.onSuback(p.packetId, p.type, p.type === PacketType.SUBACK ? p.reasonCodes : p.reasonCodes || []);
        return;
      case PacketType.PINGRESP:
        if (this.stats.pings > this.stats.pingresps) {
          this.stats.pingresps++;
          this.stats.lastPingRttMs = this.sched.now() - this.lastPingAt;
          this.emit('pong', this.stats.lastPingRttMs, Math.round(this.idleAtPingMs / 1000), undefined);
        }
        return;
      case PacketType.DISCONNECT:
        this.emitError('protocol', 'broker sent DISCONNECT' + (p.reasonCode ? ' with reason 0x' + p.reasonCode.toString(16) : ''), p.reasonCode);
        this.dropLink('broker disconnected');
        return;
      default:
        // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, AUTH: not for a client (we never asked for AUTH).
        this.protocolError('unexpected packet type ' + p.type + ' from the broker', 0x82);
    }
  }

  private onConnack(p: Extract<Packet, { type: PacketType.CONNACK }>): void {
    const v5 = this.version === 5;
    const code = p.reasonCode;
    if (code !== 0) {
      if (this.options.version === 'auto' && v5 && (code === 1 || code === 0x84)) {
        this.log.info(TAG, 'broker refused MQTT 5.0, falling back to 3.1.1');
        // Stays on 3.1.1 for this broker from now on (brokers do not change versions at runtime).
        this.version = 4;
        this.awaitingConnack = false;
        this.dropLink('protocol fallback', 0);
        return;
      }
      const text = CONNACK_TEXT[code] || 'code 0x' + code.toString(16);
      this.emitError('refused', 'broker refused the connection: ' + text, code);
      this.nextFailCapped = isAuthRefusal(code, v5);
      this.awaitingConnack = false;
      this.dropLink('refused: ' + text);
      return;
    }
    this.awaitingConnack = false;
    this.stats.connackOk++;
    this.cancelTimer();
    this.connectedAt = this.sched.now();
    this.rotation.up(this.connectedAt);
    const props = p.properties || {};
    this.keepAliveMs = (props.serverKeepAlive !== undefined ? props.serverKeepAlive : this.options.keepAliveSec) * 1000;
    // Spread the ping phase: pretend the link has been idle for a random part of the interval.
    const shift = Math.floor(this.interval() * this.options.pingJitter * this.random.next());
    this.lastTx = this.connectedAt - shift;
    this.lastRx = this.connectedAt - shift;
    this.pingSentAt = -1;
    this.ackWaitSince = -1;
    this.inflightMax = Math.min(this.options.maxInflight, props.receiveMaximum || 65535);
    this.brokerMaxPacket = props.maximumPacketSize || 268435460;
    this.emit('connack', p, undefined, undefined);
    const present = p.sessionPresent && !this.options.clean;
    if (!present) this.session.resetForNewSession();
    // Resend what the broker has not acknowledged, with the original ids [MQTT-4.4.0-1], before the
    // application hears 'connected' (anything it publishes then comes after, with new ids).
    if (present) {
      const inflight = this.session.inflight();
      for (let i = 0; i < inflight.length; i++) {
        const m = inflight[i];
        if (m.state === MsgState.RELEASED) this.send({ type: PacketType.PUBREL, packetId: m.packetId });
        else this.send(this.publishPacket(m, true));
      }
      if (inflight.length) this.ackWaitSince = this.sched.now();
    }
    if (!present && this.subs.length) this.sendControl(PacketType.SUBSCRIBE, this.subscriptions(), undefined);
    this.setState('connected', present ? 'session resumed' : 'new session');
    this.flushControlCbs();
    this.armKeepAlive();
    this.pump();
  }

  private onPublish(p: PublishPacket): void {
    if (p.properties && p.properties.topicAlias !== undefined) {
      // We announce Topic Alias Maximum 0: the broker must not use aliases [MQTT-3.2.2-17].
      this.protocolError('topic alias not allowed', 0x94);
      return;
    }
    if (p.qos === 2) {
      const id = p.packetId as number;
      if (this.session.inboundQos2(id)) this.deliver(p);
      this.send({ type: PacketType.PUBREC, packetId: id });
      return;
    }
    this.deliver(p);
    if (p.qos === 1) this.send({ type: PacketType.PUBACK, packetId: p.packetId as number });
  }

  private deliver(p: PublishPacket): void {
    for (let i = 0; i < this.subs.length; i++) {
      const s = this.subs[i];
      if (s.handler && topicMatches(s.sub.topic, p.topic)) {
        try {
          s.handler(p.topic, p.payload, p);
        } catch (e) {
          this.log.error(TAG, 'message handler for ' + s.sub.topic + ' threw: ' + String(e));
        }
      }
    }
    this.emit('message', p.topic, p.payload, p);
  }

  /** Close the link and schedule a reconnect (unless stopped). */
  private dropLink(why: string, delayOverrideMs?: number): void {
    this.closeLink();
    this.onClosed(why, delayOverrideMs);
  }

  private closeLink(): void {
    this.gen++; // ignore every event of the old connection from here on
    this.open = false;
    this.awaitingConnack = false;
    this.transport.close();
    this.decoder.reset();
  }

  private onClosed(why: string, delayOverrideMs?: number): void {
    if (this.state === 'stopped') return;
    this.gen++;
    this.open = false;
    this.awaitingConnack = false;
    this.cancelTimers();
    this.stats.disconnects++;
    this.failPending('transport', 'connection lost before the broker answered');
    const now = this.sched.now();
    // The backoff resets only after a connection that stayed up stableAfterMs (a connect-then-kicked
    // loop keeps backing off); a refusal that retrying cannot fix waits near the cap.
    if (this.connectedAt > 0) this.rotation.down(now);
    this.connectedAt = 0;
    let delay: number;
    if (delayOverrideMs !== undefined) {
      delay = delayOverrideMs;
    } else {
      const r = this.options.backoff.jitter === 'none' ? 0.999999 : this.random.next();
      const choice = this.rotation.failed(now, r, this.nextFailCapped);
      delay = choice.delayMs;
    }
    this.nextFailCapped = false;
    this.setState('waiting', why + '; reconnect in ' + delay + ' ms');
    const self = this;
    this.timer = this.sched.after(delay, function () {
      self.timer = undefined;
      self.connectNow();
    }, 'mqtt.reconnect');
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.sched.cancel(this.timer);
    this.timer = undefined;
  }

  private cancelTimers(): void {
    this.cancelTimer();
    if (this.kaTimer !== undefined) this.sched.cancel(this.kaTimer);
    this.kaTimer = undefined;
    for (let i = 0; i < this.pending.length; i++) this.sched.cancel(this.pending[i].timer);
  }

  // ------------------------------------------------------------------ keep-alive

  /**
   * PINGREQ when nothing was sent OR nothing was received for the ping interval (so inbound QoS 0
   * traffic or our own retransmits cannot hide a dead link), or at once when a QoS >= 1 ack is
   * overdue by ackProbeMs (early probe). The PINGRESP (or any packet) must arrive within
   * pingTimeoutMs of the PINGREQ, or the link is declared dead, closed, and reconnected.
   */
  private armKeepAlive(): void {
    if (this.kaTimer !== undefined) this.sched.cancel(this.kaTimer);
    this.kaTimer = undefined;
    const interval = this.interval();
    if (interval <= 0 || this.state !== 'connected') return;
    const now = this.sched.now();
    let due: number;
    if (this.pingSentAt >= 0) {
      due = this.pingSentAt + this.options.pingTimeoutMs;
    } else {
      due = Math.min(this.lastTx, this.lastRx) + interval;
      if (this.ackWaitSince >= 0 && this.options.ackProbeMs > 0) due = Math.min(due, this.ackWaitSince + this.options.ackProbeMs);
    }
    const self = this;
    this.kaTimer = this.sched.at(Math.max(due, now), function () {
      self.kaTimer = undefined;
      self.keepAliveTick();
    }, 'mqtt.keepalive');
  }

  /** The keep-alive in force on this connection (seconds): declared, or the v5 Server Keep Alive. */
  keepAlive(): number {
    return this.keepAliveMs / 1000;
  }

  /** The ping interval in force (ms): the heartbeat's request, never above the keep-alive in force. */
  interval(): number {
    const ka = this.keepAliveMs;
    const want = this.pingIntervalMs;
    if (want > 0 && (ka <= 0 || want < ka)) return want;
    return ka;
  }

  /**
   * The heartbeat policy's ping interval for the current power mode (seconds; 0 = the keep-alive in
   * force). Never above the keep-alive the broker agreed to. Takes effect at once.
   */
  setPingInterval(sec: number): void {
    this.pingIntervalMs = sec > 0 ? sec * 1000 : 0;
    this.armKeepAlive();
  }

  private keepAliveTick(): void {
    if (this.state !== 'connected') return;
    const now = this.sched.now();
    if (this.pingSentAt >= 0) {
      if (now - this.pingSentAt >= this.options.pingTimeoutMs) {
        const idleSec = Math.round(this.idleAtPingMs / 1000);
        this.emitError('timeout', 'no PINGRESP within ' + this.options.pingTimeoutMs + ' ms: link is dead');
        this.emit('dead', idleSec, undefined, undefined);
        this.dropLink('ping timeout');
        return;
      }
    } else if (now - Math.min(this.lastTx, this.lastRx) >= this.interval()) {
      this.ping();
    } else if (this.ackWaitSince >= 0 && this.options.ackProbeMs > 0 && now - this.ackWaitSince >= this.options.ackProbeMs) {
      this.log.info(TAG, 'ack overdue by ' + (now - this.ackWaitSince) + ' ms: probing the link');
      this.ping();
    }
    this.armKeepAlive();
  }

  /** Send a PINGREQ now and start the PINGRESP watchdog (no-op while one is outstanding). */
  ping(): void {
    if (this.state !== 'connected' || this.pingSentAt >= 0) return;
    const now = this.sched.now();
    this.idleAtPingMs = now - this.lastRx;
    this.send({ type: PacketType.PINGREQ });
    this.stats.pings++;
    this.pingSentAt = now;
    this.lastPingAt = now;
    this.armKeepAlive();
  }

  // ------------------------------------------------------------------ sending

  private limitOut(): number {
    return this.brokerMaxPacket;
  }

  private send(p: Packet): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encode(p, this.version);
    } catch (e) {
      // Our own packets were validated when the app handed them over; this is a bug, not a crash.
      this.log.error(TAG, 'cannot encode packet type ' + p.type + ': ' + String(e));
      return false;
    }
    this.lastTx = this.sched.now();
    this.stats.packetsOut++;
    this.stats.bytesOut += bytes.length;
    const ok = this.transport.write(bytes);
    if (!ok) this.blocked = true;
    return true;
  }

  private publishPacket(m: OutMessage, dup: boolean): PublishPacket {
    const p: PublishPacket = { type: PacketType.PUBLISH, topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup: dup && m.qos > 0 };
    if (m.qos > 0) p.packetId = m.packetId;
    if (this.version === 5 && m.properties) p.properties = m.properties;
    return p;
  }

  /** Send queued messages while connected, not blocked, and under the in-flight window. */
  private pump(): void {
    while (this.state === 'connected' && !this.blocked) {
      const m = this.session.nextQueued();
      if (!m) return;
      if (m.qos > 0 && this.session.inflightCount() >= this.inflightMax) return;
      let id = 0;
      if (m.qos > 0) {
        id = this.allocateId();
        if (id === 0) return;
      }
      m.packetId = id;
      const p = this.publishPacket(m, false);
      let size = -1;
      try {
        size = encode(p, this.version).length;
      } catch (e) {
        size = -1;
      }
      if (size < 0 || size > this.limitOut()) {
        // Cannot ever go out on this connection (bigger than the broker accepts): drop with an error.
        this.session.markSent(m.seq, id);
        if (m.qos > 0) this.session.complete(id, m.qos === 1 ? 'puback' : 'pubcomp');
        this.finish(m.seq, { code: 'too-large', message: 'publish to ' + m.topic + ' exceeds the broker maximum packet size ' + this.limitOut() });
        continue;
      }
      this.send(p);
      this.session.markSent(m.seq, id);
      if (m.qos === 0) this.finish(m.seq, undefined);
      else if (this.ackWaitSince < 0) {
        this.ackWaitSince = this.sched.now();
        this.armKeepAlive();
      }
    }
  }

  /** An ack arrived: the wait for the next one starts now (or ends when nothing is in flight). */
  private ackProgress(): void {
    this.ackWaitSince = this.session.inflightCount() > 0 ? this.sched.now() : -1;
  }

  private allocateId(): number {
    for (let tries = 0; tries < 8; tries++) {
      const id = this.session.allocateId();
      if (id === 0) return 0;
      let clash = false;
      for (let i = 0; i < this.pending.length; i++) if (this.pending[i].id === id) clash = true;
      if (!clash) return id;
    }
    return 0;
  }

  private finish(seq: number, err: ClientError | undefined): void {
    const key = String(seq);
    const cb = this.done[key];
    if (!cb) return;
    delete this.done[key];
    try {
      cb(err);
    } catch (e) {
      this.log.error(TAG, 'publish callback threw: ' + String(e));
    }
  }

  // ------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE


  private queueControlCb(list: Subscription[], cb: SubscribeCallback): void {
    this.queuedCbs.push({ list: list, cb: cb });
  }

  private flushControlCbs(): void {
    const q = this.queuedCbs;
    this.queuedCbs = [];
    for (let i = 0; i < q.length; i++) this.sendControl(PacketType.SUBSCRIBE, q[i].list, q[i].cb);
  }

  private sendControl(kind: number, list: Subscription[], cb: SubscribeCallback | undefined): void {
    const id = this.allocateId();
    if (id === 0) {
      if (cb) cb({ code: 'queue-full', message: 'no free packet id' }, []);
      return;
    }
    let packet: Packet;
    if (kind === PacketType.SUBSCRIBE) {
      packet = { type: PacketType.SUBSCRIBE, packetId: id, subscriptions: list };
    } else {
      const topics: string[] = [];
      for (let i = 0; i < list.length; i++) topics.push(list[i].topic);
      packet = { type: PacketType.UNSUBSCRIBE, packetId: id, topics: topics };
    }
    const self = this;
    const timer = this.sched.after(this.options.ackTimeoutMs, function () {
      self.emitError('timeout', (kind === PacketType.SUBSCRIBE ? 'SUBACK' : 'UNSUBACK') + ' did not come within ' + self.options.ackTimeoutMs + ' ms');
      self.dropLink('ack timeout');
    }, 'mqtt.suback-timeout');
    this.pending.push({ id: id, kind: kind, packet: packet, timer: timer, cb: cb });
    this.send(packet);
  }

  private onSuback(id: number, type: number, codes: number[]): void {
    let idx = -1;
    for (let i = 0; i < this.pending.length; i++) if (this.pending[i].id === id) idx = i;
    const want = type === PacketType.SUBACK ? PacketType.SUBSCRIBE : PacketType.UNSUBSCRIBE;
    if (idx < 0 || this.pending[idx].kind !== want) {
      this.protocolError((type === PacketType.SUBACK ? 'SUBACK' : 'UNSUBACK') + ' for packet id ' + id + ' never issued', 0x82);
      return;
    }
    const pend = this.pending[idx];
    this.pending.splice(idx, 1);
    this.sched.cancel(pend.timer);
    let err: ClientError | undefined;
    if (pend.packet.type === PacketType.SUBSCRIBE) {
      const subs = pend.packet.subscriptions;
      if (codes.length !== subs.length) {
        this.protocolError('SUBACK has ' + codes.length + ' codes for ' + subs.length + ' filters', 0x82);
        return;
      }
      const failed: string[] = [];
      for (let i = 0; i < codes.length; i++) if (codes[i] >= 0x80) failed.push(subs[i].topic + ' (0x' + codes[i].toString(16) + ')');
      if (failed.length) {
        err = { code: 'rejected', message: 'subscription refused: ' + failed.join(', '), reasonCode: codes[0] >= 0x80 ? codes[0] : undefined };
        this.emitError('rejected', err.message, err.reasonCode);
      }
    }
    if (pend.cb) {
      try {
        pend.cb(err, codes);
      } catch (e) {
        this.log.error(TAG, 'subscribe callback threw: ' + String(e));
      }
    }
  }

  private failPending(code: string, message: string): void {
    const p = this.pending;
    this.pending = [];
    for (let i = 0; i < p.length; i++) {
      this.sched.cancel(p[i].timer);
      // A SUBSCRIBE that was never answered is retried on the next connection.
      if (p[i].packet.type === PacketType.SUBSCRIBE && p[i].cb && code !== 'stopped') {
        this.queuedCbs.push({ list: (p[i].packet as Extract<Packet, { type: PacketType.SUBSCRIBE }>).subscriptions, cb: p[i].cb as SubscribeCallback });
      } else if (p[i].cb) {
        (p[i].cb as SubscribeCallback)({ code: code, message: message }, []);
      }
    }
  }
}
