// Strictness: every malformed or forbidden input raises ProtocolError naming the rule broken
// (the specification's normative statement, e.g. "MQTT-3.3.1-4", or its section where the
// statement has no number) and, for v5, the reason code to disconnect with. Each bad vector is
// fed whole and one byte at a time: no packet may come out, only a ProtocolError; afterwards
// reset() makes the decoder usable again. The encoder refuses invalid application packets the
// same way, so bad bytes never reach the wire.
//
// Rule numbers: 3.1.1 and 5.0 number some statements differently (UTF-8 is 1.5.3 in 3.1.1 and
// 1.5.4 in 5.0; flags are 2.2.2 in 3.1.1 and 2.1.3 in 5.0; packet ids 2.3.1 / 2.2.1): where the
// codec may cite either, the regex accepts both. Reason codes follow 5.0 section 4.13 and the
// text at each rule: "is a Malformed Packet" -> 0x81, "is a Protocol Error" -> 0x82.

import { describe, expect, it } from 'vitest';
import { PacketType } from '../firmware/mqtt/types';
import type { Packet, Version } from '../firmware/mqtt/types';
import { checkRemainingLength, createDecoder, describeThrown, encode, hex, ProtocolError, thrown, toHex, UNLIMITED, vbi, type Hex } from './helpers/vectors';

const MALFORMED = 0x81;
const PROTOCOL = 0x82;
const TOO_LARGE = 0x95;

interface Bad {
  name: string;
  version: Version;
  wire: Hex;
  rule: RegExp;
  /** v5 only: acceptable reason codes (where the spec does not pin one down, more than one). */
  reasons?: number[];
  /** The remaining length itself is the fault, so the vector's self-check is skipped. */
  rawLength?: boolean;
}

const BAD: Bad[] = [];

function bad(name: string, versions: Version[], wire: (v: Version) => Hex, rule: RegExp | ((v: Version) => RegExp), reasons?: number[], rawLength?: boolean): void {
  for (const version of versions) {
    BAD.push({ name: 'v' + version + ' ' + name, version, wire: wire(version), rule: typeof rule === 'function' ? rule(version) : rule, reasons, rawLength });
  }
}

const BOTH: Version[] = [4, 5];
const V4: Version[] = [4];
const V5: Version[] = [5];

/** v5 inserts a property length of 0 where v4 has nothing. */
function props0(v: Version): string[] {
  return v === 5 ? ['00', 'property length 0'] : [];
}

/** A PUBLISH QoS 0 carrying `topic` (hex of the raw topic bytes, without the length). */
function publishTopic(v: Version, topicHex: string, note: string): Hex {
  const n = topicHex.replace(/\s+/g, '').length / 2;
  const rl = 2 + n + (v === 5 ? 1 : 0);
  return hex('30', 'PUBLISH QoS 0', vbi(rl), 'remaining length ' + rl, n.toString(16).padStart(4, '0'), 'topic length ' + n, topicHex, note, ...props0(v));
}

// ---------------------------------------------------------------------------------------------
// Fixed header: remaining length

bad('remaining length of 5 bytes', BOTH, () => hex('30', 'PUBLISH', 'ffffffff7f', 'remaining length with a 5th byte (max is 4 [1.5.5] / [2.2.3])'), /^MQTT-(1\.5\.5(-1)?|2\.2\.3|2\.1\.4)$/, [MALFORMED], true);
bad('remaining length whose 4th byte continues', BOTH, () => hex('c0', 'PINGREQ', '80808080', '4 bytes, all with the continuation bit', '00', '5th byte'), /^MQTT-(1\.5\.5(-1)?|2\.2\.3|2\.1\.4)$/, [MALFORMED], true);
bad('remaining length 0 in two bytes (not minimal)', V5, () => hex('c0', 'PINGREQ', '8000', 'remaining length 0 encoded as 80 00 [MQTT-1.5.5-1]'), /^MQTT-1\.5\.5-1$/, [MALFORMED]);
bad('remaining length 8 in two bytes (not minimal)', V5, () => hex('30', 'PUBLISH', '8800', 'remaining length 8 as 88 00', '0001 74', 'topic "t"', '00', 'props', '6869 6a6b', 'payload'), /^MQTT-1\.5\.5-1$/, [MALFORMED]);
bad('property length not minimal', V5, () => hex('30', 'PUBLISH', '06', 'remaining length 6', '0001 74', 'topic "t"', '8000', 'property length 0 as 80 00', '78', 'payload'), /^MQTT-1\.5\.5-1$/, [MALFORMED]);
bad('subscription identifier not minimal', V5, () => hex('30', 'PUBLISH', '07', 'remaining length 7', '0001 74', 'topic', '03', 'property length 3', '0b 8100', 'subscription identifier 1 as 81 00'), /^MQTT-1\.5\.5-1$/, [MALFORMED]);
// 3.1.1 has no statement forbidding a non-minimal remaining length, so v4 is not tested for it.

// ---------------------------------------------------------------------------------------------
// Lengths that do not add up (truncated fields, extra bytes)

const LEN = /^MQTT-\d/; // no single normative statement: the codec cites the section it checks

bad('topic length past the end of the packet', BOTH, (v) => hex('30', 'PUBLISH', v === 5 ? '04' : '03', 'remaining length', '0005', 'topic length 5', '74', 'only 1 byte follows', ...(v === 5 ? ['00', 'and 1 more'] : [])), LEN, [MALFORMED]);
bad('QoS 1 PUBLISH with no room for the packet id', BOTH, () => hex('32', 'PUBLISH QoS 1', '03', 'remaining length 3', '0001 74', 'topic "t", then nothing'), LEN, [MALFORMED]);
bad('PUBACK with remaining length 1', BOTH, () => hex('40', 'PUBACK', '01', 'remaining length 1', '00', 'half a packet id'), LEN, [MALFORMED]);
bad('CONNACK with remaining length 1', BOTH, () => hex('20', 'CONNACK', '01', 'remaining length 1', '00', 'flags, no return code'), LEN, [MALFORMED]);
bad('CONNACK with remaining length 3', V4, () => hex('20', 'CONNACK', '03', 'remaining length 3 (3.1.1: exactly 2)', '00 00', 'flags, code', '00', 'extra byte'), LEN);
bad('PUBACK with remaining length 3', V4, () => hex('40', 'PUBACK', '03', 'remaining length 3 (3.1.1: exactly 2)', '0001', 'id', '00', 'extra byte'), LEN);
bad('UNSUBACK with remaining length 3', V4, () => hex('b0', 'UNSUBACK', '03', 'remaining length 3 (3.1.1: exactly 2)', '0001', 'id', '00', 'extra byte'), LEN);
bad('DISCONNECT with remaining length 1', V4, () => hex('e0', 'DISCONNECT', '01', 'remaining length 1 (3.1.1: 0)', '00', 'extra byte'), LEN);
bad('PINGREQ with remaining length 1', BOTH, () => hex('c0', 'PINGREQ', '01', 'remaining length 1 (must be 0)', '00', 'extra byte'), LEN, [MALFORMED]);
bad('PINGRESP with remaining length 1', BOTH, () => hex('d0', 'PINGRESP', '01', 'remaining length 1 (must be 0)', '00', 'extra byte'), LEN, [MALFORMED]);
bad('CONNECT cut inside the protocol name', BOTH, () => hex('10', 'CONNECT', '04', 'remaining length 4', '0004 4d51', 'protocol name "MQ" of 4'), LEN, [MALFORMED]);
bad('CONNECT with the user name flag but no user name', V4, () => hex('10', 'CONNECT', '0d', 'remaining length 13', '0004 4d515454', 'name', '04', 'level', '82', 'flags: user name, clean', '0000', 'keep alive', '0001 63', 'client id "c", then no user name'), LEN);
bad('SUBSCRIBE filter without its options byte', V4, () => hex('82', 'SUBSCRIBE', '05', 'remaining length 5', '0001', 'id', '0001 23', 'filter "#", no options byte'), LEN);
bad('property length past the end of the packet', V5, () => hex('30', 'PUBLISH', '05', 'remaining length 5', '0001 74', 'topic', '09', 'property length 9', '00', 'one byte left'), LEN, [MALFORMED]);
bad('property value cut by the property length', V5, () => hex('30', 'PUBLISH', '07', 'remaining length 7', '0001 74', 'topic', '02', 'property length 2', '23 00', 'topic alias needs 2 bytes, 1 inside the properties', '78', 'payload'), LEN, [MALFORMED]);
bad('binary property longer than the properties', V5, () => hex('30', 'PUBLISH', '08', 'remaining length 8', '0001 74', 'topic', '04', 'property length 4', '09 0005 01', 'correlation data length 5, 1 byte'), LEN, [MALFORMED]);
bad('user property without its value', V5, () => hex('30', 'PUBLISH', '08', 'remaining length 8', '0001 74', 'topic', '04', 'property length 4', '26 0001 6b', 'name "k", no value'), LEN, [MALFORMED]);

