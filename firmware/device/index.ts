// The device: power modes driving the heartbeat, sleep done right, the radio link, and what must
// survive deep sleep. It sits above the client and tells it how to behave; the client never decides
// about power.
//
// How a mode change reaches the broker (the decision, and its consequences):
// - The keep-alive declared in CONNECT is the IDLE interval (300 s), clamped to the broker's cap
//   (board.json keepAlive.maxSec: AWS IoT 1200, Azure 1177) and to the learned path cap. While active
//   the client pings every 60 s on the same connection, faster than declared; active <-> idle never
//   reconnects. Consequence: the broker notices a dead device 1.5 x declared after its last packet
//   (450 s with the defaults) whatever the mode, and publishes the will then. The device itself finds
//   a dead link within its current ping interval + pingTimeoutMs (70 s active).
// - sleep on Wi-Fi (and on the desktop): no held connection. The device syncs (queued publishes out,
//   pending inbound in), says goodbye and deep-sleeps until the next check-in, then wakes by reboot,
//   reconnects the persistent session, syncs, and sleeps again.
//     v5: the CONNECT of a sleeping device carries Will Delay Interval = check-in + grace and a
//         Session Expiry longer than that, and it leaves with DISCONNECT reason 0x04 (disconnect with
//         will). The broker holds the will; the next check-in (a new connection to the session)
//         cancels it [MQTT-3.1.3-9]; a device that misses its check-in has its will published
//         check-in + grace after it left. Entering sleep from a live active/idle connection
//         re-CONNECTs once with the long will delay first.
//     3.1.1: there is no will delay, and a DISCONNECT discards the will. Before sleeping the device
//         publishes a retained status {"state":"asleep","checkInSec":N} on its status topic; a
//         consumer that sees no check-in by then knows it is overdue. A missed check-in cannot fire
//         a 3.1.1 will.
// - sleep on cellular: the connection is held (the modem's PSM keeps the PDP context); the device
//   re-CONNECTs once declaring the check-in interval as keep-alive and pings at that interval.
//
// Persisted (one small JSON record, replaced atomically): power mode and battery lock, per-broker
// backoff attempts, learned path limits, the next check-in time. A wake restores them.

import type { Client } from '../client/index';
import type { Scheduler, TaskId } from '../scheduler/index';
import type { Link, Log, Power, Random, Storage } from '../../hal/types';
import { PowerModes } from '../liveness/modes';
import type { ModeChange, ModeConfig, PowerMode } from '../liveness/modes';
import { PathLimits } from '../liveness/pathlimit';
import type { PathLimitConfig } from '../liveness/pathlimit';
import { BrokerRotation } from '../liveness/backoff';
import { keepAliveSec } from '../liveness/keepalive';
import { utf8Bytes } from '../client/index';
import { utf8Read } from '../mqtt/utf8';

export interface DeviceOptions {
  modes: ModeConfig;
  /** Broker cap on keep-alive (0 = none). */
  maxKeepAliveSec: number;
  /** 'wifi' and 'host' deep-sleep between check-ins; 'cellular' holds the connection. */
  transport: 'wifi' | 'cellular' | 'host';
  /** v5 will delay = check-in + this. */
  sleepGraceSec: number;
  /** Retained status topic ("online", "checkin", "asleep"), or '' for none. */
  statusTopic: string;
  /** On a check-in: after the queue drained, stay this long for pending inbound messages. */
  lingerMs: number;
  /** Give up a check-in after this and sleep anyway (no radio left on by a bad network). */
  syncTimeoutMs: number;
  pathLimits: PathLimitConfig;
  /** Storage record for the persisted state. */
  stateRecord: string;
  /** Radio re-attach backoff (separate from the broker reconnect backoff). */
  linkBackoff: { baseMs: number; capMs: number; factor: number; stableAfterMs: number };
}

