// A loopback TCP proxy that injects network faults between a client and a broker.
//
// Modes (proxy.setMode(mode, opts), effective at once, for current and new connections):
// - 'pass'      forward bytes both ways.
// - 'blackhole' keep both TCP connections open, forward nothing, silently drop bytes in both
//               directions; a close on one side is NOT passed on (a dead path carries no FIN/RST).
//               New connections are accepted and held (no upstream connection until bytes flow).
// - 'reset'     every current connection is closed with RST on both sides (socket.resetAndDestroy());
//               new connections are accepted and reset at once.
// - 'refuse'    the listening socket is closed: new connects fail with ECONNREFUSED. Current
//               connections are reset too (nothing listens, nothing is connected) unless
//               opts.keepExisting. Leaving 'refuse' listens again on the same port.
// - 'delay'     forward each chunk opts.delayMs after it arrived, order kept in each direction.
//
// Chunks queued by 'delay' are still delivered in order after switching to 'pass'; a chunk due
// while in 'blackhole' is dropped. If the target refuses the upstream connection, the client
// connection is reset (the client sees connect succeed, then ECONNRESET).

import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type FaultMode = 'pass' | 'blackhole' | 'reset' | 'refuse' | 'delay';

export interface FaultModeOptions {
  /** 'delay': milliseconds added to each chunk, each direction. Default 100. */
  delayMs?: number;
  /** 'refuse': keep (and keep forwarding on) connections that are already open. */
  keepExisting?: boolean;
}

export interface FaultProxyStats {
  /** Client connections accepted since start. */
  accepted: number;
  /** Client connections currently open. */
  active: number;
  /** Bytes forwarded client -> target and target -> client. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes dropped (blackhole) in each direction. */
  droppedUp: number;
  droppedDown: number;
  /** Connections closed with RST by the proxy (reset/refuse modes, upstream failures). */
  resets: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  readonly mode: FaultMode;
  setMode(mode: FaultMode, opts?: FaultModeOptions): Promise<void>;
  stats(): FaultProxyStats;
  close(): Promise<void>;
}

const END = Symbol('end');

interface Item {
  due: number;
  data: Buffer | typeof END;
}

interface Conn {
  client: net.Socket;
  upstream?: net.Socket;
  upQ: Item[];
  downQ: Item[];
  upTimer?: NodeJS.Timeout;
  downTimer?: NodeJS.Timeout;
  dead: boolean;
}

