// Link over Espruino's Wifi module (ESP32 station mode).
//
// Espruino ESP32 (libs/network/esp32/jswrap_esp32_network.c, 2v29): Wifi.connect(ssid, {password},
// cb(err)) calls cb(null) when an IP address is obtained and cb("<REASON_NAME>") when the attempt fails
// (after the 'disconnected' event); a later connect() replaces a pending callback. Events:
// 'disconnected' {ssid, mac, reason: "<ESP-IDF reason number>", msg: "<REASON_NAME>"}; ESP8266 builds
// also emit 'dhcp_timeout'. getStatus().rssi is the signal while connected; setConfig({powersave}).
// The first report of an attempt's outcome counts. Reconnecting is the firmware's decision: after
// onDown it calls up() again.

import type { Link, LinkHandler, LinkKind, TimerHost } from '../types';
import type { EspruinoEnv } from './env';

export interface WifiOptions {
  ssid: string;
  password?: string;
  /** Wi-Fi modem sleep while associated: 'none' (fastest, ~100 mA), 'min' (DTIM), 'max'. Not changed when absent. */
  powersave?: 'none' | 'min' | 'max';
}

export class WifiLink implements Link {
  // Not in a device build: what the firmware never calls (grep firmware/), set by the constructor.
  readonly kind!: LinkKind;
  isUp!: () => boolean;
  signal!: () => number | undefined;
  o_: WifiOptions;
  /** require('Wifi'). */
  wifi_: any;
  private timers_: TimerHost;
  private h_?: LinkHandler;
  /** 0 down, 1 attaching, 2 up. */
  private st_: number;
  /** The connect callback, and the 'disconnected' and 'dhcp_timeout' listener. */
  private ev_: (x?: any) => void;

  constructor(env: EspruinoEnv, timers: TimerHost, options: WifiOptions) {
    if (typeof WREN_DEVICE === 'undefined') {
      (this as { kind: LinkKind }).kind = 'wifi';
      this.isUp = () => this.st_ === 2;
      this.signal = () => (this.st_ === 2 ? this.wifi_.getStatus().rssi : undefined);
    }
    this.timers_ = timers;
    this.o_ = options;
    this.st_ = 0;
    this.ev_ = (x?: any) => {
      const st = this.st_;
      const h = this.h_ as LinkHandler;
      if (x === null) {
        // the connect callback: an IP address
        if (st === 1) {
          this.st_ = 2;
          h.onUp();
        }
      } else if (st === 2 ? x : st && !(x && x.reason === '8')) {
        // While up: 'disconnected' (lost). Attaching failed: the connect callback (a reason name),
        // 'disconnected' {reason: "<ESP-IDF number>", msg: "<NAME>"} (but reason 8, ASSOC_LEAVE, is
        // our own earlier disconnect()) or 'dhcp_timeout' (no details). The names that mean wrong
        // credentials: AUTH_EXPIRE, AUTH_FAIL, 802_1X_AUTH_FAILED, MIC_FAILURE, 4WAY_HANDSHAKE_TIMEOUT,
        // HANDSHAKE_TIMEOUT.
        this.st_ = 0;
        const r = x ? (x.msg || x + '').toUpperCase() : '';
        h.onDown(st === 2 ? 'lost' : !r ? 'dhcp' : /AUTH_[EF]|MIC_|HANDSHAKE/.test(r) ? 'auth' : r === 'NO_AP_FOUND' ? 'no-network' : 'error: wifi ' + r);
      }
    };
    const w = (this.wifi_ = env.require('Wifi'));
    w.on('disconnected', this.ev_);
    w.on('dhcp_timeout', this.ev_);
  }

  setHandler(handler: LinkHandler): void {
    this.h_ = handler;
  }

  up(): void {
    if (this.st_) return;
    const o = this.o_;
    const w = this.wifi_;
    this.st_ = 1;
    if (o.powersave) w.setConfig({ powersave: o.powersave });
    // (a password property that is undefined counts as none)
    w.connect(o.ssid, { password: o.password }, this.ev_);
  }

  down(): void {
    if (!this.st_) return;
    this.st_ = 0;
    this.wifi_.disconnect();
    // onDown('requested') on a later turn, unless up() was called again in between
    this.timers_.set(0, () => {
      if (!this.st_) (this.h_ as LinkHandler).onDown('requested');
    });
  }

  networkId(): string {
    return this.o_.ssid;
  }
}

/** Change the Wi-Fi power save setting now (and for later attaches). */
export function setWifiPowerSave(link: WifiLink, mode: 'none' | 'min' | 'max'): void {
  link.o_.powersave = mode;
  link.wifi_.setConfig({ powersave: mode });
}
