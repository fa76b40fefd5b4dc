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
import { EspruinoClock, EspruinoLog, EspruinoPower } from './core';
import type { BatteryOptions } from './core';
import { defaultEnv } from './env';
import type { EspruinoEnv } from './env';
import { CellularModem } from './modem';
import type { CellularOptions } from './modem';
import { EspruinoNetTransport } from './net';
import type { EspruinoTransportOptions } from './net';
import { EspruinoStorage } from './storage';
import type { EspruinoStorageOptions } from './storage';
import { WifiLink } from './wifi';
import type { WifiOptions } from './wifi';

export { EspruinoClock, EspruinoLog, EspruinoPower, EspruinoRandom, EspruinoTimerHost, mapWakeCause, MAX_DEEP_SLEEP_US } from './core';
export type { BatteryOptions } from './core';
export { defaultEnv } from './env';
export type { EspruinoEnv, EspSocket } from './env';
export { EspruinoStorage } from './storage';
export type { EspruinoStorageOptions } from './storage';
export { EspruinoNetTransport, mapSocketError, mapConnectThrow, pemToDer } from './net';
export type { EspruinoTransportOptions } from './net';
export { WifiLink, mapWifiReason } from './wifi';
export type { WifiOptions } from './wifi';
export { AtEngine } from './at';
export type { Uart, AtCallback, UrcHook } from './at';
export { CellularModem, ModemTransport, psmTauBits, psmActiveBits, csqToDbm, regStatus } from './modem';
export type { CellularOptions } from './modem';

export interface EspruinoHalOptions {
  /** The Espruino globals; default: the real ones (defaultEnv()). Tests pass fakes. */
  env?: EspruinoEnv;
  /** Lowest log level printed (default 'info'). */
  logLevel?: LogLevel;
  /** Battery divider on an ADC pin; absent: batteryMv() is undefined. */
  battery?: BatteryOptions;
  storage?: EspruinoStorageOptions;
}

export interface EspruinoHal {
  env: EspruinoEnv;
  clock: Clock;
  timers: TimerHost;
  log: Log;
  random: Random;
  power: EspruinoPower;
  storage: Storage;
}

export interface EspruinoNetwork {
  link: Link;
  transport: Transport;
}

export function createEspruinoHal(options?: EspruinoHalOptions): EspruinoHal {
  const o = options || {};
  const env = o.env || defaultEnv();
  // one object is the clock, the timers and the random source
  const clock = new EspruinoClock(env);
  const log = new EspruinoLog(env, o.logLevel, clock);
  return {
    env: env,
    clock: clock,
    timers: clock,
    log: log,
    random: clock,
    power: new EspruinoPower(env, o.battery) as EspruinoPower & Power,
    storage: new EspruinoStorage(env, o.storage, log),
  };
}

/** Wi-Fi station + net/tls sockets. */
export function createWifi(hal: EspruinoHal, options: WifiOptions & EspruinoTransportOptions): EspruinoNetwork & { link: WifiLink } {
  return {
    link: new WifiLink(hal.env, hal.timers, options),
    transport: new EspruinoNetTransport(hal.env, hal.timers, options),
  };
}

export interface CellularHalOptions extends Omit<CellularOptions, 'uart' | 'timers' | 'E' | 'setPin'> {
  /** The UART (default env.Serial2), set up here at `baud` (default 115200) on pins rx/tx when given. */
  uart?: any;
  baud?: number;
  rx?: any;
  tx?: any;
}

/** A SIM7000/SIM800 modem on a UART: `link` is the modem (also for PSM/eDRX/at()), `transport` its TCP. */
export function createCellular(hal: EspruinoHal, options: CellularHalOptions): EspruinoNetwork & { link: CellularModem; modem: CellularModem } {
  const env = hal.env;
  const uart = options.uart || env.Serial2;
  if (uart && typeof uart.setup === 'function') {
    const pins: any = {};
    if (options.rx !== undefined) pins.rx = options.rx;
    if (options.tx !== undefined) pins.tx = options.tx;
    uart.setup(options.baud || 115200, pins);
  }
  const dw = env.digitalWrite;
  const o: any = {};
  const keys = Object.keys(options);
  for (let i = 0; i < keys.length; i++) o[keys[i]] = (options as any)[keys[i]];
  o.uart = uart;
  o.timers = hal.timers;
  o.E = env.E;
  o.log = options.log || hal.log;
  if (dw !== undefined) {
    o.setPin = function (pin: any, v: number) {
      dw(pin, v);
    };
  }
  const m = new CellularModem(o as CellularOptions);
  return { link: m, transport: m.transport, modem: m };
}
