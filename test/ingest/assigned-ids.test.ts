import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hasClientId, markAssignedId } from '../../src/ingest/assigned-ids.js';

const event = (id: string): Event => ({ ...Event.fromPartial({}), id });

test('a marked event reads as gateway-assigned; the mark is invisible to encoding, JSON, spread and deep equality', () => {
  const marked = event('01J0000000000000000000000A');
  const plain = event('01J0000000000000000000000A');
  assert.equal(hasClientId(marked), true);
  markAssignedId(marked);
  assert.equal(hasClientId(marked), false);
  assert.equal(hasClientId(plain), true);
  assert.deepStrictEqual(marked, plain);
  assert.equal(
    JSON.stringify(marked, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    JSON.stringify(plain, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
  );
  assert.deepEqual(Event.encode(marked).finish(), Event.encode(plain).finish());
  // A copy is a new object: it does not carry the mark (documented in assigned-ids.ts).
  assert.equal(hasClientId({ ...marked }), true);
});

test('an event that cannot take a property (frozen) is still marked', () => {
  const frozen = Object.freeze(event('01J0000000000000000000000B'));
  markAssignedId(frozen);
  assert.equal(hasClientId(frozen), false);
  assert.equal(hasClientId(event('01J0000000000000000000000B')), true);
});
