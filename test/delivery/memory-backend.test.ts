import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EventBufferOptions } from '../../src/buffer/event-buffer.js';
import type { Admission } from '../../src/delivery/delivery-backend.js';
import { MemoryBackend } from '../../src/delivery/memory-backend.js';
import type { EmitResult, Emitter } from '../../src/emit/emitter.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { BatchOutcome } from '../../src/hub/batch-outcome.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry, DropCounter } from '../../src/observability/metrics.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';

/** An emitter that never answers: whatever it is sent stays in flight. */
class StuckEmitter implements Emitter {
  constructor(readonly name: string) {}
  emit(): Promise<EmitResult> {
    return new Promise(() => {});
  }
}

function backend(buffer: Partial<EventBufferOptions>) {
  const registry = createRegistry();
  const clock = new FakeClock();
  const drops = new DropCounter(registry);
  const memory = new MemoryBackend({
    buffer: { capacity: 2, maxBytes: 1_000_000, overflow: 'reject', ...buffer },
    delivery: { batchSize: 10, flushIntervalMs: 1_000, maxAttempts: 3 },
    emitters: [
      { emitter: new StuckEmitter('a'), isDefault: true },
      { emitter: new StuckEmitter('b'), isDefault: false },
    ],
    registry,
    clock,
    timers: new FakeTimers(clock),
    logger: silentLogger(),
    drops,
    eventsProcessed: () => 0n,
  });
  const admit = (...events: Array<{ id: string; routeTo?: string[] }>) => {
    const outcome = new BatchOutcome(drops);
    const refusedLater: string[] = [];
    const admission: Admission = {
      events: events.map((e) => Event.fromPartial(e)),
      outcome,
      unary: false,
      refusedLater: (e) => refusedLater.push(e.id),
    };
    const settled = memory.admit(admission);
    return { settled, outcome, refusedLater };
  };
  return { memory, admit };
}

describe('MemoryBackend', () => {
  test('routes by route_to, refuses the unroutable, and answers without a promise', () => {
    const { memory, admit } = backend({ capacity: 10 });
    const { settled, outcome } = admit({ id: 'x' }, { id: 'y', routeTo: ['b'] }, { id: 'z', routeTo: ['nowhere'] });
    assert.equal(settled, undefined, 'no promise for a batch that fits');
    assert.deepEqual(outcome.eventIds, ['x', 'y']);
    assert.deepEqual(
      outcome.errors.map((e) => [e.eventId, e.code]),
      [['z', 'UNROUTABLE']],
    );
    const stats = memory.stats();
    assert.equal(stats.buffer.events, 2);
    assert.deepEqual(
      stats.emitters.map((q) => [q.name, q.isDefault]),
      [
        ['a', true],
        ['b', false],
      ],
    );
    assert.equal(stats.durable, null);
    assert.equal(memory.bufferSize, 2);
    assert.equal(memory.bufferCapacity, 10);
  });

  test('reject refuses what does not fit, BUFFER_FULL, and reports it as refused after middleware', () => {
    const { admit } = backend({ capacity: 2, overflow: 'reject' });
    const { outcome, refusedLater } = admit({ id: '1' }, { id: '2' }, { id: '3' });
    assert.deepEqual(outcome.eventIds, ['1', '2']);
    assert.deepEqual(
      outcome.errors.map((e) => [e.eventId, e.code]),
      [['3', 'BUFFER_FULL']],
    );
    assert.deepEqual(refusedLater, ['3']);
  });

  test('block makes a streamed batch wait for room; drain ends the wait with SHUTTING_DOWN', async () => {
    const { memory, admit } = backend({ capacity: 1, overflow: 'block' });
    const { settled, outcome, refusedLater } = admit({ id: '1' }, { id: '2' });
    assert.ok(settled instanceof Promise, 'the batch waits');
    assert.equal(memory.stats().buffer.blockedWriters, 1);
    const report = await memory.drain(10);
    await settled;
    assert.deepEqual(outcome.eventIds, ['1']);
    assert.deepEqual(
      outcome.errors.map((e) => e.code),
      ['SHUTTING_DOWN'],
    );
    assert.deepEqual(refusedLater, ['2']);
    assert.deepEqual(report, { drained: false, undelivered: 1 });
  });

  test('removing an emitter takes it out of routing at once', () => {
    const { memory, admit } = backend({ capacity: 10 });
    assert.equal(memory.removeEmitter('b'), true);
    assert.equal(memory.removeEmitter('b'), false);
    assert.deepEqual(memory.emitterNames, ['a']);
    assert.deepEqual(
      admit({ id: 'y', routeTo: ['b'] }).outcome.errors.map((e) => e.code),
      ['UNROUTABLE'],
    );
  });
});
