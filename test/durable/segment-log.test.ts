import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { after, describe, test } from 'node:test';
import { SegmentLog, StorageError } from '../../src/buffer/durable/segment-log.js';
import { faultyFileSystem } from '../fixtures/durable-faulty-fs.js';
import { numbered, readAll, segmentFiles, tempDirs, text } from '../fixtures/durable-log-helpers.js';
import { FakeClock, flushPromises } from '../../src/testing/index.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !condition(); i++) await flushPromises();
  assert.ok(condition(), 'condition never became true');
}

describe('SegmentLog', () => {
  test('round trip: records come back in seq order with their payloads and append times', async () => {
    const clock = new FakeClock();
    const dir = dirs.make();
    const { log, recovery } = await SegmentLog.open({ dir, clock });
    assert.deepEqual([recovery.segments, recovery.records, recovery.firstSeq, recovery.nextSeq], [1, 0, 1, 1]);
    assert.equal(await log.append([numbered(1), numbered(2), new Uint8Array(0)]), 1);
    clock.advance(5);
    assert.equal(await log.append([numbered(4)]), 4);
    const records = await log.read(1, 10);
    assert.deepEqual(
      records.map((r) => [r.seq, text(r.payload), r.appendedAtMs]),
      [
        [1, 'p1', clock.nowMs() - 5],
        [2, 'p2', clock.nowMs() - 5],
        [3, '', clock.nowMs() - 5],
        [4, 'p4', clock.nowMs()],
      ],
    );
    assert.deepEqual(
      (await log.read(3, 1)).map((r) => r.seq),
      [3],
    );
    assert.deepEqual(await log.read(5, 10), []);
    assert.equal(log.bytes, statSync(segmentFiles(dir)[0]!).size);
    await log.close();
  });

  test('seqs are consecutive and never reused across reopen and after deleteBefore', async () => {
    const dir = dirs.make();
    let { log } = await SegmentLog.open({ dir, segmentBytes: 200, fsync: false });
    const firsts = [];
    for (let i = 0; i < 10; i++) firsts.push(await log.append([numbered(i, 40), numbered(i, 40)]));
    assert.deepEqual(firsts, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
    await log.close();

    ({ log } = await SegmentLog.open({ dir, segmentBytes: 200, fsync: false }));
    assert.equal(log.nextSeq, 21);
    assert.equal(await log.append([numbered(21)]), 21);
    const deleted = await log.deleteBefore(log.nextSeq);
    assert.ok(deleted > 0 && deleted < 21, `deleted ${deleted}`);
    assert.equal(await log.append([numbered(22)]), 22);
    await log.close();

    ({ log } = await SegmentLog.open({ dir, segmentBytes: 200, fsync: false }));
    assert.equal(log.nextSeq, 23, 'the active segment keeps the seq count after older ones are gone');
    assert.equal(await log.append([numbered(23)]), 23);
    const seqs = (await readAll(log)).map((r) => r.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => 24 - seqs.length + i),
    );
    await log.close();
  });

  test('group commit: appends made in one tick share one write and one fdatasync; later ones form the next group', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fileSystem = faultyFileSystem({ beforeWrite: () => gate });
    const { writes } = fileSystem;
    const { log } = await SegmentLog.open({ dir: dirs.make(), fileSystem });
    const first = Array.from({ length: 50 }, (_, i) => log.append([numbered(i), numbered(i)]));
    await until(() => writes.length === 1);
    const second = Array.from({ length: 30 }, (_, i) => log.append([numbered(100 + i)]));
    release();
    assert.deepEqual(
      await Promise.all(first),
      Array.from({ length: 50 }, (_, i) => 1 + 2 * i),
    );
    assert.deepEqual(
      await Promise.all(second),
      Array.from({ length: 30 }, (_, i) => 101 + i),
    );
    assert.equal(log.flushCount, 2);
    assert.equal(writes.length, 2, 'one write per group');
    assert.equal(fileSystem.syncs, 2, 'one fdatasync per group');
    const size = (n: number): number => 32 + numbered(n).length;
    let firstBytes = 16; // the segment header goes out with the first group
    for (let i = 0; i < 50; i++) firstBytes += 2 * size(i);
    let secondBytes = 0;
    for (let i = 0; i < 30; i++) secondBytes += size(100 + i);
    assert.deepEqual(writes, [firstBytes, secondBytes]);
    await log.close();
  });

  test('segments roll past segmentBytes and reads run across them', async () => {
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, segmentBytes: 1000, fsync: false });
    for (let i = 1; i <= 40; i++) await log.append([numbered(i, 100)]);
    const files = segmentFiles(dir);
    assert.ok(files.length >= 5, `${files.length} segments`);
    for (const f of files.slice(0, -1)) assert.ok(statSync(f).size <= 1000, `${f} is ${statSync(f).size} bytes`);
    // Each file is named after its first seq.
    const records = await log.read(1, 100);
    const bases = files.map((f) => Number(basename(f, '.log')));
    assert.equal(bases[0], 1);
    for (const b of bases) assert.equal(text(records[b - 1]!.payload), `p${b}`);
    assert.deepEqual(
      records.map((r) => text(r.payload)),
      Array.from({ length: 40 }, (_, i) => `p${i + 1}`),
    );
    const across = await log.read(bases[1]! - 2, 5);
    assert.deepEqual(
      across.map((r) => r.seq),
      [0, 1, 2, 3, 4].map((k) => bases[1]! - 2 + k),
    );
    assert.equal(
      log.bytes,
      files.reduce((sum, f) => sum + statSync(f).size, 0),
    );
    await log.close();
  });

  test('deleteBefore deletes only whole segments below the seq and keeps the active one', async () => {
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, segmentBytes: 500, fsync: false });
    for (let i = 1; i <= 30; i++) await log.append([numbered(i, 100)]);
    const bases = segmentFiles(dir).map((f) => Number(basename(f, '.log')));
    const before = log.bytes;
    assert.equal(await log.deleteBefore(bases[2]! - 1), bases[1]! - 1, 'the segment holding seq bases[2]-1 stays');
    assert.equal(log.firstSeq, bases[1]);
    assert.ok(log.bytes < before);
    assert.deepEqual(
      (await log.read(1, 2)).map((r) => r.seq),
      [bases[1], bases[1]! + 1],
    );
    assert.equal(await log.deleteBefore(Number.MAX_SAFE_INTEGER), bases[bases.length - 1]! - bases[1]!);
    assert.deepEqual(
      segmentFiles(dir).map((f) => Number(basename(f, '.log'))),
      [bases[bases.length - 1]],
      'the active segment is never deleted',
    );
    assert.equal(log.firstSeq, bases[bases.length - 1]);
    assert.equal(log.nextSeq, 31);
    assert.equal((await readAll(log)).length, 31 - log.firstSeq);
    await log.close();
  });

  test('enforceRetention by bytes deletes the oldest segments until the log fits', async () => {
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, segmentBytes: 1000, fsync: false });
    for (let i = 1; i <= 50; i++) await log.append([numbered(i, 200)]);
    const sizes = segmentFiles(dir).map((f) => statSync(f).size);
    const maxBytes = 2500;
    let expectedLeft = sizes.length;
    for (let total = log.bytes; total > maxBytes && expectedLeft > 1; expectedLeft--) total -= sizes[sizes.length - expectedLeft]!;
    const { firstSeq, deletedRecords } = await log.enforceRetention({ maxBytes });
    assert.ok(log.bytes <= maxBytes);
    assert.equal(segmentFiles(dir).length, expectedLeft);
    assert.equal(firstSeq, log.firstSeq);
    assert.equal(deletedRecords, firstSeq - 1);
    assert.equal((await log.enforceRetention({ maxBytes: 0 })).firstSeq, Number(basename(segmentFiles(dir)[0]!, '.log')));
    assert.equal(segmentFiles(dir).length, 1, 'even over the limit, the active segment stays');
    await log.close();
  });

  test('enforceRetention by age deletes segments whose newest record is older than maxAgeMs, also after reopen', async () => {
    const dir = dirs.make();
    const clock = new FakeClock();
    let { log } = await SegmentLog.open({ dir, segmentBytes: 340, fsync: false, clock });
    // Segment k (k = 0..4) gets two records at minute k.
    for (let k = 0; k < 5; k++) {
      await log.append([numbered(2 * k + 1, 120)]);
      await log.append([numbered(2 * k + 2, 120)]);
      clock.advance(60_000);
    }
    assert.equal(segmentFiles(dir).length, 5);
    await log.close();
    ({ log } = await SegmentLog.open({ dir, segmentBytes: 340, fsync: false, clock }));
    // Now is minute 5: segments from minutes 0 and 1 are older than 3.5 minutes.
    assert.deepEqual(await log.enforceRetention({ maxAgeMs: 210_000 }), { firstSeq: 5, deletedRecords: 4 });
    assert.deepEqual(await log.enforceRetention({ maxAgeMs: 210_000 }), { firstSeq: 5, deletedRecords: 0 });
    clock.advance(3_600_000);
    assert.deepEqual(await log.enforceRetention({ maxAgeMs: 60_000 }), { firstSeq: 9, deletedRecords: 4 }, 'all but the active segment');
    await log.close();
  });

  test('close waits for pending appends; afterwards append, read and deleteBefore reject STORAGE_CLOSED', async () => {
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir });
    const pending = log.append([numbered(1)]);
    await log.close();
    assert.equal(await pending, 1);
    await log.close();
    for (const op of [() => log.append([numbered(2)]), () => log.read(1, 1), () => log.deleteBefore(2)]) {
      await assert.rejects(op(), (err: unknown) => err instanceof StorageError && err.code === 'STORAGE_CLOSED');
    }
    const again = await SegmentLog.open({ dir });
    assert.deepEqual(
      (await again.log.read(1, 5)).map((r) => text(r.payload)),
      ['p1'],
    );
    await again.log.close();
  });

  test('a read racing deleteBefore returns exact records or none of the deleted segment, never an error', async () => {
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, segmentBytes: 2000, fsync: false });
    for (let i = 1; i <= 100; i++) await log.append([numbered(i, 100)]);
    for (let round = 0; round < 3; round++) {
      const reading = log.read(1, 100);
      const deleting = log.deleteBefore(60 + 10 * round);
      const [records] = await Promise.all([reading, deleting]);
      for (const r of records) assert.equal(text(r.payload), `p${r.seq}`);
      assert.ok(records.length > 0);
    }
    await log.close();
  });
});
