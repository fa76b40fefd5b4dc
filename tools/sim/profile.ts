// Day profiles (profiles/*.json): what the application does and what the broker sends, by time of day.
// The profile repeats every 24 h for runs longer than a day.
//
// {
//   "description": "one line shown in the report",
//   "events": [
//     { "at": "07:00", "type": "publish", "count": 6, "overMin": 15, "qos": 1, "bytes": 48,
//       "topic": "wren/{device}/data", "wake": true },
//     { "at": "03:10", "type": "command", "count": 1, "qos": 1, "bytes": 24, "topic": "wren/{device}/cmd" }
//   ]
// }
//
// at       "HH:MM" or "HH:MM:SS", time of day of the first message (required)
// type     "publish": the application publishes; "command": the broker side sends to the device (required)
// count    messages in the burst (default 1), spread evenly: message i at at + i x overMin / count
// overMin  length of the burst in minutes (default 0: all at once)
// qos      0, 1 or 2 (default 1)
// bytes    payload size (default 32, at least 12: the payload carries "seq:N;" for the delivery check)
// topic    default "wren/{device}/data" (publish) or the board's first subscription (command);
//          "{device}" is the board's device name. A command's topic must match a board subscription.
// wake     publish only. false (default): a reading. Due while the device is in deep sleep, it is taken
//          and published at the next wake (the application runs only when the device does); published
//          in sleep mode (a check-in) it is quiet ({quiet: true}): the device syncs it and sleeps again;
//          published while the device is active or idle it is application traffic (keeps it active).
//          true: an event that wakes the device at once (a button or a sensor interrupt: a reboot with
//          wake cause "external") and is application traffic: the device goes active.
// A command for a device in deep sleep is held by the broker (persistent session) and delivered at
// the device's next connection.

export interface ProfileEvent {
  atSec: number;
  type: 'publish' | 'command';
  count: number;
  overMin: number;
  qos: 0 | 1 | 2;
  bytes: number;
  topic: string;
  wake: boolean;
}

export interface Profile {
  description: string;
  events: ProfileEvent[];
}

/** One message of a burst, at its absolute time in the run. */
export interface Scheduled {
  atMs: number;
  type: 'publish' | 'command';
  /** Unique, ascending in time: the payload carries "seq:N;". */
  seq: number;
  topic: string;
  qos: 0 | 1 | 2;
  bytes: number;
  wake: boolean;
}

const KEYS = ['at', 'type', 'count', 'overMin', 'qos', 'bytes', 'topic', 'wake'];

function parseAt(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(v);
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  const s = m[3] === undefined ? 0 : Number(m[3]);
  if (h > 23 || min > 59 || s > 59) return undefined;
  return h * 3600 + min * 60 + s;
}

/**
 * Validates a parsed profile. Returns the profile or the list of problems ("events[2].count: ...").
 * `device` fills "{device}", `subscriptions` are the board's topic filters (commands must match one).
 */
