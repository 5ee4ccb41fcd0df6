import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeV1Record } from '../../src/buffer/durable/record-codec-v1.js';
import { SegmentLog, StorageError } from '../../src/buffer/durable/segment-log.js';
import { numbered, readAll, segmentFiles, tempDirs, text } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-log-recovery-');
after(() => dirs.cleanup());

/** 132 bytes on disk per record: 32 of header, 100 of payload. */
const RECORD = 132;
/** The segment header before the first record. */
const HEAD = 16;
/** File offset of record `seq` in the first segment. */
const at = (seq: number): number => HEAD + (seq - 1) * RECORD;

/** A closed log in a fresh dir holding records 1..count (payload `p<seq>`, 100 bytes each). */
async function logWith(count: number, segmentBytes = 1 << 20): Promise<string> {
  const dir = dirs.make();
  const { log } = await SegmentLog.open({ dir, segmentBytes, fsync: false });
  for (let i = 1; i <= count; i++) await log.append([numbered(i, 100)]);
  await log.close();
  return dir;
}

function damage(file: string, fn: (bytes: Buffer) => void): void {
  const bytes = readFileSync(file);
  fn(bytes);
  writeFileSync(file, bytes);
}

function flipByte(file: string, offset: number): void {
  damage(file, (b) => (b[offset] = b[offset]! ^ 0x5a));
}

async function reopen(dir: string, segmentBytes = 1 << 20) {
  return SegmentLog.open({ dir, segmentBytes, fsync: false });
}

const seqsOf = async (log: SegmentLog): Promise<number[]> => (await readAll(log)).map((r) => r.seq);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const without = (from: number, to: number, ...lost: number[]): number[] => range(from, to).filter((s) => !lost.includes(s));

/** Opens the damaged log and checks, exactly: what is read back (every payload intact), and the counts. */
async function expectRecovered(
  dir: string,
  want: { seqs: number[]; lostEvents: number; lostBytes: number; regions: number; nextSeq: number },
  segmentBytes?: number,
) {
  const { log, recovery } = await reopen(dir, segmentBytes);
  const records = await readAll(log);
  assert.deepEqual(
    records.map((r) => r.seq),
    want.seqs,
  );
  for (const r of records) assert.equal(text(r.payload), `p${r.seq}`);
  assert.deepEqual(
    [recovery.lostEvents + log.corruptRecordsRead, recovery.lostBytes + log.corruptBytesRead, recovery.skippedRegions, recovery.nextSeq],
    [want.lostEvents, want.lostBytes, want.regions, want.nextSeq],
    recovery.corruptSegments.join('\n'),
  );
  return { log, recovery };
}

