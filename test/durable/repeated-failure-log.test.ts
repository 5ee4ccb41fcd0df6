import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, RepeatedFailureLog } from '../../src/observability/logger.js';

function capture() {
  const lines: Array<{ level: number; msg: string; failedRuns: number; err?: { message: string } }> = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger('info', out) };
}

test('a task failing every second logs its first failure, then one line a minute with the count, then its recovery', () => {
  const { lines, logger } = capture();
  let now = 1_000;
  const log = new RepeatedFailureLog(logger, 'durable log maintenance', () => now);
  for (let run = 0; run < 130; run++, now += 1_000) log.failed(new Error('ENOSPC: no space left on device'));
  assert.deepEqual(
    lines.map((l) => [l.msg, l.failedRuns, l.err?.message]),
    [
      ['durable log maintenance failed', 1, 'ENOSPC: no space left on device'],
      ['durable log maintenance failed', 61, 'ENOSPC: no space left on device'],
      ['durable log maintenance failed', 121, 'ENOSPC: no space left on device'],
    ],
  );
  log.succeeded();
  log.succeeded();
  assert.deepEqual(
    lines.slice(3).map((l) => [l.msg, l.failedRuns]),
    [['durable log maintenance succeeds again', 130]],
  );
  log.failed(new Error('EIO'));
  assert.deepEqual(
    lines.slice(4).map((l) => [l.msg, l.failedRuns, l.err?.message]),
    [['durable log maintenance failed', 1, 'EIO']],
    'a new bout of failures is logged at once',
  );
});
