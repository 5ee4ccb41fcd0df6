import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdempotencyWindow } from '../../src/buffer/durable/idempotency-window.js';

test('a key is known, with the seq that carried it, for exactly the window after it was added', () => {
  const w = new IdempotencyWindow(1_000, 10);
  w.add('a', 7, 5_000);
  assert.equal(w.candidate('a', 5_000), 7);
  assert.equal(w.candidate('a', 5_999), 7);
  assert.equal(w.candidate('a', 6_000), -1, 'a window later it is no longer a resend');
  assert.equal(w.candidate('b', 5_000), -1);
});

test('over maxKeys the oldest go first', () => {
  const w = new IdempotencyWindow(60_000, 3);
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) w.add(k, i + 1, 1_000 + i);
  assert.equal(w.size, 3);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => w.candidate(k, 2_000)), [-1, 2, 3, 4]);
});

test('a key added again counts from its newer time and seq and is not evicted by its older entry', () => {
  const w = new IdempotencyWindow(1_000, 2);
  w.add('a', 1, 0);
  w.add('b', 2, 10);
  w.add('a', 3, 500); // 'a' again (stored again after a failed check): its first entry is now stale
  w.add('c', 4, 600); // one over: the oldest live key goes, which is 'b', not the refreshed 'a'
  assert.equal(w.candidate('a', 1_200), 3, 'refreshed at 500, so known until 1500, as seq 3');
  assert.equal(w.candidate('b', 700), -1);
  assert.equal(w.candidate('c', 700), 4);
  w.expire(1_400);
  assert.equal(w.size, 2, 'nothing added at or before 400 is still live');
  w.expire(1_500);
  assert.equal(w.candidate('a', 1_499), -1);
  assert.equal(w.size, 1);
});

test('expiry follows a clock that jumps backwards without forgetting live keys', () => {
  const w = new IdempotencyWindow(1_000, 10);
  w.add('a', 1, 10_000);
  w.expire(9_000); // the clock went back: nothing is older than the window
  assert.equal(w.candidate('a', 10_500), 1);
});

test('keys differing in one character, in their length, or only past the first units are told apart', () => {
  const w = new IdempotencyWindow(60_000, 100);
  const keys = ['', 'a', 'b', 'ab', 'ba', 'abc', 'abd', 'x'.repeat(63) + 'y', 'x'.repeat(63) + 'z', 'ключ', 'ключ2', '😀', '😁'];
  keys.forEach((k, i) => w.add(k, i + 1, 0));
  keys.forEach((k, i) => assert.equal(w.candidate(k, 1), i + 1, JSON.stringify(k)));
  assert.equal(w.candidate('abe', 1), -1);
});

test('eviction and expiry keep every other key findable (against a reference model, small table, many collisions)', () => {
  // 40 keys in a 128-slot table, drawn from 300 names: long probe runs, constant deletion.
  let seed = 42;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  const windowMs = 5_000;
  const maxKeys = 40;
  const w = new IdempotencyWindow(windowMs, maxKeys, 7);
  const model = new Map<string, { seq: number; at: number }>();
  const order: Array<{ key: string; seq: number; at: number }> = [];
  let now = 0;
  for (let seq = 1; seq <= 20_000; seq++) {
    now += Math.floor(random() * 40);
    const key = `key-${Math.floor(random() * 300)}`;
    // The model: a ring of at most maxKeys adds; an entry counts while it is its key's latest.
    if (order.length === maxKeys) {
      const old = order.shift()!;
      if (model.get(old.key)?.seq === old.seq) model.delete(old.key);
    }
    w.add(key, seq, now);
    model.set(key, { seq, at: now });
    order.push({ key, seq, at: now });
    if (seq % 50 === 0) {
      w.expire(now);
      while (order.length > 0 && order[0]!.at <= now - windowMs) {
        const old = order.shift()!;
        if (model.get(old.key)?.seq === old.seq) model.delete(old.key);
      }
    }
    if (seq % 7 === 0) {
      for (let k = 0; k < 300; k++) {
        const m = model.get(`key-${k}`);
        const expected = m && now - m.at < windowMs ? m.seq : -1;
        assert.equal(w.candidate(`key-${k}`, now), expected, `key-${k} after add ${seq}`);
      }
      assert.equal(w.size, model.size);
    }
  }
});

test('a full window of a million keys evicts exactly its oldest key per add', () => {
  const w = new IdempotencyWindow(10_000_000, 1_000_000);
  for (let i = 0; i < 1_000_000; i++) w.add(`k${i}`, i + 1, i);
  for (let i = 0; i < 200_000; i++) w.add(`n${i}`, 1_000_001 + i, 1_000_000 + i);
  assert.equal(w.size, 1_000_000);
  assert.equal(w.candidate('k199999', 1_200_000), -1);
  assert.equal(w.candidate('k200000', 1_200_000), 200_001);
  assert.equal(w.candidate('n199999', 1_200_000), 1_200_000);
});
