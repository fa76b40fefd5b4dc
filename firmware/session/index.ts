// The MQTT session state the client must never lose: the offline queue (bounded by count and bytes,
// with an explicit overflow policy), the QoS 1/2 in-flight window with its packet ids, and the inbound
// QoS 2 ids held until PUBREL. QoS >= 1 state is persisted through hal Storage so a reboot or a deep
// sleep loses nothing; QoS 0 messages live in RAM only.
//
// ON-FLASH FORMAT (one Storage record, `<name>.l`, FORMAT 1)
//
// The record is a sequence of frames. Every state change of a persisted item is ONE frame, appended:
//
//   [len u16 BE][type u8][body: len-1 bytes][crc32 u32 BE]
//
//   len   = 1 + body length (type + body), so a frame is len + 6 bytes.
//   crc32 = standard CRC-32 (zlib / IEEE, the same as Espruino's native E.CRC32) over len, type and
//           body: a torn or garbage-padded frame (0xFF on flash) fails the check or overruns the record.
//
//   type  body                                                       meaning
//   1 ADD     seq u32, flags u8 (bits 0-1 qos, bit 2 retain,          a QoS>=1 message was queued
//             bit 3 has properties), topicLen u16, topic UTF-8,
//             propsLen u16, properties JSON UTF-8 (correlationData
//             as a hex string), payload (the rest of the body)
//   2 SENT    seq u32, packetId u16                                  QUEUED -> SENT with this id
//   3 REC     seq u32                                                QoS 2 SENT -> RELEASED (PUBREC)
//   4 DONE    seq u32                                                removed (PUBACK/PUBCOMP, remove())
//   5 REQUEUE (empty)                                                all in flight -> QUEUED, ids freed,
//                                                                    inbound QoS 2 ids forgotten
//   6 IN2     packetId u16                                           inbound QoS 2 id held
//   7 REL     packetId u16                                           inbound QoS 2 id released (PUBREL)
//   8 CLEAR   (empty)                                                everything dropped
//   9 SEQ     format u8, nextSeq u32                                 seqs below nextSeq may have been
//                                                                    handed out (QoS 0 seqs are reserved
//                                                                    in blocks of 64 this way)
//
// load() replays the frames in order and stops at the first one whose length overruns the record, whose
// CRC is wrong, or whose body does not parse: that frame and everything after it is the torn tail of an
// interrupted append (an operation that never completed: the state is the one from before it). The
// tail's size is reported as droppedBytes, and the record is rewritten (compacted, see below) before
// anything else is appended, so a new frame never lands after garbage.
//
// COMPACTION. When the record grows past `compactBytes` (default 4096) + 2 x the size of a snapshot
// of the live state, the snapshot (SEQ, then ADD [+ SENT [+ REC]] for each persisted message in seq
// order, then IN2 for each held inbound id) is written with Storage.replace(), which is atomic: after
// a power loss the record is either the old log or the new snapshot, both complete and equivalent.
// While the live state is stable, a compaction (which rewrites it) comes only after at least
// compactBytes + its size have been appended, so compaction at most doubles the bytes written. Measured
// (test/session-powerloss.test.ts, 17-byte topic, 32-byte payload): a QoS 1 stream writes 89.3 bytes
// per message (ADD 65 + SENT 13 + DONE 11, plus 21 small compactions per 1000 messages), QoS 2 100.3
// (+ REC 11), and QoS 1 behind a 200-message backlog 139 bytes per message.
//
// If an append fails (storage full), the session tries a compaction instead (the snapshot already
// holds the change, and is usually far smaller than the log). If that fails too, enqueue() of a QoS>=1
// message returns storage-full (nothing changed); any other change stays in RAM, the session is
// marked dirty and the next write is a full snapshot.
//
// Every operation is a single frame (or a single atomic replace), so after a power loss at any byte of
// any write, load() gives either the state before the operation or the state after it. The guarantee
// for the app: once enqueue() returned ok for a QoS>=1 message, the message survives any reboot until
// complete() (or remove()/clear()/an overflow eviction, which only ever takes QoS 0 messages).
//
// Seqs are never reused: ADD frames carry them and SEQ frames reserve ahead for QoS 0 messages, so
// after a reboot the next seq is above every seq handed out before (unless a SEQ reservation could
// not be written because the storage was full: a QoS 0 seq may then repeat after a reboot).
//
// Espruino subset: no Map/Set (plain objects keyed by String(id) and arrays), no Buffer/TextEncoder
// (topics go through the codec's utf8 functions, payloads are copied with set/subarray), CRC-32 with
// the native E.CRC32 when it exists (a table-driven loop otherwise).

