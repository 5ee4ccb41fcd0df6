import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SegmentLog, StorageError } from '../../src/buffer/durable/segment-log.js';
import { faultyFileSystem, type Faults } from '../fixtures/durable-faulty-fs.js';
import { numbered, readAll, segmentFiles, tempDirs, text, tmpfsMounts } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-log-full-');
const tmpfs = tmpfsMounts();
after(() => {
  tmpfs.unmountAll();
  dirs.cleanup();
});

const isStorage = (code: StorageError['code']) => (err: unknown) => err instanceof StorageError && err.code === code;

describe('SegmentLog on a full disk', () => {
  test('a real ENOSPC (1 MiB tmpfs): append rejects STORAGE_FULL, no partial record stays, earlier records survive reopen, appends resume once space frees', async () => {
    const mnt = tmpfs.mount('size=1m');
    const dir = join(mnt, 'log');
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(256 * 1024, 1));
    let { log } = await SegmentLog.open({ dir });
    let acked = 0;
    let failure: unknown;
    // Groups of 7 × 1,032 bytes (7,224 on disk) after the 16-byte segment header: not page-aligned,
    // so the last one is cut mid-record.
    while (failure === undefined && acked < 10_000) {
      const batch = Array.from({ length: 7 }, (_, i) => numbered(acked + i + 1, 1000));
      await log.append(batch).then(
        (first) => {
          assert.equal(first, acked + 1);
          acked += batch.length;
        },
        (err: unknown) => (failure = err),
      );
    }
    assert.ok(isStorage('STORAGE_FULL')(failure), `got ${String(failure)}`);
    assert.ok(acked > 0);
    const [file] = segmentFiles(dir);
    assert.equal(statSync(file!).size, 16 + acked * 1032, 'the file was cut back to the last whole record');
    assert.equal(log.bytes, 16 + acked * 1032);
    assert.equal(log.nextSeq, acked + 1, 'the failed append used no seqs');
    const again = Array.from({ length: 7 }, (_, i) => numbered(acked + i + 1, 1000));
    await assert.rejects(log.append(again), isStorage('STORAGE_FULL'), 'still full');
    await log.close();

    let recovery;
    ({ log, recovery } = await SegmentLog.open({ dir }));
    assert.deepEqual([recovery.records, recovery.tornTailBytes, recovery.corruptRecords, recovery.corruptSegments], [acked, 0, 0, []]);
    const records = await readAll(log);
    assert.deepEqual(
      records.map((r) => text(r.payload)),
      Array.from({ length: acked }, (_, i) => `p${i + 1}`),
    );

    rmSync(filler);
    assert.equal(await log.append([numbered(acked + 1, 1000), numbered(acked + 2, 1000)]), acked + 1);
    await log.close();
    ({ log, recovery } = await SegmentLog.open({ dir }));
    assert.deepEqual([recovery.records, recovery.tornTailBytes], [acked + 2, 0]);
    assert.equal(text((await log.read(acked + 2, 1))[0]!.payload), `p${acked + 2}`);
    await log.close();
  });

  for (const [code, expected] of [
    ['ENOSPC', 'STORAGE_FULL'],
    ['EDQUOT', 'STORAGE_FULL'],
    ['EIO', 'STORAGE_IO'],
  ] as const) {
    test(`a write failing with ${code} after a short write rejects ${expected} and is cut back; the next append reuses its seqs`, async () => {
      const faults: Faults = {};
      const dir = dirs.make();
      const { log } = await SegmentLog.open({ dir, fileSystem: faultyFileSystem(faults) });
      assert.equal(await log.append([numbered(1, 100), numbered(2, 100)]), 1);
      faults.write = { code, afterBytes: 150 };
      await assert.rejects(log.append([numbered(3, 100), numbered(4, 100)]), isStorage(expected));
      assert.equal(statSync(segmentFiles(dir)[0]!).size, 16 + 2 * 132);
      faults.write = undefined;
      assert.equal(await log.append([numbered(3, 100)]), 3);
      assert.deepEqual(
        (await readAll(log)).map((r) => text(r.payload)),
        ['p1', 'p2', 'p3'],
      );
      await log.close();
    });
  }

  test('a failing fdatasync rejects STORAGE_IO and the unsynced records are cut back', async () => {
    const faults: Faults = {};
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, fileSystem: faultyFileSystem(faults) });
    await log.append([numbered(1, 100)]);
    faults.datasync = 'EIO';
    await assert.rejects(log.append([numbered(2, 100)]), isStorage('STORAGE_IO'));
    faults.datasync = undefined;
    assert.equal(statSync(segmentFiles(dir)[0]!).size, 16 + 132);
    assert.equal(await log.append([numbered(2, 100)]), 2);
    await log.close();
  });

  test('when a failed write cannot even be cut back, its seqs are burned and appends continue in a new segment', async () => {
    const faults: Faults = {};
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, fileSystem: faultyFileSystem(faults) });
    await log.append([numbered(1, 100), numbered(2, 100)]);
    faults.write = { code: 'EIO', afterBytes: 150 };
    faults.truncate = 'EIO';
    await assert.rejects(log.append([numbered(3, 100), numbered(4, 100)]), isStorage('STORAGE_IO'));
    faults.write = faults.truncate = undefined;
    assert.equal(await log.append([numbered(5, 100)]), 5, 'seqs 3 and 4 may be on disk: they are never handed out again');
    assert.deepEqual(
      segmentFiles(dir).map((f) => f.slice(-24)),
      ['00000000000000000001.log', '00000000000000000005.log'],
    );
    assert.deepEqual(
      (await readAll(log)).map((r) => r.seq),
      [1, 2, 5],
    );
    await log.close();
    const again = await SegmentLog.open({ dir });
    // The short write stored record 3 whole and 18 bytes of record 4. Record 3 was refused, yet it
    // is a valid record: after a restart it is delivered (at least once; the sender retries it anyway).
    assert.deepEqual(again.recovery.corruptSegments, [
      '00000000000000000001.log: 18 bytes at offset 412 to the end of the file do not frame; no record found in them',
    ]);
    // Seq 4 is missing between the sealed segment and the next one (its record was never whole).
    assert.deepEqual([again.recovery.lostEvents, again.recovery.lostBytes], [1, 18]);
    assert.deepEqual(
      (await readAll(again.log)).map((r) => text(r.payload)),
      ['p1', 'p2', 'p3', 'p5'],
    );
    await again.log.close();
  });

  test('STORAGE_FULL also when the directory itself cannot take a new segment file', async () => {
    const mnt = tmpfs.mount('size=1m,nr_inodes=4');
    const dir = join(mnt, 'log');
    mkdirSync(dir);
    const { log } = await SegmentLog.open({ dir, segmentBytes: 300, fsync: false });
    let failure: unknown;
    for (let i = 1; i < 100 && failure === undefined; i++) await log.append([numbered(i, 200)]).catch((err: unknown) => (failure = err));
    assert.ok(isStorage('STORAGE_FULL')(failure), `got ${String(failure)}`);
    const count = log.nextSeq - 1;
    assert.equal(segmentFiles(dir).length, 2, 'the root, the log dir and two segments take the four inodes');
    assert.deepEqual(
      (await readAll(log)).map((r) => r.seq),
      Array.from({ length: count }, (_, i) => i + 1),
    );
    await log.deleteBefore(log.nextSeq);
    assert.equal(await log.append([numbered(count + 1, 200)]), count + 1, 'deleting old segments freed an inode');
    await log.close();
  });
});
