// Runs the codec cases (codec-cases.ts) and reports one line per case through `log`:
//   "OK v5 CONNECT minimal" / "FAIL v5 CONNECT minimal: <why>"
// Round trips encode each packet, decode it with a decoder fed 3 bytes at a time, and compare with
// the original; then each version's packets (those that passed alone) go through one decoder as a
// single stream (one push, and 7-byte chunks). Malformed inputs must make the decoder throw ProtocolError; some packets must
// make encode() throw it. Wire cases decode given bytes and must re-encode to the same bytes.
//
// Bundled for Espruino (DESIGN.md section 2 subset) and also run on Node by the vitest test.

import { createDecoder, encode, ProtocolError } from '../../firmware/mqtt/index';
import type { Packet, Version } from '../../firmware/mqtt/types';
import { encodeRefusalCases, malformedCases, roundTripCases, TYPE_NAMES, wireCases } from './codec-cases';
import type { RoundTripCase } from './codec-cases';

export interface CheckTotals {
  passed: number;
  failed: number;
}

const MAX_PACKET = 65536;

function describeValue(v: unknown): string {
  if (v instanceof Uint8Array) return 'Uint8Array(' + v.length + ')';
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array(' + v.length + ')';
  if (typeof v === 'object') return '{' + Object.keys(v as object).join(',') + '}';
  return String(v);
}

/** First difference between a and b as "path: a vs b", or '' when equal. Missing == undefined. */
export function firstDifference(a: unknown, b: unknown, path: string): string {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) {
      return path + ': ' + describeValue(a) + ' vs ' + describeValue(b);
    }
    if (a.length !== b.length) return path + ': length ' + a.length + ' vs ' + b.length;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) return path + '[' + i + ']: ' + a[i] + ' vs ' + b[i];
    }
    return '';
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return path + ': ' + describeValue(a) + ' vs ' + describeValue(b);
    if (a.length !== b.length) return path + ': length ' + a.length + ' vs ' + b.length;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], path + '[' + i + ']');
      if (d) return d;
    }
    return '';
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ao = a as { [k: string]: unknown };
    const bo = b as { [k: string]: unknown };
    const keys = Object.keys(ao);
    const bkeys = Object.keys(bo);
    for (let i = 0; i < bkeys.length; i++) if (keys.indexOf(bkeys[i]) < 0) keys.push(bkeys[i]);
    keys.sort();
    for (let i = 0; i < keys.length; i++) {
      const d = firstDifference(ao[keys[i]], bo[keys[i]], path + '.' + keys[i]);
      if (d) return d;
    }
    return '';
  }
  if (a === b) return '';
  return path + ': ' + describeValue(a) + ' vs ' + describeValue(b);
}

/** Empty property bags decode as absent: drop them (also in a will). */
function withoutEmptyProps(o: { [k: string]: unknown }): { [k: string]: unknown } {
  const out = Object.assign({}, o) as { [k: string]: unknown };
  const props = out.properties as object | undefined;
  if (props !== undefined && Object.keys(props).length === 0) delete out.properties;
  return out;
}

/** What decode(encode(p)) must equal: the packet plus the fields the decoder always fills in. */
export function expectedDecoded(p: Packet, version: Version): { [k: string]: unknown } {
  const e = withoutEmptyProps(p as unknown as { [k: string]: unknown });
  const t = p.type as number;
  if (t === 1) {
    e.protocolVersion = version;
    if (e.will) e.will = withoutEmptyProps(e.will as { [k: string]: unknown });
  }
  // v5 PUBACK..PUBCOMP, DISCONNECT and AUTH always carry a reason code once decoded.
  if (version === 5 && ((t >= 4 && t <= 7) || t === 14 || t === 15) && e.reasonCode === undefined) {
    e.reasonCode = 0;
  }
  return e;
}

function errorText(e: unknown): string {
  if (e instanceof ProtocolError) return 'ProtocolError ' + e.rule + ' 0x' + e.reasonCode.toString(16) + ': ' + e.message;
  if (e && typeof e === 'object' && 'message' in e) {
    const m = (e as { message: unknown }).message;
    return String(m) + (e instanceof Error ? '' : ' (' + String(e) + ')');
  }
  return String(e);
}

function label(c: RoundTripCase): string {
  return 'v' + c.version + ' ' + TYPE_NAMES[c.packet.type] + ' ' + c.name;
}

/** Feeds `bytes` to a new decoder `chunk` bytes at a time; returns every packet it produced. */
function decodeInChunks(version: Version, bytes: Uint8Array, chunk: number): Packet[] {
  const dec = createDecoder(version, MAX_PACKET);
  const out: Packet[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    const got = dec.push(bytes.subarray(i, Math.min(i + chunk, bytes.length)));
    for (let j = 0; j < got.length; j++) out.push(got[j]);
  }
  if (dec.buffered !== 0) throw new Error('decoder still holds ' + dec.buffered + ' bytes');
  return out;
}

