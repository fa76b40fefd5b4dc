// Byte vectors for every MQTT 3.1.1 and 5.0 control packet, written field by field from the
// specifications (3.1.1: OASIS Standard + Errata 01; 5.0: OASIS Standard, 7 March 2019), not from
// our encoder. One table; one helper runs every case: decode whole, decode one byte at a time,
// encode, and round-trip (the mqtt-packet test style).

import { describe, expect, it } from 'vitest';
import { PacketType } from '../firmware/mqtt/types';
import type { Packet, Version } from '../firmware/mqtt/types';
import {
  canon,
  checkRemainingLength,
  decodeBytewise,
  decodeChunks,
  decodedForm,
  encode,
  hex,
  s,
  toHex,
  utf8,
  bytesOf,
  vbi,
  type Hex,
} from './helpers/vectors';

interface Vector {
  name: string;
  version: Version;
  wire: Hex;
  /** Exactly what decode must return (compared via canon(): Buffer vs Uint8Array, empty properties). */
  packet: Packet;
  /**
   * What encode(packet) must produce. Default: exactly `wire`. Where the spec allows more than one
   * encoding (v5 acks with a reason code and no properties may carry or omit the property length),
   * list every valid one; `wire` is then one accepted input among them.
   */
  encodesTo?: Hex[];
}

/** A deterministic payload of n bytes (i mod 251, so it never lines up with lengths). */
function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

const V: Vector[] = [];

// ---------------------------------------------------------------------------------------------
// MQTT 3.1.1 (protocol level 4)
// ---------------------------------------------------------------------------------------------

V.push({
  name: 'v4 CONNECT minimal: empty client id, clean session, keep-alive off',
  version: 4,
  wire: hex(
    '10', 'CONNECT, flags 0000 [MQTT-2.2.2-1]',
    '0c', 'remaining length 12',
    '0004 4d515454', 'protocol name "MQTT" [MQTT-3.1.2-1]',
    '04', 'protocol level 4 = 3.1.1',
    '02', 'connect flags: clean session (bit 1)',
    '0000', 'keep alive 0 s (off)',
    '0000', 'client id "" (allowed with clean session [MQTT-3.1.3-7])',
  ),
  packet: { type: PacketType.CONNECT, protocolVersion: 4, clientId: '', keepAliveSec: 0, clean: true },
});

V.push({
  name: 'v4 CONNECT with will (QoS 1, retained), username and password',
  version: 4,
  wire: hex(
    '10', 'CONNECT',
    '2f', 'remaining length 47',
    '0004 4d515454', 'protocol name "MQTT"',
    '04', 'protocol level 4',
    'ec', 'flags: username(7) password(6) will retain(5) will QoS 01(4-3) will(2); clean 0',
    '003c', 'keep alive 60 s',
    '0006 7772656e2d31', 'client id "wren-1"',
    '000a 6465762f737461747573', 'will topic "dev/status"',
    '0003 6f6666', 'will message "off" (binary, 2-byte length)',
    '0004 75736572', 'user name "user"',
    '0004 010200ff', 'password 01 02 00 ff (binary data)',
  ),
  packet: {
    type: PacketType.CONNECT,
    protocolVersion: 4,
    clientId: 'wren-1',
    keepAliveSec: 60,
    clean: false,
    will: { topic: 'dev/status', payload: utf8('off'), qos: 1, retain: true },
    username: 'user',
    password: bytesOf(1, 2, 0, 0xff),
  },
});

V.push({
  name: 'v4 CONNECT with will QoS 2 (not retained), empty will message, username only, keep-alive 65535',
  version: 4,
  wire: hex(
    '10', 'CONNECT',
    '15', 'remaining length 21',
    '0004 4d515454', 'protocol name',
    '04', 'level 4',
    '96', 'flags: username(7) will QoS 10(4-3) will(2) clean(1)',
    'ffff', 'keep alive 65535 s',
    '0001 63', 'client id "c"',
    '0001 77', 'will topic "w"',
    '0000', 'will message: zero bytes',
    '0001 75', 'user name "u"',
  ),
  packet: {
    type: PacketType.CONNECT,
    protocolVersion: 4,
    clientId: 'c',
    keepAliveSec: 65535,
    clean: true,
    will: { topic: 'w', payload: new Uint8Array(0), qos: 2, retain: false },
    username: 'u',
  },
});

V.push({
  name: 'v4 CONNACK accepted, no session',
  version: 4,
  wire: hex('20', 'CONNACK', '02', 'remaining length 2', '00', 'acknowledge flags: session present 0', '00', 'return code 0 accepted'),
  packet: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 },
});

V.push({
  name: 'v4 CONNACK accepted, session present',
  version: 4,
  wire: hex('20', 'CONNACK', '02', 'remaining length 2', '01', 'session present 1 (bit 0)', '00', 'return code 0'),
  packet: { type: PacketType.CONNACK, sessionPresent: true, reasonCode: 0 },
});

V.push({
  name: 'v4 CONNACK refused: not authorized (5)',
  version: 4,
  wire: hex('20', 'CONNACK', '02', 'remaining length 2', '00', 'session present 0 [MQTT-3.2.2-4]', '05', 'return code 5 not authorized'),
  packet: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 5 },
});