import type { Properties, QoS } from '../mqtt/types';
import type { Log, Storage } from '../../hal/types';
import { utf8Length, utf8Read, utf8Write } from '../mqtt/utf8';

export const enum MsgState {
  QUEUED = 0,
  SENT = 1,
  /** QoS 2: PUBREC received, PUBREL sent, awaiting PUBCOMP. */
  RELEASED = 2,
}

export interface OutMessage {
  /** Monotonic per session store, survives reboots (never reused). */
  seq: number;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** v5 PUBLISH properties the app gave (persisted as JSON; correlationData as hex). */
  properties?: Properties;
  /** 0 until first sent. */
  packetId: number;
  state: MsgState;
}

export interface SessionLimits {
  /** Queued + in flight, all QoS. */
  maxMessages: number;
  /** Sum of topic length (UTF-8 bytes) + payload length of all held messages. */
  maxBytes: number;
  overflow: 'reject' | 'drop-oldest-qos0';
  /**
   * Addition: the log is compacted when it exceeds compactBytes + 2 x the live snapshot (default
   * 4096). A negative value compacts after every append (tests).
   */
  compactBytes?: number;
}

export type EnqueueResult =
  | { ok: true; seq: number; dropped?: number[] }
  | { ok: false; code: 'queue-full' | 'too-large' | 'storage-full'; message: string };

/** Record types of the log (see the header). */
const enum Rec {
  ADD = 1,
  SENT = 2,
  REC = 3,
  DONE = 4,
  REQUEUE = 5,
  IN2 = 6,
  REL = 7,
  CLEAR = 8,
  SEQ = 9,
}

const FORMAT = 1;
/** len u16 + type u8 + crc u32. */
const OVERHEAD = 7;
const SEQ_LEN = OVERHEAD + 5;
const SENT_LEN = OVERHEAD + 6;
const SEQREF_LEN = OVERHEAD + 4; // REC, DONE
const ID_LEN = OVERHEAD + 2; // IN2, REL
const EMPTY_LEN = OVERHEAD; // REQUEUE, CLEAR
/** ADD without topic, properties and payload: seq 4, flags 1, topicLen 2, propsLen 2. */
const ADD_FIXED = 9;
/** The largest body a frame can carry (len is a u16 and counts the type byte). */
const MAX_BODY = 65534;
const SEQ_BLOCK = 64;
const DEFAULT_COMPACT_BYTES = 4096;
const MAX_ID = 65535;
const TAG = 'session';

// Espruino's native CRC-32 (absent on Node).
declare const E: { CRC32?: (data: Uint8Array) => number } | undefined;

let crcTable: Int32Array | undefined;

/** Standard CRC-32 (zlib) of b[start, end), unsigned. */
function crc32(b: Uint8Array, start: number, end: number): number {
  if (typeof E !== 'undefined' && E && E.CRC32) return E.CRC32(b.subarray(start, end)) >>> 0;
  let t = crcTable;
  if (t === undefined) {
    t = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c;
    }
    crcTable = t;
  }
  let c = -1;
  for (let i = start; i < end; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function put16(b: Uint8Array, p: number, v: number): void {
  b[p] = (v >> 8) & 0xff;
  b[p + 1] = v & 0xff;
}

function put32(b: Uint8Array, p: number, v: number): void {
  b[p] = (v >>> 24) & 0xff;
  b[p + 1] = (v >>> 16) & 0xff;
  b[p + 2] = (v >>> 8) & 0xff;
  b[p + 3] = v & 0xff;
}

function get16(b: Uint8Array, p: number): number {
  return (b[p] << 8) | b[p + 1];
}

function get32(b: Uint8Array, p: number): number {
  return b[p] * 16777216 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
}

/** A frame of `bodyLen` body bytes with len and type filled in; the caller writes the body at 3. */
function newFrame(type: number, bodyLen: number): Uint8Array {
  const f = new Uint8Array(OVERHEAD + bodyLen);
  put16(f, 0, bodyLen + 1);
  f[2] = type;
  return f;
}

/** Writes the CRC into the last 4 bytes. */
function seal(f: Uint8Array): Uint8Array {
  const end = f.length - 4;
  put32(f, end, crc32(f, 0, end));
  return f;
}

function seqFrame(type: number, seq: number): Uint8Array {
  const f = newFrame(type, 4);
  put32(f, 3, seq);
  return seal(f);
}

function sentFrame(seq: number, packetId: number): Uint8Array {
  const f = newFrame(Rec.SENT, 6);
  put32(f, 3, seq);
  put16(f, 7, packetId);
  return seal(f);
}

function idFrame(type: number, packetId: number): Uint8Array {
  const f = newFrame(type, 2);
  put16(f, 3, packetId);
  return seal(f);
}

function emptyFrame(type: number): Uint8Array {
  return seal(newFrame(type, 0));
}

function nextSeqFrame(nextSeq: number): Uint8Array {
  const f = newFrame(Rec.SEQ, 5);
  f[3] = FORMAT;
  put32(f, 4, nextSeq);
  return seal(f);
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const v = b[i];
    s += (v < 16 ? '0' : '') + v.toString(16);
  }
  return s;
}

