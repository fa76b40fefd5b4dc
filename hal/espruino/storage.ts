// Storage on Espruino's flash Storage (require("Storage")), implementing hal/types Storage: named
// records, append() that may tear, replace() that is atomic, little flash wear.
//
// WHAT ESPRUINO'S STORAGE DOES (src/jsflash.c, 2v29)
// - A file is a 32-byte header (size, 28-byte name) + data, allocated journal-style after the last
//   file. Storage.write(name, data) with offset 0 first marks the old file as trash, then writes a new
//   header, then the data: it is NOT atomic (a power loss between the two loses both).
// - Storage.write(name, data, 0, size) creates a file of `size` bytes of erased flash (0xFF);
//   Storage.write(name, data, offset) with offset > 0 then programs bytes inside it, without erasing
//   anything, and throws if that area is not erased. This is the only cheap way to append.
// - Erased files are trash until a compaction (automatic when a new file does not fit, or
//   Storage.compact()) copies the live files down and erases flash pages. Compaction is the only
//   erase, so journaling spreads the wear over the whole partition.
// - Names longer than 28 characters are silently truncated. StorageFile (Storage.open) appends too but
//   cannot hold the byte 0xFF (it finds the end of a file at the first 0xFF).
//
// FORMAT USED HERE
// A record is a GENERATION: a byte stream [header][base][appended bytes...] stored ESCAPED so it never
// contains 0xFF (0xFE -> FE 01, 0xFF -> FE 02, with the native String.replaceAll): the first 0xFF of a
// file is then where its data ends, found with a native indexOf and no length field to rewrite.
//   header = 'W', nameLen u8, name, gen u8, baseLen u32 BE, baseCrc u32 BE (CRC-32 of base, E.CRC32)
// The stream is split over SEGMENTS: files named <base><code> where <base> is the record name (or,
// for a 28-character name, its first 22 characters + '\x7f' + a 4-character hash: a name Storage
// cannot truncate) and <code> one character 0x80 + 64 * slot + segment index (0..63). Segments are
// pre-allocated (256 bytes first, doubling up to 4064) and filled in place.
// - append(): the escaped bytes are written in place after the end of the last segment; when it is
//   full, a new segment is created. Nothing is rewritten. Flash wear per message ~ the bytes appended
//   (+ about 1 byte in 128 for escapes), plus a 32-byte header per new segment.
// - replace(): writes a new generation (gen + 1) in the OTHER slot, complete with base and CRC, then
//   erases the old slot (highest segment first). A record is read from the newest slot whose header is
//   complete and whose base matches its CRC: after a power loss at any point, that is the old
//   generation (new one torn: bad CRC, or missing) or the new one (complete; the old may still exist).
//   read() then erases the other slot (torn or older): a replace() always writes to an empty slot.
// - A torn append leaves the bytes written before the loss (the caller's framing drops them); the
//   next append goes after them. If flash after the end holds garbage, the segment is treated as full.
// - Space: before creating segments, free space is checked with Storage.getFree(); if it is short,
//   Storage.compact() runs once and the check is repeated; still short -> false, nothing written.
//   COST of compact(): it rewrites every live file that follows the first trash and erases those pages
//   (4 KB erases, tens of ms each on ESP32, can take seconds on a full partition) with the interpreter
//   blocked, and Espruino does not protect a compaction against power loss. It runs only when space is
//   short (Espruino would run it then anyway on the next file creation).
// - The first append() to a record that does not exist is a replace() (a complete generation 0).
// - Costs: the first access to a record after boot reads both slots (memory-mapped on ESP32), and so
//   does read(); afterwards append() uses cached state. replace() needs free space for the new copy
//   while the old one still exists.

import type { Storage } from '../types';
import type { EspruinoEnv } from './env';

/** A record's current generation (segs_ 0: there is no record). */
interface RecState {
  /** The file-name stem of the record. */
  base_: string;
  slot_: number;
  gen_: number;
  /** Segments in the slot. */
  segs_: number;
  /** Escaped bytes in the last segment. */
  fill_: number;
  /** Capacity of the last segment. */
  cap_: number;
}

