// Transport over node:net and node:tls. Node already delivers socket events asynchronously; the
// synchronous failures (bad options, a throw from connect) are deferred with setImmediate so the
// contract holds: nothing is delivered inside open(), write() or close().

import * as net from 'node:net';
import * as tls from 'node:tls';
import type { OpenOptions, Transport, TransportError, TransportErrorCode, TransportHandler } from '../types';

/** Node TLS error codes that mean the server certificate could not be verified. */
const CERT_CODES = [
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
];

/** Map a Node socket error onto the contract's TransportError. */
export function toTransportError(e: unknown, tlsOn: boolean): TransportError {
  const err = e as { code?: unknown; message?: unknown };
  const nodeCode = typeof err?.code === 'string' ? err.code : '';
  const text = typeof err?.message === 'string' ? err.message : String(e);
  let code: TransportErrorCode = 'io';
  let message = text;
  if (CERT_CODES.indexOf(nodeCode) >= 0) {
    code = 'tls';
    message = 'TLS certificate verification failed: ' + nodeCode + ': ' + text;
  } else if (nodeCode === 'ECONNREFUSED') code = 'refused';
  else if (nodeCode === 'ECONNRESET' || nodeCode === 'EPIPE' || nodeCode === 'ECONNABORTED') code = 'reset';
  else if (nodeCode === 'ENOTFOUND' || nodeCode === 'EAI_AGAIN' || nodeCode === 'EAI_NONAME') code = 'dns';
  else if (nodeCode === 'EHOSTUNREACH' || nodeCode === 'ENETUNREACH' || nodeCode === 'ENETDOWN') code = 'unreachable';
  else if (nodeCode === 'ETIMEDOUT') code = 'timeout';
  else if (tlsOn && (nodeCode.indexOf('ERR_SSL') === 0 || nodeCode.indexOf('ERR_TLS') === 0 || /ssl|tls|handshake/i.test(text))) {
    code = 'tls';
    message = 'TLS handshake failed: ' + (nodeCode ? nodeCode + ': ' : '') + text;
  }
  if (code !== 'tls' && nodeCode && text.indexOf(nodeCode) < 0) message = nodeCode + ': ' + text;
  return { code, message };
}

interface Attempt {
  socket: net.Socket | undefined;
  opened: boolean;
  userClosed: boolean;
  /** onClose delivered or scheduled. */
  ended: boolean;
  errored: boolean;
  tls: boolean;
}

export class NodeTransport implements Transport {
  private handler: TransportHandler | undefined;
  private cur: Attempt | undefined;

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  open(options: OpenOptions): void {
    const h = this.handler;
    if (h === undefined) throw new Error('NodeTransport.open: no handler set');
    if (this.cur !== undefined) throw new Error('NodeTransport.open: previous connection has not closed yet');
    const a: Attempt = {
      socket: undefined,
      opened: false,
      userClosed: false,
      ended: false,
      errored: false,
      tls: options.tls !== undefined,
    };
    this.cur = a;
    let socket: net.Socket;
    try {
      if (options.tls !== undefined) {
        const t = options.tls;
        const o: tls.ConnectionOptions = {
          host: options.host,
          port: options.port,
          rejectUnauthorized: t.rejectUnauthorized !== false,
        };
        if (t.ca !== undefined) o.ca = t.ca;
        if (t.cert !== undefined) o.cert = t.cert;
        if (t.key !== undefined) o.key = t.key;
        const sni = t.servername ?? options.host;
        // SNI must not be an IP address; the certificate name check still uses `sni` via checkServerIdentity
        if (net.isIP(sni) === 0) o.servername = sni;
        else if (t.servername !== undefined) o.checkServerIdentity = (_h, cert) => tls.checkServerIdentity(sni, cert);
        socket = tls.connect(o);
        socket.once('secureConnect', () => this.onConnected(a));
      } else {
        socket = net.connect({ host: options.host, port: options.port });
        socket.once('connect', () => this.onConnected(a));
      }
    } catch (e) {
      setImmediate(() => this.finish(a, toTransportError(e, a.tls)));
      return;
    }
    a.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (buf: Buffer) => {
      if (this.cur === a && a.opened && !a.userClosed) (this.handler as TransportHandler).onData(new Uint8Array(buf));
    });
    socket.on('drain', () => {
      if (this.cur === a && a.opened && !a.userClosed) (this.handler as TransportHandler).onDrain();
    });
    socket.on('error', (e: Error) => {
      if (a.errored || a.ended) return;
      a.errored = true;
      if (this.cur === a && !a.userClosed) (this.handler as TransportHandler).onError(toTransportError(e, a.tls));
    });
    socket.on('close', () => this.finish(a, undefined));
  }

  write(bytes: Uint8Array): boolean {
    const a = this.cur;
    if (a === undefined || !a.opened || a.userClosed || a.ended || a.socket === undefined) return false;
    const s = a.socket;
    if (s.destroyed || !s.writable) return false;
    return s.write(bytes);
  }

  close(): void {
    const a = this.cur;
    if (a === undefined || a.userClosed) return;
    a.userClosed = true;
    const s = a.socket;
    if (s !== undefined && !s.destroyed) {
      if (s.writableLength === 0 || !a.opened) s.destroy();
      else {
        // flush what is queued, then go; do not wait on a peer that never reads
        s.end();
        const t = setTimeout(() => s.destroy(), 2000);
        t.unref();
        s.once('close', () => clearTimeout(t));
      }
    }
    if (!a.ended) {
      a.ended = true;
      setImmediate(() => this.deliverClose(a));
    }
  }

  private onConnected(a: Attempt): void {
    if (this.cur !== a || a.userClosed || a.ended) return;
    a.opened = true;
    (this.handler as TransportHandler).onOpen();
  }

  /** The attempt ended (socket closed, or failed before it existed). */
  private finish(a: Attempt, err: TransportError | undefined): void {
    if (a.ended) return;
    a.ended = true;
    if (err !== undefined && !a.errored && !a.userClosed) {
      a.errored = true;
      if (this.cur === a) (this.handler as TransportHandler).onError(err);
    }
    this.deliverClose(a);
  }

  private deliverClose(a: Attempt): void {
    if (this.cur !== a) return;
    this.cur = undefined;
    (this.handler as TransportHandler).onClose();
  }
}
