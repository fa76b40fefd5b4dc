// Power modes: how hard the device works to stay reachable. Pure policy: every method takes nowMs (any
// monotonic ms timeline) and returns the change it made; the client acts on it (keep-alive interval,
// disconnect + deep sleep...) and asks nextDeadline() when to call tick() again.
//
//   active  application traffic recently: ping every activeKeepAliveSec (60 s), fast dead-link detection.
//   idle    no application traffic for idleAfterSec (120 s): ping every idleKeepAliveSec (300 s) on the
//           SAME connection (the declared keep-alive covers both, see keepalive.ts).
//   sleep   idle for sleepAfterSec (600 s), asked for by the app, or battery low: no held connection
//           on Wi-Fi (clean DISCONNECT + deep sleep, wake every sleepCheckInSec = 1800 s to sync),
//           or a held connection declaring the check-in interval (cellular PSM).
//
// Why (DESIGN.md section 3, "Energy"): on Wi-Fi staying associated costs far more than pings (auto
// light-sleep 2-3 mA, modem-sleep 20-30 mA vs deep sleep 5-10 uA), so a long quiet period is cheaper as
// deep sleep + a full reconnect per check-in (10-80x); on LTE-M each exchange costs a radio tail, so
// there the ping interval itself dominates and a quiet device should ping rarely.
//
// Rules, exactly:
// - Starts 'active' at the construction time, which counts as the last application traffic.
// - to('active', reason, now): application traffic (a publish, an inbound application message, or an
//   explicit app wake). Records the traffic time; any mode other than active -> active (the change's
//   reason is the caller's: 'publish', 'inbound', 'wake'...). A wake for a sleep check-in is NOT
//   application traffic: the device wakes, syncs and sleeps again without calling this.
// - tick(now): active -> idle when now >= lastTraffic + idleAfterSec; idle -> sleep when
//   now >= idleSince + sleepAfterSec. A transition's atMs is the moment it was due (not the late tick
//   time), so the schedule is exact whenever tick() runs: idle at exactly lastTraffic + idleAfterSec,
//   sleep exactly sleepAfterSec after that. If both are due in one tick() they are applied together
//   and returned as ONE change (active -> sleep, reason 'sleep-timeout', atMs the sleep time).
//   idleAfterSec <= 0 or sleepAfterSec <= 0 disables that transition.
// - to('sleep', 'app-request', now): the app asks for sleep (to() is every change of mode).
// - battery(mv, now): mv < lowBatteryMv -> sleep (reason 'low-battery') and LOCKED there: application
//   traffic does not leave sleep while the battery is low (traffic is still recorded). The lock lifts
//   when mv >= lowBatteryMv + batteryHysteresisMv (default 100 mV: a cell's voltage recovers when the
//   load drops, which would otherwise flap); the mode stays sleep until the next application traffic.
//   lowBatteryMv = 0 disables the rule.
// - Methods return undefined when nothing changed (e.g. a sleep request while asleep).
// - Persisted across deep sleep: mode and the battery lock (toJSON, and the constructor's `saved`).
//   Times are not: the ms timeline restarts at boot, so construct with the boot time and what was
//   saved; in active/idle the countdown restarts at boot (sleep has no timed transition).
//
// Espruino-safe: no class fields, no default params, no self-reference inside a class body.

export type PowerMode = 'active' | 'idle' | 'sleep';

export interface ModeConfig {
  /** Ping interval while active (60). */
  activeKeepAliveSec: number;
  /** Ping interval while idle (300); also the keep-alive declared in CONNECT (keepalive.ts). */
  idleKeepAliveSec: number;
  /** Check-in interval while asleep (1800). */
  sleepCheckInSec: number;
  /** No application traffic for this long -> idle (120; 0 = never). */
  idleAfterSec: number;
  /** Idle for this long -> sleep (600; 0 = never). */
  sleepAfterSec: number;
  /** Battery under this -> sleep (0 = never). */
  lowBatteryMv: number;
  /** The low-battery lock lifts at lowBatteryMv + this (default 100). */
  batteryHysteresisMv?: number;
}

export interface ModeChange {
  from: PowerMode;
  to: PowerMode;
  reason: string;
  atMs: number;
}

export function modeDefaults(): ModeConfig {
  return {
    activeKeepAliveSec: 60,
    idleKeepAliveSec: 300,
    sleepCheckInSec: 1800,
    idleAfterSec: 120,
    sleepAfterSec: 600,
    lowBatteryMv: 0,
  };
}

export class PowerModes {
  cfg: ModeConfig;
  mode: PowerMode;
  /** Last application traffic (ms timeline). */
  lastTrafficMs: number;
  /** When the current mode was entered (ms timeline). */
  sinceMs: number;
  /** Battery low: held in sleep. */
  lowBattery: boolean;

  /** Starts 'active' at nowMs, or in what toJSON() saved (an unknown mode is ignored). */
  constructor(cfg: ModeConfig, nowMs: number, saved?: { mode: PowerMode; low: boolean }) {
    this.cfg = cfg;
    this.mode = 'active';
    this.lastTrafficMs = this.sinceMs = nowMs;
    this.lowBattery = false;
    if (saved) {
      const m = saved.mode;
      if (m === 'idle' || m === 'sleep') this.mode = m;
      if (saved.low === true) {
        this.lowBattery = true;
        this.mode = 'sleep';
      }
    }
  }

  /**
   * -> mode at atMs, for `reason`. Going active is application traffic: its time is recorded, and
   * while the battery is low it changes nothing.
   */
  to(mode: PowerMode, reason: string, atMs: number): ModeChange | undefined {
    const from = this.mode;
    if (mode === 'active') {
      this.lastTrafficMs = atMs;
      if (this.lowBattery) return undefined;
    }
    if (from === mode) return undefined;
    this.mode = mode;
    this.sinceMs = atMs;
    return { from: from, to: mode, reason: reason, atMs: atMs };
  }

  /** A battery reading (mV). */
  battery(mv: number, nowMs: number): ModeChange | undefined {
    const low = this.cfg.lowBatteryMv;
    if (!(low > 0)) return undefined;
    if (mv < low) {
      this.lowBattery = true;
      return this.to('sleep', 'low-battery', nowMs);
    }
    const h = this.cfg.batteryHysteresisMv as number;
    if (mv >= low + (h >= 0 ? h : 100)) this.lowBattery = false;
    return undefined;
  }

  /** Apply the time-based transitions due at nowMs (see the rules above). */
  tick(nowMs: number): ModeChange | undefined {
    const from = this.mode;
    let ch: ModeChange | undefined;
    // (no deadline: undefined, and nowMs >= undefined is false)
    let due = this.nextDeadline() as number;
    while (nowMs >= due) {
      const to = this.mode === 'active' ? 'idle' : 'sleep';
      ch = this.to(to, to + '-timeout', due);
      due = this.nextDeadline() as number;
    }
    if (ch) ch.from = from;
    return ch;
  }

  /** When tick() next has something to do (ms timeline), or undefined. */
  nextDeadline(): number | undefined {
    const c = this.cfg;
    const m = this.mode;
    const s = m === 'active' ? c.idleAfterSec : m === 'idle' ? c.sleepAfterSec : 0;
    return s > 0 ? (m === 'active' ? this.lastTrafficMs : this.sinceMs) + s * 1000 : undefined;
  }

  toJSON(): { mode: PowerMode; low: boolean } {
    return { mode: this.mode, low: this.lowBattery };
  }
}
