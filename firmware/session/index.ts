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
// Espruino subset: no Map/Set (a plain object keyed by packet id, arrays), no Buffer/TextEncoder
// (topics go through the codec's utf8 functions, payloads are copied with set/subarray), CRC-32 with
// the native E.CRC32 when it exists (a bitwise loop otherwise: Node, tests).
//
// Size: this module is part of a firmware with a 32 KB budget. Frames are built by one small writer
// (module state, see "Frames"), the snapshot size is computed from counters (live_()), and each
// public method reaches the state through held_(), which loads the log on first use. Private members
// end in '_': the Espruino bundles mangle such names to short ones (tools/esbuild-espruino.mjs), so
// nothing persisted or public may use one (the log's JSON holds only the app's properties).

import type { Properties, QoS } from '../mqtt/types';
import type { Log, LogLevel, Storage } from '../../hal/types';
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

export interface LoadReport {
  messages: number;
  inboundQos2: number;
  droppedBytes: number;
}

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
/** Body length of each record type (by type; ADD: the fixed part seq 4, flags 1, topicLen 2, propsLen 2). */
const BODY = [-1, 9, 6, 4, 4, 0, 2, 2, 0, 5];
/** The largest body a frame can carry (len is a u16 and counts the type byte). */
const MAX_BODY = 65534;
const MAX_ID = 65535;
const TAG = 'session';

// Espruino's native CRC-32 (absent on Node).
declare const E: { CRC32?: (data: Uint8Array) => number } | undefined;

