// Power modes driving the heartbeat, and the sleep / check-in cycle, in virtual time with exact
// timings: active -> idle -> sleep, the goodbye (3.1.1 retained status; v5 DISCONNECT 0x04 with a
// will delay), deep sleep through the Power HAL, the wake by reboot on the same flash, the check-in
// that syncs and sleeps again, and traffic that keeps the device awake.
import { describe, expect, it } from 'vitest';
import { Client, clientDefaults } from '../firmware/client/index';
import type { ClientOptions } from '../firmware/client/index';
import { Device, deviceDefaults } from '../firmware/device/index';
import type { DeviceOptions } from '../firmware/device/index';
import { PacketType } from '../firmware/mqtt/types';
import type { Packet, PublishPacket } from '../firmware/mqtt/types';
import { Scheduler } from '../firmware/scheduler/index';
import { MemoryLog, MemoryStorage, MockNetwork, MockPower, ScriptedLink, SeededRandom, VirtualClock } from '../hal/mock/index';
import type { WakeCause } from '../hal/types';
import { MockBroker } from './helpers/mock-broker';

const te = new TextEncoder();
const td = new TextDecoder();

const MODES = { activeKeepAliveSec: 60, idleKeepAliveSec: 300, sleepCheckInSec: 1800, idleAfterSec: 120, sleepAfterSec: 600, lowBatteryMv: 3400 };

function world(version: 4 | 5) {
  const clock = new VirtualClock();
  const net = new MockNetwork(clock);
  const broker = new MockBroker(net, 'broker', 1883, () => clock.now());
  const flash = new MemoryStorage();
  interface Boot {
    log: MemoryLog;
    sched: Scheduler;
    power: MockPower;
    client: Client;
    device: Device;
    modes: string[];
  }
  const boots: Boot[] = [];
  function boot(wake: WakeCause, over?: Partial<DeviceOptions>, clientOver?: Partial<ClientOptions>, maxDeepSleepMs?: number): Boot {
    const log = new MemoryLog();
    const sched = new Scheduler(clock, clock, log);
    const power = new MockPower({ wakeCause: wake, clock, batteryMv: 3900, maxDeepSleepMs });
    const options: ClientOptions = {
      ...clientDefaults(),
      clientId: 'sleepy',
      brokers: [{ host: 'broker', port: 1883 }],
      version,
      clean: false,
      pingJitter: 0,
      will: { topic: 'sleepy/will', payload: te.encode('gone'), qos: 1, retain: false },
      ...clientOver,
    };
    const client = new Client(options, { scheduler: sched, transport: net.transport(), storage: flash, random: new SeededRandom(5), log });
    const device = new Device(client, { scheduler: sched, power, storage: flash, random: new SeededRandom(6), log }, {
      ...deviceDefaults(),
      modes: MODES,
      transport: 'wifi',
      statusTopic: 'sleepy/status',
      ...over,
    });
    const modes: string[] = [];
    device.on('mode', (c: { from: string; to: string; reason: string; atMs: number }) => modes.push(c.from + '>' + c.to + ':' + c.reason + '@' + c.atMs));
    const b = { log, sched, power, client, device, modes };
    boots.push(b);
    return b;
  }
  return { clock, net, broker, flash, boot, boots };
}

const pings = (broker: MockBroker, conn?: number) =>
  broker.received.filter((r) => r.packet.type === PacketType.PINGREQ && (conn === undefined || r.conn === conn)).map((r) => r.at);

