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
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((k) => w.candidate(k, 2_000)),
    [-1, 2, 3, 4],
  );
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

/**
 * Random adds and expiries against a reference model: a ring of at most maxKeys adds, where an
 * entry counts while it is its key's latest and younger than the window.
 */
function checkAgainstModel(o: {
  maxKeys: number;
  names: number;
  adds: number;
  checkEvery: number;
  meanStepMs: (seq: number) => number;
}): void {
  let seed = 42;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  const windowMs = 5_000;
  const w = new IdempotencyWindow(windowMs, o.maxKeys, 7);
  const model = new Map<string, { seq: number; at: number }>();
  const order: Array<{ key: string; seq: number; at: number }> = [];
  let head = 0;
  const dropOldest = () => {
    const old = order[head++]!;
    if (model.get(old.key)?.seq === old.seq) model.delete(old.key);
  };
  let now = 0;
  for (let seq = 1; seq <= o.adds; seq++) {
    now += Math.floor(random() * o.meanStepMs(seq) * 2);
    const key = `key-${Math.floor(random() * o.names)}`;
    if (order.length - head === o.maxKeys) dropOldest();
    w.add(key, seq, now);
    model.set(key, { seq, at: now });
    order.push({ key, seq, at: now });
    if (seq % 50 === 0) {
      w.expire(now);
      while (head < order.length && order[head]!.at <= now - windowMs) dropOldest();
    }
    if (seq % o.checkEvery === 0) {
      for (let k = 0; k < o.names; k++) {
        const m = model.get(`key-${k}`);
        const expected = m && now - m.at < windowMs ? m.seq : -1;
        assert.equal(w.candidate(`key-${k}`, now), expected, `key-${k} after add ${seq}`);
      }
      assert.equal(w.size, model.size);
    }
  }
}

test('eviction and expiry keep every other key findable (small table, long probe runs, constant deletion)', () => {
  checkAgainstModel({ maxKeys: 40, names: 300, adds: 20_000, checkEvery: 7, meanStepMs: () => 20 });
});

test('the table and ring grow as keys come, across expiries that wrap the ring, and every key stays findable', () => {
  // Keys arrive slowly at first, so expiry moves the ring's head round past its end, then fast:
  // the ring is full and wrapped when it grows (1,024 to 5,000), the table doubles to 16,384 slots.
  checkAgainstModel({ maxKeys: 5_000, names: 20_000, adds: 12_000, checkEvery: 97, meanStepMs: (seq) => (seq < 3_000 ? 10 : 0.5) });
});

test('memory follows the keys held, not maxKeys', () => {
  const before = process.memoryUsage().arrayBuffers;
  const w = new IdempotencyWindow(60_000, 10_000_000);
  for (let i = 0; i < 100; i++) w.add(`k${i}`, i + 1, 0);
  const used = process.memoryUsage().arrayBuffers - before;
  assert.ok(used < 1024 * 1024, `${used} bytes for 100 keys of a 10,000,000-key window`);
  assert.equal(w.candidate('k99', 1), 100);
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
