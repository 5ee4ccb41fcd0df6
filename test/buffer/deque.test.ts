import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deque } from '../../src/buffer/deque.js';

/** Shifts everything out, oldest first. */
function drain<T>(deque: Deque<T>): T[] {
  const out: T[] = [];
  for (let item = deque.shift(); item !== undefined; item = deque.shift()) out.push(item);
  return out;
}

test('a new deque is empty', () => {
  const deque = new Deque<number>();
  assert.equal(deque.length, 0);
  assert.equal(deque.peek(), undefined);
  assert.equal(deque.shift(), undefined);
});

test('items come out in the order they went in', () => {
  const deque = new Deque<string>();
  for (const s of ['a', 'b', 'c']) deque.push(s);
  assert.equal(deque.length, 3);
  assert.deepEqual(drain(deque), ['a', 'b', 'c']);
  assert.equal(deque.length, 0);
});

test('order survives growing past several doublings from a tiny capacity', () => {
  const deque = new Deque<number>(2);
  for (let i = 0; i < 1_000; i++) deque.push(i);
  assert.equal(deque.length, 1_000);
  assert.deepEqual(
    drain(deque),
    Array.from({ length: 1_000 }, (_, i) => i),
  );
});

test('order survives growing while the ring has wrapped around', () => {
  const deque = new Deque<number>(4);
  for (let i = 0; i < 3; i++) deque.push(i); // [0 1 2 _], head 0
  assert.deepEqual([deque.shift(), deque.shift()], [0, 1]); // head 2
  for (let i = 3; i < 6; i++) deque.push(i); // wraps: [4 5 2 3]
  assert.equal(deque.length, 4);
  deque.push(6); // full and wrapped: must unroll in order while doubling
  assert.deepEqual(drain(deque), [2, 3, 4, 5, 6]);
});

test('interleaved pushes and shifts stay FIFO across growth and wrap-around', () => {
  const deque = new Deque<number>(4);
  const model: number[] = [];
  let next = 0;
  // Net growth of one per round, so the ring wraps repeatedly while it doubles 4 -> 512.
  for (let round = 0; round < 400; round++) {
    const pushes = (round % 5) + 1;
    for (let i = 0; i < pushes; i++) {
      deque.push(next);
      model.push(next++);
    }
    for (let i = 0; i < pushes - 1; i++) assert.equal(deque.shift(), model.shift());
    assert.equal(deque.length, model.length);
    assert.equal(deque.peek(), model[0]);
  }
  assert.ok(model.length === 400, 'the deque ended several doublings past its initial capacity');
  assert.deepEqual(drain(deque), model);
});

test('peek returns the oldest item without removing it', () => {
  const deque = new Deque<string>();
  deque.push('first');
  deque.push('second');
  assert.equal(deque.peek(), 'first');
  assert.equal(deque.peek(), 'first');
  assert.equal(deque.length, 2);
  deque.shift();
  assert.equal(deque.peek(), 'second');
});

test('clear empties the deque and it can be used again', () => {
  const deque = new Deque<number>(4);
  for (let i = 0; i < 10; i++) deque.push(i);
  deque.shift();
  deque.clear();
  assert.equal(deque.length, 0);
  assert.equal(deque.peek(), undefined);
  assert.equal(deque.shift(), undefined);
  deque.push(42);
  deque.push(43);
  assert.deepEqual(drain(deque), [42, 43]);
});

test('falsy items are kept like any other', () => {
  const deque = new Deque<number | string | boolean>();
  for (const v of [0, '', false]) deque.push(v);
  assert.equal(deque.length, 3);
  assert.equal(deque.shift(), 0);
  assert.equal(deque.shift(), '');
  assert.equal(deque.shift(), false);
});
