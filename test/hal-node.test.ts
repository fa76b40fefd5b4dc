import { transportRecorder } from './helpers/transport-recorder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import type { OpenOptions, TransportError } from '../hal/types';
import { ConsoleLog, FileStorage, NodeClock, NodeLink, NodeRandom, NodeTimerHost, NodeTransport } from '../hal/node/index';

const text = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const str = (u: Uint8Array) => Buffer.from(u).toString('latin1');

/** Drives a NodeTransport and records its events; asserts nothing is delivered inside a call. */
class Probe {
  t = new NodeTransport();
  events: string[] = [];
  data: Uint8Array[] = [];
  errors: TransportError[] = [];
  private inCall = false;
  private waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];

  constructor() {
    const ev = (name: string) => {
      expect(this.inCall, 'event ' + name + ' delivered synchronously').toBe(false);
      this.events.push(name);
      this.check();
    };
    this.t.setHandler(transportRecorder(ev, this));
  }

  call<T>(f: () => T): T {
    this.inCall = true;
    try {
      return f();
    } finally {
      this.inCall = false;
    }
  }
  open(o: OpenOptions) {
    this.call(() => this.t.open(o));
  }
  write(s: string) {
    return this.call(() => this.t.write(text(s)));
  }
  close() {
    this.call(() => this.t.close());
  }
  received(): string {
    return this.data.map(str).join('');
  }
  until(pred: () => boolean, what: string, ms = 3000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timeout waiting for ' + what + '; events: ' + this.events.join(','))), ms);
      this.waiters.push({
        pred,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
  closed() {
    return this.until(() => this.events.includes('close'), 'close');
  }
  private check() {
    this.waiters = this.waiters.filter((w) => {
      if (w.pred()) {
        w.resolve();
        return false;
      }
      return true;
    });
  }
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

describe('NodeTransport over node:net', () => {
  let server: net.Server;
  let port = 0;
  const sockets: net.Socket[] = [];
  beforeAll(async () => {
    server = net.createServer((s) => {
      sockets.push(s);
      s.on('data', (b) => {
        if (b.toString() === 'quit') s.end();
        else s.write(b);
      });
      s.on('error', () => {});
    });
    port = await listen(server);
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('connects, echoes data both ways, closes idempotently, and is reusable', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port });
    expect(p.write('early')).toBe(false); // not open yet: dropped
    await p.until(() => p.events.includes('open'), 'open');
    expect(p.write('hello ')).toBe(true);
    expect(p.write('world')).toBe(true);
    await p.until(() => p.received() === 'hello world', 'echo');
    p.close();
    p.close();
    await p.closed();
    expect(p.events.filter((e) => e === 'close')).toHaveLength(1);
    expect(p.events.some((e) => e.startsWith('error'))).toBe(false);
    expect(p.write('after')).toBe(false);
    p.close(); // idle: nothing
    // a second attempt on the same transport
    p.events = [];
    p.data = [];
    p.open({ host: '127.0.0.1', port });
    await p.until(() => p.events.includes('open'), 'second open');
    p.write('again');
    await p.until(() => p.received() === 'again', 'second echo');
    p.close();
    await p.closed();
    await new Promise((r) => setTimeout(r, 20));
    expect(p.events).toEqual(['open', 'data', 'close']);
  });

  it('a peer close is a close without error', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port });
    await p.until(() => p.events.includes('open'), 'open');
    p.write('quit');
    await p.closed();
    expect(p.events).toEqual(['open', 'close']);
  });

  it('a refused port gives an error event then close', async () => {
    const tmp = net.createServer();
    const dead = await listen(tmp);
    await new Promise<void>((r) => tmp.close(() => r()));
    const p = new Probe();
    p.open({ host: '127.0.0.1', port: dead });
    await p.closed();
    expect(p.events).toEqual(['error:refused', 'close']);
    expect(p.errors[0].message).toContain('ECONNREFUSED');
  });

  it('a synchronous failure to open becomes an async error then close', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port: -5 });
    await p.closed();
    expect(p.events).toEqual(['error:io', 'close']);
    expect(() => p.t.open({ host: '127.0.0.1', port })).not.toThrow();
    expect(() => p.t.open({ host: '127.0.0.1', port })).toThrow(/not closed/);
    p.close();
  });

  it('a reset by the peer gives error:reset then close', async () => {
    const rst = net.createServer((s) => {
      s.on('error', () => {});
      s.on('data', () => s.resetAndDestroy());
    });
    const rport = await listen(rst);
    const p = new Probe();
    p.open({ host: '127.0.0.1', port: rport });
    await p.until(() => p.events.includes('open'), 'open');
    p.write('x');
    await p.closed();
    rst.close();
    expect(p.events).toEqual(['open', 'error:reset', 'close']);
  });
});

