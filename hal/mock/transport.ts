// A scripted network for tests: MockNetwork holds listeners (host:port), MockTransport is the client
// side (implements the Transport contract), MockPeer is the server side of one connection, driven by the
// test: read what the client wrote, inject bytes, close, reset, black-hole. Every event is delivered
// through the TimerHost (normally the VirtualClock), so nothing happens inside open()/write()/close()
// and timings are exact in virtual time.
//
// Fault injection (ListenOptions, mutable at any time through listener.options, plus MockPeer methods):
//   refuse            open() ends with onError({code:'refused'}) + onClose
//   blackholeConnect  open() never completes: no event at all until the client calls close()
//   tlsError          a TLS open() ends with onError({code:'tls', message}) + onClose
//   delayMs           each direction (and the connect) is delivered N ms later
//   peerChunk         the peer receives each client write split into chunks of at most N bytes
//   clientChunk       the client receives injected bytes in chunks of at most N bytes (1 = byte at a time)
//   highWaterMark     write() returns false while more than N bytes are in flight; onDrain follows
//   peer.reset()      the client gets onError({code:'reset'}) + onClose
//   peer.end()        graceful close from the server: pending data, then onClose
//   peer.blackhole()  writes are swallowed, nothing comes back, the connection stays open

import type {
  OpenOptions,
  TimerHost,
  Transport,
  TransportError,
  TransportErrorCode,
  TransportHandler,
} from '../types';

export interface ListenOptions {
  refuse?: boolean;
  blackholeConnect?: boolean;
  tlsError?: string;
  delayMs?: number;
  /** Time from open() to onOpen (default: delayMs, or 0). */
  connectDelayMs?: number;
  peerChunk?: number;
  clientChunk?: number;
  highWaterMark?: number;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function split(bytes: Uint8Array, chunk: number | undefined): Uint8Array[] {
  if (chunk === undefined || !(chunk >= 1) || bytes.length <= chunk) return [bytes];
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(bytes.subarray(i, Math.min(i + chunk, bytes.length)));
  return out;
}

export class MockListener {
  readonly peers: MockPeer[] = [];
  /** Connection attempts that reached this listener (refused ones included). */
  attempts = 0;
  constructor(
    readonly host: string,
    readonly port: number,
    public options: ListenOptions,
    readonly onAccept: ((peer: MockPeer) => void) | undefined,
  ) {}
  /** The most recent peer. */
  get last(): MockPeer | undefined {
    return this.peers[this.peers.length - 1];
  }
}

export class MockNetwork {
  private listeners: MockListener[] = [];
  /** Every open() on any transport of this network, in order. */
  readonly opens: OpenOptions[] = [];

  constructor(readonly timers: TimerHost) {}

  /**
   * Accept connections to host:port. `onAccept` runs when a connection is established, before the
   * client's onOpen is delivered (so the test can hook peer.onData first). Replaces an earlier
   * listener on the same address.
   */
  listen(host: string, port: number, options?: ListenOptions, onAccept?: (peer: MockPeer) => void): MockListener {
    this.unlisten(host, port);
    const l = new MockListener(host, port, options ?? {}, onAccept);
    this.listeners.push(l);
    return l;
  }

  /** Stop listening: later connections to host:port are refused. Open connections are not touched. */
  unlisten(host: string, port: number): void {
    this.listeners = this.listeners.filter((l) => !(l.host === host && l.port === port));
  }

  find(host: string, port: number): MockListener | undefined {
    return this.listeners.find((l) => l.host === host && l.port === port);
  }

  /** A new client transport on this network. */
  transport(): MockTransport {
    return new MockTransport(this);
  }
}

type ConnState = 'opening' | 'open' | 'ending';

/** One connection attempt (internal). */
class Conn {
  state: ConnState = 'opening';
  /** The user called close(). */
  userClosed = false;
  /** onClose has been scheduled (exactly one per attempt). */
  ending = false;
  peer: MockPeer | undefined;
  /** Bytes written by the client and not yet delivered to the peer (or black-holed forever). */
  inFlight = 0;
  needDrain = false;
  /** Delivery times, kept monotonic per direction so data never reorders. */
  toPeerAt = 0;
  toClientAt = 0;
  constructor(
    readonly transport: MockTransport,
    readonly listener: MockListener | undefined,
    readonly options: OpenOptions,
  ) {}
}

export class MockTransport implements Transport {
  private handler: TransportHandler | undefined;
  private conn: Conn | undefined;
  /** open() calls on this transport. */
  readonly opens: OpenOptions[] = [];
  /** Every chunk passed to write() (copies), across connections. */
  readonly writes: Uint8Array[] = [];