/** Standard CRC-32 (zlib) of b[start, end), unsigned: native on Espruino, bit by bit otherwise (Node). */
function crc32(b: Uint8Array, start: number, end: number): number {
  if (typeof E !== 'undefined' && E.CRC32) return E.CRC32(b.subarray(start, end)) >>> 0;
  let c = -1;
  while (start < end) {
    c ^= b[start++];
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** The n-byte big-endian number at b[p]. */
function get(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  while (n--) v = v * 256 + b[p++];
  return v;
}

// ---------------------------------------------------------------------------------------------
// Frames. The frame being built and its write position are module state: the session is synchronous
// and never re-entered while a frame is built (begin() .. seal()).

let F = new Uint8Array(0);
let P = 0;

/** Writes v big-endian in n bytes (the typed array keeps the low 8 bits of each shift). */
function put(v: number, n: number): void {
  while (n--) F[P++] = v >>> (8 * n);
}

/** Starts a frame with a body of bodyLen bytes: len and type written, the body goes next. */
function begin(type: number, bodyLen: number): void {
  F = new Uint8Array(OVERHEAD + bodyLen);
  P = 0;
  put(bodyLen + 1, 2);
  put(type, 1);
}

/** Writes the CRC of everything before it; returns the frame. */
function seal(): Uint8Array {
  put(crc32(F, 0, P), 4);
  return F;
}

/** A frame whose body is a in an bytes, then b in bn bytes (SENT, REC, DONE, IN2, REL, REQUEUE, CLEAR, SEQ). */
function frame(type: number, a: number, an: number, b: number, bn: number): Uint8Array {
  begin(type, an + bn);
  put(a, an);
  put(b, bn);
  return seal();
}

/** The ADD frame of a message; json: its properties as JSON (undefined when it has none). */
function addFrame(m: OutMessage, json: string | undefined, topicLen: number, jsonLen: number): Uint8Array {
  begin(Rec.ADD, BODY[Rec.ADD] + topicLen + jsonLen + m.payload.length);
  put(m.seq, 4);
  put(m.qos | (m.retain ? 4 : 0) | (json !== undefined ? 8 : 0), 1);
  put(topicLen, 2);
  P = utf8Write(m.topic, F, P);
  put(jsonLen, 2);
  if (json !== undefined) P = utf8Write(json, F, P);
  F.set(m.payload, P);
  P += m.payload.length;
  return seal();
}

/** Properties as JSON: a shallow copy with correlationData as a hex string. */
function propsToJson(p: Properties): string {
  const o = Object.assign({}, p) as Record<string, unknown>;
  const c = p.correlationData;
  if (c !== undefined) {
    let s = '';
    for (let i = 0; i < c.length; i++) s += (c[i] | 256).toString(16).substr(1);
    o.correlationData = s;
  }
  return JSON.stringify(o);
}

/** A new QUEUED message (the payload copied). */
function message(seq: number, topic: string, payload: Uint8Array, qos: QoS, retain: boolean, properties: Properties | undefined): OutMessage {
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
  return m;
}

function fail(code: 'queue-full' | 'too-large' | 'storage-full', message: string): EnqueueResult {
  return { ok: false, code: code, message: message };
}

/** A frame that passed its CRC does not parse (only ever thrown inside load()'s replay, which stops there). */
function bad(): never {
  throw new Error('corrupt frame');
}

function propsFromJson(s: string): Properties {
  const o = JSON.parse(s);
  if (o === null || typeof o !== 'object') bad();
  const h = o.correlationData;
  if (typeof h === 'string') {
    if (h.length % 2) bad();
    const b = (o.correlationData = new Uint8Array(h.length / 2));
    for (let i = 0; i < b.length; i++) {
      const v = parseInt(h.substr(2 * i, 2), 16);
      if (!(v >= 0)) bad();
      b[i] = v;
    }
  }
  return o;
}

/** One held message and its bookkeeping (kept apart so OutMessage stays exactly the public shape). */
interface Held {
  m_: OutMessage;
  /** utf8Length(topic) + payload.length (what maxBytes counts). */
  size_: number;
  /** Length of its ADD frame (0 when not persisted: QoS 0, or no storage). */
  disk_: number;
}

export class Session {
  private storage_: Storage | undefined;
  private rec_: string;
  private limits_: SessionLimits;
  private log_: Log | undefined;
  /** Held messages, sorted by seq (undefined until the log is loaded). */
  private items_!: Held[];
  /** Packet ids of in-flight messages: id -> seq. */
  private used_!: Record<string, number>;
  /** Packet ids taken with holdId() (RAM only: they survive load() and clear()). */
  private holds_: Record<string, boolean>;
  /** Inbound QoS 2 ids held until PUBREL. */
  private inbound_!: number[];
  private lastId_: number;
  private nextSeq_!: number;
  /** Seqs below this are persisted as possibly issued (SEQ frames or ADD frames). */
  private reserved_!: number;
  /** Sum of the held messages' sizes. */
  private bytes_!: number;
  /** Messages SENT or RELEASED, and RELEASED alone. */
  private inflightN_!: number;
  private released_!: number;
  /** Sum of the held messages' ADD frame lengths. */
  private adds_!: number;
  /** Size of the log record as far as this session knows. */
  private logBytes_: number;
  /** The persisted log does not match RAM (a write failed): the next write is a full snapshot. */
  private dirty_!: boolean;
  private compactions_: number;

  constructor(storage: Storage | undefined, name: string, limits: SessionLimits, log?: Log) {
    const rec = name + '.l';
    if (typeof name !== 'string' || !name || rec.length > 28) throw new Error('session name must be 1..26 characters: ' + name);
    this.storage_ = storage;
    this.rec_ = rec;
    this.limits_ = limits;
    this.log_ = log;
    this.holds_ = {};
    this.lastId_ = this.logBytes_ = this.compactions_ = 0;
  }

  private say_(level: LogLevel, message: string): void {
    const l = this.log_;
    if (l && l.enabled(level)) l[level](TAG, this.rec_ + ': ' + message);
  }

  /** The held messages (sorted by seq), after replaying the log on first use. */
  private held_(): Held[] {
    return this.items_ || (this.load(), this.items_);
  }

  /** Empties the RAM state (packet ids taken with holdId() stay taken). */
  private reset_(): void {
    this.used_ = {};
    this.items_ = [];
    this.inbound_ = [];
    this.bytes_ = this.inflightN_ = this.released_ = this.adds_ = 0;
  }

  /** Size of a snapshot of the live state (SEQ, ADD [+ SENT [+ REC]] per persisted message, IN2 per inbound id). */
  private live_(): number {
    return 12 + this.adds_ + 13 * this.inflightN_ + 11 * this.released_ + 9 * this.inbound_.length;
  }

  private compactAt_(): number {
    const c = this.limits_.compactBytes;
    return (c !== undefined ? c : 4096) + 2 * this.live_();
  }

  // -------------------------------------------------------------------------------------------
  // Boot

  /** Replays the persisted log. Returns what it found; a torn/corrupt tail is dropped and reported, never thrown. */
  load(): LoadReport {
    // Held ids for SUBSCRIBE/UNSUBSCRIBE (RAM only) survive a reload; in-flight ids come from the log.
    this.reset_();
    this.dirty_ = false;
    this.nextSeq_ = this.reserved_ = 1;
    const st = this.storage_;
    const data = st && st.read(this.rec_);
    const n = data ? data.length : 0;
    let pos = 0;
    try {
      while (pos + 2 <= n) {
        const end = pos + 2 + get(data as Uint8Array, pos, 2);
        if (end < pos + 3 || end + 4 > n || crc32(data as Uint8Array, pos, end) !== get(data as Uint8Array, end, 4)) break;
        this.apply_((data as Uint8Array)[pos + 2], data as Uint8Array, pos + 3, end);
        pos = end + 4;
      }
    } catch (e) {
      // the frame at pos does not parse: it starts the torn tail
    }
    if (this.reserved_ > this.nextSeq_) this.nextSeq_ = this.reserved_;
    this.reserved_ = this.nextSeq_;
    if (st) this.logBytes_ = n;
    const dropped = n - pos;
    const messages = this.items_.length;
    const inbound = this.inbound_.length;
    if (dropped > 0) {
      this.say_('warn', 'dropped a torn tail: ' + dropped + ' bytes at ' + pos);
      // Never append after garbage: rewrite the record first.
      if (!this.compact_()) this.dirty_ = true;
    } else if (n > 0 && n > this.compactAt_()) {
      this.compact_();
    }
    if (messages || inbound) this.say_('info', 'restored ' + messages + ' messages, ' + inbound + ' inbound QoS 2 ids');
    return { messages: messages, inboundQos2: inbound, droppedBytes: dropped };
  }

  /** Applies one frame's body d[s, e) to the RAM state. Throws when it is not a valid frame (corrupt). */
  private apply_(type: number, d: Uint8Array, s: number, e: number): void {
    const len = e - s;
    if (type === Rec.ADD ? len < BODY[1] : len !== BODY[type]) bad();
    const seq = get(d, s, 4);
    if (type === Rec.ADD) {
      const flags = d[s + 4];
      const qos = flags & 3;
      const topicLen = get(d, s + 5, 2);
      let p = s + 7;
      if (qos < 1 || qos > 2 || flags > 15 || seq < 1 || p + topicLen + 2 > e) bad();
      const topic = utf8Read(d, p, (p += topicLen));
      const jsonLen = get(d, p, 2);
      const j = p + 2;
      p = j + jsonLen;
      if (p > e) bad();
      const properties = flags & 8 ? propsFromJson(utf8Read(d, j, p)) : undefined;
      if (seq >= this.nextSeq_) this.nextSeq_ = seq + 1;
      if (this.find_(seq)) return; // a duplicate (never written by this code): keep the first
      this.insert_({ m_: message(seq, topic, d.subarray(p, e), qos as QoS, (flags & 4) !== 0, properties), size_: topicLen + e - p, disk_: len + OVERHEAD });
    } else if (type === Rec.SENT) {
      const id = get(d, s + 4, 2);
      if (id < 1) bad();
      const h = this.find_(seq);
      if (h && !h.m_.state && this.free_(id)) {
        this.setSent_(h.m_, id);
        this.lastId_ = id;
      }
    } else if (type === Rec.REC || type === Rec.DONE) {
      const h = this.find_(seq);
      if (h) {
        if (type === Rec.DONE) this.drop_(h);
        else this.setReleased_(h.m_);
      }
    } else if (type === Rec.IN2 || type === Rec.REL) {
      this.in2_(get(d, s, 2), type === Rec.IN2, false);
    } else if (type === Rec.REQUEUE) {
      this.requeue_();
    } else if (type === Rec.CLEAR) {
      this.reset_();
    } else {
      // SEQ
      if (d[s] !== FORMAT) bad();
      const v = get(d, s + 1, 4);
      if (v > this.reserved_) this.reserved_ = v;
    }
  }

  // -------------------------------------------------------------------------------------------
  // RAM state primitives (shared by the operations and by the replay)

  /** The held message with this seq (binary search: items are sorted by seq). */
  private find_(seq: number): Held | undefined {
    const a = this.held_();
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = a[mid].m_.seq;
      if (v === seq) return a[mid];
      if (v < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  private insert_(h: Held): void {
    const a = this.items_;
    let i = a.length;
    while (i > 0 && a[i - 1].m_.seq > h.m_.seq) i--;
    a.splice(i, 0, h);
    this.bytes_ += h.size_;
    this.adds_ += h.disk_;
  }

  private drop_(h: Held): void {
    const a = this.items_;
    a.splice(a.indexOf(h), 1);
    const m = h.m_;
    if (m.state) {
      delete this.used_[m.packetId];
      this.inflightN_--;
      if (m.state === MsgState.RELEASED) this.released_--;
    }
    this.bytes_ -= h.size_;
    this.adds_ -= h.disk_;
  }

  private setSent_(m: OutMessage, id: number): void {
    m.packetId = id;
    m.state = MsgState.SENT;
    this.used_[id] = m.seq;
    this.inflightN_++;
  }

  private setReleased_(m: OutMessage): boolean {
    if (m.state !== MsgState.SENT || m.qos !== 2) return false;
    m.state = MsgState.RELEASED;
    this.released_++;
    return true;
  }

  /** Every in-flight message back to QUEUED (ids freed), inbound ids forgotten. Returns whether anything changed. */
  private requeue_(): boolean {
    let changed = this.inbound_.length > 0;
    const a = this.items_;
    for (let i = 0; i < a.length; i++) {
      const m = a[i].m_;
      if (m.state) {
        delete this.used_[m.packetId];
        m.packetId = 0;
        m.state = MsgState.QUEUED;
        changed = true;
      }
    }
    this.inbound_ = [];
    this.inflightN_ = this.released_ = 0;
    return changed;
  }

  /** Holds (on) or releases an inbound QoS 2 id, persisted when `persist`. Returns whether that changed anything. */
  private in2_(id: number, on: boolean, persist: boolean): boolean {
    const a = this.inbound_;
    const i = a.indexOf(id);
    if (on ? i >= 0 : i < 0) return false;
    if (on) a.push(id);
    else a.splice(i, 1);
    if (persist) this.write_(frame(on ? Rec.IN2 : Rec.REL, id, 2, 0, 0));
    return true;
  }

  /** An id 1..65535 that no in-flight message or holdId() uses. */
  private free_(id: number): boolean {
    return id >= 1 && id <= MAX_ID && this.used_[id] === undefined && !this.holds_[id];
  }

  /** The in-flight message with this packet id. */
  private sentAs_(packetId: number): Held | undefined {
    this.held_();
    const seq = this.used_[packetId];
    return seq ? this.find_(seq) : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Persistence

  /** Appends one frame (or writes a snapshot when dirty or when the append fails). False = not persisted. */
  private write_(f: Uint8Array): boolean {
    const st = this.storage_;
    if (!st) return true;
    if (!this.dirty_) {
      if (st.append(this.rec_, f)) {
        this.logBytes_ += f.length;
        if (this.logBytes_ > this.compactAt_()) this.compact_();
        return true;
      }
      this.say_('warn', 'append failed: compacting');
    }
    if (this.compact_()) return true;
    this.dirty_ = true;
    this.say_('error', 'storage full: state in RAM only');
    return false;
  }

  /** Rewrites the record as a snapshot of the live state (atomic replace). False = out of space (old record kept). */
  private compact_(): boolean {
    const st = this.storage_;
    if (!st) return true;
    const next = this.nextSeq_ > this.reserved_ ? this.nextSeq_ : this.reserved_;
    const parts = [frame(Rec.SEQ, FORMAT, 1, next, 4)];
    const a = this.items_;
    for (let i = 0; i < a.length; i++) {
      const m = a[i].m_;
      if (!m.qos) continue;
      const p = m.properties;
      const json = p !== undefined ? propsToJson(p) : undefined;
      parts.push(addFrame(m, json, utf8Length(m.topic), json !== undefined ? utf8Length(json) : 0));
      if (m.state) parts.push(frame(Rec.SENT, m.seq, 4, m.packetId, 2));
      if (m.state === MsgState.RELEASED) parts.push(frame(Rec.REC, m.seq, 4, 0, 0));
    }
    const ids = this.inboundIds();
    for (let i = 0; i < ids.length; i++) parts.push(frame(Rec.IN2, ids[i], 2, 0, 0));
    let n = 0;
    for (let i = 0; i < parts.length; i++) n += parts[i].length;
    const snap = new Uint8Array(n);
    n = 0;
    for (let i = 0; i < parts.length; i++) {
      snap.set(parts[i], n);
      n += parts[i].length;
    }
    if (!st.replace(this.rec_, snap)) {
      this.say_('warn', 'compaction failed');
      return false;
    }
    this.reserved_ = next;
    this.logBytes_ = n;
    this.dirty_ = false;
    this.compactions_++;
    this.say_('debug', 'compacted to ' + n + ' bytes');
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Outbound

  /** Queue an outbound publish. QoS>=1: persisted (appended) BEFORE returning ok. QoS 0: RAM only. */
  enqueue(topic: string, payload: Uint8Array, qos: QoS, retain: boolean, properties?: Properties): EnqueueResult {
    const a = this.held_();
    const lim = this.limits_;
    const n = a.length;
    const topicLen = utf8Length(topic);
    const size = topicLen + payload.length;
    if (size > lim.maxBytes || lim.maxMessages < 1) {
      return fail('too-large', size + ' bytes over the queue limit of ' + lim.maxBytes);
    }
    const persist = qos > 0 && this.storage_ !== undefined;
    const json = persist && properties !== undefined ? propsToJson(properties) : undefined;
    const jsonLen = json !== undefined ? utf8Length(json) : 0;
    if (persist && BODY[Rec.ADD] + size + jsonLen > MAX_BODY) {
      return fail('too-large', 'over ' + MAX_BODY + ' bytes persisted');
    }
    // Room: the QoS 0 messages to evict (oldest first), without evicting anything yet.
    const dropped: number[] = [];
    let needCount = n + 1 - lim.maxMessages;
    let needBytes = this.bytes_ + size - lim.maxBytes;
    for (let i = 0; i < n && (needCount > 0 || needBytes > 0) && lim.overflow === 'drop-oldest-qos0'; i++) {
      if (a[i].m_.qos) continue;
      dropped.push(a[i].m_.seq);
      needCount--;
      needBytes -= a[i].size_;
    }
    if (needCount > 0 || needBytes > 0) {
      return fail('queue-full', 'queue full (' + n + ' messages, ' + this.bytes_ + ' bytes)');
    }
    const seq = this.nextSeq_++;
    const m = message(seq, topic, payload, qos, retain, properties);
    const f = persist ? addFrame(m, json, topicLen, jsonLen) : undefined;
    const h: Held = { m_: m, size_: size, disk_: f ? f.length : 0 };
    this.insert_(h);
    if (f) {
      if (!this.write_(f)) {
        this.drop_(h);
        this.nextSeq_ = seq;
        return fail('storage-full', 'storage full: message not persisted');
      }
    } else if (this.storage_ && seq >= this.reserved_) {
      // Reserve a block of 64 seqs so QoS 0 seqs are not reused after a reboot. Best effort.
      this.reserved_ = seq + 64;
      this.write_(frame(Rec.SEQ, FORMAT, 1, seq + 64, 4));
    }
    for (let i = 0; i < dropped.length; i++) this.drop_(this.find_(dropped[i]) as Held);
    if (!dropped.length) return { ok: true, seq: seq };
    this.say_('warn', 'queue full: dropped ' + dropped.length + ' QoS 0 messages');
    return { ok: true, seq: seq, dropped: dropped };
  }

  /** The next QUEUED message in seq order (FIFO), or undefined. Does not change state. */
  nextQueued(): OutMessage | undefined {
    const a = this.held_();
    for (let i = 0; i < a.length && this.inflightN_ < a.length; i++) if (!a[i].m_.state) return a[i].m_;
    return undefined;
  }

  /** Number of messages currently SENT or RELEASED (the in-flight window). */
  inflightCount(): number {
    this.held_();
    return this.inflightN_;
  }

  /** A free packet id 1..65535 not used by any in-flight message (round robin from the last one). 0 if all are in use. */
  allocateId(): number {
    this.held_();
    let id = this.lastId_;
    for (let i = 0; i < MAX_ID; i++) {
      id = id >= MAX_ID ? 1 : id + 1;
      if (this.free_(id)) return (this.lastId_ = id);
    }
    return 0;
  }

  /**
   * Addition: mark a packet id in use for a non-PUBLISH packet (SUBSCRIBE/UNSUBSCRIBE) so allocateId()
   * does not hand it out; RAM only. False if the id is invalid or already in use.
   */
  holdId(packetId: number): boolean {
    this.held_();
    if (!this.free_(packetId)) return false;
    this.holds_[packetId] = true;
    return true;
  }

  /** Addition: free an id taken with holdId() (SUBACK/UNSUBACK received, or the attempt abandoned). */
  releaseId(packetId: number): boolean {
    this.held_();
    if (!this.holds_[packetId]) return false;
    delete this.holds_[packetId];
    return true;
  }

  /** The message was written to the wire with this packet id: QoS 0 -> removed; QoS>=1 -> SENT (persisted). */
  markSent(seq: number, packetId: number): void {
    const h = this.find_(seq);
    if (!h) return;
    const m = h.m_;
    if (!m.qos) {
      this.drop_(h);
      return;
    }
    if (m.state) return; // already in flight (a resend keeps its id)
    if (!this.free_(packetId)) throw new Error('markSent: packet id ' + packetId + ' is invalid or in use');
    this.setSent_(m, packetId);
    this.write_(frame(Rec.SENT, seq, 4, packetId, 2));
  }

  /** PUBACK (QoS 1) / PUBCOMP (QoS 2): remove the message (persisted). Undefined if no such in-flight message. */
  complete(packetId: number, kind: 'puback' | 'pubcomp'): OutMessage | undefined {
    const h = this.sentAs_(packetId);
    if (!h) return undefined;
    const m = h.m_;
    if (kind === 'puback' ? m.qos !== 1 : m.state !== MsgState.RELEASED) return undefined;
    this.drop_(h);
    this.write_(frame(Rec.DONE, m.seq, 4, 0, 0));
    return m;
  }

  /** PUBREC: QoS 2 SENT -> RELEASED (persisted). Returns it, or undefined (unknown id, or not QoS 2). Repeats return it again. */
  received(packetId: number): OutMessage | undefined {
    const h = this.sentAs_(packetId);
    if (!h || h.m_.qos !== 2) return undefined;
    if (this.setReleased_(h.m_)) this.write_(frame(Rec.REC, h.m_.seq, 4, 0, 0));
    return h.m_;
  }

  /**
   * Addition: drop one message by seq, whatever its state (app cancel, v5 message expiry while queued);
   * its packet id is freed. Persisted. Returns it, or undefined when there is no such message.
   */
  remove(seq: number): OutMessage | undefined {
    const h = this.find_(seq);
    if (!h) return undefined;
    this.drop_(h);
    if (h.m_.qos) this.write_(frame(Rec.DONE, seq, 4, 0, 0));
    return h.m_;
  }

  /** Addition: the held message with this seq, or undefined. */
  get(seq: number): OutMessage | undefined {
    const h = this.find_(seq);
    return h && h.m_;
  }

  /** In-flight messages (SENT and RELEASED) in seq order, for resending after a reconnect. */
  inflight(): OutMessage[] {
    const a = this.held_();
    const out: OutMessage[] = [];
    for (let i = 0; i < a.length && out.length < this.inflightN_; i++) if (a[i].m_.state) out.push(a[i].m_);
    return out;
  }

  /** All held messages in seq order. The objects are the session's own: do not modify them. */
  all(): OutMessage[] {
    const a = this.held_();
    const out: OutMessage[] = [];
    for (let i = 0; i < a.length; i++) out.push(a[i].m_);
    return out;
  }

  /** Counts and bytes held. */
  stats(): { messages: number; bytes: number; queued: number; inflight: number; qos0: number } {
    const a = this.held_();
    const n = a.length;
    let q0 = 0;
    for (let i = 0; i < n; i++) if (!a[i].m_.qos) q0++;
    return { messages: n, bytes: this.bytes_, queued: n - this.inflightN_, inflight: this.inflightN_, qos0: q0 };
  }

  /** Addition: the persistence figures (for diagnostics and the flash-wear test). */
  storageStats(): { logBytes: number; liveBytes: number; compactions: number; dirty: boolean } {
    this.held_();
    return { logBytes: this.logBytes_, liveBytes: this.live_(), compactions: this.compactions_, dirty: this.dirty_ };
  }

  /**
   * The broker has no session (CONNACK session present = 0): in-flight messages go back to QUEUED
   * (packet ids freed, order kept, persisted) so they are sent again as new; inbound QoS 2 ids are
   * forgotten. Ids taken with holdId() are left alone (the client releases them).
   */
  resetForNewSession(): void {
    this.held_();
    if (this.requeue_()) this.write_(frame(Rec.REQUEUE, 0, 0, 0, 0));
  }

  // -------------------------------------------------------------------------------------------
  // Inbound QoS 2

  /**
   * Inbound QoS 2 PUBLISH: true the FIRST time an id is seen (deliver to the app), false while it is
   * held (a duplicate: do not deliver). The id is persisted before this returns true.
   */
  inboundQos2(packetId: number): boolean {
    this.held_();
    return this.in2_(packetId, true, true);
  }

  /** PUBREL for an inbound id: release it (persisted). Returns whether it was held. */
  inboundRelease(packetId: number): boolean {
    this.held_();
    return this.in2_(packetId, false, true);
  }

  /** Addition: the inbound QoS 2 ids currently held, ascending. */
  inboundIds(): number[] {
    this.held_();
    return this.inbound_.slice().sort(function (x, y) {
      return x - y;
    });
  }

  /** Drop everything (app asked for a clean start), persisted. Seqs keep counting up. */
  clear(): void {
    this.held_();
    this.reset_();
    this.write_(frame(Rec.CLEAR, 0, 0, 0, 0));
  }
}