// ---------------------------------------------------------------------------------------------
// TLS with certificates made by openssl in a temp dir

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const OPENSSL = haveOpenssl();
if (!OPENSSL) console.log('skipping NodeTransport TLS tests: openssl is not installed');

function makePki(dir: string) {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    run(['req', '-x509', ...ec, '-keyout', name + '.key', '-out', name + '.crt', '-days', '2', '-subj', '/CN=' + name,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  ca('ca');
  ca('other-ca');
  const leaf = (name: string, ext: string) => {
    fs.writeFileSync(path.join(dir, name + '.ext'), ext);
    run(['req', ...ec, '-keyout', name + '.key', '-out', name + '.csr', '-subj', '/CN=' + name]);
    run(['x509', '-req', '-in', name + '.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', name + '.crt',
      '-days', '2', '-extfile', name + '.ext']);
  };
  leaf('server', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  const r = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    ca: r('ca.crt'),
    otherCa: r('other-ca.crt'),
    serverCert: r('server.crt'),
    serverKey: r('server.key'),
    clientCert: r('client.crt'),
    clientKey: r('client.key'),
  };
}

describe.skipIf(!OPENSSL)('NodeTransport over node:tls', () => {
  let dir = '';
  let pki: ReturnType<typeof makePki>;
  let server: tls.Server;
  let port = 0;
  let mtlsServer: tls.Server;
  let mtlsPort = 0;
  const peerNames: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-tls-'));
    pki = makePki(dir);
    const echo = (s: tls.TLSSocket) => {
      s.on('error', () => {});
      s.on('data', (b) => s.write(b));
    };
    server = tls.createServer({ cert: pki.serverCert, key: pki.serverKey }, echo);
    server.on('tlsClientError', () => {});
    port = await listen(server);
    mtlsServer = tls.createServer(
      { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true, rejectUnauthorized: true },
      (s) => {
        peerNames.push(String(s.getPeerCertificate().subject?.CN ?? ""));
        echo(s);
      },
    );
    mtlsServer.on('tlsClientError', () => {});
    mtlsPort = await listen(mtlsServer);
  });
  afterAll(() => {
    server?.close();
    mtlsServer?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the right CA and carries data', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port, tls: { ca: pki.ca } });
    await p.until(() => p.events.includes('open'), 'open');
    p.write('secure');
    await p.until(() => p.received() === 'secure', 'echo');
    p.close();
    await p.closed();
    expect(p.events).toEqual(['open', 'data', 'close']);
  });

  it('connects by name with servername (SNI) to an IP address', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    await p.until(() => p.events.includes('open'), 'open');
    p.close();
    await p.closed();
  });

  it('a wrong CA gives a tls error that mentions certificate verification, then close', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port, tls: { ca: pki.otherCa } });
    await p.closed();
    expect(p.events).toEqual(['error:tls', 'close']);
    expect(p.errors[0].message).toMatch(/certificate verification failed/);
  });

  it('a name mismatch is a verification failure too', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'not-the-server.example' } });
    await p.closed();
    expect(p.events).toEqual(['error:tls', 'close']);
    expect(p.errors[0].message).toMatch(/certificate verification failed/);
  });

  it('rejectUnauthorized: false skips verification (explicitly only)', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port, tls: { ca: pki.otherCa, rejectUnauthorized: false } });
    await p.until(() => p.events.includes('open'), 'open');
    p.close();
    await p.closed();
  });

  it('mutual TLS: the client certificate and key are presented', async () => {
    const p = new Probe();
    p.open({ host: '127.0.0.1', port: mtlsPort, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
    await p.until(() => p.events.includes('open'), 'open');
    p.write('m');
    await p.until(() => p.received() === 'm', 'echo');
    p.close();
    await p.closed();
    expect(peerNames).toContain('client');
  });
});

