import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { enricher, type EnrichFn, type EnricherOptions } from '../../src/middleware/enricher.js';
import type { MiddlewareContext } from '../../src/middleware/middleware.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FakeClock, FakeTimers, flushPromises } from '../../src/testing/index.js';

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

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const ev = (fields: Partial<Event>): Event => ({ ...Event.create(), ...fields });
const batch = (n: number) => Array.from({ length: n }, (_, i) => ev({ id: `e${i}` }));

/** An enricher on fake timers; `pending` holds each started enrichment, by event id. */
function setup(options: EnricherOptions = {}, enrich?: EnrichFn) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const registry = new Registry();
  const pending = new Map<string, ReturnType<typeof deferred<Event | void>>>();
  let inFlight = 0;
  let maxInFlight = 0;
  const controlled: EnrichFn = (event) => {
    const d = deferred<Event | void>();
    pending.set(event.id, d);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    return d.promise.finally(() => inFlight--);
  };
  const e = enricher(enrich ?? controlled, options);
  e.init({ registry, logger: silentLogger(), clock, timers });
  const { ctx, drops } = recorder();
  const run = (events: Event[]) => e.process(events, ctx) as Promise<Event[]>;
  const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]!.value;
  return { timers, pending, run, drops, metric, stats: () => ({ inFlight, maxInFlight }) };
}

test('events come out in input order whatever order their enrichments finish in', async () => {
  const { pending, run } = setup();
  const events = batch(3);
  const result = run(events);
  await flushPromises();
  pending.get('e2')!.resolve(ev({ id: 'e2', eventType: 'replaced' }));
  pending.get('e0')!.resolve();
  events[1]!.metadata['team'] = 'core'; // an enrich function may change the event and return nothing
  pending.get('e1')!.resolve();
  const out = await result;
  assert.deepEqual(
    out.map((e) => [e.id, e.eventType]),
    [
      ['e0', ''],
      ['e1', ''],
      ['e2', 'replaced'],
    ],
  );
  assert.equal(out[1], events[1]);
  assert.equal(out[1]!.metadata['team'], 'core');
});

test('no more than `concurrency` enrichments run at once, and every event gets its turn', async () => {
  const { pending, run, stats } = setup({ concurrency: 3 });
  const result = run(batch(10));
  await flushPromises();
  assert.equal(pending.size, 3, 'only the first three started');
  for (let i = 0; i < 10; i++) {
    pending.get(`e${i}`)!.resolve();
    await flushPromises();
    assert.ok(stats().inFlight <= 3);
  }
  assert.equal((await result).length, 10);
  assert.equal(stats().maxInFlight, 3);
});

test('onTimeout pass: a slow event goes on unchanged, is counted, and its late result is ignored', async () => {
  const { pending, run, timers, metric } = setup({ timeoutMs: 50 });
  const events = batch(2);
  let out: Event[] | undefined;
  void run(events).then((o) => (out = o));
  await flushPromises();
  pending.get('e0')!.resolve();
  timers.advance(49);
  await flushPromises();
  assert.equal(out, undefined, 'e1 still has 1 ms');
  timers.advance(1);
  await flushPromises();
  assert.deepEqual(
    out!.map((e) => e.id),
    ['e0', 'e1'],
  );
  assert.equal(out![1], events[1], 'the original event, not a replacement');
  pending.get('e1')!.resolve(ev({ id: 'late' }));
  await flushPromises();
  assert.equal(out![1]!.id, 'e1', 'the late result changed nothing');
  assert.equal(await metric('polku_enrich_timeouts_total'), 1);
});

test('onTimeout drop: a slow event is refused ENRICH_TIMEOUT', async () => {
  const { pending, run, timers, drops } = setup({ timeoutMs: 50, onTimeout: 'drop' });
  const result = run(batch(2));
  await flushPromises();
  pending.get('e1')!.resolve();
  await flushPromises(); // e1's result lands before the timers run
  timers.advance(50);
  assert.deepEqual(
    (await result).map((e) => e.id),
    ['e1'],
  );
  assert.deepEqual(drops, [{ id: 'e0', code: 'ENRICH_TIMEOUT', message: 'enricher "enricher" took longer than 50 ms' }]);
});

