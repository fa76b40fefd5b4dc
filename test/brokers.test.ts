// The interop test infrastructure itself: real brokers started on free loopback ports and the
// independent mqtt-packet peer that counts deliveries.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { countSeq, connectPeer, ConnackError } from './helpers/independent-client';
import type { Peer, PeerMessage } from './helpers/independent-client';
import { describeMosquitto, pidAlive, startAedes, startMosquitto } from './helpers/brokers';
import type { BrokerHandle, MosquittoHandle } from './helpers/brokers';

const peers: Peer[] = [];
const brokers: BrokerHandle[] = [];

async function peer(b: BrokerHandle, clientId: string, version: 4 | 5 = 4, clean = true): Promise<Peer> {
  const p = await connectPeer({ host: b.host, port: b.port, clientId, version, clean });
  peers.push(p);
  return p;
}

function tcpConnect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

afterEach(async () => {
  for (const p of peers.splice(0)) p.destroy();
});

afterAll(async () => {
  for (const b of brokers.splice(0)) await b.stop();
});

/** Publish seq:0..n-1 at each QoS and check the subscriber got each exactly once, in order. */
async function pubSubRoundTrip(b: BrokerHandle, version: 4 | 5, tag: string): Promise<void> {
  const sub = await peer(b, 'sub-' + tag, version);
  const pub = await peer(b, 'pub-' + tag, version);
  for (const qos of [0, 1, 2] as const) {
    expect(await sub.subscribe(tag + '/q' + qos + '/#', qos)).toBe(qos);
  }
  const n = 20;
  for (const qos of [0, 1, 2] as const) {
    for (let i = 0; i < n; i++) await pub.publish(tag + '/q' + qos + '/x', 'seq:' + i, qos);
  }
  const onTopic = (qos: number) => (ms: PeerMessage[]) => ms.filter((m) => m.topic === tag + '/q' + qos + '/x').length >= n;
  for (const qos of [0, 1, 2] as const) {
    await sub.waitFor(onTopic(qos), 3000);
    const c = sub.counts('seq:', { topic: tag + '/q' + qos + '/x', to: n - 1 });
    expect(c).toMatchObject({ received: n, unique: n, duplicates: 0, missingCount: 0, outOfOrder: 0 });
    expect(sub.messages.filter((m) => m.topic === tag + '/q' + qos + '/x').every((m) => m.qos === qos)).toBe(true);
  }
}

describe('countSeq', () => {
  it('reports duplicates, missing numbers and reordering', () => {
    const mk = (s: string, topic = 't'): PeerMessage => ({ topic, payload: Buffer.from(s), qos: 1, dup: false, retain: false, at: 0 });
    const ms = ['seq:0', 'seq:2', 'seq:1', 'seq:2', 'seq:5', 'other', 'seq:x'].map((s) => mk(s));
    ms.push(mk('seq:3', 'elsewhere'));
    const c = countSeq(ms, 'seq:', { topic: 't', to: 6 });
    expect(c).toEqual({ received: 5, unique: 4, duplicates: 1, missing: [3, 4, 6], missingCount: 3, outOfOrder: 1, max: 5 });
    expect(countSeq(ms, 'seq:', { maxMissing: 1 }).missing).toEqual([4]);
  });
});

