// The client on the Node HAL (real sockets) against real brokers on 127.0.0.1: Aedes in-process
// (always; MQTT 3.1.1) and mosquitto (3.1.1 and 5.0, when installed). Deliveries are counted by an
// independent subscriber built on mqtt-packet, never on our codec.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { Aedes } from 'aedes';
import type { AddressInfo } from 'node:net';
import { MemoryStorage } from '../hal/mock/index';
import { device, powerCutAll, publishAcked, until } from './helpers/device';
import { describeMosquitto, startAedes, startMosquitto } from './helpers/brokers';
import type { BrokerHandle } from './helpers/brokers';
import { connectPeer } from './helpers/independent-client';
import type { Peer } from './helpers/independent-client';

const brokers: BrokerHandle[] = [];
const peers: Peer[] = [];

afterAll(async () => {
  powerCutAll();
  for (const p of peers) p.destroy();
  for (const b of brokers) await b.stop().catch(() => undefined);
});

/** QoS 0/1/2 both ways through the broker, counted by the independent peer and by the device. */
async function roundTrips(b: BrokerHandle, version: 4 | 5, tag: string): Promise<void> {
  const sub = await connectPeer({ host: b.host, port: b.port, clientId: tag + '-peer', version });
  peers.push(sub);
  await sub.subscribe(tag + '/up/#', 2);
  const d = device(b, { clientId: tag + '-dev', version });
  d.client.subscribe(tag + '/down/#', 2);
  d.client.start();
  await until(() => d.client.state === 'connected', 5000, 'connect');
  expect(d.client.version).toBe(version);
  for (const q of [0, 1, 2] as const) await publishAcked(d.client, tag + '/up/q' + q, 'seq:' + q, q);
  await sub.waitFor((ms) => ms.length >= 3, 5000);
  expect(sub.messages.map((m) => [m.topic, m.qos, m.payload.toString()])).toEqual([
    [tag + '/up/q0', 0, 'seq:0'],
    [tag + '/up/q1', 1, 'seq:1'],
    [tag + '/up/q2', 2, 'seq:2'],
  ]);
  await until(() => d.client.subscriptions().length === 1 && d.client.stats.connackOk === 1, 2000, 'subscribed');
  await new Promise((r) => setTimeout(r, 100)); // SUBACK
  for (const q of [0, 1, 2] as const) await sub.publish(tag + '/down/q' + q, 'seq:' + q, q);
  await until(() => d.received.length >= 3, 5000, 'inbound');
  await new Promise((r) => setTimeout(r, 100));
  expect(d.received.map((m) => [m.topic, m.qos, m.payload])).toEqual([
    [tag + '/down/q0', 0, 'seq:0'],
    [tag + '/down/q1', 1, 'seq:1'],
    [tag + '/down/q2', 2, 'seq:2'],
  ]);
  expect(d.errors).toEqual([]);
  d.client.stop();
}

/**
 * 2,000 QoS 1 and 500 QoS 2 publishes while the broker is killed and restarted 5 times. The device and
 * the counting subscriber both hold persistent sessions; the broker keeps its state across the crash.
 */
