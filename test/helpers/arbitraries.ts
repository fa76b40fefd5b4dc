// fast-check arbitraries for valid MQTT packets of both versions, in the codec's object shape
// (firmware/mqtt/types.ts). "Valid" means valid per the specification; `peer: true` narrows them
// further to what mqtt-packet 9 can carry without loss (each narrowing says why).

import fc from 'fast-check';
import { PacketType } from '../../firmware/mqtt/types';
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
  Version,
  Will,
} from '../../firmware/mqtt/types';

export interface ArbOptions {
  /** Only packets mqtt-packet 9 round-trips without loss (see the notes at each use). */
  peer?: boolean;
}

// Reason codes each packet may carry (5.0 sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1,
// 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1; 3.1.1 sections 3.2.2.3 and 3.9.3).
export const REASONS = {
  connack4: [0, 1, 2, 3, 4, 5],
  connack5: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f],
  pubackPubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrelPubcomp: [0x00, 0x92],
  suback4: [0x00, 0x01, 0x02, 0x80],
  suback5: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback5: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect5: [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b,
    0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
  ],
  auth5: [0x00, 0x18, 0x19],
};

// ------------------------------------------------------------------------------------------------
// Strings

/** One code point as a string: mostly ASCII, sometimes anything in Unicode but U+0000 and surrogates. */
const codePoint: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0x7ff }) },
  { weight: 2, arbitrary: fc.integer({ min: 0x800, max: 0xffff }).filter((c) => c < 0xd800 || c > 0xdfff) },
  { weight: 2, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }) },
  // The spec discourages (SHOULD NOT) but allows control characters and non-characters; a BOM
  // must be kept as it is [MQTT-1.5.4-3]. U+0000 is forbidden [MQTT-1.5.4-2], so never generated.
  { weight: 1, arbitrary: fc.constantFrom(0x01, 0x1f, 0x7f, 0x9f, 0xfeff, 0xfffe, 0xffff, 0x10ffff) },
).map((c) => String.fromCodePoint(c));

/** A UTF-8 string that is valid in MQTT: no U+0000, no lone surrogates. */
export function mqttString(maxLength = 12, minLength = 0): fc.Arbitrary<string> {
  return fc.string({ unit: codePoint, minLength, maxLength });
}

const levelUnit = codePoint.filter((c) => c !== '/' && c !== '+' && c !== '#');

/** One topic level: any valid characters but '/', '+', '#'; may be empty ("a//b" is valid). */
const level = fc.string({ unit: levelUnit, maxLength: 6 });

/** A Topic Name: at least one character [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-2]. */
export const topicName: fc.Arbitrary<string> = fc
  .array(level, { minLength: 1, maxLength: 4 })
  .map((ls) => ls.join('/'))
  .filter((t) => t.length > 0 && !t.startsWith('$share/'));

/**
 * A Topic Filter: levels, '+' alone in a level [MQTT-4.7.1-2], '#' alone and last
 * [MQTT-4.7.1-1]; not a shared subscription ($share/ has its own rules, not generated here).
 */
export const topicFilter: fc.Arbitrary<string> = fc
  .tuple(fc.array(fc.oneof({ weight: 4, arbitrary: level }, { weight: 1, arbitrary: fc.constant('+') }), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([ls, hash]) => (hash ? ls.concat(['#']) : ls).join('/'))
  .filter((t) => t.length > 0 && !t.startsWith('$share/'));

// ------------------------------------------------------------------------------------------------
// Numbers and bytes

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const packetId = fc.integer({ min: 1, max: 0xffff });
const qos = fc.constantFrom<QoS>(0, 1, 2);
const smallBytes = fc.uint8Array({ maxLength: 16 });

/** A deterministic filler so that big payloads are cheap to generate. */
function filled(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x >>> 16;
  }
  return b;
}

/** Payloads: mostly small, sometimes past the 1- and 2-byte remaining length boundaries. */
export const payload: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 12, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 100, max: 300 }), fc.nat()).map(([n, s]) => filled(n, s)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 16360, max: 16400 }), fc.nat()).map(([n, s]) => filled(n, s)) },
);

