// The firmware entry on a board. build.mjs inlines the board (validated, secrets and TLS files
// resolved) as WREN_BOARD and its transport type as WREN_TRANSPORT, so the unused network driver is
// dropped from the bundle (a Wi-Fi device carries no modem driver). Saved to flash by the flash tool,
// this runs at every boot, including every wake from deep sleep.
import { startDemo } from './app/demo';
import { bootFirmware } from './boot';
import { clientOptionsFor, deviceOptionsFor, subscriptionsFor } from './config/index';
import type { Board } from './config/index';
import { Scheduler } from './scheduler/index';
import { createCellular, createEspruinoHal, createWifi } from '../hal/espruino/index';
import { EspruinoNetTransport } from '../hal/espruino/net';
import type { Link, Transport } from '../hal/types';

declare const WREN_BOARD: Board;
declare const WREN_TRANSPORT: 'wifi' | 'cellular' | 'host';
declare const getSerial: (() => string) | undefined;
declare const process: { memory(): { usage: number; total: number } };

/** A printed line the Espruino tests (and a serial console) can read. */
declare const console: { log(s: string): void };

function main(): void {
  const board = WREN_BOARD;
  const hal = createEspruinoHal({
    logLevel: 'info',
    battery: board.battery ? { pin: board.battery.pin, dividerRatio: board.battery.divider } : undefined,
  });
  let link: Link | undefined;
  let transport: Transport;
  const t = board.transport;
  if (WREN_TRANSPORT === 'wifi') {
    const w = createWifi(hal, { ssid: t.ssid as string, password: t.password, powersave: t.powersave });
    link = w.link;
    transport = w.transport;
  } else if (WREN_TRANSPORT === 'cellular') {
    const u = t.uart as { port: string; baud: number; rx: string; tx: string };
    const c = createCellular(hal, {
      apn: t.apn as string,
      model: t.modem === 'SIM800' ? 'sim800' : 'sim7000',
      baud: u.baud,
      rx: u.rx,
      tx: u.tx,
      pwrkeyPin: t.powerPin,
      resetPin: t.resetPin,
    });
    link = c.link;
    transport = c.transport;
  } else {
    // 'host': the network is already there (Espruino on Linux).
    transport = new EspruinoNetTransport(hal.env, hal.timers);
  }
  const scheduler = new Scheduler(hal.clock, hal.timers, hal.log);
  const mac = typeof getSerial === 'function' ? getSerial().split('-').join('') : '';
  const fw = bootFirmware(clientOptionsFor(board, mac), deviceOptionsFor(board), subscriptionsFor(board), {
    scheduler: scheduler,
    transport: transport,
    storage: hal.storage,
    random: hal.random,
    log: hal.log,
    power: hal.power,
    link: link,
  });
  let reported = false;
  fw.client.on('state', function (s: string, why: string) {
    console.log('wren: state ' + s + ' (' + why + ')');
    if (s === 'connected' && !reported) {
      reported = true;
      // JsVars in use after boot + connect (the memory target is measured here).
      scheduler.after(1000, function () {
        const m = process.memory();
        console.log('wren: jsvars ' + m.usage + ' of ' + m.total);
      }, 'main.memory');
    }
  });
  fw.client.on('pong', function (rtt: number) {
    console.log('wren: pong ' + Math.round(rtt) + ' ms');
  });
  fw.client.on('error', function (e: { code: string; message: string }) {
    console.log('wren: error ' + e.code + ': ' + e.message);
  });
  fw.device.start();
  startDemo(fw.client, fw.device, scheduler, { deviceId: board.device, periodMs: 10000, burst: 6 });
  const mv = hal.power.batteryMv();
  if (mv !== undefined) fw.device.battery(mv);
  // esbuild compiles the board in as one object in the bundle's scope, where it would stay for good
  // (about 130 JsVars): everything it configures has been copied out by now.
  const keys = Object.keys(board);
  for (let i = 0; i < keys.length; i++) delete (board as any)[keys[i]];
}

main();
