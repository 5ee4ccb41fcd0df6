import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resultOfFailures, splitBatch } from '../../src/emit/batch-split.js';
import { EmitResults } from '../../src/emit/emitter.js';

const batch = ['a', 'b', 'c', 'd'] as const;

describe('splitBatch', () => {
  test('success delivers the whole batch, sharing the array', () => {
    const split = splitBatch(batch, EmitResults.success());
    assert.equal(split.delivered, batch);
    assert.deepEqual([split.retry, split.failed, split.failedErrors, split.error], [[], [], [], '']);
  });

  test('retryable sends the whole batch again, with the receiver’s wait', () => {
    const split = splitBatch(batch, EmitResults.retryable('busy', 250));
    assert.equal(split.retry, batch);
    assert.deepEqual(split.delivered, []);
    assert.equal(split.error, 'busy');
    assert.equal(split.retryAfterMs, 250);
  });

  test('failed fails every item for good, each with the error', () => {
    const split = splitBatch(batch, EmitResults.failed('bad request'));
    assert.equal(split.failed, batch);
    assert.deepEqual(split.failedErrors, ['bad request', 'bad request', 'bad request', 'bad request']);
    assert.equal(split.retryAfterMs, undefined);
  });

  test('partial splits per event, in batch order, and names the retryable error first', () => {
    const split = splitBatch(
      batch,
      EmitResults.partial(
        [
          { index: 3, retryable: false, error: 'invalid d' },
          { index: 1, retryable: true, error: 'b busy' },
          { index: 0, retryable: false, error: 'invalid a' },
        ],
        100,
      ),
    );
    assert.deepEqual(split.delivered, ['c']);
    assert.deepEqual(split.retry, ['b']);
    assert.deepEqual(split.failed, ['a', 'd']);
    assert.deepEqual(split.failedErrors, ['invalid a', 'invalid d']);
    assert.equal(split.error, 'b busy');
    assert.equal(split.retryAfterMs, 100);
  });

  test('partial with only permanent failures names the first one listed', () => {
    const split = splitBatch(batch, {
      status: 'partial',
      failures: [
        { index: 2, retryable: false, error: 'second' },
        { index: 1, retryable: false, error: 'listed second' },
      ],
    });
    assert.equal(split.error, 'second');
    assert.deepEqual(split.delivered, ['a', 'd']);
  });

  test('a failure naming an event outside the batch is ignored; of two for one event the later counts', () => {
    const split = splitBatch(batch, {
      status: 'partial',
      failures: [
        { index: 9, retryable: true, error: 'ghost' },
        { index: -1, retryable: false, error: 'ghost' },
        { index: 0, retryable: true, error: 'maybe' },
        { index: 0, retryable: false, error: 'no' },
      ],
    });
    assert.deepEqual(split.delivered, ['b', 'c', 'd']);
    assert.deepEqual(split.retry, []);
    assert.deepEqual(split.failed, ['a']);
    assert.deepEqual(split.failedErrors, ['no']);
  });
});

describe('resultOfFailures', () => {
  test('no failure is success', () => {
    assert.deepEqual(resultOfFailures(3, []), EmitResults.success());
  });

  test('all retryable is retryable, with the first error and the wait', () => {
    const failures = [0, 1].map((index) => ({ index, retryable: true, error: `e${index}` }));
    assert.deepEqual(resultOfFailures(2, failures, 50), EmitResults.retryable('e0', 50));
  });

  test('all permanent is failed, with the first error', () => {
    const failures = [0, 1].map((index) => ({ index, retryable: false, error: `e${index}` }));
    assert.deepEqual(resultOfFailures(2, failures), EmitResults.failed('e0'));
  });

  test('mixed, or some delivered, is partial', () => {
    const mixed = [
      { index: 0, retryable: true, error: 'busy' },
      { index: 1, retryable: false, error: 'bad' },
    ];
    assert.deepEqual(resultOfFailures(2, mixed), EmitResults.partial(mixed));
    assert.deepEqual(resultOfFailures(3, mixed.slice(0, 1), 10), EmitResults.partial(mixed.slice(0, 1), 10));
  });
});
