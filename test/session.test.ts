// firmware/session: the offline queue, the QoS 1/2 in-flight window, packet ids, inbound QoS 2 ids,
// and persistence across reboots (MemoryStorage). Power loss and flash wear: session-powerloss.test.ts.

import { describe, expect, it } from 'vitest';
import { MemoryLog, MemoryStorage } from '../hal/mock/index';
import { MsgState, Session, holdId, releaseId, type OutMessage, type SessionLimits } from '../firmware/session/index';

const BIG: SessionLimits = { maxMessages: 1000, maxBytes: 1_000_000, overflow: 'reject' };

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

function ok(r: ReturnType<Session['enqueue']>): number {
  if (!r.ok) throw new Error('enqueue failed: ' + r.code + ' ' + r.message);
  return r.seq;
}

/** A deep copy of the held messages (all() returns the session's own objects). */
function snap(s: Session): OutMessage[] {
  return structuredClone(s.all());
}

function reboot(storage: MemoryStorage, limits = BIG, log?: MemoryLog): { s: Session; storage: MemoryStorage; report: ReturnType<Session['load']> } {
  const st = storage.reboot();
  const s = new Session(st, 'sess', limits, log);
  const report = s.load();
  return { s, storage: st, report };
}

/** Sends the next queued message with a fresh id; returns it. */
function sendNext(s: Session): OutMessage {
  const m = s.nextQueued();
  if (!m) throw new Error('nothing queued');
  const id = m.qos > 0 ? s.allocateId() : 0;
  s.markSent(m.seq, id);
  return m;
}

