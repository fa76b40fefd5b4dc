// hal/espruino bundled for Espruino: the bundles pass tools/bundle-check.mjs, a Wi-Fi bundle holds no
// modem code and a cellular bundle no Wi-Fi code (sizes printed), and, with ESPRUINO_BIN (the Espruino
// Linux interpreter), test/espruino/hal-entry.ts runs for real: the Transport over the interpreter's
// `net` against Node servers on 127.0.0.1 (echo of every byte value, refused port, unknown host, peer
// close), timers and clock, Storage on the interpreter's flash file across two runs (a reboot),
// firmware/session included, and the cellular driver against the simulated modem of
// test/helpers/fake-modem.ts. Without ESPRUINO_BIN that part is skipped with a printed reason.

import * as net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleForEspruino, espruinoSkipReason, runOnEspruino, type EspruinoRunResult } from '../tools/espruino-run';

interface Finding {
  rule: string;
  message: string;
  line: number;
}
const { checkBundle } = (await import(new URL('../tools/bundle-check.mjs', import.meta.url).href)) as {
  checkBundle(js: string): Finding[];
};

const entry = (n: string) => fileURLToPath(new URL('./espruino/' + n, import.meta.url));

describe('hal/espruino bundles', () => {
  it('Wi-Fi and cellular bundles pass the bundle check and do not carry each other\'s code', async () => {
    const wifi = await bundleForEspruino(entry('hal-wifi-entry.ts'));
    const cell = await bundleForEspruino(entry('hal-cell-entry.ts'));
    expect(checkBundle(wifi)).toEqual([]);
    expect(checkBundle(cell)).toEqual([]);
    expect(wifi).not.toContain('CIPSEND');
    expect(wifi).not.toContain('CIPRXGET');
    expect(cell).toContain('CIPSEND');
    expect(cell).not.toContain('"Wifi"');
    expect(wifi).toContain('"Wifi"');
    console.log(
      'hal/espruino minified: wifi ' + wifi.length + ' B (gzip ' + gzipSync(wifi).length + '), cellular ' + cell.length + ' B (gzip ' + gzipSync(cell).length + ')',
    );
  });

  it('the interpreter scenario bundles clean', async () => {
    const js = await bundleForEspruino(entry('hal-entry.ts'), {
      define: { WREN_ECHO_PORT: '1', WREN_BYE_PORT: '2', WREN_PHASE: '1' },
    });
    expect(checkBundle(js)).toEqual([]);
  });
});

const skipReason = espruinoSkipReason();
if (skipReason) console.log('skipped: ' + skipReason);

describe.skipIf(skipReason !== undefined)('hal/espruino on the Espruino interpreter (ESPRUINO_BIN)', () => {
  let echoServer: net.Server;
  let byeServer: net.Server;
  let dir: string;
  let run1: EspruinoRunResult;
  let run2: EspruinoRunResult;
  let lines1: string[];
  let lines2: string[];
  let echoed = 0;

  const listen = (s: net.Server) =>
    new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));

  beforeAll(async () => {
    echoServer = net.createServer((c) => {
      c.on('data', (d) => {
        echoed += d.length;
        c.write(d);
      });
      c.on('error', () => {});
    });
    byeServer = net.createServer((c) => {
      c.on('error', () => {});
      c.end('bye');
    });
    const echoPort = await listen(echoServer);
    const byePort = await listen(byeServer);
    dir = mkdtempSync(join(tmpdir(), 'wren-hal-espruino-'));
    const bundle = (phase: number) =>
      bundleForEspruino(entry('hal-entry.ts'), {
        define: { WREN_ECHO_PORT: String(echoPort), WREN_BYE_PORT: String(byePort), WREN_PHASE: String(phase) },
      });
    // the same working directory: the second run sees the first run's flash (espruino.flash)
    run1 = await runOnEspruino(await bundle(1), { timeoutMs: 30_000, cwd: dir });
    run2 = await runOnEspruino(await bundle(2), { timeoutMs: 30_000, cwd: dir });
    lines1 = run1.stdout.split('\n');
    lines2 = run2.stdout.split('\n');
  });

  afterAll(async () => {
    await new Promise<void>((r) => (echoServer ? echoServer.close(() => r()) : r()));
    await new Promise<void>((r) => (byeServer ? byeServer.close(() => r()) : r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const line = (lines: string[], prefix: string) => {
    const l = lines.find((x) => x.startsWith(prefix + ' '));
    if (l === undefined) throw new Error('no line "' + prefix + '" in:\n' + lines.join('\n'));
    return l.slice(prefix.length + 1);
  };

  it('runs to the end without uncaught errors', () => {
    expect(run1.timedOut).toBe(false);
    expect(run1.uncaught).toEqual([]);
    expect(lines1).toContain('DONE');
    expect(lines1.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(run2.uncaught).toEqual([]);
    expect(lines2).toContain('DONE');
  });

  it('Transport: every byte value and 3000 more round-trip through real sockets, in several chunks; one close', () => {
    expect(line(lines1, 'ECHO')).toBe('true 3256 chunks>1=true open,close');
    expect(echoed).toBe(3256);
  });

  it('Transport: a refused port and an unknown host become error + close, never inside open()', () => {
    expect(line(lines1, 'REFUSED-SYNC')).toBe('0');
    expect(line(lines1, 'REFUSED')).toBe('error:refused,close');
    expect(line(lines1, 'DNS')).toBe('error:dns,close');
  });

  it('Transport: a peer close delivers the data, then one close and no error', () => {
    expect(line(lines1, 'BYE')).toBe('bye open,close');
  });

  it('TimerHost and Clock', () => {
    expect(line(lines1, 'TIMERS')).toBe('b true');
  });

  it('the cellular driver against the simulated SIM7000, output byte by byte with garbage, on Espruino timers', async () => {
    const js = await bundleForEspruino(entry('hal-modem-entry.ts'));
    const r = await runOnEspruino(js, { timeoutMs: 60_000 });
    const l = r.stdout.split('\n');
    expect(r.uncaught).toEqual([]);
    expect(r.timedOut).toBe(false);
    expect(line(l, 'UP')).toBe('true -73');
    expect(line(l, 'TX')).toBe('true 272');
    expect(line(l, 'RX')).toBe('true 272');
    expect(line(l, 'RESET')).toBe('1 false');
    expect(line(l, 'EVENTS')).toBe('up');
    expect(l).toContain('DONE');
  });

  it('Storage: records written in one run read back in the next (a reboot), firmware/session included', () => {
    expect(line(lines1, 'S1 append')).toBe('true true');
    expect(line(lines1, 'S1 replace')).toBe('true true');
    expect(line(lines1, 'S1 long')).toBe('true');
    expect(line(lines1, 'S1 session')).toBe('10');
    expect(line(lines2, 'S2 bin')).toBe('0001feFFfe02ff0d0a'.toLowerCase() + ' 609 true');
    expect(line(lines2, 'S2 cfg')).toBe('040506ff 4');
    expect(line(lines2, 'S2 long')).toBe('09');
    expect(line(lines2, 'S2 list')).toBe('a-name-that-is-28-characters,bin,cfg,dev.l');
    expect(line(lines2, 'S2 append')).toBe('true 2 2 fffe07');
    expect(line(lines2, 'S2 session')).toBe('10 dropped 0');
    expect(line(lines2, 'S2 erased')).toBe('true a-name-that-is-28-characters,bin,dev.l');
  });
});
