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
  private env_: EspruinoEnv;
  private timers_: TimerHost;
  private o_: WifiOptions;
  private h_: LinkHandler | undefined;
  private wifi_: any;
  private st_: number; // 0 down, 1 attaching, 2 up
  private epoch_: number;

  constructor(env: EspruinoEnv, timers: TimerHost, options: WifiOptions) {
    this.kind = 'wifi';
    this.env_ = env;
    this.timers_ = timers;
    this.o_ = options;
    this.h_ = undefined;
    this.wifi_ = undefined;
    this.st_ = 0;
    this.epoch_ = 0;
  }

  setHandler(handler: LinkHandler): void {
    this.h_ = handler;
  }

  private module_(): any {
    if (this.wifi_ !== undefined) return this.wifi_;
    const w = this.env_.require('Wifi');
    const self = this;
    w.on('connected', function () {
      self.gotUp_(self.epoch_);
    });
    w.on('disconnected', function (d: any) {
      const reason = d && d.reason !== undefined ? String(d.reason) : '';
      if (self.st_ === 1) {
        if (reason === LEAVE) return; // our own earlier disconnect(), not this attempt's failure
        self.fail_(self.epoch_, mapWifiReason(d && d.msg ? d.msg : reason));
      } else if (self.st_ === 2) self.fail_(self.epoch_, 'lost');
    });
    w.on('dhcp_timeout', function () {
      if (self.st_ === 1) self.fail_(self.epoch_, 'dhcp');
    });
    this.wifi_ = w;
    return w;
  }

  up(): void {
    if (this.st_ !== 0) return;
    this.st_ = 1;
    const ep = ++this.epoch_;
    const self = this;
    try {
      const w = this.module_();
      if (this.o_.powersave !== undefined) w.setConfig({ powersave: this.o_.powersave });
      const opts: any = {};
      if (this.o_.password !== undefined) opts.password = this.o_.password;
      w.connect(this.o_.ssid, opts, function (err: any) {
        if (err) self.fail_(ep, mapWifiReason(err));
        else self.gotUp_(ep);
      });
    } catch (e) {
      const m = errText(e);
      this.timers_.set(0, function () {
        self.fail_(ep, 'error: ' + m);
      });
    }
  }

  down(): void {
    if (this.st_ === 0) return;
    this.st_ = 0;
    const ep = ++this.epoch_;
    try {
      if (this.wifi_ !== undefined) this.wifi_.disconnect();
    } catch (e) {
      // already disconnected
    }
    const self = this;
    this.timers_.set(0, function () {
      if (self.epoch_ === ep && self.h_ !== undefined) self.h_.onDown('requested');
    });
  }

  private gotUp_(ep: number): void {
    if (ep !== this.epoch_ || this.st_ !== 1) return;
    this.st_ = 2;
    if (this.h_ !== undefined) this.h_.onUp();
  }

  private fail_(ep: number, reason: string): void {
    if (ep !== this.epoch_ || this.st_ === 0) return;
    this.st_ = 0;
    this.epoch_++;
    if (this.h_ !== undefined) this.h_.onDown(reason);
  }

  isUp(): boolean {
    return this.st_ === 2;
  }

  signal(): number | undefined {
    if (this.st_ !== 2 || this.wifi_ === undefined) return undefined;
    try {
      const s = this.wifi_.getStatus();
      return s && typeof s.rssi === 'number' ? s.rssi : undefined;
    } catch (e) {
      return undefined;
    }
  }

  networkId(): string {
    return this.o_.ssid;
  }

  /** Change the power save setting now (and for later attaches). */
  setPowerSave(mode: 'none' | 'min' | 'max'): void {
    this.o_.powersave = mode;
    if (this.wifi_ !== undefined) this.wifi_.setConfig({ powersave: mode });
  }
}
