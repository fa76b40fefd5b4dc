// Run a JavaScript bundle on the Espruino Linux interpreter (DESIGN.md section 2) and collect what
// it printed. The interpreter is not part of this repo: point ESPRUINO_BIN at a binary built from
// the Espruino sources (`BOARD=LINUX RELEASE=1 make`). Tests that need it skip when it is absent.
//
// Interpreter facts this module relies on (measured on 2v29):
// - stdin must never reach EOF: at EOF the input thread reads "characters" in a loop and fills the
//   console buffer. We hand it a pipe that we hold open and never write to.
// - Output starts with a 12-line banner ending "http://espruino.com/Donate", uses \r\n, and the
//   idle REPL prompt ">" is erased with "\r\x1b[J" before each later line; a bare ">" is left at
//   the end.
// - `quit()` works from a callback, not at top level (there it is ignored).
// - An uncaught error at top level exits 1; one inside a callback is only printed ("Uncaught ...")
//   and the process goes on and exits 0, so callers must check `uncaught`.
// - `require("Storage")` keeps its data in ./espruino.flash (256 KB on the Linux build), so the
//   working directory decides which flash a run sees.

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type BuildOptions } from 'esbuild';

// esbuild-espruino.mjs is plain JS (allowJs is off, so a static import is TS7016): load it by URL
// and state the one function used here.
interface EsbuildEspruinoModule {
  espruinoBuildOptions(): BuildOptions;
}
async function loadEspruinoBuildOptions(): Promise<BuildOptions> {
  const url = new URL('./esbuild-espruino.mjs', import.meta.url).href;
  const mod = (await import(url)) as EsbuildEspruinoModule;
  return mod.espruinoBuildOptions();
}

export interface EspruinoRunOptions {
  /** Kill the interpreter (SIGKILL, by PID) after this many milliseconds. */
  timeoutMs: number;
  /**
   * Working directory (where espruino.flash lives). Default: the fresh temp dir that also holds
   * the bundle, removed afterwards. A caller-given cwd is left in place (to keep flash between runs).
   */
  cwd?: string;
  /** Extra environment variables for the interpreter process. */
  env?: Record<string, string>;
}

export interface EspruinoRunResult {
  /** Process exit code; null when it was killed (timeout) or died by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** What the program printed: banner removed, prompt noise removed, \r\n turned into \n. */
  stdout: string;
  /** Lines of stdout that contain "Uncaught" (errors nobody caught, at top level or in a callback). */
  uncaught: string[];
  /** Lines of stdout starting with "ERROR:" (interpreter-level errors, e.g. a refused connect). */
  errors: string[];
  /** True when the run hit timeoutMs and was killed. */
  timedOut: boolean;
  /** stdout exactly as received. */
  raw: string;
  stderr: string;
}

/** Path of the Espruino Linux interpreter from ESPRUINO_BIN, or undefined when unset or not executable. */
export function espruinoBin(): string | undefined {
  const bin = process.env.ESPRUINO_BIN;
  if (!bin) return undefined;
  try {
    if (!statSync(bin).isFile()) return undefined;
    accessSync(bin, constants.X_OK);
    return bin;
  } catch {
    return undefined;
  }
}

/** Why espruinoBin() is undefined, for a printed skip reason; undefined when it is usable. */
export function espruinoSkipReason(): string | undefined {
  const bin = process.env.ESPRUINO_BIN;
  if (!bin) {
    return 'ESPRUINO_BIN not set — point it at an Espruino Linux interpreter (built from the Espruino sources with `BOARD=LINUX RELEASE=1 make`) to run this test';
  }
  if (!espruinoBin()) return 'ESPRUINO_BIN=' + bin + ' is not an executable file';
  return undefined;
}

const BANNER_END = 'http://espruino.com/Donate\r\n\r\n';

/** Turn the interpreter's raw console output into what the program printed. */
export function cleanEspruinoOutput(raw: string): string {
  let s = raw;
  const bannerAt = s.indexOf(BANNER_END);
  if (bannerAt >= 0 && bannerAt < 2000) s = s.slice(bannerAt + BANNER_END.length);
  // The idle prompt ">" is erased ("\r" + ESC[J) before the next output; drop both.
  s = s.split('>\r\x1b[J').join('');
  s = s.split('\r\x1b[J').join('');
  s = s.replace(/\r\n/g, '\n');
  // The prompt printed after the last output (no newline after it).
  if (s.endsWith('>')) s = s.slice(0, -1);
  return s;
}

/**
 * Write `bundleJs` to a fresh temp dir and run it with ESPRUINO_BIN. stdin is a pipe held open (never
 * EOF). Resolves when the interpreter exits (no timers or sockets left, or quit()), or when it is
 * killed at timeoutMs. Rejects only when ESPRUINO_BIN is unusable or the process cannot start.
 */
export async function runOnEspruino(bundleJs: string, opts: EspruinoRunOptions): Promise<EspruinoRunResult> {
  const bin = espruinoBin();
  if (!bin) throw new Error(espruinoSkipReason());
  const dir = mkdtempSync(join(tmpdir(), 'wren-espruino-'));
  const file = join(dir, 'bundle.js');
  writeFileSync(file, bundleJs);
  try {
    return await new Promise<EspruinoRunResult>((resolve, reject) => {
      const child = spawn(bin, [file], {
        cwd: opts.cwd ?? dir,
        env: { ...process.env, ...(opts.env ?? {}) },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      // Held open, never written: the interpreter sees no input and no EOF.
      child.stdin.on('error', () => {});
      const timer = setTimeout(() => {
        timedOut = true;
        if (child.pid !== undefined) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, opts.timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        child.stdin.destroy();
        const raw = Buffer.concat(out).toString('latin1');
        const stdout = cleanEspruinoOutput(raw);
        const lines = stdout.split('\n');
        resolve({
          exitCode: code,
          signal,
          stdout,
          uncaught: lines.filter((l) => l.includes('Uncaught')),
          errors: lines.filter((l) => l.startsWith('ERROR:')),
          timedOut,
          raw,
          stderr: Buffer.concat(err).toString('latin1'),
        });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface BundleOptions {
  /** esbuild `define` (e.g. { 'process.env.X': '"1"' }). */
  define?: Record<string, string>;
  /** Minify with esbuild (default true; never use the espruino CLI's minifier). */
  minify?: boolean;
}

/** Bundle `entry` with the shared Espruino esbuild options and return the JavaScript text. */
export async function bundleForEspruino(entry: string, opts?: BundleOptions): Promise<string> {
  const base = await loadEspruinoBuildOptions();
  const result = await build({
    ...base,
    entryPoints: [entry],
    write: false,
    minify: opts?.minify ?? true,
    define: { ...(base.define ?? {}), ...(opts?.define ?? {}) },
    logLevel: 'silent',
  });
  const outputs = result.outputFiles ?? [];
  if (outputs.length !== 1) throw new Error('esbuild produced ' + outputs.length + ' outputs for ' + entry);
  return outputs[0].text;
}
