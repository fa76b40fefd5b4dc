// The one set of esbuild options that produces bundles the Espruino interpreter runs
// (../shared/DESIGN.md section 2). Every bundle for Espruino is built with these: build.mjs,
// the Espruino tests and the size report. Syntax Espruino lacks is a build error here; what esbuild
// cannot see (Map, Set, hoisting, ...) is caught afterwards by tools/bundle-check.mjs.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { fileURLToPath } from 'node:url';

/** esbuild `supported` table: each false turns that syntax into a build error (or a lowering). */
export const espruinoSupported = {
  destructuring: false,
  'default-argument': false,
  'rest-argument': false,
  'array-spread': false,
  generator: false,
  'async-await': false,
  'async-generator': false,
  'for-await': false,
  'new-target': false,
  bigint: false,
  'class-private-field': false,
  'class-private-method': false,
  'class-private-accessor': false,
  'class-static-blocks': false,
  // Espruino rejects \u{...} escapes; with this esbuild writes surrogate pairs instead.
  'unicode-escapes': false,
};

/**
 * tsconfig settings for Espruino bundles. esbuild's build API uses tsconfigRaw INSTEAD of
 * tsconfig.json, so bundles do not depend on the type-checking config: without this, tsconfig's
 * `strict` implies `alwaysStrict`, and esbuild then starts every bundle with "use strict", which
 * Espruino does not run (DESIGN.md section 2). Class fields keep assignment semantics
 * (`this.x = v` in the constructor, no Object.defineProperty helper).
 */
export const espruinoTsconfigRaw = {
  compilerOptions: {
    alwaysStrict: false,
    useDefineForClassFields: false,
  },
};

/**
 * Options for esbuild.build() that every Espruino bundle shares. Callers add entryPoints,
 * outfile/write, define and minify.
 * @returns {import('esbuild').BuildOptions}
 */
export function espruinoBuildOptions() {
  return {
    bundle: true,
    format: 'iife',
    target: 'es2015',
    platform: 'neutral',
    supported: { ...espruinoSupported },
    tsconfigRaw: { compilerOptions: { ...espruinoTsconfigRaw.compilerOptions } },
    legalComments: 'none',
    // Members named with a trailing underscore are internal (TypeScript `private`) and get short
    // names in the bundle: property names are not shortened by minification, and `this.pingSentAt`
    // repeated hundreds of times costs kilobytes on a microcontroller. Nothing persisted, sent or
    // exported may use such a name.
    mangleProps: /^[A-Za-z][A-Za-z0-9]*_$/,
    // Raw UTF-8 in the bundle: on Espruino a string literal is then its UTF-8 bytes, which is what the
    // codec sends (an escaped \\xE9 would be a lone byte, not UTF-8).
    charset: 'utf8',
    logLevel: 'silent',
  };
}

/**
 * Names that are data, not code: they are written to flash or sent on the wire, or read back by
 * name from a string, so the device build must keep them (deviceMangle()).
 * - the device record `wren.dev` (firmware/device, liveness toJSON()): it outlives a firmware update;
 * - the MQTT 5 property names: the codec reads and writes them through its string table (PROPS in
 *   firmware/mqtt/codec.ts; test/build.test.ts checks every one is here), and the session persists
 *   a message's properties as JSON;
 * - servername: a TLS option handed to Espruino's tls.connect.
 */
export const DATA_NAMES = [
  'v', 'modes', 'rotation', 'paths', 'checkIns', 'mqtt', 'sleepLeftMs', 'mode', 'low', 'current', 'attempts', 'attempt',
  'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData',
  'subscriptionIdentifiers', 'sessionExpiryInterval', 'assignedClientIdentifier', 'serverKeepAlive',
  'authenticationMethod', 'authenticationData', 'requestProblemInformation', 'willDelayInterval',
  'requestResponseInformation', 'responseInformation', 'serverReference', 'reasonString', 'receiveMaximum',
  'topicAliasMaximum', 'topicAlias', 'maximumQoS', 'retainAvailable', 'userProperties', 'maximumPacketSize',
  'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable',
  'servername',
];

/**
 * Property names of JavaScript's own built-ins: a superset of Espruino's. Read in a fresh V8 realm
 * (node:vm), not from this process's globals, so the names (and so the bundle) do not depend on
 * what the calling process added (vitest's `it`, Node's `process`...).
 */
let builtins;
function builtinNames() {
  if (builtins) return builtins; // fixed for this Node: computed once per process
  return (builtins = new Set(
    runInNewContext(`(function () {
      var out = [];
      function add(o) {
        for (var p = o; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) out.push.apply(out, Object.getOwnPropertyNames(p));
      }
      add(globalThis);
      add(Object.prototype);
      Object.getOwnPropertyNames(globalThis).forEach(function (k) {
        var v = globalThis[k];
        if ((typeof v === 'function' || typeof v === 'object') && v !== null) {
          add(v);
          if (typeof v === 'function' && v.prototype) add(v.prototype);
        }
      });
      add(Object.getPrototypeOf(Uint8Array));
      add(Object.getPrototypeOf(Uint8Array.prototype));
      return out;
    })()`),
  ));
}

