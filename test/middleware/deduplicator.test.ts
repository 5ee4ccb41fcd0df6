import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { Clock } from '../../src/clock.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { markAssignedId } from '../../src/ingest/assigned-ids.js';
import { deduplicator, type DeduplicatorOptions } from '../../src/middleware/deduplicator.js';
import type { MiddlewareContext } from '../../src/middleware/middleware.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';

/** A MiddlewareContext that records what the middleware drops. */
function recorder() {
  const drops: Array<{ id: string; code: string; message: string }> = [];
  const ctx: MiddlewareContext = {
    source: 's',
    cluster: '',
    receivedAtNs: 0n,
    drop: (e, code, message) => drops.push({ id: e.id, code, message }),
  };
  return { ctx, drops };
}

/** A monotonic clock a test can set anywhere, backwards included (FakeClock only moves forward). */
class SettableClock implements Clock {
  mono = 0;
  nowMs = (): number => 1_700_000_000_000 + this.mono;
  nowNs = (): bigint => BigInt(this.nowMs()) * 1_000_000n;
  monotonicMs = (): number => this.mono;
}

const ev = (fields: Partial<Event>): Event => ({ ...Event.create(), ...fields });
/** An event that arrived without an id: intake gave it `id` and marked it. */
const idless = (id: string): Event => {
  const e = ev({ id });
  markAssignedId(e);
  return e;
};

function dedup(options: DeduplicatorOptions, clock: Clock = new SettableClock()) {
  const registry = new Registry();
  const d = deduplicator(options);
  d.init({ registry, logger: silentLogger(), clock, timers: new FakeTimers() });
  const { ctx, drops } = recorder();
  const run = (...ids: Array<string | Event>) =>
    d
      .process(
        ids.map((i) => (typeof i === 'string' ? ev({ id: i }) : i)),
        ctx,
      )
      .map((e) => e.id);
  return { d, run, drops, registry };
}

test('an id seen within the window is refused DUPLICATE, naming the window', () => {
  const { run, drops } = dedup({ ttlMs: 1_000 });
  assert.deepEqual(run('a', 'b'), ['a', 'b']);
  assert.deepEqual(run('b', 'c'), ['c']);
  assert.deepEqual(drops, [
    { id: 'b', code: 'DUPLICATE', message: 'duplicate of an event seen in the last 1000 ms (deduplicator "deduplicator")' },
  ]);
});

test('within one batch the second occurrence is a duplicate', () => {
  const { run, drops } = dedup({});
  assert.deepEqual(run('a', 'a', 'b', 'a'), ['a', 'b']);
  assert.equal(drops.length, 2);
});

test('the window runs from the first sighting and expires on the clock; duplicates do not extend it', () => {
  const clock = new SettableClock();
  const { run, d } = dedup({ ttlMs: 1_000 }, clock);
  run('a');
  clock.mono = 600;
  assert.deepEqual(run('a'), [], 'still inside the window');
  clock.mono = 999;
  assert.deepEqual(run('a'), []);
  clock.mono = 1_000;
  assert.deepEqual(run('a'), ['a'], 'exactly ttlMs after the first sighting it is new again');
  assert.deepEqual(run('a'), [], 'and remembered afresh');
  clock.mono = 5_000;
  run('z');
  assert.equal(d.keyCount, 1, 'expired keys are pruned, only z remains');
});

test('events that arrived without an id are never duplicates, of each other or of client ids', () => {
  const { run, d } = dedup({});
  assert.deepEqual(run(idless('x'), idless('x')), ['x', 'x']);
  assert.equal(d.keyCount, 0, 'gateway-assigned ids are not remembered');
  assert.deepEqual(run('x', idless('x')), ['x', 'x'], 'a marked event does not collide with a client id either');
});

test('a full table forgets the oldest key first and never holds more than maxKeys', async () => {
  const { run, d, registry } = dedup({ maxKeys: 3 });
  assert.deepEqual(run('k0', 'k1', 'k2', 'k3', 'k4'), ['k0', 'k1', 'k2', 'k3', 'k4']);
  assert.equal(d.keyCount, 3);
  assert.deepEqual(run('k4', 'k3', 'k2'), [], 'the newest three are remembered');
  assert.deepEqual(run('k0'), ['k0'], 'the oldest was forgotten, even inside its TTL');
  for (let i = 0; i < 10_000; i++) run(`n${i}`);
  assert.equal(d.keyCount, 3);
  const evicted = await registry.getSingleMetric('polku_deduplicator_evicted_total')!.get();
  assert.equal(evicted.values[0]!.value, 10_003);
  const keys = await registry.getSingleMetric('polku_deduplicator_keys')!.get();
  assert.equal(keys.values[0]!.value, 3);
});

