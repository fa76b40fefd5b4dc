// The keep-alive the broker agrees with, the ping schedule and the PINGRESP watchdog. Pure functions:
// the client passes times and intervals and gets deadlines back.
//
// Facts (DESIGN.md section 3):
// - Keep Alive is fixed in CONNECT (16-bit seconds) and cannot change inside a connection; the broker
//   drops a client it heard nothing from for 1.5 x Keep Alive [MQTT-3.1.2-24]; 0 disables it. The
//   client may send PINGREQ more often than it declared.
// - MQTT 5: a Server Keep Alive in CONNACK replaces the declared value and must be used
//   [MQTT-3.2.2-21]. Brokers cap it: AWS IoT 1200 s, Azure IoT Hub 1177 s; mosquitto's max_keepalive
//   refuses a 3.1.1 client above it, so the cap (maxKeepAliveSec, board.json) is applied BEFORE sending.
// - Carrier NATs / middleboxes drop idle TCP bindings after 150-300 s on some networks; the learned
//   cap for the network (pathlimit.ts) bounds both the declared value and the ping interval.
//
// Strategy (what the client does with these functions):
// - Declare the idle interval (the longest held-connection interval, max(active, idle)) once per
//   connection, clamped to [1, maxKeepAliveSec] (0 = no broker cap) and to the learned path cap:
//   declaredKeepAlive(). Pinging faster than declared is always allowed, so...
// - ...ping at the MODE's interval: pingIntervalSec() = min(mode interval, granted, path cap), where
//   granted is the v5 Server Keep Alive if the CONNACK had one, else the declared value
//   (grantedKeepAlive()). A change between active and idle therefore never reconnects: it only
//   changes the ping interval on the same connection.
// - Sleep on Wi-Fi = clean DISCONNECT + deep sleep (no held connection, nothing to declare). Sleep
//   with a held connection (cellular PSM) = a fresh CONNECT declaring the check-in interval
//   (declaredKeepAlive(..., 'sleep', ...)); leaving that sleep reconnects with the idle interval.
// - Consequences: the broker notices a dead device after 1.5 x declared (450 s with the defaults)
//   whatever the mode, and the will fires then; a declared value lowered by a path cap makes that
//   sooner. On a capped path a held-connection sleep pings at the cap, not at the check-in interval.
// - Ping when TX idle OR RX idle reaches the interval (nextPingAt: min(lastTx, lastRx) + interval):
//   inbound QoS 0 traffic or our own retransmits must not hide a dead link, and a subscribe-only
//   device must still ping (MQTT.js issue 1861, coreMQTT PR 191).
// - Watchdog: after a PINGREQ, ANY packet received within pingTimeoutMs proves the link; otherwise it
//   is dead (timed from the PINGREQ, like coreMQTT / Paho, not from the next keep-alive).
// - Early probe: a QoS >= 1 acknowledgement overdue by ackProbeMs sends a PINGREQ at once (it finds a
//   half-open link in ackProbeMs + pingTimeoutMs instead of a keep-alive period); at most one probe
//   per ackProbeMs while the same ack stays overdue (probeDue's lastPingMs).
// - Phase jitter: the first ping after a connect comes at interval * (1 - spread * r), so a fleet that
//   reconnected together does not ping in lockstep; later pings keep that phase (they are timed from
//   the last exchange).
//
// Espruino-safe: plain functions, no default params.

import type { ModeConfig, PowerMode } from './modes';

/** Largest Keep Alive CONNECT can carry (16 bits). */
export const MAX_KEEPALIVE_SEC = 65535;

/**
 * The keep-alive arithmetic in one function (the device calls it; declaredKeepAlive and
 * pingIntervalSec below are its two uses). declare: the value for CONNECT, the idle interval
 * (max(active, idle)) for 'active' and 'idle' and the check-in interval for 'sleep' (held
 * connection), clamped to limitSec (the broker cap, 0 = none), the path cap and 65535. Otherwise the
 * ping interval: the mode's interval clamped to limitSec (the granted keep-alive; 0 = server disabled
 * it, no limit: the NAT and the watchdog still need pings) and the path cap. Whole seconds, at least 1:
 * keep-alive is never disabled.
 */
export function keepAliveSec(c: ModeConfig, mode: PowerMode, declare: boolean, limitSec: number, pathCapSec: number | undefined): number {
  let v = mode === 'sleep' ? c.sleepCheckInSec : declare ? Math.max(c.activeKeepAliveSec, c.idleKeepAliveSec) : mode === 'idle' ? c.idleKeepAliveSec : c.activeKeepAliveSec;
  const lims = [limitSec, pathCapSec as number, declare ? MAX_KEEPALIVE_SEC : 0];
  for (let i = 0; i < 3; i++) if (lims[i] > 0 && lims[i] < v) v = lims[i];
  v = Math.floor(v);
  return v >= 1 ? v : 1;
}

/**
 * Seconds to declare in CONNECT: the idle interval (max(active, idle)) for 'active' and 'idle', the
 * check-in interval for 'sleep' (held connection), clamped to the learned path cap and to
 * maxKeepAliveSec (0 = no cap), and to [1, 65535]. Never 0: keep-alive is never disabled.
 */
