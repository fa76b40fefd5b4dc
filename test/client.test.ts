// The client against a scripted broker on the mock network, in virtual time: the protocol flows,
// version fallback, refusals, resend after reconnect, exactly-once inbound QoS 2, bad broker input,
// keep-alive and the PINGRESP watchdog, to the millisecond.
import { describe, expect, it } from 'vitest';
import { Client, clientDefaults, unsubscribe } from '../firmware/client/index';
import type { ClientError, ClientOptions } from '../firmware/client/index';
import { encode } from '../firmware/mqtt/index';
import { PacketType } from '../firmware/mqtt/types';
import type { Packet, PublishPacket } from '../firmware/mqtt/types';
import { Scheduler } from '../firmware/scheduler/index';
import { MemoryLog, MemoryStorage, MockNetwork, SeededRandom, VirtualClock } from '../hal/mock/index';
import { MockBroker } from './helpers/mock-broker';
import type { MockBrokerOptions } from './helpers/mock-broker';

const te = new TextEncoder();
const td = new TextDecoder();

function setup(over?: Partial<ClientOptions>, brokerOpts?: MockBrokerOptions, storage?: MemoryStorage) {
  const clock = new VirtualClock();
  const log = new MemoryLog();
  const sched = new Scheduler(clock, clock, log);
  const net = new MockNetwork(clock);
  const broker = new MockBroker(net, 'broker', 1883, () => clock.now(), brokerOpts);
  const store = storage ?? new MemoryStorage();
  const options: ClientOptions = { ...clientDefaults(), clientId: 'dev1', brokers: [{ host: 'broker', port: 1883 }], ...over };
  const client = new Client(options, { scheduler: sched, transport: net.transport(), storage: store, random: new SeededRandom(7), log });
  const errors: ClientError[] = [];
  const states: string[] = [];
  client.on('error', (e) => errors.push(e));
  client.on('state', (s) => states.push(s));
  return { clock, sched, net, broker, storage: store, client, log, errors, states };
}

describe('client: connect', () => {
  it('connects with MQTT 5 when the broker speaks it, announcing its limits', () => {
    const t = setup({ version: 'auto' });
    t.client.start();
    t.clock.runFor(10);
    expect(t.client.state).toBe('connected');
    expect(t.client.version).toBe(5);
    const c = t.broker.of(PacketType.CONNECT)[0] as Extract<Packet, { type: PacketType.CONNECT }>;
    expect(c.protocolVersion).toBe(5);
    expect(c.clientId).toBe('dev1');
    expect(c.keepAliveSec).toBe(60);
    expect(c.clean).toBe(false);
    expect(c.properties?.sessionExpiryInterval).toBe(86400);
    expect(c.properties?.maximumPacketSize).toBe(65536);
  });

  it('"auto" falls back to 3.1.1 when the broker answers "unacceptable protocol version" (like Aedes)', () => {
    const t = setup({ version: 'auto' }, { versions: [4] });
    t.client.start();
    t.clock.runFor(50);
    expect(t.client.state).toBe('connected');
    expect(t.client.version).toBe(4);
    const connects = t.broker.of(PacketType.CONNECT) as Array<Extract<Packet, { type: PacketType.CONNECT }>>;
    expect(connects.map((c) => c.protocolVersion)).toEqual([5, 4]);
    expect(t.errors).toEqual([]);
  });

  it('sends username, password and will (with v5 will properties)', () => {
    const t = setup({
      version: 5,
      username: 'u',
      password: 'p@ss',
      will: { topic: 'dev1/status', payload: te.encode('offline'), qos: 1, retain: true, properties: { willDelayInterval: 30 } },
    });
    t.client.start();
    t.clock.runFor(10);
    const c = t.broker.of(PacketType.CONNECT)[0] as Extract<Packet, { type: PacketType.CONNECT }>;
    expect(c.username).toBe('u');
    expect(td.decode(c.password)).toBe('p@ss');
    expect(c.will?.topic).toBe('dev1/status');
    expect(c.will?.qos).toBe(1);
    expect(c.will?.retain).toBe(true);
    expect(c.will?.properties?.willDelayInterval).toBe(30);
  });

  it('reports a credentials refusal clearly and backs off to the cap instead of hammering', () => {
    const t = setup({ version: 4, backoff: { baseMs: 1000, capMs: 60000, factor: 2, stableAfterMs: 60000 } }, { connackCode: 4 });
    t.client.start();
    t.clock.runFor(10 * 60_000);
    const refusals = t.errors.filter((e) => e.code === 'refused');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0].message).toContain('CONNACK 0x4');
    expect(refusals[0].reasonCode).toBe(4);
    // Full jitter over [0, cap] every time: 10 minutes allow ~20 attempts on average, never a tight loop.
    const connects = t.broker.of(PacketType.CONNECT).length;
    expect(connects).toBeLessThan(40);
    const times = t.broker.received.filter((r) => r.packet.type === PacketType.CONNECT).map((r) => r.at);
    const gaps = times.slice(1).map((x, i) => x - times[i]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(60_000 + 20);
    expect(gaps.filter((g) => g > 8000).length).toBeGreaterThan(gaps.length / 2);
  });

  it('times out a CONNECT that gets no CONNACK and retries', () => {
    const t = setup({ version: 4, connectTimeoutMs: 5000 }, { listen: {} });
    // A broker that accepts TCP but never answers: swallow everything.
    t.net.listen('broker', 1883, {}, (peer) => {
      peer.onData = () => undefined;
    });
    t.client.start();
    t.clock.runFor(5000 - 1);
    expect(t.errors).toEqual([]);
    t.clock.runFor(1);
    expect(t.errors.map((e) => e.code)).toEqual(['timeout']);
    expect(t.client.state).toBe('waiting');
  });
});

