// The contracts the firmware talks through. Interfaces and types only: no runtime code, so anything
// in firmware/ may import this file freely and it adds nothing to the Espruino bundle.
//
// Conventions shared by every contract:
// - Events are delivered ASYNCHRONOUSLY: never from inside the call that caused them (open(), write(),
//   close(), up(), down() ...), always from a later turn of the host event loop, on the device as on
//   the desktop. A handler may therefore call back into the HAL object without re-entrancy surprises.
// - Errors on the normal path (refused connection, TLS failure, full flash...) are values or events.
//   Methods throw only for programmer errors (calling open() twice, an invalid record name), and the
//   mock Storage throws to simulate a power loss.
// - Bytes are Uint8Array everywhere. The HAL converts to/from the binary strings Espruino uses.
// - Time is milliseconds (number). Only the scheduler (firmware/scheduler) arms timers, through a
//   TimerHost; no firmware code calls setTimeout/setInterval.

// ---------------------------------------------------------------------------------------------
// Time

/**
 * A monotonic millisecond clock.
 *
 * `now()` never goes backwards, except that a device clock MAY wrap around at 2^32 ms (about 49.7
 * days) back to 0. It is not wall-clock time (it is not changed by SNTP) and may be fractional.
 * A clock that wraps wraps exactly at 2^32 (4294967296). Desktop and virtual clocks do not wrap.
 */
export interface Clock {
  /** Monotonic milliseconds (see above). Cheap; never throws. */
  now(): number;
  /**
   * Milliseconds elapsed since `since` (an earlier value of now()), correct across one wrap:
   * `d = now() - since; if (d < 0) d += 2^32`. Valid while the real interval is under 2^32 ms.
   */
  elapsed(since: number): number;
}

/**
 * An opaque handle returned by TimerHost.set(). Never undefined (so it is safe to test a stored handle
 * with `!== undefined`; Espruino's clearTimeout(undefined) clears ALL timers, so a HAL must never
 * forward undefined to it).
 */
export type TimerHandle = unknown;

/**
 * What the scheduler sleeps on: a one-shot timer. On the device and on Node it is setTimeout (the
 * only one in the system, living in hal/); on the mock it is the virtual clock.
 *
 * The scheduler keeps at most ONE timer armed at a time.
 */
export interface TimerHost {
  /**
   * Call `cb` once, no earlier than `delayMs` from now (0 = as soon as the current turn ends; never
   * synchronously inside set()). delayMs is in [0, 2^31 - 1]; the scheduler clamps longer sleeps and
   * re-arms. Returns a handle that is never undefined.
   */
  set(delayMs: number, cb: () => void): TimerHandle;
  /**
   * Cancel a pending timer. Idempotent: clearing a handle that already fired or was cleared does
   * nothing. Never clears anything else.
   */
  clear(handle: TimerHandle): void;
}

// ---------------------------------------------------------------------------------------------
// Transport (a byte stream socket: TCP, optionally TLS)

/** TLS settings for Transport.open(). Absent = plain TCP. PEM strings. */
export interface TlsOptions {
  /** Trusted CA certificate(s), PEM. Absent = the platform's default trust store (where it has one). */
  ca?: string;
  /** Client certificate, PEM (mutual TLS). */
  cert?: string;
  /** Client private key, PEM (mutual TLS). */
  key?: string;
  /** SNI and the name the server certificate must match. Absent = the host. */
  servername?: string;
  /**
   * Verify the server certificate chain and name. Defaults to TRUE when absent (only an explicit
   * `false` disables verification; the check is `rejectUnauthorized !== false`).
   */
  rejectUnauthorized?: boolean;
}

export interface OpenOptions {
  host: string;
  port: number;
  /** Present = TLS over TCP. */
  tls?: TlsOptions;
}

/**
 * Transport error codes (TransportError.code). A HAL maps its platform's errors onto these; the
 * platform's own code and text go into `message`.
 * - 'refused'      the peer actively refused the connection (ECONNREFUSED, Espruino connect throw)
 * - 'reset'        the connection was reset / broken pipe while open
 * - 'dns'          the host name could not be resolved
 * - 'unreachable'  no route / network down
 * - 'timeout'      the platform itself timed out (the firmware normally times out first, with its own
 *                  scheduler task, and calls close())
 * - 'tls'          TLS handshake failed; certificate verification failures have a message containing
 *                  "certificate verification failed"
 * - 'io'           anything else
 */
