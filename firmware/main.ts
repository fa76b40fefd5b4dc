// The firmware entry on a board. build.mjs inlines the board (validated, secrets and TLS files
// resolved) as WREN_BOARD and its transport type as WREN_TRANSPORT, so the unused network driver is
// dropped from the bundle (a Wi-Fi device carries no modem driver). Saved to flash by the flash tool,
// this runs at every boot, including every wake from deep sleep.
//
// A plain script at the bundle's top level: its few variables stay for good (as a closure would keep a
// function's scope alive on Espruino), so it keeps only what the device uses anyway.
import { startDemo } from './app/demo';
import type { FirmwareHal } from './boot';
import { Client } from './client/index';
import { Device } from './device/index';
import { clientOptionsFor, deviceOptionsFor } from './config/index';
import type { Board } from './config/index';
import { Scheduler } from './scheduler/index';
import { createCellular, createEspruinoHal, createWifi } from '../hal/espruino/index';
import type { WifiOptions } from '../hal/espruino/index';
import { EspruinoNetTransport } from '../hal/espruino/net';

declare const WREN_BOARD: Board;
/** The chip's serial number (its MAC on an ESP32), e.g. "a1b2c3d4-e5f6". */
declare const getSerial: () => string;
declare const process: { memory(): { usage: number; total: number } };

/** A printed line the Espruino tests (and a serial console) can read. */
declare const console: { log(s: string): void };

// The HAL object is also the firmware's (the device keeps it): the network and the loop join it.
const hal = createEspruinoHal({ battery: WREN_BOARD.battery && { pin: WREN_BOARD.battery.pin, dividerRatio: WREN_BOARD.battery.divider } }) as ReturnType<typeof createEspruinoHal> & FirmwareHal;
if (WREN_TRANSPORT === 'wifi') {
  // the board's transport has the Wi-Fi option names (ssid, password, powersave)
  Object.assign(hal, createWifi(hal, WREN_BOARD.transport as WifiOptions));
} else if (WREN_TRANSPORT === 'cellular') {
  const t = WREN_BOARD.transport;
  const u = t.uart as { port: string; baud: number; rx: string; tx: string };
  Object.assign(hal, createCellular(hal, {
    apn: t.apn as string,
    model: t.modem === 'SIM800' ? 'sim800' : 'sim7000',
    baud: u.baud,
    rx: u.rx,
    tx: u.tx,
    pwrkeyPin: t.powerPin,
    resetPin: t.resetPin,
  }));
} else {
  // 'host': the network is already there (Espruino on Linux).
  hal.transport = new EspruinoNetTransport(hal.env, hal.timers);
}
const scheduler = (hal.scheduler = new Scheduler(hal.clock, hal.timers, hal.log));
// What firmware/boot.ts does (for the desktop and the simulator), inline: one function less here.
const client = new Client(clientOptionsFor(WREN_BOARD, getSerial().replace(/-/g, '')), hal);
const device = new Device(client, hal, deviceOptionsFor(WREN_BOARD));
WREN_BOARD.subscriptions.forEach(function (s) {
  client.subscribe(s.topic, s.qos);
});

// What the Espruino tests read, from one listener for the client's 'state' (the state and why),
// 'pong' (the round trip in ms) and 'error' ({code, message}) events; and the JsVars in use 1 s after a
// connect (the memory target is measured after the first).
const print = function (x: any, why?: string): void {
  // (only the round trip is a number >= 0: a state name or an error object compares false)
  console.log('wren: ' + (x >= 0 ? 'pong ' + (x | 0) + ' ms' : x.code ? 'error ' + x.code + ': ' + x.message : 'state ' + x + ' (' + why + ')'));
  if (x === 'connected') {
    scheduler.after(1000, function () {
      const m = process.memory();
      console.log('wren: jsvars ' + m.usage + ' of ' + m.total);
    });
  }
};
client.on('state', print);
client.on('pong', print);
client.on('error', print);

device.start();
startDemo(client, device, scheduler, { deviceId: WREN_BOARD.device, periodMs: 10000, burst: 6 });
// (the HAL reads a battery only where the board has one)
if (WREN_BOARD.battery) device.battery(hal.power.batteryMv() as number);

// esbuild compiles the board in as one object at the top level, where it would stay for good (about
// 50 JsVars): what it configures has been taken by now, so its keys go.
Object.keys(WREN_BOARD).forEach(function (k) {
  delete (WREN_BOARD as any)[k];
});
