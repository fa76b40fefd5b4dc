#!/usr/bin/env node
// wren flash: build a board's firmware and upload it with the espruino CLI so it is saved to flash
// and runs at every boot.
//
//   npm run flash -- --board board.json --port /dev/ttyUSB0
//   npm run flash -- --board board.json --port /dev/ttyUSB0 --dry-run    print the command, send nothing
//   npm run flash -- --help
//
// 1. Build: exactly `npm run build -- --board FILE` (build.mjs boardBundle + buildBundles): the bundle
//    is written to <out-dir>/<device>.js, checked and measured; --secrets and --allow-over-budget
//    mean the same as there. A bundle over its budget stops here unless --allow-over-budget.
// 2. Upload: node_modules/.bin/espruino with --config SAVE_ON_SEND=1, which writes the code to the
//    Storage file .bootcde in 1 KB chunks and then calls load(): the board restarts into it now and
//    at every boot (node_modules/espruino/plugins/saveOnSend.js). Never -m: the CLI's minifier breaks
//    esbuild output (DESIGN.md section 2); the bundle is already minified by esbuild.
//    --board is tools/flash/ESP32.json, not the name "ESP32": with a name the CLI downloads
//    www.espruino.com/json/ESP32.json, and when that fails (offline) it takes the board for a
//    pre-1v96 firmware and sends E.setBootCode(<whole bundle>), which needs the bundle in RAM; it also
//    looks for net/tls/Storage/Wifi as modules on the web. The local file names the ESP32 build's
//    built-in modules and a Storage-era version, so the upload is the same online and offline.
//    --no-ble: the CLI otherwise starts its Bluetooth scanner, which crashes on Linux hosts without
//    D-Bus (containers, CI); it is left out only for a Bluetooth address as the port.
// 3. The CLI exits 0 even when it could not open the port ("Unable to connect!", "RECEIVE ERROR"),
//    so success is exit 0 AND "Upload Complete" in its output AND no such line AND no "Uncaught" in
//    the device's output (the CLI prints it prefixed "--] ").
// 4. The CLI reads the file as UTF-8 but sends characters U+0080..U+00FF as single bytes, so a bundle
//    with non-ASCII bytes is handed over as <device>.upload.js, a copy it reads back as exactly the
//    bundle's bytes (uploadCopy): .bootcde on the board is then byte-for-byte dist/<device>.js.
// 5. tcp://HOST[:PORT] (Espruino's telnet console, e.g. an ESP32 on Wi-Fi) works only for a bundle
//    that is pure ASCII: espruino 0.1.67 writes to a TCP socket as UTF-8 (core/serial_node_socket.js)
//    where a serial port gets bytes, so each byte >= 0x80 arrives as two and the chunked .bootcde
//    writes fail ("File already written with different data"). The tool refuses that case up front.
//
// Exit: 0 uploaded (or --dry-run printed); 1 build failed, port missing, CLI missing, upload failed;
// 2 usage error. Every error is one line on stderr starting "flash: " (build problems keep the
// build's own one-line "build: ..." form).
//
// Environment: WREN_ESPRUINO_CLI overrides the CLI path (tests use a stand-in; never a real port).

import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { boardBundle, buildBundles, ROOT } from '../build.mjs';

/** The board description handed to the espruino CLI (see the header). */
export const CLI_BOARD_JSON = join(ROOT, 'tools', 'flash', 'ESP32.json');
export const DEFAULT_BAUD = 115200;
export const DEFAULT_TIMEOUT_SEC = 180;

/** The espruino CLI: $WREN_ESPRUINO_CLI, else the dev dependency's node_modules/.bin/espruino. */
export function espruinoCliPath(): string {
  return process.env.WREN_ESPRUINO_CLI || join(ROOT, 'node_modules', '.bin', 'espruino');
}

const BLE_ADDRESS = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/** True for a port given as a file path (/dev/ttyUSB0, /dev/cu.usbserial-1), which must exist. */
export function isPathPort(port: string): boolean {
  return port.startsWith('/') || port.startsWith('./') || port.startsWith('../');
}

export interface UploadOptions {
  port: string;
  baud: number;
  bundleFile: string;
  /** Paths in the arguments are made relative to this directory when inside it (default: cwd). */
  cwd?: string;
}

/** The espruino CLI arguments that save `bundleFile` to .bootcde on the board at `port`. */
export function uploadArgs(o: UploadOptions): string[] {
  const cwd = o.cwd ?? process.cwd();
  const args: string[] = [];
  if (!BLE_ADDRESS.test(o.port)) args.push('--no-ble');
  args.push('-p', o.port, '-b', String(o.baud), '--board', shortPath(CLI_BOARD_JSON, cwd), '--config', 'SAVE_ON_SEND=1', shortPath(o.bundleFile, cwd));
  return args;
}

/** Relative to cwd when inside it, else absolute (so a printed command works from cwd). */
function shortPath(p: string, cwd: string): string {
  const r = relative(cwd, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : resolve(p);
}

/** A command line as it would be typed in a POSIX shell. */
export function shellCommand(bin: string, args: string[]): string {
  const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : "'" + s.split("'").join("'\\''") + "'");
  return [bin, ...args].map(q).join(' ');
}

