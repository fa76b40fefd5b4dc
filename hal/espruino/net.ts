// Transport over Espruino's `net` and `tls` modules (TCP sockets on ESP32 Wi-Fi, or on the Linux
// interpreter). The contract is hal/types Transport; what Espruino does differently:
// - connect() THROWS synchronously when the connection is refused ("Unable to create socket") or the
//   host does not resolve ("Unable to locate host"): turned into onError + onClose on a later turn.
// - data arrives as binary strings in chunks of up to 536 bytes at arbitrary boundaries ->
//   E.toUint8Array (native). The first 'data' can come BEFORE the connect callback: it counts as
//   the connection being open (onOpen, then onData). write() takes a string: bytes go through E.toString (native; a
//   Uint8Array given to socket.write would be sent as its decimal text).
// - socket.write() always returns false and buffers everything in RAM; 'drain' comes when the buffer
//   is empty. This transport counts the bytes written since the last 'drain' and returns false above
//   `highWaterBytes`, then reports onDrain at the next 'drain'.
// - error events are {code, message} with Espruino's negative socket codes; an error is followed by
//   'end' and 'close'; a peer close is 'end' + 'close' without error. No destroy(): close() = end().
// - tls: options ca/cert/key are DER (binary strings); PEM given here is converted (first block
//   only). Espruino does not check the server name (servername is not supported) and has no way to
//   skip verification: rejectUnauthorized false is ignored.

import type { OpenOptions, TimerHost, Transport, TransportError, TransportErrorCode, TransportHandler } from '../types';
import type { EspruinoEnv, EspSocket } from './env';
import { errText } from './env';

/** Espruino socket error codes (libs/network/socketerrors.h) -> TransportErrorCode. */
export function mapSocketError(code: number, message: string): TransportError {
  let c: TransportErrorCode = 'io';
  if (code === -3) c = 'timeout';
  else if (code === -4) c = 'unreachable';
  else if (code === -6) c = 'dns';
  else if (code === -9 || code === -8) c = 'reset';
  else if (code === -11) c = 'refused';
  else if (code === -13 || code === -14) c = 'tls';
  let m = message + ' (' + code + ')';
  if (code === -14) m = 'TLS certificate verification failed: ' + m;
  else if (code === -13) m = 'TLS handshake failed: ' + m;
  return { code: c, message: m };
}

/** A synchronous throw from connect() -> TransportError. */
export function mapConnectThrow(e: any): TransportError {
  const m = errText(e);
  let c: TransportErrorCode = 'io';
  if (m.indexOf('locate host') >= 0) c = 'dns';
  else if (m.indexOf('create socket') >= 0) c = 'refused';
  else if (/tls|ssl|x509|certificate/i.test(m)) c = 'tls';
  return { code: c, message: 'connect: ' + m };
}

/** PEM -> DER (binary string) for Espruino's tls; anything without a PEM header is passed as is. */
export function pemToDer(pem: string, atob: ((s: string) => string) | undefined): string {
  const a = pem.indexOf('-----BEGIN');
  if (a < 0 || atob === undefined) return pem;
  const b = pem.indexOf('\n', a);
  const z = pem.indexOf('-----END', b);
  if (b < 0 || z < 0) return pem;
  return atob(pem.substring(b + 1, z).replace(/[^A-Za-z0-9+/=]/g, ''));
}

interface Attempt {
  sock: EspSocket | undefined;
  opened: boolean;
  /** The user called close(). */
  closed: boolean;
  /** onClose delivered or scheduled. */
  ended: boolean;
  errored: boolean;
  /** Bytes written since the last 'drain'. */
  pending: number;
  needDrain: boolean;
}

export interface EspruinoTransportOptions {
  /** write() returns false once this many bytes wait to be sent (default 4096). */
  highWaterBytes?: number;
}

export class EspruinoNetTransport implements Transport {
  private env: EspruinoEnv;
  private timers: TimerHost;
  private h: TransportHandler | undefined;
  private cur: Attempt | undefined;
  private hwm: number;

