import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { crc32 } from '../../src/buffer/durable/crc32.js';
import { SEGMENT_HEADER, Segment, decodeRecord, encodeRecord, recordBytes, type LogFile } from '../../src/buffer/durable/record-codec.js';
import { SegmentLog } from '../../src/buffer/durable/segment-log.js';
import { scanSegment } from '../../src/buffer/durable/segment-scan.js';
import { fuzzRuns } from './runs.js';

/*
 * Random logs with random damage (bit flips, truncation, zeroed spans, inserted garbage): the
 * reader never throws, never returns a record whose bytes are not the ones written, returns every
 * record the damage did not touch, and counts as lost exactly the seqs it does not return.
 */

type Damage =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'zero'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('zero' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 600 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 120 }) }),
  },
);

const logArb = fc.record({
  base: fc.integer({ min: 1, max: 1_000_000 }),
  sizes: fc.array(fc.integer({ min: 0, max: 260 }), { minLength: 1, maxLength: 40 }),
  damage: fc.array(damageArb, { minLength: 1, maxLength: 3 }),
  last: fc.boolean(),
});

interface Written {
  bytes: Buffer;
  /** Per record: its payload and where it sits in the file. */
  records: Array<{ seq: number; payload: Buffer; start: number; end: number }>;
}

function writeSegment(base: number, sizes: readonly number[]): Written {
  const bytes = Buffer.alloc(SEGMENT_HEADER.length + sizes.reduce((sum, n) => sum + recordBytes(n), 0));
  SEGMENT_HEADER.copy(bytes, 0);
  const records: Written['records'] = [];
  let at = SEGMENT_HEADER.length;
  sizes.forEach((n, i) => {
    const seq = base + i;
    const payload = Buffer.alloc(n);
    for (let b = 0; b < n; b++) payload[b] = (seq * 131 + b * 7) & 0xff;
    const end = encodeRecord(bytes, at, seq, 1_700_000_000_000 + i, payload);
    records.push({ seq, payload, start: at, end });
    at = end;
  });
  return { bytes, records };
}

/**
 * Applies the damage; returns the damaged bytes and, per original byte, where it now is (-1 when
 * it was cut off), so a record counts as untouched when its bytes sit together and unchanged.
 */
function applyDamage(w: Written, damage: readonly Damage[]): { bytes: Buffer; untouched: Set<number> } {
  let bytes = Buffer.from(w.bytes);
  /** For each byte of `bytes`, the original offset it came from (-1: inserted). */
  let origin = Array.from({ length: bytes.length }, (_, i) => i);
  for (const d of damage) {
    if (bytes.length === 0) break;
    const at = d.at % (d.kind === 'insert' ? bytes.length + 1 : bytes.length);
    if (d.kind === 'flip') bytes[at] = bytes[at]! ^ (1 << d.bit);
    else if (d.kind === 'zero') bytes.fill(0, at, Math.min(bytes.length, at + d.length));
    else if (d.kind === 'truncate') {
      bytes = bytes.subarray(0, at);
      origin = origin.slice(0, at);
    } else {
      bytes = Buffer.concat([bytes.subarray(0, at), d.bytes, bytes.subarray(at)]);
      origin = [...origin.slice(0, at), ...new Array<number>(d.bytes.length).fill(-1), ...origin.slice(at)];
    }
  }
  const where = new Map<number, number>();
  origin.forEach((o, i) => o >= 0 && where.set(o, i));
  const untouched = new Set<number>();
  for (const r of w.records) {
    const first = where.get(r.start);
    if (first === undefined) continue;
    let intact = true;
    for (let o = r.start; o < r.end && intact; o++) intact = origin[first + o - r.start] === o && bytes[first + o - r.start] === w.bytes[o];
    if (intact) untouched.add(r.seq);
  }
  return { bytes, untouched };
}