describe('Session queue', () => {
  it('is FIFO across QoS levels and nextQueued does not change state', () => {
    const s = new Session(undefined, 'sess', BIG);
    expect(s.load()).toEqual({ messages: 0, inboundQos2: 0, droppedBytes: 0 });
    const seqs = [
      ok(s.enqueue('t/1', bytes(3), 1, false)),
      ok(s.enqueue('t/2', bytes(3), 0, false)),
      ok(s.enqueue('t/3', bytes(3), 2, true)),
      ok(s.enqueue('t/4', bytes(3), 0, false)),
    ];
    expect(seqs).toEqual([1, 2, 3, 4]);
    expect(s.nextQueued()!.seq).toBe(1);
    expect(s.nextQueued()!.seq).toBe(1);
    const order: string[] = [];
    for (let m = s.nextQueued(); m; m = s.nextQueued()) {
      order.push(m.topic);
      s.markSent(m.seq, m.qos > 0 ? s.allocateId() : 0);
    }
    expect(order).toEqual(['t/1', 't/2', 't/3', 't/4']);
    // QoS 0 left the session when sent; QoS 1 and 2 are in flight
    expect(s.all().map((m) => m.seq)).toEqual([1, 3]);
    expect(s.inflight().map((m) => m.state)).toEqual([MsgState.SENT, MsgState.SENT]);
    expect(s.stats()).toEqual({ messages: 2, bytes: 12, queued: 0, inflight: 2, qos0: 0 });
  });

  it('copies the payload (the app may reuse its buffer) and counts UTF-8 topic bytes', () => {
    const s = new Session(undefined, 'sess', BIG);
    const p = bytes(4);
    ok(s.enqueue('température', p, 1, false));
    p.fill(0);
    expect(s.all()[0].payload).toEqual(bytes(4));
    expect(s.stats().bytes).toBe(12 + 4); // "température" is 12 UTF-8 bytes
  });

  it("'reject': refuses with queue-full by count and by bytes, and changes nothing", () => {
    const s = new Session(undefined, 'sess', { maxMessages: 3, maxBytes: 100, overflow: 'reject' });
    ok(s.enqueue('a', bytes(10), 0, false));
    ok(s.enqueue('b', bytes(10), 1, false));
    ok(s.enqueue('c', bytes(10), 2, false));
    const before = snap(s);
    const r = s.enqueue('d', bytes(1), 0, false);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('queue-full');
    expect(snap(s)).toEqual(before);

    const t = new Session(undefined, 'sess', { maxMessages: 10, maxBytes: 30, overflow: 'reject' });
    ok(t.enqueue('a', bytes(19), 0, false)); // 20 bytes
    const r2 = t.enqueue('b', bytes(10), 0, false); // 11 more: 31 > 30
    expect(r2).toMatchObject({ ok: false, code: 'queue-full' });
    ok(t.enqueue('b', bytes(9), 0, false)); // exactly 30
    expect(t.stats().bytes).toBe(30);
  });

  it("'drop-oldest-qos0': evicts the oldest QoS 0 only, reports their seqs, rejects when only QoS>=1 remain", () => {
    const s = new Session(undefined, 'sess', { maxMessages: 4, maxBytes: 1000, overflow: 'drop-oldest-qos0' });
    const a = ok(s.enqueue('a', bytes(1), 1, false));
    const b = ok(s.enqueue('b', bytes(1), 0, false));
    const c = ok(s.enqueue('c', bytes(1), 2, false));
    const d = ok(s.enqueue('d', bytes(1), 0, false));
    const r = s.enqueue('e', bytes(1), 1, false);
    expect(r).toEqual({ ok: true, seq: 5, dropped: [b] });
    expect(s.all().map((m) => m.seq)).toEqual([a, c, d, 5]);
    const r2 = s.enqueue('f', bytes(1), 0, false); // a QoS 0 may evict an older QoS 0
    expect(r2).toEqual({ ok: true, seq: 6, dropped: [d] });
    const r3 = s.enqueue('g', bytes(1), 2, false);
    expect(r3).toEqual({ ok: true, seq: 7, dropped: [6] });
    expect(s.stats().qos0).toBe(0);
    const before = snap(s);
    const r4 = s.enqueue('h', bytes(1), 0, false);
    expect(r4).toMatchObject({ ok: false, code: 'queue-full' });
    expect(snap(s)).toEqual(before);
  });

  it("'drop-oldest-qos0' by bytes evicts as many as needed, or none when that cannot make room", () => {
    const s = new Session(undefined, 'sess', { maxMessages: 100, maxBytes: 100, overflow: 'drop-oldest-qos0' });
    const q0 = [ok(s.enqueue('x', bytes(19), 0, false)), ok(s.enqueue('y', bytes(19), 0, false))]; // 40 bytes
    ok(s.enqueue('p', bytes(49), 1, false)); // 50 bytes, total 90
    const r = s.enqueue('z', bytes(29), 0, false); // needs 30: 90+30-100 = 20 -> drop x (20)
    expect(r).toEqual({ ok: true, seq: 4, dropped: [q0[0]] });
    expect(s.stats().bytes).toBe(100);
    // 60 bytes needed but only 50 of QoS 0 (y, z) held: refuse without evicting
    const before = snap(s);
    const r2 = s.enqueue('w', bytes(59), 1, false);
    expect(r2).toMatchObject({ ok: false, code: 'queue-full' });
    expect(snap(s)).toEqual(before);
    const r3 = s.enqueue('w', bytes(49), 1, false); // 50: drop y and z
    expect(r3).toEqual({ ok: true, seq: 5, dropped: [q0[1], 4] });
  });

  it('refuses a single message larger than maxBytes (too-large) in both policies', () => {
    for (const overflow of ['reject', 'drop-oldest-qos0'] as const) {
      const s = new Session(undefined, 'sess', { maxMessages: 10, maxBytes: 50, overflow });
      ok(s.enqueue('a', bytes(10), 0, false));
      const r = s.enqueue('topic', bytes(46), 0, false); // 51
      expect(r).toMatchObject({ ok: false, code: 'too-large' });
      expect(s.stats().messages).toBe(1);
    }
    // a persisted message must fit one log frame (64 KB)
    const p = new Session(new MemoryStorage(), 'sess', { maxMessages: 10, maxBytes: 1 << 20, overflow: 'reject' });
    expect(p.enqueue('t', new Uint8Array(70000), 1, false)).toMatchObject({ ok: false, code: 'too-large' });
    expect(p.enqueue('t', new Uint8Array(70000), 0, false)).toMatchObject({ ok: true }); // QoS 0: RAM only
  });

  it('remove() and get()', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'sess', BIG);
    s.load();
    const a = ok(s.enqueue('a', bytes(2), 1, false));
    const b = ok(s.enqueue('b', bytes(2), 1, false));
    sendNext(s);
    expect(s.get(b)!.topic).toBe('b');
    expect(s.remove(a)!.topic).toBe('a');
    expect(s.remove(a)).toBeUndefined();
    expect(s.inflightCount()).toBe(0);
    expect(s.get(a)).toBeUndefined();
    expect(reboot(st).s.all().map((m) => m.seq)).toEqual([b]);
  });
});

