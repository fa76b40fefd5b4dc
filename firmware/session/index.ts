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
// The constructor (the boot) replays the frames in order and stops at the first one whose length
// overruns the record, whose CRC is wrong, or that throws while it is replayed: that frame and
// everything after it is the torn tail of an interrupted append (an operation that never completed:
// the state is the one from before it). A frame whose CRC matches was written by this code, so its
// body is not checked again (only the SEQ frame's format byte: a log of another FORMAT ends the replay
// there). The tail is logged (and its size reported by load() as droppedBytes), and the record is
// rewritten (compacted, see below) before anything else is appended, so a new frame never lands after
// garbage. What was restored is logged too ("restored N msgs").
//
// COMPACTION. When the record grows past `compactBytes` (default 4096) + 2 x the size of a snapshot
// of the live state, the snapshot (SEQ, then ADD [+ SENT [+ REC]] for each persisted message in seq
// order, then IN2 for each held inbound id) is written with Storage.replace(), which is atomic: after
// a power loss the record is either the old log or the new snapshot, both complete and equivalent.
// The snapshot's size is estimated (no scan): the held bytes + 40 per held message, at least the ADD
// + SENT + REC frames of a message without properties (storageStats() gives the exact size). While
// the live state is stable, a compaction (which rewrites it) comes only after at least compactBytes +
// its size have been appended, so compaction at most doubles the bytes written. Measured
// (test/session-powerloss.test.ts, 17-byte topic, 32-byte payload): a QoS 1 stream writes 89.3 bytes
// per message (ADD 65 + SENT 13 + DONE 11, plus 21 small compactions per 1000 messages), QoS 2 100.3
// (+ REC 11), and QoS 1 behind a 200-message backlog 117.5 bytes per message.
//
// If an append fails (storage full), the session tries a compaction instead (the snapshot already
// holds the change, and is usually far smaller than the log). If that fails too, enqueue() of a QoS>=1
// message returns storage-full (nothing changed); any other change stays in RAM, the session is
// marked dirty (logged as an error) and the next write is a full snapshot. (An append that worked
// with a compaction that failed only lets the log grow: the next write tries again.)
//
// Every operation is a single frame (or a single atomic replace), so after a power loss at any byte of
// any write, the boot restores either the state before the operation or the state after it. The guarantee
// for the app: once enqueue() returned ok for a QoS>=1 message, the message survives any reboot until
// complete() (or remove()/clear()/an overflow eviction, which only ever takes QoS 0 messages).
//
// Seqs are never reused: ADD frames carry them and SEQ frames reserve ahead for QoS 0 messages, so
// after a reboot the next seq is above every seq handed out before (unless a SEQ reservation could
// not be written because the storage was full: a QoS 0 seq may then repeat after a reboot).
//
// Espruino subset: no Map/Set (plain objects keyed by packet id: the in-flight messages, and the
// inbound QoS 2 ids, which a snapshot writes in the object's key order: ascending on Node, insertion
// order on Espruino; either loads to the same state), no Buffer/TextEncoder (topics go through the
// codec's utf8 functions, payloads are copied with set/subarray). Where Espruino has a native call
// (E.CRC32, E.toUint8Array to join the snapshot's frames) it is used, and a loop does the same on Node
// (tests).
//
// Size: this module is part of a firmware with a 32 KB budget, and every function costs RAM on
// Espruino, so the code is a few larger pieces:
// - frame() builds every frame (module state F/P while it writes);
// - the operations are the only code that changes the state, and the constructor (the boot)
//   replays each frame by calling the operation that wrote it (enqueue for ADD, markSent, received,
//   remove, resetForNewSession, inboundQos2, inboundRelease, clear) before the session has its storage
//   and limits: the operations then write nothing, and enqueue() refuses nothing (no limits: every
//   comparison with an absent limit is false);
// - write_() appends, and writes the snapshot itself when a compaction is due or an append failed;
// - the long methods use `self` for `this` (a minifier shortens a local, never `this`).
// Private members end in '_': the Espruino bundles mangle such names to short ones
// (tools/esbuild-espruino.mjs), so nothing persisted or public may use one (the log's JSON holds only
// the app's properties).
//
// Node only (`typeof WREN_DEVICE === 'undefined'`: build.mjs defines it in every device
// build (true), and esbuild then drops the code behind the test, like a false WREN_V5): the methods only
// tests and tools use (load, get, all, inboundIds, storageStats, at the end of the file),
// holdId()/releaseId() (plain functions), the JavaScript CRC and join, the session name check (a device
// has one fixed name), the compaction count, and markSent()'s check of the packet id it is given (the
// client gives allocateId()'s).

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