describe('device: power modes drive the heartbeat', () => {
  it('pings every 60 s while active, every 300 s when idle (same connection), and idles at exactly idleAfterSec', () => {
    const w = world(4);
    const d = w.boot('power-on', { modes: { ...MODES, sleepAfterSec: 0 } });
    d.device.start();
    w.clock.runFor(120_000 - 1);
    expect(d.device.mode).toBe('active');
    w.clock.runFor(1);
    expect(d.device.mode).toBe('idle');
    expect(d.modes).toEqual(['active>idle:idle-timeout@120000']);
    w.clock.runFor(1_500_000 - 120_000);
    const at = pings(w.broker);
    expect(at.filter((t) => t < 120_000)).toEqual([60_000]); // active: every 60 s
    const idle = at.filter((t) => t > 120_000);
    expect(idle.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < idle.length; i++) expect(idle[i] - idle[i - 1]).toBe(300_000); // idle: every 300 s
    expect(w.broker.peers.length).toBe(1); // never reconnected for a mode change
    const c = w.broker.of(PacketType.CONNECT)[0] as Extract<Packet, { type: PacketType.CONNECT }>;
    expect(c.keepAliveSec).toBe(300); // declared: the idle interval
  });

  it('application traffic returns an idle device to active (60 s pings again)', () => {
    const w = world(4);
    const d = w.boot('power-on', { modes: { ...MODES, sleepAfterSec: 0 } });
    d.device.start();
    w.clock.runFor(200_000);
    expect(d.device.mode).toBe('idle');
    d.client.publish('sleepy/data', 'x', { qos: 1 });
    expect(d.device.mode).toBe('active');
    const t0 = w.clock.now();
    w.clock.runFor(61_000);
    const after = pings(w.broker).filter((t) => t > t0);
    expect(after[0] - t0).toBeLessThanOrEqual(60_000);
  });

  it('the declared keep-alive obeys the broker cap (maxKeepAliveSec)', () => {
    const w = world(4);
    const d = w.boot('power-on', { maxKeepAliveSec: 200 });
    d.device.start();
    w.clock.runFor(10);
    const c = w.broker.of(PacketType.CONNECT)[0] as Extract<Packet, { type: PacketType.CONNECT }>;
    expect(c.keepAliveSec).toBe(200);
  });

  it('a low battery sends the device to sleep', () => {
    const w = world(4);
    const d = w.boot('power-on');
    d.device.start();
    w.clock.runFor(10_000);
    d.device.battery(3300);
    w.clock.runFor(10_000);
    expect(d.modes[0]).toMatch(/^active>sleep:low-battery/);
    expect(d.power.sleeps.map((s) => s.mode)).toEqual(['deep']);
  });
});

describe('device: sleep done right (Wi-Fi)', () => {
  it('3.1.1: idle -> sleep at exactly sleepAfterSec, retained "asleep" status, clean DISCONNECT, deep sleep for the check-in', () => {
    const w = world(4);
    const d = w.boot('power-on');
    d.device.start();
    w.clock.runFor(720_000 - 1);
    expect(d.device.mode).toBe('idle');
    w.clock.runFor(1);
    expect(d.device.mode).toBe('sleep');
    expect(d.modes).toEqual(['active>idle:idle-timeout@120000', 'idle>sleep:sleep-timeout@720000']);
    w.clock.runFor(10_000);
    const statuses = (w.broker.of(PacketType.PUBLISH) as PublishPacket[]).filter((p) => p.topic === 'sleepy/status');
    expect(statuses.map((p) => [td.decode(p.payload), p.retain])).toEqual([
      ['{"state":"online"}', true],
      ['{"state":"asleep","checkInSec":1800}', true],
    ]);
    expect(w.broker.of(PacketType.DISCONNECT).length).toBe(1);
    expect(d.power.sleeps).toEqual([{ mode: 'deep', durationMs: 1_800_000, atMs: expect.any(Number) }]);
    expect(d.sched.halted).toBe(true);
  });

  it('wakes by reboot on the same flash, checks in (session resumed, queue delivered), and sleeps again', () => {
    const w = world(4);
    const a = w.boot('power-on');
    a.device.start();
    w.clock.runFor(730_000); // asleep
    expect(a.power.sleeps.length).toBe(1);
    w.clock.runFor(1_800_000); // the deep sleep
    const b = w.boot('timer');
    expect(b.device.mode).toBe('sleep'); // restored from flash
    b.device.start();
    w.clock.runFor(60_000);
    expect(b.device.checkIns).toBe(1);
    const conn2 = w.broker.received.filter((r) => r.conn === 1).map((r) => r.packet);
    expect(conn2[0].type).toBe(PacketType.CONNECT);
    expect((conn2[0] as { clean: boolean }).clean).toBe(false);
    expect(b.power.sleeps.length).toBe(1); // asleep again
    expect(w.broker.of(PacketType.DISCONNECT).length).toBe(2);
  });

  it('an inbound application message during a check-in keeps the device awake (active)', () => {
    const w = world(4);
    const a = w.boot('power-on');
    a.client.subscribe('sleepy/cmd', 1, () => undefined);
    a.device.start();
    w.clock.runFor(730_000 + 1_800_000);
    const b = w.boot('timer');
    b.client.subscribe('sleepy/cmd', 1, () => undefined);
    b.device.start();
    w.clock.runFor(100);
    w.broker.send({ type: PacketType.PUBLISH, topic: 'sleepy/cmd', payload: te.encode('wake up'), qos: 1, retain: false, dup: false, packetId: 9 });
    w.clock.runFor(60_000);
    expect(b.device.mode).toBe('active');
    expect(b.power.sleeps.length).toBe(0);
    expect(b.client.state).toBe('connected');
  });

  it('v5: a sleeping CONNECT carries Will Delay = check-in + grace, and leaves with DISCONNECT 0x04', () => {
    const w = world(5);
    const a = w.boot('power-on');
    a.device.start();
    w.clock.runFor(730_000);
    // Entering sleep from a live connection re-CONNECTs once with the long will delay.
    const connects = w.broker.of(PacketType.CONNECT) as Array<Extract<Packet, { type: PacketType.CONNECT }>>;
    expect(connects.length).toBe(2);
    expect(connects[0].will?.properties?.willDelayInterval).toBeUndefined();
    expect(connects[1].will?.properties?.willDelayInterval).toBe(1800 + 120);
    expect(connects[1].properties?.sessionExpiryInterval).toBeGreaterThan(1800 + 120);
    const d = w.broker.of(PacketType.DISCONNECT) as Array<{ reasonCode?: number }>;
    expect(d.map((x) => x.reasonCode)).toEqual([0, 0x04]);
    expect(a.power.sleeps.length).toBe(1);
  });

  it('persists backoff and learned limits across the deep sleep', () => {
    const w = world(4);
    const a = w.boot('power-on');
    a.device.start();
    a.device.paths.died('', 250, w.clock.now());
    w.clock.runFor(730_000);
    const b = w.boot('timer');
    expect(JSON.stringify(b.device.paths.recs)).toBe(JSON.stringify(a.device.paths.recs));
    expect(b.client.rotation.toJSON()).toEqual(a.client.rotation.toJSON());
  });
});

