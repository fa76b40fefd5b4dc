// npm run sim: a simulated day of wren (the real Client + Device on the mock HAL, in virtual time)
// against a fixed 60 s keep-alive client on the same profile and power model; or, with --detection,
// the time to detect a black-holed link per power mode. See tools/sim/README.md.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadBoard, loadProfile } from './sim/load';
import { runSim } from './sim/run';
import { runDetection } from './sim/detection';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: npm run sim -- [options]

Simulates wren on the mock HAL in virtual time (the real client, power modes, deep sleep and
check-ins) side by side with a fixed 60 s keep-alive client that stays connected, on the same day
profile and the same power model (board.json "power"). Prints PINGREQs, connections, bytes on the
air, radio-on seconds, charge and the delivery check for both; the last line is
"charge vs fixed-60s baseline: N.Nx less".

options:
  --hours N         simulated hours (default 24, at most 8760); the profile repeats daily
  --profile FILE    day profile (default profiles/day.json; format in tools/sim/README.md)
  --board FILE      board settings and power model (default board.json)
  --svg FILE        also draw the simulated day as an SVG file and print its path
  --detection       instead of the day: time to detect a black-holed link in each power mode,
                    with and without traffic, against the bound (ping interval + ping timeout;
                    with traffic: ack probe + ping timeout)
  --seed N          random seed (default 1); the same seed gives the same run
  --log             write the firmware log (virtual time) to stderr
  -h, --help        this text

exit codes: 0 done (everything delivered; --detection: every row within its bound),
1 something was not delivered, a bound was missed, or a file could not be read or written,
2 bad usage.`;

function fail(code: number, msg: string): never {
  process.stderr.write('sim: ' + msg + '\n');
  process.exit(code);
}

function parse() {
  try {
    return parseArgs({
      options: {
        hours: { type: 'string' },
        profile: { type: 'string' },
        board: { type: 'string' },
        svg: { type: 'string' },
        detection: { type: 'boolean' },
        seed: { type: 'string' },
        log: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    fail(2, (e as Error).message + ' (see npm run sim -- --help)');
  }
}

/** A path as given (relative to the working directory) or the default in the repository. */
function locate(given: string | undefined, dflt: string): { file: string; name: string } {
  if (given !== undefined) return { file: path.resolve(given), name: given };
  return { file: path.join(ROOT, dflt), name: dflt };
}

function main(): void {
  const a = parse();
  if (a.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  let hours = 24;
  if (a.hours !== undefined) {
    hours = Number(a.hours);
    if (!(hours > 0 && hours <= 8760)) fail(2, '--hours must be a number of hours in (0, 8760], got "' + a.hours + '"');
  }
  let seed = 1;
  if (a.seed !== undefined) {
    seed = Number(a.seed);
    if (!(Number.isInteger(seed) && seed >= 0 && seed < 4294967296)) fail(2, '--seed must be a whole number 0..4294967295, got "' + a.seed + '"');
  }
  if (a.detection && (a.svg !== undefined || a.profile !== undefined || a.hours !== undefined)) {
    fail(2, '--detection runs alone (with --board and --seed): drop --svg, --profile and --hours');
  }
  const bf = locate(a.board, 'board.json');
  const lb = loadBoard(bf.file, bf.name);
  if (lb.error !== undefined) fail(1, lb.error);
  const board = lb.value;
  const boardName = bf.name;
  if (a.detection) {
    const d = runDetection(board, seed);
    process.stdout.write(d.lines.join('\n') + '\n');
    if (!d.ok) fail(1, 'a detection was slower than its bound or not measurable (see the table)');
    return;
  }
  const pf = locate(a.profile, 'profiles/day.json');
  const lp = loadProfile(pf.file, pf.name, board);
  if (lp.error !== undefined) fail(1, lp.error);
  const profile = lp.value;
  const profileName = pf.name;
  const log = a.log ? (line: string) => process.stderr.write(line + '\n') : undefined;
  const r = runSim({ hours, board, boardName, profile, profileName, seed, svg: a.svg !== undefined, log });
  const lines = r.lines.slice();
  if (a.svg !== undefined) {
    const out = path.resolve(a.svg);
    try {
      fs.writeFileSync(out, r.svg as string);
    } catch (e) {
      fail(1, 'cannot write ' + out + ' (' + (e as NodeJS.ErrnoException).code + '): pass a writable path with --svg');
    }
    lines.splice(lines.length - 1, 0, 'svg: ' + out);
  }
  process.stdout.write(lines.join('\n') + '\n');
  if (!r.ok) fail(1, 'delivery check failed: ' + r.problems.join('; ') + ' (run with --log to see the firmware log)');
}

main();