async function stress(b: BrokerHandle, version: 4 | 5, tag: string, reconnectPeer: () => Promise<void>) {
  const N1 = 2000;
  const N2 = 500;
  const total = N1 + N2;
  const d = device(b, { clientId: tag + '-dev', version });
  // A device with a command subscription, as real ones have. (It matters for Aedes, which reports
  // Session Present only for a session that has subscriptions; without one the client must treat
  // in-flight QoS 2 as lost by the broker and send it again as new, which the broker cannot dedupe.)
  let subacked = false;
  d.client.subscribe(tag + '-cmd/' + version, 1, undefined, () => (subacked = true));
  d.client.start();
  await until(() => subacked, 5000, 'connect and SUBACK');
  let acked = 0;
  let failed = 0;
  let sent = 0;
  const publishSome = (n: number) => {
    for (let k = 0; k < n && sent < total; k++, sent++) {
      const q = sent % 5 === 4 ? 2 : 1;
      const err = d.client.publish(tag + '/q' + q, 'seq:' + sent, { qos: q }, (e) => (e ? failed++ : acked++));
      if (err) failed++;
    }
  };
  for (let restart = 0; restart < 5; restart++) {
    // Each kill lands mid-stream: the device is connected with messages in flight.
    await until(() => d.client.state === 'connected', 10_000, 'reconnect ' + restart);
    publishSome(total / 6);
    await new Promise((r) => setTimeout(r, 40));
    // Kill the broker process (SIGTERM for mosquitto: like `kill PID`, it saves its state; Aedes
    // closes every socket at once). What the broker acknowledged survives in its persistence; the
    // client sees its connection drop mid-stream.
    await b.halt();
    publishSome(total / 30); // published while the broker is down: queued
    await new Promise((r) => setTimeout(r, 80));
    await b.restart();
    await reconnectPeer();
  }
  publishSome(total);
  await until(() => acked + failed >= total, 60_000, 'all acknowledged (acked ' + acked + ', failed ' + failed + ')');
  return { d, acked, failed, sent };
}

describe('interop: Aedes in-process (MQTT 3.1.1)', () => {
  it('QoS 0/1/2 round trips through the broker, and "auto" settles on 3.1.1', async () => {
    const b = await startAedes();
    brokers.push(b);
    await roundTrips(b, 4, 'aedes-rt');
    const d = device(b, { clientId: 'aedes-auto', version: 'auto' });
    d.client.start();
    await until(() => d.client.state === 'connected', 5000, 'auto connect');
    expect(d.client.version).toBe(4);
    d.client.stop();
  });

  // Aedes keeps its in-memory persistence across the restart, and the device resumes its session and
  // resends unacknowledged QoS 2 with the original ids and DUP. Aedes itself is not durable across its
  // own restart: it forwards a few of those resends again (seen 5-19 of 500, without the DUP flag), and
  // it has dropped a message or two from its outgoing queue to the subscriber (seen 498/500 once).
  // What the device guarantees is asserted where the broker takes the message: every publish
  // acknowledged, and every message received by the broker (its own 'publish' event for the device's
  // client, counted by seq). The subscriber's end-to-end counts are printed; the strict end-to-end
  // assertions (QoS 1 at least once, QoS 2 exactly once at an independent subscriber) run against
  // mosquitto below, whose state survives a restart.
  it('2,000 QoS 1 + 500 QoS 2 through 5 broker kills and restarts: every message acknowledged and received by the broker', async () => {
    const b = await startAedes({ persistence: 'memory' });
    brokers.push(b);
    const ingress = new Map<string, number>();
    const watch = () =>
      b.broker?.on('publish', (packet, client) => {
        if (!client || client.id !== 'aedes-st-dev') return;
        const k = packet.topic + ' ' + packet.payload.toString();
        ingress.set(k, (ingress.get(k) ?? 0) + 1);
      });
    watch();
    let sub = await connectPeer({ host: b.host, port: b.port, clientId: 'aedes-counter', version: 4, clean: false });
    peers.push(sub);
    await sub.subscribe('aedes-st/#', 2);
    const r = await stress(b, 4, 'aedes-st', async () => {
      watch();
      const again = await connectPeer({ host: b.host, port: b.port, clientId: 'aedes-counter', version: 4, clean: false, resumeFrom: sub });
      peers.push(again);
      sub = again;
    });
    await sub.waitFor(() => sub.counts('seq:', { topic: 'aedes-st/q1' }).unique >= 2000 && sub.counts('seq:', { topic: 'aedes-st/q2' }).unique >= 500, 10_000).catch(() => undefined);
    const c1 = sub.counts('seq:', { topic: 'aedes-st/q1' });
    const c2 = sub.counts('seq:', { topic: 'aedes-st/q2' });
    const at = (q: number) => [...ingress.keys()].filter((k) => k.startsWith('aedes-st/q' + q + ' ')).length;
    console.log(
      `aedes stress: sent ${r.sent}, acked ${r.acked}, failed ${r.failed}; at the broker: QoS 1 ${at(1)}/2000 unique, QoS 2 ${at(2)}/500 unique; ` +
        `at the subscriber: QoS 1 ${c1.unique}/2000 unique (${c1.duplicates} duplicates), QoS 2 ${c2.unique}/500 unique (${c2.duplicates} duplicates); ` +
        `device connects ${r.d.client.stats.connackOk} (attempts ${r.d.client.stats.connects})`,
    );
    expect(r.failed).toBe(0);
    expect(r.acked).toBe(2500);
    expect(at(1)).toBe(2000);
    expect(at(2)).toBe(500);
    expect(r.d.client.stats.connackOk).toBeGreaterThanOrEqual(6);
  }, 90_000);

  it('the device rebooted mid-stream (a new client on the same storage) loses nothing', async () => {
    const b = await startAedes();
    brokers.push(b);
    const sub = await connectPeer({ host: b.host, port: b.port, clientId: 'reboot-counter', version: 4 });
    peers.push(sub);
    await sub.subscribe('reboot/#', 1);
    const flash = new MemoryStorage();
    const a = device(b, { clientId: 'reboot-dev', version: 4, maxInflight: 4 }, flash);
    a.client.start();
    await until(() => a.client.state === 'connected', 5000, 'connect');
    for (let i = 0; i < 300; i++) a.client.publish('reboot/x', 'seq:' + i, { qos: 1 });
    await new Promise((r) => setTimeout(r, 5)); // a few go out, most are still queued
    a.powerCut();
    const held = flash.reboot();
    const bDev = device(b, { clientId: 'reboot-dev', version: 4 }, held);
    const restored = bDev.client.session.stats().messages;
    bDev.client.start();
    for (let i = 300; i < 400; i++) bDev.client.publish('reboot/x', 'seq:' + i, { qos: 1 });
    await until(() => bDev.client.session.stats().messages === 0, 20_000, 'queue drained');
    await sub.waitFor(() => sub.counts('seq:', { topic: 'reboot/x' }).unique >= 400, 10_000).catch(() => undefined);
    const c = sub.counts('seq:', { topic: 'reboot/x', from: 0, to: 399 });
    console.log(`reboot: 400 published (300 before the power cut), ${restored} restored from flash, delivered ${c.unique} unique, ${c.duplicates} duplicates, missing ${c.missingCount}`);
    expect(restored).toBeGreaterThan(0);
    expect(c.missingCount).toBe(0);
    expect(c.unique).toBe(400);
  }, 60_000);
});

