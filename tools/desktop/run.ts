// The firmware on the desktop: boots the client, the device and the demo app on the Node HAL, and
// models the board's deep sleep as a reboot: when the device sleeps, this boot is over; after the
// sleep (sped up with --speed) a new boot starts on the same flash with wake cause 'timer', exactly
// what an ESP32 does.
import { bootFirmware } from '../../firmware/boot';
import type { Firmware } from '../../firmware/boot';
import { startDemo } from '../../firmware/app/demo';
import type { Demo } from '../../firmware/app/demo';
import type { ClientOptions } from '../../firmware/client/index';
import type { DeviceOptions } from '../../firmware/device/index';
import type { PowerModel } from '../../firmware/config/index';
import type { Log, Power, SleepMode, Storage, WakeCause } from '../../hal/types';
import { nodeHal } from '../../hal/node/runtime';
import { chargeMah } from '../sim/power';

/** Power on the desktop: a deep sleep ends this boot and schedules the next one. */
class DesktopPower implements Power {
  constructor(
    private readonly cause: WakeCause,
    private readonly onDeepSleep: (ms: number) => void,
  ) {}
  sleep(mode: SleepMode, durationMs: number): void {
    if (mode === 'deep') this.onDeepSleep(durationMs);
  }
  wakeCause(): WakeCause {
    return this.cause;
  }
  batteryMv(): number | undefined {
    return undefined;
  }
}

export interface DesktopOptions {
  client: ClientOptions;
  device: DeviceOptions;
  deviceId: string;
  periodMs: number;
  burst: number;
  speed: number;
  storage: Storage;
  log: Log;
  power: PowerModel;
  /** Called at every boot with the new firmware (to attach event listeners). */
  onBoot(fw: Firmware, boot: number, wake: WakeCause): void;
  onSleep(ms: number): void;
}

/**
 * A running desktop device. Charge is estimated from the power model: deep sleep at deepSleepUa,
 * awake at idleConnectedMa, plus radioActiveMa for each packet exchange (exchangeMs) and each
 * (re)connect (reconnectMs). Times are device times (sped up with --speed).
 */
export class DesktopDevice {
  fw: Firmware | undefined;
  demo: Demo | undefined;
  boots: number;
  asleepUntil: number;
  /** Estimated charge so far, mAh. */
  chargeMah: number;
  private opts: DesktopOptions;
  private t0: number;
  private lastAccount: number;
  private lastPackets: number;
  private lastConnects: number;
  private wakeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: DesktopOptions) {
    this.opts = opts;
    this.boots = 0;
    this.asleepUntil = 0;
    this.chargeMah = 0;
    this.t0 = Date.now();
    this.lastAccount = this.deviceNow();
    this.lastPackets = 0;
    this.lastConnects = 0;
    this.fw = undefined;
    this.demo = undefined;
    this.wakeTimer = undefined;
  }

  /** Device time in ms since start (sped up). */
  deviceNow(): number {
    return (Date.now() - this.t0) * this.opts.speed;
  }

  start(): void {
    this.boot('power-on');
  }

  private boot(wake: WakeCause): void {
    this.boots++;
    const o = this.opts;
    const hal = nodeHal({ storage: o.storage, log: o.log, speed: o.speed });
    const self = this;
    const power = new DesktopPower(wake, function (ms) {
      self.account();
      self.fw = undefined;
      self.demo = undefined;
      self.asleepUntil = self.deviceNow() + ms;
      o.onSleep(ms);
      self.wakeTimer = setTimeout(function () {
        self.wakeTimer = undefined;
        self.account();
        self.boot('timer');
      }, ms / o.speed);
    });
    // Each boot starts from the board's options (the device adjusts keep-alive and will per boot).
    const c = o.client;
    const client: ClientOptions = { ...c, brokers: c.brokers.slice(), will: c.will ? { ...c.will, properties: { ...(c.will.properties || {}) } } : undefined };
    const fw = bootFirmware(client, { ...o.device }, [], { ...hal, power });
    this.fw = fw;
    this.lastPackets = 0;
    this.lastConnects = 0;
    o.onBoot(fw, this.boots, wake);
    fw.device.start();
    this.demo = startDemo(fw.client, fw.device, hal.scheduler, { deviceId: o.deviceId, periodMs: o.periodMs, burst: o.burst });
  }

  /** Add the charge used since the last call (call before reading chargeMah). */
  account(): void {
    const p = this.opts.power;
    const now = this.deviceNow();
    const dt = now - this.lastAccount;
    this.lastAccount = now;
    const fw = this.fw;
    if (!fw) {
      this.chargeMah += chargeMah(0, dt, 0, p);
      return;
    }
    // The simulator's power model (tools/sim/power.ts); an exchange is counted per packet sent (the
    // answer shares its radio window), the closest the client's counters come to the sim's rule.
    const st = fw.client.stats;
    const exchanges = st.packetsOut - this.lastPackets;
    const reconnects = st.connects - this.lastConnects;
    this.lastPackets = st.packetsOut;
    this.lastConnects = st.connects;
    this.chargeMah += chargeMah(dt, 0, exchanges * p.exchangeMs + reconnects * p.reconnectMs, p);
  }

  /** Leave cleanly: DISCONNECT, no further boots. */
  stop(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.account();
    if (this.demo) this.demo.stop();
    if (this.fw) this.fw.client.stop();
  }
}
