// The loopback fault proxy, observed with the independent mqtt-packet client against aedes.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startAedes } from './helpers/brokers';
import type { AedesHandle } from './helpers/brokers';
import { connectPeer } from './helpers/independent-client';
import type { Peer } from './helpers/independent-client';
import { startFaultProxy } from './helpers/fault-proxy';
import type { FaultProxy } from './helpers/fault-proxy';

let broker: AedesHandle;
const peers: Peer[] = [];
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  broker = await startAedes();
});

afterEach(async () => {
  for (const p of peers.splice(0)) p.destroy();
  for (const x of proxies.splice(0)) await x.close();
  // Every test starts with no connection at the broker (the proxies' upstreams are gone too).
  await until(() => broker.connections() === 0, 2000);
});

afterAll(async () => {
  await broker.stop();
});

async function proxy(): Promise<FaultProxy> {
  const x = await startFaultProxy({ host: broker.host, port: broker.port });
  proxies.push(x);
  return x;
}

async function direct(clientId: string): Promise<Peer> {
  const p = await connectPeer({ host: broker.host, port: broker.port, clientId, version: 4 });
  peers.push(p);
  return p;
}

async function via(x: FaultProxy, clientId: string): Promise<Peer> {
  const p = await connectPeer({ host: x.host, port: x.port, clientId, version: 4, connectTimeoutMs: 2000 });
  peers.push(p);
  return p;
}