/**
 * Whether the CLI's output says the upload happened. The CLI exits 0 when it cannot open the port,
 * so its exit code alone proves nothing. Returns undefined on success, else the reason.
 */
export function uploadFailure(exitCode: number | null, output: string): string | undefined {
  const lines = output.split(/\r?\n/);
  const first = (re: RegExp) => lines.find((l) => re.test(l));
  const cannot = first(/Unable to connect|RECEIVE ERROR|Port .* not found|No Ports Found/);
  if (cannot) return 'the espruino CLI could not open the port: ' + cannot.trim().slice(0, 200);
  if (exitCode !== 0) {
    const last = lines.filter((l) => l.trim() !== '').pop();
    return 'espruino exited with code ' + exitCode + (last ? ': ' + last.trim().slice(0, 200) : '');
  }
  // The device's own output comes prefixed with "--] ". A failed Storage write is "Uncaught Error: ...",
  // so is a bundle that throws as it starts after load(). ("ERROR: Connect failed" from a firmware
  // that cannot reach its broker yet is not a failed upload.)
  const deviceError = first(/^--\] .*(Uncaught|Out of Memory)/);
  if (deviceError) return 'the device reported: ' + deviceError.slice(4).trim().slice(0, 200);
  if (!first(/Upload Complete/)) return 'espruino did not report "Upload Complete"';
  return undefined;
}

/**
 * What to hand the CLI so that it sends exactly the bundle's UTF-8 bytes. The CLI reads the file as
 * UTF-8 and then keeps every character below 256 as one byte, encoding only the others as UTF-8
 * (asUTF8Bytes in node_modules/espruino/core/utils.js): a raw "é" in the bundle (bytes C3 A9) would
 * reach the board as the single byte E9. So each byte of the bundle becomes the character with that
 * code, written as UTF-8; the CLI reads back one character per original byte and sends those bytes.
 */
export function uploadCopy(bundleText: string): Buffer {
  return Buffer.from(Buffer.from(bundleText, 'utf8').toString('latin1'), 'utf8');
}

/** Byte offset of the first byte >= 0x80 in the UTF-8 text, or -1. */
export function nonAsciiAt(text: string): number {
  const i = text.search(/[^\x00-\x7f]/);
  return i < 0 ? -1 : Buffer.byteLength(text.slice(0, i), 'utf8');
}

function countNonAscii(text: string): number {
  return Buffer.byteLength(text, 'utf8') - text.replace(/[^\x00-\x7f]/g, '').length;
}

const USAGE = `usage: npm run flash -- --board FILE --port PORT [options]

Builds the device firmware for a board.json (as npm run build -- --board FILE does) and uploads it with
the espruino CLI so it is saved to flash (.bootcde) and runs at every boot.

  --board FILE         board.json of the device (default: board.json)
  --port PORT          serial port of the board, e.g. /dev/ttyUSB0 (required; also tcp://HOST:PORT)
  --baud N             serial baud rate (default ${DEFAULT_BAUD}, the ESP32 console's)
  --secrets FILE       where "$secret:NAME" values come from (default: secrets.json beside the board;
                       else the environment variable WREN_SECRET_NAME)
  --allow-over-budget  flash a bundle that is over its size budget (the build warns)
  --out-dir DIR        where the bundle is written (default: dist)
  --timeout SEC        give up on the upload after SEC seconds (default ${DEFAULT_TIMEOUT_SEC})
  --dry-run            build, then print the exact command and files; send nothing, open no port
  --help               this text

exit: 0 uploaded (or dry run printed); 1 build, port, CLI or upload failure; 2 usage error
`;

type Out = (s: string) => void;

export interface FlashIo {
  out: Out;
  err: Out;
}

const stdio: FlashIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

function positiveInt(v: string | undefined, name: string, dflt: number): number | string {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) <= 0) return 'flash: --' + name + ' must be a positive whole number, got ' + JSON.stringify(v);
  return Number(v);
}