export type TransportErrorCode = 'refused' | 'reset' | 'dns' | 'unreachable' | 'timeout' | 'tls' | 'io';

export interface TransportError {
  code: TransportErrorCode;
  /** Human-readable, includes the platform's own error code when there is one. */
  message: string;
}

/**
 * Transport events. Set once with Transport.setHandler(); all are delivered asynchronously.
 *
 * For every open() call, in order:
 *   onOpen()            at most once: the connection (and TLS handshake) is established
 *   onData(bytes)*      zero or more, only after onOpen; chunks have arbitrary boundaries
 *   onDrain()*          after a write() returned false, once the backlog is flushed
 *   onError(err)        at most once, before onClose; never after the user called close()
 *   onClose()           EXACTLY once: ends every connection attempt, successful or not, whether the
 *                       peer closed, the connection broke, the open failed, or the user called close()
 * A graceful close by the peer is onClose() without onError().
 */
export interface TransportHandler {
  onOpen(): void;
  /** The receiver owns `bytes`: the transport never reuses or modifies the array. */
  onData(bytes: Uint8Array): void;
  onDrain(): void;
  onError(err: TransportError): void;
  onClose(): void;
}

/**
 * A byte-stream connection, REUSABLE for sequential connection attempts: idle -> open() -> ... ->
 * onClose() -> idle again -> open() ... One attempt at a time. The transport has no timeouts of its own
 * (a black-holed connect may never produce an event): the firmware bounds every wait with a scheduler
 * task and calls close().
 */
export interface Transport {
  /** Set the event handler (once, before the first open()). */
  setHandler(handler: TransportHandler): void;
  /**
   * Start a connection attempt. Never throws for network reasons: a synchronous failure to open (for
   * example Espruino's connect() throwing on a refused port) becomes onError + onClose, delivered
   * asynchronously. Throws (programmer error) if no handler is set or if the previous attempt has not
   * yet ended with onClose().
   */
  open(options: OpenOptions): void;
  /**
   * Send bytes. Returns true when accepted; false when the bytes were queued above the transport's
   * high-water mark (wait for onDrain before writing more) or when the connection is not open (not yet
   * onOpen, or closing/closed: the bytes are dropped, and onClose is coming or has come).
   * The caller must not modify `bytes` after the call (the transport may hold it until sent).
   */
  write(bytes: Uint8Array): boolean;
  /**
   * End the current attempt (open or still connecting). Bytes already accepted are flushed on a
   * best-effort basis. After close(): no more onData/onError/onDrain; onClose() follows asynchronously
   * without waiting for the peer (unless onClose was already delivered). Idempotent: calling it again,
   * or when idle, does nothing.
   */
  close(): void;
}

// ---------------------------------------------------------------------------------------------
// Link (the radio: Wi-Fi association or cellular attach)

export type LinkKind = 'wifi' | 'cellular' | 'ethernet' | 'mock';

/**
 * Link events, set once with Link.setHandler(); delivered asynchronously.
 * After up():  onUp() at most once (attached, IP configured), then onDown(reason) exactly once ends
 * the attach (lost, failed, or the user called down()). Like the Transport, an attach that never
 * completes may produce no event at all: the firmware bounds it and calls down().
 * Reasons: 'requested' (down() was called), 'lost' (association/attach dropped), 'auth' (bad
 * credentials), 'no-network' (SSID/operator not found), 'dhcp' (no address), 'error' (other; details
 * may follow after a colon, e.g. 'error: modem not responding').
 */
export interface LinkHandler {
  onUp(): void;
  onDown(reason: string): void;
}

export interface Link {
  readonly kind: LinkKind;
  setHandler(handler: LinkHandler): void;
  /** Start attaching. Idempotent: does nothing while attaching or up (no second onUp). */
  up(): void;
  /**
   * Detach / power the radio down. Idempotent: does nothing when already down. While attaching or up,
   * onDown('requested') follows asynchronously.
   */
  down(): void;
  /** True between onUp and the matching onDown (state, not a promise of reachability). */
  isUp(): boolean;
  /** Signal strength in dBm (RSSI on Wi-Fi, RSRP/RSSI on cellular), undefined when unknown or down. */
  signal(): number | undefined;
  /**
   * Which network this is: the SSID on Wi-Fi, the APN (or operator) on cellular. Used as a key to
   * remember per-network limits (e.g. the NAT idle timeout found by heartbeat probing). May be '' when
   * unknown.
   */
  networkId(): string;
  /**
   * Cellular power saving (PSM), where the radio offers it: request a periodic TAU of tauSec and an
   * active time of activeSec; (0, 0) turns it off. Absent on links without it (Wi-Fi).
   */
  setPsm?(tauSec: number, activeSec: number): void;
}

