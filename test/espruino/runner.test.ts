// tools/espruino-run.ts: output cleaning always; real runs when ESPRUINO_BIN points to an Espruino
// Linux interpreter (skipped with a printed reason otherwise).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanEspruinoOutput, espruinoSkipReason, runOnEspruino } from '../../tools/espruino-run';

// Raw console output captured from the 2v29 Linux build (banner, prompt erasures, final prompt).
const RAW =
  '\r\n ____                 _ \r\n|  __|___ ___ ___ _ _|_|___ ___ \r\n|  __|_ -| . |  _| | | |   | . |\r\n' +
  '|____|___|  _|_| |___|_|_|_|___|\r\n         |_| espruino.com\r\n 2v29.277 (c) 2026 G.Williams\r\n\r\n' +
  'Espruino is Open Source. Our work is supported\r\nonly by sales of official boards and donations:\r\n' +
  'http://espruino.com/Donate\r\n\r\nhi\r\n>\r\x1b[J>x\r\nUncaught Error: boom\r\n    at :1:24\r\n\r\n' +
  '                       ^\r\n>\r\x1b[Jdone\r\n>';

describe('cleanEspruinoOutput', () => {
  it('drops the banner and prompt noise and normalises line ends, keeping program output', () => {
    expect(cleanEspruinoOutput(RAW)).toBe(
      'hi\n>x\nUncaught Error: boom\n    at :1:24\n\n                       ^\ndone\n',
    );
  });

  it('leaves output without a banner alone apart from line ends', () => {
    expect(cleanEspruinoOutput('a\r\nb\r\n')).toBe('a\nb\n');
  });
});

const skipReason = espruinoSkipReason();
if (skipReason) console.log('skipped: ' + skipReason);

describe.skipIf(skipReason !== undefined)('runOnEspruino (ESPRUINO_BIN)', () => {
  it('collects output, reports an uncaught error in a callback, and exits 0 after quit()', async () => {
    const r = await runOnEspruino(
      'console.log("start");' +
        'setTimeout(function(){ null.x; }, 5);' +
        'setTimeout(function(){ console.log("end"); quit(); }, 30);',
      { timeoutMs: 10_000 },
    );
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.startsWith('start\n')).toBe(true);
    expect(r.stdout).toContain('\nend\n');
    expect(r.uncaught.length).toBe(1);
    expect(r.uncaught[0]).toContain("Can't read property 'x' of null");
  });

  it('exits 1 on an uncaught error at top level', async () => {
    const r = await runOnEspruino('console.log("a"); notDefinedAnywhere();', { timeoutMs: 10_000 });
    expect(r.exitCode).toBe(1);
    expect(r.uncaught.some((l) => l.includes('notDefinedAnywhere'))).toBe(true);
  });

  it('kills a program that never ends at timeoutMs', async () => {
    const r = await runOnEspruino('setInterval(function(){}, 1000); console.log("running");', { timeoutMs: 800 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(null);
    expect(r.stdout).toBe('running\n');
  });

  it('keeps Storage in espruino.flash in the given cwd, across runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wren-flash-'));
    try {
      const w = await runOnEspruino('require("Storage").write("wren-k", "v1");', { timeoutMs: 10_000, cwd: dir });
      expect(w.exitCode).toBe(0);
      expect(existsSync(join(dir, 'espruino.flash'))).toBe(true);
      const r = await runOnEspruino('console.log(require("Storage").read("wren-k"));', { timeoutMs: 10_000, cwd: dir });
      expect(r.stdout).toBe('v1\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