V.push({
  name: 'v4 PUBLISH QoS 0',
  version: 4,
  wire: hex(
    '30', 'PUBLISH, DUP 0, QoS 0, RETAIN 0',
    '08', 'remaining length 8',
    '0004 74657374', 'topic "test"',
    '6869', 'payload "hi" (no packet id at QoS 0)',
  ),
  packet: { type: PacketType.PUBLISH, topic: 'test', payload: utf8('hi'), qos: 0, retain: false, dup: false },
});

V.push({
  name: 'v4 PUBLISH QoS 1, DUP and RETAIN',
  version: 4,
  wire: hex(
    '3b', 'PUBLISH, DUP 1 (bit 3), QoS 01 (bits 2-1), RETAIN 1 (bit 0)',
    '09', 'remaining length 9',
    '0003 612f62', 'topic "a/b"',
    '1234', 'packet id 0x1234',
    '00ff', 'payload 00 ff',
  ),
  packet: { type: PacketType.PUBLISH, topic: 'a/b', payload: bytesOf(0, 0xff), qos: 1, retain: true, dup: true, packetId: 0x1234 },
});

V.push({
  name: 'v4 PUBLISH QoS 2, packet id 65535, empty payload',
  version: 4,
  wire: hex(
    '34', 'PUBLISH, QoS 10',
    '09', 'remaining length 9',
    '0005 782f792f7a', 'topic "x/y/z"',
    'ffff', 'packet id 65535',
  ),
  packet: { type: PacketType.PUBLISH, topic: 'x/y/z', payload: new Uint8Array(0), qos: 2, retain: false, dup: false, packetId: 65535 },
});

