// Sample packets of every MQTT packet type, for 3.1.1 (4) and 5.0 (5), and malformed inputs the
// decoder must refuse. Shared by the Espruino codec driver (codec-driver.ts, bundled and run on the
// interpreter) and by test/espruino-codec.test.ts (coverage check, and the same checks on Node).
//
// This file is bundled for Espruino: it obeys the subset in DESIGN.md section 2 (no destructuring,
// spread, default parameters, Map/Set, ...; helpers defined before their first top-level use).

import { PacketType } from '../../firmware/mqtt/types';
import type { Packet, Version } from '../../firmware/mqtt/types';

export interface RoundTripCase {
  /** Short label, unique per version; printed as "<OK|FAIL> v<version> <TYPE> <name>". */
  name: string;
  version: Version;
  packet: Packet;
}

export interface MalformedCase {
  name: string;
  version: Version;
  /** Bytes the decoder must refuse with a ProtocolError. */
  bytes: number[];
  /** maxPacketSize for the decoder (default 65536). */
  maxPacketSize?: number;
}

export interface WireCase {
  name: string;
  version: Version;
  /** One valid packet as it arrives from the network: decode, re-encode, and get these bytes back. */
  bytes: number[];
}

export interface EncodeRefusalCase {
  name: string;
  version: Version;
  /** A packet encode() must refuse with a ProtocolError. Typed loosely on purpose. */
  packet: unknown;
}

/** Packet type names by type number (index 0 unused). */
export const TYPE_NAMES = [
  'RESERVED',
  'CONNECT',
  'CONNACK',
  'PUBLISH',
  'PUBACK',
  'PUBREC',
  'PUBREL',
  'PUBCOMP',
  'SUBSCRIBE',
  'SUBACK',
  'UNSUBSCRIBE',
  'UNSUBACK',
  'PINGREQ',
  'PINGRESP',
  'DISCONNECT',
  'AUTH',
];

function bytes(list: number[]): Uint8Array {
  return new Uint8Array(list);
}

/** n bytes counting 0..255 repeatedly (every byte value, including 0 and 255). */
function counting(n: number): Uint8Array {
  const u = new Uint8Array(n);
  for (let i = 0; i < n; i++) u[i] = i & 0xff;
  return u;
}

function ascii(s: string): Uint8Array {
  const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u;
}