describe('aedes (in-process, MQTT 3.1.1)', () => {
  it('starts on a free port and carries QoS 0/1/2 between two independent clients', async () => {
    const b = await startAedes();
    brokers.push(b);
    expect(b.port).toBeGreaterThan(0);
    expect(b.versions).toEqual([4]);
    await pubSubRoundTrip(b, 4, 'a-rt');
    expect(b.connections()).toBe(2);
  });

  it('refuses a v5 CONNECT (speaks 3.1.1 only)', async () => {
    const b = await startAedes();
    brokers.push(b);
    const err = await connectPeer({ host: b.host, port: b.port, clientId: 'v5', version: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnackError);
    expect((err as ConnackError).code).toBe(1);
  });

  it('restart() drops clients and listens again on the same port with fresh state', async () => {
    const b = await startAedes();
    brokers.push(b);
    const port = b.port;
    const sub = await peer(b, 'a-restart-sub', 4, false);
    await sub.subscribe('a-restart/#', 1);
    await b.restart();
    await sub.waitForClose(2000);
    expect(b.port).toBe(port);
    expect(b.running()).toBe(true);
    const again = await peer(b, 'a-restart-sub', 4, false);
    expect(again.connack.sessionPresent).toBe(false); // no persistence: the session is gone
  });

  it("with persistence 'memory' a session and its queued QoS 1 messages survive restart() and kill()", async () => {
    const b = await startAedes({ persistence: 'memory' });
    brokers.push(b);
    const sub = await peer(b, 'a-pers-sub', 4, false);
    expect(await sub.subscribe('a-pers/#', 1)).toBe(1);
    await sub.close();
    const pub = await peer(b, 'a-pers-pub');
    for (let i = 0; i < 5; i++) await pub.publish('a-pers/x', 'seq:' + i, 1);

    await b.restart();
    await pub.waitForClose(2000);
    const sub2 = await connectPeer({ host: b.host, port: b.port, clientId: 'a-pers-sub', version: 4, clean: false, resumeFrom: sub });
    peers.push(sub2);
    expect(sub2.connack.sessionPresent).toBe(true);
    await sub2.waitFor((ms) => ms.length >= 5, 3000);
    await sub2.close();

    const pub2 = await peer(b, 'a-pers-pub2');
    for (let i = 5; i < 8; i++) await pub2.publish('a-pers/x', 'seq:' + i, 1);
    await b.kill();
    await pub2.waitForClose(2000);
    await b.restart();
    const sub3 = await connectPeer({ host: b.host, port: b.port, clientId: 'a-pers-sub', version: 4, clean: false, resumeFrom: sub2 });
    peers.push(sub3);
    expect(sub3.connack.sessionPresent).toBe(true);
    await sub3.waitFor((ms) => ms.length >= 8, 3000);
    expect(sub3.counts('seq:', { to: 7 })).toMatchObject({ unique: 8, missingCount: 0 });
  });

  it('kill() is a crash: sockets die, no will is published, the port refuses', async () => {
    const b = await startAedes();
    brokers.push(b);
    const watcher = await peer(b, 'a-kill-watch');
    await watcher.subscribe('a-kill/will', 0);
    const victim = await connectPeer({ host: b.host, port: b.port, clientId: 'a-kill-victim', version: 4, will: { topic: 'a-kill/will', payload: 'gone' } });
    peers.push(victim);
    expect(b.connections()).toBe(2);
    await b.kill();
    await victim.waitForClose(2000);
    await watcher.waitForClose(2000);
    expect(watcher.messages).toEqual([]);
    expect(b.running()).toBe(false);
    expect(b.connections()).toBe(0);
    await expect(tcpConnect(b.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a dropped client (no DISCONNECT) gets its will published; stop() closes everything', async () => {
    const b = await startAedes();
    brokers.push(b);
    const watcher = await peer(b, 'a-will-watch');
    await watcher.subscribe('a-will/#', 1);
    const victim = await connectPeer({ host: b.host, port: b.port, clientId: 'a-will-victim', version: 4, will: { topic: 'a-will/x', payload: 'gone', qos: 1 } });
    victim.destroy();
    await watcher.waitFor((ms) => ms.some((m) => m.payload.toString() === 'gone'), 2000);
    await b.stop();
    await watcher.waitForClose(2000);
    expect(b.connections()).toBe(0);
    await expect(tcpConnect(b.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

function makeCert(dir: string): { caFile: string; certFile: string; keyFile: string } | undefined {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile],
      { stdio: 'ignore' },
    );
  } catch {
    return undefined;
  }
  return { caFile: certFile, certFile, keyFile };
}

describeMosquitto('mosquitto (child process, MQTT 3.1.1 and 5.0)', () => {
  it('starts on a free port and carries QoS 0/1/2 over v4 and v5', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    expect(b.versions).toEqual([4, 5]);
    expect(pidAlive(b.pid() as number)).toBe(true);
    await pubSubRoundTrip(b, 4, 'm-v4');
    await pubSubRoundTrip(b, 5, 'm-v5');
    expect(b.connections()).toBe(4);
  });

  it('a v4 publisher reaches a v5 subscriber', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    const sub = await peer(b, 'm-mix-sub', 5);
    await sub.subscribe('m-mix/#', 2);
    const pub = await peer(b, 'm-mix-pub', 4);
    await pub.publish('m-mix/a', 'seq:0', 2);
    await sub.waitFor((ms) => ms.length === 1, 2000);
    expect(sub.messages[0]).toMatchObject({ topic: 'm-mix/a', qos: 2 });
  });

  it('restart() listens again on the same port under a new PID; stop() leaves no process and no temp dir', async () => {
    const b: MosquittoHandle = await startMosquitto();
    brokers.push(b);
    const port = b.port;
    const pid1 = b.pid() as number;
    const p = await peer(b, 'm-restart', 5);
    await b.restart();
    await p.waitForClose(3000);
    const pid2 = b.pid() as number;
    expect(pid2).not.toBe(pid1);
    expect(pidAlive(pid1)).toBe(false);
    expect(b.port).toBe(port);
    await pubSubRoundTrip(b, 5, 'm-after-restart');
    await b.stop();
    expect(b.running()).toBe(false);
    expect(pidAlive(pid2)).toBe(false);
    expect(fs.existsSync(b.dir)).toBe(false);
    await expect(tcpConnect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('kill() is SIGKILL: the process is gone at once', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    const pid = b.pid() as number;
    const p = await peer(b, 'm-kill', 4);
    await b.kill();
    expect(pidAlive(pid)).toBe(false);
    await p.waitForClose(2000);
    await expect(tcpConnect(b.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('with persistence a v3.1.1 and a v5 session keep queued QoS 1/2 messages across restart()', async () => {
    const b = await startMosquitto({ persistence: true });
    brokers.push(b);
    const s4 = await peer(b, 'm-pers-4', 4, false);
    await s4.subscribe('m-pers/#', 1);
    const s5 = await connectPeer({ host: b.host, port: b.port, clientId: 'm-pers-5', version: 5, clean: false, sessionExpiry: 600 });
    peers.push(s5);
    await s5.subscribe('m-pers/#', 2);
    await s4.close();
    await s5.close();
    const pub = await peer(b, 'm-pers-pub', 5);
    for (let i = 0; i < 5; i++) await pub.publish('m-pers/x', 'seq:' + i, 2);
    await b.restart(); // SIGTERM: mosquitto writes mosquitto.db
    const r4 = await connectPeer({ host: b.host, port: b.port, clientId: 'm-pers-4', version: 4, clean: false });
    const r5 = await connectPeer({ host: b.host, port: b.port, clientId: 'm-pers-5', version: 5, clean: false, sessionExpiry: 600 });
    peers.push(r4, r5);
    expect(r4.connack.sessionPresent).toBe(true);
    expect(r5.connack.sessionPresent).toBe(true);
    await r4.waitFor((ms) => ms.length >= 5, 3000);
    await r5.waitFor((ms) => ms.length >= 5, 3000);
    expect(r4.counts('seq:', { to: 4 })).toMatchObject({ unique: 5, missingCount: 0 });
    expect(r5.counts('seq:', { to: 4 })).toMatchObject({ unique: 5, duplicates: 0, missingCount: 0 });
    expect(r4.messages.every((m) => m.qos === 1)).toBe(true);
    expect(r5.messages.every((m) => m.qos === 2)).toBe(true);
  });

  it('after kill() (SIGKILL) only what was autosaved survives', async () => {
    const results: Array<{ sessionPresent: boolean; got: number }> = [];
    for (const opts of [{ persistence: true }, { persistence: true, autosaveOnChanges: true, autosaveInterval: 1 }]) {
      const b = await startMosquitto(opts);
      brokers.push(b);
      const s = await peer(b, 'm-sk-sub', 4, false);
      await s.subscribe('m-sk/#', 1);
      await s.close();
      const pub = await peer(b, 'm-sk-pub', 4);
      for (let i = 0; i < 3; i++) await pub.publish('m-sk/x', 'seq:' + i, 1);
      await new Promise((r) => setTimeout(r, 100)); // let the main loop run its autosave check
      await b.kill();
      await b.restart();
      const r = await peer(b, 'm-sk-sub', 4, false);
      if (r.connack.sessionPresent) await r.waitFor((ms) => ms.length >= 3, 2000);
      results.push({ sessionPresent: !!r.connack.sessionPresent, got: r.messages.length });
      await b.stop();
    }
    // Default autosave_interval (1800 s): the db is only written on SIGTERM, so a crash loses it all.
    expect(results[0]).toEqual({ sessionPresent: false, got: 0 });
    // autosave_on_changes with interval 1: every change is on disk before the crash.
    expect(results[1]).toEqual({ sessionPresent: true, got: 3 });
  });

  it('without persistence restart() loses sessions', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    const s = await peer(b, 'm-nopers', 4, false);
    await s.subscribe('m-nopers/#', 1);
    await b.restart();
    const r = await peer(b, 'm-nopers', 4, false);
    expect(r.connack.sessionPresent).toBe(false);
  });

  it('max_keepalive: a v5 client above it gets Server Keep Alive in CONNACK', async () => {
    // v3.1.1 clients above max_keepalive are accepted by 2.0.11 (the man page: "only applies to MQTT
    // v5 clients"); later mosquitto versions may refuse them, so that case is not asserted here.
    const b = await startMosquitto({ maxKeepalive: 30 });
    brokers.push(b);
    const above = await connectPeer({ host: b.host, port: b.port, clientId: 'm-ka-above', version: 5, keepalive: 60 });
    const below = await connectPeer({ host: b.host, port: b.port, clientId: 'm-ka-below', version: 5, keepalive: 10 });
    peers.push(above, below);
    expect(above.connack.properties?.serverKeepAlive).toBe(30);
    expect(below.connack.properties?.serverKeepAlive).toBeUndefined();
  });

  it('TLS listener carries MQTT (when openssl can make a certificate)', async (ctx) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-cert-'));
    try {
      const tls = makeCert(dir);
      if (!tls) ctx.skip();
      const b = await startMosquitto({ tls });
      brokers.push(b);
      expect(b.tlsPort).toBeGreaterThan(0);
      expect(b.tlsPort).not.toBe(b.port);
      const ca = fs.readFileSync((tls as { caFile: string }).caFile);
      const p = await connectPeer({ host: b.host, port: b.tlsPort as number, clientId: 'm-tls', version: 5, tls: { ca } });
      peers.push(p);
      await p.subscribe('m-tls/#', 1);
      await p.publish('m-tls/x', 'seq:0', 1);
      await p.waitFor((ms) => ms.length === 1, 2000);
      // Without the CA the handshake fails.
      await expect(connectPeer({ host: b.host, port: b.tlsPort as number, clientId: 'm-tls-bad', version: 5, tls: {} })).rejects.toThrow();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
