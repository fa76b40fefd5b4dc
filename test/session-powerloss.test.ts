// firmware/session under power loss and flash wear.
//
// Power loss: a scripted sequence of operations runs once as a reference (recording every write and,
// after every operation, what a reboot would restore). Then, for EVERY write of the script and EVERY
// byte offset of that write (0..length: length = the write completed and the power failed right
// after), with the torn part missing and with it padded with 0xFF (erased flash), the script is run
// again on a fresh MemoryStorage that loses power there; the storage is rebooted and a new Session
// loads it. The restored state must be exactly the state before or after the interrupted operation
// (so every message acknowledged before it is there), a new enqueue must get a never-used seq, and
// the next reboot must find a clean log. The recovery itself is also interrupted once per case.

import { describe, expect, it } from 'vitest';
import { MemoryStorage, PowerLoss } from '../hal/mock/index';
import type { Storage } from '../hal/types';
import { Session, type OutMessage, type SessionLimits } from '../firmware/session/index';

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

/** Forwards to a MemoryStorage; arms its torn write on the `failAt`-th append/replace call. */
class FaultStorage implements Storage {
  calls = 0;
  lengths: number[] = [];
  constructor(
    public inner: MemoryStorage,
    private failAt = -1,
    private failBytes = 0,
    private pad: number | undefined = undefined,
  ) {}
  read(name: string) {
    return this.inner.read(name);
  }
  size(name: string) {
    return this.inner.size(name);
  }
  append(name: string, b: Uint8Array) {
    this.arm(b);
    return this.inner.append(name, b);
  }
  replace(name: string, b: Uint8Array) {
    this.arm(b);
    return this.inner.replace(name, b);
  }
  erase(name: string) {
    this.inner.erase(name);
  }
  list(prefix?: string) {
    return this.inner.list(prefix);
  }
  free() {
    return this.inner.free();
  }
  private arm(b: Uint8Array) {
    this.lengths.push(b.length);
    if (this.calls++ === this.failAt) this.inner.failAfterBytes(this.failBytes, this.pad);
  }
}

/** The persisted state as a canonical string: QoS>=1 messages (all fields) and inbound ids. */
function view(s: Session): string {
  const msgs = s
    .all()
    .filter((m) => m.qos > 0)
    .map((m: OutMessage) => {
      const p = m.properties;
      return {
        ...m,
        payload: Array.from(m.payload),
        properties: p && { ...p, correlationData: p.correlationData && Array.from(p.correlationData) },
      };
    });
  return JSON.stringify({ msgs, inbound: s.inboundIds() });
}

type Op = (s: Session) => void;

function enq(topic: string, n: number, qos: 0 | 1 | 2, props?: OutMessage['properties']): Op {
  return (s) => {
    const r = s.enqueue(topic, bytes(n, topic.length), qos, qos === 2, props);
    if (!r.ok) throw new Error('script enqueue failed: ' + r.message);
  };
}
const sendNext: Op = (s) => {
  const m = s.nextQueued();
  if (!m) throw new Error('script: nothing queued');
  s.markSent(m.seq, m.qos > 0 ? s.allocateId() : 0);
};
function ackOldest(kind: 'puback' | 'pubrec' | 'pubcomp'): Op {
  return (s) => {
    const m = s.inflight().find((x) => (kind === 'puback' ? x.qos === 1 : kind === 'pubrec' ? x.state === 1 && x.qos === 2 : x.state === 2));
    if (!m) throw new Error('script: nothing to ' + kind);
    const r = kind === 'pubrec' ? s.received(m.packetId) : s.complete(m.packetId, kind);
    if (!r) throw new Error('script: ' + kind + ' refused');
  };
}

const SCRIPT: Op[] = [
  enq('a/1', 10, 1),
  enq('a/2 ✓', 5, 2, {
    correlationData: new Uint8Array([1, 2, 3]),
    userProperties: [['k', 'v']],
    contentType: 'text/plain',
  }),
  enq('q0/x', 3, 0),
  enq('a/3', 40, 1),
  sendNext, // a/1 SENT
  sendNext, // a/2 SENT
  sendNext, // q0 sent (removed, RAM only)
  (s) => void s.inboundQos2(10),
  (s) => void s.inboundQos2(11),
  ackOldest('puback'), // a/1 done
  ackOldest('pubrec'), // a/2 RELEASED
  (s) => void s.inboundRelease(10),
  enq('b/ü', 20, 1),
  enq('q0/y', 8, 0),
  (s) => s.resetForNewSession(), // a/2 and a/3? (a/3 queued) back to QUEUED; inbound 11 forgotten
  sendNext, // a/2 again
  sendNext, // a/3
  enq('c/2', 12, 2),
  ackOldest('pubrec'),
  ackOldest('pubcomp'), // a/2 done
  (s) => void s.remove(s.nextQueued()!.seq), // q? the next queued (b/ü)
  ackOldest('puback'), // a/3 done
  (s) => void s.inboundQos2(99),
  sendNext, // q0/y
  sendNext, // c/2
  (s) => s.clear(),
  enq('d/1', 30, 1),
  enq('d/2', 1, 2),
  sendNext,
  ackOldest('puback'),
];

