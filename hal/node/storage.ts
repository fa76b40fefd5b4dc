// Storage on Node: one file per record in a directory. append() uses an append-mode write (optionally
// fsynced); replace() is atomic: write a temporary file, fsync it, rename it over the record, fsync the
// directory. Record names are encoded into safe file names (reversibly).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Storage } from '../types';

const MAX_NAME_LENGTH = 28;
const TMP_DIR = '.tmp';

function checkRecordName(name: string): void {
  if (typeof name !== 'string' || name.length < 1 || name.length > MAX_NAME_LENGTH || !/^[\x20-\x7e]+$/.test(name)) {
    throw new Error('invalid storage record name ' + JSON.stringify(name) + ' (1..28 printable ASCII characters)');
  }
}

/** Record name -> file name: [A-Za-z0-9_-] and non-leading '.' kept, everything else %XX. */
export function encodeRecordName(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (/[A-Za-z0-9_-]/.test(c) || (c === '.' && i > 0)) out += c;
    else out += '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function decodeRecordName(file: string): string {
  return file.replace(/%([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

export interface FileStorageOptions {
  /** fsync after each append (durable, slower). Default false. replace() always fsyncs. */
  syncAppends?: boolean;
  /** Pretend the device has this many bytes (free() and out-of-space results). Default: the disk's free space. */
  capacity?: number;
}

export class FileStorage implements Storage {
  private syncAppends: boolean;
  private capacity: number | undefined;

  constructor(
    readonly dir: string,
    options?: FileStorageOptions,
  ) {
    this.syncAppends = options?.syncAppends ?? false;
    this.capacity = options?.capacity;
    fs.mkdirSync(path.join(dir, TMP_DIR), { recursive: true });
    // leftovers of a replace interrupted by a crash: the rename never happened, the old record stands
    for (const f of fs.readdirSync(path.join(dir, TMP_DIR))) fs.rmSync(path.join(dir, TMP_DIR, f), { force: true });
  }

  private file(name: string): string {
    checkRecordName(name);
    return path.join(this.dir, encodeRecordName(name));
  }

  read(name: string): Uint8Array | undefined {
    const f = this.file(name);
    try {
      return new Uint8Array(fs.readFileSync(f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  size(name: string): number | undefined {
    const f = this.file(name);
    try {
      return fs.statSync(f).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  append(name: string, bytes: Uint8Array): boolean {
    const f = this.file(name);
    if (!this.fits(bytes.length, 0)) return false;
    const fd = fs.openSync(f, 'a');
    try {
      fs.writeSync(fd, bytes);
      if (this.syncAppends) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  }

  replace(name: string, bytes: Uint8Array): boolean {
    const f = this.file(name);
    const old = this.size(name) ?? 0;
    if (!this.fits(bytes.length, old)) return false;
    const tmp = path.join(this.dir, TMP_DIR, encodeRecordName(name) + '.' + process.pid);
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, f);
    this.syncDir();
    return true;
  }

  erase(name: string): void {
    fs.rmSync(this.file(name), { force: true });
  }

  list(prefix?: string): string[] {
    const p = prefix ?? '';
    return fs
      .readdirSync(this.dir)
      .filter((f) => f[0] !== '.')
      .map(decodeRecordName)
      .filter((n) => n.startsWith(p))
      .sort();
  }

  free(): number | undefined {
    if (this.capacity !== undefined) return this.capacity - this.used();
    try {
      const s = fs.statfsSync(this.dir);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }

  private used(): number {
    let n = 0;
    for (const f of fs.readdirSync(this.dir)) {
      if (f[0] === '.') continue;
      n += fs.statSync(path.join(this.dir, f)).size;
    }
    return n;
  }

  private fits(adding: number, replacing: number): boolean {
    if (this.capacity === undefined) return true;
    return this.used() - replacing + adding <= this.capacity;
  }

  private syncDir(): void {
    try {
      const fd = fs.openSync(this.dir, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // not supported on every platform; the rename is still atomic
    }
  }
}