export function deviceDefaults(): Omit<DeviceOptions, 'modes' | 'transport'> {
  return {
    maxKeepAliveSec: 0,
    sleepGraceSec: 120,
    statusTopic: '',
    lingerMs: 2000,
    syncTimeoutMs: 30000,
    pathLimits: { marginSec: 30, minSec: 30, probeEveryMs: 86400000, deathsToLearn: 2 },
    stateRecord: 'wren.dev',
    linkBackoff: { baseMs: 2000, capMs: 120000, factor: 2, stableAfterMs: 60000 },
  };
}

export interface DeviceHal {
  scheduler: Scheduler;
  power: Power;
  link?: Link;
  storage?: Storage;
  random: Random;
  log: Log;
}

/** The persisted record (its keys and the nested toJSON() shapes outlive a firmware update). */
interface Persisted {
  v: number;
  modes?: { mode: PowerMode; low: boolean };
  rotation?: { current: number; attempts: number[] };
  paths?: string;
  checkIns?: number;
  /** The protocol version "auto" settled on (so a check-in does not probe 5.0 every time). */
  mqtt?: number;
  /** A check-in period longer than the hardware's longest deep sleep: what is left to sleep (ms). */
  sleepLeftMs?: number;
}

declare const WREN_TRANSPORT: 'wifi' | 'cellular' | 'host' | undefined;

/*
 * Whether sleep holds the connection (cellular) or deep-sleeps (Wi-Fi, host): a device build knows its
 * transport (WREN_TRANSPORT, see firmware/main.ts), and each use reads
 *   typeof WREN_TRANSPORT === 'undefined' ? this.held_ : WREN_TRANSPORT === 'cellular'
 * INLINE (firmware/flags.d.ts), so esbuild drops the other transport's sleep code. Elsewhere (Node:
 * tests, tools) the options decide (held_).
 */

const TAG = 'device';
/** PSM active time: how long the modem stays reachable after each exchange before sleeping. */
const PSM_ACTIVE_SEC = 10;

export class Device {
  client: Client;
  opts: DeviceOptions;
  modes: PowerModes;
  paths: PathLimits;
  /** Check-ins done since the device first went to sleep (persisted). */
  checkIns: number;
  /** Set when the device has asked the HAL for deep sleep (on a desktop/mock the call returns). */
  asleep: boolean;
  /** Deep sleep still owed before the next check-in (a period longer than the hardware allows). */
  sleepLeftMs: number;

  private hal_: DeviceHal;
  private handlers_: { [event: string]: Array<(a: unknown) => void> };
  /** Cellular: sleep holds the connection (the modem's PSM) instead of deep-sleeping (Node only). */
  private held_?: boolean;
  /** The link's network id: the key of the learned path limits. */
  private net_: string;
  /** Radio re-attach backoff: a rotation over one "broker", the link. */
  private linkBackoff_: BrokerRotation;
  private tickTask_?: TaskId;
  private syncTask_?: TaskId;
  private linkTask_?: TaskId;
  /** v5: the next CONNECT carries the sleeping will delay (so entering sleep needs no re-CONNECT). */
  private willDelayed_?: boolean;
  /** Entered a deep-sleeping sleep during this boot (a check-in boot starts in sleep without entering it). */
  private sleeping_?: boolean;