describe('Session packet ids', () => {
  it('never hands out an id in use, across completions and wrap-around', () => {
    const s = new Session(undefined, 'sess', { maxMessages: 100_000, maxBytes: 10_000_000, overflow: 'reject' });
    const inUse = new Set<number>();
    const window: OutMessage[] = [];
    let completed = 0;
    // Keep ~300 in flight while cycling through the id space more than twice.
    for (let round = 0; round < 140_000; round++) {
      const seq = ok(s.enqueue('t', bytes(1), round % 3 === 0 ? 2 : 1, false));
      const id = s.allocateId();
      if (id < 1 || id > 65535 || inUse.has(id)) throw new Error('bad id ' + id + ' (in use: ' + inUse.has(id) + ')');
      s.markSent(seq, id);
      inUse.add(id);
      window.push(s.get(seq)!);
      if (inUse.size > 300) {
        // complete the oldest
        const m = window.shift()!;
        if (m.qos === 2 && s.received(m.packetId) !== m) throw new Error('PUBREC');
        if (s.complete(m.packetId, m.qos === 1 ? 'puback' : 'pubcomp') !== m) throw new Error('complete');
        inUse.delete(m.packetId);
        completed++;
      }
    }
    expect(completed).toBeGreaterThan(131_070); // wrapped past 65535 twice
    expect(s.inflightCount()).toBe(inUse.size);
  });

  it('returns 0 when all 65535 ids are in flight, then exactly the freed id', () => {
    const s = new Session(undefined, 'sess', { maxMessages: 70_000, maxBytes: 10_000_000, overflow: 'reject' });
    const e = new Uint8Array(0);
    for (let i = 0; i < 65535; i++) {
      const seq = ok(s.enqueue('t', e, 1, false));
      const id = s.allocateId();
      if (id !== i + 1) throw new Error('expected id ' + (i + 1) + ', got ' + id);
      s.markSent(seq, id);
    }
    expect(s.inflightCount()).toBe(65535);
    expect(s.allocateId()).toBe(0);
    expect(s.complete(40000, 'puback')!.packetId).toBe(40000);
    expect(s.complete(123, 'puback')!.packetId).toBe(123);
    expect(s.allocateId()).toBe(123); // round robin from 65535 wraps to 1 and skips every id in use
    expect(s.allocateId()).toBe(40000);
    const seq = ok(s.enqueue('t', e, 1, false));
    s.markSent(seq, 123);
    expect(holdId(s, 40000)).toBe(true); // a SUBSCRIBE takes the last free id
    expect(s.allocateId()).toBe(0);
    expect(holdId(s, 40000)).toBe(false);
    expect(s.complete(40000, 'puback')).toBeUndefined(); // a held SUBSCRIBE id is not a publish
    expect(releaseId(s, 40000)).toBe(true);
    expect(releaseId(s, 40000)).toBe(false);
    expect(s.allocateId()).toBe(40000);
  });

  it('holdId ids are skipped by allocateId and survive resetForNewSession', () => {
    const s = new Session(undefined, 'sess', BIG);
    expect(holdId(s, 1)).toBe(true);
    expect(holdId(s, 0)).toBe(false);
    expect(holdId(s, 65536)).toBe(false);
    expect(s.allocateId()).toBe(2);
    const seq = ok(s.enqueue('t', bytes(1), 1, false));
    s.markSent(seq, 2);
    expect(holdId(s, 2)).toBe(false);
    s.resetForNewSession();
    expect(s.allocateId()).toBe(3);
    expect(holdId(s, 1)).toBe(false);
  });

  it('markSent refuses an id already in use or out of range (programmer error)', () => {
    const s = new Session(undefined, 'sess', BIG);
    const a = ok(s.enqueue('a', bytes(1), 1, false));
    const b = ok(s.enqueue('b', bytes(1), 1, false));
    s.markSent(a, 7);
    expect(() => s.markSent(b, 7)).toThrow(/in use/);
    expect(() => s.markSent(b, 0)).toThrow();
    expect(() => s.markSent(b, 65536)).toThrow();
    s.markSent(a, 9); // already in flight: a resend keeps its id
    expect(s.get(a)!.packetId).toBe(7);
    s.markSent(999, 10); // unknown seq (e.g. evicted): nothing
    expect(s.inflightCount()).toBe(1);
  });
});

