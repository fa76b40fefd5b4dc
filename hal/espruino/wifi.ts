// Link over Espruino's Wifi module (ESP32 station mode).
//
// Espruino ESP32 (libs/network/esp32/jswrap_esp32_network.c): Wifi.connect(ssid, {password}, cb(err))
// calls cb(null) when an IP address is obtained and cb(reasonName) when the attempt fails; events:
// 'associated' (joined the AP), 'connected' {ip} (got an IP), 'disconnected' {ssid, mac, reason:
// "<ESP-IDF reason number>", msg: "<REASON_NAME>"}; ESP8266 builds also emit 'dhcp_timeout'.
// getStatus().rssi is the signal while connected; setConfig({powersave: 'none'|'min'|'max'}).
// The connect callback and the events both report the outcome: the first one counts, once per attempt.
// Reconnecting is the firmware's decision: after onDown it calls up() again.

import type { Link, LinkHandler, LinkKind, TimerHost } from '../types';
import type { EspruinoEnv } from './env';
import { errText } from './env';

export interface WifiOptions {
  ssid: string;
  password?: string;
  /** Wi-Fi modem sleep while associated: 'none' (fastest, ~100 mA), 'min' (DTIM), 'max'. Not changed when absent. */
  powersave?: 'none' | 'min' | 'max';
}

/** ESP-IDF disconnect reasons (number or name) that mean wrong credentials. */
const AUTH_REASONS = ['2', '14', '15', '23', '202', '204', 'AUTH_FAIL', 'AUTH_EXPIRE', 'MIC_FAILURE', '4WAY_HANDSHAKE_TIMEOUT', 'HANDSHAKE_TIMEOUT', '802_1X_AUTH_FAILED'];
/** ... that mean the SSID is not there. */
const NO_NET_REASONS = ['201', 'NO_AP_FOUND'];

/** A Wi-Fi failure reason (a number as a string, or a name) -> Link reason while attaching. */
export function mapWifiReason(reason: any): string {
  const r = String(reason === undefined || reason === null ? '' : reason).toUpperCase();
  if (AUTH_REASONS.indexOf(r) >= 0) return 'auth';
  if (NO_NET_REASONS.indexOf(r) >= 0) return 'no-network';
  return 'error: wifi ' + (r || 'unknown');
}

/** ASSOC_LEAVE: the station left on its own (our disconnect(), or connect() dropping the old AP). */
const LEAVE = '8';

export class WifiLink implements Link {
  readonly kind: LinkKind;
  private env: EspruinoEnv;
  private timers: TimerHost;
  private o: WifiOptions;
  private h: LinkHandler | undefined;
  private wifi: any;
  private st: number; // 0 down, 1 attaching, 2 up
  private epoch: number;

  constructor(env: EspruinoEnv, timers: TimerHost, options: WifiOptions) {
    this.kind = 'wifi';
    this.env = env;
    this.timers = timers;
    this.o = options;
    this.h = undefined;
    this.wifi = undefined;
    this.st = 0;
    this.epoch = 0;
  }

  setHandler(handler: LinkHandler): void {
    this.h = handler;
  }

  private module(): any {
    if (this.wifi !== undefined) return this.wifi;
    const w = this.env.require('Wifi');
    const self = this;
    w.on('connected', function () {
      self.gotUp(self.epoch);
    });
    w.on('disconnected', function (d: any) {
      const reason = d && d.reason !== undefined ? String(d.reason) : '';
      if (self.st === 1) {
        if (reason === LEAVE) return; // our own earlier disconnect(), not this attempt's failure
        self.fail(self.epoch, mapWifiReason(d && d.msg ? d.msg : reason));
      } else if (self.st === 2) self.fail(self.epoch, 'lost');
    });
    w.on('dhcp_timeout', function () {
      if (self.st === 1) self.fail(self.epoch, 'dhcp');
    });
    this.wifi = w;
    return w;
  }

  up(): void {
    if (this.st !== 0) return;
    this.st = 1;
    const ep = ++this.epoch;
    const self = this;
    try {
      const w = this.module();
      if (this.o.powersave !== undefined) w.setConfig({ powersave: this.o.powersave });
      const opts: any = {};
      if (this.o.password !== undefined) opts.password = this.o.password;
      w.connect(this.o.ssid, opts, function (err: any) {
        if (err) self.fail(ep, mapWifiReason(err));
        else self.gotUp(ep);
      });
    } catch (e) {
      const m = errText(e);
      this.timers.set(0, function () {
        self.fail(ep, 'error: ' + m);
      });
    }
  }

  down(): void {
    if (this.st === 0) return;
    this.st = 0;
    const ep = ++this.epoch;
    try {
      if (this.wifi !== undefined) this.wifi.disconnect();
    } catch (e) {
      // already disconnected
    }
    const self = this;
    this.timers.set(0, function () {
      if (self.epoch === ep && self.h !== undefined) self.h.onDown('requested');
    });
  }

  private gotUp(ep: number): void {
    if (ep !== this.epoch || this.st !== 1) return;
    this.st = 2;
    if (this.h !== undefined) this.h.onUp();
  }

  private fail(ep: number, reason: string): void {
    if (ep !== this.epoch || this.st === 0) return;
    this.st = 0;
    this.epoch++;
    if (this.h !== undefined) this.h.onDown(reason);
  }

  isUp(): boolean {
    return this.st === 2;
  }

  signal(): number | undefined {
    if (this.st !== 2 || this.wifi === undefined) return undefined;
    try {
      const s = this.wifi.getStatus();
      return s && typeof s.rssi === 'number' ? s.rssi : undefined;
    } catch (e) {
      return undefined;
    }
  }

  networkId(): string {
    return this.o.ssid;
  }

  /** Change the power save setting now (and for later attaches). */
  setPowerSave(mode: 'none' | 'min' | 'max'): void {
    this.o.powersave = mode;
    if (this.wifi !== undefined) this.wifi.setConfig({ powersave: mode });
  }
}
