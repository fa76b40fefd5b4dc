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
// - A torn append leaves the bytes written before the loss (the caller's framing drops them); the
//   next append goes after them. If flash after the end holds garbage, the segment is treated as full.
// - Space: before creating segments, free space is checked with Storage.getFree(); if it is short,
//   Storage.compact() runs once and the check is repeated; still short -> false, nothing written.
//   COST of compact(): it rewrites every live file that follows the first trash and erases those pages
//   (4 KB erases, tens of ms each on ESP32, can take seconds on a full partition) with the interpreter
//   blocked, and Espruino does not protect a compaction against power loss. It runs only when space is
//   short (Espruino would run it then anyway on the next file creation).
// - Costs: the first access to a record after boot reads both slots (memory-mapped on ESP32);
//   afterwards size() and append() use cached state. replace() needs free space for the new copy while
//   the old one still exists.

import type { Log, Storage } from '../types';
import type { EspruinoEnv } from './env';
import { errText } from './env';

export interface EspruinoStorageOptions {
  /** Size of a record's first segment (bytes of data; default 256). */
  minSegmentBytes?: number;
  /** Largest segment (default 4064: with the 32-byte header, one 4 KB flash page). */
  maxSegmentBytes?: number;
  /** Free bytes to leave to others when creating segments (default 0). */
  reserveBytes?: number;
}

interface RecState {
  slot_: number;
  gen_: number;
  /** Segments in this slot. */
  segs_: number;
  /** Escaped bytes in the last segment. */
  fill_: number;
  /** Capacity of the last segment. */
  cap_: number;
  /** Content bytes (base + appended). */
  size_: number;
}

const MAX_SEGS = 64;
const FILE_OVERHEAD = 40; // header + alignment per file
// One-byte strings built at run time: a '\xFE' literal is bundled as UTF-8 ("þ", bytes C3 BE), which
// Espruino reads as two bytes; esbuild also folds String.fromCharCode(0xfe) into that literal (not
// through apply).
const FE = String.fromCharCode.apply(null, [0xfe]);
const FF = String.fromCharCode.apply(null, [0xff]);

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length < 1 || name.length > 28 || !/^[\x20-\x7e]+$/.test(name)) {
    throw new Error('invalid storage record name ' + JSON.stringify(name));
  }
}

function esc(s: string): string {
  return (s as any).replaceAll(FE, FE + '\x01').replaceAll(FF, FE + '\x02');
}

function unesc(s: string): string {
  return (s as any).replaceAll(FE + '\x02', FF).replaceAll(FE + '\x01', FE);
}

function getU32(s: string, i: number): number {
  return ((s.charCodeAt(i) << 24) | (s.charCodeAt(i + 1) << 16) | (s.charCodeAt(i + 2) << 8) | s.charCodeAt(i + 3)) >>> 0;
}

export class EspruinoStorage implements Storage {
  private S_: any;
  private E_: any;
  private log_: Log | undefined;
  private minSeg_: number;
  private maxSeg_: number;
  private reserve_: number;
  /** '$' + name -> state, or null when known absent. */
  private cache_: any;
  /** Storage.compact() calls made. */
  compactions: number;

  constructor(env: EspruinoEnv, options?: EspruinoStorageOptions, log?: Log) {
    const o = options || {};
    this.S_ = env.require('Storage');
    this.E_ = env.E;
    this.log_ = log;
    this.minSeg_ = o.minSegmentBytes || 256;
    this.maxSeg_ = o.maxSegmentBytes || 4064;
    this.reserve_ = o.reserveBytes || 0;
    this.cache_ = {};
    this.compactions = 0;
  }

  /** The Storage file-name stem of a record (at most 27 characters). */
  private base_(name: string): string {
    if (name.length <= 27) return name;
    const h = ('0000' + (this.E_.CRC32(name) >>> 0).toString(36)).substr(-4);
    return name.substr(0, 22) + '\x7f' + h;
  }

  private file_(base: string, slot: number, k: number): string {
    return base + String.fromCharCode(0x80 + slot * 64 + k);
  }

  /** The escaped stream of a slot, its segment count, the fill and capacity of its last segment. */
  private readSlot_(base: string, slot: number): { s: string; segs_: number; fill_: number; cap_: number } | undefined {
    let s = '';
    let k = 0;
    let fill = 0;
    let cap = 0;
    while (k < MAX_SEGS) {
      const d = this.S_.read(this.file_(base, slot, k));
      if (d === undefined) break;
      cap = d.length;
      const i = d.indexOf(FF);
      fill = i < 0 ? cap : i;
      // garbage after the end (a torn write): treat the segment as full, append in a new one
      if (i >= 0 && /[^\xff]/.test(d.substr(i))) fill = cap;
      s += i < 0 ? d : d.substr(0, i);
      k++;
    }
    return k === 0 ? undefined : { s: s, segs_: k, fill_: fill, cap_: cap };
  }