describe('client: publish flows', () => {
  for (const version of [4, 5] as const) {
    it(`QoS 0/1/2 outbound with the exact ack flow (v${version})`, () => {
      const t = setup({ version });
      t.client.start();
      t.clock.runFor(10);
      const done: Array<string> = [];
      t.client.publish('t/0', 'zero', { qos: 0 }, (e) => done.push('q0 ' + (e ? e.code : 'ok')));
      t.client.publish('t/1', 'one', { qos: 1 }, (e) => done.push('q1 ' + (e ? e.code : 'ok')));
      t.client.publish('t/2', te.encode('two'), { qos: 2 }, (e) => done.push('q2 ' + (e ? e.code : 'ok')));
      t.clock.runFor(10);
      expect(done).toEqual(['q0 ok', 'q1 ok', 'q2 ok']);
      const pubs = t.broker.of(PacketType.PUBLISH) as PublishPacket[];
      expect(pubs.map((p) => [p.topic, p.qos, td.decode(p.payload)])).toEqual([
        ['t/0', 0, 'zero'],
        ['t/1', 1, 'one'],
        ['t/2', 2, 'two'],
      ]);
      expect(t.broker.of(PacketType.PUBREL).length).toBe(1);
      expect(t.client.session.stats().messages).toBe(0);
    });
  }

  it('never reuses a packet id while in flight', () => {
    const t = setup({ version: 4, maxInflight: 10 }, { autoAck: false });
    t.client.start();
    t.clock.runFor(10);
    for (let i = 0; i < 10; i++) t.client.publish('t', 'm' + i, { qos: 1 });
    t.clock.runFor(10);
    const ids = (t.broker.of(PacketType.PUBLISH) as PublishPacket[]).map((p) => p.packetId);
    expect(new Set(ids).size).toBe(10);
    // The window is full: the 11th waits.
    t.client.publish('t', 'm10', { qos: 1 });
    t.clock.runFor(10);
    expect(t.broker.of(PacketType.PUBLISH).length).toBe(10);
    // Ack the first: the 11th goes out with an id not in flight.
    t.broker.send({ type: PacketType.PUBACK, packetId: ids[0] as number });
    t.clock.runFor(10);
    const all = (t.broker.of(PacketType.PUBLISH) as PublishPacket[]).map((p) => p.packetId);
    expect(all.length).toBe(11);
    expect(ids.slice(1)).not.toContain(all[10]);
  });

  it('respects the v5 Receive Maximum from CONNACK', () => {
    const t = setup({ version: 5 }, { autoAck: false, connackProps: { receiveMaximum: 2 } });
    t.client.start();
    t.clock.runFor(10);
    for (let i = 0; i < 5; i++) t.client.publish('t', 'm' + i, { qos: 1 });
    t.clock.runFor(10);
    expect(t.broker.of(PacketType.PUBLISH).length).toBe(2);
  });

  it('drops a queued message bigger than the v5 Maximum Packet Size from CONNACK, with too-large', () => {
    const t = setup({ version: 5 }, { connackProps: { maximumPacketSize: 100 } });
    const done: string[] = [];
    const big = 'x'.repeat(200);
    for (const [p, qos] of [[big, 1], [big, 0], [big, 2], ['small', 1]] as const) t.client.publish('q', p, { qos }, (e) => done.push(qos + ' ' + (e ? e.code : 'ok')));
    t.client.start();
    t.clock.runFor(20);
    expect(done).toEqual(['1 too-large', '0 too-large', '2 too-large', '1 ok']);
    expect((t.broker.of(PacketType.PUBLISH) as PublishPacket[]).map((p) => td.decode(p.payload))).toEqual(['small']);
    expect(t.client.session.stats().messages).toBe(0);
    expect(t.client.publish('q', big, { qos: 1 })?.code).toBe('too-large');
  });

  it('queues publishes made while disconnected and sends them in order after connecting', () => {
    const t = setup({ version: 4 });
    for (let i = 0; i < 5; i++) t.client.publish('q', 'm' + i, { qos: i % 2 ? 1 : 0 });
    t.client.start();
    t.clock.runFor(20);
    expect((t.broker.of(PacketType.PUBLISH) as PublishPacket[]).map((p) => td.decode(p.payload))).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('resends unacknowledged QoS 1 with DUP and PUBREL for PUBREC-ed QoS 2 when the session is resumed', () => {
    const t = setup({ version: 4, clean: false }, { autoAck: false });
    t.client.start();
    t.clock.runFor(10);
    t.client.publish('a', 'one', { qos: 1 });
    t.client.publish('b', 'two', { qos: 2 });
    t.clock.runFor(10);
    const first = t.broker.of(PacketType.PUBLISH) as PublishPacket[];
    // The broker received QoS 2 and sent PUBREC, but nothing else got through.
    t.broker.send({ type: PacketType.PUBREC, packetId: first[1].packetId as number });
    t.clock.runFor(10);
    expect(t.broker.of(PacketType.PUBREL).length).toBe(1);
    t.broker.last.reset();
    t.clock.runFor(5 * 60_000);
    expect(t.client.state).toBe('connected');
    const conn2 = t.broker.received.filter((r) => r.conn === 1).map((r) => r.packet);
    const resent = conn2.filter((p) => p.type === PacketType.PUBLISH) as PublishPacket[];
    expect(resent.length).toBe(1);
    expect(resent[0].dup).toBe(true);
    expect(resent[0].packetId).toBe(first[0].packetId);
    const rel = conn2.filter((p) => p.type === PacketType.PUBREL) as Array<{ packetId: number }>;
    expect(rel.map((p) => p.packetId)).toEqual([first[1].packetId]);
  });

  it('sends unacknowledged messages again as new when the broker lost the session', () => {
    const t = setup({ version: 4, clean: false }, { autoAck: false, sessionPresent: false });
    t.client.start();
    t.clock.runFor(10);
    t.client.publish('a', 'one', { qos: 1 });
    t.clock.runFor(10);
    t.broker.last.reset();
    t.clock.runFor(5 * 60_000);
    const conn2 = t.broker.received.filter((r) => r.conn === 1).map((r) => r.packet);
    const again = conn2.filter((p) => p.type === PacketType.PUBLISH) as PublishPacket[];
    expect(again.length).toBe(1);
    expect(again[0].dup).toBe(false);
    expect(td.decode(again[0].payload)).toBe('one');
  });

  it('refuses an invalid topic or an oversized publish with a clear error and keeps working', () => {
    const t = setup({ version: 4, maxPacketSize: 1024 });
    t.client.start();
    t.clock.runFor(10);
    const bad = t.client.publish('a/+/b', 'x', { qos: 1 });
    expect(bad?.code).toBe('invalid');
    expect(bad?.message).toContain('MQTT-3.3.2-2');
    const badQos = t.client.publish('a', 'x', { qos: 3 as never });
    expect(badQos?.code).toBe('invalid');
    const ok = t.client.publish('a', 'x', { qos: 1 });
    expect(ok).toBeUndefined();
    t.clock.runFor(10);
    expect(t.broker.of(PacketType.PUBLISH).length).toBe(1);
    expect(t.client.state).toBe('connected');
  });
});

describe('client: inbound', () => {
  it('delivers inbound QoS 2 exactly once while its id is held, and acks every flow', () => {
    const t = setup({ version: 4 });
    const got: string[] = [];
    t.client.subscribe('in/#', 2, (topic, payload) => got.push(topic + '=' + td.decode(payload)));
    t.client.start();
    t.clock.runFor(10);
    expect(t.broker.of(PacketType.SUBSCRIBE).length).toBe(1);
    const pub: Packet = { type: PacketType.PUBLISH, topic: 'in/x', payload: te.encode('hello'), qos: 2, retain: false, dup: false, packetId: 42 };
    t.broker.send(pub);
    t.broker.send({ ...pub, dup: true });
    t.clock.runFor(10);
    expect(got).toEqual(['in/x=hello']);
    expect(t.broker.of(PacketType.PUBREC).length).toBe(2);
    t.broker.send({ type: PacketType.PUBREL, packetId: 42 });
    t.clock.runFor(10);
    expect(t.broker.of(PacketType.PUBCOMP).length).toBe(1);
    // After PUBREL the id is free: a new message with id 42 is a new message.
    t.broker.send({ ...pub, payload: te.encode('again') });
    t.clock.runFor(10);
    expect(got).toEqual(['in/x=hello', 'in/x=again']);
  });

  it('acks inbound QoS 1 after delivering it', () => {
    const t = setup({ version: 5 });
    const got: string[] = [];
    t.client.subscribe('s', 1, (topic) => got.push(topic));
    t.client.start();
    t.clock.runFor(10);
    t.broker.send({ type: PacketType.PUBLISH, topic: 's', payload: te.encode('x'), qos: 1, retain: false, dup: false, packetId: 5 });
    t.clock.runFor(10);
    expect(got).toEqual(['s']);
    expect((t.broker.of(PacketType.PUBACK)[0] as { packetId: number }).packetId).toBe(5);
  });

  it('re-subscribes when the broker reports no session, and surfaces SUBACK failures per topic', () => {
    const t = setup({ version: 4, clean: false }, { sessionPresent: false, autoAck: false });
    t.client.subscribe('a', 1);
    let result: { err?: ClientError; granted?: number[] } = {};
    t.client.subscribe('b', 2, undefined, (err, granted) => (result = { err, granted }));
    t.client.start();
    t.clock.runFor(10);
    const subs = t.broker.of(PacketType.SUBSCRIBE) as Array<Extract<Packet, { type: PacketType.SUBSCRIBE }>>;
    // 'b' has a callback waiting; 'a' is re-sent with the new session; none goes twice.
    expect(subs.map((s) => s.subscriptions.map((x) => x.topic))).toEqual([['a'], ['b']]);
    t.broker.send({ type: PacketType.SUBACK, packetId: subs[0].packetId, reasonCodes: [1] });
    t.broker.send({ type: PacketType.SUBACK, packetId: subs[1].packetId, reasonCodes: [0x80] });
    t.clock.runFor(10);
    expect(result.err?.code).toBe('rejected');
    expect(result.err?.message).toContain('b (0x80)');
    expect(result.granted).toEqual([0x80]);
    // Reconnect: no session, so the subscriptions are sent again.
    t.broker.last.reset();
    t.clock.runFor(5 * 60_000);
    expect(t.broker.of(PacketType.SUBSCRIBE).length).toBeGreaterThanOrEqual(3);
  });
});

describe('client: bad input from the broker', () => {
  function connected(version: 4 | 5) {
    const t = setup({ version });
    t.client.start();
    t.clock.runFor(10);
    expect(t.client.state).toBe('connected');
    return t;
  }

  for (const version of [4, 5] as const) {
    it(`garbage gets a disconnect and a reconnect, never a crash (v${version})`, () => {
      const t = connected(version);
      t.broker.last.send([0x00, 0x01, 0x02, 0x03]);
      t.clock.runFor(10);
      expect(t.errors.map((e) => e.code)).toContain('protocol');
      const d = t.broker.received.filter((r) => r.conn === 0 && r.packet.type === PacketType.DISCONNECT);
      if (version === 5) expect((d[0].packet as { reasonCode: number }).reasonCode).toBe(0x81);
      else expect(d.length).toBe(0);
      t.clock.runFor(5 * 60_000);
      expect(t.client.state).toBe('connected');
      expect(t.broker.peers.length).toBe(2);
    });
  }

  it('an oversized packet is refused from its header (v5 DISCONNECT 0x95)', () => {
    const t = connected(5);
    // A PUBLISH header announcing 1 MB (> maxPacketSize 64 KB), with no body sent.
    t.broker.last.send([0x30, 0x80, 0x80, 0x40]);
    t.clock.runFor(10);
    const d = t.broker.received.filter((r) => r.packet.type === PacketType.DISCONNECT);
    expect((d[0].packet as { reasonCode: number }).reasonCode).toBe(0x95);
    expect(t.client.state).toBe('waiting');
  });

  it('an ack for a packet id never issued is a protocol error (v5 DISCONNECT 0x82)', () => {
    const t = connected(5);
    t.broker.send({ type: PacketType.PUBACK, packetId: 999 });
    t.clock.runFor(10);
    const d = t.broker.received.filter((r) => r.packet.type === PacketType.DISCONNECT);
    expect((d[0].packet as { reasonCode: number }).reasonCode).toBe(0x82);
    expect(t.errors.some((e) => e.message.includes('unexpected type 4 id 999'))).toBe(true);
  });

  it('a second CONNACK is a protocol error', () => {
    const t = connected(4);
    t.broker.send({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 });
    t.clock.runFor(10);
    expect(t.errors.some((e) => e.message.includes('unexpected type 2'))).toBe(true);
    t.clock.runFor(5 * 60_000);
    expect(t.client.state).toBe('connected');
  });

  it('an application handler that throws does not break the client', () => {
    const t = setup({ version: 4 });
    t.client.subscribe('x', 1, () => {
      throw new Error('app bug');
    });
    t.client.start();
    t.clock.runFor(10);
    t.broker.send({ type: PacketType.PUBLISH, topic: 'x', payload: te.encode('1'), qos: 1, retain: false, dup: false, packetId: 1 });
    t.clock.runFor(10);
    expect(t.broker.of(PacketType.PUBACK).length).toBe(1);
    expect(t.client.state).toBe('connected');
    expect(t.log.text()).toContain('app bug');
  });
});

describe('client: keep-alive and watchdog (virtual time, exact)', () => {
  it('pings after keepAlive of silence and declares the link dead pingTimeoutMs after an unanswered PINGREQ', () => {
    const t = setup({ version: 4, keepAliveSec: 60, pingTimeoutMs: 10_000, pingJitter: 0 });
    t.client.start(); // CONNECT and CONNACK at t = 0 (no network delay)
    t.clock.runFor(60_000 - 1);
    expect(t.client.state).toBe('connected');
    expect(t.broker.of(PacketType.PINGREQ).length).toBe(0);
    t.clock.runFor(1);
    const pings = () => t.broker.received.filter((r) => r.packet.type === PacketType.PINGREQ).map((r) => r.at);
    expect(pings()).toEqual([60_000]);
    expect(t.client.stats.pingresps).toBe(1);
    // The link goes silent (black hole, TCP still open): the next PINGREQ at 120 000 is unanswered.
    t.broker.last.blackhole();
    t.clock.runFor(60_000 + 10_000 - 1);
    expect(t.client.stats.pings).toBe(2);
    expect(t.errors).toEqual([]);
    expect(t.client.state).toBe('connected');
    t.clock.runFor(1); // t = 130 000: 10 s after the unanswered PINGREQ
    expect(t.errors.map((e) => e.code)).toEqual(['timeout']);
    expect(t.errors[0].message).toContain('PINGRESP');
    expect(t.client.state).toBe('waiting');
  });

  it('a subscribe-only device still pings while inbound QoS 0 traffic flows (RX does not hide a dead TX path)', () => {
    const t = setup({ version: 4, keepAliveSec: 60 });
    t.client.subscribe('feed', 0, () => undefined);
    t.client.start();
    t.clock.runFor(10);
    for (let i = 0; i < 30; i++) {
      t.broker.send({ type: PacketType.PUBLISH, topic: 'feed', payload: te.encode('x'), qos: 0, retain: false, dup: false });
      t.clock.runFor(5000);
    }
    expect(t.broker.of(PacketType.PINGREQ).length).toBeGreaterThanOrEqual(2);
  });
});

describe('client: persistence', () => {
  it('a reboot (new client on the same storage) loses no queued QoS >= 1 message', () => {
    const storage = new MemoryStorage();
    const a = setup({ version: 4 }, { autoAck: false }, storage);
    a.client.start();
    a.clock.runFor(10);
    a.client.publish('p', 'one', { qos: 1 });
    a.client.publish('p', 'two', { qos: 2 });
    a.client.publish('p', 'zero', { qos: 0 });
    a.clock.runFor(10);
    // Power cut: the first client is gone; a new one boots on the same flash.
    const b = setup({ version: 4 }, {}, storage.reboot());
    expect(b.client.session.stats().messages).toBe(2);
    b.client.start();
    b.clock.runFor(50);
    const pubs = b.broker.of(PacketType.PUBLISH) as PublishPacket[];
    expect(pubs.map((p) => td.decode(p.payload)).sort()).toEqual(['one', 'two']);
    expect(b.client.session.stats().messages).toBe(0);
  });
});

describe('client: stop', () => {
  it('stop() sends DISCONNECT and does not reconnect', () => {
    const t = setup({ version: 4 });
    t.client.start();
    t.clock.runFor(10);
    t.client.stop();
    t.clock.runFor(10 * 60_000);
    expect(t.broker.of(PacketType.DISCONNECT).length).toBe(1);
    expect(t.broker.peers.length).toBe(1);
    expect(t.client.state).toBe('stopped');
    void encode;
  });
});

describe('client: heartbeat hooks (virtual time, exact)', () => {
  it('spreads the first ping: interval * (1 - jitter * r), r from the HAL random', () => {
    const firsts: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const clock = new VirtualClock();
      const log = new MemoryLog();
      const sched = new Scheduler(clock, clock, log);
      const net = new MockNetwork(clock);
      const broker = new MockBroker(net, 'broker', 1883, () => clock.now());
      const c = new Client(
        { ...clientDefaults(), clientId: 'd' + seed, brokers: [{ host: 'broker', port: 1883 }], version: 4, keepAliveSec: 60, pingJitter: 0.2 },
        { scheduler: sched, transport: net.transport(), storage: new MemoryStorage(), random: new SeededRandom(seed), log },
      );
      c.start();
      clock.runFor(61_000);
      firsts.push(broker.received.find((r) => r.packet.type === PacketType.PINGREQ)!.at);
    }
    expect(Math.min(...firsts)).toBeGreaterThanOrEqual(48_000);
    expect(Math.max(...firsts)).toBeLessThanOrEqual(60_000);
    expect(new Set(firsts).size).toBeGreaterThan(10); // not in lockstep
  });

  it('setPingInterval pings faster than the declared keep-alive, never slower', () => {
    const t = setup({ version: 4, keepAliveSec: 300, pingJitter: 0 });
    t.client.start();
    t.client.setPingInterval(60);
    t.clock.runFor(180_000);
    expect(t.broker.received.filter((r) => r.packet.type === PacketType.PINGREQ).map((r) => r.at)).toEqual([60_000, 120_000, 180_000]);
    t.client.setPingInterval(600); // above the declared 300 s: capped to it
    t.clock.runFor(600_000);
    const at = t.broker.received.filter((r) => r.packet.type === PacketType.PINGREQ).map((r) => r.at);
    expect(at.slice(3, 5)).toEqual([480_000, 780_000]);
  });

  it('obeys a v5 Server Keep Alive over the declared value [MQTT-3.2.2-21]', () => {
    const t = setup({ version: 5, keepAliveSec: 300, pingJitter: 0 }, { connackProps: { serverKeepAlive: 45 } });
    t.client.start();
    t.clock.runFor(100_000);
    expect(t.broker.received.filter((r) => r.packet.type === PacketType.PINGREQ).map((r) => r.at)).toEqual([45_000, 90_000]);
  });

  it('early probe: an overdue QoS 1 ack triggers a PINGREQ, and a dead link under traffic is found within ackProbeMs + pingTimeoutMs', () => {
    const t = setup({ version: 4, keepAliveSec: 300, pingJitter: 0, ackProbeMs: 5000, pingTimeoutMs: 10_000 });
    const dead: number[] = [];
    t.client.on('dead', (idleSec) => dead.push(idleSec));
    t.client.start();
    t.clock.runFor(20_000);
    t.broker.last.blackhole(); // the link dies silently at t = 20 000
    t.client.publish('x', 'm', { qos: 1 }); // sent at 20 000, never acked
    t.clock.runFor(5000 - 1);
    expect(t.broker.received.filter((r) => r.packet.type === PacketType.PINGREQ).length).toBe(0);
    expect(t.client.stats.pings).toBe(0);
    t.clock.runFor(1); // 25 000: probe
    expect(t.client.stats.pings).toBe(1);
    t.clock.runFor(10_000 - 1);
    expect(t.client.state).toBe('connected');
    t.clock.runFor(1); // 35 000 = 20 000 + ackProbeMs + pingTimeoutMs
    expect(t.client.state).toBe('waiting');
    expect(dead).toEqual([25]); // RX had been idle 25 s when the probe went out
  });
});

describe('client: reconnect policy', () => {
  it('fails over to the next broker in the list when one refuses', () => {
    const clock = new VirtualClock();
    const log = new MemoryLog();
    const sched = new Scheduler(clock, clock, log);
    const net = new MockNetwork(clock);
    net.listen('a', 1883, { refuse: true });
    const b = new MockBroker(net, 'b', 1883, () => clock.now());
    const c = new Client(
      { ...clientDefaults(), clientId: 'fo', brokers: [{ host: 'a', port: 1883 }, { host: 'b', port: 1883 }], version: 4 },
      { scheduler: sched, transport: net.transport(), storage: new MemoryStorage(), random: new SeededRandom(3), log },
    );
    c.start();
    clock.runFor(5000);
    expect(net.opens.map((o) => o.host).slice(0, 2)).toEqual(['a', 'b']);
    expect(c.state).toBe('connected');
    expect(b.of(PacketType.CONNECT).length).toBe(1);
  });

  it('a link-up event cuts a backoff wait short', () => {
    const t = setup({ version: 4, backoff: { baseMs: 60_000, capMs: 60_000, factor: 2, stableAfterMs: 1000 } });
    t.client.start();
    t.clock.runFor(10);
    t.broker.last.reset();
    t.clock.runFor(10);
    expect(t.client.state).toBe('waiting');
    const before = t.broker.peers.length;
    t.client.linkUp();
    t.clock.runFor(10);
    expect(t.client.state).toBe('connected');
    expect(t.broker.peers.length).toBe(before + 1);
  });

  it('a connect-then-kicked loop keeps backing off; a stable connection resets the backoff', () => {
    const t = setup({ version: 4, backoff: { baseMs: 1000, capMs: 64_000, factor: 2, stableAfterMs: 30_000 } });
    t.client.start();
    // Kick the client right after every CONNACK for a while.
    for (let i = 0; i < 6; i++) {
      t.clock.runUntil(() => t.client.state === 'connected', 200_000);
      t.broker.last.reset();
      t.clock.runFor(1);
    }
    expect(t.client.rotation.backoff().attempt).toBeGreaterThanOrEqual(6);
    t.clock.runUntil(() => t.client.state === 'connected', 200_000);
    t.clock.runFor(31_000); // stays up past stableAfterMs
    t.broker.last.reset();
    t.clock.runFor(1);
    expect(t.client.rotation.backoff().attempt).toBeLessThanOrEqual(1);
  });
});

describe('client: reconnect()', () => {
  it('reconnects at once (no backoff wait, no failure counted) with the new options', () => {
    const t = setup({ version: 4 });
    t.client.start();
    t.clock.runFor(10);
    const attempts = t.client.rotation.toJSON().attempts.slice();
    const disconnects = t.client.stats.disconnects;
    t.client.options.keepAliveSec = 77;
    t.client.reconnect('new keep-alive');
    t.clock.runFor(5);
    expect(t.client.state).toBe('connected');
    expect(t.client.rotation.toJSON().attempts).toEqual(attempts);
    expect(t.client.stats.disconnects).toBe(disconnects);
    const c = t.broker.of(PacketType.CONNECT) as Array<Extract<Packet, { type: PacketType.CONNECT }>>;
    expect(c.map((x) => x.keepAliveSec)).toEqual([60, 77]);
    expect(t.broker.of(PacketType.DISCONNECT).length).toBe(1);
  });
});

describe('client: subscriptions across connections', () => {
  it('a filter added while offline reaches a broker that resumes the session', () => {
    const t = setup({ version: 4, clean: false }, { sessionPresent: true });
    t.client.start();
    t.clock.runFor(10);
    t.broker.last.reset();
    t.clock.runFor(1);
    t.client.subscribe('new/filter', 1);
    t.clock.runFor(5 * 60_000);
    expect(t.client.state).toBe('connected');
    const subs = t.broker.of(PacketType.SUBSCRIBE) as Array<Extract<Packet, { type: PacketType.SUBSCRIBE }>>;
    expect(subs.map((s) => s.subscriptions.map((x) => x.topic))).toEqual([['new/filter']]);
  });

  it('a SUBSCRIBE lost with its connection is sent again; nothing goes twice on a new session', () => {
    const t = setup({ version: 4, clean: false }, { sessionPresent: false, autoAck: false });
    t.client.subscribe('a', 1);
    t.client.start();
    t.clock.runFor(10);
    expect((t.broker.of(PacketType.SUBSCRIBE) as Array<Extract<Packet, { type: PacketType.SUBSCRIBE }>>).map((s) => s.subscriptions.map((x) => x.topic))).toEqual([['a']]);
    t.broker.last.reset(); // no SUBACK came
    t.clock.runFor(1);
    t.clock.runUntil(() => t.client.state === 'connected', 5 * 60_000);
    t.clock.runFor(10);
    const subs = t.broker.of(PacketType.SUBSCRIBE) as Array<Extract<Packet, { type: PacketType.SUBSCRIBE }>>;
    expect(subs.length).toBe(2);
    expect(subs[1].subscriptions.map((x) => x.topic)).toEqual(['a']);
  });
});

describe('client: unsubscribe()', () => {
  for (const version of [4, 5] as const) {
    it(`sends UNSUBSCRIBE, drops the filter and its handler, and reports the UNSUBACK (v${version})`, () => {
      const t = setup({ version });
      const got: string[] = [];
      t.client.subscribe('u/#', 1, (topic) => got.push(topic));
      t.client.start();
      t.clock.runFor(10);
      let res: { err?: ClientError; codes?: number[] } | undefined;
      unsubscribe(t.client, 'u/#', (err, codes) => (res = { err, codes }));
      expect(t.client.isIdle()).toBe(false);
      t.clock.runFor(10);
      const u = t.broker.of(PacketType.UNSUBSCRIBE) as Array<Extract<Packet, { type: PacketType.UNSUBSCRIBE }>>;
      expect(u.map((x) => x.topics)).toEqual([['u/#']]);
      expect(res).toEqual({ err: undefined, codes: version === 5 ? [0] : [] });
      expect(t.client.subscriptions()).toEqual([]);
      expect(t.client.isIdle()).toBe(true);
      t.broker.send({ type: PacketType.PUBLISH, topic: 'u/1', payload: te.encode('x'), qos: 0, retain: false, dup: false });
      t.clock.runFor(10);
      expect(got).toEqual([]);
      expect(t.errors).toEqual([]);
    });
  }

  it('an UNSUBACK that does not come in time is a timeout; a SUBACK for it is a protocol error', () => {
    const t = setup({ version: 4, ackTimeoutMs: 5000 }, { autoAck: false });
    t.client.start();
    t.clock.runFor(10);
    unsubscribe(t.client, 'x');
    t.clock.runFor(5000 - 1);
    expect(t.errors).toEqual([]);
    t.clock.runFor(1);
    expect(t.errors.map((e) => e.code + ' ' + e.message)).toEqual(['timeout no UNSUBACK']);
    t.clock.runUntil(() => t.client.state === 'connected', 5 * 60_000);
    t.clock.runFor(10);
    const u = t.broker.of(PacketType.UNSUBSCRIBE) as Array<Extract<Packet, { type: PacketType.UNSUBSCRIBE }>>;
    expect(u.length).toBe(2); // sent again with the next connection
    t.broker.send({ type: PacketType.SUBACK, packetId: u[1].packetId, reasonCodes: [0] });
    t.clock.runFor(10);
    expect(t.errors[1].code).toBe('protocol');
  });
});

describe('client: construction', () => {
  it('refuses options without a client id or a broker (programmer errors, at construction)', () => {
    const clock = new VirtualClock();
    const log = new MemoryLog();
    const hal = { scheduler: new Scheduler(clock, clock, log), transport: new MockNetwork(clock).transport(), random: new SeededRandom(1), log };
    expect(() => new Client({ ...clientDefaults(), brokers: [{ host: 'b', port: 1 }] } as unknown as ClientOptions, hal)).toThrow(/clientId/);
    expect(() => new Client({ ...clientDefaults(), clientId: 'x', brokers: [] }, hal)).toThrow(/broker/);
  });
});
