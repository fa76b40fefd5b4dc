// Wires one boot of the firmware: the client and the device (power modes, sleep) on a HAL, with the
// board's subscriptions. For the desktop (tools/start.ts) and the simulator; firmware/main.ts does the
// same three steps inline (a function less in the device bundle): keep the two alike.
import { Client } from './client/index';
import type { ClientOptions, MessageHandler } from './client/index';
import { Device } from './device/index';
import type { DeviceOptions } from './device/index';
import type { Scheduler } from './scheduler/index';
import type { Link, Log, Power, Random, Storage, Transport } from '../hal/types';

export interface FirmwareHal {
  scheduler: Scheduler;
  transport: Transport;
  storage?: Storage;
  random: Random;
  log: Log;
  power: Power;
  link?: Link;
}

export interface Firmware {
  client: Client;
  device: Device;
}

/**
 * Builds the client and the device for this boot and subscribes the board's topic filters (each with
 * `onMessage`). Call firmware.device.start() when the application is ready.
 */
export function bootFirmware(
  client: ClientOptions,
  device: DeviceOptions,
  subscriptions: Array<{ topic: string; qos: 0 | 1 | 2 }>,
  hal: FirmwareHal,
  onMessage?: MessageHandler,
): Firmware {
  const c = new Client(client, hal);
  const d = new Device(c, hal, device);
  for (let i = 0; i < subscriptions.length; i++) c.subscribe(subscriptions[i].topic, subscriptions[i].qos, onMessage);
  return { client: c, device: d };
}