// TLS: a self-signed CA made with openssl; a broker TLS listener (Aedes behind node:tls, always; and
// mosquitto's own TLS listener when installed).
function makeCa(dir: string, name: string): { ca: string; cert: string; key: string } | undefined {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  try {
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=' + name + ' CA', '-keyout', name + '-ca.key', '-out', name + '-ca.pem']);
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', name + '.key', '-out', name + '.csr']);
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    run(['x509', '-req', '-in', name + '.csr', '-CA', name + '-ca.pem', '-CAkey', name + '-ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', name + '.pem']);
  } catch {
    return undefined;
  }
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return { ca: read(name + '-ca.pem'), cert: read(name + '.pem'), key: read(name + '.key') };
}

describe('interop: TLS with the server certificate checked against the CA from the config', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-tls-'));
  const good = makeCa(dir, 'good');
  const other = makeCa(dir, 'other');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  if (!good || !other) console.log('skipped: TLS interop needs openssl');

  it.skipIf(!good || !other)('right CA connects; a wrong CA is refused with a clear error (Aedes over node:tls)', async () => {
    const aedes = await Aedes.createBroker();
    const server = tls.createServer({ cert: good!.cert, key: good!.key }, (s) => aedes.handle(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const ok = device({ host: '127.0.0.1', port }, { clientId: 'tls-ok', version: 4 });
      (ok.client.options.brokers[0] as { tls?: unknown }).tls = { ca: good!.ca };
      ok.client.start();
      await until(() => ok.client.state === 'connected', 5000, 'TLS connect');
      await publishAcked(ok.client, 'tls/x', 'hello', 1);
      ok.client.stop();

      const bad = device({ host: '127.0.0.1', port }, { clientId: 'tls-bad', version: 4 });
      (bad.client.options.brokers[0] as { tls?: unknown }).tls = { ca: other!.ca };
      bad.client.start();
      await until(() => bad.errors.length > 0, 5000, 'TLS refusal');
      expect(bad.client.state).not.toBe('connected');
      expect(bad.errors[0].code).toBe('transport');
      expect(bad.errors[0].message).toMatch(/tls.*certificate/i);
      bad.client.stop();
    } finally {
      await new Promise<void>((r) => server.close(() => aedes.close(() => r())));
    }
  });

  describeMosquitto('mosquitto TLS listener', () => {
    it.skipIf(!good || !other)('right CA connects over MQTT 5; a wrong CA is refused', async () => {
      const files = { caFile: path.join(dir, 'good-ca.pem'), certFile: path.join(dir, 'good.pem'), keyFile: path.join(dir, 'good.key') };
      const b = await startMosquitto({ tls: files });
      brokers.push(b);
      const ok = device({ host: b.host, port: b.tlsPort as number }, { clientId: 'mtls-ok', version: 5 });
      (ok.client.options.brokers[0] as { tls?: unknown }).tls = { ca: good!.ca };
      ok.client.start();
      await until(() => ok.client.state === 'connected', 5000, 'TLS connect');
      await publishAcked(ok.client, 'tls/x', 'hello', 2);
      ok.client.stop();
      const bad = device({ host: b.host, port: b.tlsPort as number }, { clientId: 'mtls-bad', version: 5 });
      (bad.client.options.brokers[0] as { tls?: unknown }).tls = { ca: other!.ca };
      bad.client.start();
      await until(() => bad.errors.length > 0, 5000, 'TLS refusal');
      expect(bad.errors[0].message).toMatch(/certificate/i);
      bad.client.stop();
    });
  });
});

