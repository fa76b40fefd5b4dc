// The one set of esbuild options that produces bundles the Espruino interpreter runs
// (../shared/DESIGN.md section 2). Every bundle for Espruino is built with these: build.mjs,
// the Espruino tests and the size report. Syntax Espruino lacks is a build error here; what esbuild
// cannot see (Map, Set, hoisting, ...) is caught afterwards by tools/bundle-check.mjs.

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