  /** Parse a generation: its name, gen and header length, or undefined if incomplete or corrupt. */
  private parse_(u: string): { name_: string; gen_: number; hdr_: number } | undefined {
    if (u.charCodeAt(0) !== 0x57) return undefined;
    const n = u.charCodeAt(1);
    const hdr = 11 + n;
    if (!(n >= 1 && n <= 28) || u.length < hdr) return undefined;
    const len = getU32(u, 3 + n);
    if (u.length < hdr + len || this.E_.CRC32(u.substr(hdr, len)) >>> 0 !== getU32(u, 7 + n)) return undefined;
    return { name_: u.substr(2, n), gen_: u.charCodeAt(2 + n), hdr_: hdr };
  }

  /** The current generation of a record (cached), or undefined. `clash` when its files hold another name. */
  private state_(name: string): RecState | undefined {
    const key = '$' + name;
    const c = this.cache_[key];
    if (c !== undefined) return c === null ? undefined : c;
    const base = this.base_(name);
    let best: RecState | undefined;
    for (let slot = 0; slot < 2; slot++) {
      const r = this.readSlot_(base, slot);
      if (r === undefined) continue;
      const u = unesc(r.s);
      const p = this.parse_(u);
      if (p === undefined) continue;
      if (p.name_ !== name) throw new Error('storage: ' + JSON.stringify(name) + ' clashes with ' + JSON.stringify(p.name_));
      const st: RecState = { slot_: slot, gen_: p.gen_, segs_: r.segs_, fill_: r.fill_, cap_: r.cap_, size_: u.length - p.hdr_ };
      if (best === undefined || ((st.gen_ - best.gen_) & 255) === 1) best = st;
    }
    this.cache_[key] = best === undefined ? null : best;
    return best;
  }

  private header_(name: string, gen: number, data: string): string {
    const n = data.length;
    const c = this.E_.CRC32(data) >>> 0;
    return 'W' + String.fromCharCode(name.length) + name + String.fromCharCode(gen, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, (c >>> 24) & 255, (c >>> 16) & 255, (c >>> 8) & 255, c & 255);
  }

  /** Capacities of the new segments needed to add `len` escaped bytes, or undefined if too many. */
  private plan_(st: RecState, len: number): number[] | undefined {
    const caps: number[] = [];
    let rem = len - (st.segs_ > 0 ? st.cap_ - st.fill_ : 0);
    let prev = st.segs_ > 0 ? st.cap_ : this.minSeg_ >> 1;
    while (rem > 0) {
      let cap = Math.max(rem, prev * 2);
      if (cap < this.minSeg_) cap = this.minSeg_;
      if (cap > this.maxSeg_) cap = this.maxSeg_;
      caps.push(cap);
      rem -= cap;
      prev = cap;
    }
    return st.segs_ + caps.length > MAX_SEGS ? undefined : caps;
  }

  /** True when `caps` fit in free flash (compacting once if needed). */
  private room_(caps: number[]): boolean {
    let need = 0;
    for (let i = 0; i < caps.length; i++) need += caps[i] + FILE_OVERHEAD;
    if (need === 0) return true;
    need += this.reserve_;
    if (this.S_.getFree() >= need) return true;
    try {
      this.S_.compact();
      this.compactions++;
      if (this.log_) this.log_.info('storage', 'compacted: ' + this.S_.getFree() + ' bytes free');
    } catch (e) {
      // fall through to the check
    }
    return this.S_.getFree() >= need;
  }

  /** Write escaped `s` after the end of `st`'s stream (in place, then into new segments `caps`). */
  private put_(base: string, st: RecState, s: string, caps: number[]): void {
    let pos = 0;
    if (st.segs_ > 0 && st.fill_ < st.cap_ && s.length > 0) {
      const n = Math.min(st.cap_ - st.fill_, s.length);
      this.S_.write(this.file_(base, st.slot_, st.segs_ - 1), s.substr(0, n), st.fill_);
      st.fill_ += n;
      pos = n;
    }
    for (let i = 0; i < caps.length; i++) {
      const piece = s.substr(pos, caps[i]);
      if (this.S_.write(this.file_(base, st.slot_, st.segs_), piece, 0, caps[i]) === false) throw new Error('Storage.write failed');
      st.segs_++;
      st.cap_ = caps[i];
      st.fill_ = piece.length;
      pos += piece.length;
    }
  }