/** Numbers of the format (a const enum: inlined). */
const enum K {
  FORMAT = 1,
  /** len u16 + type u8 + crc u32. */
  OVERHEAD = 7,
  /** The largest body a frame can carry (len is a u16 and counts the type byte). */
  MAX_BODY = 65534,
  MAX_ID = 65535,
}

// Espruino's native CRC-32 and join (absent on Node).
declare const E: { CRC32: (data: Uint8Array) => number; toUint8Array: (a: Uint8Array[]) => Uint8Array } | undefined;

/**
 * Standard CRC-32 (zlib) of b, unsigned: Espruino's native E.CRC32 (all a device build keeps), bit by
 * bit otherwise (Node).
 */
const crc32 =
  typeof WREN_DEVICE !== 'undefined' || typeof E !== 'undefined'
    ? (E as NonNullable<typeof E>).CRC32
    : (b: Uint8Array): number => {
        let c = -1;
        for (let i = 0; i < b.length; i++) {
          c ^= b[i];
          for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
        }
        return ~c >>> 0;
      };

/** The one property the log's JSON holds in another form (a hex string), and the log lines' tag. */
const CD = 'correlationData';
const TAG = 'session';

/** The parts in one buffer (Node; Espruino has E.toUint8Array). */
function join(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const b of parts) n += b.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const b of parts) {
    out.set(b, n);
    n += b.length;
  }
  return out;
}

/** The n-byte big-endian number at b[p] (NaN past the end). */
function get(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  while (n--) v = v * 256 + b[p++];
  return v;
}

// ---------------------------------------------------------------------------------------------
// Frames. The frame being built and its write position are module state: the session is synchronous
// and never re-entered while frame() writes.

let F: Uint8Array;
let P: number;

/** Writes v big-endian in n bytes (the typed array keeps the low 8 bits of each shift; n 0: nothing). */
function put(v: number | undefined, n: number): void {
  while (n--) F[P++] = (v as number) >>> (8 * n);
}

/**
 * One frame of this type: its body is a, then b, each as wide as the type's body says (seq u32 for
 * ADD..DONE, packet id u16 for IN2/REL and SENT's b, format u8 and nextSeq u32 for SEQ, nothing for
 * REQUEUE/CLEAR). With m (ADD): a is its seq, and the body goes on with the flags byte, the topic and
 * the properties JSON (each after its u16 length) and the payload (b is not used).
 */
function frame(type: number, a?: number, b?: number, m?: OutMessage): Uint8Array {
  const an = type < Rec.REQUEUE ? 4 : type > Rec.CLEAR ? 1 : type & 2;
  let bn = type === Rec.SENT ? 2 : type > Rec.CLEAR ? 4 : 0;
  // (the lengths are set and read only with m)
  let topicLen!: number;
  let json = '';
  let jsonLen!: number;
  let tail = 0;
  if (m) {
    const p = m.properties;
    if ((typeof WREN_V5 === 'undefined' || WREN_V5) && p) {
      // correlationData as a hex string: a shallow copy with it replaced
      const o = Object.assign({}, p) as Record<string, unknown>;
      const c = p[CD];
      if (c) o[CD] = [].map.call(c, (x: number) => (x | 256).toString(16).substr(1)).join('');
      json = JSON.stringify(o);
    }
    b = m.qos | (m.retain ? 4 : 0) | (p ? 8 : 0);
    bn = 1;
    topicLen = utf8Length(m.topic);
    jsonLen = utf8Length(json);
    tail = 4 + topicLen + jsonLen + m.payload.length;
  }
  F = new Uint8Array(K.OVERHEAD + an + bn + tail);
  P = 0;
  put((F.length - 6) * 256 + type, 3); // len u16, type u8
  put(a, an);
  put(b, bn);
  if (m) {
    put(topicLen, 2);
    P = utf8Write(m.topic, F, P);
    put(jsonLen, 2);
    P = utf8Write(json, F, P);
    F.set(m.payload, P);
  }
  put(crc32(F.subarray(0, (P = F.length - 4))), 4);
  return F;
}

