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

  private sched_: Scheduler;
  private transport_: Transport;
  private random_: Random;
  private log_: Log;
  private decoder_: Decoder;
  private handlers_: { [event: string]: Array<(a: unknown, b: unknown, c: unknown) => void> };
  private subs_: SubEntry[];
  private pending_: Pending[];
  private done_: { [seq: string]: DoneCallback };
  /** Per-broker full-jitter backoff and failover order (firmware/liveness). */
  rotation: BrokerRotation;
  private gen_: number;
  private open_: boolean;
  private awaitingConnack_: boolean;
  private connectedAt_: number;
  private lastTx_: number;
  private lastRx_: number;
  private pingSentAt_: number;
  /** RX idle time (ms) when the outstanding PINGREQ was sent (for path-limit learning). */
  private idleAtPingMs_: number;
  /** When the last PINGREQ went out (for the round-trip time). */
  private lastPingAt_: number;
  /** Keep-alive in force on this connection: declared, or the v5 Server Keep Alive. */
  private keepAliveMs_: number;
  /** Ping interval asked for by the heartbeat policy (0 = the keep-alive in force). */
  private pingIntervalMs_: number;
  /** Since when a QoS >= 1 ack has been awaited without progress (-1: nothing in flight). */
  private ackWaitSince_: number;
  private inflightMax_: number;
  private brokerMaxPacket_: number;
  private timer_: TaskId | undefined;
  private kaTimer_: TaskId | undefined;
  private blocked_: boolean;
  private nextFailCapped_: boolean;
  /** A transport attempt is open or closing (its onClose not yet seen): open() must wait for it. */
  private linkBusy_: boolean;
  /** The generation of the transport attempt in progress: its events count only while it is current. */
  private attemptGen_: number;
  private connectWhenClosed_: boolean;
  /** subscribe() callbacks waiting for a connection. */
  /** SUBSCRIBE / UNSUBSCRIBE waiting for a connection (made while offline, or lost with one). */
  private queuedCbs_: Array<{ kind: number; list: Subscription[]; cb: SubscribeCallback | undefined }>;

  constructor(options: ClientOptions, hal: ClientHal) {
    if (!options || typeof options.clientId !== 'string') throw new Error('Client: options with a clientId needed');
    if (!options.brokers || options.brokers.length === 0) throw new Error('Client: at least one broker');
    this.options = options;
    this.sched_ = hal.scheduler;
    this.transport_ = hal.transport;
    this.random_ = hal.random;
    this.log_ = hal.log;
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
    this.decoder_ = createDecoder(this.version, options.maxPacketSize);
    this.handlers_ = {};
    this.subs_ = [];
    this.pending_ = [];
    this.done_ = {};
    this.rotation = new BrokerRotation(options.brokers.length, options.backoff);
    this.gen_ = 0;
    this.open_ = false;
    this.awaitingConnack_ = false;
    this.connectedAt_ = 0;
    this.lastTx_ = 0;
    this.lastRx_ = 0;
    this.pingSentAt_ = -1;
    this.idleAtPingMs_ = 0;
    this.lastPingAt_ = 0;
    this.keepAliveMs_ = options.keepAliveSec * 1000;
    this.pingIntervalMs_ = 0;
    this.ackWaitSince_ = -1;
    this.inflightMax_ = options.maxInflight;
    this.brokerMaxPacket_ = 268435460;
    this.timer_ = undefined;
    this.kaTimer_ = undefined;
    this.blocked_ = false;
    this.nextFailCapped_ = false;
    this.linkBusy_ = false;
    this.attemptGen_ = 0;
    this.connectWhenClosed_ = false;
    this.queuedCbs_ = [];
    const self = this;
    this.transport_.setHandler({
      onOpen: function () {
        const g = self.attemptGen_; // the attempt this event belongs to
        self.sched_.post(function () {
          if (g === self.gen_) self.onOpen_();
        }, 'mqtt.open');
      },
      onData: function (bytes: Uint8Array) {
        const g = self.attemptGen_; // the attempt this event belongs to
        self.sched_.post(function () {
          if (g === self.gen_) self.onData_(bytes);
        }, 'mqtt.data');
      },
      onDrain: function () {
        const g = self.attemptGen_; // the attempt this event belongs to
        self.sched_.post(function () {
          if (g === self.gen_) {
            self.blocked_ = false;
            self.pump_();
          }
        }, 'mqtt.drain');
      },
      onError: function (err) {
        const g = self.attemptGen_; // the attempt this event belongs to
        self.sched_.post(function () {
          if (g === self.gen_) self.emitError_('transport', err.code + ': ' + err.message);
        }, 'mqtt.error');
      },
      onClose: function () {
        const g = self.attemptGen_; // the attempt this event belongs to
        self.sched_.post(function () {
          self.linkBusy_ = false;
          if (g === self.gen_) self.onClosed_('connection closed');
          else if (self.connectWhenClosed_) {
            self.connectWhenClosed_ = false;
            self.connectNow_();
          }
        }, 'mqtt.close');
      },
    });
    const found = this.session.load();
    if (found.messages || found.inboundQos2 || found.droppedBytes) {
      this.log_.info(
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
    (this.handlers_[event] || (this.handlers_[event] = [])).push(fn);
  }

  /** Connect and stay connected until stop(). Idempotent. */
  start(): void {
    if (this.state === 'connecting' || this.state === 'connected' || this.state === 'waiting') return;
    this.connectNow_();
  }

  /** Clean DISCONNECT and no reconnect. Pending QoS >= 1 messages stay in the session store. */
  /**
   * reasonCode (v5 only): 0 = normal disconnection, the will is discarded; 0x04 = "disconnect with
   * will message": the broker publishes the will after its Will Delay Interval unless the device
   * reconnects first (a planned sleep that still reports a device that never comes back).
   */
  stop(reasonCode?: number): void {
    if (this.state === 'stopped' || this.state === 'idle') {
      this.setState_('stopped', 'stop()');
      return;
    }
    this.cancelTimers_();
    this.connectWhenClosed_ = false;
    if (this.open_ && !this.awaitingConnack_) {
      this.send_(this.version === 5 && reasonCode ? { type: PacketType.DISCONNECT, reasonCode: reasonCode } : { type: PacketType.DISCONNECT });
    }
    this.failPending_('stopped', 'client stopped');
    this.closeLink_();
    this.setState_('stopped', 'stop()');
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
      if (size > this.limitOut_()) {
        err = { code: 'too-large', message: 'publish of ' + size + ' bytes exceeds the maximum packet size ' + this.limitOut_() };
      }
    } catch (e) {
      err = { code: 'invalid', message: e instanceof ProtocolError ? e.message : String(e) };
    }
    if (!err) {
      const r = this.session.enqueue(topic, bytes as Uint8Array, qos, retain, props);
      if (r.ok) {
        if (done) this.done_[String(r.seq)] = done;
        this.emit_('publish', topic, qos, opts ? !!opts.quiet : false);
        if (r.dropped) {
          for (let i = 0; i < r.dropped.length; i++) {
            this.finish_(r.dropped[i], { code: 'queue-full', message: 'dropped from the offline queue to make room' });
          }
        }
        this.pump_();
        return undefined;
      }
      err = { code: r.code, message: r.message };
    }
    this.log_.warn(TAG, 'publish to ' + topic + ' refused: ' + err.message);
    if (done) {
      const e = err;
      this.sched_.post(function () {
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
      if (cb) this.sched_.post(function () { cb(err, []); }, 'mqtt.done');
      return err;
    }
    for (let i = 0; i < list.length; i++) {
      let found = false;
      for (let j = 0; j < this.subs_.length; j++) {
        if (this.subs_[j].sub.topic === list[i].topic) {
          this.subs_[j] = { sub: list[i], handler: handler || this.subs_[j].handler };
          found = true;
        }
      }
      if (!found) this.subs_.push({ sub: list[i], handler: handler });
    }
    // Sent now, or with the next connection (also when the broker resumes a session: it may not know
    // this filter yet).
    if (this.state === 'connected') this.sendControl_(PacketType.SUBSCRIBE, list, cb);
    else this.queuedCbs_.push({ kind: PacketType.SUBSCRIBE, list: list, cb: cb });
    return undefined;
  }

  /** Stop a subscription (and its handler). */
  unsubscribe(filter: string, cb?: SubscribeCallback): void {
    const keep: SubEntry[] = [];
    for (let i = 0; i < this.subs_.length; i++) if (this.subs_[i].sub.topic !== filter) keep.push(this.subs_[i]);
    this.subs_ = keep;
    const list = [{ topic: filter, qos: 0 as QoS }];
    if (this.state === 'connected') this.sendControl_(PacketType.UNSUBSCRIBE, list, cb);
    else this.queuedCbs_.push({ kind: PacketType.UNSUBSCRIBE, list: list, cb: cb });
  }

  /**
   * Close the connection cleanly (DISCONNECT, the will discarded) and connect again at once, with the
   * options as they are now (e.g. a new keep-alive or will delay). Queued and in-flight messages stay.
   */
  reconnect(why: string): void {
    if (this.state !== 'connected' && this.state !== 'waiting' && this.state !== 'connecting') return;
    if (this.open_ && !this.awaitingConnack_) this.send_({ type: PacketType.DISCONNECT });
    this.closeLink_();
    this.cancelTimers_();
    this.failPending_('transport', 'reconnecting: ' + why);
    this.setState_('waiting', why + '; reconnect now');
    this.connectNow_();
  }

  /** True when nothing is queued, in flight, or awaiting a SUBACK/UNSUBACK. */
  isIdle(): boolean {
    return this.session.stats().messages === 0 && this.pending_.length === 0 && this.queuedCbs_.length === 0;
  }

  /**
   * The radio came back (Wi-Fi or cellular re-attached): if the client is waiting out a backoff,
   * try now instead.
   */
  linkUp(): void {
    if (this.state !== 'waiting') return;
    this.log_.info(TAG, 'link up: reconnecting now');
    this.connectNow_();
  }

  /** Subscriptions currently held (restored on reconnect). */
  subscriptions(): Subscription[] {
    const out: Subscription[] = [];
    for (let i = 0; i < this.subs_.length; i++) out.push(this.subs_[i].sub);
    return out;
  }

  // ------------------------------------------------------------------ connection

  private setState_(s: ClientState, why: string): void {
    if (this.state === s) return;
    this.state = s;
    this.log_.info(TAG, 'state ' + s + ' (' + why + ')');
    this.emit_('state', s, why, undefined);
  }

  private emit_(event: string, a: unknown, b: unknown, c: unknown): void {
    const list = this.handlers_[event];
    if (!list) return;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i](a, b, c);
      } catch (e) {
        this.log_.error(TAG, 'application ' + event + ' handler threw: ' + String(e));
      }
    }
  }

  private emitError_(code: string, message: string, reasonCode?: number): void {
    const err: ClientError = { code: code, message: message };
    if (reasonCode !== undefined) err.reasonCode = reasonCode;
    this.log_.warn(TAG, code + ': ' + message);
    this.emit_('error', err, undefined, undefined);
  }

  private connectNow_(): void {
    this.cancelTimers_();
    if (this.linkBusy_) {
      // The previous attempt has not reported onClose yet (the Transport contract): go when it does.
      this.connectWhenClosed_ = true;
      return;
    }
    const broker = this.options.brokers[this.rotation.current % this.options.brokers.length];
    this.gen_++;
    this.open_ = false;
    this.awaitingConnack_ = false;
    this.blocked_ = false;
    this.stats.connects++;
    this.setState_('connecting', 'to ' + broker.host + ':' + broker.port);
    const self = this;
    this.timer_ = this.sched_.after(this.options.connectTimeoutMs, function () {
      self.timer_ = undefined;
      self.emitError_('timeout', 'no CONNACK within ' + self.options.connectTimeoutMs + ' ms');
      self.dropLink_('connect timeout');
    }, 'mqtt.connect-timeout');
    this.linkBusy_ = true;
    this.attemptGen_ = this.gen_;
    this.transport_.open({ host: broker.host, port: broker.port, tls: broker.tls });
  }

  private onOpen_(): void {
    this.open_ = true;
    this.awaitingConnack_ = true;
    const o = this.options;
    const v = this.version;
    this.decoder_ = createDecoder(v, o.maxPacketSize);
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
    this.send_(pkt);
  }

  private onData_(bytes: Uint8Array): void {
    this.lastRx_ = this.sched_.now();
    this.pingSentAt_ = -1; // any packet proves the link (issue: PINGRESP "or any packet")
    let packets: Packet[];
    try {
      if (this.awaitingConnack_ && this.version === 5 && this.decoder_.buffered === 0 && bytes[0] === 0x20 && bytes[1] === 0x02) {
        // A 3.1.1 broker answers a v5 CONNECT with a 3.1.1 CONNACK (Aedes: return code 1).
        packets = createDecoder(4, 4).push(bytes.subarray(0, 4));
      } else {
        packets = this.decoder_.push(bytes);
      }
    } catch (e) {
      const pe = e as ProtocolError;
      this.protocolError_(pe.message, pe.reasonCode);
      return;
    }
    this.stats.bytesIn += bytes.length;
    this.stats.packetsIn += packets.length;
    for (let i = 0; i < packets.length; i++) {
      if (!this.open_) return;
      this.handle_(packets[i]);
    }
  }

  private protocolError_(message: string, reasonCode: number): void {
    this.stats.protocolErrors++;
    this.emitError_('protocol', message, reasonCode);
    if (this.version === 5 && this.open_ && !this.awaitingConnack_) {
      this.send_({ type: PacketType.DISCONNECT, reasonCode: reasonCode });
    }
    this.dropLink_('protocol error');
  }

  private handle_(p: Packet): void {
    if (this.awaitingConnack_ && p.type !== PacketType.CONNACK) {
      this.protocolError_('expected CONNACK, got packet type ' + p.type, 0x82);
      return;
    }
    switch (p.type) {
      case PacketType.CONNACK:
        if (!this.awaitingConnack_) {
          this.protocolError_('second CONNACK', 0x82);
          return;
        }
        this.onConnack_(p);
        return;
      case PacketType.PUBLISH:
        this.onPublish_(p);
        return;
      case PacketType.PUBACK:
      case PacketType.PUBCOMP: {
        const m = this.session.complete(p.packetId, p.type === PacketType.PUBACK ? 'puback' : 'pubcomp');
        if (!m) {
          this.protocolError_((p.type === PacketType.PUBACK ? 'PUBACK' : 'PUBCOMP') + ' for packet id ' + p.packetId + ' never issued', 0x82);
          return;
        }
        const rc = p.reasonCode || 0;
        this.ackProgress_();
        this.finish_(m.seq, rc >= 0x80 ? { code: 'rejected', message: 'broker refused the publish to ' + m.topic, reasonCode: rc } : undefined);
        this.pump_();
        return;
      }
      case PacketType.PUBREC: {
        const rc = p.reasonCode || 0;
        if (rc >= 0x80) {
          // v5: the broker refused the message; the QoS 2 flow ends here.
          const m = this.session.complete(p.packetId, 'pubcomp');
          if (!m) {
            this.protocolError_('PUBREC for packet id ' + p.packetId + ' never issued', 0x82);
            return;
          }
          this.finish_(m.seq, { code: 'rejected', message: 'broker refused the publish to ' + m.topic, reasonCode: rc });
          this.pump_();
          return;
        }
        const m = this.session.received(p.packetId);
        if (!m) {
          this.protocolError_('PUBREC for packet id ' + p.packetId + ' never issued', 0x82);
          return;
        }
        this.ackProgress_();
        this.send_({ type: PacketType.PUBREL, packetId: p.packetId });
        return;
      }
      case PacketType.PUBREL: {
        const held = this.session.inboundRelease(p.packetId);
        this.send_({ type: PacketType.PUBCOMP, packetId: p.packetId, reasonCode: held || this.version === 4 ? 0 : 0x92 });
        return;
      }
      case PacketType.SUBACK:
      case PacketType.UNSUBACK:
        this.onSuback_(p.packetId, p.type, p.type === PacketType.SUBACK ? p.reasonCodes : p.reasonCodes || []);
        return;
      case PacketType.PINGRESP:
        if (this.stats.pings > this.stats.pingresps) {
          this.stats.pingresps++;
          this.stats.lastPingRttMs = this.sched_.now() - this.lastPingAt_;
          this.emit_('pong', this.stats.lastPingRttMs, Math.round(this.idleAtPingMs_ / 1000), undefined);
        }
        return;
      case PacketType.DISCONNECT:
        this.emitError_('protocol', 'broker sent DISCONNECT' + (p.reasonCode ? ' with reason 0x' + p.reasonCode.toString(16) : ''), p.reasonCode);
        this.dropLink_('broker disconnected');
        return;
      default:
        // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, AUTH: not for a client (we never asked for AUTH).
        this.protocolError_('unexpected packet type ' + p.type + ' from the broker', 0x82);
    }
  }

  private onConnack_(p: Extract<Packet, { type: PacketType.CONNACK }>): void {
    const v5 = this.version === 5;
    const code = p.reasonCode;
    if (code !== 0) {
      if (this.options.version === 'auto' && v5 && (code === 1 || code === 0x84)) {
        this.log_.info(TAG, 'broker refused MQTT 5.0, falling back to 3.1.1');
        // Stays on 3.1.1 for this broker from now on (brokers do not change versions at runtime).
        this.version = 4;
        this.awaitingConnack_ = false;
        this.dropLink_('protocol fallback', 0);
        return;
      }
      const text = CONNACK_TEXT[code] || 'code 0x' + code.toString(16);
      this.emitError_('refused', 'broker refused the connection: ' + text, code);
      this.nextFailCapped_ = isAuthRefusal(code, v5);
      this.awaitingConnack_ = false;
      this.dropLink_('refused: ' + text);
      return;
    }
    this.awaitingConnack_ = false;
    this.stats.connackOk++;
    this.cancelTimer_();
    this.connectedAt_ = this.sched_.now();
    this.rotation.up(this.connectedAt_);
    const props = p.properties || {};
    this.keepAliveMs_ = (props.serverKeepAlive !== undefined ? props.serverKeepAlive : this.options.keepAliveSec) * 1000;
    // Spread the ping phase: pretend the link has been idle for a random part of the interval.
    const shift = Math.floor(this.interval() * this.options.pingJitter * this.random_.next());
    this.lastTx_ = this.connectedAt_ - shift;
    this.lastRx_ = this.connectedAt_ - shift;
    this.pingSentAt_ = -1;
    this.ackWaitSince_ = -1;
    this.inflightMax_ = Math.min(this.options.maxInflight, props.receiveMaximum || 65535);
    this.brokerMaxPacket_ = props.maximumPacketSize || 268435460;
    this.emit_('connack', p, undefined, undefined);
    const present = p.sessionPresent && !this.options.clean;
    if (!present) this.session.resetForNewSession();
    // Resend what the broker has not acknowledged, with the original ids [MQTT-4.4.0-1], before the
    // application hears 'connected' (anything it publishes then comes after, with new ids).
    if (present) {
      const inflight = this.session.inflight();
      for (let i = 0; i < inflight.length; i++) {
        const m = inflight[i];
        if (m.state === MsgState.RELEASED) this.send_({ type: PacketType.PUBREL, packetId: m.packetId });
        else this.send_(this.publishPacket_(m, true));
      }
      if (inflight.length) this.ackWaitSince_ = this.sched_.now();
    }
    this.flushControlCbs_(present);
    this.setState_('connected', present ? 'session resumed' : 'new session');
    this.armKeepAlive_();
    this.pump_();
  }

  private onPublish_(p: PublishPacket): void {
    if (p.properties && p.properties.topicAlias !== undefined) {
      // We announce Topic Alias Maximum 0: the broker must not use aliases [MQTT-3.2.2-17].
      this.protocolError_('topic alias not allowed', 0x94);
      return;
    }
    if (p.qos === 2) {
      const id = p.packetId as number;
      if (this.session.inboundQos2(id)) this.deliver_(p);
      this.send_({ type: PacketType.PUBREC, packetId: id });
      return;
    }
    this.deliver_(p);
    if (p.qos === 1) this.send_({ type: PacketType.PUBACK, packetId: p.packetId as number });
  }

  private deliver_(p: PublishPacket): void {
    for (let i = 0; i < this.subs_.length; i++) {
      const s = this.subs_[i];
      if (s.handler && topicMatches(s.sub.topic, p.topic)) {
        try {
          s.handler(p.topic, p.payload, p);
        } catch (e) {
          this.log_.error(TAG, 'message handler for ' + s.sub.topic + ' threw: ' + String(e));
        }
      }
    }
    this.emit_('message', p.topic, p.payload, p);
  }

  /** Close the link and schedule a reconnect (unless stopped). */
  private dropLink_(why: string, delayOverrideMs?: number): void {
    this.closeLink_();
    this.onClosed_(why, delayOverrideMs);
  }

  private closeLink_(): void {
    this.gen_++; // ignore every event of the old connection from here on
    this.open_ = false;
    this.awaitingConnack_ = false;
    this.transport_.close();
    this.decoder_.reset();
  }

  private onClosed_(why: string, delayOverrideMs?: number): void {
    if (this.state === 'stopped') return;
    this.gen_++;
    this.open_ = false;
    this.awaitingConnack_ = false;
    this.cancelTimers_();
    this.stats.disconnects++;
    this.failPending_('transport', 'connection lost before the broker answered');
    const now = this.sched_.now();
    // The backoff resets only after a connection that stayed up stableAfterMs (a connect-then-kicked
    // loop keeps backing off); a refusal that retrying cannot fix waits near the cap.
    if (this.connectedAt_ > 0) this.rotation.down(now);
    this.connectedAt_ = 0;
    let delay: number;
    if (delayOverrideMs !== undefined) {
      delay = delayOverrideMs;
    } else {
      const r = this.options.backoff.jitter === 'none' ? 0.999999 : this.random_.next();
      const choice = this.rotation.failed(now, r, this.nextFailCapped_);
      delay = choice.delayMs;
    }
    this.nextFailCapped_ = false;
    this.setState_('waiting', why + '; reconnect in ' + delay + ' ms');
    const self = this;
    this.timer_ = this.sched_.after(delay, function () {
      self.timer_ = undefined;
      self.connectNow_();
    }, 'mqtt.reconnect');
  }

  private cancelTimer_(): void {
    if (this.timer_ !== undefined) this.sched_.cancel(this.timer_);
    this.timer_ = undefined;
  }

  private cancelTimers_(): void {
    this.cancelTimer_();
    if (this.kaTimer_ !== undefined) this.sched_.cancel(this.kaTimer_);
    this.kaTimer_ = undefined;
    for (let i = 0; i < this.pending_.length; i++) this.sched_.cancel(this.pending_[i].timer);
  }

  // ------------------------------------------------------------------ keep-alive

  /**
   * PINGREQ when nothing was sent OR nothing was received for the ping interval (so inbound QoS 0
   * traffic or our own retransmits cannot hide a dead link), or at once when a QoS >= 1 ack is
   * overdue by ackProbeMs (early probe). The PINGRESP (or any packet) must arrive within
   * pingTimeoutMs of the PINGREQ, or the link is declared dead, closed, and reconnected.
   */
  private armKeepAlive_(): void {
    if (this.kaTimer_ !== undefined) this.sched_.cancel(this.kaTimer_);
    this.kaTimer_ = undefined;
    const interval = this.interval();
    if (interval <= 0 || this.state !== 'connected') return;
    const now = this.sched_.now();
    let due: number;
    if (this.pingSentAt_ >= 0) {
      due = this.pingSentAt_ + this.options.pingTimeoutMs;
    } else {
      due = Math.min(this.lastTx_, this.lastRx_) + interval;
      if (this.ackWaitSince_ >= 0 && this.options.ackProbeMs > 0) due = Math.min(due, this.ackWaitSince_ + this.options.ackProbeMs);
    }
    const self = this;
    this.kaTimer_ = this.sched_.at(Math.max(due, now), function () {
      self.kaTimer_ = undefined;
      self.keepAliveTick_();
    }, 'mqtt.keepalive');
  }

  /** The keep-alive in force on this connection (seconds): declared, or the v5 Server Keep Alive. */
  keepAlive(): number {
    return this.keepAliveMs_ / 1000;
  }

  /** The ping interval in force (ms): the heartbeat's request, never above the keep-alive in force. */
  interval(): number {
    const ka = this.keepAliveMs_;
    const want = this.pingIntervalMs_;
    if (want > 0 && (ka <= 0 || want < ka)) return want;
    return ka;
  }

  /**
   * The heartbeat policy's ping interval for the current power mode (seconds; 0 = the keep-alive in
   * force). Never above the keep-alive the broker agreed to. Takes effect at once.
   */
  setPingInterval(sec: number): void {
    this.pingIntervalMs_ = sec > 0 ? sec * 1000 : 0;
    this.armKeepAlive_();
  }

  private keepAliveTick_(): void {
    if (this.state !== 'connected') return;
    const now = this.sched_.now();
    if (this.pingSentAt_ >= 0) {
      if (now - this.pingSentAt_ >= this.options.pingTimeoutMs) {
        const idleSec = Math.round(this.idleAtPingMs_ / 1000);
        this.emitError_('timeout', 'no PINGRESP within ' + this.options.pingTimeoutMs + ' ms: link is dead');
        this.emit_('dead', idleSec, undefined, undefined);
        this.dropLink_('ping timeout');
        return;
      }
    } else if (now - Math.min(this.lastTx_, this.lastRx_) >= this.interval()) {
      this.ping();
    } else if (this.ackWaitSince_ >= 0 && this.options.ackProbeMs > 0 && now - this.ackWaitSince_ >= this.options.ackProbeMs) {
      this.log_.info(TAG, 'ack overdue by ' + (now - this.ackWaitSince_) + ' ms: probing the link');
      this.ping();
    }
    this.armKeepAlive_();
  }

  /** Send a PINGREQ now and start the PINGRESP watchdog (no-op while one is outstanding). */
  ping(): void {
    if (this.state !== 'connected' || this.pingSentAt_ >= 0) return;
    const now = this.sched_.now();
    this.idleAtPingMs_ = now - this.lastRx_;
    this.send_({ type: PacketType.PINGREQ });
    this.stats.pings++;
    this.pingSentAt_ = now;
    this.lastPingAt_ = now;
    this.armKeepAlive_();
  }

  // ------------------------------------------------------------------ sending

  private limitOut_(): number {
    return this.brokerMaxPacket_;
  }

  private send_(p: Packet): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encode(p, this.version);
    } catch (e) {
      // Our own packets were validated when the app handed them over; this is a bug, not a crash.
      this.log_.error(TAG, 'cannot encode packet type ' + p.type + ': ' + String(e));
      return false;
    }
    this.write_(bytes);
    return true;
  }

  /** Write encoded bytes to the transport (counting them; backpressure stops the pump). */
  private write_(bytes: Uint8Array): void {
    this.lastTx_ = this.sched_.now();
    this.stats.packetsOut++;
    this.stats.bytesOut += bytes.length;
    if (!this.transport_.write(bytes)) this.blocked_ = true;
  }

  private publishPacket_(m: OutMessage, dup: boolean): PublishPacket {
    const p: PublishPacket = { type: PacketType.PUBLISH, topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup: dup && m.qos > 0 };
    if (m.qos > 0) p.packetId = m.packetId;
    if (this.version === 5 && m.properties) p.properties = m.properties;
    return p;
  }

  /** Send queued messages while connected, not blocked, and under the in-flight window. */
  private pump_(): void {
    while (this.state === 'connected' && !this.blocked_) {
      const m = this.session.nextQueued();
      if (!m) return;
      if (m.qos > 0 && this.session.inflightCount() >= this.inflightMax_) return;
      let id = 0;
      if (m.qos > 0) {
        id = this.allocateId_();
        if (id === 0) return;
      }
      m.packetId = id;
      // Encoded once: the size check and the write use the same bytes.
      let bytes: Uint8Array | undefined;
      try {
        bytes = encode(this.publishPacket_(m, false), this.version);
      } catch (e) {
        bytes = undefined;
      }
      if (!bytes || bytes.length > this.limitOut_()) {
        // Cannot ever go out on this connection (bigger than the broker accepts): drop with an error.
        this.session.markSent(m.seq, id);
        if (m.qos > 0) this.session.complete(id, m.qos === 1 ? 'puback' : 'pubcomp');
        this.finish_(m.seq, { code: 'too-large', message: 'publish to ' + m.topic + ' exceeds the broker maximum packet size ' + this.limitOut_() });
        continue;
      }
      this.write_(bytes);
      this.session.markSent(m.seq, id);
      if (m.qos === 0) this.finish_(m.seq, undefined);
      else if (this.ackWaitSince_ < 0) {
        this.ackWaitSince_ = this.sched_.now();
        this.armKeepAlive_();
      }
    }
  }

  /** An ack arrived: the wait for the next one starts now (or ends when nothing is in flight). */
  private ackProgress_(): void {
    this.ackWaitSince_ = this.session.inflightCount() > 0 ? this.sched_.now() : -1;
  }

  private allocateId_(): number {
    for (let tries = 0; tries < 8; tries++) {
      const id = this.session.allocateId();
      if (id === 0) return 0;
      let clash = false;
      for (let i = 0; i < this.pending_.length; i++) if (this.pending_[i].id === id) clash = true;
      if (!clash) return id;
    }
    return 0;
  }

  private finish_(seq: number, err: ClientError | undefined): void {
    const key = String(seq);
    const cb = this.done_[key];
    if (!cb) return;
    delete this.done_[key];
    try {
      cb(err);
    } catch (e) {
      this.log_.error(TAG, 'publish callback threw: ' + String(e));
    }
  }

  // ------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE


  /**
   * On a new connection: without a session at the broker, every held subscription is sent again
   * (those already in the queue with it, so none goes twice); then the queue, in order.
   */
  private flushControlCbs_(present: boolean): void {
    const q = this.queuedCbs_;
    this.queuedCbs_ = [];
    if (!present) {
      const rest: Subscription[] = [];
      for (let i = 0; i < this.subs_.length; i++) {
        const t = this.subs_[i].sub.topic;
        let queued = false;
        for (let j = 0; j < q.length; j++) {
          if (q[j].kind !== PacketType.SUBSCRIBE) continue;
          for (let k = 0; k < q[j].list.length; k++) if (q[j].list[k].topic === t) queued = true;
        }
        if (!queued) rest.push(this.subs_[i].sub);
      }
      if (rest.length) this.sendControl_(PacketType.SUBSCRIBE, rest, undefined);
    }
    for (let i = 0; i < q.length; i++) this.sendControl_(q[i].kind, q[i].list, q[i].cb);
  }

  private sendControl_(kind: number, list: Subscription[], cb: SubscribeCallback | undefined): void {
    const id = this.allocateId_();
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
    const timer = this.sched_.after(this.options.ackTimeoutMs, function () {
      self.emitError_('timeout', (kind === PacketType.SUBSCRIBE ? 'SUBACK' : 'UNSUBACK') + ' did not come within ' + self.options.ackTimeoutMs + ' ms');
      self.dropLink_('ack timeout');
    }, 'mqtt.suback-timeout');
    this.pending_.push({ id: id, kind: kind, packet: packet, timer: timer, cb: cb });
    this.send_(packet);
  }

  private onSuback_(id: number, type: number, codes: number[]): void {
    let idx = -1;
    for (let i = 0; i < this.pending_.length; i++) if (this.pending_[i].id === id) idx = i;
    const want = type === PacketType.SUBACK ? PacketType.SUBSCRIBE : PacketType.UNSUBSCRIBE;
    if (idx < 0 || this.pending_[idx].kind !== want) {
      this.protocolError_((type === PacketType.SUBACK ? 'SUBACK' : 'UNSUBACK') + ' for packet id ' + id + ' never issued', 0x82);
      return;
    }
    const pend = this.pending_[idx];
    this.pending_.splice(idx, 1);
    this.sched_.cancel(pend.timer);
    let err: ClientError | undefined;
    if (pend.packet.type === PacketType.SUBSCRIBE) {
      const subs = pend.packet.subscriptions;
      if (codes.length !== subs.length) {
        this.protocolError_('SUBACK has ' + codes.length + ' codes for ' + subs.length + ' filters', 0x82);
        return;
      }
      const failed: string[] = [];
      for (let i = 0; i < codes.length; i++) if (codes[i] >= 0x80) failed.push(subs[i].topic + ' (0x' + codes[i].toString(16) + ')');
      if (failed.length) {
        err = { code: 'rejected', message: 'subscription refused: ' + failed.join(', '), reasonCode: codes[0] >= 0x80 ? codes[0] : undefined };
        this.emitError_('rejected', err.message, err.reasonCode);
      }
    }
    if (pend.cb) {
      try {
        pend.cb(err, codes);
      } catch (e) {
        this.log_.error(TAG, 'subscribe callback threw: ' + String(e));
      }
    }
  }

  private failPending_(code: string, message: string): void {
    const p = this.pending_;
    this.pending_ = [];
    for (let i = 0; i < p.length; i++) {
      this.sched_.cancel(p[i].timer);
      // A SUBSCRIBE or UNSUBSCRIBE that was never answered is sent again on the next connection.
      if (code !== 'stopped') {
        const pk = p[i].packet;
        const list = pk.type === PacketType.SUBSCRIBE ? pk.subscriptions : pk.type === PacketType.UNSUBSCRIBE ? pk.topics.map(function (t) { return { topic: t, qos: 0 as QoS }; }) : [];
        this.queuedCbs_.push({ kind: p[i].kind, list: list, cb: p[i].cb });
      } else if (p[i].cb) {
        (p[i].cb as SubscribeCallback)({ code: code, message: message }, []);
      }
    }
  }
}