  constructor(readonly network: MockNetwork) {}

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  /** 'idle' | 'opening' | 'open' | 'ending' (for assertions). */
  get state(): string {
    return this.conn === undefined ? 'idle' : this.conn.state;
  }

  /** The server side of the current connection, if established. */
  get peer(): MockPeer | undefined {
    return this.conn?.peer;
  }

  open(options: OpenOptions): void {
    if (this.handler === undefined) throw new Error('MockTransport.open: no handler set');
    if (this.conn !== undefined) throw new Error('MockTransport.open: previous connection has not closed yet');
    this.opens.push(options);
    this.network.opens.push(options);
    const listener = this.network.find(options.host, options.port);
    const conn = new Conn(this, listener, options);
    this.conn = conn;
    if (listener === undefined) {
      this.end(conn, { code: 'refused', message: 'connect ECONNREFUSED ' + options.host + ':' + options.port }, 0);
      return;
    }
    listener.attempts++;
    const o = listener.options;
    const delay = o.connectDelayMs ?? o.delayMs ?? 0;
    if (o.refuse) {
      this.end(conn, { code: 'refused', message: 'connect ECONNREFUSED ' + options.host + ':' + options.port }, delay);
      return;
    }
    if (o.blackholeConnect) return;
    if (o.tlsError !== undefined && options.tls !== undefined) {
      this.end(conn, { code: 'tls', message: o.tlsError }, delay);
      return;
    }
    this.network.timers.set(delay, () => {
      if (this.conn !== conn || conn.userClosed || conn.ending) return;
      const peer = new MockPeer(conn);
      conn.peer = peer;
      conn.state = 'open';
      listener.peers.push(peer);
      if (listener.onAccept) listener.onAccept(peer);
      if (conn.state === 'open' && !conn.userClosed) (this.handler as TransportHandler).onOpen();
    });
  }

  write(bytes: Uint8Array): boolean {
    const conn = this.conn;
    if (conn === undefined || conn.state !== 'open' || conn.userClosed) return false;
    const copy = new Uint8Array(bytes);
    this.writes.push(copy);
    const peer = conn.peer as MockPeer;
    const hwm = conn.listener?.options.highWaterMark ?? Infinity;
    conn.inFlight += copy.length;
    if (peer.state === 'open' && !peer.blackholed) {
      const o = (conn.listener as MockListener).options;
      const at = this.deliveryDelay(conn, 'toPeer');
      for (const chunk of split(copy, o.peerChunk)) {
        this.network.timers.set(at, () => {
          conn.inFlight -= chunk.length;
          if ((peer.state === 'open' || peer.state === 'closing') && !peer.blackholed) peer.deliver(chunk);
          if (conn.needDrain && conn.inFlight <= hwm) {
            conn.needDrain = false;
            if (this.conn === conn && !conn.userClosed && conn.state === 'open') (this.handler as TransportHandler).onDrain();
          }
        });
      }
    }
    // a dead or black-holed peer: the bytes stay "in flight" forever (a full send buffer)
    if (conn.inFlight > hwm) {
      conn.needDrain = true;
      return false;
    }
    return true;
  }

  close(): void {
    const conn = this.conn;
    if (conn === undefined || conn.userClosed) return;
    conn.userClosed = true;
    const peer = conn.peer;
    if (peer !== undefined && peer.state === 'open') {
      // the peer sees the close after the data already sent (flushed best-effort)
      const at = this.deliveryDelay(conn, 'toPeer');
      peer.state = 'closing';
      this.network.timers.set(at, () => peer.closedByClient());
    }
    if (!conn.ending) this.end(conn, undefined, 0);
  }

  /** Delay (from now) for the next delivery in one direction, monotonic per direction. */
  deliveryDelay(conn: Conn, dir: 'toPeer' | 'toClient'): number {
    const now = this.nowish();
    const d = conn.listener?.options.delayMs ?? 0;
    let at = now + d;
    if (dir === 'toPeer') {
      if (at < conn.toPeerAt) at = conn.toPeerAt;
      conn.toPeerAt = at;
    } else {
      if (at < conn.toClientAt) at = conn.toClientAt;
      conn.toClientAt = at;
    }
    return at - now;
  }

