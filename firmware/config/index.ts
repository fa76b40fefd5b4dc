// board.json validation and defaults, generated from the FIELDS table, and the mapping from a board
// to the client's options. Every problem is reported (not just the first), each naming its field.

import { utf8Bytes } from '../client/index';
import type { ClientOptions } from '../client/index';
import type { DeviceOptions } from '../device/index';
import { FIELDS, TRANSPORT_ONLY } from './schema';
import type { Field } from './schema';

export { FIELDS };

export interface BoardTls {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

export interface Board {
  device: string;
  clientId: string;
  brokers: Array<{ host: string; port: number; tls?: BoardTls }>;
  mqtt: {
    version: 'auto' | '4' | '5';
    clean: boolean;
    sessionExpirySec: number;
    username?: string;
    password?: string;
    maxPacketSizeBytes: number;
    maxInflight: number;
    will?: { topic: string; payload: string; qos: 0 | 1 | 2; retain: boolean };
  };
  subscriptions: Array<{ topic: string; qos: 0 | 1 | 2 }>;
  keepAlive: {
    activeSec: number;
    idleSec: number;
    sleepCheckInSec: number;
    maxSec: number;
    pingTimeoutMs: number;
    idleAfterSec: number;
    sleepAfterSec: number;
    ackProbeMs: number;
    sleepGraceSec: number;
  };
  statusTopic: string;
  power: PowerModel;
  timeouts: { connectMs: number; subackMs: number };
  backoff: { baseMs: number; capMs: number; factor: number; stableAfterSec: number };
  queue: { maxMessages: number; maxBytes: number; overflow: 'reject' | 'drop-oldest-qos0' };
  transport: {
    type: 'wifi' | 'cellular' | 'host';
    ssid?: string;
    password?: string;
    powersave?: 'none' | 'min' | 'max';
    apn?: string;
    modem?: 'SIM7000' | 'SIM800';
    uart?: { port: string; baud: number; rx: string; tx: string };
    powerPin?: string;
    resetPin?: string;
  };
  battery?: { pin: string; divider: number; lowMv: number };
}

/** Power model figures (ESP32 on Wi-Fi by default). */
export interface PowerModel {
  deepSleepUa: number;
  idleConnectedMa: number;
  radioActiveMa: number;
  exchangeMs: number;
  reconnectMs: number;
  tlsOverheadBytes: number;
  batteryMah: number;
}

export interface BoardResult {
  board: Board | undefined;
  /** One line per problem: "field.path: what is wrong". */
  errors: string[];
}

function childrenOf(path: string): Field[] {
  const prefix = path === '' ? '' : path + '.';
  const out: Field[] = [];
  for (let i = 0; i < FIELDS.length; i++) {
    const p = FIELDS[i].path;
    if (p.indexOf(prefix) === 0 && p.length > prefix.length && p.substring(prefix.length).indexOf('.') < 0) out.push(FIELDS[i]);
  }
  return out;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'string' ? '"' + v + '"' : typeof v === 'object' ? 'an object' : String(v);
}

function checkValue(f: Field, v: unknown, where: string, errors: string[], schemaPath: string): unknown {
  switch (f.type) {
    case 'string':
      if (typeof v !== 'string' || v.length === 0) errors.push(where + ': must be a non-empty string, got ' + describe(v));
      return v;
    case 'bool':
      if (typeof v !== 'boolean') errors.push(where + ': must be true or false, got ' + describe(v));
      return v;
    case 'int':
    case 'number': {
      if (typeof v !== 'number' || v !== v || (f.type === 'int' && Math.floor(v) !== v)) {
        errors.push(where + ': must be ' + (f.type === 'int' ? 'a whole number' : 'a number') + ', got ' + describe(v));
        return v;
      }
      if ((f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max)) {
        errors.push(where + ': ' + v + ' is out of range ' + f.min + '..' + f.max);
      }
      return v;
    }
    case 'enum': {
      const s = typeof v === 'number' ? String(v) : v;
      if (typeof s !== 'string' || (f.values as string[]).indexOf(s) < 0) {
        errors.push(where + ': must be one of ' + (f.values as string[]).join(', ') + ', got ' + describe(v));
      }
      return s;
    }
    case 'object':
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        errors.push(where + ': must be an object, got ' + describe(v));
        return v;
      }
      return walk(schemaPath, v as { [k: string]: unknown }, where, errors);
    default: {
      if (!Array.isArray(v)) {
        errors.push(where + ': must be an array, got ' + describe(v));
        return v;
      }
      if (f.min !== undefined && v.length < f.min) errors.push(where + ': needs at least ' + f.min + ' entries');
      if (f.max !== undefined && v.length > f.max) errors.push(where + ': at most ' + f.max + ' entries');
      const out: unknown[] = [];
      for (let i = 0; i < v.length; i++) {
        const item = v[i];
        if (item === null || typeof item !== 'object' || Array.isArray(item)) {
          errors.push(where + '[' + i + ']: must be an object, got ' + describe(item));
          continue;
        }
        out.push(walk(schemaPath + '[]', item as { [k: string]: unknown }, where + '[' + i + ']', errors));
      }
      return out;
    }
  }
}