export function declaredKeepAlive(modeCfg: ModeConfig, maxKeepAliveSec: number, mode: PowerMode, pathCapSec: number | undefined): number {
  return keepAliveSec(modeCfg, mode, true, maxKeepAliveSec, pathCapSec);
}

/** The keep-alive in force: the v5 Server Keep Alive when the CONNACK had one [MQTT-3.2.2-21], else the declared value. */
export function grantedKeepAlive(declaredSec: number, serverKeepAliveSec: number | undefined): number {
  return serverKeepAliveSec !== undefined ? serverKeepAliveSec : declaredSec;
}

/**
 * Ping interval (seconds) for the mode: min(mode interval, granted, path cap), at least 1. A granted
 * value of 0 (keep-alive disabled by the server) does not limit it: the NAT and the watchdog still
 * need pings.
 */
export function pingIntervalSec(modeCfg: ModeConfig, mode: PowerMode, grantedSec: number, pathCapSec: number | undefined): number {
  return keepAliveSec(modeCfg, mode, false, grantedSec, pathCapSec);
}

/** First ping after a connect: floor(interval * 1000 * (1 - spread * r)); spread default 0.2, clamped to [0, 1]; r clamped to [0, 1]. */
export function firstPingDelayMs(intervalSec: number, r: number, spread?: number): number {
  let s = spread !== undefined ? spread : 0.2;
  s = s > 0 ? (s < 1 ? s : 1) : 0;
  const u = r > 0 ? (r < 1 ? r : 1) : 0;
  return Math.floor(intervalSec * 1000 * (1 - s * u));
}

/** PINGREQ due when TX idle OR RX idle reaches the interval: min(lastTx, lastRx) + interval. */
export function nextPingAt(lastTxMs: number, lastRxMs: number, intervalMs: number): number {
  return (lastTxMs < lastRxMs ? lastTxMs : lastRxMs) + intervalMs;
}

/**
 * When to send an early probe PINGREQ because a QoS >= 1 ack is overdue: max(oldestUnackedSentMs,
 * lastPingMs) + ackProbeMs; undefined when nothing is unacked, a ping is already outstanding, or
 * ackProbeMs <= 0. lastPingMs (optional, addition): the last PINGREQ sent, answered or not, so an ack
 * that stays overdue after an answered probe is probed again only ackProbeMs later, not in a loop.
 * oldestUnackedSentMs is when the oldest unacked message was last (re)sent on this connection.
 */
export function probeDue(oldestUnackedSentMs: number | undefined, ackProbeMs: number, pingOutstanding: boolean, lastPingMs?: number): number | undefined {
  if (oldestUnackedSentMs === undefined || pingOutstanding || !(ackProbeMs > 0)) return undefined;
  const t = lastPingMs !== undefined && lastPingMs > oldestUnackedSentMs ? lastPingMs : oldestUnackedSentMs;
  return t + ackProbeMs;
}

/** Seconds the path (NAT binding) has been idle: since the last packet in EITHER direction. */
export function pathIdleSec(nowMs: number, lastTxMs: number, lastRxMs: number): number {
  const d = nowMs - (lastTxMs > lastRxMs ? lastTxMs : lastRxMs);
  return d > 0 ? Math.floor(d / 1000) : 0;
}

/** What the client tracks for keepAliveStep (addition). */
export interface KeepAliveState {
  lastTxMs: number;
  lastRxMs: number;
  /** Ping interval in ms (0 = no regular pings). */
  intervalMs: number;
  /** When the outstanding PINGREQ was sent; -1 = none. The client sets -1 on ANY received packet. */
  pingSentMs: number;
  pingTimeoutMs: number;
  /** The last PINGREQ sent, answered or not (-1 = none). */
  lastPingMs: number;
  /** When the oldest unacked QoS >= 1 message was last sent, or undefined. */
  oldestUnackedSentMs: number | undefined;
  /** 0 = no early probes. */
  ackProbeMs: number;
}

export interface KeepAliveStep {
  /** 'dead': no packet within pingTimeoutMs of the PINGREQ; 'ping': send PINGREQ now; 'wait': nothing yet. */
  action: 'wait' | 'ping' | 'dead';
  /** For 'wait': when to call again (undefined: nothing scheduled). For 'ping'/'dead': when it was due. */
  atMs: number | undefined;
}

/**
 * The whole keep-alive rule in one call (addition): the watchdog while a PINGREQ is outstanding,
 * else the earlier of the regular ping (nextPingAt) and the early probe (probeDue). After 'ping' the
 * client sends PINGREQ, sets pingSentMs = lastPingMs = lastTxMs = now, and calls again for the
 * watchdog deadline.
 */
export function keepAliveStep(nowMs: number, s: KeepAliveState): KeepAliveStep {
  if (s.pingSentMs >= 0) {
    const deadAt = s.pingSentMs + s.pingTimeoutMs;
    return { action: nowMs >= deadAt ? 'dead' : 'wait', atMs: deadAt };
  }
  let due = s.intervalMs > 0 ? nextPingAt(s.lastTxMs, s.lastRxMs, s.intervalMs) : undefined;
  const p = probeDue(s.oldestUnackedSentMs, s.ackProbeMs, false, s.lastPingMs >= 0 ? s.lastPingMs : undefined);
  if (p !== undefined && (due === undefined || p < due)) due = p;
  return { action: due !== undefined && nowMs >= due ? 'ping' : 'wait', atMs: due };
}
