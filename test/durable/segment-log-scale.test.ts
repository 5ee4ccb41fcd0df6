import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SegmentLog } from '../../src/buffer/durable/segment-log.js';
import { tempDirs } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-log-scale-');
after(() => dirs.cleanup());

const RECORDS = 1_000_000;
/** The restart budget: a gateway with a million undelivered events must be ready within it. */
const OPEN_BUDGET_MS = 5_000;

const payloadOf = (seq: number): Uint8Array => {
  const p = new Uint8Array(400);
  new DataView(p.buffer).setFloat64(0, seq * 3, true);
  p.fill(seq & 0xff, 8);
  return p;
};

describe('SegmentLog at scale', () => {
  test(`a log of ${RECORDS.toLocaleString('en-US')} records of ~400 B reopens within ${OPEN_BUDGET_MS} ms with every record indexed`, async (t) => {
    const dir = dirs.make();
    const { log } = await SegmentLog.open({ dir, fsync: false });
    const batch = 1000;
    for (let first = 1; first <= RECORDS; first += batch) {
      await log.append(Array.from({ length: batch }, (_, i) => payloadOf(first + i)));
    }
    await log.close();
    const started = performance.now();
    const { log: reopened, recovery } = await SegmentLog.open({ dir });
    const openMs = performance.now() - started;
    t.diagnostic(
      `open: ${openMs.toFixed(0)} ms for ${recovery.records} records in ${recovery.segments} segments (${(recovery.bytes / 2 ** 20).toFixed(0)} MiB)`,
    );
    assert.ok(openMs <= OPEN_BUDGET_MS, `open took ${openMs.toFixed(0)} ms`);
    assert.deepEqual(
      [recovery.records, recovery.firstSeq, recovery.nextSeq, recovery.corruptRecords, recovery.tornTailBytes],
      [RECORDS, 1, RECORDS + 1, 0, 0],
    );
    assert.ok(recovery.segments > 1);
    for (const seq of [1, 2, 167_000, 500_001, RECORDS]) {
      const [record] = await reopened.read(seq, 1);
      assert.equal(record?.seq, seq);
      assert.deepEqual(record.payload, payloadOf(seq));
    }
    await reopened.close();
  });
});
