// `npm start` as a new user runs it: the firmware on the desktop against the embedded broker.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('npm start', () => {
  it('connects to the embedded broker, publishes readings, and exits 0 when the duration is up', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/start.ts', '--duration', '2', '--period', '0.5'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/broker: embedded Aedes on mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toContain('state connected');
    const m = /summary: readings (\d+), connects (\d+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(3);
    expect(Number(m![2])).toBe(1);
  });

  it('answers --help and refuses bad usage with exit code 2', () => {
    const help = spawnSync(process.execPath, ['--import', 'tsx', 'tools/start.ts', '--help'], { encoding: 'utf8', timeout: 30_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: npm start');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'tools/start.ts', '--bogus'], { encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n').length).toBe(1);
  });
});
