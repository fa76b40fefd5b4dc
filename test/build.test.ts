// build.mjs: the Espruino bundles, their size report and budgets, and the esbuild settings that turn
// syntax Espruino lacks into build errors (what esbuild lowers instead is left to the bundle check).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import * as acorn from 'acorn';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Finding {
  rule: string;
  line: number;
  column: number;
  source?: { file: string; line: number; column: number };
}
interface BundleSpec {
  name: string;
  entry: string;
  budgetBytes: number;
  exposeAs?: string;
}
interface BundleResult {
  name: string;
  outfile: string;
  bytes: number;
  gzipBytes: number;
  budgetBytes: number;
  overBudget: boolean;
  findings: Finding[];
  errors: string[];
  text: string;
}
interface BuildModule {
  buildBundles(opts: {
    bundles?: BundleSpec[];
    only?: string[];
    outDir?: string;
    write?: boolean;
    budgets?: Record<string, number>;
  }): Promise<{ ok: boolean; results: BundleResult[]; report: string; problems: string[] }>;
  BUNDLES: BundleSpec[];
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = 'test/fixtures/bundle-check';
const CODEC_BUDGET = 10240;
// build.mjs and tools/*.mjs are plain JavaScript (tsconfig has no allowJs): typed dynamic imports.
const { buildBundles, BUNDLES, globalsModule } = (await import(new URL('../build.mjs', import.meta.url).href)) as BuildModule & {
  globalsModule(globals: Record<string, unknown>): string;
};
const { espruinoBuildOptions, globalNames, reservedNames, DATA_NAMES } = (await import(
  new URL('../tools/esbuild-espruino.mjs', import.meta.url).href
)) as {
  espruinoBuildOptions(): esbuild.BuildOptions;
  globalNames(): string[];
  reservedNames(): Set<string>;
  DATA_NAMES: string[];
};
const { checkBundle } = (await import(new URL('../tools/bundle-check.mjs', import.meta.url).href)) as {
  checkBundle(js: string): Finding[];
};

const tmpDirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'wren-build-'));
  tmpDirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

const runBuild = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, 'build.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

/** `npm run build -- --board FILE` (build.mjs under tsx) into a fresh output directory. */
const buildBoard = (board: string, ...args: string[]) => {
  const out = tmp();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'build.mjs'), '--board', board, '--out-dir', out, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { out, r };
};

/** The host board's build, made once for the tests that read it. */
let host: ReturnType<typeof buildBoard> | undefined;
const hostBuild = () => host || (host = buildBoard('board.json'));

/** The report row of one bundle: name, minified, gzip, budget, status, check. */
function reportRow(report: string, name: string): string[] {
  const line = report.split('\n').find((l) => l.split(/\s+/)[0] === name);
  if (!line) throw new Error('no row for ' + name + ' in:\n' + report);
  return line.trim().split(/\s{2,}/);
}