V.push({
  name: 'v4 PUBLISH topic with BOM, 2-byte and 4-byte UTF-8 (BOM kept [MQTT-1.5.3-3])',
  version: 4,
  wire: hex(
    '30', 'PUBLISH QoS 0',
    '12', 'remaining length 18',
    '0010', 'topic length 16 bytes',
    'efbbbf', 'U+FEFF zero width no-break space (must not be stripped)',
    '74656d702f', '"temp/"',
    'c2b0 43', '"°C" (U+00B0 is 2 bytes)',
    '2f', '"/"',
    'f09f9880', 'U+1F600 (4 bytes, a surrogate pair in JS)',
  ),
  packet: { type: PacketType.PUBLISH, topic: '\uFEFFtemp/°C/\u{1F600}', payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
});

// Remaining length boundaries (3.1.1 section 2.2.3 table 2.4 / 5.0 section 1.5.5).
for (const [rl, enc] of [
  [127, '7f'],
  [128, '8001'],
  [16383, 'ff7f'],
  [16384, '808001'],
  [2097151, 'ffff7f'],
  [2097152, '80808001'],
] as Array<[number, string]>) {
  const n = rl - 3;
  for (const version of [4, 5] as Version[]) {
    const extra = version === 5 ? 1 : 0;
    const m = n - extra;
    V.push({
      name: 'v' + version + ' PUBLISH with remaining length ' + rl + ' (' + enc + ')',
      version,
      wire:
        version === 4
          ? hex('30', 'PUBLISH QoS 0', enc, 'remaining length ' + rl, '0001 74', 'topic "t"', pattern(m), 'payload ' + m + ' bytes')
          : hex('30', 'PUBLISH QoS 0', enc, 'remaining length ' + rl, '0001 74', 'topic "t"', '00', 'property length 0', pattern(m), 'payload ' + m + ' bytes'),
      packet: { type: PacketType.PUBLISH, topic: 't', payload: pattern(m), qos: 0, retain: false, dup: false },
    });
  }
}

V.push({
  name: 'v4 PUBACK',
  version: 4,
  wire: hex('40', 'PUBACK, flags 0000', '02', 'remaining length 2', '0001', 'packet id 1'),
  packet: { type: PacketType.PUBACK, packetId: 1 },
});
V.push({
  name: 'v4 PUBREC',
  version: 4,
  wire: hex('50', 'PUBREC, flags 0000', '02', 'remaining length 2', '0102', 'packet id 258'),
  packet: { type: PacketType.PUBREC, packetId: 258 },
});
V.push({
  name: 'v4 PUBREL',
  version: 4,
  wire: hex('62', 'PUBREL, flags 0010 [MQTT-3.6.1-1]', '02', 'remaining length 2', '0102', 'packet id 258'),
  packet: { type: PacketType.PUBREL, packetId: 258 },
});
V.push({
  name: 'v4 PUBCOMP',
  version: 4,
  wire: hex('70', 'PUBCOMP, flags 0000', '02', 'remaining length 2', 'ffff', 'packet id 65535'),
  packet: { type: PacketType.PUBCOMP, packetId: 65535 },
});

V.push({
  name: 'v4 SUBSCRIBE three filters (QoS 1, 0 with wildcards, 2 multi-level)',
  version: 4,
  wire: hex(
    '82', 'SUBSCRIBE, flags 0010 [MQTT-3.8.1-1]',
    '14', 'remaining length 20',
    '0001', 'packet id 1',
    '0003 612f62', 'filter "a/b"',
    '01', 'requested QoS 1',
    '0005 2b2f782f23', 'filter "+/x/#"',
    '00', 'requested QoS 0',
    '0001 23', 'filter "#"',
    '02', 'requested QoS 2',
  ),
  packet: {
    type: PacketType.SUBSCRIBE,
    packetId: 1,
    subscriptions: [
      { topic: 'a/b', qos: 1 },
      { topic: '+/x/#', qos: 0 },
      { topic: '#', qos: 2 },
    ],
  },
});

V.push({
  name: 'v4 SUBACK with the failure code 0x80',
  version: 4,
  wire: hex(
    '90', 'SUBACK',
    '06', 'remaining length 6',
    '0001', 'packet id 1',
    '00 01 02', 'granted QoS 0, 1, 2',
    '80', 'failure [MQTT-3.9.3-2 allows 0x00, 0x01, 0x02, 0x80]',
  ),
  packet: { type: PacketType.SUBACK, packetId: 1, reasonCodes: [0, 1, 2, 0x80] },
});

V.push({
  name: 'v4 UNSUBSCRIBE two filters',
  version: 4,
  wire: hex(
    'a2', 'UNSUBSCRIBE, flags 0010 [MQTT-3.10.1-1]',
    '0a', 'remaining length 10',
    '0002', 'packet id 2',
    '0003 612f62', 'filter "a/b"',
    '0001 23', 'filter "#"',
  ),
  packet: { type: PacketType.UNSUBSCRIBE, packetId: 2, topics: ['a/b', '#'] },
});

V.push({
  name: 'v4 UNSUBACK',
  version: 4,
  wire: hex('b0', 'UNSUBACK', '02', 'remaining length 2', '0002', 'packet id 2'),
  packet: { type: PacketType.UNSUBACK, packetId: 2 },
});

V.push({ name: 'v4 PINGREQ', version: 4, wire: hex('c0', 'PINGREQ', '00', 'remaining length 0'), packet: { type: PacketType.PINGREQ } });
V.push({ name: 'v4 PINGRESP', version: 4, wire: hex('d0', 'PINGRESP', '00', 'remaining length 0'), packet: { type: PacketType.PINGRESP } });
V.push({ name: 'v4 DISCONNECT', version: 4, wire: hex('e0', 'DISCONNECT', '00', 'remaining length 0'), packet: { type: PacketType.DISCONNECT } });

// ---------------------------------------------------------------------------------------------
// MQTT 5.0 (protocol level 5)
// ---------------------------------------------------------------------------------------------

V.push({
  name: 'v5 CONNECT minimal',
  version: 5,
  wire: hex(
    '10', 'CONNECT',
    '0d', 'remaining length 13',
    '0004 4d515454', 'protocol name "MQTT"',
    '05', 'protocol version 5',
    '02', 'connect flags: clean start',
    '0000', 'keep alive 0',
    '00', 'property length 0',
    '0000', 'client id ""',
  ),
  packet: { type: PacketType.CONNECT, protocolVersion: 5, clientId: '', keepAliveSec: 0, clean: true },
});

V.push({
  name: 'v5 CONNECT with every CONNECT property and every will property',
  version: 5,
  wire: hex(
    '10', 'CONNECT',
    '8101', 'remaining length 129 (2-byte variable byte integer)',
    '0004 4d515454', 'protocol name',
    '05', 'version 5',
    'ce', 'flags: username(7) password(6) will QoS 01(4-3) will(2) clean start(1); will retain 0',
    '001e', 'keep alive 30 s',
    '28', 'property length 40',
    '11 00000e10', '0x11 session expiry interval 3600 s (four byte integer)',
    '15 0005 534352414d', '0x15 authentication method "SCRAM"',
    '16 0002 abcd', '0x16 authentication data ab cd',
    '17 00', '0x17 request problem information 0',
    '19 01', '0x19 request response information 1',
    '21 0014', '0x21 receive maximum 20',
    '22 000a', '0x22 topic alias maximum 10',
    '26 0001 6b 0001 76', '0x26 user property "k" = "v"',
    '27 00010000', '0x27 maximum packet size 65536',
    '0006 7772656e2d35', 'client id "wren-5"',
    '2c', 'will property length 44',
    '01 01', '0x01 payload format indicator 1 (UTF-8)',
    '02 0000003c', '0x02 message expiry interval 60 s',
    '03 000a 746578742f706c61696e', '0x03 content type "text/plain"',
    '08 0003 722f74', '0x08 response topic "r/t"',
    '09 0003 010203', '0x09 correlation data 01 02 03',
    '18 0000001e', '0x18 will delay interval 30 s',
    '26 0001 61 0001 62', '0x26 user property "a" = "b"',
    '0007 6465762f6c7774', 'will topic "dev/lwt"',
    '0003 627965', 'will payload "bye"',
    '0004 75736572', 'user name "user"',
    '0003 707764', 'password "pwd"',
  ),
  packet: {
    type: PacketType.CONNECT,
    protocolVersion: 5,
    clientId: 'wren-5',
    keepAliveSec: 30,
    clean: true,
    username: 'user',
    password: utf8('pwd'),
    properties: {
      sessionExpiryInterval: 3600,
      authenticationMethod: 'SCRAM',
      authenticationData: bytesOf(0xab, 0xcd),
      requestProblemInformation: false,
      requestResponseInformation: true,
      receiveMaximum: 20,
      topicAliasMaximum: 10,
      userProperties: [['k', 'v']],
      maximumPacketSize: 65536,
    },
    will: {
      topic: 'dev/lwt',
      payload: utf8('bye'),
      qos: 1,
      retain: false,
      properties: {
        payloadFormatIndicator: true,
        messageExpiryInterval: 60,
        contentType: 'text/plain',
        responseTopic: 'r/t',
        correlationData: bytesOf(1, 2, 3),
        willDelayInterval: 30,
        userProperties: [['a', 'b']],
      },
    },
  },
});

V.push({
  name: 'v5 CONNECT with retained will QoS 0 and no will properties',
  version: 5,
  wire: hex(
    '10', 'CONNECT',
    '14', 'remaining length 20',
    '0004 4d515454', 'protocol name',
    '05', 'version 5',
    '26', 'flags: will retain(5) will(2) clean start(1)',
    '0000', 'keep alive 0',
    '00', 'property length 0',
    '0001 78', 'client id "x"',
    '00', 'will property length 0',
    '0001 77', 'will topic "w"',
    '0000', 'will payload: zero bytes',
  ),
  packet: {
    type: PacketType.CONNECT,
    protocolVersion: 5,
    clientId: 'x',
    keepAliveSec: 0,
    clean: true,
    will: { topic: 'w', payload: new Uint8Array(0), qos: 0, retain: true },
  },
});

V.push({
  name: 'v5 CONNACK success, no properties',
  version: 5,
  wire: hex('20', 'CONNACK', '03', 'remaining length 3', '00', 'acknowledge flags 0', '00', 'reason code 0x00 success', '00', 'property length 0'),
  packet: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 },
});