function checkRoundTrip(c: RoundTripCase): string {
  const wire = encode(c.packet, c.version);
  if (!(wire instanceof Uint8Array)) return 'encode did not return a Uint8Array';
  const got = decodeInChunks(c.version, wire, 3);
  if (got.length !== 1) return 'decoded ' + got.length + ' packets from ' + wire.length + ' bytes';
  const d = firstDifference(got[0], expectedDecoded(c.packet, c.version), 'packet');
  if (d) return d + ' (decoded vs expected)';
  // Re-encoding the decoded packet gives the same bytes.
  const again = encode(got[0], c.version);
  return firstDifference(again, wire, 're-encoded');
}

function checkStream(cases: RoundTripCase[], version: Version, chunk: number): string {
  const mine: RoundTripCase[] = [];
  for (let i = 0; i < cases.length; i++) if (cases[i].version === version) mine.push(cases[i]);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < mine.length; i++) {
    const w = encode(mine[i].packet, version);
    parts.push(w);
    total += w.length;
  }
  const all = new Uint8Array(total);
  let pos = 0;
  for (let i = 0; i < parts.length; i++) {
    all.set(parts[i], pos);
    pos += parts[i].length;
  }
  const got = decodeInChunks(version, all, chunk);
  if (got.length !== mine.length) return 'decoded ' + got.length + ' packets, expected ' + mine.length;
  for (let i = 0; i < mine.length; i++) {
    const d = firstDifference(got[i], expectedDecoded(mine[i].packet, version), 'packet');
    if (d) return label(mine[i]) + ': ' + d;
  }
  return '';
}

/** Runs every check, logging one line each; returns the totals. */
export function runCodecChecks(log: (line: string) => void): CheckTotals {
  const totals: CheckTotals = { passed: 0, failed: 0 };
  function report(name: string, problem: string): void {
    if (problem) {
      totals.failed++;
      log('FAIL ' + name + ': ' + problem);
    } else {
      totals.passed++;
      log('OK ' + name);
    }
  }

  const cases = roundTripCases();
  // The stream checks use only the cases that round-trip alone, so one bad case is reported once.
  const good: RoundTripCase[] = [];
  for (let i = 0; i < cases.length; i++) {
    let problem: string;
    try {
      problem = checkRoundTrip(cases[i]);
    } catch (e) {
      problem = 'threw ' + errorText(e);
    }
    if (!problem) good.push(cases[i]);
    report(label(cases[i]), problem);
  }

  const versions: Version[] = [4, 5];
  const chunks = [100000, 7];
  for (let v = 0; v < versions.length; v++) {
    for (let k = 0; k < chunks.length; k++) {
      let problem: string;
      try {
        problem = checkStream(good, versions[v], chunks[k]);
      } catch (e) {
        problem = 'threw ' + errorText(e);
      }
      report('v' + versions[v] + ' STREAM chunks-of-' + chunks[k], problem);
    }
  }

  const wire = wireCases();
  for (let i = 0; i < wire.length; i++) {
    const c = wire[i];
    let problem = '';
    try {
      const input = new Uint8Array(c.bytes);
      const got = decodeInChunks(c.version, input, 3);
      if (got.length !== 1) problem = 'decoded ' + got.length + ' packets';
      else problem = firstDifference(encode(got[0], c.version), input, 're-encoded');
    } catch (e) {
      problem = 'threw ' + errorText(e);
    }
    report('v' + c.version + ' WIRE ' + c.name, problem);
  }

  const bad = malformedCases();
  for (let i = 0; i < bad.length; i++) {
    const c = bad[i];
    let problem = '';
    const dec = createDecoder(c.version, c.maxPacketSize === undefined ? MAX_PACKET : c.maxPacketSize);
    try {
      const got = dec.push(new Uint8Array(c.bytes));
      problem = 'accepted (' + got.length + ' packets, ' + dec.buffered + ' bytes buffered)';
    } catch (e) {
      if (!(e instanceof ProtocolError)) problem = 'threw a non-ProtocolError: ' + errorText(e);
      else if (typeof e.rule !== 'string' || typeof e.reasonCode !== 'number') problem = 'ProtocolError without rule/reasonCode';
    }
    report('v' + c.version + ' MALFORMED ' + c.name, problem);
  }

  const refusals = encodeRefusalCases();
  for (let i = 0; i < refusals.length; i++) {
    const c = refusals[i];
    let problem = '';
    try {
      const w = encode(c.packet as Packet, c.version);
      problem = 'encoded ' + w.length + ' bytes';
    } catch (e) {
      if (!(e instanceof ProtocolError)) problem = 'threw a non-ProtocolError: ' + errorText(e);
    }
    report('v' + c.version + ' REFUSE ' + c.name, problem);
  }
  return totals;
}
