// wren's MQTT 3.1.1 / 5.0 codec: pure functions over Uint8Array, no I/O, no time.
//   encode(packet, version)               -> Uint8Array (version 4 = 3.1.1, 5 = 5.0)
//   createDecoder(version, maxPacketSize) -> { push(bytes): Packet[], reset(), buffered }
//   ProtocolError                          the one error type for malformed data, either way
// PacketType (./types) and Reason (./errors) are const enums: import them from their modules (they
// are inlined, so they are no runtime export here and cost nothing in a bundle).
export { checkTopicFilter, checkTopicName, createDecoder, encode } from './codec';
export { ProtocolError } from './errors';
export { utf8Length, utf8Read, utf8Write } from './utf8';
export type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  Decoder,
  DisconnectPacket,
  Packet,
  PacketType,
  PingreqPacket,
  PingrespPacket,
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
} from './types';