  /** Time reference for ordering deliveries (virtual clock if it has one, else a counter). */
  private nowish(): number {
    const t = this.network.timers as unknown as { now?: () => number; time?: number };
    if (typeof t.time === 'number') return t.time;
    return typeof t.now === 'function' ? t.now() : 0;
  }

  /** Schedule the end of an attempt: optional onError, then the one onClose. */
  end(conn: Conn, err: TransportError | undefined, delayMs: number): void {
    if (conn.ending) return;
    conn.ending = true;
    this.network.timers.set(delayMs, () => {
      const h = this.handler as TransportHandler;
      conn.state = 'ending';
      if (err !== undefined && !conn.userClosed) h.onError(err);
      if (this.conn === conn) this.conn = undefined;
      h.onClose();
    });
  }

  /** From the peer: bytes for the client. */
  toClient(conn: Conn, bytes: Uint8Array): void {
    const o = (conn.listener as MockListener).options;
    const at = this.deliveryDelay(conn, 'toClient');
    for (const chunk of split(new Uint8Array(bytes), o.clientChunk)) {
      this.network.timers.set(at, () => {
        if (this.conn === conn && conn.state === 'open' && !conn.userClosed) {
          (this.handler as TransportHandler).onData(new Uint8Array(chunk));
        }
      });
    }
  }

  /** From the peer: the connection ends (graceful with err undefined, else reset). */
  peerEnded(conn: Conn, code: TransportErrorCode | undefined): void {
    if (conn.ending) return;
    const at = this.deliveryDelay(conn, 'toClient');
    this.end(
      conn,
      code === undefined ? undefined : { code, message: 'read ECONNRESET (mock peer reset)' },
      at,
    );
  }
}

/** The server side of one mock connection, driven by the test. */
export class MockPeer {
  /** 'open' | 'closing' (client close in flight) | 'closed'. */
  state: 'open' | 'closing' | 'closed' = 'open';
  blackholed = false;
  /** Each chunk as delivered to the peer (after peerChunk splitting). */
  readonly chunks: Uint8Array[] = [];
  private all: Uint8Array = new Uint8Array(0);
  private taken = 0;
  /** Called for each chunk delivered to the peer. */
  onData: ((bytes: Uint8Array) => void) | undefined;
  /** Called when the client's close() reaches the peer. */
  onClose: (() => void) | undefined;
  /** True once the client closed (its close reached the peer). */
  closedByClientFlag = false;

  constructor(private readonly conn: Conn) {}

  get host(): string {
    return this.conn.options.host;
  }
  get port(): number {
    return this.conn.options.port;
  }
  /** The client's open options (tls settings included). */
  get openOptions(): OpenOptions {
    return this.conn.options;
  }

  /** Everything the peer has received, concatenated. */
  get received(): Uint8Array {
    return this.all;
  }

  /** Bytes received since the previous take(). */
  take(): Uint8Array {
    const out = this.all.subarray(this.taken);
    this.taken = this.all.length;
    return new Uint8Array(out);
  }

  /** Send bytes to the client (delayed by delayMs, split by clientChunk). Ignored once not open. */
  send(bytes: Uint8Array | number[]): void {
    if (this.state !== 'open' || this.blackholed) return;
    this.conn.transport.toClient(this.conn, bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  }

  /** Graceful close from the server: the client gets its pending data, then onClose (no error). */
  end(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.conn.transport.peerEnded(this.conn, undefined);
  }

  /** Reset: the client gets onError({code:'reset'}) then onClose. */
  reset(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.conn.transport.peerEnded(this.conn, 'reset');
  }

  /**
   * Black-hole the connection (on = true) or restore it: while black-holed, client writes are
   * swallowed (they stay "in flight", so write() eventually reports backpressure when a highWaterMark
   * is set), nothing reaches the client, and the connection stays open on both sides.
   */
  blackhole(on?: boolean): void {
    this.blackholed = on !== false;
  }

  /** Internal: a chunk arrives. */
  deliver(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.all = concat(this.all, chunk);
    if (this.onData) this.onData(chunk);
  }

  /** Internal: the client's close arrives. */
  closedByClient(): void {
    this.state = 'closed';
    this.closedByClientFlag = true;
    if (this.onClose) this.onClose();
  }
}
