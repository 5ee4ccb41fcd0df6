import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createUlidFactory } from '../../src/ingest/ulid.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ULID_SHAPE = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** The millisecond time encoded in a ULID's first 10 characters. */
function decodeTime(id: string): number {
  let ms = 0;
  for (const ch of id.slice(0, 10)) {
    const digit = CROCKFORD.indexOf(ch);
    assert.ok(digit >= 0, `"${ch}" is not Crockford base32`);
    ms = ms * 32 + digit;
  }
  return ms;
}

/** A factory whose clock reads `clock.ms`. */
function factoryAt(startMs: number) {
  const clock = { ms: startMs };
  return { clock, next: createUlidFactory({ now: () => clock.ms }) };
}

test('a ULID is 26 characters of Crockford base32', () => {
  const { next } = factoryAt(1_732_000_000_123);
  for (let i = 0; i < 1_000; i++) assert.match(next(), ULID_SHAPE);
});

test('the time prefix encodes the injected milliseconds', () => {
  for (const ms of [0, 1, 1_732_000_000_123, 2 ** 48 - 1]) {
    const { next } = factoryAt(ms);
    assert.equal(decodeTime(next()), ms, `at ${ms} ms`);
  }
  assert.equal(factoryAt(0).next().slice(0, 10), '0000000000');
  assert.equal(
    factoryAt(2 ** 48 - 1)
      .next()
      .slice(0, 10),
    '7ZZZZZZZZZ',
  );
});

test('ids within the same millisecond are strictly increasing over 10,000 calls', () => {
  const { next } = factoryAt(1_732_000_000_123);
  let previous = next();
  for (let i = 0; i < 10_000; i++) {
    const id = next();
    assert.ok(id > previous, `${id} should sort after ${previous} (call ${i})`);
    assert.equal(decodeTime(id), 1_732_000_000_123);
    previous = id;
  }
});

test('ids from later milliseconds sort after earlier ones', () => {
  const { clock, next } = factoryAt(1_732_000_000_000);
  const ids: string[] = [];
  for (let step = 0; step < 200; step++) {
    ids.push(next(), next());
    clock.ms += 1 + (step % 3);
  }
  const sorted = [...ids].sort();
  assert.deepEqual(ids, sorted);
  assert.equal(decodeTime(ids.at(-1)!), clock.ms - 1 - (199 % 3));
});

test('a clock that steps back does not break the order', () => {
  const { clock, next } = factoryAt(1_732_000_000_500);
  const before = next();
  clock.ms -= 400;
  const after = next();
  assert.ok(after > before, `${after} should sort after ${before}`);
  assert.equal(decodeTime(after), 1_732_000_000_500, 'keeps the latest time seen');
});

test('separate factories draw different random parts in the same millisecond', () => {
  const a = factoryAt(1_732_000_000_000).next();
  const b = factoryAt(1_732_000_000_000).next();
  assert.equal(a.slice(0, 10), b.slice(0, 10));
  assert.notEqual(a.slice(10), b.slice(10));
});

test('100,000 ids are unique', () => {
  const { clock, next } = factoryAt(1_732_000_000_000);
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) {
    if (i % 1_000 === 0) clock.ms += 1;
    seen.add(next());
  }
  assert.equal(seen.size, 100_000);
});

test('without an injected clock the time prefix is the current time', () => {
  const before = Date.now();
  const id = createUlidFactory()();
  const after = Date.now();
  const ms = decodeTime(id);
  assert.ok(ms >= before && ms <= after, `${ms} should lie in [${before}, ${after}]`);
});