interface Reference {
  /** views[i] = what a reboot restores after i operations. */
  views: string[];
  /** writeOp[w] = index of the operation that made write w. */
  writeOp: number[];
  lengths: number[];
  /** maxSeq[i] = the highest seq handed out by the first i operations. */
  maxSeq: number[];
}

function reference(limits: SessionLimits): Reference {
  const fs = new FaultStorage(new MemoryStorage());
  const s = new Session(fs, 'pl', limits);
  s.load();
  const views = [view(s)];
  const writeOp: number[] = [];
  const maxSeq = [0];
  let hi = 0;
  SCRIPT.forEach((op, i) => {
    const before = fs.calls;
    op(s);
    for (let w = before; w < fs.calls; w++) writeOp.push(i);
    for (const m of s.all()) hi = Math.max(hi, m.seq);
    maxSeq.push(hi);
    const v = view(s);
    // a clean reboot restores exactly the RAM state
    const r = new Session(fs.inner.reboot(), 'pl', limits);
    expect(r.load().droppedBytes).toBe(0);
    expect(view(r)).toBe(v);
    views.push(v);
  });
  return { views, writeOp, lengths: fs.lengths, maxSeq };
}

/** Runs the script with a torn write; returns the index of the interrupted operation. */
function runUntilPowerLoss(limits: SessionLimits, failAt: number, failBytes: number, pad: number | undefined): { storage: MemoryStorage; op: number } {
  const fs = new FaultStorage(new MemoryStorage(), failAt, failBytes, pad);
  const s = new Session(fs, 'pl', limits);
  s.load();
  for (let i = 0; i < SCRIPT.length; i++) {
    try {
      SCRIPT[i](s);
    } catch (e) {
      if (e instanceof PowerLoss) return { storage: fs.inner.reboot(), op: i };
      throw e;
    }
  }
  throw new Error('the power never failed (write ' + failAt + ')');
}

function exhaustive(limits: SessionLimits): { cases: number; torn: number } {
  const ref = reference(limits);
  let cases = 0;
  let torn = 0;
  const failures: string[] = [];
  for (let w = 0; w < ref.lengths.length; w++) {
    const len = ref.lengths[w];
    for (let b = 0; b <= len; b++) {
      for (const pad of [undefined, 0xff]) {
        if (pad !== undefined && b === len) continue; // nothing to pad
        cases++;
        const { storage, op } = runUntilPowerLoss(limits, w, b, pad);
        const where = 'write ' + w + ' (op ' + op + ') byte ' + b + '/' + len + ' pad ' + pad;
        if (op !== ref.writeOp[w]) failures.push(where + ': interrupted op ' + op + ', expected ' + ref.writeOp[w]);
        // Boot, and lose the power again in the middle of the recovery write (if there is one).
        const probe = new FaultStorage(storage, 0, 0, undefined);
        let st: MemoryStorage = storage;
        try {
          new Session(probe, 'pl', limits).load();
        } catch (e) {
          if (!(e instanceof PowerLoss)) throw e;
          st = storage.reboot();
        }
        if (probe.calls > 0) torn++; // the boot had a torn tail to rewrite
        // The real boot.
        const s = new Session(st, 'pl', limits);
        s.load();
        const v = view(s);
        if (v !== ref.views[op] && v !== ref.views[op + 1]) {
          failures.push(where + ': restored ' + v + '\n  before ' + ref.views[op] + '\n  after  ' + ref.views[op + 1]);
          continue;
        }
        // seqs are never reused, the log is clean for the next append and the next boot
        const r = s.enqueue('next', bytes(3), 1, false);
        if (!r.ok || r.seq <= ref.maxSeq[op]) failures.push(where + ': next seq ' + (r.ok ? r.seq : r.message) + ' <= ' + ref.maxSeq[op]);
        const again = new Session(st.reboot(), 'pl', limits);
        const rep = again.load();
        if (rep.droppedBytes !== 0 || view(again) !== view(s)) failures.push(where + ': second boot differs (dropped ' + rep.droppedBytes + ')');
        if (failures.length > 5) break;
      }
    }
  }
  expect(failures).toEqual([]);
  return { cases, torn };
}

