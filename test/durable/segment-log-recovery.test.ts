import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SegmentLog, StorageError } from '../../src/buffer/durable/segment-log.js';
import { numbered, readAll, segmentFiles, tempDirs, text } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-log-recovery-');
after(() => dirs.cleanup());

/** 124 bytes on disk per record: 24 of header, 100 of payload. */
const RECORD = 124;

/** A closed log in a fresh dir holding records 1..count (payload `p<seq>`, 100 bytes each). */
async function logWith(count: number, segmentBytes = 1 << 20): Promise<string> {
  const dir = dirs.make();
  const { log } = await SegmentLog.open({ dir, segmentBytes, fsync: false });
  for (let i = 1; i <= count; i++) await log.append([numbered(i, 100)]);
  await log.close();
  return dir;
}

function flipByte(file: string, offset: number): void {
  const bytes = readFileSync(file);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  writeFileSync(file, bytes);
}

async function reopen(dir: string, segmentBytes = 1 << 20) {
  return SegmentLog.open({ dir, segmentBytes, fsync: false });
}

const seqsOf = async (log: SegmentLog): Promise<number[]> => (await readAll(log)).map((r) => r.seq);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('SegmentLog recovery', () => {
  test('a torn tail (the last record cut mid-way) is cut off and reported; records before it stay; appends continue at its seq', async () => {
    const dir = await logWith(10);
    const [file] = segmentFiles(dir);
    truncateSync(file!, 10 * RECORD - 50);
    const { log, recovery } = await reopen(dir);
    assert.equal(recovery.tornTailBytes, RECORD - 50);
    assert.deepEqual([recovery.records, recovery.nextSeq, recovery.corruptRecords, recovery.corruptSegments], [9, 10, 0, []]);
    assert.equal(statSync(file!).size, 9 * RECORD, 'the partial record is gone from the file');
    const records = await readAll(log);
    assert.deepEqual(
      records.map((r) => text(r.payload)),
      range(1, 9).map((i) => `p${i}`),
    );
    assert.equal(await log.append([numbered(10, 100)]), 10);
    await log.close();
    const again = await reopen(dir);
    assert.equal(again.recovery.tornTailBytes, 0);
    assert.deepEqual(await seqsOf(again.log), range(1, 10));
    await again.log.close();
  });

  test('a tail shorter than a length word, or all zeros (blocks never written before a power loss), is a torn tail, not corruption', async () => {
    for (const tail of [Buffer.from([7, 0, 0]), Buffer.alloc(4096)]) {
      const dir = await logWith(5);
      appendFileSync(segmentFiles(dir)[0]!, tail);
      const { log, recovery } = await reopen(dir);
      assert.equal(recovery.tornTailBytes, tail.length);
      assert.deepEqual([recovery.corruptSegments, recovery.corruptRecords, recovery.nextSeq], [[], 0, 6]);
      assert.deepEqual(await seqsOf(log), range(1, 5));
      await log.close();
    }
  });

  test('a final record whose checksum fails is a torn last write: cut, and its seq is appended again', async () => {
    const dir = await logWith(6);
    flipByte(segmentFiles(dir)[0]!, 6 * RECORD - 3);
    const { log, recovery } = await reopen(dir);
    assert.deepEqual([recovery.tornTailBytes, recovery.corruptRecords, recovery.nextSeq], [RECORD, 0, 6]);
    assert.deepEqual(await seqsOf(log), range(1, 5));
    assert.equal(await log.append([numbered(6, 100)]), 6);
    await log.close();
  });

  test('a corrupt byte in a middle record of the last segment: that record is skipped and counted at open, the rest readable', async () => {
    const dir = await logWith(10);
    flipByte(segmentFiles(dir)[0]!, 4 * RECORD + 40); // inside record 5's payload
    const { log, recovery } = await reopen(dir);
    assert.deepEqual(
      [recovery.corruptRecords, recovery.records, recovery.tornTailBytes, recovery.corruptSegments, recovery.nextSeq],
      [1, 9, 0, [], 11],
    );
    const records = await readAll(log);
    assert.deepEqual(
      records.map((r) => r.seq),
      [1, 2, 3, 4, 6, 7, 8, 9, 10],
    );
    for (const r of records) assert.equal(text(r.payload), `p${r.seq}`);
    assert.equal(log.corruptRecordsRead, 0, 'known at open, not counted again on read');
    await log.close();
  });

  test('a corrupt byte in a sealed segment is found on read: skipped, counted once, the rest readable', async () => {
    const dir = await logWith(20, 5 * RECORD);
    const [first] = segmentFiles(dir);
    flipByte(first!, 2 * RECORD + 30); // record 3, in the first (sealed) segment
    const { log, recovery } = await reopen(dir, 5 * RECORD);
    assert.equal(recovery.corruptRecords, 0, 'sealed segments are framed, not checksummed, at open');
    assert.deepEqual(await seqsOf(log), [1, 2, ...range(4, 20)]);
    assert.equal(log.corruptRecordsRead, 1);
    assert.deepEqual(
      (await log.read(3, 2)).map((r) => r.seq),
      [4, 5],
    );
    assert.equal(log.corruptRecordsRead, 1, 'counted once');
    await log.close();
  });

  test('a garbage length in the middle of the last segment: cut there, reported, records before intact, seqs not reused', async () => {
    const dir = await logWith(10);
    const [file] = segmentFiles(dir);
    const bytes = readFileSync(file!);
    bytes.writeUInt32LE(0xfffffff0, 6 * RECORD); // record 7's length word
    writeFileSync(file!, bytes);
    const { log, recovery } = await reopen(dir);
    assert.equal(recovery.corruptSegments.length, 1);
    assert.match(
      recovery.corruptSegments[0]!,
      new RegExp(`^${basename(file!)}: implausible record length 4294967280 at offset ${6 * RECORD}`),
    );
    assert.equal(recovery.tornTailBytes, 0);
    assert.equal(statSync(file!).size, 6 * RECORD, 'truncated at the damage');
    assert.deepEqual(await seqsOf(log), range(1, 6));
    // Records 7..10 were acknowledged once and may have been delivered: their seqs are never handed out again.
    assert.ok(log.nextSeq > 10, `nextSeq ${log.nextSeq}`);
    const seq = await log.append([numbered(99, 100)]);
    assert.equal(seq, recovery.nextSeq);
    await log.close();
    const again = await reopen(dir);
    assert.deepEqual([again.recovery.corruptSegments, again.recovery.tornTailBytes, again.recovery.corruptRecords], [[], 0, 0]);
    assert.deepEqual(await seqsOf(again.log), [...range(1, 6), seq]);
    await again.log.close();
  });

  test('a sealed segment of random junk is reported, not a crash; the segments around it stay readable', async () => {
    const dir = await logWith(15, 5 * RECORD);
    const files = segmentFiles(dir);
    assert.equal(files.length, 3);
    writeFileSync(files[1]!, junk(5 * RECORD, 42));
    const { log, recovery } = await reopen(dir, 5 * RECORD);
    assert.equal(recovery.corruptSegments.length, 1);
    assert.match(recovery.corruptSegments[0]!, /^00000000000000000006\.log: /);
    const records = await readAll(log);
    assert.deepEqual(
      records.map((r) => r.seq),
      [...range(1, 5), ...range(11, 15)],
    );
    for (const r of records) assert.equal(text(r.payload), `p${r.seq}`);
    assert.equal(await log.append([numbered(16, 100)]), 16);
    await log.close();
  });

  test('a log that is nothing but a junk segment opens, reports it, and takes appends at seqs beyond what the junk could hold', async () => {
    for (const seed of [1, 2, 3]) {
      const dir = dirs.make();
      writeFileSync(join(dir, '00000000000000000001.log'), junk(3000, seed));
      const { log, recovery } = await reopen(dir);
      assert.equal(recovery.corruptSegments.length, 1, `seed ${seed}`);
      assert.match(
        recovery.corruptSegments[0]!,
        /^00000000000000000001\.log: implausible record length \d+ at offset 0; 3000 bytes skipped$/,
      );
      assert.equal(recovery.nextSeq, 1 + Math.ceil(3000 / 24), 'at most one record per 24 bytes could have been there');
      assert.deepEqual(await readAll(log), []);
      assert.equal(await log.append([numbered(1, 10)]), recovery.nextSeq);
      assert.deepEqual(
        (await readAll(log)).map((r) => r.seq),
        [recovery.nextSeq],
      );
      await log.close();
    }
    // Junk that happens to start with a plausible length runs past the end of the file: a torn tail.
    const dir = dirs.make();
    const bytes = junk(1000, 9);
    bytes.writeUInt32LE(5000, 0);
    writeFileSync(join(dir, '00000000000000000001.log'), bytes);
    const { log, recovery } = await reopen(dir);
    assert.deepEqual([recovery.tornTailBytes, recovery.corruptSegments, recovery.nextSeq], [1000, [], 1]);
    assert.equal(await log.append([numbered(1, 10)]), 1);
    await log.close();
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
