// board.json validation: every example board is valid; every kind of mistake is reported with its field.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clientDefaults } from '../firmware/client/index';
import { clientOptionsFor, validateBoard } from '../firmware/config/index';

const read = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

describe('board.json', () => {
  for (const f of ['board.json', 'boards/wifi-sensor.json', 'boards/cellular-tracker.json']) {
    it(f + ' is valid', () => {
      const r = validateBoard(read(f));
      expect(r.errors).toEqual([]);
      expect(r.board?.device).toBeTruthy();
    });
  }

  it('fills defaults and maps to client options', () => {
    const r = validateBoard(read('board.json'));
    const o = clientOptionsFor(r.board!);
    expect(o.clientId).toBe('wren-desk-1');
    expect(o.keepAliveSec).toBe(300);
    expect(o.pingTimeoutMs).toBe(10000);
    expect(o.backoff).toEqual({ baseMs: 1000, capMs: 300000, factor: 2, stableAfterMs: 60000 });
    expect(o.queue).toEqual({ maxMessages: 100, maxBytes: 16384, overflow: 'drop-oldest-qos0' });
    expect(new TextDecoder().decode(o.will!.payload)).toBe('offline');
    expect(o.will!.topic).toBe('wren/desk-1/status');
    // every client option is set: the board's, or the client's default (pingJitter, sessionName)
    expect(Object.keys(clientDefaults()).filter((k) => (o as unknown as Record<string, unknown>)[k] === undefined)).toEqual([]);
    expect(o.pingJitter).toBe(clientDefaults().pingJitter);
    expect(o.sessionName).toBe(clientDefaults().sessionName);
  });

  it('clamps the declared keep-alive to the broker cap', () => {
    const b = read('boards/wifi-sensor.json');
    b.keepAlive.maxSec = 200;
    const o = clientOptionsFor(validateBoard(b).board!, 'a1b2c3d4e5f6');
    expect(o.keepAliveSec).toBe(200);
    expect(o.clientId).toBe('wren-a1b2c3d4e5f6');
  });

  it('reports every problem, each naming its field', () => {
    const r = validateBoard({
      device: '',
      brokers: [{ host: 'h', port: 70000 }, 'x'],
      mqtt: { version: 6, clean: 'yes', maxInflight: 1.5 },
      keepAlive: { activeSec: 600, idleSec: 300, pingTimout: 10 },
      queue: { overflow: 'drop-newest' },
      transport: { type: 'wifi', apn: 'x' },
    });
    expect(r.board).toBeUndefined();
    const text = r.errors.join('\n');
    for (const want of [
      'device: must be a non-empty string',
      'clientId: missing',
      'brokers[0].port: 70000 is out of range 1..65535',
      'brokers[1]: must be an object',
      'mqtt.version: must be one of auto, 4, 5, got 6',
      'mqtt.clean: must be true or false',
      'mqtt.maxInflight: must be a whole number',
      'keepAlive.pingTimout: unknown setting',
      'queue.overflow: must be one of reject, drop-oldest-qos0',
      'transport.apn: only for a cellular transport',
      'transport.ssid: missing',
      'keepAlive.activeSec: must not exceed keepAlive.idleSec',
    ]) {
      expect(text).toContain(want);
    }
  });

  it('refuses a non-object', () => {
    expect(validateBoard([]).errors).toEqual(['board.json: must be a JSON object']);
  });
});

describe('README board.json reference', () => {
  it('is the table generated from the schema (it cannot drift)', async () => {
    const { referenceTable } = await import('../tools/board-reference');
    expect(fs.readFileSync('README.md', 'utf8')).toContain(referenceTable());
  });
});