describe('Session power loss', () => {
  it('at every byte of every append: state before or after the operation, never corrupt', () => {
    const limits: SessionLimits = { maxMessages: 50, maxBytes: 10_000, overflow: 'drop-oldest-qos0' };
    const { cases, torn } = exhaustive(limits);
    console.log('power-loss cases (appends): ' + cases + ', torn tails recovered: ' + torn);
    expect(cases).toBeGreaterThan(1000);
    expect(torn).toBeGreaterThan(cases / 3); // most cases really left a torn tail to recover from
  });

  it('with a compaction after every append (each atomic replace torn at every byte) likewise', () => {
    const limits: SessionLimits = { maxMessages: 50, maxBytes: 10_000, overflow: 'reject', compactBytes: -1e9 };
    const ref = reference(limits);
    // the script really compacts: some writes are replaces of whole snapshots
    const s = new Session(new MemoryStorage(), 'pl', limits);
    s.load();
    for (const op of SCRIPT) op(s);
    expect(s.storageStats().compactions).toBeGreaterThan(20);
    console.log('compactions in the script: ' + s.storageStats().compactions);
    expect(ref.lengths.length).toBeGreaterThan(SCRIPT.length);
    const { cases } = exhaustive(limits);
    console.log('power-loss cases (with compaction): ' + cases);
    expect(cases).toBeGreaterThan(1000);
  });
});

describe('Session flash wear', () => {
  function stream(qos: 1 | 2, n: number, backlog: number): { perMessage: number; writesPerMessage: number; maxLog: number; compactions: number } {
    const st = new MemoryStorage();
    const s = new Session(st, 'wear', { maxMessages: 1000, maxBytes: 1_000_000, overflow: 'reject' });
    s.load();
    const payload = bytes(32);
    let maxLog = 0;
    for (let i = 0; i < backlog; i++) s.enqueue('sensors/dev1/temp', payload, qos, false);
    for (let i = 0; i < n; i++) {
      const r = s.enqueue('sensors/dev1/temp', payload, qos, false);
      if (!r.ok) throw new Error(r.message);
      const m = s.nextQueued()!;
      const id = s.allocateId();
      s.markSent(m.seq, id);
      if (qos === 2) s.received(id);
      if (!s.complete(id, qos === 1 ? 'puback' : 'pubcomp')) throw new Error('ack');
      maxLog = Math.max(maxLog, st.size('wear.l')!);
    }
    const total = st.bytesWritten;
    return { perMessage: total / (n + backlog), writesPerMessage: st.writes / (n + backlog), maxLog, compactions: s.storageStats().compactions };
  }

  it('a steady stream appends a few small frames per message and compacts the log', () => {
    const q1 = stream(1, 1000, 0);
    const q2 = stream(2, 1000, 0);
    const q1backlog = stream(1, 1000, 200); // 200 messages waiting while 1000 flow
    console.log(
      'session flash wear (17-byte topic, 32-byte payload): QoS 1 ' + q1.perMessage.toFixed(1) + ' B/msg, QoS 2 ' +
        q2.perMessage.toFixed(1) + ' B/msg, QoS 1 with a 200-message backlog ' + q1backlog.perMessage.toFixed(1) +
        ' B/msg; log max ' + q1.maxLog + ' B, ' + q1.compactions + ' compactions per 1000 (QoS 1)',
    );
    // ADD (65) + SENT (13) + DONE (11) = 89 bytes appended per QoS 1 message, + REC (11) for QoS 2
    expect(q1.perMessage).toBeGreaterThanOrEqual(89);
    expect(q1.perMessage).toBeLessThan(95);
    expect(q2.perMessage).toBeLessThan(106);
    expect(q1backlog.perMessage).toBeLessThan(2 * 89);
    // compaction happens (the log stays bounded) but is far from a rewrite per message
    expect(q1.compactions).toBeGreaterThan(10);
    expect(q1.compactions).toBeLessThan(50);
    expect(q1.writesPerMessage).toBeLessThan(3.1);
    expect(q1.maxLog).toBeLessThan(4096 + 200);
  });
});