export async function startFaultProxy(target: { host?: string; port: number }, opts: { port?: number } = {}): Promise<FaultProxy> {
  const host = '127.0.0.1';
  const targetHost = target.host ?? '127.0.0.1';
  let port = opts.port ?? 0;
  let mode: FaultMode = 'pass';
  let delayMs = 100;
  let server: net.Server | undefined;
  const conns = new Set<Conn>();
  const st: FaultProxyStats = { accepted: 0, active: 0, bytesUp: 0, bytesDown: 0, droppedUp: 0, droppedDown: 0, resets: 0 };

  function kill(c: Conn, rst: boolean): void {
    if (c.dead) return;
    c.dead = true;
    if (c.upTimer) clearTimeout(c.upTimer);
    if (c.downTimer) clearTimeout(c.downTimer);
    c.upQ.length = 0;
    c.downQ.length = 0;
    for (const s of [c.client, c.upstream]) {
      if (!s || s.destroyed) continue;
      if (rst) s.resetAndDestroy();
      else s.destroy();
    }
    if (rst) st.resets++;
    conns.delete(c);
    st.active = conns.size;
  }

  function ensureUpstream(c: Conn): net.Socket {
    if (c.upstream) return c.upstream;
    const up = net.connect({ host: targetHost, port: target.port });
    up.setNoDelay(true);
    c.upstream = up;
    up.on('data', (chunk: Buffer) => enqueue(c, 'down', chunk));
    up.on('end', () => enqueue(c, 'down', END));
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (mode === 'blackhole') return;
      // Target refused / reset: pass a reset on to the client.
      if (!c.dead && (err.code === 'ECONNRESET' || err.code === 'ECONNREFUSED' || err.code === 'EPIPE')) kill(c, true);
    });
    up.on('close', () => {
      if (mode === 'blackhole' || c.dead) return;
      // Closed without END having been forwarded yet: let queued data drain, then close the client.
      enqueue(c, 'down', END);
    });
    return up;
  }

  function enqueue(c: Conn, dir: 'up' | 'down', data: Buffer | typeof END): void {
    if (c.dead) return;
    if (mode === 'blackhole') {
      if (data !== END) {
        if (dir === 'up') st.droppedUp += data.length;
        else st.droppedDown += data.length;
      }
      return;
    }
    const q = dir === 'up' ? c.upQ : c.downQ;
    // An END after END (e.g. 'end' then 'close') is ignored.
    if (data === END && q.length > 0 && q[q.length - 1].data === END) return;
    q.push({ due: Date.now() + (mode === 'delay' ? delayMs : 0), data });
    pump(c, dir);
  }

  function pump(c: Conn, dir: 'up' | 'down'): void {
    const q = dir === 'up' ? c.upQ : c.downQ;
    const timerKey = dir === 'up' ? 'upTimer' : 'downTimer';
    if (c[timerKey]) {
      clearTimeout(c[timerKey]);
      c[timerKey] = undefined;
    }
    while (q.length > 0 && !c.dead) {
      const head = q[0];
      const wait = head.due - Date.now();
      if (wait > 0) {
        c[timerKey] = setTimeout(() => pump(c, dir), wait);
        return;
      }
      q.shift();
      deliver(c, dir, head.data);
    }
  }

  function deliver(c: Conn, dir: 'up' | 'down', data: Buffer | typeof END): void {
    if (mode === 'blackhole') {
      if (data !== END) {
        if (dir === 'up') st.droppedUp += data.length;
        else st.droppedDown += data.length;
      }
      return;
    }
    const dest = dir === 'up' ? ensureUpstream(c) : c.client;
    if (data === END) {
      if (!dest.destroyed) dest.end();
      const other = dir === 'up' ? c.client : c.upstream;
      // Both directions ended: the connection is over.
      if (!other || other.readableEnded || other.destroyed) setImmediate(() => kill(c, false));
      return;
    }
    if (dest.destroyed || dest.writableEnded) return;
    dest.write(data);
    if (dir === 'up') st.bytesUp += data.length;
    else st.bytesDown += data.length;
  }

  function onConnection(client: net.Socket): void {
    st.accepted++;
    client.setNoDelay(true);
    const c: Conn = { client, upQ: [], downQ: [], dead: false };
    client.on('error', () => {
      // ECONNRESET from the client: handled by 'close'.
    });
    if (mode === 'reset' || mode === 'refuse') {
      conns.add(c);
      kill(c, true);
      return;
    }
    conns.add(c);
    st.active = conns.size;
    client.on('data', (chunk: Buffer) => enqueue(c, 'up', chunk));
    client.on('end', () => enqueue(c, 'up', END));
    client.on('close', (hadError: boolean) => {
      if (c.dead) return;
      if (mode === 'blackhole') {
        // Keep the upstream open: the far side never learns (half-open connection).
        client.destroy();
        if (!c.upstream) kill(c, false);
        return;
      }
      if (hadError) kill(c, true);
      else enqueue(c, 'up', END);
    });
    if (mode !== 'blackhole') ensureUpstream(c);
  }

  function listen(): Promise<void> {
    const s = net.createServer(onConnection);
    return new Promise((resolve, reject) => {
      s.once('error', reject);
      s.listen({ host, port, exclusive: true }, () => {
        s.removeListener('error', reject);
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });
  }

  function unlisten(): Promise<void> {
    const s = server;
    server = undefined;
    if (!s) return Promise.resolve();
    // The listening handle closes at once; wait a turn so the port really refuses.
    s.close();
    return new Promise((r) => setImmediate(r));
  }

  await listen();

  const proxy: FaultProxy = {
    host,
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    async setMode(next: FaultMode, o: FaultModeOptions = {}) {
      if (o.delayMs !== undefined) delayMs = o.delayMs;
      else if (next === 'delay') delayMs = 100;
      mode = next;
      if (next === 'reset') {
        for (const c of Array.from(conns)) kill(c, true);
      }
      if (next === 'refuse') {
        await unlisten();
        if (!o.keepExisting) for (const c of Array.from(conns)) kill(c, true);
      } else if (!server) {
        await listen();
      }
    },
    stats: () => ({ ...st, active: conns.size }),
    async close() {
      mode = 'pass';
      const s = server;
      server = undefined;
      for (const c of Array.from(conns)) kill(c, false);
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
  };
  return proxy;
}