/** Round-trip cases. Every packet type appears for each version (AUTH only in 5.0). */
export function roundTripCases(): RoundTripCase[] {
  const list: RoundTripCase[] = [];

  // ---------------------------------------------------------------- MQTT 3.1.1
  list.push({ name: 'minimal', version: 4, packet: { type: PacketType.CONNECT, clientId: 'wren-1', keepAliveSec: 60, clean: true } });
  list.push({
    name: 'will-username-password',
    version: 4,
    packet: {
      type: PacketType.CONNECT,
      clientId: 'wren-device-0123456789',
      keepAliveSec: 65535,
      clean: false,
      username: 'user',
      password: bytes([0, 1, 2, 127, 128, 255]),
      will: { topic: 'wren/status', payload: ascii('offline'), qos: 1, retain: true },
    },
  });
  list.push({
    name: 'empty-client-id-keepalive-0',
    version: 4,
    packet: { type: PacketType.CONNECT, clientId: '', keepAliveSec: 0, clean: true, username: 'u' },
  });
  list.push({ name: 'accepted', version: 4, packet: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 } });
  list.push({ name: 'session-present', version: 4, packet: { type: PacketType.CONNACK, sessionPresent: true, reasonCode: 0 } });
  list.push({ name: 'refused-5', version: 4, packet: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 5 } });
  list.push({
    name: 'qos0-empty-payload',
    version: 4,
    packet: { type: PacketType.PUBLISH, topic: 'a', payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
  });
  list.push({
    name: 'qos1-retain',
    version: 4,
    packet: { type: PacketType.PUBLISH, topic: 'wren/t/1', payload: ascii('{"t":21.5}'), qos: 1, retain: true, dup: false, packetId: 1 },
  });
  list.push({
    name: 'qos2-dup-600-bytes',
    version: 4,
    packet: { type: PacketType.PUBLISH, topic: 'wren/bulk', payload: counting(600), qos: 2, retain: false, dup: true, packetId: 65535 },
  });
  list.push({
    name: 'latin1-topic',
    version: 4,
    packet: { type: PacketType.PUBLISH, topic: 'caf\u00e9/\u00fc', payload: bytes([1]), qos: 0, retain: false, dup: false },
  });
  list.push({ name: 'id-1', version: 4, packet: { type: PacketType.PUBACK, packetId: 1 } });
  list.push({ name: 'id-65535', version: 4, packet: { type: PacketType.PUBREC, packetId: 65535 } });
  list.push({ name: 'id-258', version: 4, packet: { type: PacketType.PUBREL, packetId: 258 } });
  list.push({ name: 'id-7', version: 4, packet: { type: PacketType.PUBCOMP, packetId: 7 } });
  list.push({
    name: 'three-topics',
    version: 4,
    packet: {
      type: PacketType.SUBSCRIBE,
      packetId: 10,
      subscriptions: [
        { topic: 'wren/cmd/#', qos: 1 },
        { topic: 'wren/+/cfg', qos: 2 },
        { topic: '$SYS/broker/uptime', qos: 0 },
      ],
    },
  });
  list.push({ name: 'granted-and-failure', version: 4, packet: { type: PacketType.SUBACK, packetId: 10, reasonCodes: [1, 2, 0, 0x80] } });
  list.push({ name: 'two-topics', version: 4, packet: { type: PacketType.UNSUBSCRIBE, packetId: 11, topics: ['wren/cmd/#', 'x'] } });
  list.push({ name: 'plain', version: 4, packet: { type: PacketType.UNSUBACK, packetId: 11 } });
  list.push({ name: 'plain', version: 4, packet: { type: PacketType.PINGREQ } });
  list.push({ name: 'plain', version: 4, packet: { type: PacketType.PINGRESP } });
  list.push({ name: 'plain', version: 4, packet: { type: PacketType.DISCONNECT } });

  // ---------------------------------------------------------------- MQTT 5.0
  list.push({ name: 'minimal', version: 5, packet: { type: PacketType.CONNECT, clientId: 'wren-1', keepAliveSec: 60, clean: true } });
  list.push({
    name: 'all-properties-will-properties',
    version: 5,
    packet: {
      type: PacketType.CONNECT,
      clientId: 'wren-device-0123456789',
      keepAliveSec: 1200,
      clean: false,
      username: 'user',
      password: bytes([0, 255, 10, 13]),
      will: {
        topic: 'wren/status',
        payload: ascii('offline'),
        qos: 2,
        retain: true,
        properties: {
          payloadFormatIndicator: true,
          messageExpiryInterval: 3600,
          contentType: 'text/plain',
          responseTopic: 'wren/reply',
          correlationData: bytes([0xde, 0xad, 0xbe, 0xef, 0]),
          willDelayInterval: 300,
          userProperties: [
            ['reason', 'sleep'],
            ['reason', 'battery'],
          ],
        },
      },
      properties: {
        sessionExpiryInterval: 0xffffffff,
        authenticationMethod: 'SCRAM-SHA-1',
        authenticationData: bytes([1, 2, 3]),
        requestProblemInformation: false,
        requestResponseInformation: true,
        receiveMaximum: 20,
        topicAliasMaximum: 10,
        userProperties: [['fw', '0.1.0']],
        maximumPacketSize: 4096,
      },
    },
  });
  list.push({
    name: 'accepted',
    version: 5,
    packet: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 },
  });
  list.push({
    name: 'all-properties',
    version: 5,
    packet: {
      type: PacketType.CONNACK,
      sessionPresent: true,
      reasonCode: 0,
      properties: {
        sessionExpiryInterval: 86400,
        assignedClientIdentifier: 'auto-7F3A',
        serverKeepAlive: 30,
        authenticationMethod: 'SCRAM-SHA-1',
        authenticationData: bytes([9, 8, 7]),
        responseInformation: 'wren/resp/',
        serverReference: 'other.example:1883',
        reasonString: 'welcome',
        receiveMaximum: 100,
        topicAliasMaximum: 0,
        maximumQoS: 1,
        retainAvailable: false,
        userProperties: [
          ['a', '1'],
          ['b', ''],
        ],
        maximumPacketSize: 268435460,
        wildcardSubscriptionAvailable: true,
        subscriptionIdentifiersAvailable: false,
        sharedSubscriptionAvailable: true,
      },
    },
  });
  list.push({
    name: 'refused-not-authorized',
    version: 5,
    packet: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0x87, properties: { reasonString: 'no' } },
  });
  list.push({
    name: 'qos0-empty-payload',
    version: 5,
    packet: { type: PacketType.PUBLISH, topic: 'a', payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
  });
  list.push({
    name: 'qos1-all-properties',
    version: 5,
    packet: {
      type: PacketType.PUBLISH,
      topic: 'wren/t/1',
      payload: ascii('{"t":21.5}'),
      qos: 1,
      retain: true,
      dup: true,
      packetId: 300,
      properties: {
        payloadFormatIndicator: true,
        messageExpiryInterval: 60,
        contentType: 'application/json',
        responseTopic: 'wren/reply/1',
        correlationData: counting(20),
        subscriptionIdentifiers: [1, 127, 128, 16383, 16384, 268435455],
        topicAlias: 5,
        userProperties: [
          ['k', 'v'],
          ['k', 'v2'],
          ['caf\u00e9', '\u00fc'],
        ],
      },
    },
  });
  list.push({
    name: 'qos2-17000-bytes',
    version: 5,
    packet: { type: PacketType.PUBLISH, topic: 'wren/bulk', payload: counting(17000), qos: 2, retain: false, dup: false, packetId: 65535 },
  });
  list.push({
    name: 'alias-only-empty-topic',
    version: 5,
    packet: { type: PacketType.PUBLISH, topic: '', payload: bytes([42]), qos: 0, retain: false, dup: false, properties: { topicAlias: 5 } },
  });
  list.push({
    name: 'latin1-topic',
    version: 5,
    packet: { type: PacketType.PUBLISH, topic: 'caf\u00e9/\u00fc', payload: bytes([1]), qos: 0, retain: false, dup: false },
  });
  list.push({
    name: 'non-latin1-topic',
    version: 5,
    packet: { type: PacketType.PUBLISH, topic: 'wren/\u4e2d\u6587/\ud83d\ude00', payload: bytes([1]), qos: 0, retain: false, dup: false },
  });
  list.push({ name: 'short-form', version: 5, packet: { type: PacketType.PUBACK, packetId: 1 } });
  list.push({ name: 'reason-only', version: 5, packet: { type: PacketType.PUBACK, packetId: 2, reasonCode: 0x10 } });
  list.push({
    name: 'reason-and-properties',
    version: 5,
    packet: {
      type: PacketType.PUBACK,
      packetId: 3,
      reasonCode: 0x87,
      properties: { reasonString: 'not authorized', userProperties: [['why', 'acl']] },
    },
  });
  list.push({ name: 'failure', version: 5, packet: { type: PacketType.PUBREC, packetId: 65535, reasonCode: 0x80 } });
  list.push({ name: 'success-with-properties', version: 5, packet: { type: PacketType.PUBREC, packetId: 4, reasonCode: 0, properties: { reasonString: 'ok' } } });
  list.push({ name: 'id-not-found', version: 5, packet: { type: PacketType.PUBREL, packetId: 258, reasonCode: 0x92 } });
  list.push({ name: 'short-form', version: 5, packet: { type: PacketType.PUBREL, packetId: 259 } });
  list.push({ name: 'short-form', version: 5, packet: { type: PacketType.PUBCOMP, packetId: 7 } });
  list.push({
    name: 'user-properties',
    version: 5,
    packet: { type: PacketType.PUBCOMP, packetId: 8, reasonCode: 0, properties: { userProperties: [['x', 'y']] } },
  });
  list.push({
    name: 'options-and-subscription-identifier',
    version: 5,
    packet: {
      type: PacketType.SUBSCRIBE,
      packetId: 10,
      subscriptions: [
        { topic: 'wren/cmd/#', qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 0 },
        { topic: 'wren/+/cfg', qos: 2, noLocal: false, retainAsPublished: true, retainHandling: 1 },
        { topic: '$share/g/jobs', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 2 },
      ],
      properties: { subscriptionIdentifiers: [268435455], userProperties: [['s', 't']] },
    },
  });
  list.push({
    name: 'plain-options',
    version: 5,
    packet: {
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topic: 'a', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
    },
  });
  list.push({
    name: 'codes-and-reason-string',
    version: 5,
    packet: {
      type: PacketType.SUBACK,
      packetId: 10,
      reasonCodes: [1, 2, 0, 0x80, 0x87, 0x9e, 0xa1, 0xa2],
      properties: { reasonString: 'partial', userProperties: [['n', '3']] },
    },
  });
  list.push({
    name: 'user-properties',
    version: 5,
    packet: { type: PacketType.UNSUBSCRIBE, packetId: 11, topics: ['wren/cmd/#', 'x'], properties: { userProperties: [['u', 'v']] } },
  });
  list.push({
    name: 'codes-and-reason-string',
    version: 5,
    packet: { type: PacketType.UNSUBACK, packetId: 11, reasonCodes: [0, 0x11, 0x87], properties: { reasonString: 'done' } },
  });
  list.push({ name: 'plain', version: 5, packet: { type: PacketType.PINGREQ } });
  list.push({ name: 'plain', version: 5, packet: { type: PacketType.PINGRESP } });
  list.push({ name: 'short-form', version: 5, packet: { type: PacketType.DISCONNECT } });
  list.push({ name: 'reason-only', version: 5, packet: { type: PacketType.DISCONNECT, reasonCode: 0x04 } });
  list.push({
    name: 'all-properties',
    version: 5,
    packet: {
      type: PacketType.DISCONNECT,
      reasonCode: 0x9c,
      properties: {
        sessionExpiryInterval: 600,
        serverReference: 'other.example',
        reasonString: 'moved',
        userProperties: [['a', 'b']],
      },
    },
  });
  list.push({ name: 'short-form', version: 5, packet: { type: PacketType.AUTH } });
  list.push({
    name: 'continue-authentication',
    version: 5,
    packet: {
      type: PacketType.AUTH,
      reasonCode: 0x18,
      properties: {
        authenticationMethod: 'SCRAM-SHA-1',
        authenticationData: counting(40),
        reasonString: 'step 2',
        userProperties: [['r', '1']],
      },
    },
  });
  list.push({ name: 're-authenticate', version: 5, packet: { type: PacketType.AUTH, reasonCode: 0x19, properties: { authenticationMethod: 'X' } } });
  return list;
}

