import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LruMap } from '../../src/middleware/lru-map.js';

/** The keys from least to most recently used (empties the map: call it last). */
const keysOf = (m: LruMap<string, number>) => {
  const keys: string[] = [];
  for (let o = m.oldest(); o !== undefined; o = m.oldest()) {
    keys.push(o[0]);
    m.delete(o[0]);
  }
  return keys;
};

test('a full map evicts the least recently used entry and never grows past maxSize', () => {
  const m = new LruMap<string, number>(3);
  for (const [i, k] of ['a', 'b', 'c', 'd', 'e'].entries()) m.set(k, i);
  assert.equal(m.size, 3);
  assert.equal(m.evicted, 2);
  assert.deepEqual(keysOf(m), ['c', 'd', 'e']);
});

test('get and set mark an entry most recently used; peek and has do not', () => {
  const m = new LruMap<string, number>(3);
  m.set('a', 1);
  m.set('b', 2);
  m.set('c', 3);
  assert.equal(m.get('a'), 1);
  m.set('b', 20);
  assert.equal(m.peek('c'), 3);
  assert.ok(m.has('c'));
  m.set('d', 4); // c is now the least recently used
  assert.equal(m.has('c'), false);
  assert.deepEqual(keysOf(m), ['a', 'b', 'd']);
});

test('pruneOldest deletes from the front while entries have expired, and stops at the first that has not', () => {
  const m = new LruMap<string, number>(10);
  for (const [k, t] of [
    ['a', 1],
    ['b', 2],
    ['c', 9],
    ['d', 3],
  ] as const)
    m.set(k, t);
  assert.equal(
    m.pruneOldest((t) => t < 5),
    2,
  );
  assert.deepEqual(keysOf(m), ['c', 'd'], 'd is older than the cut-off but sits behind c');
});

test('maxSize must be a positive integer', () => {
  assert.throws(() => new LruMap(0), { code: 'POLKU_ERR_OPTION_INVALID' });
  assert.throws(() => new LruMap(1.5), { code: 'POLKU_ERR_OPTION_INVALID' });
});
