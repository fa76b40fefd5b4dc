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
  /** On a check-in: after the queue drained, stay this long for pending inbound messages (default 2000). */
  lingerMs?: number;
}

/**
 * Options for a device without a board (tests, tools): no broker cap, 120 s grace, no status topic.
 * A board sets all of them (firmware/config deviceOptionsFor).
 */
export function deviceDefaults(): Omit<DeviceOptions, 'modes' | 'transport'> {
  return { maxKeepAliveSec: 0, sleepGraceSec: 120, statusTopic: '' };
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

/*
 * Whether sleep holds the connection (cellular) or deep-sleeps (Wi-Fi, host): a device build knows its
 * transport (WREN_TRANSPORT, see firmware/main.ts), and each use reads
 *   typeof WREN_TRANSPORT === 'undefined' ? self.held_ : WREN_TRANSPORT === 'cellular'
 * INLINE (firmware/flags.d.ts), so esbuild drops the other transport's sleep code. Elsewhere (Node:
 * tests, tools) the options decide (held_).
 */

const TAG = 'device';
/** The storage record of the persisted state. */
const RECORD = 'wren.dev';
/** PSM active time: how long the modem stays reachable after each exchange before sleeping. */
const PSM_ACTIVE_SEC = 10;

/**
 * One object per boot. Its state lives in the constructor's closure (one scope, as the client's);
 * what tests, tools and the application read is on the object.
 */
export class Device {
  modes: PowerModes;
  paths: PathLimits;
  /** Check-ins done since the device first went to sleep (persisted). */
  checkIns: number;
  /** Set when the device has asked the HAL for deep sleep (on a desktop/mock the call returns). */
  asleep?: boolean;
  /** Deep sleep still owed before the next check-in (a period longer than the hardware allows). */
  sleepLeftMs: number;
  /** Cellular: sleep holds the connection (the modem's PSM) instead of deep-sleeping (Node only). */
  private held_?: boolean;

  /** Listen: 'mode' (ModeChange), 'sleep' (durationMs), 'checkin' (number). */
  on!: (event: 'mode' | 'sleep' | 'checkin', fn: (a: any) => void) => void;
  /** Boot: a check-in when the device went to sleep in sleep mode, otherwise a normal start. */
  start!: () => void;
  /**
   * The application wants the device awake (a button, a sensor event). Application traffic comes
   * here too, with the reason 'publish' or 'inbound'.
   */
  wake!: (reason?: string) => void;
  /** The application asks for sleep now. */
  sleep!: () => void;
  /** A battery reading (mV): under the board's threshold the device goes to sleep. */
  battery!: (mv: number) => void;

  constructor(client: Client, hal: DeviceHal, opts: DeviceOptions) {
    const self = this;
    const s = hal.scheduler;
    const log = hal.log;
    const link = hal.link;
    const st = hal.storage;
    const o = client.options;
    const m = opts.modes;
    // A wake restores what save() wrote; no record (b.length throws), an unreadable one or one of
    // another version: fresh.
    let p: Persisted = { v: 1 };
    try {
      const b = (st && st.read(RECORD)) as Uint8Array;
      const q = JSON.parse(utf8Read(b, 0, b.length));
      if (q.v === 1) p = q;
    } catch (e) {
      // fresh
    }
    const modes = (this.modes = new PowerModes(m, s.now(), p.modes));
    // The learned path limit rules (liveness/pathlimit.ts).
    const paths = (this.paths = new PathLimits({ marginSec: 30, minSec: 30, probeEveryMs: 86400000, deathsToLearn: 2 }, p.paths));
    client.rotation.restore(p.rotation as { current: number; attempts: number[] });
    if (o.version === 'auto' && p.mqtt === 4) client.version = 4;
    this.checkIns = p.checkIns || 0;
    this.sleepLeftMs = p.sleepLeftMs || 0;
    if (typeof WREN_TRANSPORT === 'undefined') this.held_ = opts.transport === 'cellular';
    /** The link's network id: the key of the learned path limits. */
    let net = link ? link.networkId() : '';
    /** Radio re-attach backoff (not the broker's): a rotation over one "broker", the link. */
    const relink = new BrokerRotation(1, { baseMs: 2000, capMs: 120000, factor: 2, stableAfterMs: 60000 });
    let tickTask: TaskId | undefined;
    let syncTask: TaskId | undefined;
    let linkTask: TaskId | undefined;
    /** v5: the next CONNECT carries the sleeping will delay (so entering sleep needs no re-CONNECT). */
    let willDelayed: unknown;
    /** Entered a deep-sleeping sleep during this boot (a check-in boot starts in sleep without entering it). */
    let sleeping: boolean | undefined;
    const listeners: { [event: string]: Array<(a: unknown) => void> } = {};

    self.on = (event, fn) => {
      (listeners[event] || (listeners[event] = [])).push(fn);
    };

    /** Log what happened (event and detail, or event and value) and tell the listeners. */
    const emit = (event: string, a: unknown, detail?: string): void => {
      log.info(TAG, event + ' ' + (detail || a));
      const list = listeners[event] || [];
      for (let i = 0; i < list.length; i++) {
        try {
          list[i](a);
        } catch (e) {
          log.error(TAG, event + ' listener: ' + e);
        }
      }
    };

    const save = (): void => {
      // modes and rotation are written by their toJSON(); paths as a string of JSON.
      const r = { v: 1, modes: modes, rotation: client.rotation, paths: JSON.stringify(paths.recs), checkIns: self.checkIns, mqtt: client.version, sleepLeftMs: self.sleepLeftMs };
      if (st && !st.replace(RECORD, utf8Bytes(JSON.stringify(r)))) log.error(TAG, 'state not saved');
    };

    /**
     * Set what the next CONNECT declares for `mode` (keep-alive; v5: will delay and session expiry) and
     * the ping interval on the current connection (sleep: the keep-alive in force).
     */
    const configure = (mode: PowerMode): void => {
      const cap = paths.capFor(net, s.now());
      const forSleep = !(typeof WREN_TRANSPORT === 'undefined' ? self.held_ : WREN_TRANSPORT === 'cellular') && mode === 'sleep';
      // Declared: the idle interval, or (cellular) the check-in interval while asleep.
      o.keepAliveSec = keepAliveSec(m, forSleep ? 'idle' : mode, true, opts.maxKeepAliveSec, cap);
      if (typeof WREN_V5 === 'undefined' || WREN_V5) {
        // Wi-Fi sleep: the will waits check-in + grace, and the session outlives that.
        const grace = opts.sleepGraceSec;
        const delay = m.sleepCheckInSec + grace;
        if (forSleep && o.sessionExpirySec < delay + grace) o.sessionExpirySec = delay + grace;
        const w = o.will;
        if (w) (w.properties = w.properties || {}).willDelayInterval = forSleep ? delay : undefined;
        willDelayed = forSleep && w;
      }
      // The mode's interval under the keep-alive in force (0: none; board.json has active <= idle).
      client.setPingInterval(mode === 'sleep' ? 0 : keepAliveSec(m, mode, false, client.keepAlive(), cap));
    };

    /** The retained status: {"state":...} and, going to sleep on 3.1.1, "checkInSec". */
    const status = (state: string, checkInSec?: number): void => {
      // Housekeeping, not application traffic: quiet, so it does not wake the modes. (Quoted keys: JSON
      // field names, which the device build keeps.)
      const topic = opts.statusTopic;
      if (topic) client.publish(topic, JSON.stringify({ 'state': state, 'checkInSec': checkInSec }), { qos: 1, retain: true, quiet: true });
    };

    /** Deep sleep `ms`, in parts no longer than the hardware allows (what is left is persisted). */
    const sleepFor = (ms: number): void => {
      const pw = hal.power;
      const max = pw.maxDeepSleepMs ? pw.maxDeepSleepMs() : ms;
      const part = ms < max ? ms : max;
      self.sleepLeftMs = ms - part;
      self.asleep = true;
      save();
      emit('sleep', part);
      // Nothing may run after this on the device (it reboots at the end): stop the loop.
      s.halt();
      pw.sleep('deep', part);
    };

    /**
     * Sleep once the client is idle (queue drained, acks in) after the linger, or at the sync timeout:
     * DISCONNECT (v5 with the will delayed: 0x04, the broker keeps the will), radio off, deep sleep until
     * the check-in. goodbye: connected and leaving; on 3.1.1 the retained status says so first.
     * (Leaving sleep cancels syncTask: see change.)
     */
    const sync = (goodbye: boolean): void => {
      const end = s.now() + 30000; // give up after 30 s and sleep anyway (no radio left on by a bad network)
      if (goodbye && client.version === 4) status('asleep', m.sleepCheckInSec);
      const check = (): void => {
        const done = client.state === 'connected' && client.isIdle();
        if (!done && s.now() < end) {
          syncTask = s.after(250, check);
          return;
        }
        if (!done) log.warn(TAG, 'sync incomplete');
        client.stop(willDelayed ? 0x04 : 0);
        if (link) link.down();
        sleepFor(m.sleepCheckInSec * 1000);
      };
      s.cancel(syncTask);
      syncTask = s.after(opts.lingerMs || 2000, check);
    };

    /** Act on a mode change (if any), then re-arm the timer of the next timed transition. */
    const change = (ch: ModeChange | undefined): void => {
      if (ch) {
        const to = ch.to;
        const on = client.state === 'connected';
        // v5, entering a deep-sleeping sleep while the will of this connection has no delay: re-CONNECT
        // with it first (the goodbye follows when connected, in the 'state' listener). Otherwise goodbye
        // when connected, then sync and deep sleep (not connected: at the sync timeout).
        const again = (typeof WREN_V5 === 'undefined' || WREN_V5) && on && client.version === 5 && o.will && !willDelayed;
        emit('mode', ch, to + ' (' + ch.reason + ')');
        save();
        configure(to);
        if (to !== 'sleep') {
          if (ch.from === 'sleep') {
            // A check-in (or a held sleep) turned into real work: stay awake, PSM off again after a held
            // sleep, and connect (client.start() does nothing while it runs).
            s.cancel(syncTask);
            sleeping = false;
            if ((typeof WREN_TRANSPORT === 'undefined' ? self.held_ : WREN_TRANSPORT === 'cellular') && link && link.setPsm) link.setPsm(0, 0);
            client.start();
          }
        } else if (typeof WREN_TRANSPORT === 'undefined' ? self.held_ : WREN_TRANSPORT === 'cellular') {
          // Held connection: re-CONNECT to declare the check-in interval, ping at it, and let the modem's
          // PSM sleep between pings where the link offers it (hal/espruino CellularModem.setPsm).
          if (on) client.reconnect('sleep');
          if (link && link.setPsm) link.setPsm(m.sleepCheckInSec, PSM_ACTIVE_SEC);
        } else {
          sleeping = true;
          if (again) client.reconnect('sleep');
          else sync(on);
        }
      }
      s.cancel(tickTask);
      const due = modes.nextDeadline();
      if (due !== undefined) tickTask = s.at(due, () => change(modes.tick(s.now())));
    };

    const wake = (self.wake = (reason) => change(modes.to('active', reason || 'wake', s.now())));
    self.sleep = () => change(modes.to('sleep', 'app-request', s.now()));
    self.battery = (mv) => change(modes.battery(mv, s.now()));

    self.start = () => {
      const timer = hal.power.wakeCause() === 'timer';
      // Part of a sleep longer than the hardware can do at once: sleep on, radio off, no check-in.
      if (modes.mode === 'sleep' && self.sleepLeftMs > 0 && timer) return sleepFor(self.sleepLeftMs);
      if (link) link.up();
      const checkIn = self.checkingIn;
      if (checkIn) {
        if (timer) self.checkIns++;
        emit('checkin', self.checkIns);
      }
      configure(modes.mode);
      client.start();
      if (checkIn) sync(false);
      change(undefined);
    };

    client.on('publish', (_topic: string, _qos: number, quiet: boolean) => quiet || wake('publish'));
    client.on('message', () => wake('inbound'));
    client.on('dead', (idleSec: number) => {
      // A held connection died after idleSec of silence: evidence for a NAT/middlebox idle limit.
      // The next connection declares and pings within what was learned.
      paths.died(net, idleSec, s.now());
      configure(modes.mode);
      save();
    });
    client.on('pong', (_rtt: number, idleSec: number) => paths.survived(net, idleSec, s.now()));
    client.on('state', (state: string) => {
      if (state !== 'connected') return;
      status(self.checkingIn ? 'checkin' : 'online');
      if (modes.mode !== 'sleep') configure(modes.mode);
      // Entered sleep on this boot and (re)connected for it: goodbye, sync, then sleep.
      else if (sleeping) sync(true);
    });
    if (link) {
      // Link events, run in the scheduler's loop: onUp() has no reason, onDown(reason) has one.
      const post = (reason?: string): void => {
        s.post(() => {
          if (reason === undefined) {
            relink.up(s.now());
            net = link.networkId();
            client.linkUp();
          } else if (!self.asleep) {
            // Re-attach after the radio's own backoff (reset only once the link had stayed up). (The
            // device takes the link down only to sleep: that 'requested' down finds it asleep.)
            relink.down(s.now());
            s.cancel(linkTask);
            linkTask = s.after(relink.failed(s.now(), hal.random.next(), false).delayMs, () => link.up());
          }
          log.info(TAG, 'link ' + (reason === undefined ? 'up ' + net : 'down: ' + reason));
        });
      };
      link.setHandler({ onUp: post, onDown: post });
    }
  }

  /** True while this boot is a sleep check-in (publish with {quiet: true} to stay asleep). */
  get checkingIn(): boolean {
    return !(typeof WREN_TRANSPORT === 'undefined' ? this.held_ : WREN_TRANSPORT === 'cellular') && this.modes.mode === 'sleep' && !this.asleep;
  }

  get mode(): PowerMode {
    return this.modes.mode;
  }
}