V.push({
  name: 'v5 CONNACK with session present and the server capability properties',
  version: 5,
  wire: hex(
    '20', 'CONNACK',
    '40', 'remaining length 64',
    '01', 'session present',
    '00', 'reason code success',
    '3d', 'property length 61',
    '11 00000078', '0x11 session expiry interval 120',
    '12 0004 77726e31', '0x12 assigned client identifier "wrn1"',
    '13 003c', '0x13 server keep alive 60',
    '1a 0004 72657370', '0x1A response information "resp"',
    '21 0100', '0x21 receive maximum 256',
    '22 0005', '0x22 topic alias maximum 5',
    '24 01', '0x24 maximum QoS 1',
    '25 00', '0x25 retain available 0',
    '26 0002 6b31 0002 7631', '0x26 user property "k1" = "v1"',
    '26 0002 6b30 0002 7630', '0x26 user property "k0" = "v0" (order kept, not sorted)',
    '27 00100000', '0x27 maximum packet size 1048576',
    '28 01', '0x28 wildcard subscription available 1',
    '29 00', '0x29 subscription identifiers available 0',
    '2a 01', '0x2A shared subscription available 1',
  ),
  packet: {
    type: PacketType.CONNACK,
    sessionPresent: true,
    reasonCode: 0,
    properties: {
      sessionExpiryInterval: 120,
      assignedClientIdentifier: 'wrn1',
      serverKeepAlive: 60,
      responseInformation: 'resp',
      receiveMaximum: 256,
      topicAliasMaximum: 5,
      maximumQoS: 1,
      retainAvailable: false,
      userProperties: [
        ['k1', 'v1'],
        ['k0', 'v0'],
      ],
      maximumPacketSize: 1048576,
      wildcardSubscriptionAvailable: true,
      subscriptionIdentifiersAvailable: false,
      sharedSubscriptionAvailable: true,
    },
  },
});

V.push({
  name: 'v5 CONNACK success with enhanced authentication',
  version: 5,
  wire: hex(
    '20', 'CONNACK',
    '11', 'remaining length 17',
    '00', 'session present 0',
    '00', 'success',
    '0e', 'property length 14',
    '15 0005 534352414d', '0x15 authentication method "SCRAM"',
    '16 0003 010203', '0x16 authentication data 01 02 03',
  ),
  packet: {
    type: PacketType.CONNACK,
    sessionPresent: false,
    reasonCode: 0,
    properties: { authenticationMethod: 'SCRAM', authenticationData: bytesOf(1, 2, 3) },
  },
});

V.push({
  name: 'v5 CONNACK refused: use another server, with server reference and reason string',
  version: 5,
  wire: hex(
    '20', 'CONNACK',
    '17', 'remaining length 23',
    '00', 'session present 0 [MQTT-3.2.2-6]',
    '9c', 'reason code 0x9C use another server',
    '14', 'property length 20',
    '1c 000a 6f746865723a31383833', '0x1C server reference "other:1883"',
    '1f 0004 6d6f7665', '0x1F reason string "move"',
  ),
  packet: {
    type: PacketType.CONNACK,
    sessionPresent: false,
    reasonCode: 0x9c,
    properties: { serverReference: 'other:1883', reasonString: 'move' },
  },
});

V.push({
  name: 'v5 PUBLISH QoS 0, no properties',
  version: 5,
  wire: hex('30', 'PUBLISH QoS 0', '09', 'remaining length 9', '0004 74657374', 'topic "test"', '00', 'property length 0', '6869', 'payload "hi"'),
  packet: { type: PacketType.PUBLISH, topic: 'test', payload: utf8('hi'), qos: 0, retain: false, dup: false },
});

