// A device on the Node HAL (real sockets, real clock) for tests against real brokers.
import { Client, clientDefaults } from '../../firmware/client/index';
import type { ClientError, ClientOptions } from '../../firmware/client/index';
import { Scheduler } from '../../firmware/scheduler/index';
import type { Storage } from '../../hal/types';
import { MemoryLog, MemoryStorage } from '../../hal/mock/index';
import { NodeClock, NodeRandom, NodeTimerHost, NodeTransport } from '../../hal/node/index';

const devices: Device[] = [];

export function powerCutAll(): void {
  for (const d of devices) d.powerCut();
  devices.length = 0;
}

export interface Device {
  client: Client;
  sched: Scheduler;
  log: MemoryLog;
  errors: ClientError[];
  received: Array<{ topic: string; payload: string; qos: number }>;
  /** Power cut: the loop stops dead, the socket is dropped without DISCONNECT. */
  powerCut(): void;
}

export function device(b: { host: string; port: number }, over: Partial<ClientOptions>, storage?: Storage): Device {
  const log = new MemoryLog();
  const sched = new Scheduler(new NodeClock(), new NodeTimerHost(true), log);
  const transport = new NodeTransport();
  const client = new Client(
    {
      ...clientDefaults(),
      clientId: 'dev',
      brokers: [{ host: b.host, port: b.port }],
      clean: false,
      backoff: { baseMs: 50, capMs: 400, factor: 2, stableAfterMs: 2000 },
      queue: { maxMessages: 5000, maxBytes: 1 << 20, overflow: 'reject' },
      maxInflight: 32,
      ...over,
    },
    { scheduler: sched, transport, storage: storage ?? new MemoryStorage(), random: new NodeRandom(), log },
  );
  const d: Device = {
    client,
    sched,
    log,
    errors: [],
    received: [],
    powerCut() {
      sched.halt();
      transport.close();
    },
  };
  client.on('error', (e) => d.errors.push(e));
  client.on('message', (topic, payload, p) => d.received.push({ topic, payload: Buffer.from(payload).toString(), qos: p.qos }));
  devices.push(d);
  return d;
}

export async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function publishAcked(c: Client, topic: string, payload: string, qos: 0 | 1 | 2): Promise<void> {
  return new Promise((resolve, reject) => {
    const err = c.publish(topic, payload, { qos }, (e) => (e ? reject(new Error(e.message)) : resolve()));
    if (err) reject(new Error(err.message));
  });
}