// ------------------------------------------------------------------------------------------------
// Properties

type PropName = keyof Properties;

function userProperties(o: ArbOptions): fc.Arbitrary<Array<[string, string]>> {
  // mqtt-packet's parser groups user properties in an object and tests `if (obj[name])` before
  // turning a repeated name into an array: a repeated name whose first value is "" loses that
  // value. So with peer, values are never empty. (Names may be; order between different names
  // cannot be kept by an object either, which the comparison handles by sorting by name.)
  const value = o.peer ? mqttString(8, 1) : mqttString(8);
  const name = fc.oneof(mqttString(6), fc.constantFrom('k', 'x', '1', '__proto__', 'constructor'));
  return fc.array(fc.tuple(name, value), { minLength: 1, maxLength: 4 });
}

function propArb(name: PropName, where: string, o: ArbOptions): fc.Arbitrary<unknown> {
  switch (name) {
    case 'payloadFormatIndicator':
    case 'requestProblemInformation':
    case 'requestResponseInformation':
    case 'retainAvailable':
    case 'wildcardSubscriptionAvailable':
    case 'subscriptionIdentifiersAvailable':
    case 'sharedSubscriptionAvailable':
      return fc.boolean();
    case 'messageExpiryInterval':
    case 'sessionExpiryInterval':
    case 'willDelayInterval':
      return u32;
    case 'maximumPacketSize':
      return fc.integer({ min: 1, max: 0xffffffff }); // 0 is a Protocol Error [3.1.2.11.4]
    case 'receiveMaximum':
      return fc.integer({ min: 1, max: 0xffff }); // 0 is a Protocol Error [3.1.2.11.3]
    case 'topicAlias':
      return fc.integer({ min: 1, max: 0xffff }); // 0 is not permitted [MQTT-3.3.2-8]
    case 'serverKeepAlive':
    case 'topicAliasMaximum':
      return u16;
    case 'maximumQoS':
      return fc.constantFrom(0, 1);
    case 'responseTopic':
      return topicName; // a Topic Name, no wildcards [MQTT-3.3.2-14]
    case 'contentType':
    case 'assignedClientIdentifier':
    case 'authenticationMethod':
    case 'responseInformation':
    case 'serverReference':
    case 'reasonString':
      return mqttString(10);
    case 'correlationData':
    case 'authenticationData':
      return smallBytes;
    case 'subscriptionIdentifiers': {
      const id = fc.oneof(fc.integer({ min: 1, max: 127 }), fc.integer({ min: 1, max: 268435455 }));
      // SUBSCRIBE carries at most one [3.8.2.1.2]; PUBLISH may carry several [3.3.2.3.8].
      return where === 'subscribe' ? fc.array(id, { minLength: 1, maxLength: 1 }) : fc.array(id, { minLength: 1, maxLength: 3 });
    }
    case 'userProperties':
      return userProperties(o);
  }
  throw new Error('no arbitrary for property ' + name);
}