/** One held message and its size (kept apart so OutMessage stays exactly the public shape). */
interface Held {
  m_: OutMessage;
  /** utf8Length(topic) + payload.length (what maxBytes counts). */
  size_: number;
}

export class Session {
  private storage_: Storage | undefined;
  private rec_!: string;
  private limits_!: SessionLimits;
  private log_: Log | undefined;
  /** Held messages, sorted by seq. Internal. */
  items_!: Held[];
  /** In-flight messages (SENT, RELEASED) by packet id. Internal. */
  used_!: Record<string, OutMessage>;
  /** Packet ids taken with holdId() (RAM only: they survive clear()). Internal, Node only. */
  holds_!: Record<string, boolean>;
  /** Inbound QoS 2 ids held until PUBREL (the keys). Internal. */
  inbound_!: Record<string, number>;
  /** The last packet id handed out (none yet: undefined). */
  private lastId_?: number;
  private nextSeq_!: number;
  /** Seqs below this are persisted as possibly issued (SEQ frames or ADD frames). */
  private reserved_!: number;
  /** Messages SENT or RELEASED (counted: the client asks for each message it sends), and the sum of the held messages' sizes. Internal. */
  inflightN_!: number;
  bytes_!: number;
  /** Size of the log record as far as this session knows. Internal. */
  logBytes_!: number;
  /** The persisted log does not match RAM (a write failed): the next write is a full snapshot. Internal. */
  dirty_!: boolean;
  /** The constructor is replaying the log (Node only: markSent()'s check). */
  private loading_!: boolean;
  /** Internal, Node only. */
  compactions_!: number;
  /** What the constructor's replay found (Node only: load()). Internal. */
  report_?: LoadReport;

