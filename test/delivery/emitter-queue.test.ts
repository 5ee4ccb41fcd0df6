import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Registry } from 'prom-client';
import { EmitterQueue, type DeliveryOptions } from '../../src/delivery/emitter-queue.js';
import { EmitterQueueMetrics } from '../../src/delivery/emitter-queue-metrics.js';
import { EventBuffer, type EventBufferOptions } from '../../src/buffer/event-buffer.js';
import { batchSizeOf, EmitResults, type EmitResult, type Emitter } from '../../src/emit/emitter.js';
import { withRetry } from '../../src/emit/resilience/retry.js';
import { TimeoutEmitter } from '../../src/emit/resilience/timeout.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry, DropCounter } from '../../src/observability/metrics.js';
import { FakeClock, FakeTimers, flushPromises } from '../../src/testing/index.js';

interface Call {
  readonly ids: string[];
  answered: boolean;
  resolve(result: EmitResult): void;
  reject(err: unknown): void;
}

/** An emitter whose answers the test gives, one batch at a time. */
class ScriptedEmitter implements Emitter {
  readonly calls: Call[] = [];
  /** When set, the next emit throws this synchronously. */
  throwNext: Error | null = null;

  readonly preferredBatchSize?: number;

  constructor(
    readonly name = 'sink',
    preferredBatchSize?: number,
  ) {
    if (preferredBatchSize !== undefined) this.preferredBatchSize = preferredBatchSize;
  }

  emit(events: readonly Event[]): Promise<EmitResult> {
    const ids = events.map((e) => e.id);
    if (this.throwNext) {
      const err = this.throwNext;
      this.throwNext = null;
      this.calls.push({ ids, answered: true, resolve: () => {}, reject: () => {} });
      throw err;
    }
    return new Promise((resolve, reject) => this.calls.push({ ids, answered: false, resolve, reject }));
  }

  /** Every batch seen so far, as event ids. */
  get batches(): string[][] {
    return this.calls.map((c) => c.ids);
  }

  /** Answers the batch in flight and lets the queue react to it. */
  async answer(result: EmitResult | Error): Promise<void> {
    const call = this.calls.at(-1);
    assert.ok(call && !call.answered, 'a batch is in flight');
    call.answered = true;
    if (result instanceof Error) call.reject(result);
    else call.resolve(result);
    await flushPromises();
  }
}

function setup(delivery: Partial<DeliveryOptions> = {}, bufferOptions: Partial<EventBufferOptions> = {}, preferredBatchSize?: number) {
  const registry = createRegistry();
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const buffer = new EventBuffer({ capacity: 1_000, maxBytes: 1_000_000, overflow: 'drop_oldest', ...bufferOptions });
  const emitter = new ScriptedEmitter('sink', preferredBatchSize);
  const queues: EmitterQueue[] = [];
  const queue = new EmitterQueue({
    batchSize: 3,
    flushIntervalMs: 50,
    maxAttempts: 3,
    ...delivery,
    emitter,
    isDefault: true,
    buffer,
    clock,
    timers,
    metrics: new EmitterQueueMetrics(registry, () => queues),
    drops: new DropCounter(registry),
    logger: silentLogger(),
  });
  queues.push(queue);
  buffer.setEvictionSources(queues);
  const admit = (...ids: string[]): void => {
    for (const id of ids) buffer.admit(Event.fromPartial({ id }), 100, [queue]);
    queue.kick();
  };
  return { registry, timers, buffer, emitter, queue, admit };
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return match?.value ?? 0;
}

const dropped = (registry: Registry, reason: string) => metricValue(registry, 'polku_events_dropped_total', { reason });
const forwarded = (registry: Registry) => metricValue(registry, 'polku_events_forwarded_total', { emitter: 'sink' });

test('a full batch is sent at once, without waiting for the flush timer', () => {
  const { emitter, timers, admit } = setup();
  admit('a', 'b', 'c');
  assert.deepEqual(emitter.batches, [['a', 'b', 'c']]);
  assert.equal(timers.pending, 0);
});

test("an emitter's larger preferredBatchSize sets its batches; a partial one still goes on the flush timer", async () => {
  const { emitter, timers, admit, queue } = setup({ batchSize: 3, flushIntervalMs: 50 }, {}, 5);
  assert.equal(queue.batchSize, 5);
  admit('a', 'b', 'c', 'd');
  assert.deepEqual(emitter.batches, [], 'four events are not a batch of five');
  admit('e', 'f', 'g');
  assert.deepEqual(emitter.batches, [['a', 'b', 'c', 'd', 'e']]);
  await emitter.answer(EmitResults.success());
  timers.advance(50);
  assert.deepEqual(emitter.batches, [
    ['a', 'b', 'c', 'd', 'e'],
    ['f', 'g'],
  ]);
});