describe('SegmentLog recovery', () => {
  test('a torn tail (the last record cut mid-way) is cut off and reported; records before it stay; appends continue at its seq', async () => {
    const dir = await logWith(10);
    const [file] = segmentFiles(dir);
    truncateSync(file!, at(11) - 50);
    const { log, recovery } = await reopen(dir);
    assert.equal(recovery.tornTailBytes, RECORD - 50);
    assert.deepEqual([recovery.records, recovery.nextSeq, recovery.corruptRecords, recovery.corruptSegments], [9, 10, 0, []]);
    assert.deepEqual([recovery.lostEvents, recovery.lostBytes], [0, 0], 'a torn write was never acknowledged: nothing lost');
    assert.equal(statSync(file!).size, at(10), 'the partial record is gone from the file');
    assert.deepEqual(
      (await readAll(log)).map((r) => text(r.payload)),
      range(1, 9).map((i) => `p${i}`),
    );
    assert.equal(await log.append([numbered(10, 100)]), 10);
    await log.close();
    const again = await reopen(dir);
    assert.equal(again.recovery.tornTailBytes, 0);
    assert.deepEqual(await seqsOf(again.log), range(1, 10));
    await again.log.close();
  });

  test('a tail shorter than a header, all zeros (blocks never written before a power loss), or a partial header then zeros is a torn tail', async () => {
    const partial = Buffer.alloc(4096);
    partial.set([0x50, 0x4b, 0x52, 0xd1, 100, 0], 0);
    for (const tail of [Buffer.from([7, 0, 0]), Buffer.alloc(4096), partial]) {
      const dir = await logWith(5);
      appendFileSync(segmentFiles(dir)[0]!, tail);
      const { log, recovery } = await reopen(dir);
      assert.equal(recovery.tornTailBytes, tail.length);
      assert.deepEqual([recovery.corruptSegments, recovery.lostEvents, recovery.nextSeq], [[], 0, 6]);
      assert.deepEqual(await seqsOf(log), range(1, 5));
      await log.close();
    }
  });

  test('a final record whose payload checksum fails is a torn last write: cut, and its seq is appended again', async () => {
    const dir = await logWith(6);
    flipByte(segmentFiles(dir)[0]!, at(7) - 3);
    const { log, recovery } = await reopen(dir);
    assert.deepEqual([recovery.tornTailBytes, recovery.corruptRecords, recovery.lostEvents, recovery.nextSeq], [RECORD, 0, 0, 6]);
    assert.deepEqual(await seqsOf(log), range(1, 5));
    assert.equal(await log.append([numbered(6, 100)]), 6);
    await log.close();
  });

  test('a flipped byte in a LENGTH word: that one record is lost, every record after it is read (last and sealed segments)', async () => {
    // The finding that motivated markers: with lengths as the only framing, this lost the rest of the segment.
    const dir = await logWith(10);
    flipByte(segmentFiles(dir)[0]!, at(7) + 4 + 2);
    const { log, recovery } = await expectRecovered(dir, {
      seqs: without(1, 10, 7),
      lostEvents: 1,
      lostBytes: RECORD,
      regions: 1,
      nextSeq: 11,
    });
    assert.match(
      recovery.corruptSegments[0]!,
      /^00000000000000000001\.log: 132 bytes at offset 808 do not frame; resynced at offset 940, 1 records lost \(seqs 7\.\.7\)$/,
    );
    assert.equal(await log.append([numbered(11, 100)]), 11, 'no seq burned: the gap is known exactly');
    await log.close();

    const sealed = await logWith(30, 10 * RECORD + HEAD);
    assert.equal(segmentFiles(sealed).length, 3);
    flipByte(segmentFiles(sealed)[0]!, at(3) + 5);
    await (
      await expectRecovered(
        sealed,
        { seqs: without(1, 30, 3), lostEvents: 1, lostBytes: RECORD, regions: 1, nextSeq: 31 },
        10 * RECORD + HEAD,
      )
    ).log.close();
  });

  test('a flipped byte in a header (marker, seq, time, payload checksum, header checksum): one record lost, the rest read', async () => {
    for (const offset of [0, 9, 17, 25, 30]) {
      const dir = await logWith(8);
      flipByte(segmentFiles(dir)[0]!, at(4) + offset);
      await (
        await expectRecovered(dir, { seqs: without(1, 8, 4), lostEvents: 1, lostBytes: RECORD, regions: 0 + 1, nextSeq: 9 })
      ).log.close();
    }
  });

  test('a flipped byte in a payload: that record is skipped and counted (at open in the last segment, on read in a sealed one)', async () => {
    const dir = await logWith(10);
    flipByte(segmentFiles(dir)[0]!, at(5) + 40);
    const { log, recovery } = await expectRecovered(dir, {
      seqs: without(1, 10, 5),
      lostEvents: 1,
      lostBytes: RECORD,
      regions: 0,
      nextSeq: 11,
    });
    assert.deepEqual([recovery.corruptRecords, recovery.records, log.corruptRecordsRead], [1, 9, 0]);
    await log.close();

    const sealed = await logWith(20, 5 * RECORD + HEAD);
    flipByte(segmentFiles(sealed)[0]!, at(3) + 30 + 32);
    const opened = await expectRecovered(
      sealed,
      { seqs: without(1, 20, 3), lostEvents: 1, lostBytes: RECORD, regions: 0, nextSeq: 21 },
      5 * RECORD + HEAD,
    );
    assert.equal(opened.recovery.corruptRecords, 0, 'sealed segments have their headers checked at open, payloads when read');
    assert.equal(opened.log.corruptRecordsRead, 1);
    await readAll(opened.log);
    assert.equal(opened.log.corruptRecordsRead, 1, 'counted once');
    await opened.log.close();
  });

  test('a zeroed block in the middle: exactly the records it touches are lost, by the seq gap', async () => {
    const dir = await logWith(20);
    // 500 zero bytes from 10 bytes into record 3: records 3, 4, 5 and the header of 6.
    damage(segmentFiles(dir)[0]!, (b) => b.fill(0, at(3) + 10, at(3) + 510));
    const { log, recovery } = await expectRecovered(dir, {
      seqs: without(1, 20, 3, 4, 5, 6),
      lostEvents: 4,
      lostBytes: 4 * RECORD,
      regions: 1,
      nextSeq: 21,
    });
    assert.equal(recovery.corruptRecords, 0);
    await log.close();
  });

  test('two damaged regions in one segment: both skipped, both counted, everything between and after read', async () => {
    const dir = await logWith(20);
    damage(segmentFiles(dir)[0]!, (b) => {
      b[at(3) + 6] = b[at(3) + 6]! ^ 0xff; // record 3's length
      b.fill(0xee, at(11) + 20, at(13) + 3); // records 11 to 13's header
    });
    const { log, recovery } = await expectRecovered(dir, {
      seqs: without(1, 20, 3, 11, 12, 13),
      lostEvents: 4,
      lostBytes: 4 * RECORD,
      regions: 2,
      nextSeq: 21,
    });
    assert.equal(recovery.corruptSegments.length, 2);
    await log.close();
  });

  test("damage spanning from one record's payload into the next one's header: both lost, the rest read", async () => {
    const dir = await logWith(12);
    damage(segmentFiles(dir)[0]!, (b) => b.fill(0x11, at(5) + 90, at(6) + 12));
    const { log, recovery } = await expectRecovered(dir, {
      seqs: without(1, 12, 5, 6),
      lostEvents: 2,
      lostBytes: 2 * RECORD,
      regions: 1,
      nextSeq: 13,
    });
    assert.equal(recovery.corruptRecords, 1, 'record 5 frames (its header is intact) but its payload does not check');
    await log.close();
  });

  test('garbage inserted between records loses no record; its bytes are counted', async () => {
    const dir = await logWith(8);
    const [file] = segmentFiles(dir);
    const bytes = readFileSync(file!);
    writeFileSync(file!, Buffer.concat([bytes.subarray(0, at(4)), junk(77, 5), bytes.subarray(at(4))]));
    await (await expectRecovered(dir, { seqs: range(1, 8), lostEvents: 0, lostBytes: 77, regions: 1, nextSeq: 9 })).log.close();
  });

  test('a damaged segment is copied to <dir>/damaged before anything is cut, once, and within the bound', async () => {
    const dir = await logWith(10);
    const [file] = segmentFiles(dir);
    damage(file!, (b) => b.fill(0x33, at(9) + 3, at(11))); // records 9 and 10: unreadable end of the last segment
    const before = readFileSync(file!);
    const { log, recovery } = await reopen(dir);
    const copies = readdirSync(join(dir, 'damaged'));
    assert.equal(copies.length, 1);
    assert.match(copies[0]!, /^00000000000000000001\.log\.\d{8}T\d{6}-\d{3}Z$/);
    assert.deepEqual(readFileSync(join(dir, 'damaged', copies[0]!)), before, 'the copy is the file as found');
    assert.deepEqual([recovery.unknownTailBytes, recovery.lostBytes, recovery.lostEvents], [2 * RECORD, 2 * RECORD, 0]);
    assert.ok(recovery.nextSeq > 10, 'seqs the unreadable end could have held are never handed out again');
    assert.equal(statSync(file!).size, at(9), 'cut after the copy');
    await log.close();

    const bounded = await logWith(10);
    flipByte(segmentFiles(bounded)[0]!, at(2) + 4);
    const opened = await SegmentLog.open({ dir: bounded, fsync: false, damagedMaxBytes: 100 });
    assert.equal(existsSync(join(bounded, 'damaged')) ? readdirSync(join(bounded, 'damaged')).length : 0, 0);
    assert.match(opened.recovery.damagedCopies[0]!, /not kept, the copies in .* would pass 100 bytes/);
    await opened.log.close();
    for (const round of [1, 2]) {
      const again = await reopen(bounded);
      assert.equal(
        readdirSync(join(bounded, 'damaged')).length,
        1,
        `a damaged segment nothing was cut from is copied once (open ${round})`,
      );
      assert.match(again.recovery.damagedCopies[0]!, round === 1 ? /kept as / : /already kept as /);
      await again.log.close();
    }
  });

  test('a sealed segment of random junk is reported, not a crash; the segments around it stay readable; its lost count is the seq gap', async () => {
    const dir = await logWith(15, 5 * RECORD + HEAD);
    const files = segmentFiles(dir);
    assert.equal(files.length, 3);
    writeFileSync(files[1]!, junk(5 * RECORD + HEAD, 42));
    const { log, recovery } = await expectRecovered(
      dir,
      { seqs: [...range(1, 5), ...range(11, 15)], lostEvents: 5, lostBytes: 5 * RECORD + HEAD, regions: 1, nextSeq: 16 },
      5 * RECORD + HEAD,
    );
    assert.match(recovery.corruptSegments[0]!, /^00000000000000000006\.log: /);
    assert.equal(await log.append([numbered(16, 100)]), 16);
    await log.close();
  });

  test('a log that is nothing but a junk segment opens, reports it, and takes appends at seqs beyond what the junk could hold', async () => {
    for (const seed of [1, 2, 3]) {
      const dir = dirs.make();
      writeFileSync(join(dir, '00000000000000000001.log'), junk(3000, seed));
      const { log, recovery } = await reopen(dir);
      assert.equal(recovery.corruptSegments.length, 1, `seed ${seed}`);
      assert.equal(recovery.unknownTailBytes, 3000);
      assert.ok(recovery.nextSeq >= 1 + Math.ceil(3000 / 32), `nextSeq ${recovery.nextSeq}: beyond one record per 32 bytes`);
      assert.deepEqual(await readAll(log), []);
      assert.equal(await log.append([numbered(1, 10)]), recovery.nextSeq);
      assert.deepEqual(
        (await readAll(log)).map((r) => r.seq),
        [recovery.nextSeq],
      );
      await log.close();
    }
  });

  test('segments written by the previous format (version 1) are read; new records go to a new segment; damage in them is still reported', async () => {
    const dir = dirs.make();
    writeFileSync(join(dir, '00000000000000000001.log'), v1Segment(1, 5));
    writeFileSync(join(dir, '00000000000000000006.log'), v1Segment(6, 5));
    const { log, recovery } = await reopen(dir);
    assert.deepEqual([recovery.legacySegments, recovery.records, recovery.nextSeq, recovery.lostEvents], [2, 10, 11, 0]);
    assert.equal(await log.append([numbered(11, 100)]), 11);
    await log.close();
    assert.deepEqual(
      segmentFiles(dir).map((f) => basename(f)),
      ['00000000000000000001.log', '00000000000000000006.log', '00000000000000000011.log'],
      'the old segment is not appended to',
    );
    assert.equal(statSync(segmentFiles(dir)[1]!).size, 5 * (24 + 100), 'left as it was');
    const again = await reopen(dir);
    assert.deepEqual(await seqsOf(again.log), range(1, 11));
    for (const r of await readAll(again.log)) assert.equal(text(r.payload), `p${r.seq}`);
    await again.log.close();

    // A v1 segment whose first record is corrupt is still read as v1: one record lost.
    const firstBad = dirs.make();
    const bad = v1Segment(1, 4);
    bad[60] = bad[60]! ^ 0x40;
    writeFileSync(join(firstBad, '00000000000000000001.log'), bad);
    const read = await reopen(firstBad);
    assert.deepEqual([read.recovery.legacySegments, read.recovery.lostEvents], [1, 1]);
    assert.deepEqual(await seqsOf(read.log), [2, 3, 4]);
    await read.log.close();

    // A v1 payload flip: one record skipped and counted, as before.
    const damaged = dirs.make();
    const seg = v1Segment(1, 6);
    seg[2 * 124 + 60] = seg[2 * 124 + 60]! ^ 0x40;
    writeFileSync(join(damaged, '00000000000000000001.log'), seg);
    const opened = await reopen(damaged);
    assert.deepEqual([opened.recovery.lostEvents, opened.recovery.corruptRecords], [1, 1]);
    assert.deepEqual(await seqsOf(opened.log), without(1, 6, 3));
    await opened.log.close();
  });

  test('open throws StorageError STORAGE_IO only for I/O errors, such as a file where the directory should be', async () => {
    const parent = dirs.make();
    writeFileSync(join(parent, 'not-a-dir'), 'x');
    await assert.rejects(
      SegmentLog.open({ dir: join(parent, 'not-a-dir') }),
      (err: unknown) => err instanceof StorageError && err.code === 'STORAGE_IO',
    );
  });
});

/** A version-1 segment holding records first..first+count-1 (payload `p<seq>`, 100 bytes). */
function v1Segment(first: number, count: number): Buffer {
  const buf = Buffer.alloc(count * (24 + 100));
  let pos = 0;
  for (let i = 0; i < count; i++) pos = encodeV1Record(buf, pos, first + i, 1_700_000_000_000, numbered(first + i, 100));
  return buf;
}

/** Deterministic random bytes (xorshift32). */
function junk(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
