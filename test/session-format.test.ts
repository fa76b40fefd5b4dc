// The session's on-flash log, byte for byte. A firmware update must read the log an older firmware
// wrote (and keep writing the same frames), so the bytes below are fixed: they were written by the
// session before its size rework (commit e11e7d8) and are checked in both directions:
// - the same operations today write exactly these bytes (every record type: ADD with and without
//   properties, SENT, REC, DONE, REQUEUE, IN2, REL, CLEAR, SEQ, and a compaction snapshot);
// - these bytes load to the state they describe.
// If a change to firmware/session makes this fail, the on-flash format changed: that needs a new
// FORMAT and a reader for the old one, not a new golden.

import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../hal/mock/index';
import { Session, type SessionLimits } from '../firmware/session/index';

const LIMITS: SessionLimits = { maxMessages: 10, maxBytes: 1000, overflow: 'drop-oldest-qos0', compactBytes: 100000 };

/** The log after the operations in run() (before the reboot). */
const LOG =
  '008101000000010d0004612fc3bc00707b22636f7272656c6174696f6e44617461223a22303066663130222c2275736572' +
  '50726f70657274696573223a5b5b226b222c22c3a9225d5d2c22636f6e74656e7454797065223a22746578742f706c6169' +
  '6e222c226d657373616765457870697279496e74657276616c223a36307d010203486d9a44000c01000000020200016200' +
  '0004ae3c48260006090100000043f3488201000b01000000040100016300007256d8e60007020000000100010d96563f00' +
  '070200000002000296d9b9dc00050300000002640f553100030600074e7eb1e20003060009a9c69ce500030700074fbcdb' +
  'd5000504000000014f26d89b00010596301cdc000702000000020003e1de894a00050300000002640f55310003060005a0' +
  '70d0ce0003060003491375fb';

/** The snapshot load() writes over LOG + a torn tail: SEQ, ADD b + SENT + REC, ADD c, IN2 3, IN2 5. */
const SNAPSHOT =
  '0006090100000043f3488201000c010000000202000162000004ae3c4826000702000000020003e1de894a000503000000' +
  '02640f5531000b01000000040100016300007256d8e60003060003491375fb0003060005a070d0ce';

/** SNAPSHOT + a CLEAR frame. */
const CLEARED = SNAPSHOT + '000108e8816061';

const hex = (st: MemoryStorage): string => Buffer.from(st.read('g.l') as Uint8Array).toString('hex');

function run(): { log: string; report: unknown; snap: string; cleared: string } {
  let st = new MemoryStorage();
  let s = new Session(st, 'g', LIMITS);
  s.load();
  const props = { correlationData: new Uint8Array([0, 255, 16]), userProperties: [['k', 'é']] as Array<[string, string]>, contentType: 'text/plain', messageExpiryInterval: 60 };
  s.enqueue('a/ü', new Uint8Array([1, 2, 3]), 1, true, props); // seq 1
  s.enqueue('b', new Uint8Array([4]), 2, false); // seq 2
  s.enqueue('q0', new Uint8Array([5]), 0, false); // seq 3, RAM only: a SEQ frame reserves 3..66
  s.enqueue('c', new Uint8Array([]), 1, false); // seq 4
  s.markSent(1, s.allocateId()); // id 1
  s.markSent(2, s.allocateId()); // id 2
  s.received(2);
  s.inboundQos2(7);
  s.inboundQos2(9);
  s.inboundRelease(7);
  s.complete(1, 'puback');
  s.resetForNewSession();
  s.markSent(2, s.allocateId()); // id 3
  s.received(3);
  s.inboundQos2(5);
  s.inboundQos2(3);
  const log = hex(st);
  st = st.reboot();
  st.append('g.l', new Uint8Array([0, 9, 1, 0xff, 0xff])); // a torn frame
  s = new Session(st, 'g', LIMITS);
  const report = s.load();
  const snap = hex(st);
  s.clear();
  return { log, report, snap, cleared: hex(st) };
}

describe('session on-flash format', () => {
  it('writes the same bytes as before (every record type, a snapshot, a clear)', () => {
    const r = run();
    expect(r.log).toBe(LOG);
    expect(r.report).toEqual({ messages: 2, inboundQos2: 2, droppedBytes: 5 });
    expect(r.snap).toBe(SNAPSHOT);
    expect(r.cleared).toBe(CLEARED);
  });

  it('reads the fixed bytes back to the state they describe', () => {
    const load = (h: string) => {
      const st = new MemoryStorage({ records: { 'g.l': new Uint8Array(Buffer.from(h, 'hex')) } });
      const s = new Session(st, 'g', LIMITS);
      return { s, report: s.load() };
    };
    for (const h of [LOG, SNAPSHOT]) {
      const { s, report } = load(h);
      expect(report).toEqual({ messages: 2, inboundQos2: 2, droppedBytes: 0 });
      expect(s.all()).toEqual([
        { seq: 2, topic: 'b', payload: new Uint8Array([4]), qos: 2, retain: false, packetId: 3, state: 2 },
        { seq: 4, topic: 'c', payload: new Uint8Array([]), qos: 1, retain: false, packetId: 0, state: 0 },
      ]);
      expect(s.inboundIds()).toEqual([3, 5]);
      // seqs up to 66 were reserved for QoS 0 messages: the next one is 67
      expect(s.enqueue('d', new Uint8Array([]), 0, false)).toEqual({ ok: true, seq: 67 });
      expect(s.storageStats().liveBytes).toBe(SNAPSHOT.length / 2);
    }
    const { s, report } = load(CLEARED);
    expect(report).toEqual({ messages: 0, inboundQos2: 0, droppedBytes: 0 });
    expect(s.all()).toEqual([]);
  });

  it('reads properties back from the first ADD frame alone (JSON, correlationData as hex)', () => {
    const st = new MemoryStorage({ records: { 'g.l': new Uint8Array(Buffer.from(LOG.slice(0, 2 * (0x81 + 6)), 'hex')) } });
    const s = new Session(st, 'g', LIMITS);
    expect(s.load()).toEqual({ messages: 1, inboundQos2: 0, droppedBytes: 0 });
    expect(s.get(1)).toEqual({
      seq: 1,
      topic: 'a/ü',
      payload: new Uint8Array([1, 2, 3]),
      qos: 1,
      retain: true,
      packetId: 0,
      state: 0,
      properties: { correlationData: new Uint8Array([0, 255, 16]), userProperties: [['k', 'é']], contentType: 'text/plain', messageExpiryInterval: 60 },
    });
  });
});
