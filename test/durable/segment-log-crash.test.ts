import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { SegmentLog } from '../../src/buffer/durable/segment-log.js';
import { payloadFor, readAll, segmentFiles, tempDirs } from '../fixtures/durable-log-helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dirs = tempDirs('polku-log-kill-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  dirs.cleanup();
});

interface Ack {
  readonly run: number;
  readonly first: number;
  readonly last: number;
  readonly batch: number;
}

/**
 * Runs the writer on `dir` and SIGKILLs it as soon as `killAfter` acknowledgements have been
 * read. Acks already in the pipe when the kill lands are collected too: they were acknowledged.
 */
async function writeUntilKilled(dir: string, run: number, killAfter: number): Promise<{ readyNextSeq: number; acks: Ack[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/durable-writer.ts', dir, String(run)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const acks: Ack[] = [];
  let readyNextSeq = NaN;
  for await (const line of createInterface({ input: child.stdout! })) {
    const [word, a, b, c] = line.split(' ');
    if (word === 'READY') readyNextSeq = Number(a);
    if (word !== 'ACK') continue;
    acks.push({ run, first: Number(a), last: Number(b), batch: Number(c) });
    if (acks.length === killAfter) child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL', 'the writer ran until it was killed');
  children.delete(child);
  return { readyNextSeq, acks };
}

describe('SegmentLog under kill -9', () => {
  test('every acknowledged record survives SIGKILL with its exact payload, over three kill/reopen/continue cycles, and seqs never repeat', async (t) => {
    const dir = dirs.make();
    const acked: Ack[] = [];
    const ackedSeqs = new Set<number>();
    for (const [run, killAfter] of [
      [1, 5],
      [2, 50],
      [3, 500],
    ] as const) {
      const { readyNextSeq, acks } = await writeUntilKilled(dir, run, killAfter);
      assert.ok(acks.length >= killAfter, `run ${run}: ${acks.length} acks`);
      const highestBefore = Math.max(0, ...ackedSeqs);
      assert.ok(readyNextSeq > highestBefore, `run ${run} starts at ${readyNextSeq}, after every acked seq (${highestBefore})`);
      for (const ack of acks) {
        for (let seq = ack.first; seq <= ack.last; seq++) {
          assert.ok(!ackedSeqs.has(seq), `seq ${seq} acknowledged twice`);
          ackedSeqs.add(seq);
        }
      }
      acked.push(...acks);

      const { log, recovery } = await SegmentLog.open({ dir, segmentBytes: 64 * 1024 });
      assert.deepEqual([recovery.corruptRecords, recovery.corruptSegments], [0, []], 'a kill can only tear the tail');
      t.diagnostic(
        `run ${run}: killed after ${acks.length} acks; reopened ${recovery.records} records in ${recovery.segments} segments, torn tail ${recovery.tornTailBytes} B`,
      );
      const bySeq = new Map((await readAll(log)).map((r) => [r.seq, r.payload]));
      for (const ack of acked) {
        for (let i = 0; i <= ack.last - ack.first; i++) {
          const payload = bySeq.get(ack.first + i);
          assert.ok(payload, `run ${ack.run}: acknowledged seq ${ack.first + i} is missing`);
          assert.deepEqual(payload, payloadFor(ack.run, ack.batch, i), `seq ${ack.first + i} holds its payload`);
        }
      }
      assert.ok(log.nextSeq > Math.max(...ackedSeqs));
      assert.equal(log.corruptRecordsRead, 0);
      await log.close();
    }
    assert.ok(segmentFiles(dir).length > 1, 'the writers rolled segments on the way');
  });
});
