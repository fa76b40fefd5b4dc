// npm start: the firmware on the desktop. The client, the device (power modes, sleep) and the demo
// application run on the Node HAL (real sockets) against an embedded Aedes broker on a free loopback
// port, or the broker given with --broker, or the brokers of --board. On a terminal a status line is
// refreshed in place; otherwise one line per event. Ctrl-C (or --duration) leaves cleanly:
// DISCONNECT, broker stopped, exit 0.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { ClientError } from '../firmware/client/index';
import { clientOptionsFor, deviceOptionsFor, validateBoard } from '../firmware/config/index';
import { ConsoleLog } from '../hal/node/misc';
import { MemoryStorage } from '../hal/mock/storage';
import { FileStorage } from '../hal/node/storage';
import { startAedes } from './brokers';
import type { AedesHandle } from './brokers';
import { DesktopDevice } from './desktop/run';

const USAGE = `usage: npm start -- [options]

Runs the wren firmware (MQTT client, power modes, demo sensor app) on the desktop.

options:
  --broker mqtt://HOST:PORT   use this broker instead of the embedded one
  --board FILE                settings from this board.json, including its brokers
                              (default: ./board.json settings with the embedded broker)
  --speed N                   run the device clock N times faster (e.g. 60: active -> idle -> sleep
                              and a check-in within a minute)
  --duration SEC              stop after SEC real seconds (default: run until Ctrl-C)
  --period SEC                seconds between the demo's readings in a burst (default 10)
  --burst N                   readings per burst (default 6)
  --client-id ID              MQTT client id (default from the board)
  --mqtt auto|4|5             protocol version (default from the board)
  --storage DIR               keep the session and device state in DIR (default: RAM)
  --events                    one line per event even on a terminal
  --verbose                   log debug lines
  -h, --help                  this text

Send "ping", "burst", "sleep" or "period N" to wren/<device>/cmd to drive the demo.
The embedded broker is Aedes (MQTT 3.1.1), so "auto" settles on 3.1.1 there.
Exit codes: 0 clean exit, 1 failure, 2 usage error.`;

function fail(code: number, msg: string): never {
  process.stderr.write('start: ' + msg + '\n');
  process.exit(code);
}

