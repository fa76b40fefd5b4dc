// The codec's one error type. Deliberately not `extends Error`: on Espruino a subclass of Error
// breaks (DESIGN.md section 2), so this is a plain constructor whose objects carry the same fields
// (a function rather than a class: fewer bytes in a bundle).

/**
 * MQTT 5 reason codes the codec uses when it refuses input. A const enum: its values are inlined,
 * so it costs nothing in a bundle (import it from this module; it is not a runtime export).
 */
export const enum Reason {
  SUCCESS = 0x00,
  UNSPECIFIED_ERROR = 0x80,
  MALFORMED_PACKET = 0x81,
  PROTOCOL_ERROR = 0x82,
  IMPLEMENTATION_SPECIFIC_ERROR = 0x83,
  UNSUPPORTED_PROTOCOL_VERSION = 0x84,
  TOPIC_NAME_INVALID = 0x90,
  PACKET_ID_IN_USE = 0x91,
  PACKET_ID_NOT_FOUND = 0x92,
  RECEIVE_MAXIMUM_EXCEEDED = 0x93,
  TOPIC_ALIAS_INVALID = 0x94,
  PACKET_TOO_LARGE = 0x95,
  QOS_NOT_SUPPORTED = 0x9b,
  PAYLOAD_FORMAT_INVALID = 0x99,
}

export interface ProtocolError {
  /** 'ProtocolError' (on the prototype; not in a device build). */
  name: string;
  /** The kind of fault, then the rule: "malformed packet [MQTT-3.3.1-4]" (the rule says what is wrong). */
  message: string;
  /** The normative statement broken, e.g. "MQTT-3.3.1-4" (or "MQTT-1.5.4" for a section). */
  rule: string;
  /** The v5 reason code to send in DISCONNECT (0x81 malformed, 0x82 protocol error, 0x95 too large...). */
  reasonCode: number;
}

/** new ProtocolError(rule, reasonCode?): rule without the "MQTT-" prefix, e.g. "3.3.1-4"; default reason 0x81. */
export const ProtocolError = function (this: ProtocolError, rule: string, reasonCode?: number): void {
  this.rule = 'MQTT-' + rule;
  this.reasonCode = reasonCode = reasonCode || Reason.MALFORMED_PACKET;
  this.message = (reasonCode === Reason.MALFORMED_PACKET ? 'malformed packet' : 'protocol error') + ' [' + this.rule + ']';
} as unknown as { new (rule: string, reasonCode?: number): ProtocolError; prototype: ProtocolError };

// The name and toString of an Error, for people and tools reading one (tests, the desktop tools); the
// firmware reads only rule, reasonCode and message, so a device build (WREN_DEVICE) goes without.
if (typeof WREN_DEVICE === 'undefined') {
  ProtocolError.prototype.name = 'ProtocolError';
  ProtocolError.prototype.toString = function (this: ProtocolError): string {
    return 'ProtocolError: ' + this.message;
  };
}

/** Throws a ProtocolError for a Malformed Packet (reason 0x81). */
export function malformed(rule: string): never {
  throw new ProtocolError(rule);
}

/** Throws a ProtocolError for a Protocol Error (reason 0x82), or with the reason code given. */
export function refuse(rule: string, reasonCode?: number): never {
  throw new ProtocolError(rule, reasonCode || Reason.PROTOCOL_ERROR);
}