describe('node build.mjs', () => {
  // One real run of the CLI with its defaults (dist/), shared by the tests below.
  let cli: ReturnType<typeof runBuild>;
  beforeAll(() => {
    cli = runBuild();
  });

  it('writes dist/codec.js and its source map, and prints the codec row of the size report', () => {
    expect(cli.error).toBeUndefined();
    expect(existsSync(join(ROOT, 'dist/codec.js'))).toBe(true);
    expect(existsSync(join(ROOT, 'dist/codec.js.map'))).toBe(true);
    const header = cli.stdout.split('\n')[0].trim().split(/\s+/);
    expect(header).toEqual(['bundle', 'minified', 'gzip', 'budget', 'status', 'check']);
    const [name, minified, gzip, budget, status, check] = reportRow(cli.stdout, 'codec');
    expect(name).toBe('codec');
    expect(Number(minified)).toBe(readFileSync(join(ROOT, 'dist/codec.js')).length);
    expect(Number(gzip)).toBeGreaterThan(0);
    expect(Number(gzip)).toBeLessThan(Number(minified));
    expect(Number(budget)).toBe(CODEC_BUDGET);
    expect(['OK', 'OVER']).toContain(status);
    expect(check).toBe('clean');
  });

  it('keeps the codec (both versions, every export) within 10 KB minified, and exits 0', () => {
    const [, minified, , , status] = reportRow(cli.stdout, 'codec');
    expect(Number(minified)).toBeLessThanOrEqual(CODEC_BUDGET);
    expect(status).toBe('OK');
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);
  });

  it('exposes the codec API from the bundle as the global wrenMqtt', () => {
    const sandbox: Record<string, unknown> = {};
    runInNewContext(readFileSync(join(ROOT, 'dist/codec.js'), 'utf8'), sandbox, { timeout: 5000 });
    const api = sandbox.wrenMqtt as {
      encode(p: { type: number }, v: number): Uint8Array;
      createDecoder(v: number, max: number): { push(b: Uint8Array): Array<{ type: number }> };
      ProtocolError: unknown;
    };
    expect(typeof api.ProtocolError).toBe('function');
    expect(Array.from(api.encode({ type: 12 }, 4))).toEqual([0xc0, 0x00]); // PINGREQ
    const decoder = api.createDecoder(5, 1024);
    expect(decoder.push(new Uint8Array([0xd0, 0x00])).map((p) => p.type)).toEqual([13]); // PINGRESP
  });

  it('prints usage with --help and exits 0', () => {
    const r = runBuild('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: node build\.mjs/);
    expect(r.stdout).toContain('--board');
  });

  it('exits 2 with one line on stderr for usage errors', () => {
    for (const args of [['--bogus'], ['--only', 'no-such-bundle']]) {
      const r = runBuild(...args);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
  });

  it('--board builds the device bundle, prints its size against the 32 KB budget, and names the file', () => {
    const { out, r } = hostBuild();
    expect(r.status).toBe(0);
    const row = reportRow(r.stdout, 'desk-1');
    expect(Number(row[1])).toBeGreaterThan(1000);
    expect(Number(row[1])).toBeLessThanOrEqual(32768);
    expect(row[3]).toBe('32768');
    expect(row[4]).toBe('OK');
    expect(row[5]).toBe('clean');
    expect(r.stdout).toContain('wrote ');
    const js = readFileSync(join(out, 'desk-1.js'), 'utf8');
    expect(js).toContain('desk-1'); // the board is compiled in
    expect(js).not.toContain('AT+CIPSTART'); // a host board carries no modem driver
  });

  it('--board: a program at the global scope, property names shortened, interpreter and data names kept', () => {
    const { out, r } = hostBuild();
    expect(r.status).toBe(0);
    const js = readFileSync(join(out, 'desk-1.js'), 'utf8');
    // Not wrapped in a function (a function at the top level costs one JsVar less on Espruino).
    expect(js.startsWith('(()=>{')).toBe(false);
    expect(js.startsWith('(function')).toBe(false);
    // Names the firmware owns are gone (one from the client, one from the session, one from the board) ...
    for (const own of ['pingTimeoutMs', 'nextQueued', 'maxInflight']) expect(js).not.toContain('.' + own);
    // ... names Espruino owns, names read from strings and persisted names stay.
    for (const kept of ['.toUint8Array(', '.CRC32(', 'keepAliveSec', 'sleepLeftMs:', '.require(']) expect(js).toContain(kept);
    // No top-level name takes an interpreter global.
    const ast = acorn.parse(js, { ecmaVersion: 'latest', sourceType: 'script' }) as unknown as { body: Array<{ type: string; id?: { name: string }; declarations?: Array<{ id: { name: string } }> }> };
    const top = ast.body.flatMap((st) => (st.declarations ? st.declarations.map((d) => d.id.name) : st.id ? [st.id.name] : []));
    expect(top.length).toBeGreaterThan(50);
    const globals = new Set(globalNames());
    expect(globals.has('E') && globals.has('ESP32') && globals.has('D16')).toBe(true);
    expect(top.filter((n) => globals.has(n))).toEqual([]);
  });

  it('compiles the board in once: a long string used twice (the CA of both brokers) is one variable', () => {
    const long = 'x'.repeat(80);
    const src = globalsModule({ WREN_BOARD: { brokers: [{ host: 'a', tls: { ca: long } }, { host: 'b', tls: { ca: long } }], 'not-ident': 1, s: 'short' } });
    expect(src.split(long).length - 1).toBe(1);
    const run = new Function(src.replace(/export var /g, 'var ') + '; return WREN_BOARD;') as () => { brokers: Array<{ tls: { ca: string } }> };
    const b = run();
    expect(b.brokers[1].tls.ca).toBe(long);
    expect(b).toMatchObject({ 'not-ident': 1, s: 'short' });
    expect(src).toContain('{brokers:[{host:"a"');
  });

  it('the device build keeps every MQTT 5 property name (the codec reads them from its string table)', () => {
    const codec = readFileSync(join(ROOT, 'firmware/mqtt/codec.ts'), 'utf8');
    const table = /const PROPS =([\s\S]*?),';/.exec(codec);
    expect(table).not.toBeNull();
    const names = [...(table as RegExpExecArray)[1].matchAll(/[0-9a-f]{4}([A-Za-z]+)(?=[,']|$)/g)].map((m) => m[1]);
    expect(names.length).toBe(27);
    const reserved = reservedNames();
    expect(names.filter((n) => !DATA_NAMES.includes(n) || !reserved.has(n))).toEqual([]);
  });

  it('--board refuses a bad board.json naming every problem, and builds nothing', () => {
    const dir = tmp();
    const f = join(dir, 'bad.json');
    writeFileSync(f, JSON.stringify({ device: 'x', brokers: [{ host: 'h', port: 0 }], mqtt: { password: '$secret:NOPE' }, transport: { type: 'wifi' } }));
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'build.mjs'), '--board', f, '--out-dir', dir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(1);
    for (const want of ['clientId: missing', 'brokers[0].port: 0 is out of range', 'secret NOPE not found', 'transport.ssid: missing']) expect(r.stderr).toContain(want);
    expect(existsSync(join(dir, 'x.js'))).toBe(false);
  });
});

describe('buildBundles()', () => {
  it('lists the codec bundle with its 10 KB budget', () => {
    expect(BUNDLES.find((b) => b.name === 'codec')).toMatchObject({
      entry: 'firmware/mqtt/index.ts',
      budgetBytes: CODEC_BUDGET,
    });
  });

  it('writes the bundle to the output directory and measures it', async () => {
    const outDir = tmp();
    const out = await buildBundles({ only: ['codec'], outDir });
    const codec = out.results[0];
    expect(codec.errors).toEqual([]);
    const written = readFileSync(join(outDir, 'codec.js'), 'utf8');
    expect(written).toBe(codec.text);
    expect(codec.bytes).toBe(Buffer.byteLength(written));
    expect(written.startsWith('var wrenMqtt;')).toBe(true);
    expect(written).not.toContain('use strict');
    expect(reportRow(out.report, 'codec')[1]).toBe(String(codec.bytes));
  });

  it('fails a bundle over its budget and says so', async () => {
    const out = await buildBundles({ only: ['codec'], write: false, budgets: { codec: 1000 } });
    expect(out.ok).toBe(false);
    expect(out.results[0].overBudget).toBe(true);
    expect(reportRow(out.report, 'codec')[4]).toBe('OVER');
    expect(out.problems.some((p) => p.includes('over its budget of 1000'))).toBe(true);
  });

  it('fails a bundle the check finds problems in, pointing at the TypeScript lines', async () => {
    const out = await buildBundles({
      bundles: [{ name: 'uses-map', entry: FIXTURES + '/uses-map.ts', budgetBytes: 100_000 }],
      write: false,
    });
    expect(out.ok).toBe(false);
    const r = out.results[0];
    expect(r.errors).toEqual([]);
    expect(r.overBudget).toBe(false);
    expect(r.findings.map((f) => f.rule).sort()).toEqual(
      ['class-self-reference', 'hoisting', 'unsupported-global', 'unsupported-static'],
    );
    expect(reportRow(out.report, 'uses-map')[5]).toBe('4 finding(s)');
    const mapLine = out.problems.find((p) => p.includes('[unsupported-global]'));
    expect(mapLine).toContain('test/fixtures/bundle-check/uses-map.ts:5:');
    expect(out.problems.every((p) => !p.includes('\n'))).toBe(true);
  });

  it('builds a clean program bundle within budget', async () => {
    const out = await buildBundles({
      bundles: [{ name: 'clean', entry: FIXTURES + '/clean.ts', budgetBytes: 10_000 }],
      write: false,
    });
    expect(out.problems).toEqual([]);
    expect(out.ok).toBe(true);
    expect(reportRow(out.report, 'clean')[4]).toBe('OK');
  });

  it('fails clearly, in one line, when an entry is missing', async () => {
    const out = await buildBundles({
      bundles: [{ name: 'ghost', entry: 'firmware/ghost/index.ts', budgetBytes: 1000 }],
      write: false,
    });
    expect(out.ok).toBe(false);
    expect(out.results[0].errors).toEqual(['entry not found: firmware/ghost/index.ts']);
    expect(out.problems).toEqual(['build: ghost: entry not found: firmware/ghost/index.ts']);
    expect(reportRow(out.report, 'ghost')[4]).toBe('FAILED');
  });

  it('turns an esbuild error into one line per message with the file and position', async () => {
    const dir = tmp();
    const entry = join(dir, 'bad.ts');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(entry, 'export function f(o: { a: number }) {\n  const { a } = o;\n  return a;\n}\n');
    const out = await buildBundles({ bundles: [{ name: 'bad', entry, budgetBytes: 1000 }], write: false });
    expect(out.ok).toBe(false);
    expect(out.problems).toHaveLength(1);
    expect(out.problems[0]).toMatch(/^build: bad: .*bad\.ts:2:\d+: Transforming destructuring/);
  });
});

describe('esbuild with espruinoBuildOptions()', () => {
  const bundle = (contents: string) =>
    esbuild.build({
      ...espruinoBuildOptions(),
      stdin: { contents, loader: 'ts', resolveDir: ROOT, sourcefile: 'case.ts' },
      write: false,
      minify: true,
    });

  const REFUSED: Array<[string, string, RegExp]> = [
    ['object destructuring', 'export function f(o: { a: number }) { const { a } = o; return a; }', /destructuring/],
    ['array destructuring', 'export function f(o: number[]) { const [a] = o; return a; }', /destructuring/],
    ['parameter destructuring', 'export function f({ a }: { a: number }) { return a; }', /destructuring/],
    ['for-of destructuring', 'export function f(o: number[][]) { for (const [a] of o) return a; }', /destructuring/],
    ['default parameters', 'export function f(a = 1) { return a; }', /default arguments/],
    ['rest parameters', 'export function f(...a: number[]) { return a; }', /rest arguments/],
    ['spread in a call', 'export function f(a: number[]) { return Math.max(...a); }', /rest arguments|spread/],
    ['array spread', 'export function f(a: number[]) { return [...a]; }', /array spread/],
    ['async function', 'export async function f() { return 1; }', /async functions/],
    ['async arrow', 'export const f = async () => 1;', /async functions/],
    ['generator', 'export function* g() { yield 1; }', /generator functions/],
    ['async generator', 'export async function* g() { yield 1; }', /async generator/],
    ['for await', 'export async function f(a: AsyncIterable<number>) { for await (const x of a) return x; }', /for-await|async/],
    ['new.target', 'export function F() { return new.target; }', /new\.target/],
  ];

  it.each(REFUSED)('refuses %s', async (_what, contents, message) => {
    const err = await bundle(contents).then(
      () => null,
      (e: { errors?: Array<{ text: string }> }) => e,
    );
    expect(err, 'esbuild accepted it').not.toBeNull();
    expect(err!.errors!.map((m) => m.text).join('\n')).toMatch(message);
  });

  it('lowers ** and ?. to code Espruino runs', async () => {
    const result = await bundle('export const f = (a: any, n: number) => a?.b ** n;');
    const text = result.outputFiles[0].text;
    expect(text).toContain('Math.pow');
    expect(checkBundle(text)).toEqual([]);
  });

  it('does not emit "use strict" although tsconfig is strict', async () => {
    const result = await bundle('export const a = 1;');
    expect(result.outputFiles[0].text).not.toContain('use strict');
  });

  // esbuild lowers these instead of refusing them, to helpers built on globals Espruino lacks:
  // the bundle check is what stops them.
  const LOWERED: Array<[string, string, string]> = [
    ['#private fields (lowered to WeakMap)', 'export class A { #x = 1; get() { return this.#x; } }', 'unsupported-global'],
    ['BigInt literals (lowered to BigInt())', 'export const b = 10n;', 'unsupported-global'],
  ];
  it.each(LOWERED)('builds %s, and the bundle check rejects it', async (_what, contents, rule) => {
    const result = await bundle(contents);
    expect(checkBundle(result.outputFiles[0].text).map((f) => f.rule)).toContain(rule);
  });
});
