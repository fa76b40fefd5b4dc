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
import { Backoff } from '../liveness/backoff';
import { declaredKeepAlive, pingIntervalSec } from '../liveness/keepalive';
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
  private tickTask_: TaskId | undefined;
  private syncTask_: TaskId | undefined;
  private linkTask_: TaskId | undefined;
  private linkBackoff_: Backoff;
  /** The will delay the current connection was made with (v5), to know if sleep needs a re-CONNECT. */
  private connectedForSleep_: boolean;
  private sleeping_: boolean;

  constructor(client: Client, hal: DeviceHal, opts: DeviceOptions) {
    this.client = client;
    this.hal_ = hal;
    this.opts = opts;
    const now = hal.scheduler.now();
    this.modes = new PowerModes(opts.modes, now);
    this.paths = new PathLimits(opts.pathLimits);
    this.linkBackoff_ = new Backoff(opts.linkBackoff);
    this.checkIns = 0;
    this.asleep = false;
    this.sleepLeftMs = 0;
    this.handlers_ = {};
    this.tickTask_ = undefined;
    this.syncTask_ = undefined;
    this.linkTask_ = undefined;
    this.connectedForSleep_ = false;
    this.sleeping_ = false;
    this.restore_();
    const self = this;
    client.on('publish', function (_topic: string, _qos: number, quiet: boolean) {
      if (!quiet) self.traffic_('publish');
    });
    client.on('message', function () {
      self.traffic_('inbound');
    });
    client.on('dead', function (idleSec: number) {
      // A held connection died after idleSec of silence: evidence for a NAT/middlebox idle limit.
      // The next connection declares and pings within what was learned.
      self.paths.died(self.networkId_(), idleSec, self.hal_.scheduler.now());
      if (self.modes.mode !== 'sleep' || self.opts.transport === 'cellular') self.prepareConnect_(self.modes.mode);
      self.save_();
    });
    client.on('pong', function (_rtt: number, idleSec: number) {
      self.paths.survived(self.networkId_(), idleSec, self.hal_.scheduler.now());
    });
    client.on('state', function (s: string) {
      if (s === 'connected') self.onConnected_();
    });
    const link = hal.link;
    if (link) {
      link.setHandler({
        onUp: function () {
          hal.scheduler.post(function () {
            self.linkBackoff_.up(hal.scheduler.now());
            hal.log.info(TAG, 'link up (' + link.networkId() + ')');
            self.client.linkUp();
          }, 'device.link-up');
        },
        onDown: function (reason: string) {
          hal.scheduler.post(function () {
            self.onLinkDown_(reason);
          }, 'device.link-down');
        },
      });
    }
  }

  /** True while this boot is a sleep check-in (publish with {quiet: true} to stay asleep). */
  get checkingIn(): boolean {
    return this.modes.mode === 'sleep' && this.opts.transport !== 'cellular' && !this.asleep;
  }

  /** Listen: 'mode' (ModeChange), 'sleep' (durationMs), 'checkin' (number). */
  on(event: 'mode' | 'sleep' | 'checkin', fn: (a: any) => void): void {
    (this.handlers_[event] || (this.handlers_[event] = [])).push(fn);
  }

  get mode(): PowerMode {
    return this.modes.mode;
  }

  /** Boot: a check-in when the device went to sleep in sleep mode, otherwise a normal start. */
  start(): void {
    if (this.modes.mode === 'sleep' && this.sleepLeftMs > 0 && this.hal_.power.wakeCause() === 'timer') {
      // Part of a sleep longer than the hardware can do at once: sleep on, radio off, no check-in.
      this.hal_.log.info(TAG, 'woke mid-sleep; ' + this.sleepLeftMs + ' ms left');
      this.sleepFor_(this.sleepLeftMs);
      return;
    }
    if (this.hal_.link) this.hal_.link.up();
    if (this.modes.mode === 'sleep' && this.opts.transport !== 'cellular') {
      if (this.hal_.power.wakeCause() === 'timer') this.checkIns++;
      this.emit_('checkin', this.checkIns);
      this.hal_.log.info(TAG, 'check-in ' + this.checkIns + ' (wake: ' + this.hal_.power.wakeCause() + ')');
      this.prepareConnect_('sleep');
      this.client.start();
      this.armSync_();
    } else {
      this.prepareConnect_(this.modes.mode);
      this.client.start();
      this.applyMode_();
    }
    this.armTick_();
  }

  /** The application wants the device awake (a button, a sensor event). */
  wake(): void {
    this.traffic_('wake');
  }

  /** The application asks for sleep now. */
  sleep(): void {
    this.change_(this.modes.requestSleep(this.hal_.scheduler.now()));
  }

  /** A battery reading (mV): under the board's threshold the device goes to sleep. */
  battery(mv: number): void {
    this.change_(this.modes.battery(mv, this.hal_.scheduler.now()));
  }

  // ------------------------------------------------------------------ modes

  private traffic_(reason: string): void {
    const ch = this.modes.appTraffic(this.hal_.scheduler.now(), reason);
    if (ch && this.syncTask_ !== undefined) {
      // A check-in turned into real work: stay awake.
      this.hal_.scheduler.cancel(this.syncTask_);
      this.syncTask_ = undefined;
    }
    this.change_(ch);
    this.armTick_();
  }

  private change_(ch: ModeChange | undefined): void {
    if (!ch) return;
    this.hal_.log.info(TAG, 'mode ' + ch.from + ' -> ' + ch.to + ' (' + ch.reason + ')');
    this.emit_('mode', ch);
    this.save_();
    if (ch.to === 'sleep') this.enterSleep_();
    else {
      if (ch.from === 'sleep') {
        this.sleeping_ = false;
        const link = this.hal_.link;
        if (this.opts.transport === 'cellular' && link && link.setPsm) link.setPsm(0, 0);
        this.prepareConnect_(ch.to);
        if (this.client.state === 'stopped' || this.client.state === 'idle') this.client.start();
      }
      this.applyMode_();
    }
    this.armTick_();
  }

  private armTick_(): void {
    const s = this.hal_.scheduler;
    if (this.tickTask_ !== undefined) s.cancel(this.tickTask_);
    this.tickTask_ = undefined;
    const due = this.modes.nextDeadline();
    if (due === undefined) return;
    const self = this;
    this.tickTask_ = s.at(due, function () {
      self.tickTask_ = undefined;
      self.change_(self.modes.tick(s.now()));
      self.armTick_();
    }, 'device.mode-tick');
  }

  /** Ping interval for the current mode on the current connection. */
  private applyMode_(): void {
    const mode = this.modes.mode;
    if (mode === 'sleep') return;
    const cap = this.paths.capFor(this.networkId_(), this.hal_.scheduler.now());
    const granted = this.client.keepAlive();
    this.client.setPingInterval(pingIntervalSec(this.opts.modes, mode, granted > 0 ? granted : this.opts.modes.idleKeepAliveSec, cap));
  }

  /** Set what the next CONNECT declares: keep-alive, session expiry and (v5) will delay. */
  private prepareConnect_(mode: PowerMode): void {
    const o = this.client.options;
    const cap = this.paths.capFor(this.networkId_(), this.hal_.scheduler.now());
    const held = mode === 'sleep' && this.opts.transport === 'cellular';
    o.keepAliveSec = declaredKeepAlive(this.opts.modes, this.opts.maxKeepAliveSec, held ? 'sleep' : 'idle', cap);
    const forSleep = mode === 'sleep' && this.opts.transport !== 'cellular';
    const willDelay = this.opts.modes.sleepCheckInSec + this.opts.sleepGraceSec;
    if (forSleep && o.sessionExpirySec < willDelay + this.opts.sleepGraceSec) o.sessionExpirySec = willDelay + this.opts.sleepGraceSec;
    if (o.will) {
      const props = o.will.properties || {};
      if (forSleep) props.willDelayInterval = willDelay;
      else delete props.willDelayInterval;
      o.will.properties = props;
    }
    this.connectedForSleep_ = forSleep;
  }

  private onConnected_(): void {
    this.status_(this.modes.mode === 'sleep' && this.opts.transport !== 'cellular' ? 'checkin' : 'online', 0);
    if (this.modes.mode !== 'sleep') this.applyMode_();
    if (this.sleeping_ && this.opts.transport !== 'cellular') this.finishSleep_();
  }

  private status_(state: string, checkInSec: number): void {
    if (!this.opts.statusTopic) return;
    const body = checkInSec > 0 ? '{"state":"' + state + '","checkInSec":' + checkInSec + '}' : '{"state":"' + state + '"}';
    // Status is housekeeping, not application traffic: it must not wake the modes.
    this.client.publish(this.opts.statusTopic, body, { qos: 1, retain: true, quiet: true });
  }

  // ------------------------------------------------------------------ sleep

  private enterSleep_(): void {
    this.sleeping_ = true;
    const c = this.client;
    if (this.opts.transport === 'cellular') {
      // Held connection: declare the check-in interval once, ping at it, and let the modem's PSM
      // sleep between pings where the link offers it (hal/espruino CellularModem.setPsm).
      this.prepareConnect_('sleep');
      c.setPingInterval(0);
      if (c.state === 'connected') c.reconnect('sleep: declare the check-in keep-alive');
      const link = this.hal_.link;
      if (link && link.setPsm) link.setPsm(this.opts.modes.sleepCheckInSec, PSM_ACTIVE_SEC);
      return;
    }
    if (c.state === 'connected' && c.version === 5 && !this.connectedForSleep_ && c.options.will) {
      // The will on this connection has no delay: re-CONNECT once with the sleeping will delay.
      this.prepareConnect_('sleep');
      c.reconnect('sleep: re-CONNECT with will delay ' + (this.opts.modes.sleepCheckInSec + this.opts.sleepGraceSec) + ' s');
      return; // finishSleep() runs when connected
    }
    if (c.state === 'connected') this.finishSleep_();
    else {
      // Not connected: sync on the way is impossible; sleep after the sync timeout at most.
      this.prepareConnect_('sleep');
      this.armSync_();
    }
  }

  /** Connected and about to sleep: say so, wait for the queue to drain, then leave. */
  private finishSleep_(): void {
    const c = this.client;
    if (c.version === 4) this.status_('asleep', this.opts.modes.sleepCheckInSec);
    this.armSync_();
  }

  /** Sleep once the client is idle (queue drained, acks in) plus the linger, or at the sync timeout. */
  private armSync_(): void {
    const s = this.hal_.scheduler;
    const self = this;
    const started = s.now();
    const check = function () {
      self.syncTask_ = undefined;
      if (self.modes.mode !== 'sleep') return;
      const c = self.client;
      const done = c.state === 'connected' && c.isIdle();
      if (done || s.now() - started >= self.opts.syncTimeoutMs) {
        if (!done) self.hal_.log.warn(TAG, 'check-in sync incomplete after ' + self.opts.syncTimeoutMs + ' ms; sleeping anyway');
        self.deepSleep_();
        return;
      }
      self.syncTask_ = s.after(done ? self.opts.lingerMs : 250, check, 'device.sync');
    };
    if (this.syncTask_ !== undefined) s.cancel(this.syncTask_);
    this.syncTask_ = s.after(this.opts.lingerMs, check, 'device.sync');
  }

  private deepSleep_(): void {
    const c = this.client;
    c.stop(c.version === 5 && this.connectedForSleep_ ? 0x04 : 0);
    if (this.hal_.link) this.hal_.link.down();
    this.sleepFor_(this.opts.modes.sleepCheckInSec * 1000);
  }

  /** Deep sleep `ms`, in parts no longer than the hardware allows (what is left is persisted). */
  private sleepFor_(ms: number): void {
    const p = this.hal_.power;
    const cap = p.maxDeepSleepMs ? p.maxDeepSleepMs() : 0;
    const now = cap > 0 && ms > cap ? cap : ms;
    this.sleepLeftMs = ms - now;
    this.save_();
    this.asleep = true;
    this.hal_.log.info(TAG, 'deep sleep for ' + now + ' ms' + (this.sleepLeftMs ? ' (' + this.sleepLeftMs + ' ms more after)' : ''));
    this.emit_('sleep', now);
    // Nothing may run after this on the device (it reboots at the end): stop the loop.
    this.hal_.scheduler.halt();
    p.sleep('deep', now);
  }

  // ------------------------------------------------------------------ link

  private onLinkDown_(reason: string): void {
    this.hal_.log.warn(TAG, 'link down: ' + reason);
    if (reason === 'requested' || this.asleep) return;
    this.linkBackoff_.down(this.hal_.scheduler.now());
    const delay = this.linkBackoff_.next(this.hal_.random.next());
    const self = this;
    if (this.linkTask_ !== undefined) this.hal_.scheduler.cancel(this.linkTask_);
    this.linkTask_ = this.hal_.scheduler.after(delay, function () {
      self.linkTask_ = undefined;
      if (self.hal_.link) self.hal_.link.up();
    }, 'device.link-retry');
  }

  private networkId_(): string {
    return this.hal_.link ? this.hal_.link.networkId() : '';
  }

  // ------------------------------------------------------------------ persistence

  private save_(): void {
    const st = this.hal_.storage;
    if (!st) return;
    const p: Persisted = {
      v: 1,
      modes: this.modes.toJSON(),
      rotation: this.client.rotation.toJSON(),
      paths: this.paths.toJSON(),
      checkIns: this.checkIns,
      mqtt: this.client.version,
      sleepLeftMs: this.sleepLeftMs,
    };
    if (!st.replace(this.opts.stateRecord, utf8Bytes(JSON.stringify(p)))) this.hal_.log.error(TAG, 'cannot save device state: storage full');
  }

  private restore_(): void {
    const st = this.hal_.storage;
    if (!st) return;
    const b = st.read(this.opts.stateRecord);
    if (!b) return;
    let p: Persisted;
    try {
      p = JSON.parse(utf8Read(b, 0, b.length));
    } catch (e) {
      this.hal_.log.warn(TAG, 'device state unreadable; starting fresh');
      return;
    }
    if (!p || p.v !== 1) return;
    if (p.modes) this.modes.restore(p.modes);
    if (p.rotation) this.client.rotation.restore(p.rotation);
    if (typeof p.paths === 'string') this.paths.restore(p.paths);
    if (typeof p.checkIns === 'number') this.checkIns = p.checkIns;
    if (this.client.options.version === 'auto' && p.mqtt === 4) this.client.version = 4;
    if (typeof p.sleepLeftMs === 'number' && p.sleepLeftMs > 0) this.sleepLeftMs = p.sleepLeftMs;
  }

  private emit_(event: string, a: unknown): void {
    const list = this.handlers_[event];
    if (!list) return;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i](a);
      } catch (e) {
        this.hal_.log.error(TAG, event + ' handler threw: ' + String(e));
      }
    }
  }
}