  /** Loads the persisted state: replays the log (a torn or corrupt tail is dropped and logged, never thrown). */
  constructor(storage: Storage | undefined, name: string, limits: SessionLimits, log?: Log) {
    const self = this;
    if (typeof WREN_DEVICE === 'undefined') {
      // (a device build has one fixed name, and no holdId())
      if (!name || name.length > 26) throw new Error('bad session name');
      self.holds_ = {};
      self.compactions_ = 0;
    }
    self.rec_ = name + '.l';
    self.log_ = log;
    // BOOT, without storage and limits yet (see the header). Start empty; ids taken with holdId() stay taken.
    self.limits_ = {} as SessionLimits;
    if (typeof WREN_DEVICE === 'undefined') self.loading_ = true;
    self.clear();
    self.nextSeq_ = self.reserved_ = 1;
    const d = ((storage && storage.read(self.rec_)) || []) as Uint8Array;
    const n = d.length;
    let pos = 0;
    try {
      while (pos < n) {
        const s = pos + 3; // the body
        const e = pos + 2 + get(d, pos, 2); // its end, where the CRC is
        if (e + 4 > n || crc32(d.subarray(pos, e)) !== get(d, e, 4)) break;
        const type = d[pos + 2];
        const seq = get(d, s, 4);
        if (type === Rec.ADD) {
          // flags, then topic and properties JSON each after a u16 length (topic end t), then the payload from p
          const flags = d[s + 4];
          const t = s + 7 + get(d, s + 5, 2);
          const p = t + 2 + get(d, t, 2);
          let props: Properties | undefined;
          if ((typeof WREN_V5 === 'undefined' || WREN_V5) && flags & 8) {
            props = JSON.parse(utf8Read(d, t + 2, p));
            const h = (props as Record<string, unknown>)[CD] as string;
            // (the hex string in pairs: a trivial regex, checked on Espruino 2v29)
            if (h) (props as Properties)[CD] = new Uint8Array((h.match(/../g) as string[]).map((x) => parseInt(x, 16)));
          }
          self.nextSeq_ = seq;
          self.enqueue(utf8Read(d, s + 7, t), d.subarray(p, e), (flags & 3) as QoS, (flags & 4) > 0, props);
        } else if (type === Rec.REC) {
          // (its message is held: a REC frame follows the SENT of a held message, or the replay ends here)
          self.received((self.find_(seq) as Held).m_.packetId);
        } else if (type === Rec.SEQ) {
          // another format: the replay ends here (SEQ frames only ever grow: no max needed)
          if (d[s] !== K.FORMAT) break;
          self.reserved_ = get(d, s + 1, 4);
        } else {
          // The operation that wrote the frame, on its seq (SENT, DONE) or packet id (IN2, REL).
          // (An unknown type has none: the call throws and the replay ends there.)
          const op = [self.markSent, 0, self.remove, self.resetForNewSession, self.inboundQos2, self.inboundRelease, self.clear][type - Rec.SENT] as (
            this: Session,
            a: number,
            b: number,
          ) => void;
          op.call(self, type < Rec.REQUEUE ? seq : get(d, s, 2), get(d, s + 4, 2));
        }
        pos = e + 4;
      }
    } catch (err) {
      // the frame at pos does not replay: it starts the torn tail
    }
    if (typeof WREN_DEVICE === 'undefined') self.loading_ = false;
    self.storage_ = storage;
    self.limits_ = limits;
    self.nextSeq_ = Math.max(self.nextSeq_, self.reserved_);
    self.logBytes_ = n;
    const dropped = n - pos;
    const count = self.items_.length;
    const l = self.log_;
    if (l) {
      if (dropped) l.warn(TAG, 'torn tail ' + dropped + ' B');
      if (count) l.info(TAG, 'restored ' + count + ' msgs');
    }
    // Never append after garbage: with a torn tail (dirty) the write below is a snapshot.
    self.dirty_ = dropped > 0;
    if (n) self.write_();
    if (typeof WREN_DEVICE === 'undefined') self.report_ = { messages: count, inboundQos2: Object.keys(self.inbound_).length, droppedBytes: dropped };
  }

  /** The held message with this seq, or undefined. Internal. */
  find_(seq: number): Held | undefined {
    return this.items_.find((h) => h.m_.seq === seq);
  }

  // -------------------------------------------------------------------------------------------
  // Persistence

  /**
   * Persists a change: appends frame f (none: only the compaction check), and rewrites the record as a
   * snapshot of the live state (atomic replace) when the log outgrew it, when the append failed or
   * when the log is dirty. Not persisted (storage full): the session is dirty afterwards.
   */
  private write_(f?: Uint8Array): void {
    const self = this;
    const st = self.storage_;
    if (!st) return;
    const appended = !self.dirty_ && (!f || st.append(self.rec_, f));
    if (appended) {
      if (f) self.logBytes_ += f.length;
      const c = self.limits_.compactBytes;
      // due past compactBytes + 2 x the snapshot, estimated (see the header)
      if (self.logBytes_ - (c !== undefined ? c : 4096) <= 2 * (self.bytes_ + 40 * self.items_.length)) return;
    }
    // The snapshot: SEQ, then ADD [+ SENT [+ REC]] per persisted message in seq order, IN2 per inbound id.
    const next = Math.max(self.nextSeq_, self.reserved_);
    const parts = [frame(Rec.SEQ, K.FORMAT, next)];
    for (const h of self.items_) {
      const m = h.m_;
      // (a QoS 0 message is never in flight: markSent() removes it)
      if (m.qos) parts.push(frame(Rec.ADD, m.seq, 0, m));
      if (m.state) parts.push(frame(Rec.SENT, m.seq, m.packetId));
      if (m.state > 1) parts.push(frame(Rec.REC, m.seq));
    }
    for (const id in self.inbound_) parts.push(frame(Rec.IN2, +id));
    // one buffer: native on Espruino (a device build keeps only that), copied part by part on Node
    const snap = typeof WREN_DEVICE !== 'undefined' || typeof E !== 'undefined' ? (E as NonNullable<typeof E>).toUint8Array(parts) : join(parts);
    const replaced = st.replace(self.rec_, snap);
    if (replaced) {
      self.reserved_ = next;
      self.logBytes_ = snap.length;
      if (typeof WREN_DEVICE === 'undefined') self.compactions_++;
    }
    // Not replaced: the log keeps growing (appended: the next write tries again, silently), or this
    // change is in RAM only (dirty: an error).
    const l = self.log_;
    if ((self.dirty_ = !replaced && !appended) && l) l.error(TAG, 'storage full');
  }

