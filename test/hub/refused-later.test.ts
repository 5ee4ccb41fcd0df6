import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import type { IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { hub } from '../../src/hub/builder.js';
import { deduplicator } from '../../src/middleware/deduplicator.js';
import { rateLimiter } from '../../src/middleware/rate-limiter.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';
import { GatedEmitter } from '../helpers/gated-emitter.js';

const batch = (...ids: string[]): IngestBatch => ({
  source: 's',
  cluster: '',
  payload: { $case: 'events', value: { events: ids.map((id) => Event.fromPartial({ id })) } },
});

test('an event refused BUFFER_FULL after the deduplicator saw it is accepted when sent again', async () => {
  const gate = new GatedEmitter('held');
  const h = hub()
    .middleware(deduplicator({ ttlMs: 60_000 }))
    .emitter(gate)
    .buffer({ capacity: 1, overflow: 'reject' })
    .delivery({ batchSize: 1, flushIntervalMs: 0 })
    .build();
  const first = await h.processBatch(batch('a', 'b'));
  assert.deepEqual(first.eventIds, ['a']);
  assert.deepEqual(
    first.errors.map((e) => [e.eventId, e.code]),
    [['b', 'BUFFER_FULL']],
  );
  gate.open();
  while (h.stats().buffer.events > 0) await new Promise((r) => setImmediate(r));
  const again = await h.processBatch(batch('b', 'a'));
  assert.deepEqual(again.eventIds, ['b'], 'b was never accepted, so it is no duplicate');
  assert.deepEqual(
    again.errors.map((e) => [e.eventId, e.code]),
    [['a', 'DUPLICATE']],
  );
});

test('a refusal by a step before the deduplicator does not undo the key of the accepted original', async () => {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const memory = new InMemoryEmitter();
  const h = hub()
    .middleware(rateLimiter({ global: { rate: 1, burst: 1 } }))
    .middleware(deduplicator({ ttlMs: 60_000 }))
    .emitter(memory)
    .build({ clock, timers });
  assert.deepEqual((await h.processBatch(batch('x'))).eventIds, ['x']);
  // The copy is refused by the rate limiter before the deduplicator sees it...
  const limited = await h.processBatch(batch('x'));
  assert.equal(limited.errors[0]!.code, 'RATE_LIMITED');
  // ...so the original's key stays: once tokens are back, the copy is still a duplicate.
  clock.advance(1_000);
  const copy = await h.processBatch(batch('x'));
  assert.equal(copy.errors[0]!.code, 'DUPLICATE');
});
