import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdempotencyWindow } from '../../src/buffer/durable/idempotency-window.js';

test('a key is known for exactly the window after it was added', () => {
  const w = new IdempotencyWindow(1_000, 10);
  w.add('a', 5_000);
  assert.equal(w.has('a', 5_000), true);
  assert.equal(w.has('a', 5_999), true);
  assert.equal(w.has('a', 6_000), false, 'a window later it is no longer a resend');
  assert.equal(w.has('b', 5_000), false);
});

test('over maxKeys the oldest go first', () => {
  const w = new IdempotencyWindow(60_000, 3);
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) w.add(k, 1_000 + i);
  assert.equal(w.size, 3);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => w.has(k, 2_000)), [false, true, true, true]);
});

test('a key added again counts from its newer time and is not evicted by its older entry', () => {
  const w = new IdempotencyWindow(1_000, 2);
  w.add('a', 0);
  w.add('b', 10);
  w.add('a', 500); // 'a' again: its first entry is now stale
  w.add('c', 600); // one over: the oldest live key goes, which is 'b', not the refreshed 'a'
  assert.equal(w.has('a', 1_200), true, 'refreshed at 500, so known until 1500');
  assert.equal(w.has('b', 700), false);
  assert.equal(w.has('c', 700), true);
  w.expire(1_400);
  assert.equal(w.size, 2, 'nothing added at or before 400 is still live');
  w.expire(1_500);
  assert.equal(w.has('a', 1_499), false);
  assert.equal(w.size, 1);
});

test('expiry follows a clock that jumps backwards without forgetting live keys', () => {
  const w = new IdempotencyWindow(1_000, 10);
  w.add('a', 10_000);
  w.expire(9_000); // the clock went back: nothing is older than the window
  assert.equal(w.has('a', 10_500), true);
});

test('a full window of a million keys evicts exactly its oldest key per add', () => {
  const w = new IdempotencyWindow(10_000_000, 1_000_000);
  for (let i = 0; i < 1_000_000; i++) w.add(`k${i}`, i);
  // Each of these evicts one key (the Map-only version scanned for it: minutes for this loop).
  for (let i = 0; i < 200_000; i++) w.add(`n${i}`, 1_000_000 + i);
  assert.equal(w.size, 1_000_000);
  assert.equal(w.has('k199999', 1_200_000), false);
  assert.equal(w.has('k200000', 1_200_000), true);
  assert.equal(w.has('n199999', 1_200_000), true);
});
