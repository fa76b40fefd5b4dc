// firmware/liveness on the real thing: pure (no time, no I/O, no randomness of its own), bundled with
// the shared Espruino options, clean under the bundle check, small, and, when ESPRUINO_BIN points at
// an Espruino Linux interpreter, producing the same outputs there as on Node.

import { describe, expect, it } from 'vitest';
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { espruinoBuildOptions } from '../tools/esbuild-espruino.mjs';
import { bundleForEspruino, espruinoSkipReason, runOnEspruino } from '../tools/espruino-run';
import { runLivenessCases } from './espruino/liveness-cases';

const ROOT = path.resolve(__dirname, '..');
const DIR = path.join(ROOT, 'firmware/liveness');

async function checker(): Promise<(js: string, o?: object) => Array<{ rule: string; message: string; line: number }>> {
  const url = pathToFileURL(path.join(ROOT, 'tools/bundle-check.mjs')).href;
  const mod = (await import(url)) as { checkBundle: (js: string, o?: object) => Array<{ rule: string; message: string; line: number }> };
  return mod.checkBundle;
}

function nodeLines(): string[] {
  const lines: string[] = [];
  runLivenessCases((l) => lines.push(l));
  return lines;
}

// What the scenario must print (hand-checked values: see the unit tests for each rule).
const EXPECTED = [
  'backoff [0,2000,2000,2000,12000,3950,63210,12800,230400,300000,0,100000] attempt=12 ceil=300000',
  'capped 150000 300000 225000',
  'down-unstable false attempt=15',
  'down-stable true attempt=0',
  'restore {"attempt":2} 4000',
  'rotation 1:1000,2:1000,0:1000,1:1000,2:1000,0:1000,1:1000,2:1000,0:2000,1:1000,2:1000,0:6000,1:1000,2:1000,0:14000',
  'stay 0:500 {"current":0,"attempts":[1,0,0]}',
  'rot-restore {"current":0,"attempts":[1,0,0]} {"delayMs":0,"broker":1}',
  'modes - active>idle@121000:idle-timeout dl=721000 idle>active@200000:inbound active>sleep@920000:sleep-timeout ' +
    'sleep>active@2000001:wake active>sleep@2000002:low-battery - - - sleep>active@2000006:publish ' +
    'active>sleep@2000007:app-request -',
  'modes-restore idle 605000 {"mode":"sleep","low":false}',
  'keepalive [300,1200,1177,270,120,60,120,270,60000,48000,54000,57000,51000,58518,48148,58800,49200,48000,60000,56000,' +
    '225000,61000,6000,9000,null,60,"wait60000","ping60000","wait70000","dead70000"]',
  'pathlimit [null,270,270,null,270,null,null,160,160,"same","[]"] ' +
    '[["home-wifi",60,0,0,160,190,20,0],["mcc262-01",60,0,0,0,0,172900000,0]]',
];

describe('firmware/liveness is pure', () => {
  it('no clock reads, timers, randomness, I/O or imports outside the folder', () => {
    const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.ts'));
    expect(files.sort()).toEqual(['backoff.ts', 'index.ts', 'keepalive.ts', 'modes.ts', 'pathlimit.ts']);
    for (const f of files) {
      // strip comments (line and block), keep code
      const code = fs.readFileSync(path.join(DIR, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      expect(code, f).not.toMatch(/\b(Date|Math\.random|setTimeout|setInterval|getTime|performance|process|require|Map|Set|Symbol)\b/);
      const imports = [...code.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const i of imports) expect(i.startsWith('./'), f + ' imports ' + i).toBe(true);
    }
  });

  it('the scenario gives the hand-checked lines on Node', () => {
    expect(nodeLines()).toEqual(EXPECTED);
  });
});

const SKIP = espruinoSkipReason();
if (SKIP !== undefined) console.log('skipping the liveness run on Espruino: ' + SKIP);

describe('firmware/liveness is Espruino-safe', () => {
  it('the liveness bundle passes the bundle check with zero findings and stays small', async () => {
    const r = await esbuild.build({
      ...espruinoBuildOptions(),
      entryPoints: [path.join(DIR, 'index.ts')],
      write: false,
      minify: true,
      globalName: 'liveness',
    });
    const js = r.outputFiles![0].text;
    const check = await checker();
    expect(check(js, { fileName: 'liveness.js' })).toEqual([]);
    for (const name of ['BrokerRotation', 'PowerModes', 'PathLimits', 'keepAliveStep', 'declaredKeepAlive']) expect(js).toContain(name);
    console.log('liveness bundle (esbuild --minify, Espruino options): ' + js.length + ' bytes');
    expect(js.length).toBeLessThan(8192);
  });

  it('the driver bundle passes the bundle check', async () => {
    const js = await bundleForEspruino(path.join(ROOT, 'test/espruino/liveness-driver.ts'));
    const check = await checker();
    expect(check(js, { fileName: 'liveness-driver.js' })).toEqual([]);
  });

  it.skipIf(SKIP !== undefined)('the driver prints the same lines on the Espruino interpreter as on Node', async () => {
    const js = await bundleForEspruino(path.join(ROOT, 'test/espruino/liveness-driver.ts'));
    const res = await runOnEspruino(js, { timeoutMs: 20_000 });
    expect(res.uncaught).toEqual([]);
    expect(res.errors).toEqual([]);
    expect(res.timedOut).toBe(false);
    const lines = res.stdout.split('\n').filter((l) => l.length > 0);
    expect(lines[lines.length - 1], res.stdout).toBe('DONE');
    expect(lines.slice(0, -1)).toEqual(nodeLines());
  });
});
