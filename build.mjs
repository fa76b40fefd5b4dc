#!/usr/bin/env node
// wren build: esbuild bundles for the Espruino interpreter, each checked and measured.
//
// For every bundle: esbuild (the shared options in tools/esbuild-espruino.mjs, so syntax Espruino
// lacks is a build error) + minify -> tools/bundle-check.mjs on the output (what esbuild cannot see:
// Map, Array.from, hoisting, ...) -> dist/<name>.js and dist/<name>.js.map -> one row in the size
// report (minified bytes, gzip bytes for information, budget, OK/OVER). The build fails (exit 1)
// when a bundle does not build, the check finds anything, or a bundle is over its budget.
//
//   node build.mjs                   all bundles in BUNDLES
//   node build.mjs --only codec      just the named bundle(s)
//   node --import tsx build.mjs --board boards/wifi-sensor.json   a device bundle (reads TypeScript config)
//   node build.mjs --help
//
// Adding a bundle: append a BundleSpec to BUNDLES (or return one from a function like
// boardBundle below). Device firmware bundles per board.json will come from boardBundle().

import * as esbuild from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { checkBundle, formatFinding } from './tools/bundle-check.mjs';
import { deviceProgram, espruinoBuildOptions, globalNames } from './tools/esbuild-espruino.mjs';

export const ROOT = dirname(fileURLToPath(import.meta.url));

/**
 * @typedef {object} BundleSpec
 * @property {string} name          output is <outDir>/<name>.js
 * @property {string} entry         entry file, relative to the repository root
 * @property {number} budgetBytes   minified size limit; over it the build fails
 * @property {string} [exposeAs]    for libraries: a global `var <exposeAs>` set to an object holding
 *   every value the entry exports (so the bundle is the entry's public API, tree-shaken to it, and
 *   callable from a script appended to the bundle). Without it the entry runs as a program.
 * @property {Record<string, string>} [define]  esbuild define (e.g. a board's transport type)
 * @property {Record<string, unknown>} [globals]  values compiled in as global constants (esbuild
 *   inject): unlike a define, an object's keys are code, so they are mangled with the accesses to them
 * @property {boolean} [program]  a whole program (a device build): every property name it owns is
 *   shortened (deviceMangle() in tools/esbuild-espruino.mjs)
 * @property {string} [description]
 */

/** @type {BundleSpec[]} */
export const BUNDLES = [
  {
    name: 'codec',
    entry: 'firmware/mqtt/index.ts',
    exposeAs: 'wrenMqtt',
    budgetBytes: 10240,
    description: 'MQTT 3.1.1 + 5.0 codec, every export of firmware/mqtt/index.ts',
  },
];

/** Minified size budget of a device bundle (the limit: at most 32 KB). */
export const DEVICE_BUDGET_BYTES = 32768;

export class BuildError extends Error {}

const SECRET = /^\$secret:([A-Za-z0-9_]+)$/;

/**
 * Resolves "$secret:NAME" values: from the secrets file (a flat JSON object of NAME -> value), else
 * from the environment variable WREN_SECRET_NAME. Returns the names that could not be found.
 */
function resolveSecrets(node, secrets, path, missing) {
  if (Array.isArray(node)) {
    node.forEach((v, i) => {
      if (typeof v === 'string') {
        const m = SECRET.exec(v);
        if (m) node[i] = secretValue(m[1], secrets, path + '[' + i + ']', missing);
      } else resolveSecrets(v, secrets, path + '[' + i + ']', missing);
    });
  } else if (node && typeof node === 'object') {
    for (const k of Object.keys(node)) {
      const v = node[k];
      const at = path ? path + '.' + k : k;
      if (typeof v === 'string') {
        const m = SECRET.exec(v);
        if (m) node[k] = secretValue(m[1], secrets, at, missing);
      } else resolveSecrets(v, secrets, at, missing);
    }
  }
}