  constructor(env: EspruinoEnv, timers: TimerHost, options?: EspruinoTransportOptions) {
    this.env = env;
    this.timers = timers;
    this.h = undefined;
    this.cur = undefined;
    this.hwm = (options && options.highWaterBytes) || 4096;
  }

  setHandler(handler: TransportHandler): void {
    this.h = handler;
  }

  open(o: OpenOptions): void {
    if (this.h === undefined) throw new Error('transport: no handler');
    if (this.cur !== undefined) throw new Error('transport: previous connection not closed');
    const self = this;
    const a: Attempt = { sock: undefined, opened: false, closed: false, ended: false, errored: false, pending: 0, needDrain: false };
    this.cur = a;
    const onConnect = function () {
      if (self.cur !== a || a.closed || a.ended || a.opened) return;
      a.opened = true;
      (self.h as TransportHandler).onOpen();
    };
    let sock: EspSocket;
    try {
      const t = o.tls;
      if (t !== undefined) {
        const opts: any = { host: o.host, port: o.port };
        const atob = this.env.atob;
        if (t.ca !== undefined) opts.ca = pemToDer(t.ca, atob);
        if (t.cert !== undefined) opts.cert = pemToDer(t.cert, atob);
        if (t.key !== undefined) opts.key = pemToDer(t.key, atob);
        sock = this.env.require('tls').connect(opts, onConnect);
      } else {
        sock = this.env.require('net').connect({ host: o.host, port: o.port }, onConnect);
      }
      if (!sock) throw new Error('connect returned nothing');
    } catch (e) {
      const err = mapConnectThrow(e);
      this.timers.set(0, function () {
        self.finish(a, err);
      });
      return;
    }
    a.sock = sock;
    sock.on('data', function (d: string) {
      // Espruino may emit the first 'data' BEFORE the connect callback (measured on 2v29): data means
      // connected, so onOpen comes first
      onConnect();
      if (self.cur === a && a.opened && !a.closed && !a.ended) (self.h as TransportHandler).onData(self.env.E.toUint8Array(d));
    });
    sock.on('drain', function () {
      a.pending = 0;
      if (a.needDrain && self.cur === a && a.opened && !a.closed && !a.ended) {
        a.needDrain = false;
        (self.h as TransportHandler).onDrain();
      }
    });
    sock.on('error', function (e: any) {
      if (a.errored || a.ended) return;
      a.errored = true;
      if (self.cur === a && !a.closed) {
        (self.h as TransportHandler).onError(mapSocketError(e && typeof e.code === 'number' ? e.code : -10, errText(e)));
      }
    });
    // 'end' always precedes 'close' on Espruino; either ends the attempt, once
    sock.on('end', function () {
      self.finish(a, undefined);
    });
    sock.on('close', function () {
      self.finish(a, undefined);
    });
  }

  write(bytes: Uint8Array): boolean {
    const a = this.cur;
    if (a === undefined || !a.opened || a.closed || a.ended || a.sock === undefined) return false;
    if (bytes.length === 0) return true;
    try {
      a.sock.write(this.env.E.toString(bytes));
    } catch (e) {
      // "This socket is closed": the close events are on their way
      return false;
    }
    a.pending += bytes.length;
    if (a.pending > this.hwm) {
      a.needDrain = true;
      return false;
    }
    return true;
  }

  close(): void {
    const a = this.cur;
    if (a === undefined || a.closed) return;
    a.closed = true;
    if (a.sock !== undefined) {
      try {
        a.sock.end();
      } catch (e) {
        // already closed
      }
    }
    if (!a.ended) {
      a.ended = true;
      const self = this;
      this.timers.set(0, function () {
        self.deliverClose(a);
      });
    }
  }

  private finish(a: Attempt, err: TransportError | undefined): void {
    if (a.ended) return;
    a.ended = true;
    if (err !== undefined && !a.errored && !a.closed) {
      a.errored = true;
      if (this.cur === a) (this.h as TransportHandler).onError(err);
    }
    this.deliverClose(a);
  }

  private deliverClose(a: Attempt): void {
    if (this.cur !== a) return;
    this.cur = undefined;
    (this.h as TransportHandler).onClose();
  }
}
