// Liveness policy: reconnect backoff and broker failover, power modes, the keep-alive the broker
// agrees with and the ping/watchdog deadlines, and the learned NAT idle limit per network.
// Pure functions and small classes: no I/O, no timers, no clock reads. Every function takes the time
// (nowMs) and, where random, r in [0, 1) from the caller; the client acts on what they return.
// Each file documents its rules and their reasons at the top.

export { Backoff, BrokerRotation } from './backoff';
export type { BackoffConfig, BrokerChoice } from './backoff';
export { PowerModes, modeDefaults } from './modes';
export type { ModeChange, ModeConfig, PowerMode } from './modes';
export {
  MAX_KEEPALIVE_SEC,
  declaredKeepAlive,
  firstPingDelayMs,
  grantedKeepAlive,
  keepAliveSec,
  keepAliveStep,
  nextPingAt,
  pathIdleSec,
  pingIntervalSec,
  probeDue,
} from './keepalive';
export type { KeepAliveState, KeepAliveStep } from './keepalive';
export { PathLimits, pathLimitDefaults } from './pathlimit';
export type { PathLimitConfig, PathRow } from './pathlimit';