/**
 * Every string literal of the firmware's sources (firmware/, hal/) that is a whole identifier, such as
 * 'keepAliveSec' in the codec's field(o, 'keepAliveSec', ...): such a string is a property name
 * used through o[name], so it must not be mangled.
 */
export function stringNames() {
  const out = new Set();
  const root = fileURLToPath(new URL('..', import.meta.url));
  const walk = (dir) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/'([A-Za-z_$][A-Za-z0-9_$]*)'|"([A-Za-z_$][A-Za-z0-9_$]*)"/g)) out.add(m[1] || m[2]);
    }
  };
  walk(join(root, 'firmware'));
  walk(join(root, 'hal'));
  return out;
}

/**
 * Every name the device build keeps: Espruino's (tools/espruino-names.txt), JavaScript's, DATA_NAMES
 * and the firmware's identifier-shaped strings (stringNames()).
 */
export function reservedNames() {
  const file = new URL('./espruino-names.txt', import.meta.url);
  const espruino = readFileSync(file, 'utf8').split('\n').filter((l) => l && l[0] !== '#');
  return new Set([...espruino, ...builtinNames(), ...DATA_NAMES, ...stringNames()]);
}

/**
 * esbuild options that shorten EVERY property name the firmware owns (the device build): property
 * names survive ordinary minification, and in this code base they were a fifth of the bundle. A name
 * Espruino or JavaScript defines, or one in DATA_NAMES, is kept; a `_`-suffixed name is always
 * shortened. Only for a bundle that is a whole program: code outside the bundle would not know the
 * new names (tests that read a bundle's JSON output use espruinoBuildOptions() alone).
 * @returns {import('esbuild').BuildOptions}
 */
export function deviceMangle() {
  const keep = [...reservedNames()].filter((n) => !/_$/.test(n)).map((n) => n.replace(/\$/g, '\\$'));
  // ALL_CAPS names are kept too: they are const enum members, which esbuild stops inlining once
  // their names are mangled.
  return { mangleProps: /^[A-Za-z_$][A-Za-z0-9_$]*$/, reserveProps: new RegExp('^(?:[A-Z][A-Z0-9_]*|' + keep.join('|') + ')$') };
}

/** Words that cannot be variable names (they are dropped from globalNames()). */
const KEYWORDS = new Set(('break case catch class const continue debugger default delete do else enum export extends false ' +
  'finally for function if implements import in instanceof interface let new null package private protected public ' +
  'return static super switch this throw true try typeof var void while with yield await arguments eval').split(' '));

/**
 * Names a device bundle's top level must not take. A device bundle runs at the interpreter's global
 * scope (deviceProgram()), where a top-level `var E` would replace Espruino's E: every name the
 * interpreter may define globally (tools/espruino-globals.txt, the pins D0..D63 and A0..A15, and
 * JavaScript's globals).
 */
let globals;
export function globalNames() {
  if (globals) return globals; // fixed data: read once per process (a build asks twice)
  const out = new Set();
  const file = new URL('./espruino-globals.txt', import.meta.url);
  for (const l of readFileSync(file, 'utf8').split('\n')) if (l && l[0] !== '#') out.add(l);
  for (let i = 0; i < 64; i++) out.add('D' + i);
  for (let i = 0; i < 16; i++) out.add('A' + i);
  for (const k of runInNewContext('Object.getOwnPropertyNames(globalThis)')) out.add(k);
  for (const k of KEYWORDS) out.delete(k);
  globals = [...out].filter((n) => /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(n));
  return globals;
}

/**
 * Options for a device bundle, a whole program: every property name it owns is shortened
 * (deviceMangle()), and it is not wrapped in a function. At the global scope a function costs one
 * JsVar less than inside a wrapper (it keeps no link to an enclosing scope): measured on Espruino
 * 2v29, 40 methods took 255 JsVars at the top level and 297 in an IIFE, and the whole firmware
 * 2,660 instead of 3,037 after connect. Its top-level names must then keep clear of the
 * interpreter's globals (tools/espruino-globals.txt): `reserve` is source for the bundle (build.mjs
 * injects it) with a function that names every one of globalNames(). The function is never called and esbuild drops it, but
 * esbuild never gives a top-level symbol a name the bundle refers to as a global, so none of them can
 * be taken; tools/bundle-check.mjs checks the result (rule global-clobber).
 * @returns {{ options: import('esbuild').BuildOptions, reserve: string }}
 */
export function deviceProgram() {
  return {
    options: { ...deviceMangle(), format: 'esm' },
    reserve: 'function wrenReservedGlobals(){return [' + globalNames().join(',') + '];}\n',
  };
}
