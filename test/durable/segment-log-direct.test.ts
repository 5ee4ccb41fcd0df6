import assert from 'node:assert/strict';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { EventRecords, encodeEventRecords, type EventRecordInput } from '../../src/buffer/durable/event-record.js';
import { fsOpenDurable } from '../../src/buffer/durable/segment-files.js';
import { SegmentLog, StorageError, type LogFile, type LogFileSystem, type RecordSource } from '../../src/buffer/durable/segment-log.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { FakeClock } from '../../src/testing/index.js';
import { numbered, segmentFiles, tempDirs, text } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

/** fsOpenDurable, counting datasyncs and keeping the fds it opened for writing. */
function watchedDurableFs(): LogFileSystem & { fds: number[]; syncs: number } {
  const fs = {
    fds: [] as number[],
    syncs: 0,
    async open(path: string, flags: 'r' | 'r+' | 'w+'): Promise<LogFile> {
      const file = await fsOpenDurable.open(path, flags);
      if (flags !== 'r') fs.fds.push((file as unknown as { fd: number }).fd);
      const datasync = file.datasync.bind(file);
      return Object.assign(file, {
        datasync: () => {
          fs.syncs++;
          return datasync();
        },
      });
    },
  };
  return fs;
}

const entries = (n: number): EventRecordInput[] =>
  Array.from({ length: n }, (_, i) => ({
    event: Event.fromPartial({ id: `id-${i}`, source: 'src', eventType: 't', metadata: { k: `v${i}` }, payload: new Uint8Array(i) }),
    targets: ['a', 'b'],
    key: i % 2 === 0 ? `key-${i}` : '',
  }));

describe('SegmentLog: durable writes and records written in place', () => {
  test('a syncing log opens the files it appends to with O_DSYNC: one write per group, no fdatasync after it', async () => {
    const fileSystem = watchedDurableFs();
    const { log } = await SegmentLog.open({ dir: dirs.make(), fileSystem, segmentBytes: 4096 });
    for (let i = 0; i < 6; i++) await log.append([numbered(i, 1000)]); // rolls into new segments on the way
    assert.ok(fileSystem.fds.length >= 2, `${fileSystem.fds.length} files opened for appending`);
    for (const fd of fileSystem.fds.slice(-1)) {
      const flags = Number.parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      assert.equal(flags & fsConstants.O_DSYNC, fsConstants.O_DSYNC, `fd ${fd} flags ${flags.toString(8)}`);
    }
    assert.equal(fileSystem.syncs, 0, 'the write itself was durable');
    assert.deepEqual(
      (await log.read(1, 10)).map((r) => text(r.payload).slice(0, 2)),
      ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'],
    );
    await log.close();
  });

  test('event records written in place are the same bytes as the same records appended as payloads', async () => {
    const batch = entries(7);
    const files: Buffer[] = [];
    for (const records of [new EventRecords(batch), encodeEventRecords(batch)]) {
      const dir = dirs.make();
      const { log } = await SegmentLog.open({ dir, clock: new FakeClock(), fsync: false });
      assert.equal(await log.append(records), 1);
      assert.equal(await log.append(new EventRecords(batch.slice(2, 4))), 8);
      await log.close();
      files.push(readFileSync(segmentFiles(dir)[0]!));
    }
    assert.ok(files[0]!.length > 7 * 32);
    assert.deepEqual(files[0], files[1]);
  });

  test('a source that writes other than it sized is refused and nothing of it reaches the disk', async () => {
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, fsync: false });
    assert.equal(await log.append([numbered(1)]), 1);
    const bytes = log.bytes;
    const short: RecordSource = { count: 2, payloadBytes: 20, largestPayload: 10, writePayload: (_i, _buf, at) => at + 5 };
    await assert.rejects(log.append(short), (err: unknown) => err instanceof StorageError && /encoded to .* sized as/.test(err.message));
    assert.equal(log.bytes, bytes);
    assert.equal(readFileSync(segmentFiles(dir)[0]!).length, bytes);
    assert.equal(await log.append([numbered(2)]), 2, 'its seqs were not used');
    await log.close();
  });
});