  constructor(client: Client, hal: DeviceHal, opts: DeviceOptions) {
    this.client = client;
    this.hal_ = hal;
    this.opts = opts;
    const link = hal.link;
    // A wake restores what save_() wrote; an unreadable record, or one of another version, starts fresh.
    const st = hal.storage;
    const b = st && st.read(opts.stateRecord);
    let p: Persisted | undefined;
    try {
      if (b) p = JSON.parse(utf8Read(b, 0, b.length));
    } catch (e) {
      // fresh
    }
    if (!p || p.v !== 1) p = { v: 1 };
    this.modes = new PowerModes(opts.modes, hal.scheduler.now(), p.modes);
    this.paths = new PathLimits(opts.pathLimits, p.paths);
    client.rotation.restore(p.rotation as { current: number; attempts: number[] });
    if (client.options.version === 'auto' && p.mqtt === 4) client.version = 4;
    this.checkIns = p.checkIns || 0;
    this.sleepLeftMs = p.sleepLeftMs || 0;
    this.asleep = false;
    this.handlers_ = {};
    if (typeof WREN_TRANSPORT === 'undefined') this.held_ = opts.transport === 'cellular';
    this.net_ = link ? link.networkId() : '';
    this.linkBackoff_ = new BrokerRotation(1, opts.linkBackoff);
    const self = this;
    client.on('publish', function (_topic: string, _qos: number, quiet: boolean) {
      if (!quiet) self.wake('publish');
    });
    client.on('message', this.wake.bind(this, 'inbound'));
    client.on('dead', function (idleSec: number) {
      // A held connection died after idleSec of silence: evidence for a NAT/middlebox idle limit.
      // The next connection declares and pings within what was learned.
      self.paths.died(self.net_, idleSec, hal.scheduler.now());
      self.configure_(self.mode);
      self.save_();
    });
    client.on('pong', function (_rtt: number, idleSec: number) {
      self.paths.survived(self.net_, idleSec, hal.scheduler.now());
    });
    client.on('state', function (s: string) {
      if (s !== 'connected') return;
      self.status_(self.checkingIn ? 'checkin' : 'online');
      if (self.mode !== 'sleep') self.configure_(self.mode);
      // Entered sleep on this boot and (re)connected for it: goodbye, sync, then sleep.
      else if (self.sleeping_) self.sync_(true);
    });
    if (link) {
      // Link events run in the scheduler's loop: onUp() has no reason, onDown(reason) has one.
      const post = function (reason?: string) {
        hal.scheduler.post(self.link_.bind(self, reason), 'device.link');
      };
      link.setHandler({ onUp: post, onDown: post });
    }
  }

  /** True while this boot is a sleep check-in (publish with {quiet: true} to stay asleep). */
  get checkingIn(): boolean {
    return this.mode === 'sleep' && !(typeof WREN_TRANSPORT === 'undefined' ? this.held_ : WREN_TRANSPORT === 'cellular') && !this.asleep;
  }

  get mode(): PowerMode {
    return this.modes.mode;
  }

  /** Listen: 'mode' (ModeChange), 'sleep' (durationMs), 'checkin' (number). */
  on(event: 'mode' | 'sleep' | 'checkin', fn: (a: any) => void): void {
    (this.handlers_[event] || (this.handlers_[event] = [])).push(fn);
  }

  /** Boot: a check-in when the device went to sleep in sleep mode, otherwise a normal start. */
  start(): void {
    const h = this.hal_;
    const timer = h.power.wakeCause() === 'timer';
    if (this.mode === 'sleep' && this.sleepLeftMs > 0 && timer) {
      // Part of a sleep longer than the hardware can do at once: sleep on, radio off, no check-in.
      this.sleepFor_(this.sleepLeftMs);
      return;
    }
    if (h.link) h.link.up();
    const checkIn = this.checkingIn;
    if (checkIn) {
      if (timer) this.checkIns++;
      this.emit_('checkin', this.checkIns);
      h.log.info(TAG, 'check-in ' + this.checkIns);
    }
    this.configure_(this.mode);
    this.client.start();
    if (checkIn) this.sync_(false);
    this.change_(undefined);
  }

  /**
   * The application wants the device awake (a button, a sensor event). Application traffic comes
   * here too, with the reason 'publish' or 'inbound'.
   */
  wake(reason?: string): void {
    this.change_(this.modes.to('active', reason || 'wake', this.hal_.scheduler.now()));
  }

  /** The application asks for sleep now. */
  sleep(): void {
    this.change_(this.modes.to('sleep', 'app-request', this.hal_.scheduler.now()));
  }

  /** A battery reading (mV): under the board's threshold the device goes to sleep. */
  battery(mv: number): void {
    this.change_(this.modes.battery(mv, this.hal_.scheduler.now()));
  }

  // ------------------------------------------------------------------ modes