  // -------------------------------------------------------------------------------------------
  // Outbound

  /**
   * Queue an outbound publish. QoS>=1: persisted (appended) BEFORE returning ok. QoS 0: RAM only.
   * (The boot replays an ADD frame through it: no limits and no storage then, nothing is written.)
   */
  enqueue(topic: string, payload: Uint8Array, qos: QoS, retain: boolean, properties?: Properties): EnqueueResult {
    const self = this;
    const a = self.items_;
    const lim = self.limits_;
    const size = utf8Length(topic) + payload.length;
    const seq = self.nextSeq_;
    const m: OutMessage = {
      seq: seq,
      topic: topic,
      payload: new Uint8Array(payload),
      qos: qos,
      retain: retain,
      properties: properties,
      packetId: 0,
      state: MsgState.QUEUED,
    };
    // QoS >= 1 is persisted: its ADD frame (built unless the message is too large anyway)
    const f = qos && self.storage_ && size <= lim.maxBytes && frame(Rec.ADD, seq, 0, m);
    // Room: the QoS 0 messages to evict (oldest first), without evicting anything yet.
    const dropped: number[] = [];
    let needCount = a.length + 1 - lim.maxMessages;
    let needBytes = self.bytes_ + size - lim.maxBytes;
    for (const h of a) {
      if ((needCount <= 0 && needBytes <= 0) || lim.overflow === 'reject') break;
      if (!h.m_.qos) {
        dropped.push(h.m_.seq);
        needCount--;
        needBytes -= h.size_;
      }
    }
    let code: 'queue-full' | 'too-large' | 'storage-full' | '' =
      size > lim.maxBytes || (f && f.length > K.OVERHEAD + K.MAX_BODY) ? 'too-large' : needCount > 0 || needBytes > 0 ? 'queue-full' : '';
    if (!code) {
      a.push({ m_: m, size_: size });
      self.bytes_ += size;
      if (f) {
        self.write_(f);
        if (self.dirty_) {
          // not persisted: undone
          a.pop();
          self.bytes_ -= size;
          code = 'storage-full';
        }
      } else if (self.storage_ && seq >= self.reserved_) {
        // Reserve a block of 64 seqs so QoS 0 seqs are not reused after a reboot. Best effort. (Not
        // during the boot's replay, which has no storage yet: a replayed ADD reserves nothing.)
        self.reserved_ = seq + 64;
        self.write_(frame(Rec.SEQ, K.FORMAT, seq + 64));
      }
    }
    if (code) return { ok: false, code: code, message: code + ', ' + size + ' bytes' };
    self.nextSeq_++;
    for (const s of dropped) self.remove(s);
    return { ok: true, seq: seq, dropped: dropped.length ? dropped : undefined };
  }

  /** The next QUEUED message in seq order (FIFO), or undefined. Does not change state. */
  nextQueued(): OutMessage | undefined {
    return (this.items_.find((h) => !h.m_.state) || ({} as Held)).m_;
  }

  /** Number of messages currently SENT or RELEASED (the in-flight window). */
  inflightCount(): number {
    return this.inflightN_;
  }

  /** A free packet id 1..65535 not used by any in-flight message (round robin from the last one). 0 if all are in use. */
  allocateId(): number {
    let id = this.lastId_ || 0;
    for (let i = K.MAX_ID; i--; ) {
      id = (id % K.MAX_ID) + 1;
      if (!this.used_[id] && !(typeof WREN_DEVICE === 'undefined' && this.holds_[id])) return (this.lastId_ = id);
    }
    return 0;
  }

