// tools/espruino-run.ts: output cleaning always; real runs when ESPRUINO_BIN points to an Espruino
// Linux interpreter (skipped with a printed reason otherwise).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanEspruinoOutput, EspruinoLineSplitter, espruinoSkipReason, runOnEspruino } from '../../tools/espruino-run';

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

describe('EspruinoLineSplitter', () => {
  /** Lines of cleanEspruinoOutput(raw), the last one included even without a newline. */
  const expectedLines = (raw: string) => {
    const s = cleanEspruinoOutput(raw);
    return s.split('\n').slice(0, s.endsWith('\n') ? -1 : undefined);
  };
  const split = (raw: string, sizes: number[]) => {
    const lines: string[] = [];
    const sp = new EspruinoLineSplitter((l) => lines.push(l));
    let at = 0;
    for (let i = 0; at < raw.length; i++) {
      const n = sizes[i % sizes.length];
      sp.push(raw.slice(at, at + n));
      at += n;
    }
    sp.end();
    return lines;
  };

  it('gives the lines cleanEspruinoOutput gives, whatever the chunk boundaries', () => {
    const want = expectedLines(RAW);
    expect(want[0]).toBe('hi');
    for (const sizes of [[RAW.length], [1], [2, 3], [7], [64, 1, 5], [300, 2]]) {
      expect(split(RAW, sizes), 'chunks ' + sizes.join(',')).toEqual(want);
    }
  });

  it('delivers a line as soon as it is complete', () => {
    const lines: string[] = [];
    const sp = new EspruinoLineSplitter((l) => lines.push(l));
    const bannerEnd = RAW.indexOf('hi\r\n');
    sp.push(RAW.slice(0, bannerEnd) + 'hi\r');
    expect(lines).toEqual([]);
    sp.push('\nsecond');
    expect(lines).toEqual(['hi']);
    sp.end();
    expect(lines).toEqual(['hi', 'second']);
  });

  it('keeps a later banner (a load() restart) and handles output without a banner', () => {
    const twice = RAW.replace('done\r\n>', 'done\r\n') + RAW.slice(0, RAW.indexOf('hi\r\n')) + 'again\r\n>';
    expect(split(twice, [5, 11])).toEqual(expectedLines(twice));
    expect(split(twice, [5, 11])).toContain('again');
    expect(split('a\r\n>\r\x1b[Jb\r\n>', [1])).toEqual(['a', 'b']);
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

  it('calls onLine with each line while the program runs, and stops on an aborted signal', async () => {
    const seen: Array<{ line: string; at: number }> = [];
    const ac = new AbortController();
    const t0 = Date.now();
    const r = await runOnEspruino(
      'console.log("one"); var n = 0; setInterval(function(){ n++; console.log("tick " + n); }, 100);',
      {
        timeoutMs: 10_000,
        signal: ac.signal,
        onLine: (line) => {
          seen.push({ line, at: Date.now() - t0 });
          if (line === 'tick 3') ac.abort();
        },
      },
    );
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(null);
    expect(seen.slice(0, 4).map((s) => s.line)).toEqual(['one', 'tick 1', 'tick 2', 'tick 3']);
    // The same lines as stdout, and they arrived while it ran (ticks 100 ms apart, not all at the end).
    expect(seen.map((s) => s.line)).toEqual(r.stdout.split('\n').slice(0, -1));
    expect(seen[3].at - seen[1].at).toBeGreaterThanOrEqual(150);
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
