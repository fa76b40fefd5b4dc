// Only the scheduler owns time: no timer API may appear in firmware/ code (comments are ignored).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';

const FORBIDDEN = /\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|clearImmediate|requestAnimationFrame)\b/;

/**
 * Replace comments with spaces (newlines kept, so line numbers stay right). Aware of '...', "..." and
 * `...` strings so that "http://x" is not taken for a comment. Regex literals are not parsed (a quote
 * inside one could confuse it; the firmware has none that matter).
 */
function stripComments(src: string): string {
  let out = '';
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    const d = src[i + 1];
    if (c === '/' && d === '/') {
      while (i < n && src[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (c === '/' && d === '*') {
      out += '  ';
      i += 2;
      while (i < n && !(src[i] === '*' && src[i + 1] === '/')) {
        out += src[i] === '\n' ? '\n' : ' ';
        i++;
      }
      if (i < n) {
        out += '  ';
        i += 2;
      }
    } else if (c === "'" || c === '"' || c === '`') {
      out += c;
      i++;
      while (i < n && src[i] !== c) {
        if (src[i] === '\\' && i + 1 < n) {
          out += src[i] + src[i + 1];
          i += 2;
          continue;
        }
        if (c !== '`' && src[i] === '\n') break; // unterminated: stop at end of line
        out += src[i];
        i++;
      }
      if (i < n && src[i] === c) {
        out += c;
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Lines (1-based) of `src` that use a timer API outside comments. */
function timerUses(src: string): Array<{ line: number; text: string }> {
  const lines = stripComments(src).split('\n');
  const out: Array<{ line: number; text: string }> = [];
  for (let k = 0; k < lines.length; k++) if (FORBIDDEN.test(lines[k])) out.push({ line: k + 1, text: lines[k].trim() });
  return out;
}

function firmwareFiles(): string[] {
  const root = path.resolve(__dirname, '..', 'firmware');
  return (fs.readdirSync(root, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(root, f))
    .sort();
}

describe('no timers in firmware/', () => {
  it('the scanner ignores comments but not code', () => {
    expect(timerUses('// setTimeout(f, 1)\nconst x = 1;')).toEqual([]);
    expect(timerUses('/* setInterval\n clearTimeout(h) */ let y = 2;')).toEqual([]);
    expect(timerUses('const a = 1;\nsetTimeout(f, 10);')).toEqual([{ line: 2, text: 'setTimeout(f, 10);' }]);
    expect(timerUses('const u = "http://host"; setInterval(f, 5);')).toHaveLength(1);
    expect(timerUses("const s = '/*'; clearTimeout(h); // */")).toHaveLength(1);
    expect(timerUses('const t = `a // b`; setImmediate(f);')).toHaveLength(1);
    expect(timerUses('g.setTimeout(cb, 0)')).toHaveLength(1);
    expect(timerUses('const mySetTimeoutMs = 5;')).toEqual([]);
  });

  it('firmware/**/*.ts never calls setTimeout/setInterval (only the scheduler owns time)', () => {
    const files = firmwareFiles();
    expect(files.some((f) => f.endsWith(path.join('scheduler', 'index.ts')))).toBe(true);
    const offenders: string[] = [];
    for (const f of files) {
      for (const u of timerUses(fs.readFileSync(f, 'utf8'))) offenders.push(path.relative(process.cwd(), f) + ':' + u.line + ': ' + u.text);
    }
    expect(offenders).toEqual([]);
  });
});