const chr = String.fromCharCode;
// One-byte strings made at run time: a '\xFE' literal is bundled as UTF-8 ("þ", bytes C3 BE), which
// Espruino reads as two bytes (esbuild folds String.fromCharCode(0xfe) into that literal, not chr()).
const FE = chr(0xfe);
const FF = chr(0xff);

/** A u32 as 4 bytes, big-endian: the header's base length and CRC-32 (compared in this form). */
function be32(x: number): string {
  return chr(x >>> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255);
}

export class EspruinoStorage implements Storage {
  S_: any;
  E_: any;
  /** '$' + name -> RecState, filled by read() (the first access to a record reads it). Internal. */
  cache_: any;

  constructor(env: EspruinoEnv) {
    this.S_ = env.require('Storage');
    this.E_ = env.E;
    this.cache_ = {};
  }

  /**
   * Reads the record's current generation from flash: the newest slot whose header is complete and
   * whose base matches its CRC; the other slot is erased. Caches its state for append(). Throws for a
   * clash (its files hold another name) and, except in a device build (whose names are fixed), for an
   * invalid name.
   */
  read(name: string): Uint8Array | undefined {
    if (typeof WREN_DEVICE === 'undefined' && !(name.length <= 28 && /^[ -~]+$/.test(name))) throw new Error('bad name ' + name);
    // 28 characters leave no room for the segment code: 22 of them + DEL + a hash
    const base = name.length < 28 ? name : name.substr(0, 22) + '\x7f' + ('0000' + (this.E_.CRC32(name) >>> 0).toString(36)).substr(-4);
    // none yet (no segs_): the first append() or replace() goes to slot 0 with gen 0
    let best = { base_: base, slot_: 1, gen_: 255, segs_: 0 } as RecState;
    let data: Uint8Array | undefined;
    for (let slot = 0; slot < 2; slot++) {
      let u = '';
      let k = 0;
      let fill = 0;
      let cap = 0;
      let d: string | undefined;
      while (k < 64 && (d = this.S_.read(base + chr(0x80 + slot * 64 + k))) !== undefined) {
        cap = d.length;
        fill = d.indexOf(FF);
        if (fill < 0) fill = cap;
        u += d.substr(0, fill);
        // garbage after the end (a torn write): the segment counts as full, the next append opens another
        if (/[^\xff]/.test(d.substr(fill))) fill = cap;
        k++;
      }
      u = (u as any).replaceAll(FE + '\x02', FF).replaceAll(FE + '\x01', FE);
      // the header: 'W', name length n, name, gen, then the base's length and CRC-32
      const n = u.charCodeAt(1);
      let len = 0;
      for (let i = n + 3; i < n + 7; i++) len = len * 256 + u.charCodeAt(i);
      // (torn: the header is short, or the base is, and then does not match the CRC)
      if (u[0] === 'W' && u.substr(n + 7, 4) === be32(this.E_.CRC32(u.substr(n + 11, len)))) {
        // (only two 28-character names can clash: never in a device build, whose names are fixed)
        if (typeof WREN_DEVICE === 'undefined' && u.substr(2, n) !== name) throw new Error('clash: ' + name);
        const gen = u.charCodeAt(n + 2);
        if (!best.segs_ || ((gen - best.gen_) & 255) === 1) {
          // the slot read first held the older generation: a replace() was cut before it erased it
          this.erase_(base, best.slot_, best.segs_);
          best = { base_: base, slot_: slot, gen_: gen, segs_: k, fill_: fill, cap_: cap };
          data = this.E_.toUint8Array(u.substr(n + 11));
          continue;
        }
      }
      // torn (a replace() was cut) or older: erased, so that a replace() writes to an empty slot
      this.erase_(base, slot, k);
    }
    this.cache_['$' + name] = best;
    return data;
  }

  /** Erase a slot's first n segments, the highest first (what is left is always a prefix). Internal. */
  erase_(base: string, slot: number, n: number): void {
    while (n > 0) this.S_.erase(base + chr(0x80 + slot * 64 + --n));
  }