test('a finished enrichment clears its timer', async () => {
  const { pending, run, timers } = setup({ timeoutMs: 50 });
  const result = run(batch(2));
  await flushPromises();
  assert.equal(timers.pending, 2);
  pending.get('e0')!.resolve();
  pending.get('e1')!.resolve();
  await result;
  assert.equal(timers.pending, 0);
});

test('onError pass: failed events go on unchanged and are counted; thrown and rejected alike', async () => {
  const enrich: EnrichFn = (e) => {
    if (e.id === 'e0') throw new Error('sync boom');
    if (e.id === 'e1') return Promise.reject(new Error('async boom'));
    e.metadata['ok'] = 'yes';
    return Promise.resolve();
  };
  const { run, drops, metric } = setup({}, enrich);
  const out = await run(batch(3));
  assert.deepEqual(
    out.map((e) => [e.id, e.metadata['ok']]),
    [
      ['e0', undefined],
      ['e1', undefined],
      ['e2', 'yes'],
    ],
  );
  assert.equal(drops.length, 0);
  assert.equal(await metric('polku_enrich_errors_total'), 2);
});

test('onError drop: failed events are refused MIDDLEWARE_ERROR, reported in input order', async () => {
  const gates = [deferred<void>(), deferred<void>()];
  const enrich: EnrichFn = (e) => (e.id === 'e2' ? Promise.resolve() : gates[Number(e.id.slice(1))]!.promise);
  const { run, drops } = setup({ onError: 'drop' }, enrich);
  const result = run(batch(3));
  gates[1]!.reject(new Error('second'));
  await flushPromises();
  gates[0]!.reject('first');
  assert.deepEqual(
    (await result).map((e) => e.id),
    ['e2'],
  );
  assert.deepEqual(drops, [
    { id: 'e0', code: 'MIDDLEWARE_ERROR', message: 'enricher "enricher" failed: first' },
    { id: 'e1', code: 'MIDDLEWARE_ERROR', message: 'enricher "enricher" failed: second' },
  ]);
});

test('a batch of enrich functions that all throw at once finishes without deep recursion', async () => {
  const { run, metric } = setup({ concurrency: 1 }, () => {
    throw new Error('always');
  });
  assert.equal((await run(batch(50_000))).length, 50_000);
  assert.equal(await metric('polku_enrich_errors_total'), 50_000);
});

test('an empty batch is answered at once, without a promise', () => {
  const { ctx } = recorder();
  assert.deepEqual(enricher(() => Promise.resolve()).process([], ctx), []);
});

test('bad options fail when the enricher is built', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof PolkuError && pattern.test(err.message);
  const noop = () => Promise.resolve();
  assert.throws(() => enricher(noop, { concurrency: 0 }), invalid(/concurrency must be a positive integer/));
  assert.throws(() => enricher(noop, { timeoutMs: -1 }), invalid(/timeoutMs must be positive/));
  assert.throws(() => enricher(noop, { onTimeout: 'retry' as 'pass' }), invalid(/onTimeout must be "pass" or "drop"/));
});

test('through a hub: enriched events are accepted, timed-out ones refused ENRICH_TIMEOUT', async () => {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const memory = new InMemoryEmitter();
  const enrich: EnrichFn = async (e) => {
    if (e.id === 'slow') return new Promise<void>(() => {}); // never finishes
    e.metadata['team'] = 'core';
  };
  const gateway = hub()
    .middleware(enricher(enrich, { timeoutMs: 20, onTimeout: 'drop' }))
    .emitter(memory)
    .build({ clock, timers });
  const events = [ev({ id: 'a' }), ev({ id: 'slow' }), ev({ id: 'b' })];
  const pending = gateway.processBatch({ source: 's', cluster: '', payload: { $case: 'events', value: { events } } });
  await flushPromises();
  timers.advance(20);
  const ack = await pending;
  assert.deepEqual(ack.eventIds, ['a', 'b']);
  assert.deepEqual(
    ack.errors.map((e) => [e.eventId, e.code]),
    [['slow', 'ENRICH_TIMEOUT']],
  );
  timers.advance(1_000);
  await memory.waitForCount(2);
  assert.deepEqual(
    memory.events.map((e) => e.metadata['team']),
    ['core', 'core'],
  );
});
