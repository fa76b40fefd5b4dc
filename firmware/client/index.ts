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
// JsVars); MQTT 5-only code sits behind V5 so a 3.1.1 board drops it, 3.1.1-only code behind V4 and
// the version "auto" fallback behind AUTO the same way (in the constructor); fields that are set before their first
// use are not initialised in the constructor.

import { createDecoder, encode, utf8Length, utf8Write } from '../mqtt/index';
import type { ProtocolError } from '../mqtt/index';
import { PacketType } from '../mqtt/types';
import type { ConnectPacket, Decoder, Packet, Properties, PublishPacket, QoS, SubscribePacket, Subscription, UnsubscribePacket, Version, Will } from '../mqtt/types';
import type { Log, Random, Storage, Transport, TlsOptions } from '../../hal/types';
import type { Scheduler, TaskId } from '../scheduler/index';
import { Session, MsgState } from '../session/index';
import type { EnqueueResult, OutMessage, SessionLimits } from '../session/index';
import { topicMatches } from './topic';
import { BrokerRotation } from '../liveness/backoff';
import { nextPingAt, probeDue } from '../liveness/keepalive';

// WREN_AUTO (firmware/flags.d.ts): false when the board fixes the MQTT version, so the 3.1.1
// fallback goes.

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

type EnqueueOk = { seq: number; dropped?: number[] };

/** A held subscription: the Subscription (as sent in SUBSCRIBE) with its message handler attached. */
type SubEntry = Subscription & { handler_?: MessageHandler };

/**
 * A SUBSCRIBE or UNSUBSCRIBE packet with its callback attached: queued for a connection, then pending
 * (sent; due_ = its ack deadline). The encoder ignores the attached fields.
 */
type Control = (SubscribePacket | UnsubscribePacket) & { cb_?: SubscribeCallback; due_?: number };

type AnyFn = (a: any, b: any, c: any) => void;

/** Transport events, posted into the loop with the attempt they belong to. */
const enum Ev {
  OPEN,
  DATA,
  DRAIN,
  ERROR,
  CLOSE,
}

/** The connection state inside the client; `client.state` is its name (STATE_NAMES). */
const enum St {
  CONNECTING,
  CONNECTED,
  WAITING,
  // not started (`state >= St.IDLE`):
  IDLE,
  STOPPED,
}
const STATE_NAMES: ClientState[] = ['connecting', 'connected', 'waiting', 'idle', 'stopped'];

/** The error code of a broker that broke the protocol. */
const PROTOCOL = 'protocol';
const PINGRESP = 'PINGRESP';

/** A 3.1.1 CONNACK return code 1..5 read as its v5 twin (0x84 unsupported protocol version ... 0x88 server unavailable). */
const V4_AS_V5 = [0, 0x84, 0x85, 0x88, 0x86, 0x87];

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
  const subs = client.subs_;
  for (let i = subs.length - 1; i >= 0; i--) if (subs[i].topic === filter) subs.splice(i, 1);
  client.control_({ type: PacketType.UNSUBSCRIBE, packetId: 0, topics: [filter], cb_: cb });
}

/**
 * The client. Its public members are declared below and made in the constructor; everything else
 * lives in the constructor's closure: the code has no `this.` (a third of the bytes of the class it
 * was), for about one JsVar more per function than a method would cost.
 *
 * Members marked "Node only" exist for tools and tests: a device build (WREN_DEVICE, firmware/flags.d.ts)
 * leaves them out, and the firmware never reads them.
 */