describeMosquitto('interop: mosquitto (MQTT 3.1.1 and 5.0)', () => {
  it('QoS 0/1/2 round trips, both versions', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    await roundTrips(b, 4, 'mq4-rt');
    await roundTrips(b, 5, 'mq5-rt');
  });

  for (const version of [4, 5] as const) {
    it(`2,000 QoS 1 + 500 QoS 2 through 5 broker kills and restarts: QoS 1 at least once, QoS 2 exactly once (v${version})`, async () => {
      const b = await startMosquitto({ persistence: true, autosaveOnChanges: true, autosaveInterval: 1 });
      brokers.push(b);
      const tag = 'mq' + version + '-st';
      let sub = await connectPeer({ host: b.host, port: b.port, clientId: tag + '-counter', version, clean: false });
      peers.push(sub);
      await sub.subscribe(tag + '/#', 2);
      const r = await stress(b, version, tag, async () => {
        const again = await connectPeer({ host: b.host, port: b.port, clientId: tag + '-counter', version, clean: false, resumeFrom: sub });
        peers.push(again);
        sub = again;
      });
      await sub.waitFor(() => sub.counts('seq:', { topic: tag + '/q1' }).unique >= 2000 && sub.counts('seq:', { topic: tag + '/q2' }).unique >= 500, 30_000).catch(() => undefined);
      const c1 = sub.counts('seq:', { topic: tag + '/q1' });
      const c2 = sub.counts('seq:', { topic: tag + '/q2' });
      console.log(
        `mosquitto v${version} stress: sent ${r.sent}, acked ${r.acked}, failed ${r.failed}; ` +
          `QoS 1 delivered ${c1.unique}/2000 unique (${c1.duplicates} duplicates); QoS 2 delivered ${c2.unique}/500 unique (${c2.duplicates} duplicates); ` +
          `device connects ${r.d.client.stats.connackOk} (attempts ${r.d.client.stats.connects})`,
      );
      expect(r.failed).toBe(0);
      expect(r.acked).toBe(2500);
      expect(c1.unique).toBe(2000);
      expect(c2.unique).toBe(500);
      expect(c2.duplicates).toBe(0);
      expect(r.d.client.stats.connackOk).toBeGreaterThanOrEqual(6);
    }, 120_000);
  }
});
