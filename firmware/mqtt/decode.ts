// Bytes -> packet objects, streaming. The fixed header is checked as soon as it is complete (type,
// flags, remaining length against maxPacketSize) so an oversized or bogus packet is refused before
// its body is buffered. Complete packets inside a chunk are decoded in place; only an incomplete
// tail is copied, into a buffer of exactly the packet's size.

import { ProtocolError, Reason } from './errors';
import { readProps, WILL, whereOf } from './properties';
import { PacketType } from './types';
import type { Decoder, DisconnectPacket, Packet, QoS, SubackPacket, Version, Will } from './types';
import { Reader } from './wire';
import { checkTopicFilter } from './encode';

// Valid reason codes per packet (MQTT 5, section 2.4), as strings of code bytes for indexOf.
const CONNACK_CODES = '\x00\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8c\x90\x95\x97\x99\x9a\x9b\x9c\x9d\x9f';
const PUBACK_CODES = '\x00\x10\x80\x83\x87\x90\x91\x97\x99'; // PUBACK, PUBREC
const PUBREL_CODES = '\x00\x92'; // PUBREL, PUBCOMP
const SUBACK_CODES = '\x00\x01\x02\x80\x83\x87\x8f\x91\x97\x9e\xa1\xa2';
const UNSUBACK_CODES = '\x00\x11\x80\x83\x87\x8f\x91';
const DISCONNECT_CODES =
  '\x00\x04\x80\x81\x82\x83\x87\x89\x8b\x8d\x8e\x8f\x90\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f\xa0\xa1\xa2';
const AUTH_CODES = '\x00\x18\x19';

function checkReason(code: number, valid: string, what: string): number {
  if (valid.indexOf(String.fromCharCode(code)) < 0) {
    throw new ProtocolError('2.4', what + ' reason 0x' + code.toString(16), Reason.PROTOCOL_ERROR);
  }
  return code;
}

function malformed(rule: string, msg: string): ProtocolError {
  return new ProtocolError(rule, msg, Reason.MALFORMED_PACKET);
}

function protocol(rule: string, msg: string): ProtocolError {
  return new ProtocolError(rule, msg, Reason.PROTOCOL_ERROR);
}

/** The fixed header flags each type must carry (PUBLISH: checked in its body). */
function checkFlags(type: number, flags: number, version: number): void {
  if (type === PacketType.PUBLISH) {
    if ((flags & 6) === 6) throw malformed('3.3.1-4', 'PUBLISH with QoS 3');
    if (flags & 8 && !(flags & 6)) throw malformed('3.3.1-2', 'DUP set on a QoS 0 PUBLISH');
    return;
  }
  const want = type === PacketType.PUBREL || type === PacketType.SUBSCRIBE || type === PacketType.UNSUBSCRIBE ? 2 : 0;
  if (flags !== want) {
    const rule =
      type === PacketType.PUBREL
        ? '3.6.1-1'
        : type === PacketType.SUBSCRIBE
          ? '3.8.1-1'
          : type === PacketType.UNSUBSCRIBE
            ? '3.10.1-1'
            : version === 5
              ? '2.1.3-1'
              : '2.2.2-2';
    throw malformed(rule, 'bad flags 0x' + flags.toString(16) + ' type ' + type);
  }
}

function topicName(r: Reader, alias: boolean): string {
  const t = r.str();
  if (t.length === 0 && !alias) {
    throw protocol('4.7.3-1', r.version === 5 ? 'empty topic, no alias' : 'empty topic name');
  }
  if (t.indexOf('+') >= 0 || t.indexOf('#') >= 0) {
    throw new ProtocolError('3.3.2-2', 'wildcard in topic', Reason.TOPIC_NAME_INVALID);
  }
  return t;
}

function filter(r: Reader): string {
  const f = r.str();
  try {
    checkTopicFilter(f);
  } catch (e) {
    throw malformed((e as ProtocolError).rule, (e as ProtocolError).message);
  }
  return f;
}

