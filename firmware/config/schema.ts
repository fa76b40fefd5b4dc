// board.json: one device's configuration. One table is the single source of truth: each row is a
// setting's path, type, default, bounds and meaning. Validation, defaults and the README reference
// are all generated from it, so they cannot drift apart.
//
// Units are in the names (Sec, Ms, Mv). Unknown keys are errors (a typo must not silently fall back
// to a default). Secrets never live in board.json: write "$secret:NAME" and the build takes NAME from
// the secrets file (kept out of git) or the environment (WREN_SECRET_NAME).

export type FieldType = 'string' | 'int' | 'number' | 'bool' | 'enum' | 'object' | 'array';

export interface Field {
  path: string;
  type: FieldType;
  /** Default when absent (undefined = optional without default, or required when `required`). */
  dflt?: unknown;
  required?: boolean;
  min?: number;
  max?: number;
  values?: string[];
  doc: string;
}

// Rows for array items use "[]" in the path (brokers[].host).
export const FIELDS: Field[] = [
  { path: 'device', type: 'string', required: true, doc: 'Device name; the bundle is written to dist/<device>.js.' },
  { path: 'clientId', type: 'string', required: true, doc: 'MQTT client id. "{mac}" is replaced by the chip MAC (hex, no colons), "{device}" by the device name.' },
  { path: 'brokers', type: 'array', required: true, min: 1, max: 4, doc: 'Brokers tried in turn (failover).' },
  { path: 'brokers[].host', type: 'string', required: true, doc: 'Host name or address.' },
  { path: 'brokers[].port', type: 'int', dflt: 1883, min: 1, max: 65535, doc: 'TCP port (8883 for TLS by convention).' },
  { path: 'brokers[].tls', type: 'object', doc: 'Present = TLS. The server certificate is checked against ca.' },
  { path: 'brokers[].tls.ca', type: 'string', doc: 'CA certificate: a PEM file path (relative to board.json) or PEM text.' },
  { path: 'brokers[].tls.cert', type: 'string', doc: 'Client certificate (mutual TLS): PEM file path or text.' },
  { path: 'brokers[].tls.key', type: 'string', doc: 'Client key (mutual TLS): PEM file path, text, or $secret:NAME.' },
  { path: 'brokers[].tls.servername', type: 'string', doc: 'Name the certificate must match (default: host).' },
  { path: 'mqtt', type: 'object', dflt: {}, doc: 'MQTT session settings.' },
  { path: 'mqtt.version', type: 'enum', dflt: 'auto', values: ['auto', '4', '5'], doc: '"4" = 3.1.1, "5" = 5.0, "auto" = 5.0 falling back to 3.1.1 when the broker refuses it.' },
  { path: 'mqtt.clean', type: 'bool', dflt: false, doc: 'false: persistent session (queued QoS 1/2 survive a reconnect at the broker).' },
  { path: 'mqtt.sessionExpirySec', type: 'int', dflt: 86400, min: 0, max: 4294967295, doc: 'v5 Session Expiry Interval for a persistent session; must outlast the longest sleep.' },
  { path: 'mqtt.username', type: 'string', doc: 'User name.' },
  { path: 'mqtt.password', type: 'string', doc: 'Password: use $secret:NAME.' },
  { path: 'mqtt.maxPacketSizeBytes', type: 'int', dflt: 16384, min: 64, max: 268435460, doc: 'Largest packet accepted from the broker (v5: announced as Maximum Packet Size).' },
  { path: 'mqtt.maxInflight', type: 'int', dflt: 8, min: 1, max: 65535, doc: 'QoS 1/2 messages in flight at once (the broker\'s v5 Receive Maximum may lower it).' },
  { path: 'mqtt.will', type: 'object', doc: 'Last will, published by the broker when the device dies (not on a planned sleep).' },
  { path: 'mqtt.will.topic', type: 'string', required: true, doc: 'Will topic.' },
  { path: 'mqtt.will.payload', type: 'string', dflt: 'offline', doc: 'Will payload (UTF-8).' },
  { path: 'mqtt.will.qos', type: 'int', dflt: 1, min: 0, max: 2, doc: 'Will QoS.' },
  { path: 'mqtt.will.retain', type: 'bool', dflt: true, doc: 'Will retain flag.' },
  { path: 'subscriptions', type: 'array', dflt: [], max: 16, doc: 'Topic filters subscribed at every new session.' },
  { path: 'subscriptions[].topic', type: 'string', required: true, doc: 'Topic filter; "{device}" is replaced by the device name.' },
  { path: 'subscriptions[].qos', type: 'int', dflt: 1, min: 0, max: 2, doc: 'Requested QoS.' },
  { path: 'keepAlive', type: 'object', dflt: {}, doc: 'Heartbeat per power mode.' },
  { path: 'keepAlive.activeSec', type: 'int', dflt: 60, min: 5, max: 65535, doc: 'Ping interval while active.' },
  { path: 'keepAlive.idleSec', type: 'int', dflt: 300, min: 5, max: 65535, doc: 'Ping interval while idle (also the keep-alive declared to the broker).' },
  { path: 'keepAlive.sleepCheckInSec', type: 'int', dflt: 1800, min: 60, max: 86400, doc: 'Check-in period while asleep.' },
  { path: 'keepAlive.maxSec', type: 'int', dflt: 0, min: 0, max: 65535, doc: 'Broker cap on keep-alive (AWS IoT 1200, Azure IoT Hub 1177); 0 = none.' },
  { path: 'keepAlive.pingTimeoutMs', type: 'int', dflt: 10000, min: 500, max: 120000, doc: 'A PINGRESP (or any packet) must arrive this soon after a PINGREQ, or the link is dead.' },
  { path: 'timeouts', type: 'object', dflt: {}, doc: 'Protocol timeouts.' },
  { path: 'timeouts.connectMs', type: 'int', dflt: 10000, min: 500, max: 120000, doc: 'TCP/TLS connect plus CONNACK.' },
  { path: 'timeouts.subackMs', type: 'int', dflt: 15000, min: 500, max: 120000, doc: 'SUBACK / UNSUBACK.' },
  { path: 'backoff', type: 'object', dflt: {}, doc: 'Reconnect backoff (full jitter).' },
  { path: 'backoff.baseMs', type: 'int', dflt: 1000, min: 10, max: 600000, doc: 'First retry ceiling.' },
  { path: 'backoff.capMs', type: 'int', dflt: 300000, min: 100, max: 3600000, doc: 'Largest retry ceiling (also used for credential refusals).' },
  { path: 'backoff.factor', type: 'number', dflt: 2, min: 1, max: 10, doc: 'Growth per failed attempt.' },
  { path: 'backoff.stableAfterSec', type: 'int', dflt: 60, min: 0, max: 86400, doc: 'A connection must stay up this long before the backoff resets.' },
  { path: 'queue', type: 'object', dflt: {}, doc: 'Offline queue (QoS 1/2 persisted to flash).' },
  { path: 'queue.maxMessages', type: 'int', dflt: 100, min: 1, max: 10000, doc: 'Messages held (queued + in flight).' },
  { path: 'queue.maxBytes', type: 'int', dflt: 16384, min: 256, max: 1048576, doc: 'Bytes held (topics + payloads).' },
  { path: 'queue.overflow', type: 'enum', dflt: 'drop-oldest-qos0', values: ['reject', 'drop-oldest-qos0'], doc: 'When full: refuse the new message, or evict the oldest QoS 0 first (then refuse).' },
  { path: 'transport', type: 'object', required: true, doc: 'How the device reaches the network.' },
  { path: 'transport.type', type: 'enum', required: true, values: ['wifi', 'cellular', 'host'], doc: '"host": the network is already there (desktop, Espruino on Linux).' },
  { path: 'transport.ssid', type: 'string', doc: 'Wi-Fi network (wifi).' },
  { path: 'transport.password', type: 'string', doc: 'Wi-Fi password: $secret:NAME (wifi).' },
  { path: 'transport.powersave', type: 'enum', dflt: 'min', values: ['none', 'min', 'max'], doc: 'Wi-Fi modem power save (wifi).' },
  { path: 'transport.apn', type: 'string', doc: 'Access point name (cellular).' },
  { path: 'transport.modem', type: 'enum', dflt: 'SIM7000', values: ['SIM7000', 'SIM800'], doc: 'Modem model (cellular).' },
  { path: 'transport.uart', type: 'object', doc: 'Modem UART (cellular): {"port": "Serial2", "baud": 115200, "rx": "D16", "tx": "D17"}.' },
  { path: 'transport.uart.port', type: 'string', dflt: 'Serial2', doc: 'UART.' },
  { path: 'transport.uart.baud', type: 'int', dflt: 115200, min: 1200, max: 921600, doc: 'Baud rate.' },
  { path: 'transport.uart.rx', type: 'string', required: true, doc: 'RX pin.' },
  { path: 'transport.uart.tx', type: 'string', required: true, doc: 'TX pin.' },
  { path: 'transport.powerPin', type: 'string', doc: 'Modem PWRKEY pin (cellular).' },
  { path: 'transport.resetPin', type: 'string', doc: 'Modem reset pin (cellular).' },
  { path: 'keepAlive.idleAfterSec', type: 'int', dflt: 120, min: 0, max: 86400, doc: 'No application traffic for this long: active -> idle (0 = never).' },
  { path: 'keepAlive.sleepAfterSec', type: 'int', dflt: 600, min: 0, max: 604800, doc: 'Idle for this long: idle -> sleep (0 = never).' },
  { path: 'keepAlive.ackProbeMs', type: 'int', dflt: 5000, min: 0, max: 120000, doc: 'A QoS 1/2 ack overdue by this much sends a PINGREQ at once (0 = off).' },
  { path: 'keepAlive.sleepGraceSec', type: 'int', dflt: 120, min: 0, max: 86400, doc: 'v5: the will is delayed by the check-in period plus this, so a planned sleep never fires it.' },
  { path: 'statusTopic', type: 'string', dflt: 'wren/{device}/status', doc: 'Retained status ("online", "checkin", "asleep" with the check-in period).' },
  { path: 'power', type: 'object', dflt: {}, doc: 'Power model for the simulator and the charge estimate (defaults: ESP32 on Wi-Fi, DESIGN.md section 3).' },
  { path: 'power.deepSleepUa', type: 'number', dflt: 10, min: 0, max: 100000, doc: 'Current in deep sleep (uA).' },
  { path: 'power.idleConnectedMa', type: 'number', dflt: 2.5, min: 0, max: 1000, doc: 'Current while associated and idle (Wi-Fi auto light-sleep), mA.' },
  { path: 'power.radioActiveMa', type: 'number', dflt: 100, min: 0, max: 2000, doc: 'Current while the radio sends or receives (mA).' },
  { path: 'power.exchangeMs', type: 'int', dflt: 40, min: 0, max: 60000, doc: 'Radio-on time for one packet exchange (a ping, a publish and its ack).' },
  { path: 'power.reconnectMs', type: 'int', dflt: 1500, min: 0, max: 120000, doc: 'Radio-on time for a full reconnect (association, DHCP, TCP, TLS, MQTT CONNECT).' },
  { path: 'power.tlsOverheadBytes', type: 'int', dflt: 29, min: 0, max: 1000, doc: 'TLS record overhead per packet (bytes on the air).' },
  { path: 'power.batteryMah', type: 'number', dflt: 2000, min: 1, max: 1000000, doc: 'Battery capacity, for the lifetime estimate.' },
  { path: 'battery', type: 'object', doc: 'Battery measurement.' },
  { path: 'battery.pin', type: 'string', required: true, doc: 'ADC pin.' },
  { path: 'battery.divider', type: 'number', dflt: 2, min: 1, max: 20, doc: 'Voltage divider ratio.' },
  { path: 'battery.lowMv', type: 'int', dflt: 3400, min: 0, max: 10000, doc: 'Under this the device goes to sleep mode.' },
];

/** Fields that exist only for one transport type. */
export const TRANSPORT_ONLY: { [path: string]: string } = {
  'transport.ssid': 'wifi',
  'transport.password': 'wifi',
  'transport.powersave': 'wifi',
  'transport.apn': 'cellular',
  'transport.modem': 'cellular',
  'transport.uart': 'cellular',
  'transport.powerPin': 'cellular',
  'transport.resetPin': 'cellular',
};
