// tools/fleet.ts end to end: a small fleet on a real broker (mosquitto when installed, else Aedes in
// a child process; and Aedes explicitly), killed and restarted. Checks the output format and the
// behaviour that does not depend on timing: without jitter every client retries at the same instant
// (all N attempts fall in one second), with full jitter they do not, so the no-jitter peak is higher;
// every client comes back; the attempt count is exact (equals the clients' own stats.connects).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const children = new Set<ChildProcess>();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wren-fleet-test-'));

interface Out {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runTool(args: string[], limitMs: number): Promise<Out> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', 'tools/fleet.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    // SIGTERM first: the tool's handler kills its broker by PID; SIGKILL if it does not go.
    const timer = setTimeout(() => {
      c.kill('SIGTERM');
      setTimeout(() => c.kill('SIGKILL'), 3000).unref();
      reject(new Error('fleet did not finish within ' + limitMs + ' ms\n' + stdout + stderr));
    }, limitMs);
    c.once('error', reject);
    c.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(c);
      resolve({ code, stdout, stderr });
    });
  });
}

afterAll(() => {
  for (const c of children) {
    c.kill('SIGTERM');
    const pid = c.pid;
    setTimeout(() => {
      try {
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, 3000).unref();
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface RunJson {
  jitter: 'full' | 'none';
  devices: number;
  peakPerSec: number;
  peakSliding1s: number;
  attempts: number;
  outageAttempts: number;
  statsConnects: number;
  allBackSec: number | undefined;
  back: number;
  hist1s: number[];
  hist100ms: number[];
  schedulerErrors: number;
}

function checkRun(out: Out, jsonFile: string, n: number): void {
  expect(out.code, out.stderr).toBe(0);
  expect(out.stderr).toBe('');
  const lines = out.stdout.split('\n');
  // The table: header, rule, one row per run, in this order.
  const h = lines.findIndex((l) => /^run\s+\| peak CONNECT\/s \| attempts \| all back after \(s\) \| within cap\+10%/.test(l));
  expect(h, out.stdout).toBeGreaterThanOrEqual(0);
  expect(lines[h + 1]).toMatch(/^-+(-\|-+)+$/);
  const rowRe = /^(full jitter|no jitter)\s+\|\s+(\d+) \|\s+(\d+) \|\s+(\d+\.\d\d) \| (yes|no)\s+\|\s+(\d+) \|\s+(\d+) \|\s+(\d+) \|\s+(\d+)$/;
  const full = rowRe.exec(lines[h + 2]);
  const none = rowRe.exec(lines[h + 3]);
  expect(full, lines[h + 2]).not.toBeNull();
  expect(none, lines[h + 3]).not.toBeNull();
  expect(full![1]).toBe('full jitter');
  expect(none![1]).toBe('no jitter');
  expect(out.stdout).toMatch(/^full-jitter peak \/ no-jitter peak: \d+\.\d{3} \(target <= 0\.10\)/m);
  expect(out.stdout).toMatch(/^full jitter all back within cap \+ 10% \(\d+\.\d s\): (yes|no)/m);

  const j = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as { runs: RunJson[]; ratio: number; config: { devices: number } };
  expect(j.config.devices).toBe(n);
  const [f, z] = j.runs;
  expect(f.jitter).toBe('full');
  expect(z.jitter).toBe('none');
  for (const r of j.runs) {
    // Everyone came back. (An attempt that starts a moment before the restarted broker is seen to
    // accept, and then succeeds, counts as an outage attempt: so a client may have no attempt after
    // "ready", and only the total is bounded.)
    expect(r.back).toBe(n);
    expect(r.allBackSec).toBeTypeOf('number');
    expect(r.attempts + r.outageAttempts).toBeGreaterThanOrEqual(n);
    expect(r.attempts).toBeGreaterThan(0);
    // The transport-level count is exact: it equals the clients' own counters.
    expect(r.statsConnects).toBe(r.attempts + r.outageAttempts);
    expect(r.hist1s.reduce((a, b) => a + b, 0)).toBe(r.attempts);
    expect(r.hist100ms.reduce((a, b) => a + b, 0)).toBe(r.attempts);
    expect(r.schedulerErrors).toBe(0);
    // The table shows the JSON numbers.
    const row = r.jitter === 'full' ? full! : none!;
    expect(Number(row[2])).toBe(r.peakSliding1s);
    expect(Number(row[3])).toBe(r.attempts);
    expect(Number(row[6])).toBe(r.peakPerSec);
    expect(r.peakSliding1s).toBeGreaterThanOrEqual(r.peakPerSec);
  }
  // No jitter: the whole fleet retries at one instant after the restart (one attempt each).
  expect(z.attempts).toBe(n);
  expect(z.peakSliding1s).toBe(n);
  // Full jitter spreads the same fleet out: its peak is lower.
  expect(f.peakSliding1s).toBeLessThan(n);
  expect(z.peakSliding1s).toBeGreaterThan(f.peakSliding1s);
  expect(j.ratio).toBeCloseTo(f.peakSliding1s / z.peakSliding1s, 10);
}

describe('npm run fleet', () => {
  it('50 devices on the default broker: no-jitter peak above the full-jitter peak', async () => {
    const json = path.join(tmp, 'auto.json');
    const out = await runTool(['--devices', '50', '--base-ms', '250', '--cap-ms', '4000', '--outage-ms', '3000', '--json', json], 80_000);
    checkRun(out, json, 50);
  }, 90_000);

  it('30 devices on Aedes in a child process', async () => {
    const json = path.join(tmp, 'aedes.json');
    const out = await runTool(['--broker', 'aedes', '--devices', '30', '--base-ms', '250', '--cap-ms', '4000', '--outage-ms', '3000', '--json', json], 80_000);
    expect(out.stdout).toMatch(/aedes \(child process\)/);
    checkRun(out, json, 30);
  }, 90_000);

  it('bad usage: one line on stderr, exit 2; --help exits 0', async () => {
    const bad = await runTool(['--devices', 'many'], 20_000);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^fleet: --devices must be a whole number/);
    const unknown = await runTool(['--frobnicate'], 20_000);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    const help = await runTool(['--help'], 20_000);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run fleet/);
  }, 60_000);
});