test("a preferredBatchSize below the pipeline's batchSize changes nothing; wrappers keep the inner emitter's", () => {
  assert.equal(setup({ batchSize: 3 }, {}, 2).queue.batchSize, 3);
  assert.equal(setup({ batchSize: 3 }).queue.batchSize, 3);
  const inner = new ScriptedEmitter('inner', 2_000);
  assert.equal(new TimeoutEmitter(inner, { timeoutMs: 1_000 }).preferredBatchSize, 2_000);
  assert.equal(batchSizeOf(withRetry(inner), 500), 2_000);
  assert.equal(batchSizeOf(withRetry(new ScriptedEmitter('plain')), 500), 500);
});

test('a partial batch is sent only when the flush timer fires', () => {
  const { emitter, timers, admit } = setup({ flushIntervalMs: 50 });
  admit('a', 'b');
  assert.deepEqual(emitter.batches, []);
  timers.advance(49);
  assert.deepEqual(emitter.batches, [], 'not sent 1 ms before the flush interval');
  timers.advance(1);
  assert.deepEqual(emitter.batches, [['a', 'b']]);
});

test('one batch is in flight at a time', async () => {
  const { emitter, timers, admit, queue } = setup();
  admit('a', 'b', 'c');
  admit('d', 'e', 'f', 'g');
  timers.advance(10_000);
  assert.deepEqual(emitter.batches, [['a', 'b', 'c']], 'nothing else goes out while a batch is in flight');
  assert.equal(queue.depth, 7);
  await emitter.answer(EmitResults.success());
  assert.deepEqual(emitter.batches, [
    ['a', 'b', 'c'],
    ['d', 'e', 'f'],
  ]);
});

test('a partial result re-sends only the retryable event, after the backoff and before newer events', async () => {
  const { emitter, timers, admit, registry, buffer } = setup();
  admit('a', 'b', 'c');
  admit('d', 'e', 'f'); // a full batch, newer, waiting
  await emitter.answer(
    EmitResults.partial([
      { index: 1, retryable: true, error: 'busy' },
      { index: 2, retryable: false, error: 'rejected' },
    ]),
  );
  assert.equal(await dropped(registry, 'emit_failed'), 1, 'the non-retryable event is dropped');
  assert.equal(await forwarded(registry), 1, 'the successful event is delivered');
  assert.equal(buffer.size, 4, 'b is held for its retry, d-f are waiting');

  timers.advance(99);
  assert.equal(emitter.batches.length, 1, 'nothing is sent during the 100 ms backoff');
  timers.advance(1);
  assert.deepEqual(emitter.batches.at(-1), ['b'], 'the retry goes before the newer batch');
  await emitter.answer(EmitResults.success());
  await emitter.answer(EmitResults.success());

  assert.deepEqual(emitter.batches, [['a', 'b', 'c'], ['b'], ['d', 'e', 'f']]);
  assert.equal(await forwarded(registry), 5);
  assert.equal(await metricValue(registry, 'polku_emit_retries_total', { emitter: 'sink' }), 1);
  assert.equal(buffer.size, 0);
});

test('retryAfterMs from the emitter is honoured instead of the default backoff', async () => {
  const { emitter, timers, admit } = setup();
  admit('a', 'b', 'c');
  await emitter.answer(EmitResults.retryable('slow down', 1_000));
  timers.advance(999);
  assert.equal(emitter.batches.length, 1);
  timers.advance(1);
  assert.deepEqual(emitter.batches, [
    ['a', 'b', 'c'],
    ['a', 'b', 'c'],
  ]);
  await emitter.answer(EmitResults.partial([{ index: 0, retryable: true, error: 'again' }], 2_500));
  timers.advance(2_499);
  assert.equal(emitter.batches.length, 2);
  timers.advance(1);
  assert.deepEqual(emitter.batches.at(-1), ['a']);
});

test('the default backoff doubles with each attempt', async () => {
  const { emitter, timers, admit } = setup({ maxAttempts: 4 });
  admit('a', 'b', 'c');
  for (const delay of [100, 200, 400]) {
    const sent = emitter.batches.length;
    await emitter.answer(EmitResults.retryable('down'));
    timers.advance(delay - 1);
    assert.equal(emitter.batches.length, sent, `not yet after ${delay - 1} ms`);
    timers.advance(1);
    assert.equal(emitter.batches.length, sent + 1, `re-sent after ${delay} ms`);
  }
});

test('after maxAttempts the events are dropped as emit_retries_exhausted and the buffer is empty', async () => {
  const { emitter, timers, admit, registry, buffer, queue } = setup({ maxAttempts: 3 });
  admit('a', 'b', 'c');
  for (let attempt = 1; attempt <= 3; attempt++) {
    await emitter.answer(EmitResults.retryable('down'));
    timers.runAll();
  }
  assert.equal(emitter.batches.length, 3, 'three attempts, no fourth');
  assert.equal(await dropped(registry, 'emit_retries_exhausted'), 3);
  assert.equal(await dropped(registry, 'emit_failed'), 0);
  assert.equal(await forwarded(registry), 0);
  assert.equal(buffer.size, 0);
  assert.equal(buffer.bytes, 0);
  assert.equal(queue.depth, 0);
  assert.equal(timers.pending, 0);
});