test('a key function sets identity; an empty key is never a duplicate; the id mark does not apply', () => {
  const { run } = dedup({ key: (e) => e.metadata['request_id'] ?? '' });
  const req = (id: string, requestId?: string) => ev({ id, metadata: requestId === undefined ? {} : { request_id: requestId } });
  assert.deepEqual(run(req('1', 'r1'), req('2', 'r1'), req('3'), req('4')), ['1', '3', '4']);
  const marked = req('5', 'r1');
  markAssignedId(marked);
  assert.deepEqual(run(marked), [], 'an event without a client id still repeats request r1');
});

test('a key function that throws refuses only its event', () => {
  const throwing = deduplicator({
    key: (e) => {
      if (e.id === 'bad') throw new Error('nope');
      return e.id;
    },
  });
  const { ctx, drops } = recorder();
  assert.deepEqual(
    throwing.process([ev({ id: 'a' }), ev({ id: 'bad' })], ctx).map((e) => e.id),
    ['a'],
  );
  assert.deepEqual(
    drops.map((x) => [x.id, x.code]),
    [['bad', 'MIDDLEWARE_ERROR']],
  );
  assert.equal(throwing.keyCount, 1, 'only a is remembered');
});

test('a clock that steps backwards expires nothing early and does not crash', () => {
  const clock = new SettableClock();
  clock.mono = 10_000;
  const { run } = dedup({ ttlMs: 1_000 }, clock);
  run('a');
  clock.mono = 2_000; // 8 s back
  assert.deepEqual(run('a'), []);
  clock.mono = 10_999; // back where it was, still inside a's window
  assert.deepEqual(run('a'), []);
  clock.mono = 11_000;
  assert.deepEqual(run('a'), ['a']);
});

test('forget(event) lets an event refused further down the pipeline be sent again', () => {
  const { run, d } = dedup({});
  const event = ev({ id: 'retry-me' });
  assert.deepEqual(run(event), ['retry-me']);
  d.forget(event);
  assert.deepEqual(run('retry-me'), ['retry-me']);
});

test('bad options fail when the deduplicator is built', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof PolkuError && pattern.test(err.message);
  assert.throws(() => deduplicator({ ttlMs: 0 }), invalid(/ttlMs must be positive/));
  assert.throws(() => deduplicator({ maxKeys: 2.5 }), invalid(/maxKeys must be a positive integer/));
});

test('through a hub: duplicates within and across batches count in dedupCount', async () => {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const gateway = hub()
    .middleware(deduplicator({ ttlMs: 60_000 }))
    .emitter(new InMemoryEmitter())
    .build({ clock, timers });
  const send = (events: Event[]) => gateway.processBatch({ source: 's', cluster: '', payload: { $case: 'events', value: { events } } });
  const first = await send([ev({ id: 'a' }), ev({ id: 'b' }), ev({ id: 'a' })]);
  assert.deepEqual(first.eventIds, ['a', 'b']);
  assert.equal(first.middlewareStats!.dedupCount, 1n);
  const second = await send([ev({ id: 'b' }), ev({ id: 'c' })]);
  assert.deepEqual(second.eventIds, ['c']);
  assert.deepEqual(
    second.errors.map((e) => [e.eventId, e.code]),
    [['b', 'DUPLICATE']],
  );
  assert.equal(second.middlewareStats!.dedupCount, 1n);
  // Events sent without an id each get a fresh ULID and pass.
  const idlessAck = await send([ev({}), ev({}), ev({})]);
  assert.equal(idlessAck.eventIds.length, 3);
  assert.equal(idlessAck.middlewareStats!.dedupCount, 0n);
  clock.advance(60_000);
  assert.deepEqual((await send([ev({ id: 'a' })])).eventIds, ['a'], 'after the window the id is new again');
});
