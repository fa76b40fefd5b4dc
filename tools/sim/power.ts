// The power and air model. Deliberately simple; every figure comes from board.json "power" (defaults:
// ESP32 on Wi-Fi, DESIGN.md section 3) except the TCP/IP and TLS handshake sizes below.
//
//   awake time    simulated time the device is not in deep sleep (always, for the baseline). Charged at
//                 idleConnectedMa (associated, Wi-Fi auto light-sleep between packets).
//   deep sleep    simulated time between the firmware's Power.sleep('deep') and the reboot, at
//                 deepSleepUa.
//   radio-on      connections x reconnectMs + exchanges x exchangeMs, at radioActiveMa, ADDED to the
//                 awake time: the mock network has no latency, so a connect or a packet exchange takes
//                 no simulated time and its real air time must be added.
//                 A connection = every Transport.open() (association + DHCP + TCP + TLS + CONNECT; a
//                 re-CONNECT on a live association is charged the same, which favours the baseline).
//                 An exchange = every packet that starts one: PUBLISH (either way), PUBREL, SUBSCRIBE,
//                 UNSUBSCRIBE, PINGREQ, DISCONNECT; its answer (PUBACK, PUBREC, PUBCOMP, SUBACK,
//                 PINGRESP...) rides in the same radio window.
//   charge (mAh)  = deep-sleep h x deepSleepUa / 1000 + awake h x idleConnectedMa + radio-on h x radioActiveMa
//   bytes on air  = per MQTT packet: its bytes + 40 (IPv4 + TCP headers) + tlsOverheadBytes (TLS record
//                 header + tag) + a 40-byte TCP ACK segment from the other side; per connection:
//                 7 x 40 bytes of TCP setup and teardown + TLS_HANDSHAKE_BYTES when TLS is on
//                 (tlsOverheadBytes > 0).
import type { PowerModel } from '../../firmware/config/index';
import { startsExchange } from './radio';
import type { Radio } from './radio';

export const TCP_IP_BYTES = 40;
/** SYN, SYN-ACK, ACK, FIN, ACK, FIN, ACK. */
export const TCP_SETUP_SEGMENTS = 7;
/**
 * A full TLS 1.2 handshake with a two-certificate server chain (ClientHello ~250 B, ServerHello +
 * Certificate + ServerKeyExchange + Done ~3.3 KB, the client's key exchange and Finished ~0.3 KB, with
 * their segment headers). A device waking from deep sleep has lost its RAM, so no session resumption.
 */
export const TLS_HANDSHAKE_BYTES = 4000;

/** Time intervals [from, to) the device was awake (not in deep sleep). */
export type Awake = Array<[number, number]>;

export interface Account {
  windowMs: number;
  awakeMs: number;
  deepSleepMs: number;
  connects: number;
  exchanges: number;
  packets: number;
  mqttBytes: number;
  airBytes: number;
  radioOnMs: number;
  chargeMah: number;
  pingreqs: number;
}

function awakeWithin(awake: Awake, from: number, to: number): number {
  let ms = 0;
  for (const [a, b] of awake) {
    const lo = Math.max(a, from);
    const hi = Math.min(b, to);
    if (hi > lo) ms += hi - lo;
  }
  return ms;
}

export function packetAirBytes(mqttBytes: number, m: PowerModel): number {
  return mqttBytes + TCP_IP_BYTES + m.tlsOverheadBytes + TCP_IP_BYTES;
}

export function connectionAirBytes(m: PowerModel): number {
  return TCP_SETUP_SEGMENTS * TCP_IP_BYTES + (m.tlsOverheadBytes > 0 ? TLS_HANDSHAKE_BYTES : 0);
}

export function chargeMah(awakeMs: number, deepSleepMs: number, radioOnMs: number, m: PowerModel): number {
  return (deepSleepMs * (m.deepSleepUa / 1000) + awakeMs * m.idleConnectedMa + radioOnMs * m.radioActiveMa) / 3600000;
}

/** Everything inside [0, windowMs). */
export function account(awake: Awake, radio: Radio, m: PowerModel, windowMs: number): Account {
  const awakeMs = awakeWithin(awake, 0, windowMs);
  let connects = 0;
  for (const t of radio.connects) if (t < windowMs) connects++;
  let exchanges = 0;
  let packets = 0;
  let mqttBytes = 0;
  let airBytes = connects * connectionAirBytes(m);
  let pingreqs = 0;
  for (const p of radio.packets) {
    if (p.at >= windowMs) continue;
    packets++;
    mqttBytes += p.bytes;
    airBytes += packetAirBytes(p.bytes, m);
    if (startsExchange(p)) exchanges++;
    if (p.dir === 'tx' && p.type === 12) pingreqs++;
  }
  const radioOnMs = connects * m.reconnectMs + exchanges * m.exchangeMs;
  const deepSleepMs = windowMs - awakeMs;
  return {
    windowMs,
    awakeMs,
    deepSleepMs,
    connects,
    exchanges,
    packets,
    mqttBytes,
    airBytes,
    radioOnMs,
    chargeMah: chargeMah(awakeMs, deepSleepMs, radioOnMs, m),
    pingreqs,
  };
}

/** Cumulative charge (mAh) over [0, t) for each t of `times` (ascending), like account() over its window. */
export function cumulativeCharge(awake: Awake, radio: Radio, m: PowerModel, times: number[]): number[] {
  const conn = radio.connects.slice().sort((a, b) => a - b);
  const ex = radio.packets.filter(startsExchange).map((p) => p.at).sort((a, b) => a - b);
  const out: number[] = [];
  let ci = 0;
  let ei = 0;
  for (const t of times) {
    while (ci < conn.length && conn[ci] < t) ci++;
    while (ei < ex.length && ex[ei] < t) ei++;
    const aw = awakeWithin(awake, 0, t);
    out.push(chargeMah(aw, t - aw, ci * m.reconnectMs + ei * m.exchangeMs, m));
  }
  return out;
}
