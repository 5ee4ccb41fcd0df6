import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkDurableDir, describeCheck } from '../../src/buffer/durable/check-log.js';
import { SegmentLog } from '../../src/buffer/durable/segment-log.js';
import { numbered, segmentFiles, tempDirs } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-check-log-');
after(() => dirs.cleanup());

/** 132 bytes per record (32 of header, 100 of payload), after the 16-byte segment header. */
const RECORD = 132;
const at = (k: number): number => 16 + k * RECORD;

describe('checkDurableDir (polku validate)', () => {
  test('reports events lost, bytes lost and stretches skipped, per segment, the same as recovery counts them', async () => {
    const dir = dirs.make();
    const events = join(dir, 'events');
    const { log } = await SegmentLog.open({ dir: events, segmentBytes: 16 + 10 * RECORD, fsync: false });
    for (let i = 1; i <= 30; i++) await log.append([numbered(i, 100)]);
    await log.close();
    const [first, second, third] = segmentFiles(events);
    // Segment 1 (seqs 1-10): seq 4's length word. Segment 2 (11-20): cut after seq 17, at a record
    // boundary. Segment 3 (21-30, the last): a zeroed span over seqs 23 and 24's header.
    const one = readFileSync(first!);
    one[at(3) + 4] = one[at(3) + 4]! ^ 0x80;
    writeFileSync(first!, one);
    truncateSync(second!, at(7));
    const three = readFileSync(third!);
    three.fill(0, at(2) + 8, at(3) + 20);
    writeFileSync(third!, three);

    const check = await checkDurableDir(dir);
    const ev = check.logs.find((l) => l.name === 'events')!;
    assert.equal(check.healthy, false);
    assert.deepEqual(
      [ev.segments, ev.records, ev.lostEvents, ev.lostBytes, ev.skippedRegions, ev.corruptRecords, ev.unknownTailBytes],
      [3, 24, 6, 3 * RECORD, 2, 0, 0],
    );
    assert.deepEqual(
      ev.damagedSegments.map((s) => [s.file, s.lostEvents, s.lostBytes, s.skippedRegions]),
      [
        ['events/00000000000000000001.log', 1, RECORD, 1],
        ['events/00000000000000000011.log', 3, 0, 0],
        ['events/00000000000000000021.log', 2, 2 * RECORD, 1],
      ],
    );
    const text = describeCheck(check);
    assert.match(text, /lost 6 events, 396 bytes, 2 damaged stretch\(es\) skipped/);
    assert.match(text, /segment events\/00000000000000000011\.log: lost 3 events, 0 bytes/);
    assert.match(text, /damage: events\/00000000000000000011\.log: ends 3 seq\(s\) before the next segment starts/);

    // Recovery finds the same counts, and every other record.
    const opened = await SegmentLog.open({ dir: events, segmentBytes: 16 + 10 * RECORD, fsync: false });
    assert.deepEqual([opened.recovery.lostEvents, opened.recovery.lostBytes, opened.recovery.skippedRegions], [6, 3 * RECORD, 2]);
    const seqs: number[] = [];
    for (let seq = 1; ;) {
      const got = await opened.log.read(seq, 100);
      if (got.length === 0) break;
      seqs.push(...got.map((r) => r.seq));
      seq = got[got.length - 1]!.seq + 1;
    }
    assert.deepEqual(
      seqs,
      Array.from({ length: 30 }, (_, i) => i + 1).filter((s) => ![4, 18, 19, 20, 23, 24].includes(s)),
    );
    await opened.log.close();
  });
});
