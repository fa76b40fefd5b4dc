// MQTT 3.1.1 (protocol level 4) and 5.0 (protocol level 5) control packets, as plain objects.
// Pure data: no I/O, no time. Numbers, not strings, for protocol identity.

/** Protocol level byte of CONNECT: 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
export type Version = 4 | 5;

export const enum PacketType {
  CONNECT = 1,
  CONNACK = 2,
  PUBLISH = 3,
  PUBACK = 4,
  PUBREC = 5,
  PUBREL = 6,
  PUBCOMP = 7,
  SUBSCRIBE = 8,
  SUBACK = 9,
  UNSUBSCRIBE = 10,
  UNSUBACK = 11,
  PINGREQ = 12,
  PINGRESP = 13,
  DISCONNECT = 14,
  AUTH = 15,
}

export type QoS = 0 | 1 | 2;

/**
 * MQTT 5 properties. One shape for every packet; the codec checks which identifiers a packet may
 * carry (a misplaced property is a ProtocolError). Flag properties are booleans; everything else
 * keeps its wire type. User properties are ordered name/value pairs (a name may repeat).
 */
export interface Properties {
  payloadFormatIndicator?: boolean; // 0x01 PUBLISH, will
  messageExpiryInterval?: number; // 0x02 u32 seconds: PUBLISH, will
  contentType?: string; // 0x03 PUBLISH, will
  responseTopic?: string; // 0x08 PUBLISH, will
  correlationData?: Uint8Array; // 0x09 PUBLISH, will
  /** 0x0B varint 1..268435455. PUBLISH may carry several; SUBSCRIBE exactly one. */
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number; // 0x11 u32 seconds: CONNECT, CONNACK, DISCONNECT
  assignedClientIdentifier?: string; // 0x12 CONNACK
  serverKeepAlive?: number; // 0x13 u16 seconds: CONNACK
  authenticationMethod?: string; // 0x15 CONNECT, CONNACK, AUTH
  authenticationData?: Uint8Array; // 0x16 CONNECT, CONNACK, AUTH
  requestProblemInformation?: boolean; // 0x17 CONNECT
  willDelayInterval?: number; // 0x18 u32 seconds: will
  requestResponseInformation?: boolean; // 0x19 CONNECT
  responseInformation?: string; // 0x1A CONNACK
  serverReference?: string; // 0x1C CONNACK, DISCONNECT
  reasonString?: string; // 0x1F CONNACK, acks, SUBACK, UNSUBACK, DISCONNECT, AUTH
  receiveMaximum?: number; // 0x21 u16 1..65535: CONNECT, CONNACK
  topicAliasMaximum?: number; // 0x22 u16: CONNECT, CONNACK
  topicAlias?: number; // 0x23 u16 1..65535: PUBLISH
  maximumQoS?: 0 | 1; // 0x24 CONNACK
  retainAvailable?: boolean; // 0x25 CONNACK
  userProperties?: Array<[string, string]>; // 0x26 every packet with properties
  maximumPacketSize?: number; // 0x27 u32 1..: CONNECT, CONNACK
  wildcardSubscriptionAvailable?: boolean; // 0x28 CONNACK
  subscriptionIdentifiersAvailable?: boolean; // 0x29 CONNACK
  sharedSubscriptionAvailable?: boolean; // 0x2A CONNACK
}

export interface Will {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** v5 will properties (willDelayInterval, messageExpiryInterval, contentType, ...). */
  properties?: Properties;
}

export interface ConnectPacket {
  type: PacketType.CONNECT;
  /** Set by the decoder from the protocol level byte; the encoder uses its version argument. */
  protocolVersion?: Version;
  clientId: string;
  /** Keep Alive in seconds, 0..65535; 0 disables keep-alive [MQTT-3.1.2-10]. */
  keepAliveSec: number;
  /** 3.1.1 Clean Session / 5.0 Clean Start. */
  clean: boolean;
  username?: string;
  password?: Uint8Array;
  will?: Will;
  properties?: Properties;
}

export interface ConnackPacket {
  type: PacketType.CONNACK;
  sessionPresent: boolean;
  /** 3.1.1 return code (0..5) or 5.0 reason code. */
  reasonCode: number;
  properties?: Properties;
}

export interface PublishPacket {
  type: PacketType.PUBLISH;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** 1..65535, present exactly when qos > 0. */
  packetId?: number;
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP. v5 reasonCode 0 with no properties encodes in the short form. */
export interface AckPacket {
  type: PacketType.PUBACK | PacketType.PUBREC | PacketType.PUBREL | PacketType.PUBCOMP;
  packetId: number;
  /** v5 only; decoded v5 acks always carry it (0 for the short form). */
  reasonCode?: number;
  properties?: Properties;
}

export interface Subscription {
  topic: string;
  qos: QoS;
  /** v5 subscription options. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: PacketType.SUBSCRIBE;
  packetId: number;
  subscriptions: Subscription[];
  properties?: Properties;
}

export interface SubackPacket {
  type: PacketType.SUBACK;
  packetId: number;
  /** One per subscription: granted QoS 0..2, or a failure code (3.1.1: 0x80; 5.0: >= 0x80). */
  reasonCodes: number[];
  properties?: Properties;
}

export interface UnsubscribePacket {
  type: PacketType.UNSUBSCRIBE;
  packetId: number;
  topics: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  type: PacketType.UNSUBACK;
  packetId: number;
  /** v5 only: one per topic. */
  reasonCodes?: number[];
  properties?: Properties;
}

export interface PingreqPacket {
  type: PacketType.PINGREQ;
}

export interface PingrespPacket {
  type: PacketType.PINGRESP;
}

export interface DisconnectPacket {
  type: PacketType.DISCONNECT;
  /** v5 only; decoded v5 DISCONNECT always carries it (0 when omitted on the wire). */
  reasonCode?: number;
  properties?: Properties;
}

/** v5 only. */
export interface AuthPacket {
  type: PacketType.AUTH;
  /** Decoded AUTH always carries it (0 when omitted on the wire). */
  reasonCode?: number;
  properties?: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;

/** A stream decoder for one connection. */
export interface Decoder {
  /**
   * Feed any chunk of the byte stream (one byte to many packets). Returns the packets completed by
   * this chunk, in order (possibly none). Throws ProtocolError on malformed input; after that the
   * stream cannot be resynchronised: drop the connection and call reset() (or make a new decoder).
   */
  push(bytes: Uint8Array): Packet[];
  /** Forget buffered bytes (for a new connection). */
  reset(): void;
  /** Bytes held for an incomplete packet. */
  readonly buffered: number;
}