/** Which properties each packet may carry (5.0 section 2.2.2.2, table 2-4). */
export const ALLOWED: { [where: string]: PropName[] } = {
  connect: [
    'sessionExpiryInterval',
    'receiveMaximum',
    'maximumPacketSize',
    'topicAliasMaximum',
    'requestResponseInformation',
    'requestProblemInformation',
    'userProperties',
    'authenticationMethod',
    'authenticationData',
  ],
  will: ['willDelayInterval', 'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'userProperties'],
  connack: [
    'sessionExpiryInterval',
    'receiveMaximum',
    'maximumQoS',
    'retainAvailable',
    'maximumPacketSize',
    'assignedClientIdentifier',
    'topicAliasMaximum',
    'reasonString',
    'userProperties',
    'wildcardSubscriptionAvailable',
    'subscriptionIdentifiersAvailable',
    'sharedSubscriptionAvailable',
    'serverKeepAlive',
    'responseInformation',
    'serverReference',
    'authenticationMethod',
    'authenticationData',
  ],
  publish: ['payloadFormatIndicator', 'messageExpiryInterval', 'topicAlias', 'responseTopic', 'correlationData', 'userProperties', 'subscriptionIdentifiers', 'contentType'],
  ack: ['reasonString', 'userProperties'],
  subscribe: ['subscriptionIdentifiers', 'userProperties'],
  suback: ['reasonString', 'userProperties'],
  unsubscribe: ['userProperties'],
  unsuback: ['reasonString', 'userProperties'],
  disconnect: ['sessionExpiryInterval', 'reasonString', 'serverReference', 'userProperties'],
  auth: ['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties'],
};

/** Properties for a packet (or `undefined`): any subset of the allowed ones. */
export function properties(where: string, o: ArbOptions = {}): fc.Arbitrary<Properties | undefined> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const n of ALLOWED[where]) model[n] = propArb(n, where, o);
  const rec = fc.record(model, { requiredKeys: [] }).map((p) => {
    const props = p as Properties;
    // Authentication Data without an Authentication Method is a Protocol Error [3.1.2.11.10].
    if (props.authenticationData !== undefined && props.authenticationMethod === undefined) delete props.authenticationData;
    return props;
  });
  return fc.option(rec, { nil: undefined, freq: 4 });
}

// ------------------------------------------------------------------------------------------------
// Packets

function will(version: Version, o: ArbOptions): fc.Arbitrary<Will> {
  return fc
    .record({
      topic: topicName,
      payload: fc.uint8Array({ maxLength: 24 }),
      qos,
      retain: fc.boolean(),
      properties: version === 5 ? properties('will', o) : fc.constant(undefined),
    })
    .map((w) => {
      const out: Will = { topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain };
      if (w.properties) {
        out.properties = w.properties;
        // With payload format indicator 1 the will payload is UTF-8 [5.0 3.1.3.2.3]: keep it so.
        if (w.properties.payloadFormatIndicator) out.payload = new Uint8Array(Buffer.from('will payload ' + w.payload.length, 'utf8'));
      }
      return out;
    });
}

export function connect(version: Version, o: ArbOptions = {}): fc.Arbitrary<ConnectPacket> {
  return fc
    .record({
      clientId: mqttString(23),
      keepAliveSec: u16,
      clean: fc.boolean(),
      username: fc.option(mqttString(12), { nil: undefined }),
      password: fc.option(fc.uint8Array({ maxLength: 16 }), { nil: undefined }),
      will: fc.option(will(version, o), { nil: undefined }),
      properties: version === 5 ? properties('connect', o) : fc.constant(undefined),
      stateVersion: fc.boolean(),
    })
    .map((r) => {
      const p: ConnectPacket = { type: PacketType.CONNECT, clientId: r.clientId, keepAliveSec: r.keepAliveSec, clean: r.clean };
      if (r.stateVersion) p.protocolVersion = version; // the encoder uses its argument either way
      // A zero-byte client id needs clean session in 3.1.1 [MQTT-3.1.3-7]; mqtt-packet's generate
      // refuses it in both versions, so with peer the rule applies to v5 too.
      if (p.clientId === '' && (version === 4 || o.peer)) p.clean = true;
      if (r.username !== undefined) p.username = r.username;
      // 3.1.1: no password without a user name [MQTT-3.1.2-22]. 5.0 allows it, but mqtt-packet's
      // generate refuses it ("Username is required to use password"), so with peer never.
      if (r.password !== undefined && (r.username !== undefined || (version === 5 && !o.peer))) p.password = r.password;
      if (r.will) p.will = r.will;
      if (r.properties) p.properties = r.properties;
      return p;
    });
}

