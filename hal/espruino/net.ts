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
  sock_: EspSocket | undefined;
  opened_: boolean;
  /** The user called close(). */
  closed_: boolean;
  /** onClose delivered or scheduled. */
  ended_: boolean;
  errored_: boolean;
  /** Bytes written since the last 'drain'. */
  pending_: number;
  needDrain_: boolean;
}

export interface EspruinoTransportOptions {
  /** write() returns false once this many bytes wait to be sent (default 4096). */
  highWaterBytes?: number;
}

export class EspruinoNetTransport implements Transport {
  private env_: EspruinoEnv;
  private timers_: TimerHost;
  private h_: TransportHandler | undefined;
  private cur_: Attempt | undefined;
  private hwm_: number;

  constructor(env: EspruinoEnv, timers: TimerHost, options?: EspruinoTransportOptions) {
    this.env_ = env;
    this.timers_ = timers;
    this.h_ = undefined;
    this.cur_ = undefined;
    this.hwm_ = (options && options.highWaterBytes) || 4096;
  }

  setHandler(handler: TransportHandler): void {
    this.h_ = handler;
  }

  open(o: OpenOptions): void {
    if (this.h_ === undefined) throw new Error('transport: no handler');
    if (this.cur_ !== undefined) throw new Error('transport: busy');
    const self = this;
    const a: Attempt = { sock_: undefined, opened_: false, closed_: false, ended_: false, errored_: false, pending_: 0, needDrain_: false };
    this.cur_ = a;
    const onConnect = function () {
      if (self.cur_ !== a || a.closed_ || a.ended_ || a.opened_) return;
      a.opened_ = true;
      (self.h_ as TransportHandler).onOpen();
    };
    let sock: EspSocket;
    try {
      const t = o.tls;
      if (t !== undefined) {
        const opts: any = { host: o.host, port: o.port };
        const atob = this.env_.atob;
        if (t.ca !== undefined) opts.ca = pemToDer(t.ca, atob);
        if (t.cert !== undefined) opts.cert = pemToDer(t.cert, atob);
        if (t.key !== undefined) opts.key = pemToDer(t.key, atob);
        sock = this.env_.require('tls').connect(opts, onConnect);
      } else {
        sock = this.env_.require('net').connect({ host: o.host, port: o.port }, onConnect);
      }
      if (!sock) throw new Error('connect returned nothing');
    } catch (e) {
      const err = mapConnectThrow(e);
      this.timers_.set(0, function () {
        self.finish_(a, err);
      });
      return;
    }
    a.sock_ = sock;
    sock.on('data', function (d: string) {
      // Espruino may emit the first 'data' BEFORE the connect callback (measured on 2v29): data means
      // connected, so onOpen comes first
      onConnect();
      if (self.cur_ === a && a.opened_ && !a.closed_ && !a.ended_) (self.h_ as TransportHandler).onData(self.env_.E.toUint8Array(d));
    });
    sock.on('drain', function () {
      a.pending_ = 0;
      if (a.needDrain_ && self.cur_ === a && a.opened_ && !a.closed_ && !a.ended_) {
        a.needDrain_ = false;
        (self.h_ as TransportHandler).onDrain();
      }
    });
    sock.on('error', function (e: any) {
      if (a.errored_ || a.ended_) return;
      a.errored_ = true;
      if (self.cur_ === a && !a.closed_) {
        (self.h_ as TransportHandler).onError(mapSocketError(e && typeof e.code === 'number' ? e.code : -10, errText(e)));
      }
    });
    // 'end' always precedes 'close' on Espruino; either ends the attempt, once
    const end = function () {
      self.finish_(a, undefined);
    };
    sock.on('end', end);
    sock.on('close', end);
  }

  write(bytes: Uint8Array): boolean {
    const a = this.cur_;
    if (a === undefined || !a.opened_ || a.closed_ || a.ended_ || a.sock_ === undefined) return false;
    if (bytes.length === 0) return true;
    try {
      a.sock_.write(this.env_.E.toString(bytes));
    } catch (e) {
      // "This socket is closed": the close events are on their way
      return false;
    }
    a.pending_ += bytes.length;
    if (a.pending_ > this.hwm_) {
      a.needDrain_ = true;
      return false;
    }
    return true;
  }

  close(): void {
    const a = this.cur_;
    if (a === undefined || a.closed_) return;
    a.closed_ = true;
    if (a.sock_ !== undefined) {
      try {
        a.sock_.end();
      } catch (e) {
        // already closed
      }
    }
    if (!a.ended_) {
      a.ended_ = true;
      const self = this;
      this.timers_.set(0, function () {
        self.deliverClose_(a);
      });
    }
  }

  private finish_(a: Attempt, err: TransportError | undefined): void {
    if (a.ended_) return;
    a.ended_ = true;
    if (err !== undefined && !a.errored_ && !a.closed_) {
      a.errored_ = true;
      if (this.cur_ === a) (this.h_ as TransportHandler).onError(err);
    }
    this.deliverClose_(a);
  }

  private deliverClose_(a: Attempt): void {
    if (this.cur_ !== a) return;
    this.cur_ = undefined;
    (this.h_ as TransportHandler).onClose();
  }
}
