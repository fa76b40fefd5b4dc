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
  /**
   * Called with each line of `stdout` (cleaned the same way: banner and prompt noise removed) as
   * soon as the line is complete, while the interpreter runs. A last line without a newline is
   * delivered when the process ends. Exceptions thrown by it are ignored.
   */
  onLine?: (line: string) => void;
  /** Aborting it kills the interpreter (SIGKILL, by PID); the result then has `aborted` true. */
  signal?: AbortSignal;
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
  /** True when opts.signal was aborted and the interpreter was killed for it. */
  aborted: boolean;
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
  s = dropPromptNoise(s);
  // The prompt printed after the last output (no newline after it).
  if (s.endsWith('>')) s = s.slice(0, -1);
  return s;
}

/** The idle prompt ">" is erased ("\r" + ESC[J) before the next output: drop both; \r\n -> \n. */
function dropPromptNoise(s: string): string {
  return s.split('>\r\x1b[J').join('').split('\r\x1b[J').join('').replace(/\r\n/g, '\n');
}

/**
 * Splits raw interpreter output into the lines cleanEspruinoOutput() would produce, chunk by chunk:
 * the banner is dropped once seen (or given up on after 2000 characters, as cleanEspruinoOutput
 * does), and each complete line is cleaned on its own (no prompt-noise pattern spans a newline).
 */
export class EspruinoLineSplitter {
  private head = '';
  private settled = false;
  private pending = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    if (!this.settled) {
      this.head += chunk;
      const at = this.head.indexOf(BANNER_END);
      if (at >= 0 && at < 2000) this.pending = this.head.slice(at + BANNER_END.length);
      else if (this.head.length >= 2000 + BANNER_END.length) this.pending = this.head;
      else return;
      this.settled = true;
      this.head = '';
    } else {
      this.pending += chunk;
    }
    const nl = this.pending.lastIndexOf('\n');
    if (nl < 0) return;
    const complete = this.pending.slice(0, nl + 1);
    this.pending = this.pending.slice(nl + 1);
    this.emit(dropPromptNoise(complete).slice(0, -1).split('\n'));
  }

  /** The process ended: deliver what is left (without the final prompt). */
  end(): void {
    let rest: string;
    if (this.settled) {
      rest = dropPromptNoise(this.pending);
      if (rest.endsWith('>')) rest = rest.slice(0, -1);
    } else rest = cleanEspruinoOutput(this.head);
    this.pending = '';
    this.head = '';
    this.settled = true;
    if (rest.length > 0) this.emit(rest.split('\n').slice(0, rest.endsWith('\n') ? -1 : undefined));
  }

  private emit(lines: string[]): void {
    for (const l of lines) {
      try {
        this.onLine(l);
      } catch {
        // a caller's bug must not break the run
      }
    }
  }
}

/**
 * Write `bundleJs` to a fresh temp dir and run it with ESPRUINO_BIN. A string is written as UTF-8;
 * bytes (a Buffer or Uint8Array) are written as they are. stdin is a pipe held open (never
 * EOF). Resolves when the interpreter exits (no timers or sockets left, or quit()), or when it is
 * killed at timeoutMs. Rejects only when ESPRUINO_BIN is unusable or the process cannot start.
 */
export async function runOnEspruino(bundleJs: string | Uint8Array, opts: EspruinoRunOptions): Promise<EspruinoRunResult> {
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
      let aborted = false;
      const splitter = opts.onLine ? new EspruinoLineSplitter(opts.onLine) : undefined;
      child.stdout.on('data', (b: Buffer) => {
        out.push(b);
        if (splitter) splitter.push(b.toString('latin1'));
      });
      child.stderr.on('data', (b: Buffer) => err.push(b));
      // Held open, never written: the interpreter sees no input and no EOF.
      child.stdin.on('error', () => {});
      const kill = () => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, opts.timeoutMs);
      const onAbort = () => {
        if (timedOut) return;
        aborted = true;
        kill();
      };
      if (opts.signal) {
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      child.on('error', (e) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        child.stdin.destroy();
        if (splitter) splitter.end();
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
          aborted,
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