// ---------------------------------------------------------------------------------------------
// Reserved packet types and fixed-header flags

bad('packet type 0 (reserved)', BOTH, () => hex('00', 'type 0: reserved, forbidden', '00', 'remaining length 0'), /^MQTT-2\.(1\.2|2\.1)$/, [MALFORMED]);
bad('packet type 15 (reserved in 3.1.1)', V4, () => hex('f0', 'type 15: reserved in 3.1.1 (AUTH in 5.0)', '00', 'remaining length 0'), /^MQTT-2\.(1\.2|2\.1)$/);

const FLAGS = /^MQTT-(2\.2\.2-[12]|2\.1\.3-1|3\.(6|8|10|14|15)\.1-1)$/;
const FLAG_CASES: Array<[string, Version[], string, (v: Version) => string[]]> = [
  ['CONNECT', BOTH, '11', (v) => [v === 5 ? '0d' : '0c', 'remaining length', '0004 4d515454', 'name', v === 5 ? '05' : '04', 'level', '02', 'clean', '0000', 'keep alive', ...props0(v), '0000', 'client id ""']],
  ['CONNACK', BOTH, '28', (v) => [v === 5 ? '03' : '02', 'remaining length', '00 00', 'flags, code', ...props0(v)]],
  ['PUBACK', BOTH, '42', () => ['02', 'remaining length', '0001', 'packet id']],
  ['PUBREC', BOTH, '51', () => ['02', 'remaining length', '0001', 'packet id']],
  ['PUBREL (0000 instead of 0010)', BOTH, '60', () => ['02', 'remaining length', '0001', 'packet id']],
  ['PUBREL (0011)', BOTH, '63', () => ['02', 'remaining length', '0001', 'packet id']],
  ['PUBCOMP', BOTH, '74', () => ['02', 'remaining length', '0001', 'packet id']],
  ['SUBSCRIBE (0000)', BOTH, '80', (v) => [v === 5 ? '07' : '06', 'remaining length', '0001', 'packet id', ...props0(v), '0001 23', 'filter "#"', '00', 'QoS 0']],
  ['SUBSCRIBE (1010)', BOTH, '8a', (v) => [v === 5 ? '07' : '06', 'remaining length', '0001', 'packet id', ...props0(v), '0001 23', 'filter "#"', '00', 'QoS 0']],
  ['SUBACK', BOTH, '98', (v) => [v === 5 ? '04' : '03', 'remaining length', '0001', 'packet id', ...props0(v), '00', 'granted QoS 0']],
  ['UNSUBSCRIBE (0000)', BOTH, 'a0', (v) => [v === 5 ? '06' : '05', 'remaining length', '0001', 'packet id', ...props0(v), '0001 23', 'filter "#"']],
  ['UNSUBACK', BOTH, 'b2', (v) => [v === 5 ? '03' : '02', 'remaining length', '0001', 'packet id', ...props0(v)]],
  ['PINGREQ', BOTH, 'c1', () => ['00', 'remaining length 0']],
  ['PINGRESP', BOTH, 'd4', () => ['00', 'remaining length 0']],
  ['DISCONNECT', BOTH, 'e8', () => ['00', 'remaining length 0']],
  ['AUTH', V5, 'f2', () => ['00', 'remaining length 0']],
];
for (const [name, versions, first, body] of FLAG_CASES) {
  bad(name + ' with reserved flags ' + first[1], versions, (v) => hex(first, name + ': flags 0x' + first[1] + ' are reserved values [MQTT-2.2.2-1] / [MQTT-2.1.3-1]', ...body(v)), FLAGS, [MALFORMED]);
}

bad('PUBLISH QoS 3 (both QoS bits set)', BOTH, (v) => hex('36', 'PUBLISH, QoS bits 11 [MQTT-3.3.1-4]', v === 5 ? '0b' : '0a', 'remaining length', '0004 74657374', 'topic "test"', '0001', 'packet id', ...props0(v), '6869', 'payload'), /^MQTT-3\.3\.1-4$/, [MALFORMED]);
bad('PUBLISH QoS 3 with DUP and RETAIN', BOTH, (v) => hex('3f', 'PUBLISH, DUP, QoS 11, RETAIN', v === 5 ? '0b' : '0a', 'remaining length', '0004 74657374', 'topic', '0001', 'packet id', ...props0(v), '6869', 'payload'), /^MQTT-3\.3\.1-4$/, [MALFORMED]);
bad('DUP on a QoS 0 PUBLISH', BOTH, (v) => hex('38', 'PUBLISH, DUP 1 with QoS 0 [MQTT-3.3.1-2]', v === 5 ? '09' : '08', 'remaining length', '0004 74657374', 'topic "test"', ...props0(v), '6869', 'payload'), /^MQTT-3\.3\.1-2$/, [MALFORMED, PROTOCOL]);

// ---------------------------------------------------------------------------------------------
// UTF-8 [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]) and U+0000 [MQTT-1.5.4-2] ([MQTT-1.5.3-2])