  /** Act on a mode change (if any), then re-arm the timer of the next timed transition. */
  private change_(ch: ModeChange | undefined): void {
    const s = this.hal_.scheduler;
    const c = this.client;
    const link = this.hal_.link;
    const self = this;
    if (ch) {
      const to = ch.to;
      const on = c.state === 'connected';
      this.hal_.log.info(TAG, 'mode ' + to + ' (' + ch.reason + ')');
      this.emit_('mode', ch);
      this.save_();
      if (to !== 'sleep') {
        this.configure_(to);
        if (ch.from === 'sleep') {
          // A check-in (or a held sleep) turned into real work: stay awake, PSM off where the link has it.
          s.cancel(this.syncTask_);
          this.sleeping_ = false;
          if (link && link.setPsm) link.setPsm(0, 0);
          if (c.state === 'stopped' || c.state === 'idle') c.start();
        }
      } else if (typeof WREN_TRANSPORT === 'undefined' ? this.held_ : WREN_TRANSPORT === 'cellular') {
        // Held connection: re-CONNECT to declare the check-in interval, ping at it, and let the modem's
        // PSM sleep between pings where the link offers it (hal/espruino CellularModem.setPsm).
        this.configure_('sleep');
        if (on) c.reconnect('sleep');
        if (link && link.setPsm) link.setPsm(this.opts.modes.sleepCheckInSec, PSM_ACTIVE_SEC);
      } else {
        // v5 when the will of this connection has no delay: re-CONNECT with it first (the goodbye
        // follows when connected, in the 'state' listener). Otherwise goodbye when connected, then sync
        // and deep sleep (not connected: at the sync timeout).
        const again = on && (typeof WREN_V5 === 'undefined' || WREN_V5) && c.version === 5 && !!c.options.will && !this.willDelayed_;
        this.sleeping_ = true;
        this.configure_('sleep');
        if (again) c.reconnect('sleep');
        else this.sync_(on);
      }
    }
    s.cancel(this.tickTask_);
    const due = this.modes.nextDeadline();
    this.tickTask_ =
      due === undefined
        ? undefined
        : s.at(due, function () {
            self.change_(self.modes.tick(s.now()));
          }, 'device.tick');
  }

  /**
   * Set what the next CONNECT declares for `mode` (keep-alive; v5: will delay and session expiry) and
   * the ping interval on the current connection (sleep: the keep-alive in force).
   */
  private configure_(mode: PowerMode): void {
    const c = this.client;
    const o = c.options;
    const m = this.opts.modes;
    const cap = this.paths.capFor(this.net_, this.hal_.scheduler.now());
    const forSleep = mode === 'sleep' && !(typeof WREN_TRANSPORT === 'undefined' ? this.held_ : WREN_TRANSPORT === 'cellular');
    // Declared: the idle interval, or (cellular) the check-in interval while asleep.
    o.keepAliveSec = keepAliveSec(m, forSleep ? 'idle' : mode, true, this.opts.maxKeepAliveSec, cap);
    if (typeof WREN_V5 === 'undefined' || WREN_V5) {
      // Wi-Fi sleep: the will waits check-in + grace, and the session outlives that.
      const grace = this.opts.sleepGraceSec;
      const delay = m.sleepCheckInSec + grace;
      if (forSleep && o.sessionExpirySec < delay + grace) o.sessionExpirySec = delay + grace;
      const w = o.will;
      if (w) (w.properties = w.properties || {}).willDelayInterval = forSleep ? delay : undefined;
      this.willDelayed_ = forSleep && !!w;
    }
    const granted = c.keepAlive();
    c.setPingInterval(mode === 'sleep' ? 0 : keepAliveSec(m, mode, false, granted > 0 ? granted : m.idleKeepAliveSec, cap));
  }

  /** The retained status: {"state":...} and, going to sleep on 3.1.1, "checkInSec". */
  private status_(state: string, checkInSec?: number): void {
    // Housekeeping, not application traffic: quiet, so it does not wake the modes. (Quoted keys: JSON
    // field names, which the device build keeps.)
    const topic = this.opts.statusTopic;
    if (topic) this.client.publish(topic, JSON.stringify({ 'state': state, 'checkInSec': checkInSec }), { qos: 1, retain: true, quiet: true });
  }

