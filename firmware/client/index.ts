// The MQTT client: owns the connection, the session and every message the device sends or receives.
//
//   const c = new Client(options, { scheduler, transport, storage, random, log });
//   c.on('state', (s, why) => ...); c.on('message', (topic, payload, packet) => ...);
//   c.subscribe('cmd/#', 1, (topic, payload) => ..., (err, granted) => ...);
//   c.publish('sensor/t', '21.5', { qos: 1 }, (err) => ...);   // err undefined = acknowledged
//   c.start();                     // connect, and stay connected (reconnects with backoff)
//   c.stop();                      // clean DISCONNECT, no reconnect
//
// Everything runs in the scheduler's single loop: transport events are posted into it, and ONE timer
// task serves every deadline (connect timeout, reconnect wait, keep-alive, SUBACK timeouts). Nothing
// here reads a clock or opens a socket except through the HAL handed in.
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
//
// Size (this runs on Espruino, see DESIGN.md section 2): few, larger methods (each function costs
// JsVars); MQTT 5-only code sits behind `typeof WREN_V5 === 'undefined' || WREN_V5` so a 3.1.1 board
// drops it; fields that are set before their first use are not initialised in the constructor.

import { createDecoder, encode, utf8Length, utf8Write } from '../mqtt/index';
import type { ProtocolError } from '../mqtt/index';
import { PacketType } from '../mqtt/types';
import type { Decoder, Packet, Properties, PublishPacket, QoS, SubscribePacket, Subscription, UnsubscribePacket, Version, Will } from '../mqtt/types';
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

/** A SUBSCRIBE or UNSUBSCRIBE: queued for a connection, then pending (sent, `due` = its ack deadline). */
interface Control {
  packet: SubscribePacket | UnsubscribePacket;
  cb: SubscribeCallback | undefined;
  due?: number;
}

/** Transport events, posted into the scheduler with the attempt they belong to. */
const enum Ev {
  OPEN,
  DATA,
  DRAIN,
  ERROR,
  CLOSE,
}

const TAG = 'mqtt';
/** No limit on packets sent until the broker announces one (v5 CONNACK Maximum Packet Size). */
const NO_LIMIT = 268435460;

// CONNACK refusals by v5 reason code; a 3.1.1 return code 1..5 is read as its v5 twin (V4_AS_V5).
// Codes not listed are reported by number.
const V4_AS_V5 = [0, 0x84, 0x85, 0x88, 0x86, 0x87];
const REFUSED: { [code: number]: string } = {
  0x84: 'unsupported protocol version',
  0x85: 'client id rejected',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8c: 'bad auth method',
  0x9a: 'will retain not supported',
  0x9b: 'will QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
};

/** UTF-8 bytes of a string (payload convenience). */
export function utf8Bytes(s: string): Uint8Array {
  const b = new Uint8Array(utf8Length(s));
  utf8Write(s, b, 0);
  return b;
}

/**
 * Stop a subscription (and its handler). A plain function rather than a method: the firmware never
 * unsubscribes, so a device bundle leaves it out.
 */
