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
    legalComments: 'none',
    charset: 'ascii',
    logLevel: 'silent',
  };
}