  /** Erase every segment of a slot, highest first (a prefix 0..k always remains valid to probe). */
  private eraseSlot_(base: string, slot: number): void {
    let k = 0;
    while (k < MAX_SEGS && this.S_.read(this.file_(base, slot, k), 0, 1) !== undefined) k++;
    while (k > 0) this.S_.erase(this.file_(base, slot, --k));
  }

  read(name: string): Uint8Array | undefined {
    checkName(name);
    const st = this.state_(name);
    if (st === undefined) return undefined;
    const r = this.readSlot_(this.base_(name), st.slot_);
    if (r === undefined) return undefined;
    const u = unesc(r.s);
    return this.E_.toUint8Array(u.substr(11 + u.charCodeAt(1)));
  }

  size(name: string): number | undefined {
    checkName(name);
    const st = this.state_(name);
    return st === undefined ? undefined : st.size_;
  }

  append(name: string, bytes: Uint8Array): boolean {
    checkName(name);
    let st = this.state_(name);
    if (st !== undefined && bytes.length === 0) return true;
    const base = this.base_(name);
    let s = bytes.length > 0 ? esc(this.E_.toString(bytes)) : '';
    const fresh = st === undefined;
    if (st === undefined) {
      st = { slot_: 0, gen_: 0, segs_: 0, fill_: 0, cap_: 0, size_: 0 };
      s = esc(this.header_(name, 0, '')) + s;
    }
    const caps = this.plan_(st, s.length);
    if (caps === undefined || !this.room_(caps)) return false;
    try {
      if (fresh) this.eraseSlot_(base, 0);
      this.put_(base, st, s, caps);
    } catch (e) {
      delete this.cache_['$' + name];
      if (this.log_) this.log_.error('storage', 'append to ' + name + ' failed: ' + errText(e));
      return false;
    }
    st.size_ += bytes.length;
    this.cache_['$' + name] = st;
    return true;
  }

  replace(name: string, bytes: Uint8Array): boolean {
    checkName(name);
    const old = this.state_(name);
    const base = this.base_(name);
    const data = bytes.length > 0 ? this.E_.toString(bytes) : '';
    const st: RecState = {
      slot_: old !== undefined ? 1 - old.slot_ : 0,
      gen_: old !== undefined ? (old.gen_ + 1) & 255 : 0,
      segs_: 0,
      fill_: 0,
      cap_: 0,
      size_: bytes.length,
    };
    const s = esc(this.header_(name, st.gen_, data) + data);
    const caps = this.plan_(st, s.length);
    if (caps === undefined) return false;
    try {
      this.eraseSlot_(base, st.slot_); // leftovers of an interrupted replace
      if (!this.room_(caps)) return false;
      this.put_(base, st, s, caps);
    } catch (e) {
      try {
        this.eraseSlot_(base, st.slot_);
      } catch (e2) {
        // the torn copy fails its CRC anyway
      }
      if (this.log_) this.log_.error('storage', 'replace of ' + name + ' failed: ' + errText(e));
      return false;
    }
    this.cache_['$' + name] = st;
    if (old !== undefined) this.eraseSlot_(base, old.slot_);
    return true;
  }

  erase(name: string): void {
    checkName(name);
    this.state_(name); // throws on a clash instead of erasing another record's files
    const base = this.base_(name);
    this.eraseSlot_(base, 0);
    this.eraseSlot_(base, 1);
    this.cache_['$' + name] = null;
  }

  list(prefix?: string): string[] {
    const p = prefix || '';
    const files: string[] = this.S_.list();
    const seen: any = {};
    const out: string[] = [];
    for (let i = 0; i < files.length; i++) {
      const f = files[i];
      const c = f.charCodeAt(f.length - 1);
      if (c !== 0x80 && c !== 0xc0) continue;
      const h = this.S_.read(f, 0, 30);
      if (h === undefined || h.charCodeAt(0) !== 0x57) continue;
      const name = h.substr(2, h.charCodeAt(1));
      if (seen['$' + name] || name.indexOf(p) !== 0 || name.length !== h.charCodeAt(1)) continue;
      seen['$' + name] = 1;
      try {
        checkName(name);
        if (this.base_(name) === f.substr(0, f.length - 1) && this.state_(name) !== undefined) out.push(name);
      } catch (e) {
        // not one of ours
      }
    }
    return out.sort();
  }

  free(): number | undefined {
    try {
      const f = this.S_.getFree();
      return typeof f === 'number' ? f : undefined;
    } catch (e) {
      return undefined;
    }
  }
}