const ILL = /^MQTT-1\.5\.[34]-1$/;
const NUL = /^MQTT-1\.5\.[34]-2$/;
const UTF8_CASES: Array<[string, string, RegExp]> = [
  ['lone continuation byte', '61 80', ILL],
  ['overlong "/" (c0 af)', 'c0af', ILL],
  ['overlong 3-byte (e0 80 af)', 'e080af', ILL],
  ['overlong 4-byte (f0 80 80 af)', 'f08080af', ILL],
  ['surrogate U+D800 (ed a0 80)', 'eda080', ILL],
  ['surrogate U+DFFF (ed bf bf)', 'edbfbf', ILL],
  ['surrogate pair written as CESU-8', 'eda0bd edb880', ILL],
  ['3-byte sequence cut by the end of the string', '61 e282', ILL],
  ['2-byte lead followed by ASCII', 'c3 41', ILL],
  ['code point above U+10FFFF (f4 90 80 80)', 'f4908080', ILL],
  ['5-byte form (f8 88 80 80 80)', 'f888808080', ILL],
  ['byte ff', '61ff', ILL],
  ['byte fe', 'fe', ILL],
  ['U+0000 alone', '00', NUL],
  ['U+0000 inside', '61 00 62', NUL],
  ['overlong U+0000 (c0 80)', 'c080', /^MQTT-1\.5\.[34]-[12]$/],
];
for (const [name, topicHex, rule] of UTF8_CASES) {
  bad('PUBLISH topic: ' + name, BOTH, (v) => publishTopic(v, topicHex, name), rule, [MALFORMED]);
}
bad('CONNECT client id with a surrogate', BOTH, (v) => hex('10', 'CONNECT', v === 5 ? '10' : '0f', 'remaining length', '0004 4d515454', 'name', v === 5 ? '05' : '04', 'level', '02', 'clean', '0000', 'keep alive', ...props0(v), '0003 eda080', 'client id: U+D800'), ILL, [MALFORMED]);
bad('CONNECT user name with a surrogate', V4, () => hex('10', 'CONNECT', '12', 'remaining length 18', '0004 4d515454', 'name', '04', 'level', '82', 'user name, clean', '0000', 'keep alive', '0001 63', 'client id "c"', '0003 eda080', 'user name: U+D800'), ILL);
bad('CONNECT will topic with a surrogate', V4, () => hex('10', 'CONNECT', '14', 'remaining length 20', '0004 4d515454', 'name', '04', 'level', '06', 'will, clean', '0000', 'keep alive', '0001 63', 'client id "c"', '0003 eda080', 'will topic: U+D800', '0000', 'will payload'), ILL);
bad('SUBSCRIBE filter with a surrogate', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '09' : '08', 'remaining length', '0001', 'id', ...props0(v), '0003 eda080', 'filter: U+D800', '00', 'QoS 0'), ILL, [MALFORMED]);
bad('UNSUBSCRIBE filter with a surrogate', BOTH, (v) => hex('a2', 'UNSUBSCRIBE', v === 5 ? '08' : '07', 'remaining length', '0001', 'id', ...props0(v), '0003 eda080', 'filter: U+D800'), ILL, [MALFORMED]);
bad('reason string with a surrogate', V5, () => hex('40', 'PUBACK', '0a', 'remaining length 10', '0001', 'id', '80', 'reason', '06', 'property length 6', '1f 0003 eda080', 'reason string: U+D800'), ILL, [MALFORMED]);
bad('user property name with a surrogate', V5, () => hex('30', 'PUBLISH', '0c', 'remaining length 12', '0001 74', 'topic', '08', 'property length 8', '26 0003 eda080 0000', 'user property name U+D800, value ""'), ILL, [MALFORMED]);
bad('user property value with a surrogate', V5, () => hex('30', 'PUBLISH', '0c', 'remaining length 12', '0001 74', 'topic', '08', 'property length 8', '26 0000 0003 eda080', 'user property "" = U+D800'), ILL, [MALFORMED]);
bad('assigned client identifier with U+0000', V5, () => hex('20', 'CONNACK', '07', 'remaining length 7', '00 00', 'flags, success', '04', 'property length 4', '12 0001 00', 'assigned client id "\\0"'), NUL, [MALFORMED]);

// ---------------------------------------------------------------------------------------------
// Topics

bad('PUBLISH with a zero-length topic', V4, () => hex('30', 'PUBLISH', '02', 'remaining length 2', '0000', 'topic "" [MQTT-4.7.3-1]'), /^MQTT-(4\.7\.3-1|3\.3\.2-1)$/);
bad('PUBLISH with a zero-length topic and no topic alias', V5, () => hex('30', 'PUBLISH', '03', 'remaining length 3', '0000', 'topic ""', '00', 'no properties, so no alias'), /^MQTT-(4\.7\.3-1|3\.3\.2-\d+)$/, [PROTOCOL]);
bad('PUBLISH with a zero-length topic and other properties but no alias', V5, () => hex('30', 'PUBLISH', '05', 'remaining length 5', '0000', 'topic ""', '02', 'property length 2', '01 01', 'payload format indicator'), /^MQTT-(4\.7\.3-1|3\.3\.2-\d+)$/, [PROTOCOL]);
bad('PUBLISH topic with "+"', BOTH, (v) => publishTopic(v, '612f2b', '"a/+" [MQTT-3.3.2-2]'), /^MQTT-3\.3\.2-2$/, [PROTOCOL, 0x90]);
bad('PUBLISH topic with "#"', BOTH, (v) => publishTopic(v, '23', '"#" [MQTT-3.3.2-2]'), /^MQTT-3\.3\.2-2$/, [PROTOCOL, 0x90]);
bad('SUBSCRIBE filter with "#" not last', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '09' : '08', 'remaining length', '0001', 'id', ...props0(v), '0003 232f61', 'filter "#/a": "#" must be last', '00', 'QoS 0'), /^MQTT-4\.7\.1-[12]$/, [MALFORMED, PROTOCOL, 0x8f]);
bad('SUBSCRIBE with an empty filter', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '06' : '05', 'remaining length', '0001', 'id', ...props0(v), '0000', 'filter "" [MQTT-4.7.3-1]', '00', 'QoS 0'), /^MQTT-4\.7\.3-1$/, [MALFORMED, PROTOCOL, 0x8f]);
bad('UNSUBSCRIBE with an empty filter', BOTH, (v) => hex('a2', 'UNSUBSCRIBE', v === 5 ? '05' : '04', 'remaining length', '0001', 'id', ...props0(v), '0000', 'filter "" [MQTT-4.7.3-1]'), /^MQTT-4\.7\.3-1$/, [MALFORMED, PROTOCOL, 0x8f]);
bad('SUBSCRIBE filter with "+" inside a level', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '08' : '07', 'remaining length', '0001', 'id', ...props0(v), '0002 612b', 'filter "a+": "+" must be a whole level', '00', 'QoS 0'), /^MQTT-4\.7\.1-[23]$/, [MALFORMED, PROTOCOL, 0x8f]);

// ---------------------------------------------------------------------------------------------
// Packet identifier 0 ([MQTT-2.3.1-1] in 3.1.1; [MQTT-2.2.1-3] and following in 5.0)

const PID0 = /^MQTT-2\.(3\.1-1|2\.1-[3-6])$/;
bad('PUBLISH QoS 1 with packet id 0', BOTH, (v) => hex('32', 'PUBLISH QoS 1', v === 5 ? '06' : '05', 'remaining length', '0001 74', 'topic "t"', '0000', 'packet id 0', ...props0(v)), PID0, [MALFORMED, PROTOCOL]);
bad('PUBLISH QoS 2 with packet id 0', BOTH, (v) => hex('34', 'PUBLISH QoS 2', v === 5 ? '06' : '05', 'remaining length', '0001 74', 'topic "t"', '0000', 'packet id 0', ...props0(v)), PID0, [MALFORMED, PROTOCOL]);
bad('SUBSCRIBE with packet id 0', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '07' : '06', 'remaining length', '0000', 'packet id 0', ...props0(v), '0001 23', 'filter "#"', '00', 'QoS 0'), PID0, [MALFORMED, PROTOCOL]);
bad('UNSUBSCRIBE with packet id 0', BOTH, (v) => hex('a2', 'UNSUBSCRIBE', v === 5 ? '06' : '05', 'remaining length', '0000', 'packet id 0', ...props0(v), '0001 23', 'filter "#"'), PID0, [MALFORMED, PROTOCOL]);
for (const [name, first] of [
  ['PUBACK', '40'],
  ['PUBREC', '50'],
  ['PUBREL', '62'],
  ['PUBCOMP', '70'],
]) {
  bad(name + ' with packet id 0', BOTH, () => hex(first, name, '02', 'remaining length 2', '0000', 'packet id 0: no PUBLISH can have it'), PID0, [MALFORMED, PROTOCOL]);
}
bad('SUBACK with packet id 0', BOTH, (v) => hex('90', 'SUBACK', v === 5 ? '04' : '03', 'remaining length', '0000', 'packet id 0', ...props0(v), '00', 'QoS 0'), PID0, [MALFORMED, PROTOCOL]);
bad('UNSUBACK with packet id 0', BOTH, (v) => hex('b0', 'UNSUBACK', v === 5 ? '04' : '02', 'remaining length', '0000', 'packet id 0', ...(v === 5 ? ['00', 'property length 0', '00', 'success'] : [])), PID0, [MALFORMED, PROTOCOL]);