function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0) throw new Error('bad hex');
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) {
    const v = parseInt(s.substr(2 * i, 2), 16);
    if (!(v >= 0)) throw new Error('bad hex');
    b[i] = v;
  }
  return b;
}

/** Properties as JSON: a shallow copy with correlationData as a hex string. */
function propsToJson(p: Properties): string {
  const o: Record<string, unknown> = {};
  const keys = Object.keys(p);
  for (let i = 0; i < keys.length; i++) o[keys[i]] = (p as Record<string, unknown>)[keys[i]];
  if (p.correlationData !== undefined) o.correlationData = toHex(p.correlationData);
  return JSON.stringify(o);
}

function propsFromJson(s: string): Properties {
  const o = JSON.parse(s) as Record<string, unknown>;
  if (o === null || typeof o !== 'object') throw new Error('bad properties');
  if (typeof o.correlationData === 'string') o.correlationData = fromHex(o.correlationData);
  return o as Properties;
}

/** The ADD frame of a message (the properties JSON is given when the message has properties). */
function addFrame(m: OutMessage, json: string | undefined, topicLen: number, jsonLen: number): Uint8Array {
  const f = newFrame(Rec.ADD, ADD_FIXED + topicLen + jsonLen + m.payload.length);
  put32(f, 3, m.seq);
  f[7] = m.qos | (m.retain ? 4 : 0) | (json !== undefined ? 8 : 0);
  put16(f, 8, topicLen);
  let p = utf8Write(m.topic, f, 10);
  put16(f, p, jsonLen);
  p += 2;
  if (json !== undefined) p = utf8Write(json, f, p);
  f.set(m.payload, p);
  return seal(f);
}

function encodeAdd(m: OutMessage): Uint8Array {
  const json = m.properties !== undefined ? propsToJson(m.properties) : undefined;
  return addFrame(m, json, utf8Length(m.topic), json !== undefined ? utf8Length(json) : 0);
}

/** One held message and its bookkeeping (kept apart so OutMessage stays exactly the public shape). */
interface Held {
  m: OutMessage;
  /** utf8Length(topic) + payload.length (what maxBytes counts). */
  size: number;
  /** Bytes this message takes in a snapshot (0 for QoS 0): its ADD frame, + SENT, + REC. */
  disk: number;
}

export interface LoadReport {
  messages: number;
  inboundQos2: number;
  droppedBytes: number;
}

export class Session {
  private storage: Storage | undefined;
  private rec: string;
  private limits: SessionLimits;
  private log: Log | undefined;
  private compactBytes!: number;
  private loaded!: boolean;
  /** Held messages, sorted by seq. */
  private items!: Held[];
  /** Outbound packet ids in use: String(id) -> seq of the in-flight message, or 0 for holdId(). */
  private used!: Record<string, number>;
  private usedCount!: number;
  /** Inbound QoS 2 ids held until PUBREL: String(id) -> true. */
  private inbound!: Record<string, boolean>;
  private inboundCount!: number;
  private lastId!: number;
  private nextSeq!: number;
  /** Seqs below this are persisted as possibly issued (SEQ frames or ADD frames). */
  private seqReserved!: number;
  private bytes!: number;
  private inflightN!: number;
  private qos0!: number;
  /** Size of a snapshot of the live state. */
  private live!: number;
  /** Size of the log record as far as this session knows. */
  private logBytes!: number;
  /** The persisted log does not match RAM (a write failed): the next write is a full snapshot. */
  private dirty!: boolean;
  private compactions!: number;

  constructor(storage: Storage | undefined, name: string, limits: SessionLimits, log?: Log) {
    const rec = name + '.l';
    if (typeof name !== 'string' || name.length < 1 || rec.length > 28) {
      throw new Error('session name must be 1..26 characters: ' + name);
    }
    this.storage = storage;
    this.rec = rec;
    this.limits = limits;
    this.log = log;
    this.compactBytes = limits.compactBytes !== undefined ? limits.compactBytes : DEFAULT_COMPACT_BYTES;
    this.loaded = false;
    this.logBytes = 0;
    this.dirty = false;
    this.compactions = 0;
    this.lastId = 0;
    this.nextSeq = 1;
    this.seqReserved = 1;
    this.resetRam();
  }