export function connack(version: Version, o: ArbOptions = {}): fc.Arbitrary<ConnackPacket> {
  return fc
    .record({
      sessionPresent: fc.boolean(),
      reasonCode: fc.constantFrom(...(version === 5 ? REASONS.connack5 : REASONS.connack4)),
      properties: version === 5 ? properties('connack', o) : fc.constant(undefined),
    })
    .map((r) => {
      // Session Present must be 0 with a non-zero return/reason code [MQTT-3.2.2-4] / [MQTT-3.2.2-6].
      const p: ConnackPacket = { type: PacketType.CONNACK, sessionPresent: r.reasonCode === 0 && r.sessionPresent, reasonCode: r.reasonCode };
      if (r.properties) p.properties = r.properties;
      return p;
    });
}

export function publish(version: Version, o: ArbOptions = {}): fc.Arbitrary<PublishPacket> {
  return fc
    .record({
      topic: topicName,
      emptyTopic: fc.boolean(),
      payload,
      qos,
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId,
      properties: version === 5 ? properties('publish', o) : fc.constant(undefined),
    })
    .map((r) => {
      const p: PublishPacket = { type: PacketType.PUBLISH, topic: r.topic, payload: r.payload, qos: r.qos, retain: r.retain, dup: r.dup };
      if (r.qos > 0) p.packetId = r.packetId;
      else p.dup = false; // DUP must be 0 at QoS 0 [MQTT-3.3.1-2]
      if (r.properties) {
        p.properties = r.properties;
        // A zero-length topic is valid only with a topic alias [5.0 3.3.2.1].
        if (r.emptyTopic && r.properties.topicAlias !== undefined) p.topic = '';
        // Payload format indicator 1: the payload is UTF-8 [5.0 3.3.2.3.2].
        if (r.properties.payloadFormatIndicator) p.payload = new Uint8Array(Buffer.from('payload ' + r.payload.length + ' ✓', 'utf8'));
      }
      return p;
    });
}

export function ack(version: Version, o: ArbOptions = {}): fc.Arbitrary<AckPacket> {
  return fc
    .record({
      type: fc.constantFrom(PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP),
      packetId,
      pick: fc.nat(),
      properties: version === 5 ? properties('ack', o) : fc.constant(undefined),
      omitReason: fc.boolean(),
    })
    .map((r) => {
      const p: AckPacket = { type: r.type as AckPacket['type'], packetId: r.packetId };
      if (version === 5) {
        const list = r.type === PacketType.PUBACK || r.type === PacketType.PUBREC ? REASONS.pubackPubrec : REASONS.pubrelPubcomp;
        const rc = list[r.pick % list.length];
        // Half the zero codes are left out: the type says reasonCode is optional on input.
        if (!(rc === 0 && r.omitReason)) p.reasonCode = rc;
        if (r.properties) p.properties = r.properties;
      }
      return p;
    });
}

function subscription(version: Version): fc.Arbitrary<Subscription> {
  return fc
    .record({ topic: topicFilter, qos, noLocal: fc.boolean(), retainAsPublished: fc.boolean(), retainHandling: fc.constantFrom<0 | 1 | 2>(0, 1, 2) })
    .map((r) => {
      const s: Subscription = { topic: r.topic, qos: r.qos };
      if (version === 5) {
        s.noLocal = r.noLocal;
        s.retainAsPublished = r.retainAsPublished;
        s.retainHandling = r.retainHandling;
      }
      return s;
    });
}

export function subscribe(version: Version, o: ArbOptions = {}): fc.Arbitrary<SubscribePacket> {
  return fc
    .record({
      packetId,
      subscriptions: fc.array(subscription(version), { minLength: 1, maxLength: 4 }),
      properties: version === 5 ? properties('subscribe', o) : fc.constant(undefined),
    })
    .map((r) => {
      const p: SubscribePacket = { type: PacketType.SUBSCRIBE, packetId: r.packetId, subscriptions: r.subscriptions };
      if (r.properties) p.properties = r.properties;
      return p;
    });
}