describe('device: the radio link', () => {
  it('a link-up event makes the client try at once, and the radio has its own re-attach backoff', () => {
    const w = world(4);
    const log = new MemoryLog();
    const sched = new Scheduler(w.clock, w.clock, log);
    const link = new ScriptedLink(w.clock, { networkId: 'greenhouse', autoUpMs: 100 });
    const client = new Client(
      { ...clientDefaults(), clientId: 'l', brokers: [{ host: 'broker', port: 1883 }], version: 4, backoff: { baseMs: 60_000, capMs: 60_000, factor: 2, stableAfterMs: 1000 } },
      { scheduler: sched, transport: w.net.transport(), storage: new MemoryStorage(), random: new SeededRandom(1), log },
    );
    const device = new Device(client, { scheduler: sched, power: new MockPower(), link, random: new SeededRandom(2), log }, { ...deviceDefaults(), modes: MODES, transport: 'wifi' });
    device.start();
    w.clock.runFor(1000);
    expect(client.state).toBe('connected');
    w.broker.last.reset();
    w.clock.runFor(10);
    expect(client.state).toBe('waiting'); // a long backoff ahead
    link.lose('lost');
    w.clock.runFor(5000); // the radio re-attaches (its own backoff), link-up cuts the wait short
    expect(client.state).toBe('connected');
  });
});