  private resetRam(): void {
    this.items = [];
    this.used = {};
    this.usedCount = 0;
    this.inbound = {};
    this.inboundCount = 0;
    this.bytes = 0;
    this.inflightN = 0;
    this.qos0 = 0;
    this.live = SEQ_LEN;
  }

  // -------------------------------------------------------------------------------------------
  // Boot

  /** Replays the persisted log. Returns what it found; a torn/corrupt tail is dropped and reported, never thrown. */
  load(): LoadReport {
    // Held ids for SUBSCRIBE/UNSUBSCRIBE (RAM only) survive a reload; in-flight ids come from the log.
    const holds: number[] = [];
    const keys = Object.keys(this.used);
    for (let i = 0; i < keys.length; i++) if (this.used[keys[i]] === 0) holds.push(+keys[i]);
    this.resetRam();
    for (let i = 0; i < holds.length; i++) {
      this.used[String(holds[i])] = 0;
      this.usedCount++;
    }
    this.loaded = true;
    this.dirty = false;
    this.nextSeq = 1;
    this.seqReserved = 1;
    const st = this.storage;
    if (st === undefined) return { messages: 0, inboundQos2: 0, droppedBytes: 0 };
    const data = st.read(this.rec);
    const n = data !== undefined ? data.length : 0;
    const good = data !== undefined ? this.replay(data) : 0;
    if (this.seqReserved > this.nextSeq) this.nextSeq = this.seqReserved;
    this.seqReserved = this.nextSeq;
    this.logBytes = n;
    const dropped = n - good;
    const report = { messages: this.items.length, inboundQos2: this.inboundCount, droppedBytes: dropped };
    if (dropped > 0) {
      if (this.log) {
        this.log.warn(TAG, 'dropped a torn/corrupt tail of ' + dropped + ' bytes at offset ' + good + ' of ' + this.rec);
      }
      // Never append after garbage: rewrite the record first.
      if (!this.compact()) this.dirty = true;
    } else if (n > 0 && n > this.compactAt()) {
      this.compact();
    }
    if (this.log && (report.messages > 0 || report.inboundQos2 > 0)) {
      this.log.info(TAG, 'restored ' + report.messages + ' messages, ' + report.inboundQos2 + ' inbound QoS 2 ids');
    }
    return report;
  }

  /** Applies frames from the start of data; returns the offset of the first bad frame (or data.length). */
  private replay(data: Uint8Array): number {
    const n = data.length;
    let pos = 0;
    while (pos + 2 <= n) {
      const len = get16(data, pos);
      const end = pos + 2 + len;
      if (len < 1 || end + 4 > n) break;
      if (crc32(data, pos, end) !== get32(data, end)) break;
      let ok: boolean;
      try {
        ok = this.apply(data[pos + 2], data, pos + 3, end);
      } catch (e) {
        ok = false;
      }
      if (!ok) break;
      pos = end + 4;
    }
    return pos;
  }

  /** Applies one frame's body d[s, e) to the RAM state. False = not a valid frame (corrupt). */
  private apply(type: number, d: Uint8Array, s: number, e: number): boolean {
    const bodyLen = e - s;
    if (type === Rec.ADD) {
      if (bodyLen < ADD_FIXED) return false;
      const seq = get32(d, s);
      const flags = d[s + 4];
      const qos = flags & 3;
      if (qos < 1 || qos > 2 || flags > 15 || seq < 1) return false;
      const topicLen = get16(d, s + 5);
      let p = s + 7;
      if (p + topicLen + 2 > e) return false;
      const topic = utf8Read(d, p, p + topicLen);
      p += topicLen;
      const jsonLen = get16(d, p);
      p += 2;
      if (p + jsonLen > e) return false;
      const properties = flags & 8 ? propsFromJson(utf8Read(d, p, p + jsonLen)) : undefined;
      p += jsonLen;
      if (seq >= this.nextSeq) this.nextSeq = seq + 1;
      if (this.indexOf(seq) >= 0) return true; // a duplicate (never written by this code): keep the first
      const m: OutMessage = {
        seq: seq,
        topic: topic,
        payload: new Uint8Array(d.subarray(p, e)),
        qos: qos as QoS,
        retain: (flags & 4) !== 0,
        packetId: 0,
        state: MsgState.QUEUED,
      };
      if (properties !== undefined) m.properties = properties;
      this.insert({ m: m, size: topicLen + (e - p), disk: bodyLen + OVERHEAD });
      return true;
    }
    if (type === Rec.SENT) {
      if (bodyLen !== 6) return false;
      const id = get16(d, s + 4);
      if (id < 1) return false;
      const i = this.indexOf(get32(d, s));
      if (i >= 0 && this.items[i].m.state === MsgState.QUEUED && this.used[String(id)] === undefined) {
        this.setSent(this.items[i], id);
        this.lastId = id;
      }
      return true;
    }
    if (type === Rec.REC || type === Rec.DONE) {
      if (bodyLen !== 4) return false;
      const i = this.indexOf(get32(d, s));
      if (i >= 0) {
        if (type === Rec.DONE) this.removeAt(i);
        else this.setReleased(this.items[i]);
      }
      return true;
    }
    if (type === Rec.IN2 || type === Rec.REL) {
      if (bodyLen !== 2) return false;
      const id = get16(d, s);
      if (type === Rec.IN2) this.holdInbound(id);
      else this.releaseInbound(id);
      return true;
    }
    if (type === Rec.REQUEUE || type === Rec.CLEAR) {
      if (bodyLen !== 0) return false;
      if (type === Rec.REQUEUE) this.requeueAll();
      else this.clearAll();
      return true;
    }
    if (type === Rec.SEQ) {
      if (bodyLen !== 5 || d[s] !== FORMAT) return false;
      const v = get32(d, s + 1);
      if (v > this.seqReserved) this.seqReserved = v;
      return true;
    }
    return false;
  }