/** A segment file held in memory. */
function memoryFile(bytes: Buffer): LogFile {
  return {
    read: (buffer, offset, length, position) => {
      const n = Math.max(0, Math.min(length, bytes.length - position));
      bytes.copy(buffer, offset, position, position + n);
      return Promise.resolve({ bytesRead: n });
    },
    write: () => Promise.reject(new Error('read only')),
    datasync: () => Promise.resolve(),
    truncate: () => Promise.reject(new Error('read only')),
    stat: () => Promise.resolve({ size: bytes.length, mtimeMs: 0 }),
    close: () => Promise.resolve(),
  };
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('durable log reader under random damage', () => {
  test('the scan and a read of every indexed record: never throws, only intact records, every untouched one, lost = seq gap', async () => {
    await fc.assert(
      fc.asyncProperty(logArb, async ({ base, sizes, damage, last }) => {
        const written = writeSegment(base, sizes);
        const { bytes, untouched } = applyDamage(written, damage);
        const seg = new Segment(base, 'fuzz.log');
        const scan = await scanSegment(memoryFile(bytes), seg, { verify: last, last, chunkBytes: 97 });
        // Read every indexed record as SegmentLog.read does: skip those known corrupt, check the rest.
        const returned = new Map<number, Uint8Array>();
        let corruptOnRead = 0;
        let corruptBytesOnRead = 0;
        let returnedBytes = 0;
        for (let k = 0; k < seg.count; k++) {
          if (seg.isCorrupt(k)) continue;
          const d = decodeRecord(bytes.subarray(0, seg.end), seg.offset(k));
          if (d.kind === 'ok' && d.record.seq === base + k) {
            returned.set(d.record.seq, d.record.payload);
            returnedBytes += d.size;
          } else {
            corruptOnRead++;
            corruptBytesOnRead += d.kind === 'bad-crc' ? d.size : seg.endOf(k) - seg.offset(k);
          }
        }
        for (const [seq, payload] of returned) {
          const original = written.records[seq - base]!.payload;
          assert.equal(crc32(payload), crc32(original), `seq ${seq}: payload checksum`);
          assert.deepEqual(Buffer.from(payload), original, `seq ${seq}: the bytes written`);
        }
        for (const seq of untouched) assert.ok(returned.has(seq), `untouched record ${seq} is returned`);
        // Untouched records are all indexed; the seqs indexed but not returned are exactly the
        // ones counted lost. (A touched record may still be returned when the damage happened to
        // leave its bytes as they were, e.g. a byte inserted equal to the one beside it; the
        // payload check above holds for it all the same.)
        const indexedEnd = base + seg.count;
        for (const seq of untouched) assert.ok(seq < indexedEnd, `untouched ${seq} is indexed`);
        assert.equal(scan.gapEvents + scan.corruptRecords + corruptOnRead, seg.count - returned.size, 'lost = seq gap');
        // Every byte is accounted for: segment header, records read, lost, torn.
        const headerIntact = bytes.length >= SEGMENT_HEADER.length && bytes.subarray(0, 16).equals(SEGMENT_HEADER);
        if (seg.version === 2)
          assert.equal(
            (headerIntact ? SEGMENT_HEADER.length : 0) + returnedBytes + scan.lostBytes + corruptBytesOnRead + scan.tornTailBytes,
            bytes.length,
            'bytes',
          );
      }),
      { numRuns: fuzzRuns() },
    );
  });

  test('SegmentLog over damaged segment files: opens, reads every untouched record, and counts the lost ones by seq', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 3, maxLength: 30 }),
        fc.integer({ min: 1, max: 3 }),
        fc.nat(),
        fc.array(damageArb, { minLength: 1, maxLength: 3 }),
        async (sizes, segments, which, damage) => {
          const dir = mkdtempSync(join(tmpdir(), 'polku-fuzz-log-'));
          dirs.push(dir);
          const per = Math.ceil(sizes.length / segments);
          const untouched = new Set<number>();
          const payloads = new Map<number, Buffer>();
          const damaged = which % Math.ceil(sizes.length / per);
          for (let s = 0, first = 1; first <= sizes.length; s++, first += per) {
            const w = writeSegment(first, sizes.slice(first - 1, first - 1 + per));
            for (const r of w.records) payloads.set(r.seq, r.payload);
            const out = s === damaged ? applyDamage(w, damage) : { bytes: w.bytes, untouched: new Set(w.records.map((r) => r.seq)) };
            for (const seq of out.untouched) untouched.add(seq);
            writeFileSync(join(dir, `${String(first).padStart(20, '0')}.log`), out.bytes);
          }
          const { log, recovery } = await SegmentLog.open({ dir, fsync: false });
          const returned = new Set<number>();
          for (let seq = log.firstSeq; ;) {
            const got = await log.read(seq, 7);
            if (got.length === 0) break;
            for (const r of got) {
              assert.deepEqual(Buffer.from(r.payload), payloads.get(r.seq), `seq ${r.seq}`);
              returned.add(r.seq);
            }
            seq = got[got.length - 1]!.seq + 1;
          }
          for (const seq of untouched) assert.ok(returned.has(seq), `untouched record ${seq} is read`);
          // Bytes cut from the end of the last segment leave no seq after them to count by.
          const lastCut = damaged === Math.ceil(sizes.length / per) - 1 && damage.some((d) => d.kind === 'truncate');
          if (!lastCut && recovery.unknownTailBytes === 0 && recovery.tornTailBytes === 0)
            assert.equal(recovery.lostEvents + log.corruptRecordsRead, sizes.length - returned.size, recovery.corruptSegments.join('\n'));
          assert.ok(log.nextSeq > Math.max(0, ...returned), 'seqs are not reused');
          await log.close();
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: fuzzRuns(200) },
    );
  });
});
