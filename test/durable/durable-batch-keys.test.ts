import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EventRecordInput } from '../../src/buffer/durable/event-record.js';
import { IdempotencyWindow } from '../../src/buffer/durable/idempotency-window.js';
import { DurableBatchKeys } from '../../src/delivery/durable-batch-keys.js';
import { Event } from '../../src/gen/polku/v1/event.js';

const entry = (id: string): EventRecordInput => ({ event: Event.fromPartial({ id }), targets: ['a'], key: id });

describe('the keys met in one batch (durable admission)', () => {
  test('a key met earlier in the batch is found with its entry, or null once acknowledged as a resend', () => {
    const keys = new DurableBatchKeys();
    const window = new IdempotencyWindow(60_000, 100, 7);
    keys.start(3);
    const a = entry('a');
    keys.set('a', window.hash('a'), a);
    keys.set('b', window.hash('b'), null);
    assert.equal(keys.get('a', window.hash('a')), a);
    assert.equal(keys.get('b', window.hash('b')), null);
    assert.equal(keys.get('c', window.hash('c')), undefined);
  });

  test('two keys with the same hash are told apart by the key itself', () => {
    const keys = new DurableBatchKeys();
    keys.start(4);
    const x = entry('x');
    const y = entry('y');
    keys.set('x', 12345, x);
    keys.set('y', 12345, y);
    assert.equal(keys.get('x', 12345), x);
    assert.equal(keys.get('y', 12345), y);
    assert.equal(keys.get('z', 12345), undefined);
  });

  test('the next batch starts empty, however many batches came before', () => {
    const keys = new DurableBatchKeys();
    const window = new IdempotencyWindow(60_000, 100, 7);
    for (let batch = 0; batch < 1000; batch++) {
      keys.start(100);
      for (let i = 0; i < 100; i++) {
        const k = `b${batch}-e${i}`;
        assert.equal(keys.get(k, window.hash(k)), undefined, `${k} not met yet`);
        keys.set(k, window.hash(k), entry(k));
      }
      // The previous batch's keys are gone.
      if (batch > 0) assert.equal(keys.get(`b${batch - 1}-e0`, window.hash(`b${batch - 1}-e0`)), undefined);
    }
    // A larger batch than any before grows the table and still finds every key.
    keys.start(5000);
    for (let i = 0; i < 5000; i++) keys.set(`k${i}`, window.hash(`k${i}`), entry(`k${i}`));
    for (let i = 0; i < 5000; i++) assert.equal(keys.get(`k${i}`, window.hash(`k${i}`))?.key, `k${i}`);
  });
});

describe('the idempotency window hashes a key once for lookup and add', () => {
  test('candidateOf(hash(k)) and addHash(hash(k)) behave as candidate(k) and add(k)', () => {
    const w1 = new IdempotencyWindow(60_000, 1000, 99);
    const w2 = new IdempotencyWindow(60_000, 1000, 99);
    for (let i = 0; i < 3000; i++) {
      const k = `key-${i}`;
      w1.add(k, i + 1, 1000 + i);
      w2.addHash(w2.hash(k), i + 1, 1000 + i);
    }
    for (let i = 0; i < 3000; i++) {
      const k = `key-${i}`;
      assert.equal(w2.candidateOf(w2.hash(k), 5000), w1.candidate(k, 5000), k);
    }
    assert.equal(w1.size, w2.size);
    assert.equal(w1.candidate('key-2999', 5000), 3000);
    assert.equal(w1.candidate('key-0', 5000), -1, 'evicted: at most 1000 keys');
  });
});