function decodePublish(r: Reader, flags: number, owned: boolean, chunkLen: number): Packet {
  const qos = ((flags >> 1) & 3) as QoS;
  // An empty topic is only valid with a v5 topic alias, which comes later: check after the properties.
  const topic = r.str();
  const packetId = qos > 0 ? r.packetId() : undefined;
  const properties = r.version === 5 ? readProps(r, whereOf(PacketType.PUBLISH)) : undefined;
  if (topic.length === 0) {
    if (!properties || properties.topicAlias === undefined) {
      throw protocol('4.7.3-1', r.version === 5 ? 'empty topic, no alias' : 'empty topic name');
    }
  } else if (topic.indexOf('+') >= 0 || topic.indexOf('#') >= 0) {
    throw new ProtocolError('3.3.2-2', 'wildcard in topic', Reason.TOPIC_NAME_INVALID);
  }
  const body = r.buf.subarray(r.pos, r.end);
  // A view when this packet owns its buffer or the payload is most of the chunk; else a copy, so a
  // small payload does not pin a large chunk in memory.
  const payload = owned || body.length * 2 >= chunkLen ? body : new Uint8Array(body);
  r.pos = r.end;
  const p: Packet = {
    type: PacketType.PUBLISH,
    topic: topic,
    payload: payload,
    qos: qos,
    retain: (flags & 1) === 1,
    dup: (flags & 8) === 8,
  };
  if (packetId !== undefined) p.packetId = packetId;
  if (properties) p.properties = properties;
  return p;
}

function decodeConnect(r: Reader): Packet {
  if (r.str() !== 'MQTT') throw protocol('3.1.2-1', 'protocol name');
  const level = r.u8();
  if (level !== 4 && level !== 5) {
    throw new ProtocolError('3.1.2-2', 'protocol level ' + level, Reason.UNSUPPORTED_PROTOCOL_VERSION);
  }
  r.version = level;
  const flags = r.u8();
  if (flags & 1) throw malformed('3.1.2-3', 'reserved flag');
  const willFlag = (flags & 4) !== 0;
  const willQos = (flags >> 3) & 3;
  if (willQos === 3) throw malformed(level === 5 ? '3.1.2-12' : '3.1.2-14', 'will QoS 3');
  if (!willFlag && (willQos !== 0 || flags & 0x20)) {
    throw malformed(level === 5 ? '3.1.2-11' : '3.1.2-13', 'will QoS/retain, no will');
  }
  if (level === 4 && flags & 0x40 && !(flags & 0x80)) throw malformed('3.1.2-22', 'password, no username');
  const keepAliveSec = r.u16();
  const properties = level === 5 ? readProps(r, whereOf(PacketType.CONNECT)) : undefined;
  const p: Packet = {
    type: PacketType.CONNECT,
    protocolVersion: level as Version,
    clientId: r.str(),
    keepAliveSec: keepAliveSec,
    clean: (flags & 2) !== 0,
  };
  if (properties) p.properties = properties;
  if (willFlag) {
    const wprops = level === 5 ? readProps(r, WILL) : undefined;
    const will: Will = { topic: topicName(r, false), payload: r.bin(), qos: willQos as QoS, retain: (flags & 0x20) !== 0 };
    if (wprops) will.properties = wprops;
    p.will = will;
  }
  if (flags & 0x80) p.username = r.str();
  if (flags & 0x40) p.password = r.bin();
  return p;
}