  /** The message was written to the wire with this packet id: QoS 0 -> removed; QoS>=1 -> SENT (persisted). */
  markSent(seq: number, packetId: number): void {
    const self = this;
    const h = self.find_(seq);
    if (!h) return; // (an unknown seq: nothing)
    const m = h.m_;
    if (!m.qos) self.remove(seq);
    else if (!m.state) {
      // (QUEUED: a message in flight already keeps its id, it is a resend)
      // A programmer error (the client marks ids from allocateId()): checked outside a device build.
      if (typeof WREN_DEVICE === 'undefined' && (!(packetId >= 1 && packetId <= K.MAX_ID) || self.used_[packetId] || self.holds_[packetId])) {
        if (self.loading_) return; // (a SENT frame with an invalid id or one in use: ignored)
        throw new Error('packet id ' + packetId + ' invalid or in use');
      }
      m.packetId = packetId;
      m.state = MsgState.SENT;
      self.used_[packetId] = m;
      self.inflightN_++;
      self.write_(frame(Rec.SENT, seq, packetId));
    }
  }

  /** PUBACK (QoS 1) / PUBCOMP (QoS 2): remove the message (persisted). Undefined if no such in-flight message. */
  complete(packetId: number, kind: 'puback' | 'pubcomp'): OutMessage | undefined {
    const m = this.used_[packetId];
    return m && (kind === 'puback' ? m.qos < 2 : m.state > MsgState.SENT) ? this.remove(m.seq) : undefined;
  }

  /** PUBREC: QoS 2 SENT -> RELEASED (persisted). Returns it, or undefined (unknown id, or not QoS 2). Repeats return it again. */
  received(packetId: number): OutMessage | undefined {
    const m = this.used_[packetId];
    if (m && m.qos > 1) {
      if (m.state < MsgState.RELEASED) {
        m.state = MsgState.RELEASED;
        this.write_(frame(Rec.REC, m.seq));
      }
      return m;
    }
    return undefined;
  }

  /**
   * Addition: drop one message by seq, whatever its state (app cancel, v5 message expiry while queued);
   * its packet id is freed. Persisted. Returns it, or undefined when there is no such message.
   */
  remove(seq: number): OutMessage | undefined {
    const self = this;
    const h = self.find_(seq);
    if (h) {
      const m = h.m_;
      self.items_.splice(self.items_.indexOf(h), 1);
      self.bytes_ -= h.size_;
      if (m.state) {
        delete self.used_[m.packetId];
        self.inflightN_--;
      }
      if (m.qos) self.write_(frame(Rec.DONE, seq));
      return m;
    }
    return undefined;
  }

  /** In-flight messages (SENT and RELEASED) in seq order, for resending after a reconnect. */
  inflight(): OutMessage[] {
    return this.items_.filter((h) => h.m_.state).map((h) => h.m_);
  }

  /** Counts and bytes held. */
  stats(): { messages: number; bytes: number; queued: number; inflight: number; qos0: number } {
    const a = this.items_;
    const n = this.inflightN_;
    return { messages: a.length, bytes: this.bytes_, queued: a.length - n, inflight: n, qos0: a.filter((h) => !h.m_.qos).length };
  }

  /**
   * The broker has no session (CONNACK session present = 0): in-flight messages go back to QUEUED
   * (packet ids freed, order kept, persisted) so they are sent again as new; inbound QoS 2 ids are
   * forgotten. Ids taken with holdId() are left alone (the client releases them). Nothing in flight
   * and no inbound id: nothing changes (and nothing is written).
   */
  resetForNewSession(): void {
    const self = this;
    let any = self.inflightN_;
    for (const id in self.inbound_) any = 1;
    if (!any) return;
    for (const h of self.items_) {
      const m = h.m_;
      m.state = m.packetId = 0; // QUEUED, its id freed
    }
    self.used_ = {};
    self.inbound_ = {};
    self.inflightN_ = 0;
    self.write_(frame(Rec.REQUEUE));
  }