export class Client {
  options: ClientOptions;
  /** Node only. */
  session!: Session;
  state!: ClientState;
  /** Protocol version of the current (or last) connection. */
  version: Version;
  /** Node only: connection counters for tools and tests. */
  stats!: {
    connects: number;
    connackOk: number;
    disconnects: number;
    pings: number;
    pingresps: number;
    lastPingRttMs: number;
    /** Packets sent (MQTT level), for the desktop power estimate. */
    packetsOut: number;
  };
  /** Per-broker full-jitter backoff and failover order (firmware/liveness). */
  rotation: BrokerRotation;
  /** Node only (for unsubscribe()): the held subscriptions, restored on reconnect. */
  subs_!: SubEntry[];
  /** Node only (for unsubscribe()): send a SUBSCRIBE / UNSUBSCRIBE now when connected (or `now`), else with the next connection. */
  control_!: (c: Control, now?: boolean) => void;
  /**
   * Listen: 'state' (state, why), 'message' (topic, payload, packet), 'error' (ClientError),
   * 'connack' (packet), 'dead' (idleSec: how long RX had been idle when the unanswered PINGREQ went out),
   * 'publish' (topic, qos, quiet: the application handed over a message),
   * 'pong' (rttMs, idleSec: a PINGREQ sent after idleSec of RX idle was answered).
   */
  on!: (event: 'state' | 'message' | 'error' | 'connack' | 'dead' | 'publish' | 'pong', fn: AnyFn) => void;
  /** Connect and stay connected until stop(). Idempotent. */
  start!: () => void;
  /**
   * Clean DISCONNECT and no reconnect. Pending QoS >= 1 messages stay in the session store.
   * reasonCode (v5 only): 0 = normal disconnection, the will is discarded; 0x04 = "disconnect with
   * will message": the broker publishes the will after its Will Delay Interval unless the device
   * reconnects first (a planned sleep that still reports a device that never comes back).
   */
  stop!: (reasonCode?: number) => void;
  /**
   * Publish. payload: bytes or a string (sent as UTF-8). Returns undefined when accepted (queued or
   * sent), or the error. `done` is called once: QoS 0 when written to the transport, QoS >= 1 when
   * acknowledged (PUBACK / PUBCOMP), or with the error.
   */
  publish!: (topic: string, payload: Uint8Array | string, opts?: PublishOptions, done?: DoneCallback) => ClientError | undefined;
  /**
   * Subscribe to a filter (or several) with a handler for matching messages. The subscription is kept
   * and restored after a reconnect whenever the broker has no session. cb gets the granted QoS (or
   * failure code >= 0x80) per filter; a failure also gives err.
   */
  subscribe!: (filter: string | Subscription[], qos?: QoS, handler?: MessageHandler, cb?: SubscribeCallback) => ClientError | undefined;
  /**
   * Close the connection cleanly (DISCONNECT, the will discarded) and connect again at once, with the
   * options as they are now (e.g. a new keep-alive or will delay). Queued and in-flight messages stay.
   */
  reconnect!: (why: string) => void;
  /** True when nothing is queued, in flight, or awaiting a SUBACK/UNSUBACK. */
  isIdle!: () => boolean;
  /** The radio came back (Wi-Fi or cellular re-attached): if waiting out a backoff, try now instead. */
  linkUp!: () => void;
  /** Node only: subscriptions currently held (restored on reconnect). */
  subscriptions!: () => Subscription[];
  /** The keep-alive in force on this connection (seconds): declared, or the v5 Server Keep Alive. */
  keepAlive!: () => number;
  /** Node only: the ping interval in force (ms): the heartbeat's request, never above the keep-alive in force. */
  interval!: () => number;
  /**
   * The heartbeat policy's ping interval for the current power mode (seconds; 0 = the keep-alive in
   * force). Never above the keep-alive the broker agreed to. Takes effect at once.
   */
  setPingInterval!: (sec: number) => void;