  /**
   * In place after the end of the stream, or (`replace`, or no record yet) a new generation in the
   * other slot.
   */
  append(name: string, bytes: Uint8Array, replace?: boolean): boolean {
    const S = this.S_;
    const key = '$' + name;
    if (!this.cache_[key]) this.read(name);
    const old: RecState = this.cache_[key];
    const base = old.base_;
    let st = old;
    let s: string = this.E_.toString(bytes);
    if (replace || !old.segs_) {
      st = { base_: base, slot_: 1 - old.slot_, gen_: (old.gen_ + 1) & 255, segs_: 0, fill_: 0, cap_: 0 };
      s = 'W' + chr(name.length) + name + chr(st.gen_) + be32(s.length) + be32(this.E_.CRC32(s)) + s;
    }
    s = (s as any).replaceAll(FE, FE + '\x01').replaceAll(FF, FE + '\x02');
    // new segments for what does not fit in the last one: each twice the one before, 256 bytes at
    // least, 4064 at most (one 4 KB flash page with the file header)
    const caps: number[] = [];
    let rem = s.length - (st.cap_ - st.fill_);
    let cap = st.cap_ || 128;
    let need = 0;
    while (rem > 0) {
      caps.push((cap = Math.min(Math.max(rem, cap * 2, 256), 4064)));
      rem -= cap;
      need += cap + 40; // + file header and alignment
    }
    if (st.segs_ + caps.length > 64) return false;
    try {
      if (S.getFree() < need) {
        S.compact();
        if (S.getFree() < need) return false;
      }
      for (let pos = 0; pos < s.length; ) {
        let off = st.fill_;
        if (off >= st.cap_) {
          // the last segment is full (or there is none): a new one, created at its full size
          st.cap_ = caps.shift() as number;
          st.segs_++;
          off = 0;
        }
        const piece = s.substr(pos, st.cap_ - off);
        // (a failure throws: Storage.write() returns false only for a negative offset or size)
        S.write(base + chr(0x80 + st.slot_ * 64 + st.segs_ - 1), piece, off, off ? undefined : st.cap_);
        st.fill_ = off + piece.length;
        pos += piece.length;
      }
    } catch (e) {
      // read from flash again (which erases a torn new generation)
      delete this.cache_[key];
      return false; // (the caller reports it)
    }
    this.cache_[key] = st;
    if (st !== old) this.erase_(base, old.slot_, old.segs_);
    return true;
  }

  replace(name: string, bytes: Uint8Array): boolean {
    return this.append(name, bytes, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Node only (and bundles without WREN_DEVICE, such as the interpreter tests'): the Storage methods
// the firmware never calls (grep firmware/), left out of a device build like Session's.

export interface EspruinoStorage {
  /** The record is read for it. */
  size(name: string): number | undefined;
  erase(name: string): void;
  list(prefix?: string): string[];
  free(): number | undefined;
}

if (typeof WREN_DEVICE === 'undefined') {
  const p = EspruinoStorage.prototype;
  p.size = function (this: EspruinoStorage, name: string): number | undefined {
    const d = this.read(name);
    return d && d.length;
  };
  p.erase = function (this: EspruinoStorage, name: string): void {
    this.read(name); // throws on a clash instead of erasing another record's files; erases the other slot
    const st: RecState = this.cache_['$' + name];
    this.erase_(st.base_, st.slot_, st.segs_);
    st.segs_ = 0;
  };
  p.list = function (this: EspruinoStorage, prefix?: string): string[] {
    const out: string[] = [];
    // the first segment of a slot starts with the header: 'W', name length, name
    const files: string[] = this.S_.list(/[\x80\xc0]$/);
    for (let i = 0; i < files.length; i++) {
      const h: string = this.S_.read(files[i], 0, 30);
      const name = h.substr(2, h.charCodeAt(1));
      try {
        if (name && !name.indexOf(prefix || '') && out.indexOf(name) < 0 && this.read(name)) out.push(name);
      } catch (e) {
        // not one of ours
      }
    }
    return out.sort();
  };
  p.free = function (this: EspruinoStorage): number | undefined {
    return this.S_.getFree();
  };
}