V.push({
  name: 'v5 PUBLISH QoS 1 with every PUBLISH property (three subscription identifiers, repeated user property)',
  version: 5,
  wire: hex(
    '32', 'PUBLISH QoS 1',
    '40', 'remaining length 64',
    '0003 612f62', 'topic "a/b"',
    '000a', 'packet id 10',
    '35', 'property length 53',
    '01 00', '0x01 payload format indicator 0 (bytes)',
    '02 00000e10', '0x02 message expiry interval 3600',
    '03 0003 726177', '0x03 content type "raw"',
    '08 0005 7265706c79', '0x08 response topic "reply"',
    '09 0002 cafe', '0x09 correlation data ca fe',
    '0b 01', '0x0B subscription identifier 1',
    '0b 8001', '0x0B subscription identifier 128 (2-byte varint)',
    '0b ffffff7f', '0x0B subscription identifier 268435455 (4-byte varint maximum)',
    '23 0007', '0x23 topic alias 7',
    '26 0001 78 0001 31', '0x26 user property "x" = "1"',
    '26 0001 78 0001 32', '0x26 user property "x" = "2" (same name again, order kept)',
    '000102', 'payload 00 01 02',
  ),
  packet: {
    type: PacketType.PUBLISH,
    topic: 'a/b',
    payload: bytesOf(0, 1, 2),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 10,
    properties: {
      payloadFormatIndicator: false,
      messageExpiryInterval: 3600,
      contentType: 'raw',
      responseTopic: 'reply',
      correlationData: bytesOf(0xca, 0xfe),
      subscriptionIdentifiers: [1, 128, 268435455],
      topicAlias: 7,
      userProperties: [
        ['x', '1'],
        ['x', '2'],
      ],
    },
  },
});