// ---------------------------------------------------------------------------------------------
// v5 properties: duplicated (Protocol Error), misplaced or unknown (Malformed Packet [2.2.2.2]),
// and values out of range (Protocol Error at each property's definition)

const DUP = /^MQTT-(2\.2\.2(\.\d)?|3\.\d+\.\d(\.\d+)*)(-\d+)?$/;
const PROP = /^MQTT-2\.2\.2(\.\d)?(-\d+)?$/;
function publishProps(propsHex: string, note: string): Hex {
  const n = propsHex.replace(/\s+/g, '').length / 2;
  return hex('30', 'PUBLISH QoS 0', vbi(3 + 1 + n), 'remaining length', '0001 74', 'topic "t"', vbi(n), 'property length ' + n, propsHex, note);
}
function connectProps(propsHex: string, note: string): Hex {
  const n = propsHex.replace(/\s+/g, '').length / 2;
  return hex('10', 'CONNECT', vbi(10 + 1 + n + 2), 'remaining length', '0004 4d515454', 'name', '05', 'level', '02', 'clean', '0000', 'keep alive', vbi(n), 'property length ' + n, propsHex, note, '0000', 'client id ""');
}
function willProps(propsHex: string, note: string): Hex {
  const n = propsHex.replace(/\s+/g, '').length / 2;
  return hex('10', 'CONNECT', vbi(10 + 1 + 2 + 1 + n + 3 + 2), 'remaining length', '0004 4d515454', 'name', '05', 'level', '06', 'will, clean', '0000', 'keep alive', '00', 'property length 0', '0000', 'client id ""', vbi(n), 'will property length ' + n, propsHex, note, '0001 77', 'will topic "w"', '0000', 'will payload');
}
function connackProps(propsHex: string, note: string): Hex {
  const n = propsHex.replace(/\s+/g, '').length / 2;
  return hex('20', 'CONNACK', vbi(2 + 1 + n), 'remaining length', '00 00', 'flags, success', vbi(n), 'property length ' + n, propsHex, note);
}

bad('PUBLISH with topic alias twice', V5, () => publishProps('23 0001 23 0002', 'topic alias 1, then 2'), DUP, [PROTOCOL]);
bad('PUBLISH with payload format indicator twice', V5, () => publishProps('01 00 01 01', 'payload format indicator twice'), DUP, [PROTOCOL]);
bad('PUBLISH with message expiry interval twice', V5, () => publishProps('02 00000001 02 00000001', 'message expiry twice'), DUP, [PROTOCOL]);
bad('PUBLISH with content type twice', V5, () => publishProps('03 0001 61 03 0001 61', 'content type twice'), DUP, [PROTOCOL]);
bad('PUBLISH with response topic twice', V5, () => publishProps('08 0001 61 08 0001 62', 'response topic twice'), DUP, [PROTOCOL]);
bad('PUBLISH with correlation data twice', V5, () => publishProps('09 0001 01 09 0001 02', 'correlation data twice'), DUP, [PROTOCOL]);
bad('CONNECT with session expiry interval twice', V5, () => connectProps('11 00000001 11 00000002', 'session expiry twice'), DUP, [PROTOCOL]);
bad('CONNECT with receive maximum twice', V5, () => connectProps('21 0001 21 0002', 'receive maximum twice'), DUP, [PROTOCOL]);
bad('CONNECT with authentication method twice', V5, () => connectProps('15 0001 61 15 0001 61', 'authentication method twice'), DUP, [PROTOCOL]);
bad('will properties with will delay interval twice', V5, () => willProps('18 00000001 18 00000002', 'will delay twice'), DUP, [PROTOCOL]);
bad('CONNACK with maximum QoS twice', V5, () => connackProps('24 00 24 01', 'maximum QoS twice'), DUP, [PROTOCOL]);
bad('CONNACK with server keep alive twice', V5, () => connackProps('13 0001 13 0002', 'server keep alive twice'), DUP, [PROTOCOL]);
bad('PUBACK with reason string twice', V5, () => hex('40', 'PUBACK', '0c', 'remaining length 12', '0001', 'id', '00', 'success', '08', 'property length 8', '1f 0001 61 1f 0001 62', 'reason string twice'), DUP, [PROTOCOL]);
bad('SUBSCRIBE with subscription identifier twice', V5, () => hex('82', 'SUBSCRIBE', '0b', 'remaining length 11', '0001', 'id', '04', 'property length 4', '0b 01 0b 02', 'subscription identifier twice (one allowed [3.8.2.1.2])', '0001 23', 'filter "#"', '00', 'QoS 0'), DUP, [PROTOCOL]);
bad('AUTH with authentication method twice', V5, () => hex('f0', 'AUTH', '0c', 'remaining length 12', '18', 'continue', '0a', 'property length 10', '15 0002 6161 15 0002 6262', 'authentication method twice'), DUP, [PROTOCOL]);
bad('DISCONNECT with session expiry interval twice', V5, () => hex('e0', 'DISCONNECT', '0c', 'remaining length 12', '00', 'normal', '0a', 'property length 10', '11 00000000 11 00000000', 'session expiry twice'), DUP, [PROTOCOL]);

bad('CONNECT with a topic alias', V5, () => connectProps('23 0001', 'topic alias: PUBLISH only'), PROP, [MALFORMED]);
bad('CONNECT with a will delay interval outside the will', V5, () => connectProps('18 00000001', 'will delay interval: will properties only'), PROP, [MALFORMED]);
bad('CONNECT with maximum QoS', V5, () => connectProps('24 01', 'maximum QoS: CONNACK only'), PROP, [MALFORMED]);
bad('will properties with session expiry interval', V5, () => willProps('11 00000001', 'session expiry: not a will property'), PROP, [MALFORMED]);
bad('PUBLISH with session expiry interval', V5, () => publishProps('11 00000001', 'session expiry: not in PUBLISH'), PROP, [MALFORMED]);
bad('PUBLISH with authentication method', V5, () => publishProps('15 0001 61', 'authentication method: not in PUBLISH'), PROP, [MALFORMED]);
bad('PUBACK with server keep alive', V5, () => hex('40', 'PUBACK', '07', 'remaining length 7', '0001', 'id', '00', 'success', '03', 'property length 3', '13 0001', 'server keep alive: CONNACK only'), PROP, [MALFORMED]);
bad('SUBSCRIBE with a reason string', V5, () => hex('82', 'SUBSCRIBE', '0b', 'remaining length 11', '0001', 'id', '04', 'property length 4', '1f 0001 61', 'reason string: not in SUBSCRIBE', '0001 23', 'filter', '00', 'QoS 0'), PROP, [MALFORMED]);
bad('UNSUBSCRIBE with a subscription identifier', V5, () => hex('a2', 'UNSUBSCRIBE', '08', 'remaining length 8', '0001', 'id', '02', 'property length 2', '0b 01', 'subscription identifier: not in UNSUBSCRIBE', '0001 23', 'filter'), PROP, [MALFORMED]);
bad('AUTH with a topic alias', V5, () => hex('f0', 'AUTH', '05', 'remaining length 5', '18', 'continue', '03', 'property length 3', '23 0001', 'topic alias: not in AUTH'), PROP, [MALFORMED]);
// The identifier is a variable byte integer [2.2.2.2]: 0x80 0x01 is 128 (ff alone would be a
// non-minimal or unfinished integer, a different fault).
for (const id of ['00', '04', '2b', '7f', '8001']) {
  bad('PUBLISH with unknown property identifier ' + id, V5, () => publishProps(id + ' 00', 'identifier ' + id + ' is not defined'), PROP, [MALFORMED]);
}

