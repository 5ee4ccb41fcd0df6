import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backoff, backoffDelay } from '../../src/resilience/backoff.js';

describe('backoffDelay', () => {
  test('doubles from the initial delay up to the cap', () => {
    const policy = { initialMs: 100, maxMs: 5_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelay(attempt, policy)),
      [100, 200, 400, 800, 1_600, 3_200, 5_000],
    );
  });

  test('grows by the factor given', () => {
    assert.deepEqual(
      [1, 2, 3].map((attempt) => backoffDelay(attempt, { initialMs: 10, maxMs: 1_000, factor: 3 })),
      [10, 30, 90],
    );
  });

  test('jitter multiplies the capped delay by 1 + jitter(), rounded', () => {
    const policy = (j: number) => ({ initialMs: 100, maxMs: 30_000, jitter: () => j });
    assert.equal(backoffDelay(1, policy(0)), 100);
    assert.equal(backoffDelay(3, policy(0.5)), 600);
    assert.equal(backoffDelay(20, policy(0.999)), Math.round(30_000 * 1.999), 'jitter applies after the cap');
  });

  test('a huge attempt count stays finite and at the cap', () => {
    assert.equal(backoffDelay(10_000, { initialMs: 1, maxMs: 60_000 }), 60_000);
    assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, { initialMs: 500, maxMs: 30_000 }), 30_000);
  });

  test('attempt 0 or less waits the initial delay', () => {
    assert.equal(backoffDelay(0, { initialMs: 100, maxMs: 5_000 }), 100);
  });
});

describe('Backoff', () => {
  test('each failure waits longer; a success starts over', () => {
    const backoff = new Backoff({ initialMs: 500, maxMs: 2_000 });
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [500, 1_000, 2_000, 2_000]);
    backoff.reset();
    assert.equal(backoff.next(), 500);
  });

  test('takes its jitter from the injected source', () => {
    const draws = [0, 0.25, 0.5];
    const backoff = new Backoff({ initialMs: 100, maxMs: 10_000, jitter: () => draws.shift()! });
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [100, 250, 600]);
  });
});