export function parseProfile(raw: unknown, device: string, subscriptions: string[], matches: (filter: string, topic: string) => boolean): { profile?: Profile; errors: string[] } {
  const errors: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { errors: ['must be a JSON object with an "events" array'] };
  const o = raw as { [k: string]: unknown };
  for (const k in o) if (k !== 'description' && k !== 'events') errors.push(k + ': unknown key (allowed: description, events)');
  if (o.description !== undefined && typeof o.description !== 'string') errors.push('description: must be a string');
  if (!Array.isArray(o.events) || o.events.length === 0) {
    errors.push('events: must be a non-empty array');
    return { errors };
  }
  const events: ProfileEvent[] = [];
  o.events.forEach((e: unknown, i: number) => {
    const at = 'events[' + i + ']';
    if (e === null || typeof e !== 'object' || Array.isArray(e)) {
      errors.push(at + ': must be an object');
      return;
    }
    const x = e as { [k: string]: unknown };
    for (const k in x) if (KEYS.indexOf(k) < 0) errors.push(at + '.' + k + ': unknown key (allowed: ' + KEYS.join(', ') + ')');
    const atSec = parseAt(x.at);
    if (atSec === undefined) errors.push(at + '.at: must be "HH:MM" or "HH:MM:SS" (00:00..23:59:59), got ' + JSON.stringify(x.at));
    const type = x.type;
    if (type !== 'publish' && type !== 'command') errors.push(at + '.type: must be "publish" or "command", got ' + JSON.stringify(type));
    const int = (k: string, d: number, min: number, max: number): number => {
      const v = x[k] === undefined ? d : x[k];
      if (typeof v !== 'number' || Math.floor(v) !== v || v < min || v > max) {
        errors.push(at + '.' + k + ': must be a whole number ' + min + '..' + max + ', got ' + JSON.stringify(v));
        return d;
      }
      return v;
    };
    const count = int('count', 1, 1, 100000);
    const qos = int('qos', 1, 0, 2) as 0 | 1 | 2;
    const bytes = int('bytes', 32, 12, 65536);
    let overMin = 0;
    if (x.overMin !== undefined) {
      if (typeof x.overMin !== 'number' || !(x.overMin >= 0) || x.overMin > 1440) errors.push(at + '.overMin: must be a number of minutes 0..1440, got ' + JSON.stringify(x.overMin));
      else overMin = x.overMin;
    }
    if (x.wake !== undefined && typeof x.wake !== 'boolean') errors.push(at + '.wake: must be true or false');
    if (x.wake !== undefined && type === 'command') errors.push(at + '.wake: only for "publish" events (a command reaches the device at its next connection)');
    let topic: string;
    if (x.topic === undefined) topic = type === 'command' ? (subscriptions[0] || '') : 'wren/{device}/data';
    else if (typeof x.topic !== 'string' || x.topic === '') {
      errors.push(at + '.topic: must be a non-empty string');
      topic = '';
    } else topic = x.topic;
    topic = topic.split('{device}').join(device);
    if (/[+#]/.test(topic)) errors.push(at + '.topic: must be a topic name, not a filter (got "' + topic + '")');
    if (type === 'command' && topic && !/[+#]/.test(topic) && !subscriptions.some((f) => matches(f, topic))) {
      errors.push(at + '.topic: "' + topic + '" matches none of the board\'s subscriptions (' + (subscriptions.join(', ') || 'none') + '): the device would never get it');
    }
    if (type === 'command' && !topic) errors.push(at + '.topic: the board has no subscriptions, so a command cannot reach the device');
    events.push({ atSec: atSec ?? 0, type: type as 'publish' | 'command', count, overMin, qos, bytes, topic, wake: x.wake === true });
  });
  if (errors.length) return { errors };
  return { profile: { description: typeof o.description === 'string' ? o.description : '', events }, errors };
}

/** Every message of the profile in [0, endMs), repeated daily, in time order, numbered from 1. */
export function expand(p: Profile, endMs: number): Scheduled[] {
  const out: Array<Omit<Scheduled, 'seq'> & { order: number }> = [];
  let order = 0;
  for (let day = 0; day * 86400000 < endMs; day++) {
    for (const e of p.events) {
      for (let i = 0; i < e.count; i++) {
        const atMs = day * 86400000 + e.atSec * 1000 + Math.round((i * e.overMin * 60000) / e.count);
        if (atMs >= endMs) continue;
        out.push({ atMs, type: e.type, topic: e.topic, qos: e.qos, bytes: e.bytes, wake: e.wake, order: order++ });
      }
    }
  }
  out.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
  return out.map((x, i) => ({ atMs: x.atMs, type: x.type, seq: i + 1, topic: x.topic, qos: x.qos, bytes: x.bytes, wake: x.wake }));
}

/** The payload of message `seq`: "seq:N;" padded with '.' to `bytes`. */
export function payloadFor(seq: number, bytes: number): string {
  const head = 'seq:' + seq + ';';
  return head.length >= bytes ? head : head + '.'.repeat(bytes - head.length);
}