  private ensureLoaded(): void {
    if (!this.loaded) this.load();
  }

  // -------------------------------------------------------------------------------------------
  // RAM state primitives (shared by the operations and by replay)

  /** Index of the message with this seq, or -1 (binary search: items are sorted by seq). */
  private indexOf(seq: number): number {
    const a = this.items;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = a[mid].m.seq;
      if (v === seq) return mid;
      if (v < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private insert(h: Held): void {
    const a = this.items;
    const seq = h.m.seq;
    if (a.length === 0 || a[a.length - 1].m.seq < seq) {
      a.push(h);
    } else {
      let i = 0;
      while (a[i].m.seq < seq) i++;
      a.splice(i, 0, h);
    }
    this.bytes += h.size;
    if (h.m.qos === 0) this.qos0++;
    this.live += h.disk;
  }

  private removeAt(i: number): Held {
    const h = this.items[i];
    this.items.splice(i, 1);
    const m = h.m;
    if (m.state !== MsgState.QUEUED) {
      delete this.used[String(m.packetId)];
      this.usedCount--;
      this.inflightN--;
    }
    this.bytes -= h.size;
    if (m.qos === 0) this.qos0--;
    this.live -= h.disk;
    return h;
  }

  private setSent(h: Held, id: number): void {
    h.m.packetId = id;
    h.m.state = MsgState.SENT;
    this.used[String(id)] = h.m.seq;
    this.usedCount++;
    this.inflightN++;
    h.disk += SENT_LEN;
    this.live += SENT_LEN;
  }

  private setReleased(h: Held): boolean {
    if (h.m.state !== MsgState.SENT || h.m.qos !== 2) return false;
    h.m.state = MsgState.RELEASED;
    h.disk += SEQREF_LEN;
    this.live += SEQREF_LEN;
    return true;
  }

  /** Returns whether anything changed. */
  private requeueAll(): boolean {
    let changed = false;
    const a = this.items;
    for (let i = 0; i < a.length; i++) {
      const h = a[i];
      const m = h.m;
      if (m.state === MsgState.QUEUED) continue;
      const extra = m.state === MsgState.RELEASED ? SENT_LEN + SEQREF_LEN : SENT_LEN;
      h.disk -= extra;
      this.live -= extra;
      delete this.used[String(m.packetId)];
      this.usedCount--;
      this.inflightN--;
      m.packetId = 0;
      m.state = MsgState.QUEUED;
      changed = true;
    }
    if (this.inboundCount > 0) changed = true;
    this.inbound = {};
    this.live -= this.inboundCount * ID_LEN;
    this.inboundCount = 0;
    return changed;
  }

  private clearAll(): void {
    const a = this.items;
    for (let i = 0; i < a.length; i++) {
      const m = a[i].m;
      if (m.state !== MsgState.QUEUED) {
        delete this.used[String(m.packetId)];
        this.usedCount--;
      }
    }
    this.items = [];
    this.inbound = {};
    this.inboundCount = 0;
    this.bytes = 0;
    this.inflightN = 0;
    this.qos0 = 0;
    this.live = SEQ_LEN;
  }

  private holdInbound(id: number): boolean {
    const k = String(id);
    if (this.inbound[k]) return false;
    this.inbound[k] = true;
    this.inboundCount++;
    this.live += ID_LEN;
    return true;
  }

  private releaseInbound(id: number): boolean {
    const k = String(id);
    if (!this.inbound[k]) return false;
    delete this.inbound[k];
    this.inboundCount--;
    this.live -= ID_LEN;
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Persistence

  private compactAt(): number {
    return this.compactBytes + 2 * this.live;
  }

  /** Appends one frame (or writes a snapshot when dirty or when the append fails). False = not persisted. */
  private write(f: Uint8Array): boolean {
    const st = this.storage;
    if (st === undefined) return true;
    if (!this.dirty) {
      if (st.append(this.rec, f)) {
        this.logBytes += f.length;
        if (this.logBytes > this.compactAt()) this.compact();
        return true;
      }
      if (this.log) this.log.warn(TAG, 'append to ' + this.rec + ' failed (storage full?): compacting');
    }
    if (this.compact()) return true;
    this.dirty = true;
    if (this.log) this.log.error(TAG, 'cannot write ' + this.rec + ' (storage full): state kept in RAM only');
    return false;
  }

  /** The live state as a log: SEQ, then each persisted message's frames, then the inbound ids. */
  private snapshot(): Uint8Array {
    const parts: Uint8Array[] = [];
    const next = this.nextSeq > this.seqReserved ? this.nextSeq : this.seqReserved;
    parts.push(nextSeqFrame(next));
    const a = this.items;
    for (let i = 0; i < a.length; i++) {
      const m = a[i].m;
      if (m.qos === 0) continue;
      parts.push(encodeAdd(m));
      if (m.state !== MsgState.QUEUED) parts.push(sentFrame(m.seq, m.packetId));
      if (m.state === MsgState.RELEASED) parts.push(seqFrame(Rec.REC, m.seq));
    }
    const ids = Object.keys(this.inbound);
    for (let i = 0; i < ids.length; i++) parts.push(idFrame(Rec.IN2, +ids[i]));
    let total = 0;
    for (let i = 0; i < parts.length; i++) total += parts[i].length;
    const out = new Uint8Array(total);
    let p = 0;
    for (let i = 0; i < parts.length; i++) {
      out.set(parts[i], p);
      p += parts[i].length;
    }
    return out;
  }

  /** Rewrites the record as a snapshot (atomic replace). False = out of space (old record kept). */
  private compact(): boolean {
    const st = this.storage;
    if (st === undefined) return true;
    const snap = this.snapshot();
    if (!st.replace(this.rec, snap)) {
      if (this.log) this.log.warn(TAG, 'compaction of ' + this.rec + ' failed (storage full?)');
      return false;
    }
    if (this.nextSeq > this.seqReserved) this.seqReserved = this.nextSeq;
    this.logBytes = snap.length;
    this.dirty = false;
    this.compactions++;
    if (this.log && this.log.enabled('debug')) this.log.debug(TAG, 'compacted ' + this.rec + ' to ' + snap.length + ' bytes');
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Outbound

  /** Queue an outbound publish. QoS>=1: persisted (appended) BEFORE returning ok. QoS 0: RAM only. */
  enqueue(topic: string, payload: Uint8Array, qos: QoS, retain: boolean, properties?: Properties): EnqueueResult {
    this.ensureLoaded();
    const lim = this.limits;
    const topicLen = utf8Length(topic);
    const size = topicLen + payload.length;
    if (size > lim.maxBytes || lim.maxMessages < 1) {
      return { ok: false, code: 'too-large', message: 'message of ' + size + ' bytes exceeds the queue limit of ' + lim.maxBytes };
    }
    const persist = qos > 0 && this.storage !== undefined;
    let json: string | undefined;
    let jsonLen = 0;
    if (persist) {
      json = properties !== undefined ? propsToJson(properties) : undefined;
      jsonLen = json !== undefined ? utf8Length(json) : 0;
      if (ADD_FIXED + topicLen + jsonLen + payload.length > MAX_BODY) {
        return { ok: false, code: 'too-large', message: 'persisted message over ' + MAX_BODY + ' bytes' };
      }
    }
    // Room: count the QoS 0 messages to evict (oldest first) without evicting anything yet.
    let dropped: Held[] | undefined;
    let needCount = this.items.length + 1 - lim.maxMessages;
    let needBytes = this.bytes + size - lim.maxBytes;
    if (needCount > 0 || needBytes > 0) {
      if (lim.overflow !== 'drop-oldest-qos0') {
        return { ok: false, code: 'queue-full', message: 'queue full (' + this.items.length + ' messages, ' + this.bytes + ' bytes)' };
      }
      dropped = [];
      const a = this.items;
      for (let i = 0; i < a.length && (needCount > 0 || needBytes > 0); i++) {
        if (a[i].m.qos !== 0) continue;
        dropped.push(a[i]);
        needCount--;
        needBytes -= a[i].size;
      }
      if (needCount > 0 || needBytes > 0) {
        return { ok: false, code: 'queue-full', message: 'queue full of QoS>=1 messages (' + this.items.length + ' messages, ' + this.bytes + ' bytes)' };
      }
    }
    const seq = this.nextSeq;
    const m: OutMessage = {
      seq: seq,
      topic: topic,
      payload: new Uint8Array(payload),
      qos: qos,
      retain: retain,
      packetId: 0,
      state: MsgState.QUEUED,
    };
    if (properties !== undefined) m.properties = properties;
    if (persist) {
      const f = addFrame(m, json, topicLen, jsonLen);
      const h: Held = { m: m, size: size, disk: f.length };
      this.nextSeq = seq + 1;
      this.insert(h);
      if (!this.write(f)) {
        this.removeAt(this.items.length - 1);
        this.nextSeq = seq;
        return { ok: false, code: 'storage-full', message: 'cannot persist the message: storage full' };
      }
    } else {
      this.nextSeq = seq + 1;
      if (this.storage !== undefined && seq >= this.seqReserved) {
        // Reserve a block of seqs so QoS 0 seqs are not reused after a reboot. Best effort.
        this.seqReserved = seq + SEQ_BLOCK;
        this.write(nextSeqFrame(this.seqReserved));
      }
      this.insert({ m: m, size: size, disk: 0 });
    }
    if (dropped === undefined) return { ok: true, seq: seq };
    const seqs: number[] = [];
    for (let i = 0; i < dropped.length; i++) {
      const s = dropped[i].m.seq;
      seqs.push(s);
      this.removeAt(this.indexOf(s));
    }
    if (this.log) this.log.warn(TAG, 'queue full: dropped ' + seqs.length + ' QoS 0 messages');
    return { ok: true, seq: seq, dropped: seqs };
  }

  /** The next QUEUED message in seq order (FIFO), or undefined. Does not change state. */
  nextQueued(): OutMessage | undefined {
    this.ensureLoaded();
    const a = this.items;
    if (this.inflightN === a.length) return undefined;
    for (let i = 0; i < a.length; i++) if (a[i].m.state === MsgState.QUEUED) return a[i].m;
    return undefined;
  }

  /** Number of messages currently SENT or RELEASED (the in-flight window). */
  inflightCount(): number {
    this.ensureLoaded();
    return this.inflightN;
  }

  /** A free packet id 1..65535 not used by any in-flight message (round robin from the last one). 0 if all are in use. */
  allocateId(): number {
    this.ensureLoaded();
    if (this.usedCount >= MAX_ID) return 0;
    let id = this.lastId;
    for (let i = 0; i < MAX_ID; i++) {
      id = id >= MAX_ID ? 1 : id + 1;
      if (this.used[String(id)] === undefined) {
        this.lastId = id;
        return id;
      }
    }
    return 0;
  }

  /**
   * Addition: mark a packet id in use for a non-PUBLISH packet (SUBSCRIBE/UNSUBSCRIBE) so allocateId()
   * does not hand it out; RAM only. False if the id is invalid or already in use.
   */
  holdId(packetId: number): boolean {
    this.ensureLoaded();
    if (!(packetId >= 1 && packetId <= MAX_ID) || this.used[String(packetId)] !== undefined) return false;
    this.used[String(packetId)] = 0;
    this.usedCount++;
    return true;
  }

  /** Addition: free an id taken with holdId() (SUBACK/UNSUBACK received, or the attempt abandoned). */
  releaseId(packetId: number): boolean {
    this.ensureLoaded();
    if (this.used[String(packetId)] !== 0) return false;
    delete this.used[String(packetId)];
    this.usedCount--;
    return true;
  }

  /** The message was written to the wire with this packet id: QoS 0 -> removed; QoS>=1 -> SENT (persisted). */
  markSent(seq: number, packetId: number): void {
    this.ensureLoaded();
    const i = this.indexOf(seq);
    if (i < 0) return;
    const h = this.items[i];
    if (h.m.qos === 0) {
      this.removeAt(i);
      return;
    }
    if (h.m.state !== MsgState.QUEUED) return; // already in flight (a resend keeps its id)
    if (!(packetId >= 1 && packetId <= MAX_ID) || this.used[String(packetId)] !== undefined) {
      throw new Error('markSent: packet id ' + packetId + ' is invalid or in use');
    }
    this.setSent(h, packetId);
    if (h.m.qos > 0) this.write(sentFrame(seq, packetId));
  }

  private findInflight(packetId: number): number {
    const seq = this.used[String(packetId)];
    if (seq === undefined || seq === 0) return -1;
    return this.indexOf(seq);
  }

  /** PUBACK (QoS 1) / PUBCOMP (QoS 2): remove the message (persisted). Undefined if no such in-flight message. */
  complete(packetId: number, kind: 'puback' | 'pubcomp'): OutMessage | undefined {
    this.ensureLoaded();
    const i = this.findInflight(packetId);
    if (i < 0) return undefined;
    const m = this.items[i].m;
    if (kind === 'puback' ? m.qos !== 1 : m.state !== MsgState.RELEASED) return undefined;
    this.removeAt(i);
    this.write(seqFrame(Rec.DONE, m.seq));
    return m;
  }

  /** PUBREC: QoS 2 SENT -> RELEASED (persisted). Returns it, or undefined (unknown id, or not QoS 2). Repeats return it again. */
  received(packetId: number): OutMessage | undefined {
    this.ensureLoaded();
    const i = this.findInflight(packetId);
    if (i < 0) return undefined;
    const h = this.items[i];
    if (h.m.qos !== 2) return undefined;
    if (this.setReleased(h)) this.write(seqFrame(Rec.REC, h.m.seq));
    return h.m;
  }

  /**
   * Addition: drop one message by seq, whatever its state (app cancel, v5 message expiry while queued);
   * its packet id is freed. Persisted. Returns it, or undefined when there is no such message.
   */
  remove(seq: number): OutMessage | undefined {
    this.ensureLoaded();
    const i = this.indexOf(seq);
    if (i < 0) return undefined;
    const h = this.removeAt(i);
    if (h.m.qos > 0) this.write(seqFrame(Rec.DONE, seq));
    return h.m;
  }

  /** Addition: the held message with this seq, or undefined. */
  get(seq: number): OutMessage | undefined {
    this.ensureLoaded();
    const i = this.indexOf(seq);
    return i < 0 ? undefined : this.items[i].m;
  }

  /** In-flight messages (SENT and RELEASED) in seq order, for resending after a reconnect. */
  inflight(): OutMessage[] {
    this.ensureLoaded();
    const out: OutMessage[] = [];
    const a = this.items;
    for (let i = 0; i < a.length && out.length < this.inflightN; i++) if (a[i].m.state !== MsgState.QUEUED) out.push(a[i].m);
    return out;
  }

  /** All held messages in seq order. The objects are the session's own: do not modify them. */
  all(): OutMessage[] {
    this.ensureLoaded();
    const out: OutMessage[] = [];
    const a = this.items;
    for (let i = 0; i < a.length; i++) out.push(a[i].m);
    return out;
  }

  /** Counts and bytes held. */
  stats(): { messages: number; bytes: number; queued: number; inflight: number; qos0: number } {
    this.ensureLoaded();
    const n = this.items.length;
    return { messages: n, bytes: this.bytes, queued: n - this.inflightN, inflight: this.inflightN, qos0: this.qos0 };
  }

  /** Addition: the persistence figures (for diagnostics and the flash-wear test). */
  storageStats(): { logBytes: number; liveBytes: number; compactions: number; dirty: boolean } {
    this.ensureLoaded();
    return { logBytes: this.logBytes, liveBytes: this.live, compactions: this.compactions, dirty: this.dirty };
  }

  /**
   * The broker has no session (CONNACK session present = 0): in-flight messages go back to QUEUED
   * (packet ids freed, order kept, persisted) so they are sent again as new; inbound QoS 2 ids are
   * forgotten. Ids taken with holdId() are left alone (the client releases them).
   */
  resetForNewSession(): void {
    this.ensureLoaded();
    if (this.requeueAll()) this.write(emptyFrame(Rec.REQUEUE));
  }

  // -------------------------------------------------------------------------------------------
  // Inbound QoS 2

  /**
   * Inbound QoS 2 PUBLISH: true the FIRST time an id is seen (deliver to the app), false while it is
   * held (a duplicate: do not deliver). The id is persisted before this returns true.
   */
  inboundQos2(packetId: number): boolean {
    this.ensureLoaded();
    if (!this.holdInbound(packetId)) return false;
    this.write(idFrame(Rec.IN2, packetId));
    return true;
  }

  /** PUBREL for an inbound id: release it (persisted). Returns whether it was held. */
  inboundRelease(packetId: number): boolean {
    this.ensureLoaded();
    if (!this.releaseInbound(packetId)) return false;
    this.write(idFrame(Rec.REL, packetId));
    return true;
  }

  /** Addition: the inbound QoS 2 ids currently held, ascending. */
  inboundIds(): number[] {
    this.ensureLoaded();
    const keys = Object.keys(this.inbound);
    const out: number[] = [];
    for (let i = 0; i < keys.length; i++) out.push(+keys[i]);
    out.sort(function (x, y) {
      return x - y;
    });
    return out;
  }

  /** Drop everything (app asked for a clean start), persisted. Seqs keep counting up. */
  clear(): void {
    this.ensureLoaded();
    this.clearAll();
    this.write(emptyFrame(Rec.CLEAR));
  }
}