export function suback(version: Version, o: ArbOptions = {}): fc.Arbitrary<SubackPacket> {
  return fc
    .record({
      packetId,
      reasonCodes: fc.array(fc.constantFrom(...(version === 5 ? REASONS.suback5 : REASONS.suback4)), { minLength: 1, maxLength: 5 }),
      properties: version === 5 ? properties('suback', o) : fc.constant(undefined),
    })
    .map((r) => {
      const p: SubackPacket = { type: PacketType.SUBACK, packetId: r.packetId, reasonCodes: r.reasonCodes };
      if (r.properties) p.properties = r.properties;
      return p;
    });
}

export function unsubscribe(version: Version, o: ArbOptions = {}): fc.Arbitrary<UnsubscribePacket> {
  return fc
    .record({
      packetId,
      topics: fc.array(topicFilter, { minLength: 1, maxLength: 4 }),
      properties: version === 5 ? properties('unsubscribe', o) : fc.constant(undefined),
    })
    .map((r) => {
      const p: UnsubscribePacket = { type: PacketType.UNSUBSCRIBE, packetId: r.packetId, topics: r.topics };
      if (r.properties) p.properties = r.properties;
      return p;
    });
}

export function unsuback(version: Version, o: ArbOptions = {}): fc.Arbitrary<UnsubackPacket> {
  return fc
    .record({
      packetId,
      reasonCodes: fc.array(fc.constantFrom(...REASONS.unsuback5), { minLength: 1, maxLength: 5 }),
      properties: version === 5 ? properties('unsuback', o) : fc.constant(undefined),
    })
    .map((r) => {
      const p: UnsubackPacket = { type: PacketType.UNSUBACK, packetId: r.packetId };
      if (version === 5) {
        p.reasonCodes = r.reasonCodes;
        if (r.properties) p.properties = r.properties;
      }
      return p;
    });
}

export function disconnect(version: Version, o: ArbOptions = {}): fc.Arbitrary<DisconnectPacket> {
  if (version === 4) return fc.constant<DisconnectPacket>({ type: PacketType.DISCONNECT });
  return fc
    .record({ reasonCode: fc.constantFrom(...REASONS.disconnect5), omit: fc.boolean(), properties: properties('disconnect', o) })
    .map((r) => {
      const p: DisconnectPacket = { type: PacketType.DISCONNECT };
      if (!(r.reasonCode === 0 && r.omit)) p.reasonCode = r.reasonCode;
      if (r.properties) p.properties = r.properties;
      return p;
    });
}

export function auth(o: ArbOptions = {}): fc.Arbitrary<AuthPacket> {
  return fc.record({ reasonCode: fc.constantFrom(...REASONS.auth5), properties: properties('auth', o) }).map((r) => {
    const p: AuthPacket = { type: PacketType.AUTH, reasonCode: r.reasonCode };
    if (r.properties) p.properties = r.properties;
    return p;
  });
}

export const pingreq = fc.constant<Packet>({ type: PacketType.PINGREQ });
export const pingresp = fc.constant<Packet>({ type: PacketType.PINGRESP });

/** Every packet kind with its arbitrary, by name (AUTH only in v5). */
export function kinds(version: Version, o: ArbOptions = {}): Array<[string, fc.Arbitrary<Packet>]> {
  const list: Array<[string, fc.Arbitrary<Packet>]> = [
    ['CONNECT', connect(version, o)],
    ['CONNACK', connack(version, o)],
    ['PUBLISH', publish(version, o)],
    ['PUBACK/PUBREC/PUBREL/PUBCOMP', ack(version, o)],
    ['SUBSCRIBE', subscribe(version, o)],
    ['SUBACK', suback(version, o)],
    ['UNSUBSCRIBE', unsubscribe(version, o)],
    ['UNSUBACK', unsuback(version, o)],
    ['PINGREQ', pingreq],
    ['PINGRESP', pingresp],
    ['DISCONNECT', disconnect(version, o)],
  ];
  if (version === 5) list.push(['AUTH', auth(o)]);
  return list;
}

/** Any valid packet of the version. */
export function anyPacket(version: Version, o: ArbOptions = {}): fc.Arbitrary<Packet> {
  return fc.oneof(...kinds(version, o).map((k) => k[1]));
}
