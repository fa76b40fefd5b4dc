// npm start: the firmware on the desktop. The client and the demo application run on the Node HAL
// (real sockets, real clock) against an embedded Aedes broker on a free loopback port, or against the
// broker given with --broker. One line per event; Ctrl-C (or --duration) leaves cleanly: DISCONNECT,
// broker stopped, exit 0.
import { parseArgs } from 'node:util';
import { Client } from '../firmware/client/index';
import type { ClientError } from '../firmware/client/index';
import { startDemo } from '../firmware/app/demo';
import { nodeHal } from '../hal/node/runtime';
import { ConsoleLog } from '../hal/node/misc';
import fs from 'node:fs';
import { clientOptionsFor, validateBoard } from '../firmware/config/index';
import { startEmbeddedBroker } from './desktop/broker';
import type { EmbeddedBroker } from './desktop/broker';

const USAGE = `usage: npm start -- [options]

Runs the wren firmware (MQTT client + demo sensor app) on the desktop.

options:
  --broker mqtt://HOST:PORT   use this broker instead of the embedded one
  --board FILE                settings from this board.json, including its brokers
                              (default: ./board.json settings with the embedded broker)
  --duration SEC              stop after SEC seconds (default: run until Ctrl-C)
  --period SEC                seconds between sensor readings (default 10)
  --client-id ID              MQTT client id (default wren-desktop)
  --mqtt auto|4|5             protocol version (default auto: 5.0, falling back to 3.1.1)
  --storage DIR               keep the persistent session in DIR (default: RAM only)
  --verbose                   log debug lines
  -h, --help                  this text

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
        duration: { type: 'string' },
        period: { type: 'string' },
        'client-id': { type: 'string' },
        mqtt: { type: 'string' },
        storage: { type: 'string' },
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
  if (!(n > 0)) fail(2, '--' + name + ' must be a positive number of seconds, got "' + v + '"');
  return n;
}

async function main(): Promise<void> {
  const args = parse();
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const durationSec = args.duration === undefined ? 0 : positive(args.duration, 'duration', 0);
  const periodSec = positive(args.period, 'period', 10);
  const mqtt = args.mqtt ?? 'auto';
  if (mqtt !== 'auto' && mqtt !== '4' && mqtt !== '5') fail(2, '--mqtt must be auto, 4 or 5');

  const boardFile = args.board ?? 'board.json';
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(boardFile, 'utf8'));
  } catch (e) {
    fail(1, 'cannot read ' + boardFile + ': ' + (e as Error).message);
  }
  const checked = validateBoard(raw);
  if (!checked.board) fail(1, boardFile + ' is invalid: ' + checked.errors.join('; '));
  const options = clientOptionsFor(checked.board);
  if (args['client-id']) options.clientId = args['client-id'];
  if (args.mqtt) options.version = mqtt === 'auto' ? 'auto' : (Number(mqtt) as 4 | 5);
  // A desktop retries quickly; a board uses its own backoff.
  if (!args.board) options.backoff = { baseMs: 500, capMs: 30000, factor: 2, stableAfterMs: 30000 };

  let embedded: EmbeddedBroker | undefined;
  if (args.broker) {
    const m = /^mqtt:\/\/([^:/]+):(\d+)\/?$/.exec(args.broker);
    if (!m) fail(2, '--broker must look like mqtt://HOST:PORT, got "' + args.broker + '"');
    options.brokers = [{ host: m[1], port: Number(m[2]) }];
  } else if (!args.board) {
    embedded = await startEmbeddedBroker();
    options.brokers = [{ host: embedded.host, port: embedded.port }];
    console.log('broker: embedded Aedes on mqtt://' + embedded.host + ':' + embedded.port);
  }

  const log = new ConsoleLog(args.verbose ? 'debug' : 'warn');
  const hal = nodeHal({ storageDir: args.storage, log });
  const clientId = options.clientId;
  const client = new Client(options, hal);
  const t0 = Date.now();
  const stamp = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(6) + 's';
  client.on('state', (s: string, why: string) => console.log(stamp() + ' state ' + s + ' (' + why + ')'));
  client.on('error', (e: ClientError) => console.log(stamp() + ' error ' + e.code + ': ' + e.message));
  client.on('message', (topic: string, payload: Uint8Array) =>
    console.log(stamp() + ' message ' + topic + ' ' + Buffer.from(payload).toString('utf8')),
  );
  client.start();
  const demo = startDemo(client, hal.scheduler, { deviceId: checked.board.device, periodMs: periodSec * 1000 });
  const dev = checked.board.device;
  console.log(stamp() + ' demo: ' + clientId + ' publishes wren/' + dev + '/reading every ' + periodSec + ' s; send "ping" to wren/' + dev + '/cmd');

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    console.log(stamp() + ' stopping (' + why + ')');
    demo.stop();
    client.stop();
    // Let the DISCONNECT go out, then close the broker.
    await new Promise((r) => setTimeout(r, 100));
    if (embedded) await embedded.close();
    const s = client.session.stats();
    console.log(
      stamp() + ' summary: readings ' + demo.readings + ', connects ' + client.stats.connackOk + ', pings ' + client.stats.pings +
        ', queued ' + s.messages,
    );
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('Ctrl-C'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (durationSec > 0) setTimeout(() => void stop('duration reached'), durationSec * 1000);
}

main().catch((e) => fail(1, e instanceof Error ? e.message : String(e)));
