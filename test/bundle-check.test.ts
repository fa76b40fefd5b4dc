// tools/bundle-check.mjs: every rule flags what Espruino cannot run, and leaves alone what only looks
// like it (property names, object keys, strings, comments, locals, calls that run after the
// declaration). Then the same on real esbuild output, with positions mapped back to the TypeScript,
// the CLI, and the real codec bundle.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';

interface Finding {
  rule: string;
  message: string;
  line: number;
  column: number;
  snippet: string;
  source?: { file: string; line: number; column: number };
}
interface BundleCheckModule {
  checkBundle(js: string, options?: { fileName?: string; sourceMap?: unknown; globals?: string[] }): Finding[];
  RULES: Record<string, string>;
}
interface BuildModule {
  buildBundles(opts: { only?: string[]; write?: boolean }): Promise<{
    ok: boolean;
    results: Array<{ name: string; text: string; errors: string[]; findings: Finding[] }>;
  }>;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = join(ROOT, 'test/fixtures/bundle-check');
// tools/*.mjs are plain JavaScript (tsconfig has no allowJs): load them with a typed dynamic import.
const { checkBundle, RULES } = (await import(
  new URL('../tools/bundle-check.mjs', import.meta.url).href
)) as BundleCheckModule;
const { espruinoBuildOptions } = (await import(
  new URL('../tools/esbuild-espruino.mjs', import.meta.url).href
)) as { espruinoBuildOptions(): esbuild.BuildOptions };

/** The interpreter globals the global-clobber snippets use (a device build passes globalNames()). */
const GLOBALS = ['ESP32', 'D16', 'LED1'];
const rulesOf = (js: string): string[] => checkBundle(js, { globals: GLOBALS }).map((f) => f.rule);

/** [rule, snippet]: the snippet must produce (at least) a finding of that rule. */
const MUST_FLAG: Array<[string, string]> = [
  ['parse-error', 'var = ;'],
  ['parse-error', 'export const a = 1;'],
  ['unsupported-global', 'var m = new Map();'],
  ['unsupported-global', 'var s = new Set([1]);'],
  ['unsupported-global', 'var w = new WeakMap();'],
  ['unsupported-global', 'var w = new WeakSet();'],
  ['unsupported-global', 'var it = Symbol.iterator;'],
  ['unsupported-global', 'var e = new TextEncoder();'],
  ['unsupported-global', 'var d = new TextDecoder("utf-8");'],
  ['unsupported-global', 'var b = BigInt(1);'],
  ['unsupported-global', 'var p = new Proxy({}, {});'],
  ['unsupported-global', 'Reflect.ownKeys(o);'],
  ['unsupported-global', 'var M = globalThis.Map;'],
  ['unsupported-global', '(()=>{function f(){return new Set}f()})();'],
  ['unsupported-global', 'function f(x){ return x instanceof Map }'],
  ['unsupported-static', 'var a = Array.from(x);'],
  ['unsupported-static', 'var a = Array.of(1, 2);'],
  ['unsupported-static', 'var u = Uint8Array.from([1, 2]);'],
  ['unsupported-static', 'var u = Uint16Array.of(1);'],
  ['unsupported-static', 'var f = Float32Array.from(x);'],
  ['unsupported-static', 'var u = Uint8Array["from"](x);'],
  ['unsupported-static', 'Object.freeze(o);'],
  ['unsupported-static', 'Promise.race([a, b]);'],
  ['unsupported-static', 'Promise.allSettled([a]);'],
  ['unsupported-static', 'var i = Number.isInteger(n);'],
  ['unsupported-static', 'var i = Math.imul(a, b);'],
  ['unsupported-static', 'var i = Math.trunc(a);'],
  ['builtin-prototype', 'var s = Array.prototype.slice.call(a, 1);'],
  ['builtin-prototype', 'var c = String.prototype.charCodeAt.call(s, 0);'],
  ['builtin-prototype', 'var c = Function.prototype.call;'],
  ['promise-finally', 'p.then(f).finally(g);'],
  ['promise-finally', 'p["finally"](g);'],
  ['async-function', 'async function f() {}'],
  ['async-function', 'var f = async () => 1;'],
  ['async-function', 'var o = { async m() {} };'],
  ['await', 'async function f() { await g(); }'],
  ['for-await', 'async function f(a) { for await (var x of a) {} }'],
  ['generator', 'function* g() {}'],
  ['generator', 'var o = { *g() { yield 1; } };'],
  ['class-self-reference', 'var X = class _X { static make() { return new _X(); } };'],
  ['class-self-reference', 'class X { static make() { return new X(); } }'],
  ['class-self-reference', 'class X { m() { return function () { return X; }; } }'],
  ['class-extends-error', 'class E extends Error {}'],
  ['class-extends-error', 'var E = class extends TypeError {};'],
  ['class-field', 'class A { x = 1; }'],
  ['private-member', 'class A { #x; m() { return this.#x; } }'],
  ['class-static-block', 'class A { static { init(); } }'],
  ['exponent-operator', 'var y = x ** 2;'],
  ['exponent-operator', 'x **= 2;'],
  ['optional-chaining', 'var y = a?.b;'],
  ['optional-chaining', 'var y = a.f?.();'],
  ['labelled-statement', 'outer: for (;;) { for (;;) { break outer; } }'],
  ['unicode-code-point-escape', 'var s = "\\u{1F600}";'],
  ['unicode-code-point-escape', 'var s = `a\\u{41}`;'],
  ['unicode-code-point-escape', 'var r = /\\u{41}/u;'],
  ['unicode-code-point-escape', 'var \\u{61}b = 1;'],
  ['destructuring', 'var { a } = o;'],
  ['destructuring', 'var [a, b] = o;'],
  ['destructuring', '[a, b] = [b, a];'],
  ['destructuring', 'function f({ a }) { return a; }'],
  ['default-parameter', 'function f(a = 1) { return a; }'],
  ['rest-parameter', 'function f(...a) { return a; }'],
  ['spread', 'f(...a);'],
  ['spread', 'var b = [...a];'],
  ['spread', 'var o = { ...a };'],
  ['computed-key', 'var o = { [k]: 1 };'],
  ['computed-key', 'class A { [k]() {} }'],
  ['tagged-template', 'var s = tag`x`;'],
  ['new-target', 'function F() { return new.target; }'],
  ['bigint', 'var b = 1n;'],
  ['strict-mode', '"use strict"; var a = 1;'],
  ['strict-mode', 'function f() { "use strict"; }'],
  ['loop-closure', 'for (let i = 0; i < 3; i++) setTimeout(function () { log(i); }, 0);'],
  ['loop-closure', 'for (let i = 0; i < 3; i++) handlers.push(() => i);'],
  // Hoisting: a function used before its declaration has run.
  ['global-clobber', 'var LED1 = 1;'],
  ['global-clobber', 'function ESP32() {}'],
  ['global-clobber', 'var a = 1, D16 = 2;'],
  ['global-clobber', 'var Q = class {}; let LED1 = 2;'],
  ['hoisting', 'f(); function f() {}'],
  ['hoisting', 'var x = f; function f() {}'],
  ['hoisting', '(() => { var a = g(); function g() { return 1; } })();'],
  ['hoisting', '(function () { g(); function g() {} })();'],
  ['hoisting', 'function a() { return b(); } a(); function b() {}'],
  ['hoisting', 'function onData() { go(); function go() {} }'],
  ['hoisting', 'function f() { return inner(); function inner() { return 1; } }'],
  ['hoisting', '[1, 2].forEach(function () { g(); }); function g() {}'],
  ['hoisting', 'new Promise(function (resolve) { g(); }); function g() {}'],
  ['hoisting', 'var T = class { constructor() { g(); } }; new T(); function g() {}'],
  ['hoisting', 'var cb = function () { g(); }; cb(); function g() {}'],
];

/** Snippets that must produce no finding at all. */
const MUST_PASS: string[] = [
  'var a = obj.Map; obj.Set = 1; obj.Symbol(); x.TextEncoder;',
  'var o = { Map: 1, Set: 2, Symbol: 3, WeakMap: 4, from: 5, freeze: 6 };',
  'var o = { Map() {}, get Set() { return 1; } };',
  'class A { Map() {} static Set() {} finally() {} }',
  'var s = "new Map() Array.from(x) async function f(){} a ** b \\\\u{41}";',
  "var s = 'Symbol.iterator; Object.freeze(o)';",
  '// new Map(); Array.from(x); f(); function f(){}\nvar a = 1;',
  '/* new Set(); a?.b; async () => 1 */ var a = 1;',
  'var t = `Map ${a} Set`;',
  'function f(Map) { return new Map(); }',
  'var Symbol = { iterator: 1 }; var i = Symbol.iterator;',
  '(() => { let Set = function () {}; new Set(); })();',
  'try { a(); } catch (Map) { Map.x; }',
  'var x = a.from(b); var y = foo.Array.from(z); var z = Object.keys(o); var w = Math.floor(1);',
  'var y = Math.pow(x, 2); var s = String.fromCharCode.apply(null, bytes); var c = [].slice.call(a, 1);',
  'p.then(f).catch(g); Promise.all([a]); Promise.resolve(1);',
  'try { a(); } finally { b(); }',
  'if (typeof Map !== "undefined") { x = 1; } var t = typeof Symbol;',
  'var e = new Error("x"); class E { constructor(m) { this.message = m; } }',
  'var X = class { static make() { return new this(); } }; var Y = class { m() { return X; } };',
  'class X { static make() { return new this(); } m() { return this.constructor; } }',
  'var s = "\\u0041\\x41";',
  'for (let i = 0; i < 3; i++) { log(i); }',
  'for (let i = 0; i < 3; i++) { [1].forEach(function (x) { log(i + x); }); }',
  'for (var i = 0; i < 3; i++) setTimeout(function () { log(i); }, 0);',
  'for (const x of xs) setTimeout(function () { log(x); }, 0);',
  'var u = x.subarray(1, 2); var v = new Uint8Array(u); var o = Object.assign({}, a);',
  // Hoisting: nothing runs before the declaration.
  'function f() {} f();',
  'function f() { return g(); } function g() { return 1; } f();',
  '(() => { function g() {} g(); })();',
  'var cb = function () { g(); }; function g() {} cb();',
  'setTimeout(function () { g(); }, 10); function g() {}',
  'on("data", () => g()); function g() {}',
  'var o = { m: function () { return g(); } }; function g() { return 1; } o.m();',
  'var T = class { constructor() { g(); } }; function g() {} new T();',
  'function outer() { function inner() {} return inner(); }',
  'var f = function () { return f; };',
];

describe('bundle check rules', () => {
  it.each(MUST_FLAG)('flags %s in %s', (rule, js) => {
    expect(rulesOf(js)).toContain(rule);
  });

  it.each(MUST_PASS.map((js) => [js]))('does not flag %s', (js) => {
    expect(checkBundle(js, { globals: GLOBALS })).toEqual([]);
  });

  it('global-clobber: only the top level, and only when the bundle runs at the global scope', () => {
    expect(checkBundle('(function () { var LED1 = 1; })(); function f(ESP32) { var D16 = ESP32; return D16; } f(1);', { globals: GLOBALS })).toEqual([]);
    expect(checkBundle('var ESP32 = 1;')).toEqual([]);
    const f = checkBundle('var a = 1;\nvar ESP32 = 2;', { globals: GLOBALS });
    expect(f.map((x) => [x.rule, x.line, x.message])).toEqual([['global-clobber', 2, expect.stringContaining(': ESP32')]]);
  });

  it('has at least one must-flag snippet for every rule it defines', () => {
    const covered = new Set(MUST_FLAG.map(([rule]) => rule));
    expect(Object.keys(RULES).filter((r) => !covered.has(r))).toEqual([]);
  });

  it('reports rule, message, line, 1-based column and a snippet', () => {
    const findings = checkBundle('var a = 1;\nvar m = new Map();\n', { fileName: 'x.js' });
    expect(findings).toHaveLength(1);
    const f = findings[0];
    expect(f.rule).toBe('unsupported-global');
    expect(f.message).toContain('Map');
    expect(f.line).toBe(2);
    expect(f.column).toBe(13);
    expect(f.snippet).toContain('new Map()');
  });

  it('names the declaration and, for code reached by a call, the call', () => {
    const [f] = checkBundle('function a() {\n  return b();\n}\na();\nfunction b() {}\n');
    expect(f.rule).toBe('hoisting');
    expect([f.line, f.column]).toEqual([2, 10]);
    expect(f.message).toContain('"b"');
    expect(f.message).toContain('declaration at 5:10');
    expect(f.message).toContain('call at 4:1');
  });

  it('finds several problems in one bundle, in source order', () => {
    const rules = rulesOf('var a = Array.from(x);\nvar m = new Map();\np.finally(f);\n');
    expect(rules).toEqual(['unsupported-static', 'unsupported-global', 'promise-finally']);
  });
});

describe('bundle check on esbuild output', () => {
  async function bundle(entry: string): Promise<{ text: string; map: string }> {
    const result = await esbuild.build({
      ...espruinoBuildOptions(),
      entryPoints: [entry],
      minify: true,
      write: false,
      outfile: join(ROOT, 'dist-test/out.js'),
      sourcemap: 'external',
      absWorkingDir: ROOT,
    });
    const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
    const map = result.outputFiles.find((f) => f.path.endsWith('.map'));
    if (!js || !map) throw new Error('esbuild wrote no output');
    return { text: js.text, map: map.text };
  }

  it('finds each marked line of a TypeScript fixture and maps it back to the source', async () => {
    const { text, map } = await bundle(join(FIXTURES, 'uses-map.ts'));
    const findings = checkBundle(text, { fileName: 'out.js', sourceMap: JSON.parse(map) });
    expect(findings.map((f) => f.rule).sort()).toEqual(
      ['class-self-reference', 'hoisting', 'unsupported-global', 'unsupported-static'].sort(),
    );
    // The fixture marks each expected finding with "// FINDING <rule>" on its line.
    const { readFileSync } = await import('node:fs');
    const source = readFileSync(join(FIXTURES, 'uses-map.ts'), 'utf8').split('\n');
    for (const f of findings) {
      expect(f.source, f.rule).toBeDefined();
      expect(f.source!.file).toMatch(/uses-map\.ts$/);
      expect(source[f.source!.line - 1], f.rule).toContain('// FINDING ' + f.rule);
    }
  });

  it('passes a TypeScript fixture written in the Espruino subset', async () => {
    const { text } = await bundle(join(FIXTURES, 'clean.ts'));
    expect(checkBundle(text)).toEqual([]);
  });

  it('passes the real codec bundle (firmware/mqtt/index.ts, every export)', async () => {
    expect(existsSync(join(ROOT, 'firmware/mqtt/index.ts'))).toBe(true);
    const { buildBundles } = (await import(new URL('../build.mjs', import.meta.url).href)) as BuildModule;
    const out = await buildBundles({ only: ['codec'], write: false });
    const codec = out.results[0];
    expect(codec.errors).toEqual([]);
    expect(codec.text.length).toBeGreaterThan(1000);
    expect(codec.findings).toEqual([]);
    expect(checkBundle(codec.text)).toEqual([]);
  });
});

describe('bundle-check CLI', () => {
  const cli = join(ROOT, 'tools/bundle-check.mjs');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [cli, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });

  it('prints each finding with file, line, column and rule, and exits 1', () => {
    const r = run(join(FIXTURES, 'bad.js'));
    expect(r.status).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/bad\.js:3:13: \[unsupported-global\]/);
    expect(lines[1]).toMatch(/bad\.js:4:9: \[unsupported-static\]/);
    expect(lines[2]).toMatch(/bad\.js:5:1: \[hoisting\]/);
  });

  it('exits 0 on a clean file', () => {
    const r = run(join(FIXTURES, 'clean.js'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('prints JSON with --json', () => {
    const r = run('--json', join(FIXTURES, 'bad.js'));
    expect(r.status).toBe(1);
    const parsed = JSON.parse(r.stdout) as Array<{ file: string; findings: Finding[] }>;
    expect(parsed[0].findings.map((f) => f.rule)).toEqual(['unsupported-global', 'unsupported-static', 'hoisting']);
  });

  it('exits 2 with one line on stderr for a usage error or a missing file', () => {
    for (const args of [[], ['--nope', 'x.js'], [join(FIXTURES, 'does-not-exist.js')]]) {
      const r = run(...args);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