const VALUE = /^MQTT-\d/;
bad('topic alias 0', V5, () => publishProps('23 0000', 'topic alias 0 [MQTT-3.3.2-8]'), /^MQTT-(3\.3\.2-8|3\.3\.2\.3\.4|2\.2\.2(\.\d)?)$/, [PROTOCOL, 0x94]);
bad('payload format indicator 2', V5, () => publishProps('01 02', 'payload format indicator must be 0 or 1'), VALUE, [PROTOCOL]);
bad('subscription identifier 0 in PUBLISH', V5, () => publishProps('0b 00', 'subscription identifier 0 is a Protocol Error'), VALUE, [PROTOCOL]);
bad('subscription identifier 0 in SUBSCRIBE', V5, () => hex('82', 'SUBSCRIBE', '09', 'remaining length 9', '0001', 'id', '02', 'property length 2', '0b 00', 'subscription identifier 0', '0001 23', 'filter', '00', 'QoS 0'), VALUE, [PROTOCOL]);
bad('receive maximum 0', V5, () => connackProps('21 0000', 'receive maximum 0 is a Protocol Error'), VALUE, [PROTOCOL]);
bad('maximum packet size 0', V5, () => connackProps('27 00000000', 'maximum packet size 0 is a Protocol Error'), VALUE, [PROTOCOL]);
bad('maximum QoS 2', V5, () => connackProps('24 02', 'maximum QoS must be 0 or 1'), VALUE, [PROTOCOL]);
bad('retain available 2', V5, () => connackProps('25 02', 'retain available must be 0 or 1'), VALUE, [PROTOCOL]);
bad('request problem information 2', V5, () => connectProps('17 02', 'request problem information must be 0 or 1'), VALUE, [PROTOCOL]);

// ---------------------------------------------------------------------------------------------
// Reason codes a packet may not carry

const REASON = /^MQTT-(3\.(2\.2-[68]|4\.2-1|5\.2-1|6\.2-1|7\.2-1|9\.3-2|11\.3-2|14\.2-1|15\.2-1)|2\.4)$/;
bad('CONNACK reason 0x18 (an AUTH code)', V5, () => hex('20', 'CONNACK', '03', 'rl 3', '00', 'flags', '18', 'reason 0x18', '00', 'props'), REASON, [MALFORMED, PROTOCOL]);
bad('CONNACK reason 0x01 (a 3.1.1 return code)', V5, () => hex('20', 'CONNACK', '03', 'rl 3', '00', 'flags', '01', 'reason 0x01', '00', 'props'), REASON, [MALFORMED, PROTOCOL]);
bad('PUBACK reason 0x05', V5, () => hex('40', 'PUBACK', '03', 'rl 3', '0001', 'id', '05', 'reason 0x05'), REASON, [MALFORMED, PROTOCOL]);
bad('PUBACK reason 0x92 (a PUBREL code)', V5, () => hex('40', 'PUBACK', '03', 'rl 3', '0001', 'id', '92', 'reason 0x92'), REASON, [MALFORMED, PROTOCOL]);
bad('PUBREC reason 0x92', V5, () => hex('50', 'PUBREC', '03', 'rl 3', '0001', 'id', '92', 'reason 0x92'), REASON, [MALFORMED, PROTOCOL]);
bad('PUBREL reason 0x10', V5, () => hex('62', 'PUBREL', '03', 'rl 3', '0001', 'id', '10', 'reason 0x10'), REASON, [MALFORMED, PROTOCOL]);
bad('PUBCOMP reason 0x80', V5, () => hex('70', 'PUBCOMP', '03', 'rl 3', '0001', 'id', '80', 'reason 0x80'), REASON, [MALFORMED, PROTOCOL]);
bad('SUBACK reason 0x03', V5, () => hex('90', 'SUBACK', '04', 'rl 4', '0001', 'id', '00', 'props', '03', 'reason 0x03'), REASON, [MALFORMED, PROTOCOL]);
bad('SUBACK reason 0x11 (an UNSUBACK code)', V5, () => hex('90', 'SUBACK', '04', 'rl 4', '0001', 'id', '00', 'props', '11', 'reason 0x11'), REASON, [MALFORMED, PROTOCOL]);
bad('UNSUBACK reason 0x01', V5, () => hex('b0', 'UNSUBACK', '04', 'rl 4', '0001', 'id', '00', 'props', '01', 'reason 0x01'), REASON, [MALFORMED, PROTOCOL]);
bad('DISCONNECT reason 0x05', V5, () => hex('e0', 'DISCONNECT', '01', 'rl 1', '05', 'reason 0x05'), REASON, [MALFORMED, PROTOCOL]);
bad('DISCONNECT reason 0x18', V5, () => hex('e0', 'DISCONNECT', '02', 'rl 2', '18', 'reason 0x18', '00', 'props'), REASON, [MALFORMED, PROTOCOL]);
bad('AUTH reason 0x01', V5, () => hex('f0', 'AUTH', '02', 'rl 2', '01', 'reason 0x01', '00', 'props'), REASON, [MALFORMED, PROTOCOL]);
bad('AUTH reason 0x04', V5, () => hex('f0', 'AUTH', '02', 'rl 2', '04', 'reason 0x04', '00', 'props'), REASON, [MALFORMED, PROTOCOL]);
bad('CONNACK return code 6 (reserved)', V4, () => hex('20', 'CONNACK', '02', 'rl 2', '00', 'flags', '06', 'return code 6: reserved [3.2.2.3]'), /^MQTT-(3\.2\.2(-\d+)?|2\.4)$/);
bad('SUBACK return code 0x03', V4, () => hex('90', 'SUBACK', '03', 'rl 3', '0001', 'id', '03', 'return code 3 [MQTT-3.9.3-2]'), /^MQTT-(3\.9\.3-2|2\.4)$/);
bad('SUBACK return code 0x81', V4, () => hex('90', 'SUBACK', '03', 'rl 3', '0001', 'id', '81', 'return code 0x81 [MQTT-3.9.3-2]'), /^MQTT-(3\.9\.3-2|2\.4)$/);

// ---------------------------------------------------------------------------------------------
// CONNECT, CONNACK, SUBSCRIBE internals