/** Inputs the decoder must refuse with a ProtocolError (each fed to a fresh decoder). */
export function malformedCases(): MalformedCase[] {
  return [
    { name: 'reserved-type-0', version: 4, bytes: [0x00, 0x00] },
    { name: 'auth-in-3.1.1', version: 4, bytes: [0xf0, 0x00] },
    { name: 'pubrel-flags-0000', version: 4, bytes: [0x60, 0x02, 0x00, 0x01] },
    { name: 'publish-qos-3', version: 4, bytes: [0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01] },
    { name: 'remaining-length-5-bytes', version: 4, bytes: [0x30, 0xff, 0xff, 0xff, 0xff, 0x01] },
    { name: 'topic-overlong-nul', version: 4, bytes: [0x30, 0x04, 0x00, 0x02, 0xc0, 0x80] },
    { name: 'topic-lone-surrogate', version: 4, bytes: [0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80] },
    { name: 'pingresp-with-body', version: 4, bytes: [0xd0, 0x01, 0x00] },
    { name: 'puback-misplaced-property', version: 5, bytes: [0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01] },
    {
      name: 'publish-repeated-property',
      version: 5,
      bytes: [0x30, 0x0a, 0x00, 0x01, 0x61, 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02],
    },
    { name: 'property-length-overrun', version: 5, bytes: [0x40, 0x05, 0x00, 0x01, 0x00, 0x09, 0x1f] },
    {
      name: 'over-maximum-packet-size',
      version: 5,
      maxPacketSize: 16,
      bytes: [0x30, 0x14, 0x00, 0x01, 0x61, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
    },
  ];
}

/**
 * Valid packets given as bytes (text that a string literal in the bundle cannot be trusted with):
 * decode then encode must give the same bytes back.
 */
export function wireCases(): WireCase[] {
  return [
    // PUBLISH "w/<U+4E2D>/<U+00E9>" payload 01: 3-byte and 2-byte UTF-8 sequences.
    { name: 'publish-topic-3-byte-utf8', version: 4, bytes: [0x30, 0x0b, 0x00, 0x08, 0x77, 0x2f, 0xe4, 0xb8, 0xad, 0x2f, 0xc3, 0xa9, 0x01] },
    // PUBLISH "e/<U+1F600>": a 4-byte sequence (a surrogate pair in UTF-16).
    { name: 'publish-topic-4-byte-utf8', version: 4, bytes: [0x30, 0x08, 0x00, 0x06, 0x65, 0x2f, 0xf0, 0x9f, 0x98, 0x80] },
    // v5 PUBLISH "t" with user property ["k", "<U+00FC><U+4E2D>"].
    {
      name: 'user-property-utf8',
      version: 5,
      bytes: [0x30, 0x10, 0x00, 0x01, 0x74, 0x0b, 0x26, 0x00, 0x01, 0x6b, 0x00, 0x05, 0xc3, 0xbc, 0xe4, 0xb8, 0xad, 0x01],
    },
  ];
}

/** Packets encode() must refuse with a ProtocolError. */
export function encodeRefusalCases(): EncodeRefusalCase[] {
  return [
    {
      name: 'misplaced-property',
      version: 5,
      packet: { type: PacketType.SUBACK, packetId: 1, reasonCodes: [0], properties: { topicAlias: 3 } },
    },
    {
      name: 'subscription-identifier-0',
      version: 5,
      packet: {
        type: PacketType.PUBLISH,
        topic: 'a',
        payload: new Uint8Array(0),
        qos: 0,
        retain: false,
        dup: false,
        properties: { subscriptionIdentifiers: [0] },
      },
    },
    {
      name: 'topic-with-nul',
      version: 4,
      packet: { type: PacketType.PUBLISH, topic: 'a\u0000b', payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
    },
  ];
}