function secretValue(name, secrets, at, missing) {
  if (secrets && typeof secrets[name] === 'string') return secrets[name];
  const env = process.env['WREN_SECRET_' + name];
  if (env !== undefined) return env;
  missing.push(at + ': secret ' + name + ' not found (add it to the secrets file or set WREN_SECRET_' + name + ')');
  return '';
}

/** TLS material: a PEM file path relative to board.json, or PEM text as it is. */
function pem(value, boardDir, at, problems) {
  if (value === undefined || value.indexOf('-----BEGIN') >= 0) return value;
  const file = resolve(boardDir, value);
  if (!existsSync(file)) {
    problems.push(at + ': file not found: ' + file);
    return undefined;
  }
  const text = readFileSync(file, 'utf8');
  if (text.indexOf('-----BEGIN') < 0) problems.push(at + ': ' + file + ' is not a PEM file');
  return text;
}

/**
 * The device firmware bundle for one board.json: firmware/main.ts with the validated board (secrets
 * and TLS files resolved) compiled in as WREN_BOARD and its transport as WREN_TRANSPORT, so unused
 * drivers are dropped. Written to dist/<device>.js. Throws BuildError naming every problem: a bundle
 * is never built from a bad config.
 * @param {string} boardJsonPath
 * @param {{secretsFile?: string}} [opts]  default secrets file: secrets.json beside board.json
 * @returns {Promise<BundleSpec>}
 */
export async function boardBundle(boardJsonPath, opts = {}) {
  const file = resolve(boardJsonPath);
  let raw;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BuildError(boardJsonPath + ': ' + (err.code === 'ENOENT' ? 'file not found' : 'not valid JSON: ' + err.message));
  }
  const boardDir = dirname(file);
  const secretsFile = opts.secretsFile ? resolve(opts.secretsFile) : join(boardDir, 'secrets.json');
  let secrets;
  if (existsSync(secretsFile)) {
    try {
      secrets = JSON.parse(readFileSync(secretsFile, 'utf8'));
    } catch (err) {
      throw new BuildError(secretsFile + ': not valid JSON: ' + err.message);
    }
  } else if (opts.secretsFile) throw new BuildError('secrets file not found: ' + secretsFile);
  const problems = [];
  resolveSecrets(raw, secrets, '', problems);
  const { validateBoard } = await import('./firmware/config/index.ts');
  const checked = validateBoard(raw);
  problems.push(...checked.errors);
  const board = checked.board;
  if (board) {
    board.brokers.forEach((b, i) => {
      if (!b.tls) return;
      for (const k of ['ca', 'cert', 'key']) b.tls[k] = pem(b.tls[k], boardDir, 'brokers[' + i + '].tls.' + k, problems);
    });
  }
  if (problems.length) throw new BuildError(boardJsonPath + ' is invalid:\n  ' + problems.join('\n  '));
  return {
    name: board.device,
    entry: 'firmware/main.ts',
    budgetBytes: DEVICE_BUDGET_BYTES,
    // Feature switches (firmware/flags.d.ts): esbuild drops the code of a feature the board does not use.
    define: {
      WREN_TRANSPORT: JSON.stringify(board.transport.type),
      WREN_V5: String(board.mqtt.version !== '4'),
      WREN_AUTO: String(board.mqtt.version === 'auto'),
      WREN_TLS: String(board.brokers.some((b) => !!b.tls)),
      WREN_DEVICE: 'true',
    },
    // The power model is for the simulator and the desktop's charge estimate: the device never reads it.
    globals: { WREN_BOARD: { ...board, power: undefined } },
    program: true,
    description: 'device firmware for ' + boardJsonPath + ' (' + board.transport.type + ')',
  };
}

/**
 * JSON-like data as JavaScript source whose identifier keys are unquoted (so esbuild may mangle them).
 * `shared` (string -> variable name) replaces a string by a variable holding it.
 */
export function jsLiteral(v, shared) {
  if (Array.isArray(v)) return '[' + v.map((x) => jsLiteral(x, shared)).join(',') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => (IDENT.test(k) ? k : JSON.stringify(k)) + ':' + jsLiteral(x, shared)).join(',') + '}';
  }
  if (typeof v === 'string' && shared && shared.has(v)) return shared.get(v);
  return v === undefined ? 'undefined' : JSON.stringify(v);
}