V.push({
  name: 'v5 PUBLISH with zero-length topic and a topic alias',
  version: 5,
  wire: hex(
    '30', 'PUBLISH QoS 0',
    '07', 'remaining length 7',
    '0000', 'topic "" (allowed with a topic alias)',
    '03', 'property length 3',
    '23 0005', '0x23 topic alias 5',
    '78', 'payload "x"',
  ),
  packet: { type: PacketType.PUBLISH, topic: '', payload: utf8('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 5 } },
});

V.push({
  name: 'v5 PUBLISH QoS 2 retained, UTF-8 payload format',
  version: 5,
  wire: hex(
    '35', 'PUBLISH QoS 10 RETAIN 1',
    '0a', 'remaining length 10',
    '0001 74', 'topic "t"',
    '0002', 'packet id 2',
    '02', 'property length 2',
    '01 01', '0x01 payload format indicator 1',
    '6f6b', 'payload "ok"',
  ),
  packet: {
    type: PacketType.PUBLISH,
    topic: 't',
    payload: utf8('ok'),
    qos: 2,
    retain: true,
    dup: false,
    packetId: 2,
    properties: { payloadFormatIndicator: true },
  },
});

// Short-form acks [v5 3.4.2.1]: reason code and property length omitted when 0x00 and no properties.
for (const [type, first, name] of [
  [PacketType.PUBACK, '40', 'PUBACK'],
  [PacketType.PUBREC, '50', 'PUBREC'],
  [PacketType.PUBREL, '62', 'PUBREL'],
  [PacketType.PUBCOMP, '70', 'PUBCOMP'],
] as Array<[PacketType.PUBACK | PacketType.PUBREC | PacketType.PUBREL | PacketType.PUBCOMP, string, string]>) {
  V.push({
    name: 'v5 ' + name + ' short form (remaining length 2 means reason code 0x00)',
    version: 5,
    wire: hex(first, name, '02', 'remaining length 2', '0005', 'packet id 5'),
    packet: { type, packetId: 5, reasonCode: 0 },
  });
  V.push({
    name: 'v5 ' + name + ' success written in full (reason code 0, property length 0)',
    version: 5,
    wire: hex(first, name, '04', 'remaining length 4', '0005', 'packet id 5', '00', 'reason code 0x00', '00', 'property length 0'),
    packet: { type, packetId: 5, reasonCode: 0 },
    encodesTo: [hex(first, name, '02', 'remaining length 2', '0005', 'packet id 5')],
  });
}

V.push({
  name: 'v5 PUBACK 0x10 without property length (remaining length 3)',
  version: 5,
  wire: hex('40', 'PUBACK', '03', 'remaining length 3', '0001', 'packet id 1', '10', 'reason code 0x10 no matching subscribers; no property length: 0 [3.4.2.2.1]'),
  packet: { type: PacketType.PUBACK, packetId: 1, reasonCode: 0x10 },
  encodesTo: [
    hex('40', 'PUBACK', '03', 'remaining length 3', '0001', 'packet id 1', '10', 'reason code'),
    hex('40', 'PUBACK', '04', 'remaining length 4', '0001', 'packet id 1', '10', 'reason code', '00', 'property length 0'),
  ],
});

V.push({
  name: 'v5 PUBREC 0x10 with an empty property length',
  version: 5,
  wire: hex('50', 'PUBREC', '04', 'remaining length 4', '0002', 'packet id 2', '10', 'reason code 0x10', '00', 'property length 0'),
  packet: { type: PacketType.PUBREC, packetId: 2, reasonCode: 0x10 },
  encodesTo: [
    hex('50', 'PUBREC', '03', 'remaining length 3', '0002', 'packet id 2', '10', 'reason code'),
    hex('50', 'PUBREC', '04', 'remaining length 4', '0002', 'packet id 2', '10', 'reason code', '00', 'property length 0'),
  ],
});

V.push({
  name: 'v5 PUBACK 0x80 with a reason string',
  version: 5,
  wire: hex(
    '40', 'PUBACK',
    '0b', 'remaining length 11',
    '0001', 'packet id 1',
    '80', 'reason code 0x80 unspecified error',
    '07', 'property length 7',
    '1f 0004 6f6f7073', '0x1F reason string "oops"',
  ),
  packet: { type: PacketType.PUBACK, packetId: 1, reasonCode: 0x80, properties: { reasonString: 'oops' } },
});

V.push({
  name: 'v5 PUBREL 0x92 packet identifier not found',
  version: 5,
  wire: hex('62', 'PUBREL flags 0010', '03', 'remaining length 3', '0003', 'packet id 3', '92', 'reason code 0x92'),
  packet: { type: PacketType.PUBREL, packetId: 3, reasonCode: 0x92 },
  encodesTo: [
    hex('62', 'PUBREL', '03', 'remaining length 3', '0003', 'packet id 3', '92', 'reason code'),
    hex('62', 'PUBREL', '04', 'remaining length 4', '0003', 'packet id 3', '92', 'reason code', '00', 'property length 0'),
  ],
});

V.push({
  name: 'v5 PUBCOMP success with a user property (so not the short form)',
  version: 5,
  wire: hex(
    '70', 'PUBCOMP',
    '0b', 'remaining length 11',
    '0004', 'packet id 4',
    '00', 'reason code success',
    '07', 'property length 7',
    '26 0001 6b 0001 76', '0x26 user property "k" = "v"',
  ),
  packet: { type: PacketType.PUBCOMP, packetId: 4, reasonCode: 0, properties: { userProperties: [['k', 'v']] } },
});

V.push({
  name: 'v5 SUBSCRIBE with subscription identifier, user property and every subscription option',
  version: 5,
  wire: hex(
    '82', 'SUBSCRIBE flags 0010',
    '1c', 'remaining length 28',
    '0001', 'packet id 1',
    '09', 'property length 9',
    '0b 05', '0x0B subscription identifier 5',
    '26 0001 61 0001 62', '0x26 user property "a" = "b"',
    '0003 612f62', 'filter "a/b"',
    '2d', 'options: retain handling 2 (bits 5-4), RAP (3), NL (2), QoS 1 (1-0)',
    '0003 632f2b', 'filter "c/+"',
    '12', 'options: retain handling 1, QoS 2',
    '0001 23', 'filter "#"',
    '00', 'options: QoS 0, all flags 0',
  ),
  packet: {
    type: PacketType.SUBSCRIBE,
    packetId: 1,
    properties: { subscriptionIdentifiers: [5], userProperties: [['a', 'b']] },
    subscriptions: [
      { topic: 'a/b', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 },
      { topic: 'c/+', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 1 },
      { topic: '#', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    ],
  },
});

V.push({
  name: 'v5 SUBACK with every SUBACK reason code and a reason string',
  version: 5,
  wire: hex(
    '90', 'SUBACK',
    '19', 'remaining length 25',
    '0001', 'packet id 1',
    '0a', 'property length 10',
    '1f 0007 7061727469616c', '0x1F reason string "partial"',
    '00 01 02', 'granted QoS 0, 1, 2',
    '80 83 87 8f', 'unspecified, implementation specific, not authorized, topic filter invalid',
    '91 97 9e', 'packet id in use, quota exceeded, shared subscriptions not supported',
    'a1 a2', 'subscription identifiers not supported, wildcard subscriptions not supported',
  ),
  packet: {
    type: PacketType.SUBACK,
    packetId: 1,
    properties: { reasonString: 'partial' },
    reasonCodes: [0, 1, 2, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  },
});

V.push({
  name: 'v5 UNSUBSCRIBE with a user property',
  version: 5,
  wire: hex(
    'a2', 'UNSUBSCRIBE flags 0010',
    '14', 'remaining length 20',
    '0003', 'packet id 3',
    '07', 'property length 7',
    '26 0001 6b 0001 76', '0x26 user property "k" = "v"',
    '0003 612f62', 'filter "a/b"',
    '0003 632f2b', 'filter "c/+"',
  ),
  packet: { type: PacketType.UNSUBSCRIBE, packetId: 3, topics: ['a/b', 'c/+'], properties: { userProperties: [['k', 'v']] } },
});

V.push({
  name: 'v5 UNSUBACK with every UNSUBACK reason code',
  version: 5,
  wire: hex(
    'b0', 'UNSUBACK',
    '0a', 'remaining length 10',
    '0003', 'packet id 3',
    '00', 'property length 0',
    '00 11', 'success, no subscription existed',
    '80 83 87 8f 91', 'unspecified, implementation specific, not authorized, topic filter invalid, packet id in use',
  ),
  packet: { type: PacketType.UNSUBACK, packetId: 3, reasonCodes: [0, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91] },
});

V.push({ name: 'v5 PINGREQ', version: 5, wire: hex('c0', 'PINGREQ', '00', 'remaining length 0'), packet: { type: PacketType.PINGREQ } });
V.push({ name: 'v5 PINGRESP', version: 5, wire: hex('d0', 'PINGRESP', '00', 'remaining length 0'), packet: { type: PacketType.PINGRESP } });

V.push({
  name: 'v5 DISCONNECT normal, short form (remaining length 0 means reason 0x00 [3.14.2.1])',
  version: 5,
  wire: hex('e0', 'DISCONNECT', '00', 'remaining length 0'),
  packet: { type: PacketType.DISCONNECT, reasonCode: 0 },
});
V.push({
  name: 'v5 DISCONNECT normal with reason code only (remaining length 1: property length 0)',
  version: 5,
  wire: hex('e0', 'DISCONNECT', '01', 'remaining length 1', '00', 'reason code 0x00'),
  packet: { type: PacketType.DISCONNECT, reasonCode: 0 },
  encodesTo: [hex('e0', 'DISCONNECT', '00', 'remaining length 0')],
});
V.push({
  name: 'v5 DISCONNECT normal written in full',
  version: 5,
  wire: hex('e0', 'DISCONNECT', '02', 'remaining length 2', '00', 'reason code 0x00', '00', 'property length 0'),
  packet: { type: PacketType.DISCONNECT, reasonCode: 0 },
  encodesTo: [hex('e0', 'DISCONNECT', '00', 'remaining length 0')],
});
V.push({
  name: 'v5 DISCONNECT 0x8E session taken over, reason code only',
  version: 5,
  wire: hex('e0', 'DISCONNECT', '01', 'remaining length 1', '8e', 'reason code 0x8E'),
  packet: { type: PacketType.DISCONNECT, reasonCode: 0x8e },
  encodesTo: [
    hex('e0', 'DISCONNECT', '01', 'remaining length 1', '8e', 'reason code'),
    hex('e0', 'DISCONNECT', '02', 'remaining length 2', '8e', 'reason code', '00', 'property length 0'),
  ],
});
V.push({
  name: 'v5 DISCONNECT with will message (0x04), session expiry, reason string, user property',
  version: 5,
  wire: hex(
    'e0', 'DISCONNECT',
    '14', 'remaining length 20',
    '04', 'reason code 0x04 disconnect with will message',
    '12', 'property length 18',
    '11 00000000', '0x11 session expiry interval 0',
    '1f 0003 627965', '0x1F reason string "bye"',
    '26 0001 6b 0001 76', '0x26 user property "k" = "v"',
  ),
  packet: {
    type: PacketType.DISCONNECT,
    reasonCode: 4,
    properties: { sessionExpiryInterval: 0, reasonString: 'bye', userProperties: [['k', 'v']] },
  },
});
V.push({
  name: 'v5 DISCONNECT from the server: use another server, server reference',
  version: 5,
  wire: hex(
    'e0', 'DISCONNECT',
    '0f', 'remaining length 15',
    '9c', 'reason code 0x9C use another server',
    '0d', 'property length 13',
    '1c 000a 6f746865723a31383833', '0x1C server reference "other:1883"',
  ),
  packet: { type: PacketType.DISCONNECT, reasonCode: 0x9c, properties: { serverReference: 'other:1883' } },
});

V.push({
  name: 'v5 AUTH success, short form (remaining length 0 [3.15.2.1])',
  version: 5,
  wire: hex('f0', 'AUTH', '00', 'remaining length 0'),
  packet: { type: PacketType.AUTH, reasonCode: 0 },
});
V.push({
  name: 'v5 AUTH success written in full',
  version: 5,
  wire: hex('f0', 'AUTH', '02', 'remaining length 2', '00', 'reason code 0x00', '00', 'property length 0'),
  packet: { type: PacketType.AUTH, reasonCode: 0 },
  encodesTo: [hex('f0', 'AUTH', '00', 'remaining length 0')],
});
V.push({
  name: 'v5 AUTH continue authentication (0x18) with method, data, reason string, user property',
  version: 5,
  wire: hex(
    'f0', 'AUTH',
    '1f', 'remaining length 31',
    '18', 'reason code 0x18 continue authentication',
    '1d', 'property length 29',
    '15 0005 534352414d', '0x15 authentication method "SCRAM"',
    '16 0004 01020304', '0x16 authentication data 01 02 03 04',
    '1f 0004 6d6f7265', '0x1F reason string "more"',
    '26 0001 6b 0001 76', '0x26 user property "k" = "v"',
  ),
  packet: {
    type: PacketType.AUTH,
    reasonCode: 0x18,
    properties: {
      authenticationMethod: 'SCRAM',
      authenticationData: bytesOf(1, 2, 3, 4),
      reasonString: 'more',
      userProperties: [['k', 'v']],
    },
  },
});
V.push({
  name: 'v5 AUTH re-authenticate (0x19)',
  version: 5,
  wire: hex('f0', 'AUTH', '0a', 'remaining length 10', '19', 'reason code 0x19 re-authenticate', '08', 'property length 8', '15 0005 534352414d', '0x15 authentication method "SCRAM"'),
  packet: { type: PacketType.AUTH, reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM' } },
});

V.push({
  name: 'v5 PUBLISH with empty strings and empty binary in properties',
  version: 5,
  wire: hex(
    '30', 'PUBLISH QoS 0',
    '0f', 'remaining length 15',
    '0001 74', 'topic "t"',
    '0b', 'property length 11',
    '03 0000', '0x03 content type ""',
    '09 0000', '0x09 correlation data (zero bytes)',
    '26 0000 0000', '0x26 user property "" = ""',
  ),
  packet: {
    type: PacketType.PUBLISH,
    topic: 't',
    payload: new Uint8Array(0),
    qos: 0,
    retain: false,
    dup: false,
    properties: { contentType: '', correlationData: new Uint8Array(0), userProperties: [['', '']] },
  },
});

// ---------------------------------------------------------------------------------------------

/** Byte-at-a-time is O(n) pushes; above this size the vector is also fed in mixed chunk sizes. */
const BYTEWISE_LIMIT = 70000;

function notes(v: Vector): string {
  return v.name + '\n  ' + v.wire.notes.join('\n  ');
}

function runVector(v: Vector): void {
  const wire = v.wire.bytes;
  checkRemainingLength(wire);
  const want = canon(v.packet, v.version);

  // decode, whole
  const whole = decodeChunks(wire, v.version);
  expect(whole.length, notes(v)).toBe(1);
  expect(canon(whole[0], v.version), notes(v)).toEqual(want);

  // decode, one byte at a time (or in awkward chunks for the megabyte vectors)
  const pieces = wire.length <= BYTEWISE_LIMIT ? decodeBytewise(wire, v.version) : decodeChunks(wire, v.version, [1, 2, 3, 4093, 65536, 7]);
  expect(pieces.length, notes(v)).toBe(1);
  expect(canon(pieces[0], v.version), notes(v)).toEqual(want);

  // encode
  const out = encode(v.packet, v.version);
  expect(out).toBeInstanceOf(Uint8Array);
  const accepted = (v.encodesTo || [v.wire]).map((h) => toHex(h.bytes));
  expect(accepted, notes(v) + '\n  encoder wrote ' + toHex(out).slice(0, 400)).toContain(toHex(out));

  // round-trip: what we encode decodes to the packet we encoded
  const back = decodeChunks(out, v.version);
  expect(back.length).toBe(1);
  expect(canon(back[0], v.version)).toEqual(canon(decodedForm(v.packet, v.version), v.version));
}

describe('codec byte vectors', () => {
  for (const v of V) {
    it(v.name, () => runVector(v));
  }

  it('every property identifier appears in at least one v5 vector', () => {
    const ids = new Set<string>();
    for (const v of V) {
      if (v.version !== 5) continue;
      for (const n of v.wire.notes) {
        const m = /^([0-9a-f]{2}) .*\s0x([0-9A-F]{2}) /.exec(n);
        if (m) ids.add(m[2].toLowerCase());
      }
    }
    const all = '01 02 03 08 09 0b 11 12 13 15 16 17 18 19 1a 1c 1f 21 22 23 24 25 26 27 28 29 2a'.split(' ');
    expect(all.filter((id) => !ids.has(id))).toEqual([]);
  });

  it('every packet type is covered in both versions (AUTH in v5 only)', () => {
    for (const version of [4, 5] as Version[]) {
      const types = new Set(V.filter((v) => v.version === version).map((v) => v.packet.type as number));
      const want = version === 5 ? 15 : 14;
      for (let t = 1; t <= want; t++) expect(types.has(t), 'v' + version + ' type ' + t).toBe(true);
    }
  });

  for (const version of [4, 5] as Version[]) {
    it('v' + version + ': all small vectors concatenated decode in order, whole, byte by byte and in odd chunks', () => {
      const vs = V.filter((v) => v.version === version && v.wire.bytes.length < 1000);
      const total = vs.reduce((n, v) => n + v.wire.bytes.length, 0);
      const stream = new Uint8Array(total);
      let at = 0;
      for (const v of vs) {
        stream.set(v.wire.bytes, at);
        at += v.wire.bytes.length;
      }
      const want = vs.map((v) => canon(v.packet, version));
      expect(decodeChunks(stream, version).map((p) => canon(p, version))).toEqual(want);
      expect(decodeBytewise(stream, version).map((p) => canon(p, version))).toEqual(want);
      for (const sizes of [[2], [3], [5, 1], [7, 13, 1], [64]]) {
        expect(decodeChunks(stream, version, sizes).map((p) => canon(p, version))).toEqual(want);
      }
    });
  }

  it('vbi() and s() helpers agree with the spec examples (self-check of the test helpers)', () => {
    // 5.0 section 1.5.5 table 1-1 / 3.1.1 table 2.4
    expect(vbi(0)).toBe('00');
    expect(vbi(127)).toBe('7f');
    expect(vbi(128)).toBe('8001');
    expect(vbi(16383)).toBe('ff7f');
    expect(vbi(16384)).toBe('808001');
    expect(vbi(2097151)).toBe('ffff7f');
    expect(vbi(2097152)).toBe('80808001');
    expect(vbi(268435455)).toBe('ffffff7f');
    // 3.1.1 figure 1.1 example: "A𪛔" = 00 05 41 F0 AA 9B 94
    expect(s('A\u{2A6D4}')).toBe('0005 41f0aa9b94');
  });
});
