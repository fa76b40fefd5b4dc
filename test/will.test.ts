// Sleep done right, against a real broker (mosquitto, MQTT 5, real sockets, short intervals): a
// planned sleep never fires the will; a device that misses its check-in does.
import { afterAll, expect, it } from 'vitest';
import { Client, clientDefaults } from '../firmware/client/index';
import { Device, deviceDefaults } from '../firmware/device/index';
import { Scheduler } from '../firmware/scheduler/index';
import { MemoryLog, MemoryStorage, MockPower } from '../hal/mock/index';
import type { WakeCause } from '../hal/types';
import { NodeClock, NodeRandom, NodeTimerHost, NodeTransport } from '../hal/node/index';
import { describeMosquitto, startMosquitto } from './helpers/brokers';
import type { BrokerHandle } from './helpers/brokers';
import { connectPeer } from './helpers/independent-client';
import type { Peer } from './helpers/independent-client';
import { until } from './helpers/device';

const brokers: BrokerHandle[] = [];
const peers: Peer[] = [];
const scheds: Scheduler[] = [];
afterAll(async () => {
  for (const s of scheds) s.halt();
  for (const p of peers) p.destroy();
  for (const b of brokers) await b.stop().catch(() => undefined);
});

const CHECK_IN_SEC = 2;
const GRACE_SEC = 1;

function boot(b: BrokerHandle, flash: MemoryStorage, wake: WakeCause) {
  const log = new MemoryLog();
  const sched = new Scheduler(new NodeClock(), new NodeTimerHost(true), log);
  scheds.push(sched);
  const power = new MockPower({ wakeCause: wake });
  const client = new Client(
    {
      ...clientDefaults(),
      clientId: 'sleeper',
      brokers: [{ host: b.host, port: b.port }],
      version: 5,
      clean: false,
      will: { topic: 'sleeper/will', payload: new TextEncoder().encode('missed check-in'), qos: 1, retain: false },
    },
    { scheduler: sched, transport: new NodeTransport(), storage: flash, random: new NodeRandom(), log },
  );
  const device = new Device(client, { scheduler: sched, power, storage: flash, random: new NodeRandom(), log }, {
    ...deviceDefaults(),
    transport: 'host',
    sleepGraceSec: GRACE_SEC,
    lingerMs: 200,
    modes: { activeKeepAliveSec: 60, idleKeepAliveSec: 300, sleepCheckInSec: CHECK_IN_SEC, idleAfterSec: 1, sleepAfterSec: 1, lowBatteryMv: 0 },
  });
  let sleptAt = 0;
  device.on('sleep', () => (sleptAt = Date.now()));
  return { device, client, power, log, sleptAt: () => sleptAt };
}

describeMosquitto('will and sleep (mosquitto, MQTT 5)', () => {
  it('a planned sleep and a timely check-in never fire the will; a missed check-in fires it after check-in + grace', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    const watcher = await connectPeer({ host: b.host, port: b.port, clientId: 'will-watcher', version: 5 });
    peers.push(watcher);
    await watcher.subscribe('sleeper/will', 1);
    const flash = new MemoryStorage();

    // Boot, go idle after 1 s, to sleep after 1 more: re-CONNECT with the will delay, DISCONNECT 0x04.
    const a = boot(b, flash, 'power-on');
    a.device.start();
    await until(() => a.power.sleeps.length === 1, 10_000, 'first sleep');
    // Wake on time (the check-in period), sync, sleep again.
    await new Promise((r) => setTimeout(r, CHECK_IN_SEC * 1000));
    const c = boot(b, flash, 'timer');
    expect(c.device.mode).toBe('sleep');
    c.device.start();
    await until(() => c.power.sleeps.length === 1, 10_000, 'check-in and sleep again');
    expect(c.device.checkIns).toBe(1);
    const secondSleep = c.sleptAt();
    // Until now the will never fired: the check-in came before check-in + grace.
    expect(watcher.messages.length).toBe(0);

    // Now the device misses its check-in (it never wakes): the will fires check-in + grace after it left.
    await watcher.waitFor((ms) => ms.length > 0, (CHECK_IN_SEC + GRACE_SEC) * 1000 + 4000);
    const firedAfter = Date.now() - secondSleep;
    console.log(`will fired ${firedAfter} ms after the device left for a ${CHECK_IN_SEC} s sleep (will delay ${CHECK_IN_SEC + GRACE_SEC} s)`);
    expect(watcher.messages.map((m) => m.payload.toString())).toEqual(['missed check-in']);
    expect(firedAfter).toBeGreaterThanOrEqual((CHECK_IN_SEC + GRACE_SEC) * 1000 - 300);
  }, 30_000);
});