/**
 * The module that compiles `globals` in (esbuild inject): `export var NAME = value;` each. A long
 * string that occurs more than once (the same CA for every broker) is written once, in a variable.
 */
export function globalsModule(globals) {
  const seen = new Map();
  const count = (v) => {
    if (Array.isArray(v)) v.forEach(count);
    else if (v && typeof v === 'object') Object.values(v).forEach(count);
    else if (typeof v === 'string' && v.length >= 64) seen.set(v, (seen.get(v) || 0) + 1);
  };
  Object.values(globals).forEach(count);
  const shared = new Map();
  let out = '';
  for (const [str, n] of seen) {
    if (n < 2) continue;
    const name = 'wrenShared' + shared.size;
    shared.set(str, name);
    out += 'var ' + name + ' = ' + JSON.stringify(str) + ';\n';
  }
  for (const [k, v] of Object.entries(globals)) out += 'export var ' + k + ' = ' + jsLiteral(v, shared) + ';\n';
  return out;
}

/** Value exports of an entry (types excluded), from an esbuild ESM pass with a metafile. */
async function entryExports(entryAbs) {
  const result = await esbuild.build({
    ...espruinoBuildOptions(),
    entryPoints: [entryAbs],
    format: 'esm',
    write: false,
    outdir: join(ROOT, '.build-probe'),
    metafile: true,
    absWorkingDir: ROOT,
  });
  const outputs = Object.values(result.metafile.outputs).filter((o) => o.entryPoint);
  return outputs.length ? outputs[0].exports.slice().sort() : [];
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** JS source of a tiny entry that imports every export by name and sets the global object. */
function exposeEntry(entryAbs, names, globalName) {
  const spec = JSON.stringify(entryAbs);
  const lines = ['// generated by build.mjs: exposes ' + relative(ROOT, entryAbs) + ' as ' + globalName];
  if (names.length) {
    lines.push('import { ' + names.map((n, i) => n + ' as e' + i).join(', ') + ' } from ' + spec + ';');
  }
  lines.push(globalName + ' = { ' + names.map((n, i) => n + ': e' + i).join(', ') + ' };');
  return lines.join('\n') + '\n';
}

const esbuildMessage = (m) => {
  const loc = m.location ? relative(ROOT, resolve(ROOT, m.location.file)) + ':' + m.location.line + ':' + (m.location.column + 1) + ': ' : '';
  return loc + m.text;
};

/**
 * Build one bundle. Never throws for build problems: they come back in `errors`.
 * @param {BundleSpec} spec
 * @param {{outDir: string, write: boolean}} opts
 */
async function buildOne(spec, opts) {
  const outfile = join(opts.outDir, spec.name + '.js');
  const res = {
    name: spec.name,
    entry: spec.entry,
    outfile,
    bytes: 0,
    gzipBytes: 0,
    budgetBytes: spec.budgetBytes,
    overBudget: false,
    findings: [],
    errors: [],
    warnings: [],
    inputs: {},
    text: '',
    map: '',
  };
  const entryAbs = isAbsolute(spec.entry) ? spec.entry : join(ROOT, spec.entry);
  if (!existsSync(entryAbs)) {
    res.errors.push('entry not found: ' + spec.entry);
    return res;
  }
  /** @type {import('esbuild').BuildOptions} */
  const options = {
    ...espruinoBuildOptions(),
    minify: true,
    write: false,
    outfile,
    sourcemap: 'external',
    metafile: true,
    absWorkingDir: ROOT,
    define: spec.define,
  };
  const program = spec.program ? deviceProgram() : undefined;
  if (program) Object.assign(options, program.options);
  let injectDir;
  if (spec.globals || program) {
    injectDir = mkdtempSync(join(tmpdir(), 'wren-build-'));
    const file = join(injectDir, 'globals.js');
    writeFileSync(file, globalsModule(spec.globals || {}) + (program ? program.reserve : ''));
    options.inject = [file];
  }
  try {
    if (spec.exposeAs) {
      if (!IDENT.test(spec.exposeAs)) throw new BuildError('exposeAs is not an identifier: ' + spec.exposeAs);
      const names = await entryExports(entryAbs);
      options.stdin = {
        contents: exposeEntry(entryAbs, names, spec.exposeAs),
        resolveDir: ROOT,
        sourcefile: spec.name + '-entry.js',
        loader: 'js',
      };
      options.banner = { js: 'var ' + spec.exposeAs + ';' };
    } else {
      options.entryPoints = [entryAbs];
    }
    const result = await esbuild.build(options);
    res.warnings = result.warnings.map(esbuildMessage);
    for (const f of result.outputFiles) {
      if (f.path.endsWith('.map')) res.map = f.text;
      else res.text = f.text;
    }
    const out = result.metafile.outputs[relative(ROOT, outfile).split('\\').join('/')];
    // The injected globals module lives in a temp dir: shown as what it is.
    if (out) for (const [k, v] of Object.entries(out.inputs)) res.inputs[/wren-build-[^/]*\/globals\.js$/.test(k) ? '(the board, compiled in)' : k] = v.bytesInOutput;
  } catch (err) {
    if (err && Array.isArray(err.errors) && err.errors.length) res.errors.push(...err.errors.map(esbuildMessage));
    else res.errors.push(err && err.message ? err.message : String(err));
    return res;
  } finally {
    if (injectDir) rmSync(injectDir, { recursive: true, force: true });
  }
  res.bytes = Buffer.byteLength(res.text, 'utf8');
  res.gzipBytes = gzipSync(res.text, { level: 9 }).length;
  res.overBudget = res.bytes > spec.budgetBytes;

  // Findings point into the bundle and, through the source map, into the TypeScript source.
  const map = JSON.parse(res.map);
  const mapDir = dirname(outfile);
  map.sources = map.sources.map((s) => relative(ROOT, resolve(mapDir, s)));
  res.findings = checkBundle(res.text, { fileName: relative(ROOT, outfile), sourceMap: map, globals: program ? globalNames() : undefined });

  if (opts.write) {
    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(outfile, res.text);
    writeFileSync(outfile + '.map', res.map);
  }
  return res;
}

/**
 * Build bundles, check them, measure them.
 * @param {{bundles?: BundleSpec[], only?: string[], outDir?: string, write?: boolean,
 *   budgets?: Record<string, number>}} [opts]  budgets overrides budgetBytes by bundle name
 * @returns {Promise<{ok: boolean, results: Awaited<ReturnType<typeof buildOne>>[], report: string,
 *   problems: string[]}>}  problems: one line each, for stderr
 */
export async function buildBundles(opts = {}) {
  const outDir = resolve(ROOT, opts.outDir || 'dist');
  let specs = opts.bundles || BUNDLES;
  if (opts.only && opts.only.length) {
    const unknown = opts.only.filter((n) => !specs.some((s) => s.name === n));
    if (unknown.length) throw new BuildError('unknown bundle: ' + unknown.join(', ') + ' (known: ' + specs.map((s) => s.name).join(', ') + ')');
    specs = specs.filter((s) => opts.only.includes(s.name));
  }
  if (opts.budgets) specs = specs.map((s) => (s.name in opts.budgets ? { ...s, budgetBytes: opts.budgets[s.name] } : s));
  const results = [];
  for (const spec of specs) results.push(await buildOne(spec, { outDir, write: opts.write !== false }));

  const problems = [];
  for (const r of results) {
    for (const e of r.errors) problems.push('build: ' + r.name + ': ' + e);
    for (const w of r.warnings) problems.push('build: ' + r.name + ': warning: ' + w);
    for (const f of r.findings) problems.push('build: ' + r.name + ': ' + formatFinding(f, relative(ROOT, r.outfile)));
    if (r.overBudget) problems.push('build: ' + r.name + ': ' + r.bytes + ' bytes minified, over its budget of ' + r.budgetBytes);
  }
  const ok = results.every((r) => r.errors.length === 0 && r.findings.length === 0 && !r.overBudget);
  return { ok, results, report: sizeReport(results), problems };
}

/** The size table: one row per bundle. */
export function sizeReport(results) {
  const rows = [['bundle', 'minified', 'gzip', 'budget', 'status', 'check']];
  for (const r of results) {
    const built = r.errors.length === 0;
    rows.push([
      r.name,
      built ? String(r.bytes) : '-',
      built ? String(r.gzipBytes) : '-',
      String(r.budgetBytes),
      !built ? 'FAILED' : r.overBudget ? 'OVER' : 'OK',
      !built ? '-' : r.findings.length ? r.findings.length + ' finding(s)' : 'clean',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows
    .map((row) => row.map((c, i) => (i >= 1 && i <= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd())
    .join('\n');
}

/** Bytes per input file of one bundle, largest first (for --verbose). */
function inputsReport(r) {
  return Object.entries(r.inputs)
    .sort((a, b) => b[1] - a[1])
    .map(([file, bytes]) => '  ' + String(bytes).padStart(7) + '  ' + file)
    .join('\n');
}

const USAGE = `usage: node build.mjs [--only NAME]... [--out-dir DIR] [--verbose] [--board FILE]

Bundles wren for the Espruino interpreter with esbuild (tools/esbuild-espruino.mjs), minified,
checks each bundle with tools/bundle-check.mjs, writes DIR/<name>.js and its .map, and prints a
size report (minified bytes, gzip bytes for information, budget, OK/OVER).

  --only NAME     build only this bundle (repeatable); bundles: ${BUNDLES.map((b) => b.name).join(', ')}
  --out-dir DIR   output directory (default: dist)
  --verbose       also print the bytes each source file adds to each bundle
  --board FILE    the device bundle for a board.json: dist/<device>.js, budget ${DEVICE_BUDGET_BYTES} bytes
  --secrets FILE  where "$secret:NAME" values come from (default: secrets.json beside the board;
                  else the environment variable WREN_SECRET_NAME)
  --allow-over-budget  report a bundle over its budget but exit 0 (while the size work goes on)
  --help          this text

exit: 0 all bundles built, clean and within budget; 1 a bundle failed; 2 usage error
`;

async function main(argv) {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        help: { type: 'boolean' },
        only: { type: 'string', multiple: true },
        'out-dir': { type: 'string' },
        verbose: { type: 'boolean' },
        board: { type: 'string' },
        secrets: { type: 'string' },
        'allow-over-budget': { type: 'boolean' },
      },
    });
  } catch (err) {
    process.stderr.write('build: ' + String(err.message).split('\n')[0] + ' (try --help)\n');
    return 2;
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let bundles = BUNDLES;
  try {
    if (v.board) bundles = [await boardBundle(v.board, { secretsFile: v.secrets })];
  } catch (err) {
    process.stderr.write('build: ' + err.message + '\n');
    return 1;
  }
  let out;
  try {
    out = await buildBundles({ bundles, only: v.only, outDir: v['out-dir'] });
  } catch (err) {
    process.stderr.write('build: ' + (err && err.message ? err.message : String(err)).split('\n')[0] + '\n');
    return err instanceof BuildError ? 2 : 1;
  }
  for (const p of out.problems) process.stderr.write(p + '\n');
  process.stdout.write(out.report + '\n');
  if (v.board) for (const r of out.results) if (r.errors.length === 0) process.stdout.write('wrote ' + relative(process.cwd(), r.outfile) + '\n');
  if (v.verbose) {
    for (const r of out.results) if (r.errors.length === 0) process.stdout.write('\n' + r.name + ':\n' + inputsReport(r) + '\n');
  }
  if (!out.ok && v['allow-over-budget'] && out.results.every((r) => r.errors.length === 0 && r.findings.length === 0)) {
    process.stderr.write('build: WARNING: over budget, continuing because of --allow-over-budget\n');
    return 0;
  }
  return out.ok ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