  // -------------------------------------------------------------------------------------------
  // Inbound QoS 2

  /**
   * Inbound QoS 2 PUBLISH: true the FIRST time an id is seen (deliver to the app), false while it is
   * held (a duplicate: do not deliver). The id is persisted before this returns true.
   */
  inboundQos2(packetId: number): boolean {
    const t = this.inbound_;
    if (t[packetId]) return false;
    t[packetId] = 1;
    this.write_(frame(Rec.IN2, packetId));
    return true;
  }

  /** PUBREL for an inbound id: release it (persisted). Returns whether it was held. */
  inboundRelease(packetId: number): boolean {
    const t = this.inbound_;
    if (!t[packetId]) return false;
    delete t[packetId];
    this.write_(frame(Rec.REL, packetId));
    return true;
  }

  /** Drop everything (app asked for a clean start), persisted. Seqs keep counting up. */
  clear(): void {
    const self = this;
    self.items_ = [];
    self.used_ = {};
    self.inbound_ = {};
    self.inflightN_ = self.bytes_ = 0;
    self.write_(frame(Rec.CLEAR));
  }
}

/**
 * Addition: mark a packet id in use for a non-PUBLISH packet (SUBSCRIBE/UNSUBSCRIBE) so allocateId()
 * does not hand it out; RAM only. False if the id is invalid or already in use.
 */
export function holdId(s: Session, packetId: number): boolean {
  if (!(packetId >= 1 && packetId <= K.MAX_ID) || s.used_[packetId] || s.holds_[packetId]) return false;
  return (s.holds_[packetId] = true);
}

/** Addition: free an id taken with holdId() (SUBACK/UNSUBACK received, or the attempt abandoned). */
export function releaseId(s: Session, packetId: number): boolean {
  if (!s.holds_[packetId]) return false;
  delete s.holds_[packetId];
  return true;
}

// ---------------------------------------------------------------------------------------------
// Node only: diagnostics and test helpers, methods of Session everywhere except in a device build,
// which defines WREN_DEVICE (build.mjs) and then drops this block, exactly like a
// false WREN_V5 drops MQTT 5 code. The device never calls them (grep firmware/), and a class method
// would be kept in the bundle whether it is called or not.

export interface Session {
  /** What the constructor's replay of the persisted log found (a torn/corrupt tail is dropped, logged and reported, never thrown). */
  load(): LoadReport;
  /** Addition: the held message with this seq, or undefined. */
  get(seq: number): OutMessage | undefined;
  /** All held messages in seq order. The objects are the session's own: do not modify them. */
  all(): OutMessage[];
  /** Addition: the inbound QoS 2 ids currently held, ascending. */
  inboundIds(): number[];
  /** Addition: the persistence figures (for diagnostics and the flash-wear test); liveBytes is exact. */
  storageStats(): { logBytes: number; liveBytes: number; compactions: number; dirty: boolean };
}

if (typeof WREN_DEVICE === 'undefined') {
  const p = Session.prototype;
  p.load = function (this: Session): LoadReport {
    return this.report_ as LoadReport;
  };
  p.get = function (this: Session, seq: number): OutMessage | undefined {
    const h = this.find_(seq);
    return h && h.m_;
  };
  p.all = function (this: Session): OutMessage[] {
    return this.items_.map((h) => h.m_);
  };
  p.inboundIds = function (this: Session): number[] {
    return Object.keys(this.inbound_)
      .map(Number)
      .sort((a, b) => a - b);
  };
  p.storageStats = function (this: Session) {
    // the snapshot's exact size: SEQ 12, ADD [+ SENT 13 [+ REC 11]] per persisted message, IN2 9 per inbound id
    let live = 12 + 9 * this.inboundIds().length;
    for (const h of this.items_) {
      const m = h.m_;
      if (m.qos) live += frame(Rec.ADD, m.seq, 0, m).length + (m.state ? 13 : 0) + (m.state > 1 ? 11 : 0);
    }
    return { liveBytes: live, logBytes: this.logBytes_, compactions: this.compactions_, dirty: this.dirty_ };
  };
}
