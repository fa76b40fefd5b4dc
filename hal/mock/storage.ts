// In-memory Storage with power-loss simulation. failAfterBytes(n) arms a torn write: the next
// append/replace persists only its first n bytes (optionally padded, like erased flash), then the
// "power fails": the call throws PowerLoss and the instance is dead (every later call throws) until the
// test takes reboot(), a new instance holding exactly what had been persisted. replace() stays atomic:
// a torn replace leaves the old content. Runs on Node only.

import type { Storage } from '../types';

/** Thrown by MemoryStorage when a simulated power loss happens (and by every call afterwards). */
export class PowerLoss extends Error {
  readonly code = 'POWER_LOSS';
  constructor(message: string) {
    super(message);
    this.name = 'PowerLoss';
  }
}

export const MAX_NAME_LENGTH = 28;

/** Throws for a name Espruino's Storage would not accept: 1..28 printable ASCII characters. */
export function checkRecordName(name: string): void {
  if (typeof name !== 'string' || name.length < 1 || name.length > MAX_NAME_LENGTH || !/^[\x20-\x7e]+$/.test(name)) {
    throw new Error('invalid storage record name ' + JSON.stringify(name) + ' (1..28 printable ASCII characters)');
  }
}

export interface MemoryStorageOptions {
  /** Total bytes available (default 896 KiB, the ESP32 Storage partition). */
  capacity?: number;
  /** Initial records (copied). */
  records?: Record<string, Uint8Array>;
}

export class MemoryStorage implements Storage {
  private records: Record<string, Uint8Array> = {};
  private capacity: number;
  private fail: { n: number; pad: number | undefined } | undefined;
  /** True after a simulated power loss: every call throws until reboot(). */
  dead = false;
  /** append/replace calls that wrote something (flash wear accounting). */
  writes = 0;
  /** Bytes written by append/replace. */
  bytesWritten = 0;

  constructor(options?: MemoryStorageOptions) {
    this.capacity = options?.capacity ?? 896 * 1024;
    const init = options?.records;
    if (init) for (const k of Object.keys(init)) this.records[k] = new Uint8Array(init[k]);
  }

  /**
   * Arm a power loss for the next append() or replace(): only its first `n` bytes persist; with
   * `padWith` (e.g. 0xff, erased flash) the rest of that write's length persists as that byte instead
   * of being missing. Then the call throws PowerLoss and the storage is dead.
   */
  failAfterBytes(n: number, padWith?: number): void {
    this.fail = { n, pad: padWith };
  }

  /** Cut the power now (no write in progress): the storage is dead until reboot(). */
  powerOff(): void {
    this.dead = true;
  }

  /** A copy of what is persisted: name -> bytes. */
  snapshot(): Record<string, Uint8Array> {
    const out: Record<string, Uint8Array> = {};
    for (const k of Object.keys(this.records)) out[k] = new Uint8Array(this.records[k]);
    return out;
  }

  /** A fresh storage with the persisted content (a reboot). This instance stays as it is. */
  reboot(): MemoryStorage {
    return new MemoryStorage({ capacity: this.capacity, records: this.records });
  }

  /** Same as reboot(). */
  clone(): MemoryStorage {
    return this.reboot();
  }

  read(name: string): Uint8Array | undefined {
    this.alive();
    checkRecordName(name);
    const r = this.records[name];
    return r === undefined ? undefined : new Uint8Array(r);
  }

  size(name: string): number | undefined {
    this.alive();
    checkRecordName(name);
    const r = this.records[name];
    return r === undefined ? undefined : r.length;
  }

  append(name: string, bytes: Uint8Array): boolean {
    this.alive();
    checkRecordName(name);
    if (bytes.length > this.freeBytes()) return false;
    const old = this.records[name] ?? new Uint8Array(0);
    const fail = this.takeFail();
    let data = bytes;
    if (fail !== undefined && fail.n < bytes.length) {
      data = new Uint8Array(fail.pad === undefined ? fail.n : bytes.length);
      if (fail.pad !== undefined) data.fill(fail.pad);
      data.set(bytes.subarray(0, fail.n), 0);
    }
    const out = new Uint8Array(old.length + data.length);
    out.set(old, 0);
    out.set(data, old.length);
    this.records[name] = out;
    this.writes++;
    this.bytesWritten += data.length;
    if (fail !== undefined) this.die('append to ' + name, fail.n, bytes.length);
    return true;
  }

  replace(name: string, bytes: Uint8Array): boolean {
    this.alive();
    checkRecordName(name);
    const old = this.records[name];
    if (bytes.length > this.freeBytes() + (old ? old.length : 0)) return false;
    const fail = this.takeFail();
    if (fail !== undefined && fail.n < bytes.length) {
      // the temporary copy was torn; the rename never happened: the old content survives
      this.writes++;
      this.bytesWritten += fail.n;
      this.die('replace of ' + name, fail.n, bytes.length);
    }
    this.records[name] = new Uint8Array(bytes);
    this.writes++;
    this.bytesWritten += bytes.length;
    if (fail !== undefined) this.die('replace of ' + name, fail.n, bytes.length);
    return true;
  }

  erase(name: string): void {
    this.alive();
    checkRecordName(name);
    delete this.records[name];
  }

  list(prefix?: string): string[] {
    this.alive();
    const p = prefix ?? '';
    return Object.keys(this.records)
      .filter((k) => k.startsWith(p))
      .sort();
  }

  free(): number | undefined {
    this.alive();
    return this.freeBytes();
  }

  private freeBytes(): number {
    let used = 0;
    for (const k of Object.keys(this.records)) used += this.records[k].length;
    return this.capacity - used;
  }

  private takeFail(): { n: number; pad: number | undefined } | undefined {
    const f = this.fail;
    this.fail = undefined;
    return f;
  }

  private die(what: string, n: number, len: number): never {
    this.dead = true;
    throw new PowerLoss('power lost during ' + what + ' after ' + Math.min(n, len) + ' of ' + len + ' bytes');
  }

  private alive(): void {
    if (this.dead) throw new PowerLoss('storage is powered off (simulated power loss); use reboot()');
  }
}