// ---------------------------------------------------------------------------------------------
// Storage (named records in flash)

/**
 * Named byte records, like Espruino's Storage: names are 1..28 characters (printable ASCII); every
 * method throws (programmer error) for an invalid name.
 *
 * Durability contract:
 * - replace() is ATOMIC: after a power loss at any moment, read() returns either the complete old
 *   content (or undefined if there was none) or the complete new content, never a mix or a prefix.
 * - append() is NOT atomic: a power loss during an append may leave a torn tail: the bytes appended
 *   before it are intact, the interrupted append may be missing, truncated, or padded with garbage
 *   (0xFF on flash). Callers must frame appended records (length + checksum) and drop a bad tail.
 * - Flash wears: prefer append to rewriting a record per message; erase/replace sparingly.
 *
 * All methods are synchronous.
 */
export interface Storage {
  /** The record's content (a fresh copy the caller owns), or undefined if there is no such record. */
  read(name: string): Uint8Array | undefined;
  /** Size in bytes, or undefined if there is no such record. */
  size(name: string): number | undefined;
  /** Append bytes (creates the record). Returns false if there is not enough space (nothing appended). */
  append(name: string, bytes: Uint8Array): boolean;
  /** Atomically replace the whole record (creates it). Returns false if out of space (old content kept). */
  replace(name: string, bytes: Uint8Array): boolean;
  /** Delete the record. Idempotent. */
  erase(name: string): void;
  /** Record names, optionally only those starting with `prefix`, sorted. */
  list(prefix?: string): string[];
  /** Free bytes, or undefined if the platform cannot tell. */
  free(): number | undefined;
}

// ---------------------------------------------------------------------------------------------
// Power

/**
 * 'light': the radio/CPU may doze, RAM and timers survive, the program keeps running (on Espruino:
 * automatic sleep between timers and Wi-Fi power save). 'deep': everything off, the device reboots after
 * the duration (RAM is lost: persist what must survive first).
 */
export type SleepMode = 'light' | 'deep';

/**
 * Why the program (re)started: 'power-on' (cold boot or unknown first start), 'timer' (end of a deep
 * sleep), 'reset' (watchdog, crash, reset button, software reset), 'external' (a wake-up pin / other
 * wake source), 'unknown'.
 */
export type WakeCause = 'power-on' | 'timer' | 'reset' | 'external' | 'unknown';

export interface Power {
  /**
   * Request a sleep of `durationMs`. 'deep' does not return on a device (it reboots when the time is up,
   * and wakeCause() is then 'timer'); on the desktop and mock it is recorded and returns. 'light'
   * returns at once: it is a hint that nothing is due for durationMs.
   */
  sleep(mode: SleepMode, durationMs: number): void;
  /** Why this run started (constant during a run). */
  wakeCause(): WakeCause;
  /** Battery voltage in millivolts, or undefined when not measurable (mains, no divider wired). */
  batteryMv(): number | undefined;
  /**
   * The longest single deep sleep the hardware can do, in ms (ESP32: 2^31-1 us = 35.79 min), or
   * absent when unlimited. Longer sleeps are taken in parts: the firmware sleeps again on each wake.
   */
  maxDeepSleepMs?(): number;
}

// ---------------------------------------------------------------------------------------------
// Log and Random

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Levelled log lines with a short tag (the module: 'sched', 'mqtt', 'link'...). Methods never throw.
 * Cheap when disabled: guard expensive message building with enabled():
 *   if (log.enabled('debug')) log.debug('mqtt', 'rx ' + describe(packet));
 */
export interface Log {
  /** True when lines at `level` are currently kept (levels order: debug < info < warn < error). */
  enabled(level: LogLevel): boolean;
  debug(tag: string, message: string): void;
  info(tag: string, message: string): void;
  warn(tag: string, message: string): void;
  error(tag: string, message: string): void;
}

/** A source of randomness for jitter and ids. Not required to be cryptographic. */
export interface Random {
  /** A number in [0, 1). */
  next(): number;
}
