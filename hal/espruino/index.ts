// The Espruino (ESP32) HAL. createEspruinoHal() gives the parts every device has (clock, timers, log,
// random, power, storage); a network is added with createWifi() (Wifi + net/tls sockets) or
// createCellular() (a SIM7000/SIM800 modem on a UART). They are separate functions in separate
// modules so a Wi-Fi bundle does not contain the modem driver, and a cellular bundle no Wi-Fi code.
//
//   const hal = createEspruinoHal({ battery: { pin: D35, dividerRatio: 2 } });
//   const net = createWifi(hal, { ssid: 'x', password: 'y', powersave: 'min' });
//   // or: const net = createCellular(hal, { apn: 'iot', pwrkeyPin: D4, resetPin: D5, rx: D26, tx: D27 });
//   net.link, net.transport, hal.clock, hal.timers, hal.storage, ...

import type { Clock, Link, Log, LogLevel, Power, Random, Storage, TimerHost, Transport } from '../types';
import { EspruinoCore } from './core';
import type { BatteryOptions } from './core';
import type { EspruinoEnv } from './env';
import { CellularModem } from './modem';
import type { CellularOptions } from './modem';
import { EspruinoNetTransport } from './net';
import { EspruinoStorage } from './storage';
import { WifiLink } from './wifi';
import type { WifiOptions } from './wifi';

export { EspruinoCore, EspruinoClock, EspruinoLog, EspruinoPower, EspruinoRandom, EspruinoTimerHost, MAX_DEEP_SLEEP_US } from './core';
export type { BatteryOptions, EspruinoCoreOptions } from './core';
export { errText } from './env';
export type { EspruinoEnv, EspSocket } from './env';
export { EspruinoStorage } from './storage';
export { EspruinoNetTransport } from './net';
export { WifiLink, setWifiPowerSave } from './wifi';
export type { WifiOptions } from './wifi';
export { AtEngine } from './at';
export type { Uart, AtCallback, UrcHook } from './at';
export { CellularModem, ModemTransport, psmTauBits, psmActiveBits, csqToDbm, regStatus } from './modem';
export type { CellularOptions } from './modem';

// Espruino's root scope: it has every member of EspruinoEnv. (`global` rather than a free `require`,
// which esbuild would rewrite into a Node-only shim.)
declare const global: any;

export interface EspruinoHalOptions {
  /** The Espruino globals; default: the real ones (`global`). Tests pass fakes. */
  env?: EspruinoEnv;
  /** Lowest log level printed (default 'info'). */
  logLevel?: LogLevel;
  /** Battery divider on an ADC pin; absent: batteryMv() is undefined. */
  battery?: BatteryOptions;
}

export interface EspruinoHal {
  env: EspruinoEnv;
  clock: Clock;
  timers: TimerHost;
  log: Log;
  random: Random;
  power: Power;
  storage: Storage;
}

export interface EspruinoNetwork {
  link: Link;
  transport: Transport;
}

export function createEspruinoHal(options?: EspruinoHalOptions): EspruinoHal {
  const o = options || {};
  const env = o.env || global;
  // one object is the clock, the timers, the log, the random source and the power
  const core = new EspruinoCore(env, o);
  return { env: env, clock: core, timers: core, log: core, random: core, power: core, storage: new EspruinoStorage(env) };
}

/** Wi-Fi station + net/tls sockets. */
export function createWifi(hal: EspruinoHal, options: WifiOptions): EspruinoNetwork & { link: WifiLink } {
  return {
    link: new WifiLink(hal.env, hal.timers, options),
    transport: new EspruinoNetTransport(hal.env, hal.timers),
  };
}

export interface CellularHalOptions extends Omit<CellularOptions, 'uart' | 'timers' | 'E' | 'setPin'> {
  /** The UART (default env.Serial2), set up here at `baud` (default 115200) on pins rx/tx. */
  uart?: any;
  baud?: number;
  rx?: any;
  tx?: any;
}

/** A SIM7000/SIM800 modem on a UART: `link` is the modem (also for PSM/eDRX/at()), `transport` its TCP. */
export function createCellular(hal: EspruinoHal, options: CellularHalOptions): EspruinoNetwork & { link: CellularModem; modem: CellularModem } {
  const env = hal.env;
  const uart = options.uart || env.Serial2;
  uart.setup(options.baud || 115200, { rx: options.rx, tx: options.tx });
  const m = new CellularModem(
    Object.assign({}, options, { uart: uart, timers: hal.timers, E: env.E, log: options.log || hal.log, setPin: env.digitalWrite }) as CellularOptions,
  );
  return { link: m, transport: m.transport, modem: m };
}