function parse() {
  try {
    return parseArgs({
      options: {
        broker: { type: 'string' },
        board: { type: 'string' },
        speed: { type: 'string' },
        duration: { type: 'string' },
        period: { type: 'string' },
        burst: { type: 'string' },
        'client-id': { type: 'string' },
        mqtt: { type: 'string' },
        storage: { type: 'string' },
        events: { type: 'boolean' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    fail(2, (e as Error).message + ' (see --help)');
  }
}

function positive(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(n > 0)) fail(2, '--' + name + ' must be a positive number, got "' + v + '"');
  return n;
}

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
}

async function main(): Promise<void> {
  const args = parse();
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const durationSec = args.duration === undefined ? 0 : positive(args.duration, 'duration', 0);
  const periodSec = positive(args.period, 'period', 10);
  const burst = Math.floor(positive(args.burst, 'burst', 6));
  const speed = positive(args.speed, 'speed', 1);
  if (args.mqtt !== undefined && args.mqtt !== 'auto' && args.mqtt !== '4' && args.mqtt !== '5') fail(2, '--mqtt must be auto, 4 or 5');

  const boardFile = args.board ?? 'board.json';
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(boardFile, 'utf8'));
  } catch (e) {
    fail(1, 'cannot read ' + boardFile + ': ' + (e as Error).message);
  }
  const checked = validateBoard(raw);
  if (!checked.board) fail(1, boardFile + ' is invalid: ' + checked.errors.join('; '));
  const board = checked.board;
  const client = clientOptionsFor(board);
  if (args['client-id']) client.clientId = args['client-id'];
  if (args.mqtt) client.version = args.mqtt === 'auto' ? 'auto' : (Number(args.mqtt) as 4 | 5);
  // A desktop retries quickly; a board keeps its own backoff.
  if (!args.board) client.backoff = { baseMs: 500, capMs: 30000, factor: 2, stableAfterMs: 30000 };
  const device = deviceOptionsFor(board);
  device.transport = 'host';

  let embedded: AedesHandle | undefined;
  if (args.broker) {
    const m = /^mqtt:\/\/([^:/]+):(\d+)\/?$/.exec(args.broker);
    if (!m) fail(2, '--broker must look like mqtt://HOST:PORT, got "' + args.broker + '"');
    client.brokers = [{ host: m[1], port: Number(m[2]) }];
  } else if (!args.board) {
    embedded = await startAedes();
    client.brokers = [{ host: embedded.host, port: embedded.port }];
  }

  const live = !!process.stdout.isTTY && !args.events;
  const log = new ConsoleLog(args.verbose ? 'debug' : 'warn');
  const t0 = Date.now();
  const stamp = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(6) + 's';
  let statusShown = false;
  const line = (text: string) => {
    if (live && statusShown) process.stdout.write('\r\x1b[K');
    statusShown = false;
    console.log(stamp() + ' ' + text);
  };
  if (embedded) line('broker: embedded Aedes on mqtt://' + embedded.host + ':' + embedded.port);
  line(
    'device ' + board.device + ' (client id ' + client.clientId + '), speed ' + speed + 'x; modes: active ' + board.keepAlive.activeSec + ' s pings, idle after ' +
      board.keepAlive.idleAfterSec + ' s (' + board.keepAlive.idleSec + ' s pings), sleep after ' + board.keepAlive.sleepAfterSec + ' s more (check-in every ' +
      board.keepAlive.sleepCheckInSec + ' s)',
  );

  let reconnects = 0;
  const dev = new DesktopDevice({
    client,
    device,
    deviceId: board.device,
    periodMs: periodSec * 1000,
    burst,
    speed,
    storage: args.storage ? new FileStorage(args.storage) : new MemoryStorage(),
    log,
    power: board.power,
    onBoot(fw, boot, wake) {
      if (boot > 1) line('boot ' + boot + ' (wake: ' + wake + ')' + (fw.device.checkingIn ? ': check-in' : ''));
      fw.client.on('state', (s: string, why: string) => {
        if (s === 'connected') reconnects++;
        line('state ' + s + ' (' + why + ')');
      });
      fw.client.on('error', (e: ClientError) => line('error ' + e.code + ': ' + e.message));
      fw.client.on('message', (topic: string, payload: Uint8Array) => line('message ' + topic + ' ' + Buffer.from(payload).toString('utf8')));
      fw.client.on('publish', (topic: string, qos: number) => {
        if (!live) line('publish ' + topic + ' (QoS ' + qos + ')');
      });
      fw.device.on('mode', (c: { from: string; to: string; reason: string }) => line('mode ' + c.from + ' -> ' + c.to + ' (' + c.reason + ')'));
    },
    onSleep(ms) {
      line('deep sleep for ' + fmtDuration(ms) + ' (device time)');
    },
  });
  dev.start();

  const status = () => {
    dev.account();
    const fw = dev.fw;
    const mode = fw ? fw.device.mode : 'sleep';
    const state = fw ? fw.client.state : 'asleep ' + fmtDuration(Math.max(0, dev.asleepUntil - dev.deviceNow()));
    const ka = fw ? Math.round(fw.client.interval() / 1000) + 's' : '-';
    // Round trip in real milliseconds (the device clock runs --speed times faster).
    const rtt = fw && fw.client.stats.lastPingRttMs >= 0 ? (fw.client.stats.lastPingRttMs / speed).toFixed(1) + 'ms' : '-';
    const q = fw ? fw.client.session.stats().messages : 0;
    return (
      'device time ' + fmtDuration(dev.deviceNow()) + ' | mode ' + mode + ' | ' + state + ' | ping every ' + ka + ' | last PINGRESP ' + rtt +
      ' | connects ' + reconnects + ' | boots ' + dev.boots + ' | queue ' + q + ' | charge ' + dev.chargeMah.toFixed(4) + ' mAh'
    );
  };
  const ticker = live
    ? setInterval(() => {
        process.stdout.write('\r\x1b[K' + status());
        statusShown = true;
      }, 250)
    : undefined;

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    if (ticker) clearInterval(ticker);
    line('stopping (' + why + ')');
    dev.stop();
    await new Promise((r) => setTimeout(r, 100)); // let the DISCONNECT go out
    if (embedded) await embedded.stop();
    line('summary: ' + status());
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('Ctrl-C'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (durationSec > 0) setTimeout(() => void stop('duration reached'), durationSec * 1000);
}

main().catch((e) => fail(1, e instanceof Error ? e.message : String(e)));
