// Transport over Espruino's `net` and `tls` modules (TCP sockets on ESP32 Wi-Fi, or on the Linux
// interpreter). The contract is hal/types Transport; what Espruino does differently
// (libs/network/socketserver.c, 2v29):
// - connect() THROWS synchronously when the connection is refused ("Unable to create socket") or the
//   host does not resolve ("Unable to locate host"): turned into onError + onClose on a later turn.
// - data arrives as binary strings in chunks of up to 536 bytes at arbitrary boundaries ->
//   E.toUint8Array (native). The first 'data' can come BEFORE the connect callback: it counts as
//   the connection being open (onOpen, then onData). write() takes a string: bytes go through
//   E.toString (native; a Uint8Array given to socket.write would be sent as its decimal text).
// - socket.write() always returns false and buffers everything in RAM; 'drain' comes when the buffer
//   is empty (and once right after connecting). This transport counts the bytes written since the
//   last 'drain' and returns false above 4096, then reports onDrain at the next 'drain'.
// - error events are {code, message} with Espruino's negative socket codes; an error is followed by
//   'end' and 'close'; a peer close is 'end' + 'close' without error. No destroy(): close() = end().
// - tls (only in a bundle whose board has TLS: WREN_TLS): options ca/cert/key are DER (binary
//   strings); PEM given here is converted (first block only). Espruino does not check the server name
//   (servername is not supported) and has no way to skip verification: rejectUnauthorized false is
//   ignored.

import type { OpenOptions, TimerHost, Transport, TransportErrorCode, TransportHandler } from '../types';
import type { EspruinoEnv, EspSocket } from './env';

/** One connection attempt (fields absent until set). */
interface Attempt {
  sock_?: EspSocket;
  /** 0 connecting, 1 open, 2 closed by the user, 3 ended (onClose delivered). */
  st_: number;
  /** Bytes written since the last 'drain'. */
  pending_: number;
  /** A write() returned false: onDrain at the next 'drain'. */
  drain_?: boolean;
  /** Ends the attempt (see open()). */
  end_?: (e?: any) => void;
}

const enum Net {
  /** write() returns false once this many bytes wait to be sent. */
  HIGH_WATER = 4096,
}

export class EspruinoNetTransport implements Transport {
  private env_: EspruinoEnv;
  private timers_: TimerHost;
  private h_?: TransportHandler;
  private cur_?: Attempt;

  constructor(env: EspruinoEnv, timers: TimerHost) {
    this.env_ = env;
    this.timers_ = timers;
  }

  setHandler(handler: TransportHandler): void {
    this.h_ = handler;
  }

  open(o: OpenOptions): void {
    const h = this.h_;
    if (!h || this.cur_) throw new Error('transport busy');
    const env = this.env_;
    const a: Attempt = { st_: 0, pending_: 0 };
    this.cur_ = a;
    // The socket's 'error' {code, message} (then 'end' and 'close') and 'close' (hadError; always
    // after 'end', which is not needed), close() and a connect() that threw (both on a later turn):
    // the first one ends the attempt, with onError for an error unless the user closed, then onClose.
    const end = (x?: any) => {
      if (a.st_ > 2) return;
      if (a.st_ < 2 && typeof x === 'object') {
        // Espruino's socket code (libs/network/socketerrors.h, by -code: 3 TIMEOUT, 4 NO_ROUTE,
        // 6 NOT_FOUND, 8 UNSENT_DATA, 9 RESET, 11 NO_CONN, 13 SSL_HAND, 14 SSL_INVALID), or what
        // connect() threw: a message only ("Unable to locate host", "Unable to create socket", and
        // others, e.g. "HTTPS init failed! mbedtls_...": io)
        const n = x.code;
        let m = x.message;
        const c = n ? ',,,timeout,unreachable,,dns,,reset,reset,,refused,,tls,tls'.split(',')[-n] : /locate/.test(m) ? 'dns' : /socket/.test(m) ? 'refused' : '';
        if ((typeof WREN_TLS === 'undefined' || WREN_TLS) && n === -14) m = 'certificate verification failed: ' + m;
        h.onError({ code: (c || 'io') as TransportErrorCode, message: n ? m + ' (' + n + ')' : m });
      }
      a.st_ = 3;
      this.cur_ = undefined;
      h.onClose();
    };
    // The connect callback and 'drain' (both given the socket) and 'data' (a binary string). Any of
    // them means connected (the first 'data' can come before the connect callback); after that a
    // call without a string is a 'drain' (or the connect callback after such a 'data': harmless).
    const rx = (d?: any) => {
      const data = typeof d === 'string';
      if (!a.st_) {
        a.st_ = 1;
        h.onOpen();
      } else if (!data) {
        a.pending_ = 0;
        if (a.drain_ && a.st_ === 1) {
          a.drain_ = false;
          h.onDrain();
        }
      }
      if (data && a.st_ === 1) h.onData(env.E.toUint8Array(d));
    };
    a.end_ = end;
    const t: any = o.tls;
    const opts: any = { host: o.host, port: o.port };
    let mod = 'net';
    try {
      if ((typeof WREN_TLS === 'undefined' || WREN_TLS) && t) {
        mod = 'tls';
        // Espruino's tls takes DER (binary strings): the first block of a PEM, decoded
        for (const k of ['ca', 'cert', 'key']) {
          const v = t[k];
          if (!v) continue;
          const pem = /BEGIN[^-]+-+([^-]+)/.exec(v);
          opts[k] = pem ? (env.atob as (s: string) => string)(pem[1].replace(/\s/g, '')) : v;
        }
      }
      a.sock_ = env.require(mod).connect(opts, rx);
    } catch (e) {
      this.timers_.set(0, () => end(e));
      return;
    }
    const sock = a.sock_ as EspSocket;
    sock.on('data', rx);
    sock.on('drain', rx);
    sock.on('error', end);
    sock.on('close', end);
  }

  write(bytes: Uint8Array): boolean {
    const a = this.cur_;
    if (!a || a.st_ !== 1) return false;
    try {
      (a.sock_ as EspSocket).write(this.env_.E.toString(bytes));
    } catch (e) {
      // "This socket is closed": the close events are on their way
      return false;
    }
    if ((a.pending_ += bytes.length) <= Net.HIGH_WATER) return true;
    a.drain_ = true;
    return false;
  }

  close(): void {
    const a = this.cur_;
    if (!a || a.st_ > 1) return;
    a.st_ = 2;
    try {
      (a.sock_ as EspSocket).end();
    } catch (e) {
      // already closed, or connect() threw
    }
    this.timers_.set(0, a.end_ as () => void); // onClose without waiting for the peer
  }
}