test('a failed result drops the whole batch as emit_failed without retrying', async () => {
  const { emitter, timers, admit, registry, buffer } = setup();
  admit('a', 'b', 'c');
  await emitter.answer(EmitResults.failed('bad request'));
  timers.runAll();
  assert.equal(emitter.batches.length, 1);
  assert.equal(await dropped(registry, 'emit_failed'), 3);
  assert.equal(buffer.size, 0);
});

test('an emitter that throws synchronously is treated as retryable', async () => {
  const { emitter, timers, admit, registry, queue } = setup();
  emitter.throwNext = new Error('boom');
  admit('a', 'b', 'c');
  await flushPromises();
  assert.equal(await dropped(registry, 'emit_failed'), 0);
  const health = await queue.health();
  assert.equal(health.healthy, false);
  assert.match(health.message ?? '', /emit threw: boom/);
  timers.advance(100);
  assert.deepEqual(emitter.batches, [
    ['a', 'b', 'c'],
    ['a', 'b', 'c'],
  ]);
  await emitter.answer(EmitResults.success());
  assert.equal(await forwarded(registry), 3);
  assert.equal(queue.lastBatchSucceeded, true);
});

test('an emit promise that rejects is treated as retryable', async () => {
  const { emitter, timers, admit, registry } = setup();
  admit('a', 'b', 'c');
  await emitter.answer(new Error('socket closed'));
  timers.advance(100);
  assert.equal(emitter.batches.length, 2);
  assert.equal(await dropped(registry, 'emit_failed'), 0);
});

test('polku_events_forwarded_total counts delivered events for the emitter', async () => {
  const { emitter, timers, admit, registry } = setup();
  admit('a', 'b', 'c', 'd');
  await emitter.answer(EmitResults.success());
  timers.advance(50);
  assert.deepEqual(emitter.batches.at(-1), ['d']);
  assert.equal(await forwarded(registry), 3, 'the batch in flight is not counted yet');
  await emitter.answer(EmitResults.success());
  assert.equal(await forwarded(registry), 4);
});

test('whenIdle resolves at once when nothing is queued', async () => {
  const { queue } = setup();
  let idle = false;
  void queue.whenIdle().then(() => (idle = true));
  await flushPromises();
  assert.equal(idle, true);
});

test('whenIdle resolves only after the last batch settled', async () => {
  const { emitter, timers, admit, queue } = setup();
  admit('a', 'b', 'c', 'd');
  let idle = false;
  void queue.whenIdle().then(() => (idle = true));
  await emitter.answer(EmitResults.success());
  assert.equal(idle, false, 'd is still pending');
  timers.advance(50);
  await flushPromises();
  assert.equal(idle, false, 'd is in flight');
  await emitter.answer(EmitResults.success());
  assert.equal(idle, true);
});

test('abandon returns the number of undelivered events and empties the buffer', async () => {
  const { emitter, timers, admit, queue, buffer } = setup();
  admit('a', 'b', 'c');
  await emitter.answer(EmitResults.retryable('down')); // a, b, c wait for a retry
  admit('d', 'e'); // pending
  assert.equal(queue.abandon(), 5);
  assert.equal(buffer.size, 0);
  assert.equal(buffer.bytes, 0);
  assert.equal(queue.depth, 0);
  timers.advance(60_000);
  assert.equal(emitter.batches.length, 1, 'nothing is sent after abandoning');
});

test('whenIdle waiters resolve once abandon has emptied the queue', async () => {
  const { admit, queue } = setup();
  admit('a'); // waits for the flush timer
  let idle = false;
  void queue.whenIdle().then(() => (idle = true));
  queue.abandon();
  await flushPromises();
  assert.equal(idle, true);
});

test('startDraining sends a partial batch without waiting for the timer', async () => {
  const { emitter, timers, admit, queue } = setup();
  admit('a');
  assert.equal(timers.pending, 1);
  queue.startDraining();
  assert.deepEqual(emitter.batches, [['a']]);
  assert.equal(timers.pending, 0, 'the flush timer is cancelled');
  admit('b');
  await emitter.answer(EmitResults.success());
  assert.deepEqual(emitter.batches, [['a'], ['b']], 'while draining, what is pending goes out next');
});

test('an event evicted by drop_oldest while it waited is not sent', () => {
  const { emitter, timers, admit, buffer } = setup({}, { capacity: 2 });
  admit('old', 'newer');
  assert.equal(buffer.evictFor(100).evicted, 1);
  timers.advance(50);
  assert.deepEqual(emitter.batches, [['newer']]);
});