  // ------------------------------------------------------------------ sleep

  /**
   * Sleep once the client is idle (queue drained, acks in) after the linger, or at the sync timeout:
   * DISCONNECT (v5 with the will delayed: 0x04, the broker keeps the will), radio off, deep sleep until
   * the check-in. goodbye: connected and leaving; on 3.1.1 the retained status says so first.
   */
  private sync_(goodbye: boolean): void {
    const s = this.hal_.scheduler;
    const self = this;
    const o = this.opts;
    const c = this.client;
    const started = s.now();
    if (goodbye && c.version === 4) this.status_('asleep', o.modes.sleepCheckInSec);
    // (Leaving sleep cancels this task: see change_.)
    const check = function () {
      const done = c.state === 'connected' && c.isIdle();
      if (!done && s.now() - started < o.syncTimeoutMs) {
        self.syncTask_ = s.after(250, check, 'device.sync');
        return;
      }
      if (!done) self.hal_.log.warn(TAG, 'sync incomplete');
      c.stop(self.willDelayed_ ? 0x04 : 0);
      if (self.hal_.link) self.hal_.link.down();
      self.sleepFor_(o.modes.sleepCheckInSec * 1000);
    };
    s.cancel(this.syncTask_);
    this.syncTask_ = s.after(o.lingerMs, check, 'device.sync');
  }

  /** Deep sleep `ms`, in parts no longer than the hardware allows (what is left is persisted). */
  private sleepFor_(ms: number): void {
    const p = this.hal_.power;
    const max = p.maxDeepSleepMs ? p.maxDeepSleepMs() : ms;
    const now = ms < max ? ms : max;
    this.sleepLeftMs = ms - now;
    this.asleep = true;
    this.save_();
    this.hal_.log.info(TAG, 'deep sleep ' + now + ' ms');
    this.emit_('sleep', now);
    // Nothing may run after this on the device (it reboots at the end): stop the loop.
    this.hal_.scheduler.halt();
    p.sleep('deep', now);
  }

  // ------------------------------------------------------------------ link

  /** The link came up (reason undefined) or went down (reason), in the scheduler's loop. */
  private link_(reason: string | undefined): void {
    const h = this.hal_;
    const s = h.scheduler;
    const link = h.link as Link;
    const b = this.linkBackoff_;
    if (reason === undefined) {
      b.up(s.now());
      this.net_ = link.networkId();
      h.log.info(TAG, 'link up ' + this.net_);
      this.client.linkUp();
    } else {
      h.log.warn(TAG, 'link down: ' + reason);
      if (reason !== 'requested' && !this.asleep) {
        // Re-attach after the radio's own backoff (reset only once the link had stayed up).
        b.down(s.now());
        s.cancel(this.linkTask_);
        this.linkTask_ = s.after(b.failed(s.now(), h.random.next(), false).delayMs, link.up.bind(link), 'device.relink');
      }
    }
  }

  // ------------------------------------------------------------------ persistence

  private save_(): void {
    const st = this.hal_.storage;
    const c = this.client;
    // modes and rotation are written by their toJSON(); paths as a string of JSON.
    const p = { v: 1, modes: this.modes, rotation: c.rotation, paths: JSON.stringify(this.paths.recs), checkIns: this.checkIns, mqtt: c.version, sleepLeftMs: this.sleepLeftMs };
    if (st && !st.replace(this.opts.stateRecord, utf8Bytes(JSON.stringify(p)))) this.hal_.log.error(TAG, 'state not saved');
  }

  private emit_(event: string, a: unknown): void {
    const list = this.handlers_[event] || [];
    for (let i = 0; i < list.length; i++) {
      try {
        list[i](a);
      } catch (e) {
        this.hal_.log.error(TAG, event + ' listener threw: ' + e);
      }
    }
  }
}
