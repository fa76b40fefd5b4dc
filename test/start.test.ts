// `npm start` as a new user runs it: the firmware on the desktop against the embedded broker.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('npm start', () => {
  it('connects to the embedded broker, publishes readings, and exits 0 when the duration is up', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/start.ts', '--duration', '2', '--period', '0.5', '--burst', '3'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/broker: embedded Aedes on mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toContain('state connected');
    expect((r.stdout.match(/publish wren\/desk-1\/reading/g) ?? []).length).toBe(3);
    expect(r.stdout).toMatch(/summary: .*mode active .*connects 1 \| boots 1 \| queue 0 \| charge \d+\.\d+ mAh/);
  });

  it('with --speed, goes active -> idle -> sleep, deep-sleeps, and checks in on the next boot', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/start.ts', '--speed', '200', '--duration', '20', '--period', '1', '--burst', '2'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    const out = r.stdout;
    expect(out).toContain('mode active -> idle (idle-timeout)');
    expect(out).toContain('mode idle -> sleep (sleep-timeout)');
    expect(out).toContain('deep sleep for 30m00s');
    expect(out).toMatch(/boot 2 \(wake: timer\): check-in/);
    expect(out.indexOf('mode idle -> sleep')).toBeLessThan(out.indexOf('boot 2'));
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
