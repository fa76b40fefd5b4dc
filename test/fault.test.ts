// The client on the Node HAL behind the project's loopback fault proxy, in front of a real broker:
// a black-holed link (TCP held open, nothing flows) is detected within keep-alive + pingTimeoutMs,
// the client reconnects once the path heals, and no message is lost.
import { afterAll, describe, expect, it } from 'vitest';
import { describeMosquitto, startAedes, startMosquitto } from './helpers/brokers';
import type { BrokerHandle } from './helpers/brokers';
import { device, powerCutAll, until } from './helpers/device';
import { startFaultProxy } from './helpers/fault-proxy';
import type { FaultProxy } from './helpers/fault-proxy';
import { connectPeer } from './helpers/independent-client';
import type { Peer } from './helpers/independent-client';

const brokers: BrokerHandle[] = [];
const proxies: FaultProxy[] = [];
const peers: Peer[] = [];
afterAll(async () => {
  powerCutAll();
  for (const p of peers) p.destroy();
  for (const p of proxies) await p.close();
  for (const b of brokers) await b.stop().catch(() => undefined);
});

const KEEPALIVE_SEC = 2;
const PING_TIMEOUT_MS = 1000;

async function blackholeScenario(b: BrokerHandle, version: 4 | 5, tag: string) {
  const proxy = await startFaultProxy({ host: b.host, port: b.port });
  proxies.push(proxy);
  const sub = await connectPeer({ host: b.host, port: b.port, clientId: tag + '-counter', version });
  peers.push(sub);
  await sub.subscribe(tag + '/#', 1);
  const d = device({ host: proxy.host, port: proxy.port }, {
    clientId: tag + '-dev',
    version,
    keepAliveSec: KEEPALIVE_SEC,
    pingTimeoutMs: PING_TIMEOUT_MS,
    pingJitter: 0,
    connectTimeoutMs: 1000,
    backoff: { baseMs: 100, capMs: 300, factor: 2, stableAfterMs: 60_000 },
  });
  const dead: number[] = [];
  d.client.on('dead', () => dead.push(Date.now()));
  d.client.start();
  await until(() => d.client.state === 'connected', 5000, 'connect');
  for (let i = 0; i < 20; i++) d.client.publish(tag + '/m', 'seq:' + i, { qos: 1 });
  await until(() => d.client.session.stats().messages === 0, 5000, 'first batch acked');

  // The path dies silently: no FIN, no RST, the socket stays open.
  await proxy.setMode('blackhole');
  const diedAt = Date.now();
  for (let i = 20; i < 40; i++) d.client.publish(tag + '/m', 'seq:' + i, { qos: 1 }); // held, unacked
  await until(() => dead.length > 0, 10_000, 'watchdog');
  const detectMs = dead[0] - diedAt;

  await new Promise((r) => setTimeout(r, 500)); // a few reconnect attempts into the black hole
  await proxy.setMode('pass');
  const healedAt = Date.now();
  await until(() => d.client.state === 'connected', 10_000, 'reconnect after heal');
  const backMs = Date.now() - healedAt;
  for (let i = 40; i < 60; i++) d.client.publish(tag + '/m', 'seq:' + i, { qos: 1 });
  await until(() => d.client.session.stats().messages === 0, 10_000, 'all acked');
  await sub.waitFor(() => sub.counts('seq:', { topic: tag + '/m' }).unique >= 60, 5000).catch(() => undefined);
  const c = sub.counts('seq:', { topic: tag + '/m', from: 0, to: 59 });
  console.log(
    `${tag}: blackhole detected after ${detectMs} ms (bound: keep-alive ${KEEPALIVE_SEC * 1000} + pingTimeout ${PING_TIMEOUT_MS} ms, ` +
      `early probe on the unacked publishes); reconnected ${backMs} ms after the heal; delivered ${c.unique}/60, duplicates ${c.duplicates}`,
  );
  // The exact bound is asserted in virtual time (test/client.test.ts); real sockets on a shared machine get slack.
  expect(detectMs).toBeLessThanOrEqual(KEEPALIVE_SEC * 1000 + PING_TIMEOUT_MS + 1500);
  expect(c.missingCount).toBe(0);
  expect(c.unique).toBe(60);
}

describe('fault proxy: black-holed link against Aedes', () => {
  it('detected within keep-alive + pingTimeoutMs, reconnects after the heal, nothing lost', async () => {
    const b = await startAedes();
    brokers.push(b);
    await blackholeScenario(b, 4, 'fp-aedes');
  }, 30_000);
});

describeMosquitto('fault proxy: black-holed link against mosquitto', () => {
  it('v5: detected within keep-alive + pingTimeoutMs, reconnects after the heal, nothing lost', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    await blackholeScenario(b, 5, 'fp-mosq');
  }, 30_000);
});