function connect(v: Version, flags: string, note: string, payloadParts: string[]): Hex {
  const payloadLen = payloadParts.filter((_, i) => i % 2 === 0).reduce((n, h) => n + h.replace(/\s+/g, '').length / 2, 0);
  const rl = 10 + (v === 5 ? 1 : 0) + payloadLen;
  return hex('10', 'CONNECT', vbi(rl), 'remaining length', '0004 4d515454', 'name', v === 5 ? '05' : '04', 'level', flags, note, '0000', 'keep alive', ...props0(v), ...payloadParts);
}
bad('CONNECT with the reserved flag set', BOTH, (v) => connect(v, '03', 'flags: clean + reserved bit 0 [MQTT-3.1.2-3]', ['0000', 'client id ""']), /^MQTT-3\.1\.2-3$/, [MALFORMED]);
bad('CONNECT with protocol name "MQTX"', BOTH, (v) => hex('10', 'CONNECT', v === 5 ? '0d' : '0c', 'remaining length', '0004 4d515458', 'protocol name "MQTX" [MQTT-3.1.2-1]', v === 5 ? '05' : '04', 'level', '02', 'clean', '0000', 'keep alive', ...props0(v), '0000', 'client id'), /^MQTT-3\.1\.2-1$/, [MALFORMED, PROTOCOL, 0x84]);
bad('CONNECT with will QoS 3', BOTH, (v) => connect(v, '1e', 'flags: will QoS 11, will, clean', ['0001 63', 'client id "c"', ...(v === 5 ? ['00', 'will properties'] : []), '0001 77', 'will topic "w"', '0000', 'will payload']), /^MQTT-3\.1\.2-(12|14)$/, [MALFORMED]);
bad('CONNECT with will QoS but no will', BOTH, (v) => connect(v, '0a', 'flags: will QoS 01 without the will flag', ['0000', 'client id ""']), (v) => (v === 5 ? /^MQTT-3\.1\.2-11$/ : /^MQTT-3\.1\.2-13$/), [MALFORMED]);
bad('CONNECT with will retain but no will', BOTH, (v) => connect(v, '22', 'flags: will retain without the will flag', ['0000', 'client id ""']), (v) => (v === 5 ? /^MQTT-3\.1\.2-13$/ : /^MQTT-3\.1\.2-15$/), [MALFORMED]);
bad('CONNECT with a password but no user name', V4, (v) => connect(v, '42', 'flags: password without user name [MQTT-3.1.2-22]', ['0000', 'client id ""', '0001 70', 'password "p"']), /^MQTT-3\.1\.2-22$/);
bad('CONNACK with reserved acknowledge flags', BOTH, (v) => hex('20', 'CONNACK', v === 5 ? '03' : '02', 'rl', '02', 'acknowledge flags: bit 1 is reserved [MQTT-3.2.2-1]', '00', 'success', ...props0(v)), /^MQTT-3\.2\.2-1$/, [MALFORMED]);
bad('SUBSCRIBE options with reserved bits', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '07' : '06', 'rl', '0001', 'id', ...props0(v), '0001 23', 'filter "#"', v === 5 ? '40' : '04', v === 5 ? 'options: bit 6 reserved [MQTT-3.8.3-5]' : 'options: bit 2 reserved in 3.1.1 [MQTT-3-8.3-4]'), /^MQTT-3[-.]8\.3-[45]$/, [MALFORMED]);
bad('SUBSCRIBE requesting QoS 3', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '07' : '06', 'rl', '0001', 'id', ...props0(v), '0001 23', 'filter "#"', '03', 'options: QoS 3'), /^MQTT-3[-.]8\.3(-[45])?$/, [MALFORMED, PROTOCOL]);
bad('SUBSCRIBE with retain handling 3', V5, () => hex('82', 'SUBSCRIBE', '07', 'rl', '0001', 'id', '00', 'props', '0001 23', 'filter "#"', '30', 'options: retain handling 3 is a Protocol Error [3.8.3.1]'), /^MQTT-3\.8\.3(\.1)?(-\d+)?$/, [MALFORMED, PROTOCOL]);
bad('SUBSCRIBE with no filters', BOTH, (v) => hex('82', 'SUBSCRIBE', v === 5 ? '03' : '02', 'rl', '0001', 'id', ...props0(v)), /^MQTT-3\.8\.3-[23]$/, [PROTOCOL, MALFORMED]);
bad('UNSUBSCRIBE with no filters', BOTH, (v) => hex('a2', 'UNSUBSCRIBE', v === 5 ? '03' : '02', 'rl', '0001', 'id', ...props0(v)), /^MQTT-3\.10\.3-2$/, [PROTOCOL, MALFORMED]);

// ---------------------------------------------------------------------------------------------

function check(e: unknown, b: Bad, how: string): void {
  const what = b.name + ' (' + how + ')\n  ' + b.wire.notes.join('\n  ') + '\n  got: ' + describeThrown(e);
  expect(e instanceof ProtocolError, what).toBe(true);
  const pe = e as ProtocolError;
  expect(pe.rule, what).toMatch(b.rule);
  expect(pe.message.length, what).toBeGreaterThan(0);
  if (b.version === 5 && b.reasons) expect(b.reasons, what).toContain(pe.reasonCode);
}

describe('decoder refuses malformed and forbidden input', () => {
  for (const b of BAD) {
    it(b.name, () => {
      if (!b.rawLength) checkRemainingLength(b.wire.bytes); // the vector itself adds up
      // whole
      const d = createDecoder(b.version, UNLIMITED);
      check(
        thrown(() => d.push(b.wire.bytes)),
        b,
        'whole',
      );
      // after the error, reset() gives a usable decoder
      d.reset();
      expect(d.buffered).toBe(0);
      expect(d.push(new Uint8Array([0xd0, 0x00]))).toEqual([{ type: PacketType.PINGRESP }]);

      // one byte at a time: nothing comes out before the error, and the error comes
      const e = createDecoder(b.version, UNLIMITED);
      let err: unknown = undefined;
      let out: Packet[] = [];
      for (let i = 0; i < b.wire.bytes.length && err === undefined; i++) {
        try {
          out = out.concat(e.push(b.wire.bytes.subarray(i, i + 1)));
        } catch (x) {
          err = x;
        }
      }
      expect(out, b.name + ': a partial packet came out').toEqual([]);
      expect(err !== undefined, b.name + ': byte-at-a-time decoding never refused ' + toHex(b.wire.bytes)).toBe(true);
      check(err, b, 'byte at a time');
    });
  }

  it('a valid packet followed by a bad one in the same chunk: the whole push throws ProtocolError', () => {
    const d = createDecoder(4, UNLIMITED);
    const e = thrown(() => d.push(new Uint8Array([0xd0, 0x00, 0x36, 0x00])));
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).rule).toBe('MQTT-3.3.1-4');
  });
});

