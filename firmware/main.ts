// The firmware entry on a board. build.mjs inlines the board (validated, secrets and TLS files
// resolved) as WREN_BOARD and its transport type as WREN_TRANSPORT, so the unused network driver is
// dropped from the bundle (a Wi-Fi device carries no modem driver). Saved to flash by the flash tool,
// this runs at every boot, including every wake from deep sleep.
//
// Memory: a closure keeps its whole enclosing scope alive on Espruino, so main() creates none (its
// locals are freed when it returns) and the console listeners live in report()'s small scope.
import { startDemo } from './app/demo';
import { bootFirmware } from './boot';
import type { FirmwareHal } from './boot';
import type { Client } from './client/index';
import { clientOptionsFor, deviceOptionsFor } from './config/index';
import type { Board } from './config/index';
import { Scheduler } from './scheduler/index';
import { createCellular, createEspruinoHal, createWifi } from '../hal/espruino/index';
import type { WifiOptions } from '../hal/espruino/index';
import { EspruinoNetTransport } from '../hal/espruino/net';

declare const WREN_BOARD: Board;
declare const WREN_TRANSPORT: 'wifi' | 'cellular' | 'host';
declare const getSerial: (() => string) | undefined;
declare const process: { memory(): { usage: number; total: number } };

/** A printed line the Espruino tests (and a serial console) can read. */
declare const console: { log(s: string): void };

/** Prints the client's state changes, PINGRESPs and errors, and the JsVars in use 1 s after a connect. */
function report(client: Client, scheduler: Scheduler): void {
  client.on('state', function (s: string, why: string) {
    console.log('wren: state ' + s + ' (' + why + ')');
    // the memory target is measured after the first connect
    if (s === 'connected') {
      scheduler.after(1000, function () {
        const m = process.memory();
        console.log('wren: jsvars ' + m.usage + ' of ' + m.total);
      });
    }
  });
  // one listener for 'pong' (the round trip in ms) and 'error' ({code, message})
  const print = function (x: number | { code: string; message: string }) {
    console.log(typeof x === 'number' ? 'wren: pong ' + Math.round(x) + ' ms' : 'wren: error ' + x.code + ': ' + x.message);
  };
  client.on('pong', print);
  client.on('error', print);
}

(function main(): void {
  const board = WREN_BOARD;
  const t = board.transport;
  const b = board.battery;
  // The HAL object is also the firmware's (the device keeps it): the network and the loop join it.
  const hal = createEspruinoHal({ battery: b && { pin: b.pin, dividerRatio: b.divider } }) as ReturnType<typeof createEspruinoHal> & FirmwareHal;
  if (WREN_TRANSPORT === 'wifi') {
    // the board's transport has the Wi-Fi option names (ssid, password, powersave)
    Object.assign(hal, createWifi(hal, t as WifiOptions));
  } else if (WREN_TRANSPORT === 'cellular') {
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
  const mac = typeof getSerial === 'function' ? getSerial().replace(/-/g, '') : '';
  const fw = bootFirmware(clientOptionsFor(board, mac), deviceOptionsFor(board), board.subscriptions, hal);
  report(fw.client, scheduler);
  fw.device.start();
  startDemo(fw.client, fw.device, scheduler, { deviceId: board.device, periodMs: 10000, burst: 6 });
  const mv = hal.power.batteryMv();
  if (mv !== undefined) fw.device.battery(mv);
  // esbuild compiles the board in as one object in the bundle's scope, where it would stay for good
  // (about 50 JsVars): what it configures has been taken by now.
  const keys = Object.keys(board);
  for (let i = 0; i < keys.length; i++) delete (board as any)[keys[i]];
})();