// ---------------------------------------------------------------------------------------------

describe('FileStorage', () => {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-fs-'));
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stores named records in files: append, replace, read, size, list, erase', () => {
    const s = new FileStorage(path.join(dir, 'a'));
    expect(s.read('log')).toBeUndefined();
    expect(s.size('log')).toBeUndefined();
    expect(s.append('log', text('one;'))).toBe(true);
    expect(s.append('log', text('two;'))).toBe(true);
    expect(str(s.read('log')!)).toBe('one;two;');
    expect(s.size('log')).toBe(8);
    expect(s.replace('cfg', text('v1'))).toBe(true);
    expect(s.replace('cfg', text('version-2'))).toBe(true);
    expect(str(s.read('cfg')!)).toBe('version-2');
    const odd = 'q/1 .. %?*';
    s.append(odd, text('x'));
    expect(s.list()).toEqual([odd, 'cfg', 'log'].sort());
    expect(s.list('c')).toEqual(['cfg']);
    expect(str(s.read(odd)!)).toBe('x');
    s.erase('cfg');
    s.erase('cfg');
    expect(s.list()).toEqual([odd, 'log'].sort());
    expect(() => s.read('n'.repeat(29))).toThrow(/invalid storage record name/);
    expect(typeof s.free()).toBe('number');
    // the temp directory of atomic replace is not a record and is left empty
    expect(fs.readdirSync(path.join(dir, 'a', '.tmp'))).toEqual([]);
  });

  it('persists across instances (a reboot) and cleans a replace interrupted mid-way', () => {
    const d = path.join(dir, 'b');
    const s = new FileStorage(d, { syncAppends: true });
    s.append('q', text('abc'));
    s.replace('state', text('old'));
    // simulate a crash between writing the temporary file and renaming it
    fs.writeFileSync(path.join(d, '.tmp', 'state.999'), 'new-but-torn');
    const s2 = new FileStorage(d);
    expect(str(s2.read('q')!)).toBe('abc');
    expect(str(s2.read('state')!)).toBe('old');
    expect(fs.readdirSync(path.join(d, '.tmp'))).toEqual([]);
  });

  it('a capacity makes writes fail as out of space without changing content', () => {
    const s = new FileStorage(path.join(dir, 'c'), { capacity: 10 });
    expect(s.append('a', text('12345678'))).toBe(true);
    expect(s.free()).toBe(2);
    expect(s.append('a', text('abc'))).toBe(false);
    expect(s.replace('a', text('0123456789'))).toBe(true); // replacing frees the old bytes
    expect(s.replace('b', text('x'))).toBe(false);
    expect(str(s.read('a')!)).toBe('0123456789');
  });
});

describe('Node clock, random, log, link', () => {
  it('NodeClock is monotonic and NodeTimerHost fires and clears', async () => {
    const c = new NodeClock();
    const h = new NodeTimerHost(true);
    const t0 = c.now();
    let cleared = false;
    const x = h.set(5, () => (cleared = true));
    h.clear(x);
    h.clear(x);
    h.clear(undefined);
    await new Promise<void>((r) => h.set(15, r));
    expect(c.elapsed(t0)).toBeGreaterThanOrEqual(14);
    expect(cleared).toBe(false);
  });

  it('NodeRandom gives numbers in [0,1)', () => {
    const r = new NodeRandom();
    const xs = Array.from({ length: 200 }, () => r.next());
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(190);
  });

  it('ConsoleLog respects its level', () => {
    const log = new ConsoleLog('warn');
    expect(log.enabled('info')).toBe(false);
    expect(log.enabled('error')).toBe(true);
  });

  it('NodeLink reports up and down asynchronously', async () => {
    const l = new NodeLink('lab');
    const ev: string[] = [];
    l.setHandler({ onUp: () => ev.push('up'), onDown: (r) => ev.push('down:' + r) });
    l.up();
    l.up();
    expect(ev).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(ev).toEqual(['up']);
    expect(l.isUp()).toBe(true);
    expect(l.networkId()).toBe('lab');
    l.down();
    await new Promise((r) => setImmediate(r));
    expect(ev).toEqual(['up', 'down:requested']);
  });
});