/** Resolves 'settled' or 'pending' after ms. */
function settledWithin(p: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  return Promise.race([
    p.then(
      () => 'settled' as const,
      () => 'settled' as const,
    ),
    new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms)),
  ]);
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met within ' + timeoutMs + ' ms');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('fault proxy', () => {
  it('pass: forwards both ways and counts bytes', async () => {
    const x = await proxy();
    const sub = await direct('fp-pass-sub');
    await sub.subscribe('fp-pass/#', 1);
    const pub = await via(x, 'fp-pass-pub');
    for (let i = 0; i < 10; i++) await pub.publish('fp-pass/x', 'seq:' + i, 1);
    await sub.waitFor((ms) => ms.length >= 10, 2000);
    expect(sub.counts('seq:', { to: 9 })).toMatchObject({ unique: 10, duplicates: 0, missingCount: 0, outOfOrder: 0 });
    const s = x.stats();
    expect(s).toMatchObject({ accepted: 1, active: 1, droppedUp: 0, droppedDown: 0, resets: 0 });
    expect(s.bytesUp).toBeGreaterThan(10 * 'fp-pass/x'.length);
    expect(s.bytesDown).toBeGreaterThanOrEqual(4 + 10 * 4); // CONNACK + 10 PUBACK
  });

  it('blackhole: no ack, the socket stays open, bytes are dropped, a close does not reach the broker', async () => {
    const x = await proxy();
    const sub = await direct('fp-bh-sub');
    await sub.subscribe('fp-bh/#', 1);
    const pub = await via(x, 'fp-bh-pub');
    await pub.publish('fp-bh/x', 'seq:0', 1);
    const before = broker.connections();
    await x.setMode('blackhole');
    const acked = pub.publish('fp-bh/x', 'seq:1', 1);
    acked.catch(() => undefined);
    expect(await settledWithin(acked, 500)).toBe('pending');
    expect(pub.closed).toBe(false);
    expect(sub.messages.map((m) => m.payload.toString())).toEqual(['seq:0']);
    expect(x.stats().droppedUp).toBeGreaterThan(0);
    expect(x.stats().active).toBe(1);

    // The client gives up; the broker keeps its side (half-open).
    pub.destroy();
    await pub.waitForClose(1000);
    await new Promise((r) => setTimeout(r, 100));
    expect(broker.connections()).toBe(before);

    // A new connection in blackhole gets no CONNACK.
    await expect(connectPeer({ host: x.host, port: x.port, clientId: 'fp-bh-new', version: 4, connectTimeoutMs: 300 })).rejects.toThrow(/no CONNACK/);

    await x.setMode('pass');
    const again = await via(x, 'fp-bh-again');
    await again.publish('fp-bh/x', 'seq:2', 1);
    await sub.waitFor((ms) => ms.length >= 2, 2000);
    expect(sub.counts('seq:', { to: 2 }).missing).toEqual([1]);
  });

  it('reset: current connections see ECONNRESET on both sides, new ones are reset, then pass works', async () => {
    const x = await proxy();
    const before = broker.connections();
    const p = await via(x, 'fp-rst');
    expect(broker.connections()).toBe(before + 1);
    await x.setMode('reset');
    await p.waitForClose(1000);
    expect(p.closeError?.code).toBe('ECONNRESET');
    await until(() => broker.connections() === before, 1000);
    await expect(via(x, 'fp-rst-new')).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(x.stats().resets).toBe(2);
    await x.setMode('pass');
    const q = await via(x, 'fp-rst-again');
    await q.subscribe('fp-rst/#', 0);
  });

  it('refuse: connect fails with ECONNREFUSED and existing connections are reset; back to pass on the same port', async () => {
    const x = await proxy();
    const port = x.port;
    const p = await via(x, 'fp-ref');
    await x.setMode('refuse');
    await p.waitForClose(1000);
    expect(p.closeError?.code).toBe('ECONNRESET');
    await expect(via(x, 'fp-ref-new')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await x.setMode('pass');
    expect(x.port).toBe(port);
    const q = await via(x, 'fp-ref-again');
    await q.subscribe('fp-ref/#', 0);
  });

  it('refuse with keepExisting leaves open connections working', async () => {
    const x = await proxy();
    const p = await via(x, 'fp-keep');
    await x.setMode('refuse', { keepExisting: true });
    await expect(via(x, 'fp-keep-new')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await p.subscribe('fp-keep/#', 1)).toBe(1);
    expect(p.closed).toBe(false);
  });

  it('delay: each direction waits N ms, order is kept, also when switching back to pass mid-flight', async () => {
    const x = await proxy();
    const sub = await direct('fp-delay-sub');
    await sub.subscribe('fp-delay/#', 1);
    const pub = await via(x, 'fp-delay-pub');
    const N = 150;
    await x.setMode('delay', { delayMs: N });
    const t0 = performance.now();
    await pub.publish('fp-delay/x', 'seq:0', 1);
    // PUBLISH delayed N on the way up, PUBACK N on the way down (1 ms slack for timer rounding).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2 * N - 1);

    // 10 QoS 0 under delay, then pass, then 10 more: the later ones must not overtake.
    const sends: Promise<void>[] = [];
    for (let i = 1; i <= 10; i++) sends.push(pub.publish('fp-delay/x', 'seq:' + i, 0));
    await Promise.all(sends);
    await x.setMode('pass');
    for (let i = 11; i <= 20; i++) await pub.publish('fp-delay/x', 'seq:' + i, 0);
    await pub.publish('fp-delay/x', 'seq:21', 1);
    await sub.waitFor((ms) => ms.length >= 22, 2000);
    expect(sub.counts('seq:', { to: 21 })).toMatchObject({ unique: 22, duplicates: 0, missingCount: 0, outOfOrder: 0 });
  });

  it('a dead target: the client connect is accepted, then reset', async () => {
    const dead = await freePort();
    const x = await startFaultProxy({ port: dead });
    proxies.push(x);
    await expect(connectPeer({ host: x.host, port: x.port, clientId: 'fp-dead', version: 4, connectTimeoutMs: 1000 })).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
  });

  it('close(): the port refuses and proxied clients are closed', async () => {
    const x = await startFaultProxy({ host: broker.host, port: broker.port });
    const p = await via(x, 'fp-close');
    await x.close();
    await p.waitForClose(1000);
    await expect(via(x, 'fp-close-new')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