function walk(schemaPath: string, obj: { [k: string]: unknown }, where: string, errors: string[]): { [k: string]: unknown } {
  const fields = childrenOf(schemaPath);
  const out: { [k: string]: unknown } = {};
  const known: { [k: string]: boolean } = {};
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const key = f.path.substring(schemaPath === '' ? 0 : schemaPath.length + 1);
    known[key] = true;
    const at = where === '' ? key : where + '.' + key;
    let v = obj[key];
    if (v === undefined) {
      if (f.required) {
        errors.push(at + ': missing (' + f.doc + ')');
        continue;
      }
      if (f.dflt === undefined) continue;
      v = JSON.parse(JSON.stringify(f.dflt));
    }
    out[key] = checkValue(f, v, at, errors, f.path);
  }
  for (const k in obj) {
    if (!known[k]) errors.push((where === '' ? k : where + '.' + k) + ': unknown setting (see the board.json reference in README.md)');
  }
  return out;
}

/**
 * Validates a parsed board.json and fills in defaults. In a valid board, "{device}" in the client id
 * and the topics is already replaced by the device name, and board.subscriptions are the client's.
 */
export function validateBoard(raw: unknown): BoardResult {
  const errors: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { board: undefined, errors: ['board.json: must be a JSON object'] };
  }
  const b = walk('', raw as { [k: string]: unknown }, '', errors) as unknown as Board;
  const t = b.transport;
  if (t && typeof t === 'object' && typeof t.type === 'string') {
    for (const p in TRANSPORT_ONLY) {
      const key = p.substring('transport.'.length);
      const given = (raw as { transport: { [k: string]: unknown } }).transport[key] !== undefined;
      if (given && TRANSPORT_ONLY[p] !== t.type) errors.push(p + ': only for a ' + TRANSPORT_ONLY[p] + ' transport, this one is ' + t.type);
      if (TRANSPORT_ONLY[p] !== t.type) delete (t as { [k: string]: unknown })[key];
    }
    if (t.type === 'wifi' && !t.ssid) errors.push('transport.ssid: missing (a wifi transport needs the network name)');
    if (t.type === 'cellular' && !t.apn) errors.push('transport.apn: missing (a cellular transport needs the APN)');
    if (t.type === 'cellular' && !t.uart) errors.push('transport.uart: missing (a cellular transport needs the modem UART and pins)');
  }
  const k = b.keepAlive;
  if (k && k.activeSec > k.idleSec) errors.push('keepAlive.activeSec: must not exceed keepAlive.idleSec');
  if (b.backoff && b.backoff.baseMs > b.backoff.capMs) errors.push('backoff.baseMs: must not exceed backoff.capMs');
  if (errors.length) return { board: undefined, errors: errors };
  // "{device}" is replaced by the device name here, once (at build time for a device bundle); "{mac}"
  // in the client id is only known on the chip: clientOptionsFor() replaces it.
  const named = function (s: string): string {
    return s.split('{device}').join(b.device);
  };
  const w = b.mqtt.will;
  b.clientId = named(b.clientId);
  b.statusTopic = named(b.statusTopic);
  if (w) w.topic = named(w.topic);
  for (let i = 0; i < b.subscriptions.length; i++) b.subscriptions[i].topic = named(b.subscriptions[i].topic);
  return { board: b, errors: errors };
}

/**
 * The client options a board (from validateBoard()) asks for, TLS material already resolved to PEM
 * text: the board's mqtt section (its clean, sessionExpirySec, username, password and maxInflight have
 * the client's names; its other fields are overridden or unread), then the rest. The board sets every
 * option but pingJitter and sessionName, which take the client's defaults (clientDefaults(), not
 * called here: a device bundle need not carry the whole table for two values). The board's brokers
 * and queue have the client's shape: they are shared, not copied.
 */
export function clientOptionsFor(b: Board, mac?: string): ClientOptions {
  const m = b.mqtt;
  const k = b.keepAlive;
  const bo = b.backoff;
  const w = m.will;
  return Object.assign({ pingJitter: 0.2, sessionName: 'wren' } as Omit<ClientOptions, 'clientId' | 'brokers'>, m, {
    // the board's '4' and '5' are strings
    version: m.version === 'auto' ? 'auto' : (+m.version as 4 | 5),
    keepAliveSec: k.maxSec > 0 && k.idleSec > k.maxSec ? k.maxSec : k.idleSec,
    will: w && { topic: w.topic, payload: utf8Bytes(w.payload), qos: w.qos, retain: w.retain },
    maxPacketSize: m.maxPacketSizeBytes,
    connectTimeoutMs: b.timeouts.connectMs,
    pingTimeoutMs: k.pingTimeoutMs,
    ackProbeMs: k.ackProbeMs,
    ackTimeoutMs: b.timeouts.subackMs,
    backoff: { baseMs: bo.baseMs, capMs: bo.capMs, factor: bo.factor, stableAfterMs: bo.stableAfterSec * 1000 },
    queue: b.queue,
    clientId: b.clientId.replace('{mac}', mac || '000000000000'),
    brokers: b.brokers,
  });
}

/** The device (power modes, sleep) options a board asks for (the rest are the device's own constants). */
export function deviceOptionsFor(b: Board): DeviceOptions {
  const k = b.keepAlive;
  return {
    maxKeepAliveSec: k.maxSec,
    sleepGraceSec: k.sleepGraceSec,
    statusTopic: b.statusTopic,
    transport: b.transport.type,
    modes: {
      activeKeepAliveSec: k.activeSec,
      idleKeepAliveSec: k.idleSec,
      sleepCheckInSec: k.sleepCheckInSec,
      idleAfterSec: k.idleAfterSec,
      sleepAfterSec: k.sleepAfterSec,
      lowBatteryMv: b.battery ? b.battery.lowMv : 0,
    },
  };
}