describe('device: learned path limit (a NAT that drops idle bindings)', () => {
  it('learns the idle limit of a network, keeps pinging under it, and persists it', () => {
    const NAT_IDLE_MS = 200_000;
    const w = world(4);
    const log = new MemoryLog();
    const sched = new Scheduler(w.clock, w.clock, log);
    const link = new ScriptedLink(w.clock, { networkId: 'carrier-nat', autoUpMs: 10 });
    const client = new Client(
      { ...clientDefaults(), clientId: 'nat', brokers: [{ host: 'broker', port: 1883 }], version: 4, pingJitter: 0, backoff: { baseMs: 1000, capMs: 5000, factor: 2, stableAfterMs: 1000 } },
      { scheduler: sched, transport: w.net.transport(), storage: w.flash, random: new SeededRandom(1), log },
    );
    const device = new Device(
      client,
      { scheduler: sched, power: new MockPower(), link, storage: w.flash, random: new SeededRandom(2), log },
      { ...deviceDefaults(), modes: { ...MODES, sleepAfterSec: 0 }, transport: 'wifi' },
    );
    const deaths: number[] = [];
    client.on('dead', (idle: number) => deaths.push(idle));
    // The NAT: a binding idle for more than 200 s is dropped silently (the TCP stays "open").
    const natTick = () => {
      for (let i = 0; i < w.broker.peers.length; i++) {
        if (w.clock.now() - w.broker.activity[i] > NAT_IDLE_MS) w.broker.peers[i].blackhole();
      }
      w.clock.set(1000, natTick);
    };
    w.clock.set(1000, natTick);
    device.start();
    w.clock.runFor(6 * 3600_000);
    const cap = device.paths.capFor('carrier-nat', w.clock.now());
    expect(deaths.length).toBeGreaterThanOrEqual(2);
    expect(cap).toBeDefined();
    expect(cap!).toBeLessThanOrEqual(NAT_IDLE_MS / 1000);
    // Once learned, held connections survive: no death in the last 2 hours.
    const before = deaths.length;
    w.clock.runFor(2 * 3600_000);
    expect(deaths.length).toBe(before);
    expect(JSON.stringify(device.paths.recs)).toContain('carrier-nat');
    console.log(`learned path limit: ${deaths.length} deaths at idle ${deaths.join(', ')} s, cap ${cap} s (NAT drops after ${NAT_IDLE_MS / 1000} s)`);
  });
});

describe('device: cellular sleep', () => {
  it('holds the connection, declares the check-in keep-alive, and turns the modem PSM on (off again when active)', () => {
    const w = world(4);
    const log = new MemoryLog();
    const sched = new Scheduler(w.clock, w.clock, log);
    const link = new ScriptedLink(w.clock, { networkId: 'iot.apn', autoUpMs: 10, kind: 'cellular' });
    const psm: Array<[number, number]> = [];
    (link as unknown as { setPsm: (t: number, a: number) => void }).setPsm = (t, a) => psm.push([t, a]);
    const client = new Client(
      { ...clientDefaults(), clientId: 'cell', brokers: [{ host: 'broker', port: 1883 }], version: 4, pingJitter: 0 },
      { scheduler: sched, transport: w.net.transport(), storage: w.flash, random: new SeededRandom(1), log },
    );
    const power = new MockPower();
    const device = new Device(client, { scheduler: sched, power, link, storage: w.flash, random: new SeededRandom(2), log }, { ...deviceDefaults(), modes: MODES, transport: 'cellular' });
    device.start();
    w.clock.runFor(720_000 + 1000);
    expect(device.mode).toBe('sleep');
    expect(power.sleeps).toEqual([]); // no deep sleep: the connection is held
    expect(client.state).toBe('connected');
    const connects = w.broker.of(PacketType.CONNECT) as Array<Extract<Packet, { type: PacketType.CONNECT }>>;
    expect(connects.map((c) => c.keepAliveSec)).toEqual([300, 1800]);
    expect(psm).toEqual([[1800, 10]]);
    device.wake();
    expect(psm).toEqual([[1800, 10], [0, 0]]);
  });
});

describe('device: a check-in period longer than the hardware can sleep at once', () => {
  it('sleeps in parts (radio off, no connection) and checks in only when the whole period is over', () => {
    const w = world(4);
    const CAP = 1_000_000; // like the ESP32's 35.79 min, smaller here: the 1800 s check-in takes 2 parts
    const a = w.boot('power-on', undefined, undefined, CAP);
    a.device.start();
    w.clock.runFor(730_000);
    expect(a.power.sleeps.map((s) => s.durationMs)).toEqual([1_000_000]);
    const connectsBefore = w.broker.of(PacketType.CONNECT).length;
    w.clock.runFor(1_000_000);
    const b = w.boot('timer', undefined, undefined, CAP);
    b.device.start();
    w.clock.runFor(10_000);
    expect(b.power.sleeps.map((s) => s.durationMs)).toEqual([800_000]); // the rest, at once
    expect(w.broker.of(PacketType.CONNECT).length).toBe(connectsBefore); // no radio, no connection
    expect(b.device.checkIns).toBe(0);
    w.clock.runFor(800_000);
    const c = w.boot('timer', undefined, undefined, CAP);
    c.device.start();
    w.clock.runFor(60_000);
    expect(c.device.checkIns).toBe(1);
    expect(w.broker.of(PacketType.CONNECT).length).toBe(connectsBefore + 1);
    expect(c.power.sleeps.map((s) => s.durationMs)).toEqual([1_000_000]); // and the next period starts
  });
});