describe('Session QoS flows', () => {
  it('QoS 1: SENT then PUBACK removes it; repeated and wrong-kind acks return undefined', () => {
    const s = new Session(undefined, 'sess', BIG);
    ok(s.enqueue('a', bytes(2), 1, false));
    const m = sendNext(s);
    expect(m.state).toBe(MsgState.SENT);
    expect(m.packetId).toBe(1);
    expect(s.received(1)).toBeUndefined(); // PUBREC for a QoS 1 message
    expect(s.complete(1, 'pubcomp')).toBeUndefined();
    expect(s.complete(1, 'puback')).toBe(m);
    expect(s.complete(1, 'puback')).toBeUndefined();
    expect(s.stats().messages).toBe(0);
  });

  it('QoS 2: SENT -> PUBREC -> RELEASED (repeatable) -> PUBCOMP removes it', () => {
    const s = new Session(undefined, 'sess', BIG);
    ok(s.enqueue('a', bytes(2), 2, false));
    const m = sendNext(s);
    expect(s.complete(m.packetId, 'pubcomp')).toBeUndefined(); // PUBCOMP before PUBREC
    expect(s.complete(m.packetId, 'puback')).toBeUndefined();
    expect(s.received(m.packetId)).toBe(m);
    expect(m.state).toBe(MsgState.RELEASED);
    expect(s.received(m.packetId)).toBe(m); // a repeated PUBREC: resend PUBREL
    expect(m.state).toBe(MsgState.RELEASED);
    expect(s.inflightCount()).toBe(1);
    expect(s.complete(m.packetId, 'pubcomp')).toBe(m);
    expect(s.inflightCount()).toBe(0);
    expect(s.complete(m.packetId, 'pubcomp')).toBeUndefined();
  });

  it('acks for ids never issued return undefined and change nothing', () => {
    const s = new Session(undefined, 'sess', BIG);
    ok(s.enqueue('a', bytes(2), 1, false));
    ok(s.enqueue('b', bytes(2), 2, false));
    const before = snap(s);
    for (const id of [0, 1, 2, 77, 65535]) {
      expect(s.complete(id, 'puback')).toBeUndefined();
      expect(s.complete(id, 'pubcomp')).toBeUndefined();
      expect(s.received(id)).toBeUndefined();
    }
    expect(snap(s)).toEqual(before);
  });

  it('inbound QoS 2 is delivered exactly once per id until PUBREL, also across a reboot', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'sess', BIG);
    s.load();
    expect(s.inboundQos2(7)).toBe(true);
    expect(s.inboundQos2(7)).toBe(false);
    expect(s.inboundQos2(8)).toBe(true);
    const r = reboot(st);
    expect(r.report).toEqual({ messages: 0, inboundQos2: 2, droppedBytes: 0 });
    expect(r.s.inboundIds()).toEqual([7, 8]);
    expect(r.s.inboundQos2(7)).toBe(false); // the broker's resend after the reboot is a duplicate
    expect(r.s.inboundRelease(7)).toBe(true);
    expect(r.s.inboundRelease(7)).toBe(false);
    expect(r.s.inboundRelease(9)).toBe(false);
    expect(r.s.inboundQos2(7)).toBe(true); // a new message reusing the id
    expect(reboot(r.storage).s.inboundIds()).toEqual([7, 8]);
  });

  it('resetForNewSession: in flight back to QUEUED in order with ids freed, inbound ids forgotten, persisted', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'sess', BIG);
    s.load();
    const seqs = [1, 2, 3, 4].map((i) => ok(s.enqueue('t/' + i, bytes(i), (i % 2 ? 1 : 2) as 1 | 2, false)));
    sendNext(s);
    sendNext(s);
    sendNext(s);
    expect(s.received(2)).toBeDefined();
    s.inboundQos2(100);
    s.resetForNewSession();
    expect(s.inflightCount()).toBe(0);
    expect(s.all().map((m) => [m.seq, m.state, m.packetId])).toEqual(seqs.map((q) => [q, MsgState.QUEUED, 0]));
    expect(s.nextQueued()!.seq).toBe(seqs[0]);
    expect(s.inboundIds()).toEqual([]);
    expect(s.inboundQos2(100)).toBe(true);
    const r = reboot(st);
    expect(snap(r.s)).toEqual(snap(s));
    expect(r.s.inboundIds()).toEqual([100]);
    // ids were freed: the old ids 1..3 are not in use any more
    expect(r.s.inflightCount()).toBe(0);
  });
});

