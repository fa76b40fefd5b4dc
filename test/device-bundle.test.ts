// The device bundles of the example boards, exactly as `npm run build -- --board` makes them
// (minified, property names mangled, run at the global scope), booted in a fake Espruino
// (test/helpers/fake-espruino.ts) in virtual time. The Espruino Linux interpreter can only run the
// host board; this is where the Wi-Fi + TLS and the cellular paths of the REAL bundles run: every
// name handed to or read from Espruino (Wifi.connect's password, tls.connect's ca, Serial.setup's
// rx/tx, ...) must have survived the mangling, and the MQTT bytes must be right (checked with
// mqtt-packet, an independent codec).
import mqtt from 'mqtt-packet';
import type { Packet } from 'mqtt-packet';
import { join } from 'node:path';
import { runInContext, createContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { deviceBundle } from './helpers/device-bundle';
import { FakeEspruino, bytesToBin } from './helpers/fake-espruino';

const ROOT = join(__dirname, '..');
const bundleFor = (board: string): Promise<string> => deviceBundle(join(ROOT, board), join(ROOT, 'boards/secrets.example.json'));

/** Boots a bundle in a fake Espruino: its globals are the fake's, as on a board. */
function boot(js: string, fake: FakeEspruino): string[] {
  const lines: string[] = [];
  const g: Record<string, unknown> = {
    ...fake.env,
    // An interpreter without unicode strings (strings are bytes; the test's text is ASCII).
    E: { ...fake.E, isUTF8: () => false, asUTF8: (x: string) => x },
    console: { log: (s: string) => lines.push(String(s)) },
    getSerial: () => '30aea4c1-2d3e',
    process: { memory: () => ({ usage: 1000, total: 16384 }) },
  };
  g.global = g;
  const ctx = createContext(g);
  runInContext(js, ctx);
  return lines;
}

/** The packets the fake broker received, parsed by mqtt-packet. */
function parse(bin: string, version: 4 | 5): Packet[] {
  const packets: Packet[] = [];
  const p = mqtt.parser({ protocolVersion: version });
  p.on('packet', (x: Packet) => packets.push(x));
  p.on('error', (e: Error) => {
    throw e;
  });
  p.parse(Buffer.from(bin, 'latin1'));
  return packets;
}

function send(conn: { send(d: string): void }, packet: Record<string, unknown>, version: 4 | 5): void {
  conn.send(bytesToBin(new Uint8Array(mqtt.generate(packet as unknown as Packet, { protocolVersion: version }))));
}

describe('the Wi-Fi device bundle (boards/wifi-sensor.json: MQTT 5, TLS, two brokers)', () => {
  let js: string;
  beforeAll(async () => {
    js = await bundleFor('boards/wifi-sensor.json');
  }, 60_000);

  it('joins the Wi-Fi, opens TLS with the CA, CONNECTs with the board settings, subscribes and publishes', () => {
    const fake = new FakeEspruino();
    fake.net.hosts.push('mqtt.example.com');
    const server = fake.tls.listen('mqtt.example.com', 8883);
    const lines = boot(js, fake);
    fake.run(10);
    // Wifi: the ssid and password from the board and the secrets, power save as configured.
    expect(fake.wifi.connects).toEqual([{ ssid: 'greenhouse', options: { password: 'example-wifi-password' } }]);
    expect(fake.wifi.configs).toEqual([{ powersave: 'min' }]);
    fake.run(200);
    // TLS to the first broker, with the board's CA (as DER).
    expect(fake.net.sockets).toHaveLength(1);
    const opts = fake.net.sockets[0].connectOptions;
    expect(opts.host).toBe('mqtt.example.com');
    expect(opts.port).toBe(8883);
    expect(typeof opts.ca).toBe('string');
    expect((opts.ca as string).length).toBeGreaterThan(300);
    expect(opts.ca as string).not.toContain('BEGIN CERTIFICATE');
    fake.run(50);
    const conn = server.conns[0];
    const [connect] = parse(conn.received, 5) as unknown as Array<Record<string, unknown>>;
    expect(connect).toMatchObject({
      cmd: 'connect',
      protocolVersion: 5,
      clientId: 'wren-30aea4c12d3e',
      clean: false,
      username: 'greenhouse-3',
      keepalive: 300, // the board's idle keep-alive: the device boots idle
      will: { topic: 'wren/greenhouse-3/status', qos: 1, retain: true },
    });
    expect(String((connect as { password: Buffer }).password)).toBe('example-broker-password');
    expect((connect as { properties: { sessionExpiryInterval: number } }).properties.sessionExpiryInterval).toBeGreaterThanOrEqual(7200);
    expect(String((connect as { will: { payload: Buffer } }).will.payload)).toBe('offline');
    // CONNACK -> the board's subscription and the demo's first reading.
    conn.received = '';
    send(conn, { cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: {} }, 5);
    fake.run(500);
    const after = parse(conn.received, 5) as unknown as Array<Record<string, unknown>>;
    const sub = after.find((p) => p.cmd === 'subscribe') as { subscriptions: Array<{ topic: string; qos: number }> } | undefined;
    expect(sub?.subscriptions).toEqual([expect.objectContaining({ topic: 'wren/greenhouse-3/cmd', qos: 1 })]);
    const pub = after.find((p) => p.cmd === 'publish' && String(p.topic).endsWith('/reading')) as { qos: number; payload: Buffer } | undefined;
    expect(pub?.qos).toBe(1);
    expect(JSON.parse(String(pub?.payload))).toEqual({ t: expect.any(Number), v: expect.any(Number) });
    expect(lines.some((l) => l.startsWith('wren: state connected'))).toBe(true);
    // Everything written to the socket was a string (Espruino would send a Uint8Array as "48,128").
    expect(fake.net.sockets[0].writes.every((w) => typeof w === 'string')).toBe(true);
    // The session lives in Storage.
    expect(fake.requires).toContain('Storage');
  });
});

describe('the cellular device bundle (boards/cellular-tracker.json: MQTT 3.1.1, SIM7000)', () => {
  it('sets up the modem UART from the board and starts the AT dialogue', async () => {
    const js = await bundleFor('boards/cellular-tracker.json');
    expect(js).not.toContain('setConfig'); // no Wi-Fi driver in a cellular bundle
    const fake = new FakeEspruino();
    boot(js, fake);
    fake.run(5000);
    expect(fake.serial2.setups.length).toBeGreaterThanOrEqual(1);
    const [baud, uart] = fake.serial2.setups[0];
    expect(baud).toBeGreaterThan(0);
    expect(uart).toHaveProperty('rx');
    expect(uart).toHaveProperty('tx');
    expect(fake.serial2.written.join('')).toContain('AT');
  }, 60_000);
});