describe('maximum packet size', () => {
  // 5.0 3.1.2.11.4 / 3.2.2.3.6: Maximum Packet Size is the total packet size, fixed header included.
  function publishOfTotal(v: Version, total: number): Uint8Array {
    // topic "t": 3 bytes; v5 property length: 1 byte; remaining length < 128 here: 1 byte.
    const rl = total - 2;
    const payloadLen = rl - 3 - (v === 5 ? 1 : 0);
    const b = new Uint8Array(total);
    b.set(v === 5 ? [0x30, rl, 0x00, 0x01, 0x74, 0x00] : [0x30, rl, 0x00, 0x01, 0x74]);
    for (let i = 0; i < payloadLen; i++) b[total - payloadLen + i] = i & 0xff;
    return b;
  }

  for (const v of [4, 5] as Version[]) {
    it('v' + v + ': a packet of exactly maxPacketSize bytes is accepted', () => {
      const d = createDecoder(v, 100);
      const out = d.push(publishOfTotal(v, 100));
      expect(out.length).toBe(1);
      expect(out[0].type).toBe(PacketType.PUBLISH);
    });

    it('v' + v + ': one byte more is refused from the fixed header alone, before the body', () => {
      const d = createDecoder(v, 100);
      const e = thrown(() => d.push(new Uint8Array([0x30, 99]))); // total 101
      expect(e, describeThrown(e)).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).rule).toMatch(/^MQTT-\d/);
      if (v === 5) expect((e as ProtocolError).reasonCode).toBe(TOO_LARGE);
      expect(d.buffered).toBeLessThanOrEqual(100);
    });

    it('v' + v + ': a 268,435,455-byte remaining length is refused by the 5th header byte; nothing is buffered beyond the limit', () => {
      const header = [0x30, 0xff, 0xff, 0xff, 0x7f];
      const d = createDecoder(v, 1 << 20);
      let err: unknown = undefined;
      let at = -1;
      for (let i = 0; i < header.length && err === undefined; i++) {
        try {
          expect(d.push(new Uint8Array([header[i]]))).toEqual([]);
        } catch (x) {
          err = x;
          at = i;
        }
        expect(d.buffered).toBeLessThanOrEqual(1 << 20);
      }
      expect(err, 'never refused').toBeInstanceOf(ProtocolError);
      expect(at).toBeLessThanOrEqual(4);
      if (v === 5) expect((err as ProtocolError).reasonCode).toBe(TOO_LARGE);
    });

    it('v' + v + ': the limit is per packet, not per chunk: two 60-byte packets in one 120-byte chunk', () => {
      const d = createDecoder(v, 100);
      const a = publishOfTotal(v, 60);
      const both = new Uint8Array(120);
      both.set(a, 0);
      both.set(a, 60);
      expect(d.push(both).length).toBe(2);
      expect(d.buffered).toBe(0);
    });

    it('v' + v + ': a big remaining length under the limit waits for its bytes without hanging', () => {
      const d = createDecoder(v, UNLIMITED);
      expect(d.push(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 0x74]))).toEqual([]);
      expect(d.buffered).toBeGreaterThan(0);
      d.reset();
      expect(d.buffered).toBe(0);
      expect(d.push(new Uint8Array([0xc0, 0x00]))).toEqual([{ type: PacketType.PINGREQ }]);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The encoder validates the application's packets

interface BadOut {
  name: string;
  versions: Version[];
  packet: unknown;
  rule: RegExp;
}

const T = { PUBLISH: PacketType.PUBLISH, CONNECT: PacketType.CONNECT, SUBSCRIBE: PacketType.SUBSCRIBE, UNSUBSCRIBE: PacketType.UNSUBSCRIBE, PUBACK: PacketType.PUBACK, PUBREL: PacketType.PUBREL, SUBACK: PacketType.SUBACK, AUTH: PacketType.AUTH, CONNACK: PacketType.CONNACK, DISCONNECT: PacketType.DISCONNECT };
const pub = (extra: Record<string, unknown>): unknown => ({ type: T.PUBLISH, topic: 'a/b', payload: new Uint8Array(0), qos: 0, retain: false, dup: false, ...extra });
const con = (extra: Record<string, unknown>): unknown => ({ type: T.CONNECT, clientId: 'c', keepAliveSec: 0, clean: true, ...extra });
const big = (n: number, ch: string): string => ch.repeat(n);

const BAD_OUT: BadOut[] = [
  { name: 'PUBLISH topic with "+"', versions: BOTH, packet: pub({ topic: 'a/+' }), rule: /^MQTT-3\.3\.2-2$/ },
  { name: 'PUBLISH topic with "#"', versions: BOTH, packet: pub({ topic: 'a/#' }), rule: /^MQTT-3\.3\.2-2$/ },
  { name: 'PUBLISH topic "+" alone', versions: BOTH, packet: pub({ topic: '+' }), rule: /^MQTT-3\.3\.2-2$/ },
  { name: 'PUBLISH with an empty topic (no alias)', versions: BOTH, packet: pub({ topic: '' }), rule: /^MQTT-(4\.7\.3-1|3\.3\.2-\d+)$/ },
  { name: 'PUBLISH QoS 3', versions: BOTH, packet: pub({ qos: 3, packetId: 1 }), rule: /^MQTT-3\.3\.1-4$/ },
  { name: 'PUBLISH QoS -1', versions: BOTH, packet: pub({ qos: -1 }), rule: /^MQTT-3\.3\.1-4$/ },
  { name: 'PUBLISH QoS 1 with packet id 0', versions: BOTH, packet: pub({ qos: 1, packetId: 0 }), rule: PID0 },
  { name: 'PUBLISH QoS 2 without a packet id', versions: BOTH, packet: pub({ qos: 2 }), rule: PID0 },
  { name: 'PUBLISH packet id 65536', versions: BOTH, packet: pub({ qos: 1, packetId: 65536 }), rule: /^MQTT-2\.(3\.1|2\.1)(-\d)?$/ },
  { name: 'PUBLISH packet id 1.5', versions: BOTH, packet: pub({ qos: 1, packetId: 1.5 }), rule: /^MQTT-2\.(3\.1|2\.1)(-\d)?$/ },
  { name: 'PUBLISH DUP at QoS 0', versions: BOTH, packet: pub({ dup: true }), rule: /^MQTT-3\.3\.1-2$/ },
  { name: 'PUBLISH topic with U+0000', versions: BOTH, packet: pub({ topic: 'a\u0000b' }), rule: NUL },
  { name: 'PUBLISH topic with a lone high surrogate', versions: BOTH, packet: pub({ topic: 'a\ud800' }), rule: ILL },
  { name: 'PUBLISH topic with a lone low surrogate', versions: BOTH, packet: pub({ topic: '\udc00b' }), rule: ILL },
  { name: 'PUBLISH topic of 65536 bytes', versions: BOTH, packet: pub({ topic: big(65536, 'a') }), rule: /^MQTT-1\.5\.[34](-\d)?$/ },
  { name: 'PUBLISH topic of 21846 "€" = 65538 UTF-8 bytes (but only 21846 UTF-16 units)', versions: BOTH, packet: pub({ topic: big(21846, '€') }), rule: /^MQTT-1\.5\.[34](-\d)?$/ },
  { name: 'CONNECT client id of 65536 bytes', versions: BOTH, packet: con({ clientId: big(65536, 'c') }), rule: /^MQTT-1\.5\.[34](-\d)?$/ },
  { name: 'CONNECT user name of 65536 bytes', versions: BOTH, packet: con({ username: big(32768, 'é') }), rule: /^MQTT-1\.5\.[34](-\d)?$/ },
  { name: 'CONNECT password of 65536 bytes', versions: BOTH, packet: con({ username: 'u', password: new Uint8Array(65536) }), rule: /^MQTT-1\.5\.[56](-\d)?$/ },
  { name: 'CONNECT will payload of 65536 bytes', versions: BOTH, packet: con({ will: { topic: 'w', payload: new Uint8Array(65536), qos: 0, retain: false } }), rule: /^MQTT-(1\.5\.[56]|3\.1\.3)(-\d+)?$/ },
  { name: 'CONNECT will topic with "#"', versions: BOTH, packet: con({ will: { topic: 'w/#', payload: new Uint8Array(0), qos: 0, retain: false } }), rule: /^MQTT-3\.3\.2-2$/ },
  { name: 'CONNECT will QoS 3', versions: BOTH, packet: con({ will: { topic: 'w', payload: new Uint8Array(0), qos: 3, retain: false } }), rule: /^MQTT-(3\.1\.2-(12|14)|3\.3\.1-4)$/ }, // the will's own rule, or the PUBLISH QoS rule it becomes
  { name: 'CONNECT keep alive 65536', versions: BOTH, packet: con({ keepAliveSec: 65536 }), rule: /^MQTT-3\.1\.2(-\d+)?$/ },
  { name: 'CONNECT keep alive -1', versions: BOTH, packet: con({ keepAliveSec: -1 }), rule: /^MQTT-3\.1\.2(-\d+)?$/ },
  { name: 'CONNECT password without user name (3.1.1)', versions: V4, packet: con({ password: new Uint8Array(1) }), rule: /^MQTT-3\.1\.2-22$/ },
  { name: 'CONNECT empty client id without clean session (3.1.1)', versions: V4, packet: con({ clientId: '', clean: false }), rule: /^MQTT-3\.1\.3-(7|8)$/ },
  { name: 'SUBSCRIBE with no subscriptions', versions: BOTH, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [] }, rule: /^MQTT-3\.8\.3-[23]$/ },
  { name: 'SUBSCRIBE with packet id 0', versions: BOTH, packet: { type: T.SUBSCRIBE, packetId: 0, subscriptions: [{ topic: 'a', qos: 0 }] }, rule: PID0 },
  { name: 'SUBSCRIBE QoS 3', versions: BOTH, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: 'a', qos: 3 }] }, rule: /^MQTT-3[-.]8\.3(-\d+)?|^MQTT-3\.3\.1-4$/ },
  { name: 'SUBSCRIBE filter "a/#/b"', versions: BOTH, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: 'a/#/b', qos: 0 }] }, rule: /^MQTT-4\.7\.1-[12]$/ },
  { name: 'SUBSCRIBE filter "a+"', versions: BOTH, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: 'a+', qos: 0 }] }, rule: /^MQTT-4\.7\.1-[23]$/ },
  { name: 'SUBSCRIBE empty filter', versions: BOTH, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: '', qos: 0 }] }, rule: /^MQTT-4\.7\.3-1$/ },
  { name: 'SUBSCRIBE retain handling 3', versions: V5, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: 'a', qos: 0, retainHandling: 3 }] }, rule: /^MQTT-3\.8\.3(\.1)?(-\d+)?$/ },
  { name: 'UNSUBSCRIBE with no topics', versions: BOTH, packet: { type: T.UNSUBSCRIBE, packetId: 1, topics: [] }, rule: /^MQTT-3\.10\.3-2$/ },
  { name: 'UNSUBSCRIBE with packet id 0', versions: BOTH, packet: { type: T.UNSUBSCRIBE, packetId: 0, topics: ['a'] }, rule: PID0 },
  { name: 'PUBACK with packet id 0', versions: BOTH, packet: { type: T.PUBACK, packetId: 0 }, rule: PID0 },
  { name: 'PUBREL with packet id 0', versions: BOTH, packet: { type: T.PUBREL, packetId: 0 }, rule: PID0 },
  { name: 'SUBACK with packet id 0', versions: BOTH, packet: { type: T.SUBACK, packetId: 0, reasonCodes: [0] }, rule: PID0 },
  { name: 'user property value over 65535 bytes', versions: V5, packet: pub({ properties: { userProperties: [['k', big(65536, 'v')]] } }), rule: /^MQTT-1\.5\.[347](-\d)?$/ },
  { name: 'correlation data over 65535 bytes', versions: V5, packet: pub({ properties: { correlationData: new Uint8Array(65536) } }), rule: /^MQTT-(1\.5\.6|2\.2\.2)(-\d)?$/ },
  { name: 'topic alias 0', versions: V5, packet: pub({ properties: { topicAlias: 0 } }), rule: /^MQTT-(3\.3\.2-8|2\.2\.2(\.\d)?)$/ },
  { name: 'receive maximum 0', versions: V5, packet: con({ properties: { receiveMaximum: 0 } }), rule: /^MQTT-\d/ },
  { name: 'message expiry interval 2^32', versions: V5, packet: pub({ properties: { messageExpiryInterval: 4294967296 } }), rule: /^MQTT-\d/ },
  { name: 'subscription identifier 0', versions: V5, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: 'a', qos: 0 }], properties: { subscriptionIdentifiers: [0] } }, rule: /^MQTT-\d/ },
  { name: 'two subscription identifiers in SUBSCRIBE', versions: V5, packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [{ topic: 'a', qos: 0 }], properties: { subscriptionIdentifiers: [1, 2] } }, rule: /^MQTT-\d/ },
  { name: 'topic alias in CONNECT (misplaced)', versions: V5, packet: con({ properties: { topicAlias: 1 } }), rule: PROP },
  { name: 'session expiry in PUBLISH (misplaced)', versions: V5, packet: pub({ properties: { sessionExpiryInterval: 1 } }), rule: PROP },
  { name: 'unknown property name', versions: V5, packet: pub({ properties: { bogus: 1 } }), rule: PROP },
  { name: 'response topic with a wildcard', versions: V5, packet: pub({ properties: { responseTopic: 'r/#' } }), rule: /^MQTT-3\.3\.2-(2|14)$/ },
  { name: 'AUTH in 3.1.1', versions: V4, packet: { type: T.AUTH, reasonCode: 0 }, rule: /^MQTT-2\.(1\.2|2\.1)$/ },
  { name: 'PUBACK reason 0x05', versions: V5, packet: { type: T.PUBACK, packetId: 1, reasonCode: 5 }, rule: REASON },
  { name: 'AUTH reason 0xff', versions: V5, packet: { type: T.AUTH, reasonCode: 0xff }, rule: REASON },
  { name: 'DISCONNECT reason 0x05', versions: V5, packet: { type: T.DISCONNECT, reasonCode: 5 }, rule: REASON },
  { name: 'CONNACK reason 0x18', versions: V5, packet: { type: T.CONNACK, sessionPresent: false, reasonCode: 0x18 }, rule: REASON },
  { name: 'CONNACK return code 6', versions: V4, packet: { type: T.CONNACK, sessionPresent: false, reasonCode: 6 }, rule: /^MQTT-(3\.2\.2(-\d+)?|2\.4)$/ },
  { name: 'SUBACK return code 3', versions: V4, packet: { type: T.SUBACK, packetId: 1, reasonCodes: [3] }, rule: /^MQTT-(3\.9\.3-2|2\.4)$/ },
  { name: 'CONNACK session present with return code 5', versions: V4, packet: { type: T.CONNACK, sessionPresent: true, reasonCode: 5 }, rule: /^MQTT-3\.2\.2-4$/ },
  { name: 'CONNACK session present with reason 0x87', versions: V5, packet: { type: T.CONNACK, sessionPresent: true, reasonCode: 0x87 }, rule: /^MQTT-3\.2\.2-6$/ },
];

describe('encoder refuses invalid application packets', () => {
  for (const b of BAD_OUT) {
    for (const v of b.versions) {
      it('v' + v + ' ' + b.name, () => {
        const e = thrown(() => encode(b.packet as Packet, v));
        expect(e instanceof ProtocolError, describeThrown(e)).toBe(true);
        expect((e as ProtocolError).rule, describeThrown(e)).toMatch(b.rule);
      });
    }
  }
});
