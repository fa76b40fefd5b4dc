#!/usr/bin/env node
// Regenerates tools/espruino-names.txt and tools/espruino-globals.txt from an Espruino checkout.
//
// espruino-names.txt: every identifier-like string literal in the C sources of an
// Espruino checkout (src/, libs/, targets/esp32, targets/linux). That covers the name of every
// built-in class, method and property Espruino defines (its jswrap "name" entries) and every option
// or result key its C code reads or writes (net.connect's host/port, tls ca/key/cert, Wifi's
// password/powersave, process.memory()'s usage, ...).
//
// The device build mangles property names (tools/esbuild-espruino.mjs, deviceMangle()); a name in this
// list is never mangled, so anything the firmware reads from or hands to Espruino keeps its name.
// Listing too much only costs bundle bytes; listing too little breaks a board, so the list is taken
// from the interpreter's own source rather than written by hand.
//
// espruino-globals.txt: the names Espruino defines at its global scope (from the jswrap JSON blocks:
// a "class", or a "function"/"variable"/"object" that belongs to no class), which a device bundle's
// top-level names must keep clear of (deviceProgram() in tools/esbuild-espruino.mjs).
//
//   node tools/espruino-names.mjs /path/to/Espruino
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2];
if (!root || process.argv.includes('--help')) {
  process.stderr.write('usage: node tools/espruino-names.mjs ESPRUINO_SOURCE_DIR\n');
  process.exit(root ? 0 : 2);
}
const names = new Set();
const globals = new Set();
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) walk(p);
    else if (/\.(c|h)$/.test(e)) {
      const text = readFileSync(p, 'latin1');
      for (const m of text.matchAll(/"([A-Za-z_$][A-Za-z0-9_$]*)"/g)) names.add(m[1]);
      for (const m of text.matchAll(/\/\*JSON\{([\s\S]*?)\n\}/g)) {
        const field = (k) => (new RegExp('"' + k + '"\\s*:\\s*"([^"]+)"').exec(m[1]) || [])[1];
        const type = field('type');
        const cls = field('class');
        if (type === 'class' && cls) globals.add(cls);
        else if (!cls && (type === 'function' || type === 'variable' || type === 'object') && field('name')) globals.add(field('name'));
      }
    }
  }
}
for (const d of ['src', 'libs', 'targets/esp32', 'targets/linux']) walk(join(root, d));
const here = new URL('.', import.meta.url);
writeFileSync(new URL('espruino-names.txt', here), '# Identifier-like string literals of the Espruino C sources (tools/espruino-names.mjs).\n' + [...names].sort().join('\n') + '\n');
writeFileSync(new URL('espruino-globals.txt', here), '# Names Espruino defines at its global scope (tools/espruino-names.mjs).\n' + [...globals].sort().join('\n') + '\n');
process.stdout.write(names.size + ' names, ' + globals.size + ' globals\n');
