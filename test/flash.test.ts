// tools/flash.ts (npm run flash): build + upload with the espruino CLI. No test touches a serial port:
// the upload paths use a stand-in CLI (WREN_ESPRUINO_CLI) and a temp file as the "port"; the real CLI
// runs with -n (no connection) or against 127.0.0.1; with ESPRUINO_BIN, the real CLI uploads to the
// Espruino Linux interpreter's telnet console and the saved code runs at the next boot.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_BUDGET_BYTES, ROOT } from '../build.mjs';
import { deviceBundle } from './helpers/device-bundle';
import { espruinoBin, espruinoSkipReason } from '../tools/espruino-run';
import { CLI_BOARD_JSON, espruinoCliPath, flashMain, nonAsciiAt, shellCommand, uploadArgs, uploadCopy, uploadFailure } from '../tools/flash';
import { freePort, startAedes } from './helpers/brokers';

let dir: string;
let boardFile: string;
let outDir: string;

function board(brokerPort: number, device: string): object {
  return {
    device,
    clientId: 'wren-{device}',
    brokers: [{ host: '127.0.0.1', port: brokerPort }],
    mqtt: { version: '4' },
    subscriptions: [{ topic: 'wren/{device}/cmd', qos: 1 }],
    backoff: { baseMs: 200, capMs: 1000 },
    transport: { type: 'host' },
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wren-flash-'));
  boardFile = join(dir, 'board.json');
  writeFileSync(boardFile, JSON.stringify(board(1883, 'flash-test')));
  outDir = join(dir, 'dist');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** flashMain in-process with captured output. */
async function flash(args: string[], env: Record<string, string | undefined> = {}) {
  const saved: Record<string, string | undefined> = {};
  for (const k of Object.keys(env)) {
    saved[k] = process.env[k];
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  let out = '';
  let err = '';
  try {
    const code = await flashMain(args, { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  } finally {
    for (const k of Object.keys(saved)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

/** The tool as `npm run flash` runs it: node --import tsx tools/flash.ts ... */
function flashProcess(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'tools', 'flash.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const errLines = (s: string) => s.split('\n').filter((l) => l !== '');

describe('npm run flash: arguments and errors', () => {
  it('--help prints the usage and exits 0 (as a process)', () => {
    const r = flashProcess(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: npm run flash -- --board FILE --port PORT/);
    for (const opt of ['--board', '--port', '--baud', '--secrets', '--allow-over-budget', '--dry-run', '--timeout']) expect(r.out).toContain(opt);
    expect(r.err).toBe('');
  });

  it('no --port: one line, exit 2', async () => {
    const r = await flash(['--board', boardFile]);
    expect(r.code).toBe(2);
    expect(r.err).toBe('flash: --port is required, e.g. --port /dev/ttyUSB0\n');
    expect(r.out).toBe('');
  });

  it('an unknown option or a bad number: one line, exit 2', async () => {
    const a = await flash(['--port', '/dev/ttyUSB0', '--speed', '3']);
    expect(a.code).toBe(2);
    expect(errLines(a.err)).toEqual(["flash: Unknown option '--speed' (try --help)"]);
    const b = await flash(['--port', '/dev/ttyUSB0', '--baud', 'fast']);
    expect(b.code).toBe(2);
    expect(errLines(b.err)).toEqual(['flash: --baud must be a positive whole number, got "fast"']);
  });

  it('a port that does not exist: one line, exit 1, nothing built', async () => {
    const port = join(dir, 'ttyUSB-none');
    const r = await flash(['--board', boardFile, '--port', port, '--out-dir', outDir]);
    expect(r.code).toBe(1);
    expect(errLines(r.err)).toEqual(['flash: port ' + port + ' does not exist (is the board plugged in? npx espruino --list shows the ports)']);
    expect(existsSync(join(outDir, 'flash-test.js'))).toBe(false);
  });

  it('the espruino CLI missing: one line, exit 1', async () => {
    const cli = join(dir, 'no-such-cli');
    const r = await flash(['--board', boardFile, '--port', '/dev/ttyUSB0', '--dry-run'], { WREN_ESPRUINO_CLI: cli });
    expect(r.code).toBe(1);
    expect(errLines(r.err)).toEqual(['flash: espruino CLI not found at ' + cli + ' (run npm install; it is a dev dependency)']);
  });

  it('a board that does not build: the build error, exit 1', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ device: 'x', brokers: [] }));
    const r = await flash(['--board', bad, '--port', '/dev/ttyUSB0', '--dry-run', '--out-dir', outDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^flash: .*bad\.json is invalid:/);
  });
});

describe('npm run flash -- --dry-run', () => {
  let dry: { code: number | null; out: string; err: string };
  let bundleFile: string;
  /** What the CLI is given: the bundle, or its upload copy when the bundle has non-ASCII bytes. */
  let uploadFile: string;

  beforeAll(() => {
    dry = flashProcess(['--board', boardFile, '--port', '/dev/ttyUSB0', '--dry-run', '--out-dir', outDir]);
    bundleFile = join(outDir, 'flash-test.js');
    uploadFile = nonAsciiAt(readFileSync(bundleFile, 'utf8')) >= 0 ? join(outDir, 'flash-test.upload.js') : bundleFile;
  }, 60_000);

  it('builds the bundle and prints the exact command and files, sending nothing', () => {
    expect(dry.code).toBe(0);
    expect(existsSync(bundleFile)).toBe(true);
    const bytes = readFileSync(bundleFile).length;
    const lines = dry.out.split('\n');
    expect(lines[0]).toBe('flash: dry run: nothing sent, no port opened');
    expect(dry.out).toContain('  bundle:     ' + bundleFile + ' (' + bytes + ' bytes minified, budget ' + DEVICE_BUDGET_BYTES);
    expect(dry.out).toContain('  board json: ' + relative(ROOT, CLI_BOARD_JSON) + ' (for the espruino CLI)');
    const cmd = lines.find((l) => l.startsWith('  command:    '))?.slice(14);
    expect(cmd).toBe(
      shellCommand(relative(ROOT, espruinoCliPath()), [
        '--no-ble',
        '-p',
        '/dev/ttyUSB0',
        '-b',
        '115200',
        '--board',
        'tools/flash/ESP32.json',
        '--config',
        'SAVE_ON_SEND=1',
        uploadFile,
      ]),
    );
    const argv = (cmd as string).split(' ');
    expect(argv).toContain('/dev/ttyUSB0');
    expect(argv.slice(argv.indexOf('--board'), argv.indexOf('--board') + 2)).toEqual(['--board', 'tools/flash/ESP32.json']);
    expect(argv).toContain('SAVE_ON_SEND=1');
    expect(argv[argv.length - 1]).toBe(uploadFile);
    expect(argv).not.toContain('-m');
    expect(argv).not.toContain('--minify');
  });

  it('a bundle with non-ASCII bytes goes as an upload copy that the CLI reads back as the same bytes', () => {
    const bundle = readFileSync(bundleFile);
    if (uploadFile === bundleFile) {
      expect(nonAsciiAt(bundle.toString('utf8'))).toBe(-1);
      return;
    }
    expect(dry.out).toContain('  upload:     ' + uploadFile + ' (');
    // The CLI: readFileSync(file, 'utf8'), then every char below 256 is one byte (asUTF8Bytes).
    const read = readFileSync(uploadFile, 'utf8');
    expect([...read].every((c) => c.charCodeAt(0) < 256)).toBe(true);
    expect(Buffer.from(read, 'latin1').equals(bundle)).toBe(true);
    // Handing over the bundle itself would not: its non-ASCII text would reach the board changed.
    expect(Buffer.from(bundle.toString('utf8'), 'latin1').equals(bundle)).toBe(false);
    expect(uploadCopy('a\u00e9\u20ac').toString('utf8')).toBe('a\u00c3\u00a9\u00e2\u0082\u00ac');
  });

  it('the CLI board file is the ESP32 with Storage and the built-in modules the bundle requires', () => {
    const j = JSON.parse(readFileSync(CLI_BOARD_JSON, 'utf8'));
    expect(j.BOARD).toBe('ESP32');
    const [major, minor] = String(j.info.binary_version).split('v').map(Number);
    expect(major > 1 || minor >= 96).toBe(true); // the CLI's test for a Storage upload
    const required = new Set([...readFileSync(bundleFile, 'utf8').matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
    expect(required.size).toBeGreaterThan(0);
    for (const m of required) expect(j.info.builtin_modules).toContain(m);
  });

  it('within its budget: the same dry run needs no --allow-over-budget', async () => {
    expect(readFileSync(bundleFile).length).toBeLessThanOrEqual(DEVICE_BUDGET_BYTES);
    const r = await flash(['--board', boardFile, '--port', '/dev/ttyUSB0', '--dry-run', '--out-dir', outDir]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
  });

  it('over its budget (a 40 KB CA) without --allow-over-budget: the build one-line error, nothing sent', async () => {
    const big = join(dir, 'big.json');
    const ca = '-----BEGIN CERTIFICATE-----\n' + 'QUJD'.repeat(10000) + '\n-----END CERTIFICATE-----\n';
    const b = board(1883, 'flash-big') as { brokers: Array<Record<string, unknown>> };
    b.brokers[0].tls = { ca };
    writeFileSync(big, JSON.stringify(b));
    const r = await flash(['--board', big, '--port', '/dev/ttyUSB0', '--dry-run', '--out-dir', outDir]);
    expect(r.code).toBe(1);
    const lines = errLines(r.err);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp('^flash: build: flash-big: \\d+ bytes minified, over its budget of ' + DEVICE_BUDGET_BYTES + ' \\(--allow-over-budget to flash it anyway\\)$'));
    expect(r.out).toBe('');
  });
});

describe('npm run flash: the upload (stand-in CLI, a temp file as the port)', () => {
  let cli: string;
  let port: string;
  let argsFile: string;

  beforeAll(() => {
    cli = join(dir, 'fake-espruino');
    argsFile = join(dir, 'fake-args.json');
    port = join(dir, 'ttyFAKE0');
    writeFileSync(port, '');
    writeFileSync(
      cli,
      [
        '#!' + process.execPath,
        "const fs = require('fs');",
        'fs.writeFileSync(process.env.FAKE_ARGS_FILE, JSON.stringify(process.argv.slice(2)));',
        "const mode = process.env.FAKE_MODE || 'ok';",
        "console.log('Espruino Command-line Tool 0.1.67');",
        "if (mode === 'ok') { console.log('Connected'); console.log('--] >'); console.log('Upload Complete'); process.exit(0); }",
        "if (mode === 'noport') { console.log('serial: Port \"x\" not found'); console.error('Unable to connect!'); process.exit(0); }",
        "if (mode === 'crash') { console.error('Error: boom in the CLI'); process.exit(7); }",
        "if (mode === 'device') { console.log('--] Uncaught Error: File already written with different data'); console.log('Upload Complete'); process.exit(0); }",
        "if (mode === 'silent') { process.exit(0); }",
        "if (mode === 'hang') { setTimeout(function(){}, 60000); }",
      ].join('\n') + '\n',
    );
    chmodSync(cli, 0o755);
  });

  const run = (mode: string, extra: string[] = []) =>
    flash(['--board', boardFile, '--port', port, '--out-dir', outDir, ...extra], {
      WREN_ESPRUINO_CLI: cli,
      FAKE_MODE: mode,
      FAKE_ARGS_FILE: argsFile,
    });

  it('runs the CLI with the printed arguments and reports success', async () => {
    const r = await run('ok', ['--baud', '921600']);
    expect(r.code).toBe(0);
    const args = JSON.parse(readFileSync(argsFile, 'utf8'));
    const text = readFileSync(join(outDir, 'flash-test.js'), 'utf8');
    const given = nonAsciiAt(text) >= 0 ? join(outDir, 'flash-test.upload.js') : join(outDir, 'flash-test.js');
    expect(args).toEqual(uploadArgs({ port, baud: 921600, bundleFile: given, cwd: process.cwd() }));
    expect(r.out).toContain('Upload Complete');
    expect(r.out.trimEnd().split('\n').pop()).toBe('flash: saved ' + join(outDir, 'flash-test.js') + ' to .bootcde on ' + port + '; it runs at every boot');
  });

  it('the CLI could not open the port but exited 0: one line, exit 1', async () => {
    const r = await run('noport');
    expect(r.code).toBe(1);
    expect(errLines(r.err).filter((l) => !l.includes('WARNING'))).toEqual([
      'flash: upload failed: the espruino CLI could not open the port: serial: Port "x" not found',
    ]);
  });

  it('the CLI exits non-zero: one line with its code and last words, exit 1', async () => {
    const r = await run('crash');
    expect(r.code).toBe(1);
    expect(errLines(r.err).filter((l) => !l.includes('WARNING'))).toEqual(['flash: upload failed: espruino exited with code 7: Error: boom in the CLI']);
  });

  it('the device reports an error while saving: one line, exit 1', async () => {
    const r = await run('device');
    expect(r.code).toBe(1);
    expect(errLines(r.err).filter((l) => !l.includes('WARNING'))).toEqual([
      'flash: upload failed: the device reported: Uncaught Error: File already written with different data',
    ]);
  });

  it('no "Upload Complete": failure; a CLI that hangs is stopped at --timeout', async () => {
    const a = await run('silent');
    expect(a.code).toBe(1);
    expect(a.err).toContain('flash: upload failed: espruino did not report "Upload Complete"');
    const b = await run('hang', ['--timeout', '1']);
    expect(b.code).toBe(1);
    expect(b.err).toContain('flash: upload failed: no result from espruino within 1 s (stopped it)');
  }, 30_000);

  it('tcp:// with a bundle holding non-ASCII bytes is refused before the CLI runs', async () => {
    const text = readFileSync(join(outDir, 'flash-test.js'), 'utf8');
    rmSync(argsFile, { force: true });
    const r = await run('ok', ['--port', 'tcp://127.0.0.1:2323']);
    if (nonAsciiAt(text) >= 0) {
      expect(r.code).toBe(1);
      expect(errLines(r.err).filter((l) => !l.includes('WARNING'))[0]).toMatch(
        /^flash: cannot upload over tcp:\/\/127\.0\.0\.1:2323: the espruino CLI sends TCP data as UTF-8, which corrupts the \d+ non-ASCII byte\(s\) in the bundle \(first at byte \d+\); use a serial port$/,
      );
      expect(existsSync(argsFile)).toBe(false);
    } else {
      expect(r.code).toBe(0);
    }
  });
});

describe('the real espruino CLI with the flash arguments', () => {
  let bundleFile: string;
  let copyFile: string;
  beforeAll(async () => {
    bundleFile = join(dir, 'real-cli.js');
    const js = await deviceBundle(boardFile);
    writeFileSync(bundleFile, js);
    copyFile = join(dir, 'real-cli.upload.js');
    writeFileSync(copyFile, uploadCopy(js));
  }, 60_000);

  it('-v -n (no connection): uploads to Storage (.bootcde), knows the built-in modules, fetches nothing', () => {
    const args = ['-v', '-n', ...uploadArgs({ port: join(dir, 'ttyNONE'), baud: 115200, bundleFile: copyFile })];
    const r = spawnSync(espruinoCliPath(), args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const out = r.stdout + r.stderr;
    expect(r.status, out).toBe(0);
    // The Storage upload (chunked writes to .bootcde + load()), not E.setBootCode of the whole bundle,
    // of exactly the bundle's bytes (from the upload copy).
    expect(out).toContain('Uploading ' + readFileSync(bundleFile).length + ' bytes to flash');
    expect(out).not.toContain('pre-1v96');
    expect(out).not.toMatch(/Module \S+ not found|getURL|No list of built-in modules|Minified/);
  }, 60_000);

  it('a refused TCP port: the CLI exits 0, uploadFailure calls it a port failure', async () => {
    const file = join(dir, 'tiny.js');
    writeFileSync(file, 'console.log(1);\n');
    const port = await freePort();
    const r = spawnSync(espruinoCliPath(), uploadArgs({ port: 'tcp://127.0.0.1:' + port, baud: 115200, bundleFile: file }), {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const why = uploadFailure(r.status, r.stdout + r.stderr);
    expect(why).toMatch(/^the espruino CLI could not open the port: /);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// With ESPRUINO_BIN: the real CLI uploads to the Espruino Linux interpreter's telnet console (fixed
// port 2323 in the interpreter, so skipped when that port is taken) and the code runs now and after
// a restart. The tcp:// transport of espruino 0.1.67 is not byte-exact (see tools/flash.ts), so the
// bundle's non-ASCII bytes are written as \xNN escapes for this transport only.

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const TELNET_PORT = 2323;
const telnetFree = espruinoBin() ? (await portFree(TELNET_PORT, '0.0.0.0')) && (await portFree(TELNET_PORT, '127.0.0.1')) : false;
const e2eSkip = espruinoSkipReason() ?? (telnetFree ? undefined : 'port ' + TELNET_PORT + ' (the interpreter telnet console) is in use');
if (e2eSkip) console.log('skipped (flash to the Espruino Linux interpreter): ' + e2eSkip);

describe.skipIf(e2eSkip !== undefined)('flash to the Espruino Linux interpreter over its telnet console (ESPRUINO_BIN)', () => {
  const pids: number[] = [];
  afterAll(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  /** The interpreter in `cwd` with `args`; stdin held open; stdout collected. */
  function interpreter(cwd: string, args: string[]) {
    const child = spawn(espruinoBin() as string, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid !== undefined) pids.push(child.pid);
    child.stdin.on('error', () => undefined);
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
    child.stderr.on('data', () => undefined);
    return {
      output: () => out,
      kill: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('close', () => resolve());
          if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
        }),
    };
  }

  async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error('timed out waiting for ' + what);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('saves the bundle to .bootcde, runs it at once, and runs it again at the next boot', async () => {
    const broker = await startAedes();
    const cwd = mkdtempSync(join(dir, 'esp-'));
    const ready: string[] = [];
    const watch = () =>
      (broker.broker as unknown as NodeJS.EventEmitter).on('clientReady', (c: { id: string }) => ready.push(c.id));
    watch();
    try {
      const device = 'flash-e2e';
      const bf = join(cwd, 'board.json');
      writeFileSync(bf, JSON.stringify(board(broker.port, device)));
      const ascii = Buffer.from(await deviceBundle(bf), 'utf8')
        .toString('latin1')
        .replace(/[\x80-\xff]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
      expect(nonAsciiAt(ascii)).toBe(-1);
      const file = join(cwd, device + '.js');
      writeFileSync(file, ascii);

      const first = interpreter(cwd, ['--telnet']);
      await until(() => first.output().includes('espruino.com/Donate'), 'the interpreter banner', 10_000);
      await until(() => canConnect(TELNET_PORT), 'the telnet console', 10_000);

      const cli = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn(espruinoCliPath(), uploadArgs({ port: 'tcp://127.0.0.1:' + TELNET_PORT, baud: 115200, bundleFile: file }), {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        if (c.pid !== undefined) pids.push(c.pid);
        let out = '';
        c.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
        c.stderr.on('data', (b: Buffer) => (out += b.toString('utf8')));
        const t = setTimeout(() => c.pid !== undefined && process.kill(c.pid, 'SIGKILL'), 90_000);
        c.on('close', (code) => {
          clearTimeout(t);
          resolve({ code, out });
        });
      });
      expect(uploadFailure(cli.code, cli.out), cli.out.slice(-2000)).toBeUndefined();
      // load() after the upload: the firmware is running and reaches the broker.
      await until(() => ready.includes('wren-' + device), 'the device CONNECT after the upload', 15_000);
      await first.kill();
      expect(existsSync(join(cwd, 'espruino.flash'))).toBe(true);

      // A fresh start with no program (a board's boot): .bootcde runs by itself.
      ready.length = 0;
      const second = interpreter(cwd, []);
      await until(() => ready.includes('wren-' + device), 'the device CONNECT at the next boot', 15_000);
      await until(() => second.output().includes('wren: state connected'), '"wren: state connected" at boot', 5_000);
      expect(second.output()).not.toContain('Uncaught');
      await second.kill();
    } finally {
      await broker.stop();
    }
  }, 150_000);
});