describe('Session persistence', () => {
  const limits: SessionLimits = { maxMessages: 100, maxBytes: 100_000, overflow: 'drop-oldest-qos0' };

  function build(st: MemoryStorage): Session {
    const s = new Session(st, 'sess', limits);
    s.load();
    ok(s.enqueue('plain/1', bytes(5), 1, false));
    ok(s.enqueue('qos0/dropped-at-reboot', bytes(5), 0, false));
    ok(s.enqueue('props/ü/✓/😀', bytes(300, 2), 2, true, {
      correlationData: new Uint8Array([0, 1, 0xfe, 0xff]),
      userProperties: [['a', 'b'], ['a', 'c'], ['ключ', 'значение']],
      contentType: 'application/json',
      responseTopic: 'reply/to',
      messageExpiryInterval: 3600,
      payloadFormatIndicator: true,
    }));
    ok(s.enqueue('empty/payload', new Uint8Array(0), 1, true, {}));
    ok(s.enqueue('q2/b', bytes(7), 2, false));
    ok(s.enqueue('q1/queued', bytes(9), 1, false));
    sendNext(s); // plain/1 SENT
    sendNext(s); // qos0 sent: gone
    sendNext(s); // props SENT
    sendNext(s); // empty SENT
    sendNext(s); // q2/b SENT
    s.received(2); // props RELEASED
    s.complete(3, 'puback'); // empty done
    s.inboundQos2(500);
    s.inboundQos2(501);
    s.inboundRelease(500);
    return s;
  }

  it('a reboot restores an identical state (messages, states, ids, properties, inbound ids)', () => {
    const st = new MemoryStorage();
    const s = build(st);
    ok(s.enqueue('qos0/again', bytes(2), 0, false));
    const expected = snap(s).filter((m) => m.qos > 0);
    const r = reboot(st, limits);
    expect(r.report).toEqual({ messages: 4, inboundQos2: 1, droppedBytes: 0 });
    expect(snap(r.s)).toEqual(expected);
    expect(r.s.all()[1].properties!.correlationData).toBeInstanceOf(Uint8Array);
    expect(r.s.inboundIds()).toEqual([501]);
    expect(r.s.stats()).toEqual({ messages: 4, bytes: s.stats().bytes - 2 - 'qos0/again'.length, queued: 1, inflight: 3, qos0: 0 });
    // in-flight ids stay taken; seqs continue above everything handed out before (QoS 0 too)
    const maxSeq = s.all()[s.all().length - 1].seq;
    const id = r.s.allocateId();
    expect(r.s.inflight().map((m) => m.packetId)).not.toContain(id);
    const seq = ok(r.s.enqueue('after', bytes(1), 0, false));
    expect(seq).toBeGreaterThan(maxSeq);
    // the resend flow works on the restored state
    const rel = r.s.inflight().find((m) => m.state === MsgState.RELEASED)!;
    expect(r.s.complete(rel.packetId, 'pubcomp')!.topic).toBe('props/ü/✓/😀');
  });

  it('seqs are never reused after completing everything, clearing, compacting and rebooting', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'sess', { ...limits, compactBytes: 0 });
    s.load();
    let last = 0;
    for (let i = 0; i < 200; i++) {
      last = ok(s.enqueue('t', bytes(3), (i % 3) as 0 | 1 | 2, false));
      if (i % 5 === 0) while (s.nextQueued()) sendNext(s);
      if (i % 7 === 0) for (const m of s.inflight()) if (m.qos === 1) s.complete(m.packetId, 'puback');
    }
    s.clear();
    expect(s.stats().messages).toBe(0);
    const r = reboot(st);
    expect(r.report).toEqual({ messages: 0, inboundQos2: 0, droppedBytes: 0 });
    expect(ok(r.s.enqueue('t', bytes(1), 0, false))).toBeGreaterThan(last);
    expect(s.storageStats().compactions).toBeGreaterThan(0);
  });

  it('clear() is persisted', () => {
    const st = new MemoryStorage();
    const s = build(st);
    s.clear();
    expect(s.all()).toEqual([]);
    expect(s.inboundIds()).toEqual([]);
    for (const id of [1, 2, 4]) expect(holdId(s, id)).toBe(true); // the in-flight ids were freed
    const r = reboot(st, limits);
    expect(r.report).toEqual({ messages: 0, inboundQos2: 0, droppedBytes: 0 });
    expect(r.s.inboundQos2(501)).toBe(true);
  });

  it('a torn tail (garbage, truncation) is dropped, reported, and rewritten before the next append', () => {
    for (const garbage of [new Uint8Array([0xff, 0xff, 0xff]), new Uint8Array([0x00, 0x10, 0x01, 0x02]), new Uint8Array([0x00])]) {
      const st = new MemoryStorage();
      const s = build(st);
      const expected = snap(s);
      st.append('sess.l', garbage);
      const log = new MemoryLog();
      const r = reboot(st, limits, log);
      expect(r.report.droppedBytes).toBe(garbage.length);
      expect(log.text()).toMatch(/torn/);
      expect(snap(r.s)).toEqual(expected);
      ok(r.s.enqueue('later', bytes(4), 1, false));
      const r2 = reboot(r.storage, limits);
      expect(r2.report.droppedBytes).toBe(0);
      expect(r2.s.all().map((m) => m.topic)).toEqual([...expected.map((m) => m.topic), 'later']);
    }
  });

  it('a corrupt frame in the middle stops the replay there (checksum), never throws', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'sess', limits);
    s.load();
    ok(s.enqueue('a', bytes(4), 1, false));
    const cut = st.size('sess.l')!;
    ok(s.enqueue('b', bytes(4), 1, false));
    ok(s.enqueue('c', bytes(4), 1, false));
    const raw = st.read('sess.l')!;
    raw[cut + 5] ^= 0x40; // a bit flip inside b's frame
    const bad = new MemoryStorage({ records: { 'sess.l': raw } });
    const t = new Session(bad, 'sess', limits);
    const rep = t.load();
    expect(rep.messages).toBe(1);
    expect(rep.droppedBytes).toBe(raw.length - cut);
    expect(t.all().map((m) => m.topic)).toEqual(['a']);
    // pure garbage from the first byte
    const junk = new MemoryStorage({ records: { 'sess.l': bytes(500, 9) } });
    const u = new Session(junk, 'sess', limits);
    expect(u.load()).toEqual({ messages: 0, inboundQos2: 0, droppedBytes: 500 });
    expect(junk.size('sess.l')).toBeLessThan(20);
  });

  it('QoS 0 is never written; QoS>=1 is appended before enqueue returns', () => {
    const st = new MemoryStorage();
    const s = new Session(st, 'sess', limits);
    s.load();
    ok(s.enqueue('q0', bytes(10), 0, false)); // reserves a block of seqs (one small frame)
    const afterFirst = st.bytesWritten;
    expect(afterFirst).toBeLessThan(16);
    for (let i = 0; i < 20; i++) ok(s.enqueue('q0', bytes(10), 0, false));
    expect(st.bytesWritten).toBe(afterFirst);
    ok(s.enqueue('q1', bytes(10), 1, false));
    expect(st.bytesWritten).toBeGreaterThan(afterFirst + 10);
    expect(reboot(st).s.all().map((m) => m.topic)).toEqual(['q1']);
  });

  it('storage full: a QoS>=1 enqueue returns storage-full and changes nothing; QoS 0 still works', () => {
    const st = new MemoryStorage({ capacity: 2000 });
    const s = new Session(st, 'sess', limits);
    s.load();
    let seqs: number[] = [];
    let full: ReturnType<Session['enqueue']> | undefined;
    for (let i = 0; i < 100; i++) {
      const r = s.enqueue('t', bytes(100), 1, false);
      if (!r.ok) {
        full = r;
        break;
      }
      seqs.push(r.seq);
    }
    expect(full).toMatchObject({ ok: false, code: 'storage-full' });
    expect(s.all().map((m) => m.seq)).toEqual(seqs);
    expect(s.enqueue('q0', bytes(10), 0, false).ok).toBe(true);
    const r = reboot(st, limits);
    expect(r.s.all().map((m) => m.seq)).toEqual(seqs);
    // completing messages frees room again (through compaction)
    seqs = seqs.slice(5);
    for (let i = 0; i < 5; i++) r.s.remove(r.s.all()[0].seq);
    expect(r.s.enqueue('t', bytes(100), 1, false).ok).toBe(true);
  });

  it('RAM-only (no storage) works the same without persistence', () => {
    const s = new Session(undefined, 'sess', BIG);
    ok(s.enqueue('a', bytes(1), 2, false));
    sendNext(s);
    expect(s.received(1)!.state).toBe(MsgState.RELEASED);
    expect(s.inboundQos2(3)).toBe(true);
    expect(s.storageStats()).toMatchObject({ logBytes: 0, compactions: 0 });
  });

  it('rejects names that would exceed the 28-character record name limit', () => {
    expect(() => new Session(undefined, 'x'.repeat(27), BIG)).toThrow();
    expect(() => new Session(undefined, '', BIG)).toThrow();
    const st = new MemoryStorage();
    const s = new Session(st, 'y'.repeat(26), BIG);
    s.load();
    ok(s.enqueue('a', bytes(1), 1, false));
    expect(st.list()).toEqual(['y'.repeat(26) + '.l']);
  });
});
