// Assembles the Node HAL into what the firmware needs: one scheduler on the real clock, a real
// socket transport, file (or no) storage, crypto randomness, a console log.
import { Scheduler } from '../../firmware/scheduler/index';
import type { Log, Storage } from '../types';
import { NodeClock, NodeTimerHost } from './clock';
import { ConsoleLog, NodeRandom } from './misc';
import { FileStorage } from './storage';
import { NodeTransport } from './transport';

export interface NodeHalOptions {
  /** Directory for the persistent session; absent = no persistence (RAM only). */
  storageDir?: string;
  /** Or a storage object to use (e.g. one kept across simulated reboots). */
  storage?: Storage;
  log?: Log;
  /** Timers do not keep the process alive (tests). */
  unref?: boolean;
  /** Run the clock this many times faster than real time (desktop demo). */
  speed?: number;
}

export function nodeHal(options?: NodeHalOptions) {
  const o = options ?? {};
  const clock = new NodeClock(o.speed);
  const log = o.log ?? new ConsoleLog('info');
  const scheduler = new Scheduler(clock, new NodeTimerHost(o.unref, o.speed ?? 1), log);
  const storage: Storage | undefined = o.storage ?? (o.storageDir ? new FileStorage(o.storageDir) : undefined);
  return { clock, scheduler, transport: new NodeTransport(), storage, random: new NodeRandom(), log };
}