export function unsubscribe(client: Client, filter: string, cb?: SubscribeCallback): void {
  const keep: SubEntry[] = [];
  for (let i = 0; i < client.subs_.length; i++) if (client.subs_[i].sub.topic !== filter) keep.push(client.subs_[i]);
  client.subs_ = keep;
  client.control_({ packet: { type: PacketType.UNSUBSCRIBE, packetId: 0, topics: [filter] }, cb: cb });
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
  /** Per-broker full-jitter backoff and failover order (firmware/liveness). */
  rotation: BrokerRotation;
  /** Held subscriptions (restored on reconnect). Internal (unsubscribe() uses it). */
  subs_: SubEntry[];

  private sched_: Scheduler;
  private transport_: Transport;
  private random_: Random;
  private log_: Log;
  private handlers_: { [event: string]: Array<(a: unknown, b: unknown, c: unknown) => void> };
  /** SUBSCRIBE / UNSUBSCRIBE sent and awaiting their ack. */
  private pending_: Control[];
  /** SUBSCRIBE / UNSUBSCRIBE waiting for a connection (made while offline, or lost with one). */
  private queued_: Control[];
  /** publish() callbacks by message seq. */
  private done_: { [seq: number]: DoneCallback };
  /** Generation of the connection: events and timers of an older one are ignored. */
  private gen_: number;
  /** The generation of the transport attempt in progress: its events count only while it is current. */
  private attemptGen_: number;
  /** When the connection came up (0: not connected). */
  private connectedAt_: number;
  /** Keep-alive in force on this connection: declared, or the v5 Server Keep Alive. */
  private keepAliveMs_: number;
  /** Largest packet the broker accepts (v5 CONNACK), for what we send. */
  private maxOut_: number;
  // Set before their first use (at open, CONNACK, or the event that needs them):
  private decoder_!: Decoder;
  private timer_: TaskId | undefined;
  /** The deadline while 'connecting' (connect timeout) or 'waiting' (reconnect). */
  private due_!: number;
  private lastTx_!: number;
  private lastRx_!: number;
  /** When the outstanding PINGREQ was sent (-1: none). */
  private pingAt_!: number;
  /** When the last PINGREQ went out (for the round-trip time). */
  private lastPingAt_!: number;
  /** RX idle time (ms) when the outstanding PINGREQ was sent (for path-limit learning). */
  private idleAtPing_!: number;
  /** Ping interval asked for by the heartbeat policy (0 or unset = the keep-alive in force). */
  private pingIntervalMs_!: number;
  /** Since when a QoS >= 1 ack has been awaited without progress (-1: nothing in flight). */
  private ackWait_!: number;
  private inflightMax_!: number;
  // Flags, false until set:
  /** The transport is open (between its onOpen and our close). */
  private open_?: boolean;
  /** A write returned false: wait for onDrain. */
  private blocked_?: boolean;
  /** The next backoff waits near the cap (a refusal that retrying soon cannot fix). */
  private capped_?: boolean;
  /** A transport attempt is open or closing (its onClose not yet seen): open() must wait for it. */
  private linkBusy_?: boolean;
  private connectWhenClosed_?: boolean;

  constructor(options: ClientOptions, hal: ClientHal) {
    if (typeof options.clientId !== 'string' || !options.brokers.length) throw new Error('Client: clientId and a broker needed');
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
    this.handlers_ = {};
    this.subs_ = [];
    this.pending_ = [];
    this.queued_ = [];
    this.done_ = {};
    this.rotation = new BrokerRotation(options.brokers.length, options.backoff);
    this.gen_ = this.attemptGen_ = this.connectedAt_ = 0;
    this.keepAliveMs_ = options.keepAliveSec * 1000;
    this.maxOut_ = NO_LIMIT;
    const self = this;
    // One handler per transport event, all alike: post the event into the loop with its attempt.
    const handler = function (kind: Ev) {
      return function (arg?: unknown) {
        const g = self.attemptGen_; // the attempt this event belongs to
        self.sched_.post(function () {
          self.event_(kind, g, arg);
        }, 'mqtt');
      };
    };
    this.transport_.setHandler({
      onOpen: handler(Ev.OPEN),
      onData: handler(Ev.DATA),
      onDrain: handler(Ev.DRAIN),
      onError: handler(Ev.ERROR),
      onClose: handler(Ev.CLOSE),
    });
    this.session.load(); // it logs what it restored
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
    if (this.state === 'idle' || this.state === 'stopped') this.connectNow_();
  }

  /**
   * Clean DISCONNECT and no reconnect. Pending QoS >= 1 messages stay in the session store.
   * reasonCode (v5 only): 0 = normal disconnection, the will is discarded; 0x04 = "disconnect with
   * will message": the broker publishes the will after its Will Delay Interval unless the device
   * reconnects first (a planned sleep that still reports a device that never comes back).
   */
  stop(reasonCode?: number): void {
    if (this.state !== 'stopped' && this.state !== 'idle') {
      this.sched_.cancel(this.timer_);
      this.connectWhenClosed_ = false;
      if (this.state === 'connected') {
        this.send_({ type: PacketType.DISCONNECT, reasonCode: (typeof WREN_V5 === 'undefined' || WREN_V5) && this.version === 5 ? reasonCode : 0 });
      }
      this.close_(true);
    }
    this.setState_('stopped', 'stop()');
  }

  /**
   * Publish. payload: bytes or a string (sent as UTF-8). Returns undefined when accepted (queued or
   * sent), or the error. `done` is called once: QoS 0 when written to the transport, QoS >= 1 when
   * acknowledged (PUBACK / PUBCOMP), or with the error.
   */
  publish(topic: string, payload: Uint8Array | string, opts?: PublishOptions, done?: DoneCallback): ClientError | undefined {
    const o = opts || {};
    const qos = o.qos || 0;
    const retain = !!o.retain;
    let err: ClientError | undefined;
    let bytes: Uint8Array | undefined;
    try {
      bytes = typeof payload === 'string' ? utf8Bytes(payload) : payload;
      // Validate by encoding once: topic, QoS, properties and size, exactly as the wire will see it.
      const size = encode(
        { type: PacketType.PUBLISH, topic: topic, payload: bytes, qos: qos, retain: retain, dup: false, packetId: 1, properties: o.properties },
        this.version,
      ).length;
      if (size > this.maxOut_) err = { code: 'too-large', message: size + ' bytes > broker maximum ' + this.maxOut_ };
    } catch (e) {
      err = { code: 'invalid', message: (e as ProtocolError).message };
    }
    if (!err) {
      const r = this.session.enqueue(topic, bytes as Uint8Array, qos, retain, o.properties);
      if (!r.ok) err = r;
      else {
        if (done) this.done_[r.seq] = done;
        this.emit_('publish', topic, qos, !!o.quiet);
        const dropped = r.dropped || [];
        for (let i = 0; i < dropped.length; i++) this.finish_(dropped[i], { code: 'queue-full', message: 'dropped for room' });
        this.pump_();
        return undefined;
      }
    }
    this.defer_(done, err);
    return err;
  }

  /**
   * Subscribe to a filter (or several) with a handler for matching messages. The subscription is kept
   * and restored after a reconnect whenever the broker has no session. cb gets the granted QoS (or
   * failure code >= 0x80) per filter; a failure also gives err.
   */
  subscribe(filter: string | Subscription[], qos?: QoS, handler?: MessageHandler, cb?: SubscribeCallback): ClientError | undefined {
    const list: Subscription[] = typeof filter === 'string' ? [{ topic: filter, qos: qos || 0 }] : filter;
    const packet: SubscribePacket = { type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: list };
    try {
      encode(packet, this.version); // checks every filter too
    } catch (e) {
      const err = { code: 'invalid', message: (e as ProtocolError).message };
      this.defer_(cb, err, []);
      return err;
    }
    const subs = this.subs_;
    for (let i = 0; i < list.length; i++) {
      let j = 0;
      while (j < subs.length && subs[j].sub.topic !== list[i].topic) j++;
      subs[j] = { sub: list[i], handler: handler || (subs[j] && subs[j].handler) };
    }
    // Sent now, or with the next connection (also when the broker resumes a session: it may not know
    // this filter yet).
    this.control_({ packet: packet, cb: cb });
    return undefined;
  }

  /**
   * Close the connection cleanly (DISCONNECT, the will discarded) and connect again at once, with the
   * options as they are now (e.g. a new keep-alive or will delay). Queued and in-flight messages stay.
   */
  reconnect(why: string): void {
    if (this.state === 'idle' || this.state === 'stopped') return;
    if (this.state === 'connected') this.send_({ type: PacketType.DISCONNECT });
    this.close_();
    this.setState_('waiting', why + '; reconnect now');
    this.connectNow_();
  }

  /** True when nothing is queued, in flight, or awaiting a SUBACK/UNSUBACK. */
  isIdle(): boolean {
    return !this.session.stats().messages && !this.pending_.length && !this.queued_.length;
  }

  /** The radio came back (Wi-Fi or cellular re-attached): if waiting out a backoff, try now instead. */
  linkUp(): void {
    if (this.state === 'waiting') this.connectNow_();
  }

  /** Subscriptions currently held (restored on reconnect). */
  subscriptions(): Subscription[] {
    const out: Subscription[] = [];
    for (let i = 0; i < this.subs_.length; i++) out.push(this.subs_[i].sub);
    return out;
  }

  /** The keep-alive in force on this connection (seconds): declared, or the v5 Server Keep Alive. */
  keepAlive(): number {
    return this.keepAliveMs_ / 1000;
  }

  /** The ping interval in force (ms): the heartbeat's request, never above the keep-alive in force. */
  interval(): number {
    const ka = this.keepAliveMs_;
    const want = this.pingIntervalMs_;
    return want > 0 && (ka <= 0 || want < ka) ? want : ka;
  }

  /**
   * The heartbeat policy's ping interval for the current power mode (seconds; 0 = the keep-alive in
   * force). Never above the keep-alive the broker agreed to. Takes effect at once.
   */
  setPingInterval(sec: number): void {
    this.pingIntervalMs_ = sec > 0 ? sec * 1000 : 0;
    this.arm_();
  }

  /** Internal (unsubscribe() uses it): send a SUBSCRIBE / UNSUBSCRIBE now when connected (or `now`), else with the next connection. */
  control_(c: Control, now?: boolean): void {
    if (!now && this.state !== 'connected') {
      this.queued_.push(c);
      return;
    }
    const id = this.allocateId_();
    if (!id) {
      this.call_(c.cb, { code: 'queue-full', message: 'no free packet id' }, []);
      return;
    }
    c.packet.packetId = id;
    c.due = this.sched_.now() + this.options.ackTimeoutMs;
    this.pending_.push(c);
    this.send_(c.packet);
    this.arm_();
  }

  // ------------------------------------------------------------------ events and errors

  private setState_(s: ClientState, why: string): void {
    if (this.state === s) return;
    this.state = s;
    this.emit_('state', s, why);
  }

  private emit_(event: string, a: unknown, b?: unknown, c?: unknown): void {
    const list = this.handlers_[event] || [];
    for (let i = 0; i < list.length; i++) this.call_(list[i], a, b, c);
  }

  /** Call an application callback (if any): whatever it throws is logged, never propagated. */
  private call_(fn: ((a: any, b: any, c: any) => void) | undefined, a?: unknown, b?: unknown, c?: unknown): void {
    try {
      if (fn) fn(a, b, c);
    } catch (e) {
      this.log_.error(TAG, 'handler threw: ' + e);
    }
  }

  /** Call back later (in the loop), not from inside the API call that failed. */
  private defer_(fn: ((a: any, b: any) => void) | undefined, a: unknown, b?: unknown): void {
    const self = this;
    if (fn) this.sched_.post(function () {
      self.call_(fn, a, b);
    }, 'mqtt');
  }

  /** Report an error to the application; `drop`: the connection is lost because of it (reconnect after the backoff). */
  private error_(code: string, message: string, reasonCode?: number, drop?: boolean): ClientError {
    const err: ClientError = { code: code, message: message, reasonCode: reasonCode };
    this.emit_('error', err);
    if (drop) this.lost_(message);
    return err;
  }

  /** A broker that broke the protocol: v5 DISCONNECT with the reason, close, reconnect with backoff. */
  private protocolError_(message: string, reasonCode: number): void {
    this.stats.protocolErrors++;
    if ((typeof WREN_V5 === 'undefined' || WREN_V5) && this.version === 5 && this.state === 'connected') {
      this.send_({ type: PacketType.DISCONNECT, reasonCode: reasonCode });
    }
    this.error_('protocol', message, reasonCode, true);
  }

  private finish_(seq: number, err?: ClientError): void {
    const cb = this.done_[seq];
    delete this.done_[seq];
    this.call_(cb, err);
  }

  // ------------------------------------------------------------------ connection

  private connectNow_(): void {
    this.sched_.cancel(this.timer_);
    if (this.linkBusy_) {
      // The previous attempt has not reported onClose yet (the Transport contract): go when it does.
      this.connectWhenClosed_ = true;
      return;
    }
    const o = this.options;
    const broker = o.brokers[this.rotation.current % o.brokers.length];
    this.blocked_ = false;
    this.stats.connects++;
    this.due_ = this.sched_.now() + o.connectTimeoutMs;
    this.setState_('connecting', 'to ' + broker.host + ':' + broker.port);
    this.arm_();
    this.linkBusy_ = true;
    this.attemptGen_ = ++this.gen_;
    this.transport_.open(broker);
  }

  /**
   * End the connection (its events are ignored from here on). SUBSCRIBE / UNSUBSCRIBE awaiting an ack
   * go back to the queue for the next connection, or fail when `stopping`.
   */
  private close_(stopping?: boolean): void {
    this.gen_++;
    this.open_ = false;
    this.transport_.close(); // idempotent: nothing when the transport already closed
    const p = this.pending_;
    this.pending_ = [];
    for (let i = 0; i < p.length; i++) {
      if (stopping) this.call_(p[i].cb, { code: 'stopped', message: 'client stopped' }, []);
      else this.queued_.push(p[i]);
    }
  }

  /** The connection is gone (or given up): close it, and reconnect after the backoff (or delayMs). */
  private lost_(why: string, delayMs?: number): void {
    this.close_();
    if (this.state === 'stopped') return;
    const now = this.sched_.now();
    this.stats.disconnects++;
    // The backoff resets only after a connection that stayed up stableAfterMs (a connect-then-kicked
    // loop keeps backing off); a refusal that retrying cannot fix waits near the cap.
    if (this.connectedAt_) this.rotation.down(now);
    this.connectedAt_ = 0;
    if (delayMs === undefined) {
      delayMs = this.rotation.failed(now, this.options.backoff.jitter === 'none' ? 0.999999 : this.random_.next(), !!this.capped_).delayMs;
    }
    this.capped_ = false;
    this.due_ = now + delayMs;
    this.setState_('waiting', why + '; reconnect in ' + delayMs + ' ms');
    this.arm_();
  }

  /** A transport event of attempt `g` (run in the loop). */
  private event_(kind: Ev, g: number, arg: any): void {
    const o = this.options;
    if (kind === Ev.CLOSE) {
      this.linkBusy_ = false;
      if (g === this.gen_) this.lost_('connection closed');
      else if (this.connectWhenClosed_) {
        this.connectWhenClosed_ = false;
        this.connectNow_();
      }
    } else if (g !== this.gen_) {
      // an event of an attempt given up
    } else if (kind === Ev.OPEN) {
      this.open_ = true;
      this.maxOut_ = NO_LIMIT;
      this.decoder_ = createDecoder(this.version, o.maxPacketSize);
      const v5 = (typeof WREN_V5 === 'undefined' || WREN_V5) && this.version === 5;
      const w = o.will;
      this.send_({
        type: PacketType.CONNECT,
        clientId: o.clientId,
        keepAliveSec: o.keepAliveSec,
        clean: o.clean,
        username: o.username,
        password: o.password !== undefined ? utf8Bytes(o.password) : undefined,
        // 3.1.1 has no will properties (a will made for 5.0 is sent without them after a fallback)
        will: w && (v5 ? w : { topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain }),
        // Session Expiry 0 = the session ends with the connection (clean)
        properties: v5 ? { sessionExpiryInterval: o.clean ? 0 : o.sessionExpirySec, maximumPacketSize: o.maxPacketSize } : undefined,
      });
    } else if (kind === Ev.DATA) {
      const bytes = arg as Uint8Array;
      this.lastRx_ = this.sched_.now();
      this.pingAt_ = -1; // any packet proves the link (PINGRESP "or any packet")
      let decoder = this.decoder_;
      let chunk = bytes;
      if ((typeof WREN_V5 === 'undefined' || WREN_V5) && this.version === 5 && this.state === 'connecting' && !decoder.buffered && bytes[0] === 0x20 && bytes[1] === 2) {
        // A 3.1.1 broker answers a v5 CONNECT with a 3.1.1 CONNACK (Aedes: return code 1).
        decoder = createDecoder(4, 4);
        chunk = bytes.subarray(0, 4);
      }
      let packets: Packet[];
      try {
        packets = decoder.push(chunk);
      } catch (e) {
        this.protocolError_((e as ProtocolError).message, (e as ProtocolError).reasonCode as number);
        return;
      }
      this.stats.bytesIn += bytes.length;
      this.stats.packetsIn += packets.length;
      for (let i = 0; i < packets.length && this.open_; i++) this.handle_(packets[i]);
    } else if (kind === Ev.DRAIN) {
      this.blocked_ = false;
      this.pump_();
    } else {
      this.error_('transport', arg.code + ': ' + arg.message);
    }
  }

  /** One packet from the broker. */
  private handle_(p: Packet): void {
    const s = this.session;
    const o = this.options;
    const now = this.sched_.now();
    const id = (p as { packetId?: number }).packetId as number;
    const connecting = this.state === 'connecting'; // open: awaiting the CONNACK
    if (connecting !== (p.type === PacketType.CONNACK)) {
      this.protocolError_(connecting ? 'expected CONNACK, got type ' + p.type : 'second CONNACK', 0x82);
      return;
    }
    switch (p.type) {
      case PacketType.CONNACK: {
        const rc = p.reasonCode;
        if (rc) {
          const code = rc < 6 ? V4_AS_V5[rc] : rc;
          if ((typeof WREN_V5 === 'undefined' || WREN_V5) && o.version === 'auto' && this.version === 5 && code === 0x84) {
            // Stays on 3.1.1 for this broker from now on (brokers do not change versions at runtime).
            this.version = 4;
            this.lost_('MQTT 5 refused: 3.1.1 next', 0);
            return;
          }
          this.capped_ = code === 0x85 || code === 0x86 || code === 0x87 || code === 0x8c;
          this.error_('refused', REFUSED[code] || 'CONNACK 0x' + rc.toString(16), rc, true);
          return;
        }
        this.stats.connackOk++;
        this.connectedAt_ = now;
        this.rotation.up(now);
        const props = p.properties || {};
        this.keepAliveMs_ = (props.serverKeepAlive !== undefined ? props.serverKeepAlive : o.keepAliveSec) * 1000;
        this.inflightMax_ = Math.min(o.maxInflight, props.receiveMaximum || 65535);
        this.maxOut_ = props.maximumPacketSize || NO_LIMIT;
        // Spread the ping phase: pretend the link has been idle for a random part of the interval.
        this.lastTx_ = this.lastRx_ = now - Math.floor(this.interval() * o.pingJitter * this.random_.next());
        this.pingAt_ = this.ackWait_ = -1;
        this.emit_('connack', p);
        const present = p.sessionPresent && !o.clean;
        const q = this.queued_;
        this.queued_ = [];
        if (present) {
          // Resend what the broker has not acknowledged, with the original ids [MQTT-4.4.0-1], before
          // the application hears 'connected' (anything it publishes then comes after, with new ids).
          const inflight = s.inflight();
          for (let i = 0; i < inflight.length; i++) {
            const m = inflight[i];
            this.send_(m.state === MsgState.RELEASED ? { type: PacketType.PUBREL, packetId: m.packetId } : this.publishPacket_(m, true));
            this.ackWait_ = now;
          }
        } else {
          // No session at the broker: every held subscription is sent again (those already queued
          // with it, so none goes twice), before the queue.
          s.resetForNewSession();
          const rest: Subscription[] = [];
          for (let i = 0; i < this.subs_.length; i++) {
            const sub = this.subs_[i].sub;
            let queued = false;
            for (let j = 0; j < q.length; j++) {
              const l = (q[j].packet as SubscribePacket).subscriptions || [];
              for (let k = 0; k < l.length; k++) if (l[k].topic === sub.topic) queued = true;
            }
            if (!queued) rest.push(sub);
          }
          if (rest.length) q.unshift({ packet: { type: PacketType.SUBSCRIBE, packetId: 0, subscriptions: rest }, cb: undefined });
        }
        for (let i = 0; i < q.length; i++) this.control_(q[i], true);
        this.setState_('connected', present ? 'session resumed' : 'new session');
        this.arm_();
        this.pump_();
        return;
      }
      case PacketType.PUBLISH:
        if ((typeof WREN_V5 === 'undefined' || WREN_V5) && p.properties && p.properties.topicAlias !== undefined) {
          // We announce Topic Alias Maximum 0: the broker must not use aliases [MQTT-3.2.2-17].
          this.protocolError_('topic alias', 0x94);
          return;
        }
        // QoS 2 is delivered the first time its id is seen only (held until PUBREL).
        if (p.qos < 2 || s.inboundQos2(id)) {
          for (let i = 0; i < this.subs_.length; i++) {
            const e = this.subs_[i];
            if (topicMatches(e.sub.topic, p.topic)) this.call_(e.handler, p.topic, p.payload, p);
          }
          this.emit_('message', p.topic, p.payload, p);
        }
        if (p.qos) this.send_({ type: p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, packetId: id });
        return;
      case PacketType.PUBACK:
      case PacketType.PUBREC:
      case PacketType.PUBCOMP: {
        const rc = p.reasonCode || 0;
        const m = p.type === PacketType.PUBREC ? s.received(id) : s.complete(id, p.type === PacketType.PUBACK ? 'puback' : 'pubcomp');
        if (!m) break;
        // An ack arrived: the wait for the next one starts now (or ends when nothing is in flight).
        this.ackWait_ = s.inflightCount() ? now : -1;
        if (p.type === PacketType.PUBREC) {
          if (rc < 0x80) {
            this.send_({ type: PacketType.PUBREL, packetId: id });
            return;
          }
          s.complete(id, 'pubcomp'); // v5: the broker refused the message; the QoS 2 flow ends here
        }
        this.finish_(m.seq, rc < 0x80 ? undefined : { code: 'rejected', message: 'publish to ' + m.topic + ' refused', reasonCode: rc });
        this.pump_();
        return;
      }
      case PacketType.PUBREL:
        this.send_({
          type: PacketType.PUBCOMP,
          packetId: id,
          // v5: 0x92 "packet identifier not found" for an id not held
          reasonCode: s.inboundRelease(id) || !(typeof WREN_V5 === 'undefined' || WREN_V5) || this.version === 4 ? 0 : 0x92,
        });
        return;
      case PacketType.SUBACK:
      case PacketType.UNSUBACK: {
        const q = this.pending_;
        let i = 0;
        while (i < q.length && q[i].packet.packetId !== id) i++;
        const c = q[i];
        if (!c || c.packet.type !== p.type - 1) break; // SUBACK answers SUBSCRIBE, UNSUBACK UNSUBSCRIBE
        q.splice(i, 1);
        const codes = p.reasonCodes || [];
        const subs = (c.packet as SubscribePacket).subscriptions;
        let err: ClientError | undefined;
        if (subs) {
          if (codes.length !== subs.length) {
            this.protocolError_('SUBACK: ' + codes.length + ' codes for ' + subs.length + ' filters', 0x82);
            return;
          }
          const failed: string[] = [];
          for (let k = 0; k < codes.length; k++) if (codes[k] >= 0x80) failed.push(subs[k].topic + ' (0x' + codes[k].toString(16) + ')');
          if (failed.length) err = this.error_('rejected', 'refused: ' + failed.join(', '), codes[0] >= 0x80 ? codes[0] : undefined);
        }
        this.call_(c.cb, err, codes);
        return;
      }
      case PacketType.PINGRESP: {
        const st = this.stats;
        if (st.pings > st.pingresps) {
          st.pingresps++;
          st.lastPingRttMs = now - this.lastPingAt_;
          this.emit_('pong', st.lastPingRttMs, Math.round(this.idleAtPing_ / 1000));
        }
        return;
      }
      case PacketType.DISCONNECT:
        this.error_('protocol', 'broker DISCONNECT' + (p.reasonCode ? ' 0x' + p.reasonCode.toString(16) : ''), p.reasonCode, true);
        return;
      default:
        // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, AUTH: not for a client (we never asked for AUTH).
        this.protocolError_('unexpected packet type ' + p.type, 0x82);
        return;
    }
    // An ack (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK) that matches nothing we sent.
    this.protocolError_('ack type ' + p.type + ' for id ' + id + ' never issued', 0x82);
  }

  // ------------------------------------------------------------------ the one timer

  /**
   * Arm the one timer: the connect timeout ('connecting'), the reconnect ('waiting'), or while
   * connected the first of: PINGREQ due (nothing sent OR nothing received for the ping interval, so
   * inbound QoS 0 traffic or our own retransmits cannot hide a dead link), PINGRESP overdue
   * (pingTimeoutMs after the PINGREQ), a QoS >= 1 ack overdue by ackProbeMs (early probe), a SUBACK /
   * UNSUBACK deadline.
   */
  private arm_(): void {
    const o = this.options;
    const st = this.state;
    const self = this;
    this.sched_.cancel(this.timer_);
    let due = st === 'connecting' || st === 'waiting' ? this.due_ : Infinity;
    if (st === 'connected') {
      const interval = this.interval();
      if (interval > 0) {
        if (this.pingAt_ >= 0) due = this.pingAt_ + o.pingTimeoutMs;
        else {
          due = Math.min(this.lastTx_, this.lastRx_) + interval;
          if (this.ackWait_ >= 0 && o.ackProbeMs > 0) due = Math.min(due, this.ackWait_ + o.ackProbeMs);
        }
      }
      for (let i = 0; i < this.pending_.length; i++) due = Math.min(due, this.pending_[i].due as number);
    }
    if (due < Infinity) {
      this.timer_ = this.sched_.at(due, function () {
        self.tick_();
      }, 'mqtt');
    }
  }

  private tick_(): void {
    const o = this.options;
    const now = this.sched_.now();
    if (this.state === 'waiting') {
      this.connectNow_();
      return;
    }
    if (this.state === 'connecting') {
      this.error_('timeout', 'no CONNACK in ' + o.connectTimeoutMs + ' ms', undefined, true);
      return;
    }
    for (let i = 0; i < this.pending_.length; i++) {
      const c = this.pending_[i];
      if (now >= (c.due as number)) {
        this.error_('timeout', 'no ' + (c.packet.type === PacketType.SUBSCRIBE ? '' : 'UN') + 'SUBACK in ' + o.ackTimeoutMs + ' ms', undefined, true);
        return;
      }
    }
    const interval = this.interval();
    if (interval > 0) {
      if (this.pingAt_ >= 0) {
        if (now - this.pingAt_ >= o.pingTimeoutMs) {
          this.emit_('dead', Math.round(this.idleAtPing_ / 1000));
          this.error_('timeout', 'no PINGRESP in ' + o.pingTimeoutMs + ' ms', undefined, true);
          return;
        }
      } else if (
        now - Math.min(this.lastTx_, this.lastRx_) >= interval ||
        (this.ackWait_ >= 0 && o.ackProbeMs > 0 && now - this.ackWait_ >= o.ackProbeMs)
      ) {
        // PINGREQ, and the PINGRESP watchdog starts
        this.idleAtPing_ = now - this.lastRx_;
        this.send_({ type: PacketType.PINGREQ });
        this.stats.pings++;
        this.pingAt_ = this.lastPingAt_ = now;
      }
    }
    this.arm_();
  }

  // ------------------------------------------------------------------ sending

  /**
   * Encode and write a packet (counting it; backpressure stops the pump). False, nothing written, when
   * it cannot be encoded or exceeds the broker's maximum packet size.
   */
  private send_(p: Packet): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encode(p, this.version);
    } catch (e) {
      // Our own packets were validated when the app handed them over: a bug, not a crash.
      this.log_.error(TAG, 'cannot encode type ' + p.type + ': ' + (e as ProtocolError).message);
      return false;
    }
    if (bytes.length > this.maxOut_) return false;
    this.lastTx_ = this.sched_.now();
    this.stats.packetsOut++;
    this.stats.bytesOut += bytes.length;
    if (!this.transport_.write(bytes)) this.blocked_ = true;
    return true;
  }

  private publishPacket_(m: OutMessage, dup: boolean): PublishPacket {
    return {
      type: PacketType.PUBLISH,
      topic: m.topic,
      payload: m.payload,
      qos: m.qos,
      retain: m.retain,
      dup: dup,
      packetId: m.packetId,
      properties: (typeof WREN_V5 === 'undefined' || WREN_V5) && this.version === 5 ? m.properties : undefined,
    };
  }

  /** Send queued messages while connected, not blocked, and under the in-flight window. */
  private pump_(): void {
    const s = this.session;
    while (this.state === 'connected' && !this.blocked_) {
      const m = s.nextQueued();
      if (!m) return;
      let id = 0;
      if (m.qos && (s.inflightCount() >= this.inflightMax_ || !(id = this.allocateId_()))) return;
      m.packetId = id;
      const sent = this.send_(this.publishPacket_(m, false));
      s.markSent(m.seq, id);
      if (!sent) {
        // Cannot ever go out on this connection (bigger than the broker accepts): drop with an error.
        if (m.qos) s.complete(id, m.qos === 1 ? 'puback' : 'pubcomp');
        this.finish_(m.seq, { code: 'too-large', message: 'publish to ' + m.topic + ' > broker maximum ' + this.maxOut_ });
      } else if (!m.qos) this.finish_(m.seq);
      else if (this.ackWait_ < 0) {
        this.ackWait_ = this.sched_.now();
        this.arm_();
      }
    }
  }

  /** A packet id free in the session and not used by a SUBSCRIBE / UNSUBSCRIBE awaiting its ack (0: none). */
  private allocateId_(): number {
    for (let tries = 0; tries < 8; tries++) {
      const id = this.session.allocateId();
      let i = 0;
      while (i < this.pending_.length && this.pending_[i].packet.packetId !== id) i++;
      if (i === this.pending_.length) return id;
    }
    return 0;
  }
}