function decodeBody(r: Reader, type: number, flags: number, owned: boolean, chunkLen: number): Packet {
  const v5 = r.version === 5;
  const rem = r.end - r.pos;
  switch (type) {
    case PacketType.PUBLISH:
      return decodePublish(r, flags, owned, chunkLen);
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP: {
      if (!v5 && rem !== 2) throw malformed('3.4.2', 'ack length');
      const p: Packet = { type: type, packetId: r.packetId() };
      if (v5) {
        p.reasonCode =
          rem > 2
            ? checkReason(r.u8(), type === PacketType.PUBACK || type === PacketType.PUBREC ? PUBACK_CODES : PUBREL_CODES, 'ack')
            : 0;
        if (rem > 3) {
          const props = readProps(r, whereOf(type));
          if (props) p.properties = props;
        }
      }
      return p;
    }
    case PacketType.PINGREQ:
    case PacketType.PINGRESP:
      if (rem !== 0) throw malformed('3.12.1', 'ping body');
      return { type: type };
    case PacketType.CONNECT:
      return decodeConnect(r);
    case PacketType.CONNACK: {
      const ackFlags = r.u8();
      if (ackFlags & 0xfe) throw malformed('3.2.2-1', 'reserved ack flags');
      const code = r.u8();
      if (v5) checkReason(code, CONNACK_CODES, 'CONNACK');
      else if (code > 5) throw protocol('3.2.2-5', 'return code ' + code);
      if (code !== 0 && ackFlags) throw protocol(v5 ? '3.2.2-6' : '3.2.2-4', 'session present on refusal');
      const p: Packet = { type: PacketType.CONNACK, sessionPresent: ackFlags === 1, reasonCode: code };
      if (v5) {
        const props = readProps(r, whereOf(type));
        if (props) p.properties = props;
      }
      return p;
    }
    case PacketType.SUBSCRIBE: {
      const packetId = r.packetId();
      const props = v5 ? readProps(r, whereOf(type)) : undefined;
      if (r.pos === r.end) throw protocol(v5 ? '3.8.3-2' : '3.8.3-3', 'no topic filter');
      const subs = [];
      while (r.pos < r.end) {
        const topic = filter(r);
        const o = r.u8();
        if ((o & 3) === 3) throw malformed('3-8.3-4', 'subscription QoS 3');
        if (v5) {
          if (o & 0xc0) throw malformed('3.8.3-5', 'reserved option bits');
          if (((o >> 4) & 3) === 3) throw protocol('3.8.3-6', 'retain handling 3');
          if (o & 4 && topic.indexOf('$share/') === 0) throw protocol('3.8.3-4', 'noLocal on shared');
          subs.push({
            topic: topic,
            qos: (o & 3) as QoS,
            noLocal: (o & 4) !== 0,
            retainAsPublished: (o & 8) !== 0,
            retainHandling: ((o >> 4) & 3) as 0 | 1 | 2,
          });
        } else {
          if (o & 0xfc) throw malformed('3-8.3-4', 'reserved option bits');
          subs.push({ topic: topic, qos: o as QoS });
        }
      }
      const p: Packet = { type: PacketType.SUBSCRIBE, packetId: packetId, subscriptions: subs };
      if (props) p.properties = props;
      return p;
    }
    case PacketType.SUBACK:
    case PacketType.UNSUBACK: {
      const packetId = r.packetId();
      if (!v5 && type === PacketType.UNSUBACK) {
        if (rem !== 2) throw malformed('3.11.2', 'UNSUBACK length');
        return { type: PacketType.UNSUBACK, packetId: packetId };
      }
      const props = v5 ? readProps(r, whereOf(type)) : undefined;
      if (r.pos === r.end) throw protocol('3.9.3', 'no reason codes');
      const valid = type === PacketType.SUBACK ? (v5 ? SUBACK_CODES : '\x00\x01\x02\x80') : UNSUBACK_CODES;
      const codes: number[] = [];
      while (r.pos < r.end) codes.push(checkReason(r.u8(), valid, type === PacketType.SUBACK ? 'SUBACK' : 'UNSUBACK'));
      const p: SubackPacket = { type: type as PacketType.SUBACK, packetId: packetId, reasonCodes: codes };
      if (props) p.properties = props;
      return p;
    }
    case PacketType.UNSUBSCRIBE: {
      const packetId = r.packetId();
      const props = v5 ? readProps(r, whereOf(type)) : undefined;
      if (r.pos === r.end) throw protocol('3.10.3-2', 'no topic filter');
      const topics: string[] = [];
      while (r.pos < r.end) topics.push(filter(r));
      const p: Packet = { type: PacketType.UNSUBSCRIBE, packetId: packetId, topics: topics };
      if (props) p.properties = props;
      return p;
    }
    case PacketType.DISCONNECT:
    case PacketType.AUTH: {
      if (!v5) {
        if (rem !== 0) throw malformed('3.14.1', 'DISCONNECT body');
        return { type: PacketType.DISCONNECT };
      }
      const p: DisconnectPacket = {
        type: type as PacketType.DISCONNECT,
        reasonCode: rem > 0 ? checkReason(r.u8(), type === PacketType.AUTH ? AUTH_CODES : DISCONNECT_CODES, 'DISCONNECT/AUTH') : 0,
      };
      if (rem > 1) {
        const props = readProps(r, whereOf(type));
        if (props) p.properties = props;
      }
      return p;
    }
  }
  throw malformed('2.1.2', 'reserved packet type ' + type);
}