/** The whole tool; resolves with the exit code. */
export async function flashMain(argv: string[], io: FlashIo = stdio): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        help: { type: 'boolean' },
        board: { type: 'string' },
        port: { type: 'string' },
        baud: { type: 'string' },
        secrets: { type: 'string' },
        'allow-over-budget': { type: 'boolean' },
        'out-dir': { type: 'string' },
        timeout: { type: 'string' },
        'dry-run': { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    io.err('flash: ' + String((e as Error).message).split('\n')[0] + ' (try --help)\n');
    return 2;
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const port = values.port;
  if (!port) {
    io.err('flash: --port is required, e.g. --port /dev/ttyUSB0\n');
    return 2;
  }
  const baud = positiveInt(values.baud, 'baud', DEFAULT_BAUD);
  const timeoutSec = positiveInt(values.timeout, 'timeout', DEFAULT_TIMEOUT_SEC);
  if (typeof baud === 'string' || typeof timeoutSec === 'string') {
    io.err((typeof baud === 'string' ? baud : timeoutSec) + '\n');
    return 2;
  }
  const dryRun = !!values['dry-run'];

  const cli = espruinoCliPath();
  if (!existsSync(cli)) {
    io.err('flash: espruino CLI not found at ' + cli + ' (run npm install; it is a dev dependency)\n');
    return 1;
  }
  if (!dryRun && isPathPort(port) && !existsSync(port)) {
    io.err('flash: port ' + port + ' does not exist (is the board plugged in? npx espruino --list shows the ports)\n');
    return 1;
  }

  // Build, as npm run build -- --board FILE.
  const boardFile = values.board ?? 'board.json';
  let built;
  try {
    const spec = await boardBundle(boardFile, { secretsFile: values.secrets });
    built = await buildBundles({ bundles: [spec], outDir: values['out-dir'] ? resolve(values['out-dir']) : undefined, write: true });
  } catch (e) {
    io.err('flash: ' + ((e as Error).message || String(e)) + '\n');
    return 1;
  }
  const r = built.results[0];
  const hard = built.problems.filter((p) => !/ over its budget of /.test(p) && !/: warning: /.test(p));
  for (const p of built.problems.filter((p) => /: warning: /.test(p))) io.err('flash: ' + p + '\n');
  if (r.errors.length || r.findings.length) {
    for (const p of hard) io.err('flash: ' + p + '\n');
    return 1;
  }
  if (r.overBudget) {
    const line = 'build: ' + r.name + ': ' + r.bytes + ' bytes minified, over its budget of ' + r.budgetBytes;
    if (!values['allow-over-budget']) {
      io.err('flash: ' + line + ' (--allow-over-budget to flash it anyway)\n');
      return 1;
    }
    io.err('flash: WARNING: ' + line + '; flashing it because of --allow-over-budget\n');
  }

  const firstHigh = nonAsciiAt(r.text);
  if (/^tcp:\/\//i.test(port) && firstHigh >= 0) {
    io.err(
      'flash: cannot upload over ' + port + ': the espruino CLI sends TCP data as UTF-8, which corrupts the ' +
        countNonAscii(r.text) + ' non-ASCII byte(s) in the bundle (first at byte ' + firstHigh + '); use a serial port\n',
    );
    return 1;
  }

  // The file the CLI reads: the bundle itself when it is ASCII, else a copy it reads back as exactly
  // the bundle's bytes (see uploadCopy).
  let uploadFile = r.outfile;
  if (firstHigh >= 0) {
    uploadFile = r.outfile.replace(/\.js$/, '') + '.upload.js';
    writeFileSync(uploadFile, uploadCopy(r.text));
  }
  const args = uploadArgs({ port, baud, bundleFile: uploadFile });
  const bin = shortPath(cli, process.cwd());
  const command = shellCommand(bin, args);
  const bundleShown = shortPath(r.outfile, process.cwd());
  const sizeLine = r.bytes + ' bytes minified, budget ' + r.budgetBytes + (r.overBudget ? ', OVER' : '');
  if (dryRun) {
    io.out('flash: dry run: nothing sent, no port opened\n');
    io.out('  bundle:     ' + bundleShown + ' (' + sizeLine + ')\n');
    if (uploadFile !== r.outfile) {
      io.out('  upload:     ' + shortPath(uploadFile, process.cwd()) + ' (the same bytes as the espruino CLI reads them; see tools/flash.ts)\n');
    }
    io.out('  board json: ' + shortPath(CLI_BOARD_JSON, process.cwd()) + ' (for the espruino CLI)\n');
    io.out('  saved as:   .bootcde in Storage (SAVE_ON_SEND=1), then load(): runs now and at every boot\n');
    io.out('  command:    ' + command + '\n');
    return 0;
  }

  io.out('flash: ' + bundleShown + ' (' + sizeLine + ') -> ' + port + '\n');
  io.out('flash: ' + command + '\n');
  const result = await runCli(cli, args, timeoutSec * 1000, io);
  if (result.timedOut) {
    io.err('flash: upload failed: no result from espruino within ' + timeoutSec + ' s (stopped it)\n');
    return 1;
  }
  if (result.spawnError) {
    io.err('flash: upload failed: could not start ' + cli + ': ' + result.spawnError + '\n');
    return 1;
  }
  const why = uploadFailure(result.exitCode, result.output);
  if (why) {
    io.err('flash: upload failed: ' + why + '\n');
    return 1;
  }
  io.out('flash: saved ' + bundleShown + ' to .bootcde on ' + port + '; it runs at every boot\n');
  return 0;
}

interface CliResult {
  exitCode: number | null;
  output: string;
  timedOut: boolean;
  spawnError?: string;
}

/** Runs the CLI, passing its output through, and keeps the output to judge the upload. */
function runCli(cli: string, args: string[], timeoutMs: number, io: FlashIo): Promise<CliResult> {
  return new Promise((done) => {
    const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    const take = (b: Buffer) => {
      const s = b.toString('utf8');
      output += s;
      io.out(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ exitCode: null, output, timedOut, spawnError: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ exitCode: code, output, timedOut });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  flashMain(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