  constructor(options: ClientOptions, hal: ClientHal) {
    // The build's switches (firmware/flags.d.ts) as constants of the constructor: esbuild folds a local
    // const like the switch itself, so a false one drops the code it guards (measured with esbuild
    // 0.28: only when they come first, before any other statement; an imported constant, or a
    // top-level one in a device build, which is an ES module, would not fold). All true outside a
    // device build.
    /** MQTT 5.0 connections are possible (board.mqtt.version "5" or "auto"). */
    const V5 = typeof WREN_V5 === 'undefined' || WREN_V5;
    /** The 3.1.1 fallback is possible (board.mqtt.version "auto"). */
    const AUTO = typeof WREN_AUTO === 'undefined' || WREN_AUTO;
    /** 3.1.1 connections are possible ("4" or "auto"). V5 false: every connection is 3.1.1; V4 false: every one 5.0. */
    const V4 = AUTO || !V5;
    // (a device's options come from a validated board.json)
    if (typeof WREN_DEVICE === 'undefined' && (typeof options.clientId !== 'string' || !options.brokers.length)) throw new Error('need clientId, brokers');
    const self = this;
    const o = (this.options = options);
    const sched = hal.scheduler;
    const transport = hal.transport;
    const log = hal.log;
    const session = new Session(hal.storage, o.sessionName, o.queue, log); // it loads (and logs what it restored) on first use
    const rotation = (this.rotation = new BrokerRotation(o.brokers.length, o.backoff));
    /** The held subscriptions, restored on reconnect. */
    const subs: SubEntry[] = [];
    this.version = o.version === 4 ? 4 : 5;
    let state: St;
    /** this.version, as of the connect (this.version may be set before start(): the device restores a negotiated 3.1.1) */
    let version: Version;
    const listeners: { [event: string]: AnyFn[] } = {};
    /**
     * SUBSCRIBE / UNSUBSCRIBE not yet acknowledged, in order. While connected every one was sent on
     * this connection (due_: its ack deadline); otherwise they wait for the next connection.
     */
    let controls: Control[] = [];
    /** publish() callbacks by message seq. */
    const done: { [seq: number]: DoneCallback } = {};
    /** Generation of the connection: events of an older one are ignored. */
    let gen = 0;
    /** The generation of the transport attempt in progress (its events carry it). */
    let attemptGen = 0;
    /** Keep-alive in force: declared, or the v5 Server Keep Alive. */
    let keepAliveMs = o.keepAliveSec * 1000;
    /** Ping interval asked for by the heartbeat policy (0 = the keep-alive in force). */
    let pingIntervalMs = 0;
    /** Largest packet the broker accepts (v5 CONNACK Maximum Packet Size), for what we send; Infinity: no limit announced. */
    let maxOut = Infinity;
    // Set before their first use:
    let decoder: Decoder;
    let timer: TaskId | undefined;
    /** The deadline while connecting (connect timeout) or waiting (reconnect). */
    let due: number;
    let lastTx: number;
    let lastRx: number;
    /**
     * When the PINGREQ awaiting its PINGRESP went out (-Infinity: none). Any packet received since
     * (lastRx >= pingAt) proves the link for the watchdog; the PINGRESP itself gives the round trip.
     */
    let pingAt: number;
    /** RX idle time (s) when the last PINGREQ was sent (for path-limit learning). */
    let idleAtPing: number;
    /** Since when a QoS >= 1 ack has been awaited without progress (-1: nothing in flight). */
    let ackWait: number;
    let inflightMax: number;
    // Flags, unset = false:
    /** The transport is open (between its onOpen and our close). */
    let open: boolean | undefined;
    /** A write returned false: wait for onDrain. */
    let blocked: boolean | undefined;
    /** The next backoff waits near the cap (a refusal that retrying soon cannot fix). */
    let capped: boolean | undefined;
    /** A transport attempt is open or closing (its onClose not yet seen): open() must wait for it. */
    let linkBusy: boolean | undefined;
    let connectWhenClosed: boolean | undefined;
    /** Node only: this.stats. */
    let stats: Client['stats'];

    // ---------------------------------------------------------------- callbacks, events, errors

    /** Call an application callback (if any): whatever it throws is logged, never propagated. */
    const call = (fn: AnyFn | undefined, a?: unknown, b?: unknown, c?: unknown): void => {
      try {
        if (fn) fn(a, b, c);
      } catch (e) {
        log.error('mqtt', 'callback: ' + e);
      }
    };

    /** call() later, in the loop: transport events, and callbacks not made from inside an API call. */
    const post = (fn: AnyFn | undefined, a: unknown, b?: unknown, c?: unknown): void => {
      sched.post(() => call(fn, a, b, c));
    };

    /** Tell the listeners. */
    const emit = (event: string, a: unknown, b?: unknown, c?: unknown): void => {
      const list = listeners[event] || [];
      for (let i = 0; i < list.length; i++) call(list[i], a, b, c);
    };

    /** A state change (none when the state is unchanged): this.state and the 'state' listeners get its name. */
    const setState = (s: St, why?: string): void => {
      if (state !== s) emit('state', (self.state = STATE_NAMES[(state = s)]), why);
    };

    setState(St.IDLE);

    /** A publish is done (err undefined: acknowledged, or QoS 0 written): its callback, once. */
    const settle = (seq: number, err?: ClientError): void => {
      call(done[seq], err);
      delete done[seq];
    };

    /** An error for the application (a value: never thrown at it). */
    const fault = (code: string, message: string, reasonCode?: number): ClientError => ({ code: code, message: message, reasonCode: reasonCode });

    /**
     * Report an error that ends the connection: reconnect after the backoff. (A 'transport' error,
     * which the close event follows, and a 'rejected' request are only emitted.)
     */
    const error = (code: string, message: string, reasonCode?: number): void => {
      // The broker broke the protocol (not: it ended the connection itself). v5 tells it why.
      if (code === PROTOCOL && open && V5 && (!V4 || version === 5) && state === St.CONNECTED) {
        send({ type: PacketType.DISCONNECT, reasonCode: reasonCode });
      }
      emit('error', fault(code, message, reasonCode));
      lost(message);
    };

    // ---------------------------------------------------------------- sending

    /**
     * Encode and write a packet (backpressure stops the pump). False, nothing written, when it cannot
     * be encoded or exceeds the broker's maximum packet size.
     */
    const send = (p: Packet): boolean => {
      let bytes: Uint8Array;
      try {
        bytes = encode(p, version);
      } catch (e) {
        // Our own packets were validated when the app handed them over: a bug, not a crash.
        log.error('mqtt', 'bad packet ' + p.type + ': ' + (e as Error).message);
        return false;
      }
      if (bytes.length > maxOut) return false;
      lastTx = sched.now();
      if (typeof WREN_DEVICE === 'undefined') stats.packetsOut++;
      if (!transport.write(bytes)) blocked = true;
      return true;
    };

    /**
     * A held message as a PUBLISH (topic, payload, qos, retain, packetId, properties; the encoder
     * ignores seq and state). After a fallback to 3.1.1, without the properties it was given for 5.0.
     */
    const publishPacket = (m: OutMessage, dup: boolean): PublishPacket => {
      const p = Object.assign({ type: PacketType.PUBLISH, dup: dup }, m) as PublishPacket;
      if (AUTO && version === 4) p.properties = undefined;
      return p;
    };

    /** Send queued messages while connected, not blocked, and under the in-flight window. */
    const pump = (): void => {
      while (state === St.CONNECTED && !blocked) {
        const m = session.nextQueued();
        if (!m) return;
        let id = 0;
        if (m.qos && (session.inflightCount() >= inflightMax || !(id = allocateId()))) return;
        m.packetId = id;
        const sent = send(publishPacket(m, false));
        if (sent && m.qos) {
          session.markSent(m.seq, id);
          if (ackWait < 0) {
            ackWait = sched.now();
            arm();
          }
        } else {
          // A QoS 0 message is done once written. One that cannot ever go out on this connection
          // (bigger than the broker accepts) is dropped, done with the error.
          session.remove(m.seq);
          settle(m.seq, sent ? undefined : fault('too-large', m.topic + ' > broker max ' + maxOut));
        }
      }
    };

    /** A packet id free in the session and not used by a SUBSCRIBE / UNSUBSCRIBE awaiting its ack (0: none). */
    const allocateId = (): number => {
      for (let tries = 0; tries < 8; tries++) {
        const id = session.allocateId();
        if (!controls.some((c) => c.packetId === id)) return id;
      }
      return 0;
    };

    /** A SUBSCRIBE / UNSUBSCRIBE: sent now when connected (or `now`), else with the next connection. */
    const control = (c: Control, now?: boolean): void => {
      if (now || state === St.CONNECTED) {
        // (allocateId() fails only when 8 ids in a row are held by SUBSCRIBEs awaiting their ack: the
        // encoder then refuses id 0, and the ack timeout reconnects and sends it again)
        c.packetId = allocateId();
        c.due_ = sched.now() + o.ackTimeoutMs;
        send(c);
      }
      controls.push(c);
      arm();
    };

    // ---------------------------------------------------------------- connection

    const connectNow = (): void => {
      sched.cancel(timer);
      if (linkBusy) {
        // The previous attempt has not reported onClose yet (the Transport contract): go when it does.
        connectWhenClosed = true;
        return;
      }
      const broker = o.brokers[rotation.current];
      version = self.version;
      blocked = false;
      if (typeof WREN_DEVICE === 'undefined') stats.connects++;
      due = sched.now() + o.connectTimeoutMs;
      setState(St.CONNECTING, broker.host + ':' + broker.port);
      arm();
      linkBusy = true;
      attemptGen = ++gen;
      transport.open(broker);
    };

    /** End the connection (its events are ignored from here on). */
    const close = (): void => {
      gen++;
      open = false;
      transport.close(); // idempotent: nothing when the transport already closed
    };

    /** The connection is gone (or given up): close it, and reconnect after the backoff (or delayMs). */
    const lost = (why: string, delayMs?: number): void => {
      close(); // (never once stopped: stop() ends the connection's events and the timer)
      const now = sched.now();
      if (typeof WREN_DEVICE === 'undefined') stats.disconnects++;
      // The backoff resets only after a connection that stayed up stableAfterMs (a connect-then-kicked
      // loop keeps backing off: down() does nothing unless the connection came up); a refusal that
      // retrying cannot fix waits near the cap. (jitter 'none': tools/fleet measures what jitter saves.)
      rotation.down(now);
      if (delayMs === undefined) {
        delayMs = rotation.failed(now, typeof WREN_DEVICE === 'undefined' && o.backoff.jitter === 'none' ? 0.999999 : hal.random.next(), !!capped).delayMs;
      }
      capped = false;
      due = now + delayMs;
      setState(St.WAITING, why + '; reconnect in ' + delayMs + ' ms');
      arm();
    };

    /** A transport event of attempt `g`, in the loop. */
    const event = (kind: Ev, g: number, arg: any): void => {
      if (kind === Ev.CLOSE) {
        linkBusy = false;
        if (g === gen) lost('link closed');
        else if (connectWhenClosed) {
          connectWhenClosed = false;
          connectNow();
        }
      } else if (g !== gen) {
        // an event of an attempt given up
      } else if (kind === Ev.OPEN) {
        open = true;
        maxOut = Infinity;
        decoder = createDecoder(version, o.maxPacketSize);
        // The options name clientId, keepAliveSec, clean, username and will as the CONNECT does (the
        // encoder reads only its own fields).
        const c = Object.assign({}, o, {
          type: PacketType.CONNECT,
          password: o.password !== undefined ? utf8Bytes(o.password) : undefined,
          // Session Expiry 0: the session ends with the connection (clean)
          properties: V5 && (!V4 || version === 5) ? { sessionExpiryInterval: o.clean ? 0 : o.sessionExpirySec, maximumPacketSize: o.maxPacketSize } : undefined,
        }) as ConnectPacket;
        // 3.1.1 has no will properties (a will made for 5.0 goes without them after a fallback)
        if (AUTO && version === 4 && c.will) c.will = Object.assign({}, c.will, { properties: undefined });
        send(c);
      } else if (kind === Ev.DATA) {
        lastRx = sched.now();
        let packets: Packet[];
        try {
          // A 3.1.1 broker answers a v5 CONNECT with a 3.1.1 CONNACK (Aedes: return code 1), read as
          // "unsupported protocol version" (with a decoder of its own).
          packets =
            AUTO && version === 5 && state === St.CONNECTING && !decoder.buffered && arg[0] === 0x20 && arg[1] === 2
              ? createDecoder(4, 4).push((arg as Uint8Array).subarray(0, 4))
              : decoder.push(arg);
        } catch (e) {
          error(PROTOCOL, (e as ProtocolError).message, (e as ProtocolError).reasonCode);
          return;
        }
        for (let i = 0; i < packets.length && open; i++) handle(packets[i]);
      } else if (kind === Ev.DRAIN) {
        blocked = false;
        pump();
      } else {
        emit('error', fault('transport', arg.code + ': ' + arg.message));
      }
    };

    /** One packet from the broker. */
    const handle = (p: Packet): void => {
      const now = sched.now();
      const id = (p as { packetId?: number }).packetId as number;
      // Open and connecting: the CONNACK must come first, and only once.
      if ((state === St.CONNECTING) === (p.type === PacketType.CONNACK)) {
        switch (p.type) {
          case PacketType.CONNACK: {
            const rc = p.reasonCode;
            if (rc) {
              // (no v5 refusal is below 0x80)
              const code = V4 && rc < 6 ? V4_AS_V5[rc] : rc;
              if (AUTO && o.version === 'auto' && version === 5 && code === 0x84) {
                // Stays on 3.1.1 for this broker from now on (brokers do not change versions at runtime).
                self.version = version = 4;
                lost('3.1.1 fallback', 0);
                return;
              }
              // bad client id, user name or password, not authorized, bad authentication method
              capped = (code > 0x84 && code < 0x88) || code === 0x8c;
              // (the code says which: 3.1.1 4 or 5.0 0x86 bad user name or password, 5 or 0x87 not authorized, ...)
              error('refused', 'CONNACK 0x' + rc.toString(16), rc);
              return;
            }
            if (typeof WREN_DEVICE === 'undefined') stats.connackOk++;
            rotation.up(now);
            const props = p.properties || {};
            keepAliveMs = ('serverKeepAlive' in props ? (props.serverKeepAlive as number) : o.keepAliveSec) * 1000;
            inflightMax = Math.min(o.maxInflight, props.receiveMaximum || 65535);
            maxOut = props.maximumPacketSize || Infinity;
            // Spread the ping phase: pretend the link has been idle for a random part of the interval.
            lastTx = lastRx = now - Math.floor(interval() * o.pingJitter * hal.random.next());
            pingAt = -Infinity;
            ackWait = -1;
            emit('connack', p);
            const present = p.sessionPresent && !o.clean;
            const q = controls;
            controls = [];
            if (present) {
              // Resend what the broker has not acknowledged, with the original ids [MQTT-4.4.0-1], before
              // the application hears 'connected' (anything it publishes then comes after, with new ids).
              const inflight = session.inflight();
              for (let i = 0; i < inflight.length; i++) {
                const m = inflight[i];
                send(m.state === MsgState.RELEASED ? { type: PacketType.PUBREL, packetId: m.packetId } : publishPacket(m, true));
                ackWait = now;
              }
            } else {
              // No session at the broker: every held subscription is sent again, first, except those
              // waiting to go (they hold the very Subscription objects held), so none goes twice.
              session.resetForNewSession();
              const rest = subs.filter((s) => !q.some((c) => ((c as SubscribePacket).subscriptions || []).indexOf(s) >= 0));
              if (rest.length) q.unshift({ type: PacketType.SUBSCRIBE, packetId: 0, subscriptions: rest });
            }
            for (let i = 0; i < q.length; i++) control(q[i], true);
            setState(St.CONNECTED, present ? 'session resumed' : 'new session');
            arm();
            pump();
            return;
          }
          case PacketType.PUBLISH:
            if (V5 && (p.properties || {}).topicAlias) {
              // We announce Topic Alias Maximum 0: the broker must not use aliases [MQTT-3.2.2-17]. (The
              // decoder refuses alias 0.)
              error(PROTOCOL, 'topic alias', 0x94);
              return;
            }
            // QoS 2 is delivered the first time its id is seen only (held until PUBREL).
            if (p.qos < 2 || session.inboundQos2(id)) {
              for (let i = 0; i < subs.length; i++) if (topicMatches(subs[i].topic, p.topic)) call(subs[i].handler_, p.topic, p.payload, p);
              emit('message', p.topic, p.payload, p);
            }
            if (p.qos) send({ type: p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, packetId: id });
            return;
          case PacketType.PUBACK:
          case PacketType.PUBREC:
          case PacketType.PUBCOMP: {
            const rc = p.reasonCode || 0;
            const m = p.type === PacketType.PUBREC ? session.received(id) : session.complete(id, p.type === PacketType.PUBACK ? 'puback' : 'pubcomp');
            if (!m) break; // an id we never sent
            // An ack arrived: the wait for the next one starts now (or ends when nothing is in flight).
            ackWait = session.inflightCount() ? now : -1;
            if (p.type === PacketType.PUBREC) {
              if (rc < 0x80) {
                send({ type: PacketType.PUBREL, packetId: id });
                return;
              }
              session.complete(id, 'pubcomp'); // v5: the broker refused the message; the QoS 2 flow ends here
            }
            settle(m.seq, rc < 0x80 ? undefined : fault('rejected', 'refused: ' + m.topic, rc));
            pump();
            return;
          }
          case PacketType.PUBREL:
            send({
              type: PacketType.PUBCOMP,
              packetId: id,
              // v5: 0x92 "packet identifier not found" for an id not held
              reasonCode: session.inboundRelease(id) || !V5 || (V4 && version === 4) ? 0 : 0x92,
            });
            return;
          case PacketType.SUBACK:
          case PacketType.UNSUBACK: {
            const i = controls.findIndex((c) => c.packetId === id);
            const c = controls[i];
            const codes = p.reasonCodes || [];
            const list = c && (c as SubscribePacket).subscriptions;
            // SUBACK answers a SUBSCRIBE we sent with one code per filter, UNSUBACK an UNSUBSCRIBE
            if (!c || c.type !== p.type - 1 || (list && codes.length !== list.length)) break;
            controls.splice(i, 1);
            // SUBACK failures (>= 0x80): each filter named in the message, the last code in the error
            let failed = '';
            let rc = 0;
            for (let k = 0; list && k < codes.length; k++) {
              if (codes[k] >= 0x80) failed += ' ' + list[k].topic + ' (0x' + (rc = codes[k]).toString(16) + ')';
            }
            const err = rc ? fault('rejected', 'refused:' + failed, rc) : undefined;
            if (err) emit('error', err);
            call(c.cb_, err, codes);
            return;
          }
          case PacketType.PINGRESP:
            if (pingAt >= 0) {
              if (typeof WREN_DEVICE === 'undefined') {
                stats.pingresps++;
                stats.lastPingRttMs = now - pingAt;
              }
              emit('pong', now - pingAt, idleAtPing);
              pingAt = -Infinity;
            }
            return;
          case PacketType.DISCONNECT:
            open = false; // the broker ended the connection: nothing more goes out on it
            error(PROTOCOL, 'broker DISCONNECT', p.reasonCode); // (v5: why in the reasonCode)
            return;
        }
      }
      // Anything else: a CONNACK out of turn, a packet not for a client (CONNECT, SUBSCRIBE, PINGREQ,
      // AUTH: we never asked for it), an ack for an id we never sent.
      error(PROTOCOL, 'unexpected type ' + p.type + (id ? ' id ' + id : ''), 0x82);
    };

    // ---------------------------------------------------------------- the one timer

    /**
     * The one timer. Its next deadline: the connect timeout (connecting), the reconnect (waiting), or
     * while connected the first of: a SUBACK / UNSUBACK deadline, PINGRESP overdue (pingTimeoutMs after
     * the PINGREQ), PINGREQ due (nothing sent OR nothing received for the ping interval, so inbound QoS 0
     * traffic or our own retransmits cannot hide a dead link; or a QoS >= 1 ack overdue by ackProbeMs:
     * the early probe). arm() sets the timer for it; the timer, arm(true), acts on it when it has come
     * (else sets the timer again: a packet or an ack moved it).
     */
    const arm = (fire?: boolean): void => {
      const now = sched.now();
      let at = state === St.CONNECTING || state === St.WAITING ? due : Infinity;
      // What has not come by `at` ('' when a PINGREQ is due, or the reconnect).
      let late = state === St.CONNECTING ? 'CONNACK' : '';
      if (state === St.CONNECTED) {
        for (let i = 0; i < controls.length; i++) {
          const c = controls[i];
          if ((c.due_ as number) < at) {
            at = c.due_ as number;
            // (only tools and tests unsubscribe)
            late = (typeof WREN_DEVICE === 'undefined' && c.type !== PacketType.SUBSCRIBE ? 'UN' : '') + 'SUBACK';
          }
        }
        const ms = interval();
        if (ms <= 0) {
          // no keep-alive
        } else if (lastRx < pingAt) {
          // PINGRESP (or any packet) awaited
          if (pingAt + o.pingTimeoutMs < at) {
            at = pingAt + o.pingTimeoutMs;
            late = PINGRESP;
          }
        } else {
          // the keep-alive rules of firmware/liveness/keepalive.ts: the regular ping, or an early probe
          const probe = probeDue(ackWait >= 0 ? ackWait : undefined, o.ackProbeMs, false);
          let ping = nextPingAt(lastTx, lastRx, ms);
          if (probe !== undefined && probe < ping) ping = probe;
          if (ping < at) {
            at = ping;
            late = '';
          }
        }
      }
      if (fire && at <= now) {
        if (late) {
          if (late === PINGRESP) emit('dead', idleAtPing);
          error('timeout', 'no ' + late); // (in the time the options give)
        } else if (state === St.WAITING) connectNow();
        else {
          // PINGREQ, and the PINGRESP watchdog starts
          idleAtPing = Math.round((now - lastRx) / 1000);
          send({ type: PacketType.PINGREQ });
          if (typeof WREN_DEVICE === 'undefined') stats.pings++;
          pingAt = now;
          arm();
        }
        return;
      }
      sched.cancel(timer);
      if (at < Infinity) timer = sched.at(at, () => arm(true));
    };

    const interval = (): number => (pingIntervalMs > 0 && (keepAliveMs <= 0 || pingIntervalMs < keepAliveMs) ? pingIntervalMs : keepAliveMs);

    // ---------------------------------------------------------------- the API

    if (typeof WREN_DEVICE === 'undefined') {
      self.session = session;
      self.stats = stats = { connects: 0, connackOk: 0, disconnects: 0, pings: 0, pingresps: 0, lastPingRttMs: -1, packetsOut: 0 };
      self.subs_ = subs;
      self.control_ = control;
      self.subscriptions = () => subs.slice();
      self.interval = interval;
    }

    self.on = (event, fn) => {
      (listeners[event] || (listeners[event] = [])).push(fn);
    };

    self.start = () => {
      if (state >= St.IDLE) connectNow();
    };

    self.stop = (reasonCode) => {
      if (state < St.IDLE) {
        sched.cancel(timer);
        connectWhenClosed = false;
        if (state === St.CONNECTED) {
          send({ type: PacketType.DISCONNECT, reasonCode: V5 && (!V4 || version === 5) ? reasonCode : 0 });
          // SUBSCRIBE / UNSUBSCRIBE awaiting their ack fail (those waiting for a connection stay)
          const q = controls;
          controls = [];
          for (let i = 0; i < q.length; i++) call(q[i].cb_, fault('stopped', 'stop()'), []);
        }
        close();
      }
      setState(St.STOPPED, 'stop()');
    };

    self.publish = (topic, payload, opts, cb) => {
      const op = opts || {};
      const qos = op.qos || 0;
      const retain = !!op.retain;
      let r: EnqueueResult | ClientError;
      try {
        const bytes = typeof payload === 'string' ? utf8Bytes(payload) : payload;
        // Validate by encoding once: topic, QoS, properties and size, exactly as the wire will see it.
        const size = encode(
          { type: PacketType.PUBLISH, topic: topic, payload: bytes, qos: qos, retain: retain, packetId: 1, properties: op.properties } as PublishPacket,
          self.version,
        ).length;
        r = size > maxOut ? fault('too-large', topic + ' > broker max ' + maxOut) : session.enqueue(topic, bytes, qos, retain, op.properties);
      } catch (e) {
        r = fault('invalid', (e as ProtocolError).message);
      }
      if ((r as EnqueueResult).ok) {
        // queued: it goes as soon as it can
        if (cb) done[(r as EnqueueOk).seq] = cb;
        emit('publish', topic, qos, op.quiet);
        const dropped = (r as EnqueueOk).dropped || [];
        for (let i = 0; i < dropped.length; i++) settle(dropped[i], fault('queue-full', 'queue full'));
        pump();
        return undefined;
      }
      post(cb, r);
      return r as ClientError;
    };

    self.subscribe = (filter, qos, handler, cb) => {
      const list: Subscription[] = typeof filter === 'string' ? [{ topic: filter, qos: qos || 0 }] : filter;
      const packet: Control = { type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: list, cb_: cb };
      try {
        encode(packet, self.version); // checks every filter too
      } catch (e) {
        const err = fault('invalid', (e as ProtocolError).message);
        post(cb, err, []);
        return err;
      }
      for (let i = 0; i < list.length; i++) {
        let j = 0;
        while (j < subs.length && subs[j].topic !== list[i].topic) j++;
        // a new subscription to a filter replaces the old one (and keeps its handler unless given one)
        (list[i] as SubEntry).handler_ = handler || (subs[j] && subs[j].handler_);
        subs[j] = list[i];
      }
      // Sent now, or with the next connection (also when the broker resumes a session: it may not know
      // this filter yet).
      control(packet);
      return undefined;
    };

    self.reconnect = (why) => {
      if (state >= St.IDLE) return;
      if (state === St.CONNECTED) send({ type: PacketType.DISCONNECT });
      close();
      setState(St.WAITING, why); // ('connecting' follows at once)
      connectNow();
    };

    self.isIdle = () => !session.stats().messages && !controls.length;

    self.linkUp = () => {
      if (state === St.WAITING) connectNow();
    };

    self.keepAlive = () => keepAliveMs / 1000;

    self.setPingInterval = (sec) => {
      pingIntervalMs = sec > 0 ? sec * 1000 : 0;
      arm();
    };

    // Each transport event goes into the loop with the attempt it belongs to. (Five plain functions:
    // on Espruino, made by a factory they would cost twice the memory, a scope each.)
    transport.setHandler({
      onOpen: () => post(event as AnyFn, Ev.OPEN, attemptGen),
      onData: (bytes) => post(event as AnyFn, Ev.DATA, attemptGen, bytes),
      onDrain: () => post(event as AnyFn, Ev.DRAIN, attemptGen),
      onError: (err) => post(event as AnyFn, Ev.ERROR, attemptGen, err),
      onClose: () => post(event as AnyFn, Ev.CLOSE, attemptGen),
    });
  }
}
