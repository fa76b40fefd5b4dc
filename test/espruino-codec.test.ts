// The MQTT codec on the real Espruino interpreter: test/espruino/codec-driver.ts is bundled with the
// shared Espruino esbuild options and run by ESPRUINO_BIN (an Espruino Linux build); it encodes and
// decodes sample packets of every type for 3.1.1 and 5.0 and prints one line per case.
// Without ESPRUINO_BIN the interpreter part is skipped with a printed reason; the case-coverage
// check and the same checks on Node always run.

import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleForEspruino, espruinoSkipReason, runOnEspruino, type EspruinoRunResult } from '../tools/espruino-run';
import { roundTripCases, TYPE_NAMES } from './espruino/codec-cases';
import { runCodecChecks } from './espruino/codec-check';

const DRIVER = fileURLToPath(new URL('./espruino/codec-driver.ts', import.meta.url));

/** "<TYPE> per version" expected from the case list: every type, AUTH only in 5.0. */
function typesByVersion(): { 4: Set<string>; 5: Set<string> } {
  const out = { 4: new Set<string>(), 5: new Set<string>() };
  for (const c of roundTripCases()) out[c.version].add(TYPE_NAMES[c.packet.type]);
  return out;
}

/** Every line the driver must print as OK: one per round-trip case, plus streams/malformed/refusals. */
function caseLabels(): string[] {
  return roundTripCases().map((c) => 'v' + c.version + ' ' + TYPE_NAMES[c.packet.type] + ' ' + c.name);
}

describe('codec case list', () => {
  it('covers all 15 packet types in 5.0 and the 14 of 3.1.1', () => {
    const t = typesByVersion();
    expect([...t[5]].sort()).toEqual(TYPE_NAMES.slice(1).sort());
    expect(t[5].size).toBe(15);
    expect([...t[4]].sort()).toEqual(TYPE_NAMES.slice(1, 15).sort());
    expect(t[4].size).toBe(14);
  });

  it('has unique labels', () => {
    const labels = caseLabels();
    expect(new Set(labels).size).toBe(labels.length);
  });

  it('passes on Node (baseline: a failure only on Espruino is an Espruino incompatibility)', () => {
    const lines: string[] = [];
    const totals = runCodecChecks((l) => lines.push(l));
    expect(lines.filter((l) => !l.startsWith('OK '))).toEqual([]);
    expect(totals.failed).toBe(0);
    expect(totals.passed).toBe(lines.length);
  });
});

const skipReason = espruinoSkipReason();
if (skipReason) console.log('skipped: ' + skipReason);

describe.skipIf(skipReason !== undefined)('codec on the Espruino interpreter (ESPRUINO_BIN)', () => {
  let run: EspruinoRunResult;
  let lines: string[];

  beforeAll(async () => {
    const bundle = await bundleForEspruino(DRIVER);
    run = await runOnEspruino(bundle, { timeoutMs: 60_000 });
    lines = run.stdout.split('\n');
  }, 90_000);

  it('exits by itself with code 0 and no uncaught error', () => {
    expect(run.timedOut).toBe(false);
    expect(run.uncaught).toEqual([]);
    expect(run.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
  });

  it('reports no failing case', () => {
    expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
  });

  it('reports every round-trip case OK, so every packet type of both versions', () => {
    const ok = new Set(lines.filter((l) => l.startsWith('OK ')).map((l) => l.slice(3)));
    const missing = caseLabels().filter((l) => !ok.has(l));
    expect(missing).toEqual([]);
    const seen = { 4: new Set<string>(), 5: new Set<string>() };
    for (const l of ok) {
      const m = /^v([45]) ([A-Z]+) /.exec(l);
      if (m && TYPE_NAMES.includes(m[2])) seen[m[1] === '4' ? 4 : 5].add(m[2]);
    }
    expect(seen[5].size).toBe(15);
    expect(seen[4].size).toBe(14);
  });

  it('ends with DONE and 0 failed, with the same count as on Node', () => {
    const nodeLines: string[] = [];
    const nodeTotals = runCodecChecks((l) => nodeLines.push(l));
    const done = lines.filter((l) => l.startsWith('DONE '));
    expect(done).toEqual(['DONE ' + nodeTotals.passed + ' passed, 0 failed']);
  });
});