/** Fixed header at data[pos..end): total packet length, or -1 when more bytes are needed. */
function headerLength(data: Uint8Array, pos: number, end: number, max: number, version: number): number {
  const b0 = data[pos];
  const type = b0 >> 4;
  if (type === 0 || (type === PacketType.AUTH && version !== 5)) {
    throw malformed(version === 5 ? '2.1.2' : '2.2.1', 'reserved packet type ' + type);
  }
  checkFlags(type, b0 & 15, version);
  let rem = 0;
  let mul = 1;
  for (let i = 1; i <= 4; i++) {
    if (pos + i >= end) return -1;
    const b = data[pos + i];
    rem += (b & 0x7f) * mul;
    if (!(b & 0x80)) {
      if (i > 1 && b === 0 && version === 5) throw malformed('1.5.5-1', 'non-minimal length');
      const total = 1 + i + rem;
      if (total > max) {
        throw new ProtocolError(
          version === 5 ? '3.1.2-24' : '2.2.3',
          'packet of ' + total + ' bytes > max ' + max,
          Reason.PACKET_TOO_LARGE,
        );
      }
      return total;
    }
    mul *= 128;
  }
  throw malformed(version === 5 ? '1.5.5-1' : '2.2.3', 'length over 4 bytes');
}

class StreamDecoder {
  version: Version;
  max: number;
  reader: Reader;
  /** Partial packet: its bytes so far, and its total length once the header is complete (else 0). */
  part: Uint8Array;
  held: number;
  need: number;

  constructor(version: Version, maxPacketSize: number) {
    this.version = version;
    this.max = maxPacketSize;
    this.reader = new Reader();
    this.part = new Uint8Array(5);
    this.held = 0;
    this.need = 0;
  }

  get buffered(): number {
    return this.held;
  }

  reset(): void {
    this.part = new Uint8Array(5);
    this.held = 0;
    this.need = 0;
  }

  decode(data: Uint8Array, pos: number, end: number, owned: boolean, chunkLen: number): Packet {
    const r = this.reader;
    const b0 = data[pos];
    r.buf = data;
    r.version = this.version;
    let p = pos + 1;
    while (data[p] & 0x80) p++;
    r.pos = p + 1;
    r.end = end;
    const packet = decodeBody(r, b0 >> 4, b0 & 15, owned, chunkLen);
    r.done();
    r.buf = data.subarray(0, 0); // do not pin the chunk
    return packet;
  }

  push(chunk: Uint8Array): Packet[] {
    const out: Packet[] = [];
    const n = chunk.length;
    let pos = 0;
    try {
      // 1. Finish a packet held from earlier chunks.
      while (this.held > 0 && pos < n) {
        if (this.need === 0) {
          this.part[this.held++] = chunk[pos++];
          const total = headerLength(this.part, 0, this.held, this.max, this.version);
          if (total < 0) continue;
          const whole = new Uint8Array(total);
          whole.set(this.part.subarray(0, this.held));
          this.part = whole;
          this.need = total;
        }
        const take = Math.min(this.need - this.held, n - pos);
        this.part.set(chunk.subarray(pos, pos + take), this.held);
        this.held += take;
        pos += take;
        if (this.held === this.need) {
          const whole = this.part;
          this.reset();
          out.push(this.decode(whole, 0, whole.length, true, whole.length));
        }
      }
      // 2. Whole packets straight from the chunk.
      while (pos < n) {
        const total = headerLength(chunk, pos, n, this.max, this.version);
        if (total < 0 || pos + total > n) {
          // 3. Keep the incomplete tail.
          const tail = chunk.subarray(pos, n);
          if (total > 0) this.part = new Uint8Array(total);
          this.part.set(tail);
          this.held = tail.length;
          this.need = total > 0 ? total : 0;
          break;
        }
        out.push(this.decode(chunk, pos, pos + total, false, n));
        pos += total;
      }
    } catch (e) {
      this.reset();
      if (e instanceof ProtocolError) throw e;
      // Anything else is a codec bug; still surface it as the one error type callers handle.
      throw new ProtocolError('1.5', 'bad input: ' + String(e), Reason.MALFORMED_PACKET);
    }
    return out;
  }
}

/**
 * A stream decoder for one connection speaking `version`. Packets larger than maxPacketSize bytes
 * (whole packet, fixed header included) are refused from their fixed header alone.
 */
export function createDecoder(version: Version, maxPacketSize: number): Decoder {
  if (version !== 4 && version !== 5) throw new ProtocolError('3.1.2-2', 'version must be 4 or 5', Reason.PROTOCOL_ERROR);
  if (!(maxPacketSize >= 2)) throw new ProtocolError('3.1.2-24', 'maxPacketSize < 2', Reason.PROTOCOL_ERROR);
  return new StreamDecoder(version, Math.min(maxPacketSize, 268435460));
}
