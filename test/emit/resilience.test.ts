import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EmitResults, type EmitResult, type Emitter } from '../../src/emit/emitter.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { withCircuitBreaker } from '../../src/emit/resilience/circuit-breaker.js';
import { withRetry } from '../../src/emit/resilience/retry.js';
import { withTimeout } from '../../src/emit/resilience/timeout.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { FakeClock, FakeTimers, flushPromises } from '../../src/testing/index.js';

/** Answers each call with the next scripted result (the last one repeats); records what it got. */
class ScriptedEmitter implements Emitter {
  readonly seen: string[][] = [];
  shutDown = false;
  constructor(
    readonly name: string,
    private readonly script: Array<EmitResult | (() => Promise<EmitResult>)>,
  ) {}
  emit(events: readonly Event[]): Promise<EmitResult> {
    this.seen.push(events.map((e) => e.id));
    const next = this.script.length > 1 ? this.script.shift()! : this.script[0]!;
    return typeof next === 'function' ? next() : Promise.resolve(next);
  }
  health() {
    return { healthy: true, message: 'scripted ok' };
  }
  async shutdown() {
    this.shutDown = true;
  }
}

const batch = (...ids: string[]) => ids.map((id) => Event.fromPartial({ id }));

function context(clock = new FakeClock(), timers = new FakeTimers(clock)) {
  return { clock, timers, registry: createRegistry(), logger: silentLogger() };
}

describe('withRetry', () => {
  test('sends again only the events that failed retryably; delivered ones are never resent', async () => {
    const inner = new ScriptedEmitter('dest', [
      EmitResults.partial([
        { index: 1, retryable: true, error: 'busy' },
        { index: 2, retryable: false, error: 'rejected' },
      ]),
      EmitResults.success(),
    ]);
    const retrying = withRetry(inner, { minTimeoutMs: 0, randomize: false });
    const result = await retrying.emit(batch('a', 'b', 'c', 'd'));
    assert.deepEqual(inner.seen, [['a', 'b', 'c', 'd'], ['b']]);
    assert.deepEqual(result, { status: 'partial', failures: [{ index: 2, retryable: false, error: 'rejected' }] });
  });

  test('maps failures of a retried subset back to the indices of the original batch', async () => {
    const inner = new ScriptedEmitter('dest', [
      EmitResults.partial([
        { index: 0, retryable: true, error: 'busy' },
        { index: 3, retryable: true, error: 'busy' },
      ]),
      EmitResults.partial([{ index: 1, retryable: true, error: 'still busy' }]),
    ]);
    const result = await withRetry(inner, { retries: 1, minTimeoutMs: 0 }).emit(batch('a', 'b', 'c', 'd'));
    assert.deepEqual(inner.seen, [
      ['a', 'b', 'c', 'd'],
      ['a', 'd'],
    ]);
    assert.deepEqual(result, { status: 'partial', failures: [{ index: 3, retryable: true, error: 'still busy' }] });
  });

  test('gives up after the configured retries and leaves the batch retryable', async () => {
    const inner = new ScriptedEmitter('dest', [EmitResults.retryable('down')]);
    const result = await withRetry(inner, { retries: 2, minTimeoutMs: 0 }).emit(batch('a'));
    assert.equal(inner.seen.length, 3);
    assert.deepEqual(result, { status: 'retryable', error: 'down' });
  });

  test('a failed result is final at once', async () => {
    const inner = new ScriptedEmitter('dest', [EmitResults.failed('bad request')]);
    const result = await withRetry(inner, { minTimeoutMs: 0 }).emit(batch('a', 'b'));
    assert.equal(inner.seen.length, 1);
    assert.deepEqual(result, { status: 'failed', error: 'bad request' });
  });

  test('a deadline of zero allows no retry', async () => {
    const inner = new ScriptedEmitter('dest', [EmitResults.retryable('down')]);
    await withRetry(inner, { deadlineMs: 0, minTimeoutMs: 0 }).emit(batch('a'));
    assert.equal(inner.seen.length, 1);
  });

  test("waits out the receiver's retry-after before the next attempt", async () => {
    const ctx = context();
    const inner = new ScriptedEmitter('dest', [EmitResults.retryable('slow down', 5_000), EmitResults.success()]);
    const retrying = withRetry(inner, { minTimeoutMs: 0 });
    retrying.init(ctx);
    const done = retrying.emit(batch('a'));
    await flushPromises();
    ctx.timers.advance(4_999);
    await flushPromises();
    assert.equal(inner.seen.length, 1, 'not before 5 s');
    ctx.timers.advance(1);
    assert.deepEqual(await done, { status: 'success' });
    assert.equal(inner.seen.length, 2);
  });

  test('a throwing emitter counts as retryable', async () => {
    let calls = 0;
    const inner: Emitter = {
      name: 'thrower',
      emit: () => {
        calls++;
        if (calls === 1) throw new Error('boom');
        return Promise.resolve(EmitResults.success());
      },
    };
    assert.deepEqual(await withRetry(inner, { minTimeoutMs: 0 }).emit(batch('a')), { status: 'success' });
    assert.equal(calls, 2);
  });
});

describe('withCircuitBreaker', () => {
  test('opens after N failed batches and then answers retryable without calling the destination', async () => {
    const ctx = context();
    const inner = new ScriptedEmitter('dest', [EmitResults.retryable('down')]);
    const breaker = withCircuitBreaker(inner, { failureThreshold: 3, resetTimeoutMs: 10_000 });
    breaker.init(ctx);
    for (let i = 0; i < 3; i++) await breaker.emit(batch(`e${i}`));
    assert.equal(breaker.state, 'open');
    ctx.clock.advance(4_000);
    const shortCircuited = await breaker.emit(batch('x'));
    assert.equal(inner.seen.length, 3, 'the destination was not called');
    assert.deepEqual(shortCircuited, { status: 'retryable', error: 'circuit open after 3 consecutive failures', retryAfterMs: 6_000 });
    assert.deepEqual(await breaker.health(), { healthy: false, message: 'circuit open' });
    const gauge = await ctx.registry.getSingleMetric('polku_circuit_state')!.get();
    assert.equal(gauge.values.find((v) => v.labels['emitter'] === 'dest')?.value, 1);
  });

  test('after the reset timeout one probe goes through: success closes, failure reopens', async () => {
    const ctx = context();
    const inner = new ScriptedEmitter('dest', [
      EmitResults.failed('x'),
      EmitResults.failed('x'),
      EmitResults.failed('probe fails'),
      EmitResults.success(),
    ]);
    const breaker = withCircuitBreaker(inner, { failureThreshold: 2, resetTimeoutMs: 1_000 });
    breaker.init(ctx);
    await breaker.emit(batch('a'));
    await breaker.emit(batch('b'));
    assert.equal(breaker.state, 'open');
    ctx.clock.advance(1_000);
    await breaker.emit(batch('probe-1'));
    assert.equal(breaker.state, 'open', 'a failed probe opens the circuit again');
    ctx.clock.advance(1_000);
    assert.deepEqual(await breaker.emit(batch('probe-2')), { status: 'success' });
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(inner.seen, [['a'], ['b'], ['probe-1'], ['probe-2']]);
    const transitions = await ctx.registry.getSingleMetric('polku_circuit_transitions_total')!.get();
    const to = (state: string) => transitions.values.find((v) => v.labels['to'] === state)?.value;
    assert.deepEqual([to('open'), to('half_open'), to('closed')], [2, 2, 1]);
  });

  test('a partial result that delivered something resets the failure count', async () => {
    const ctx = context();
    const inner = new ScriptedEmitter('dest', [
      EmitResults.retryable('down'),
      EmitResults.partial([{ index: 0, retryable: true, error: 'one failed' }]),
      EmitResults.retryable('down'),
    ]);
    const breaker = withCircuitBreaker(inner, { failureThreshold: 2 });
    breaker.init(ctx);
    await breaker.emit(batch('a'));
    await breaker.emit(batch('b', 'c'));
    await breaker.emit(batch('d'));
    assert.equal(breaker.state, 'closed');
  });
});

describe('withTimeout', () => {
  test('a batch that takes too long is answered retryable', async () => {
    const ctx = context();
    const inner = new ScriptedEmitter('dest', [() => new Promise<EmitResult>(() => {})]);
    const bounded = withTimeout(inner, { timeoutMs: 2_000 });
    bounded.init(ctx);
    const result = bounded.emit(batch('a'));
    ctx.timers.advance(2_000);
    assert.deepEqual(await result, { status: 'retryable', error: 'timed out after 2000 ms' });
  });

  test('a batch answered in time passes its result through and clears the timer', async () => {
    const ctx = context();
    const inner = new ScriptedEmitter('dest', [EmitResults.partial([{ index: 0, retryable: false, error: 'no' }])]);
    const bounded = withTimeout(inner, { timeoutMs: 2_000 });
    bounded.init(ctx);
    const result = await bounded.emit(batch('a', 'b'));
    assert.deepEqual(result, { status: 'partial', failures: [{ index: 0, retryable: false, error: 'no' }] });
    assert.equal(ctx.timers.pending, 0);
  });
});

describe('wrappers keep the inner emitter', () => {
  test('name, health and shutdown pass through a stack of wrappers', async () => {
    const inner = new ScriptedEmitter('slack', [EmitResults.success()]);
    const stacked = withCircuitBreaker(withRetry(withTimeout(inner, { timeoutMs: 1_000 })));
    assert.equal(stacked.name, 'slack');
    assert.deepEqual(await stacked.health(), { healthy: true, message: 'scripted ok' });
    await stacked.shutdown();
    assert.equal(inner.shutDown, true);
  });

  test('route_to still reaches a wrapped emitter by its own name', async () => {
    const memory = new InMemoryEmitter({ name: 'audit' });
    const other = new InMemoryEmitter({ name: 'other' });
    const h = hub()
      .emitter(withCircuitBreaker(withRetry(memory)), { default: false })
      .emitter(other)
      .delivery({ batchSize: 1, flushIntervalMs: 0 })
      .build();
    const ack = await h.processBatch({
      source: 's',
      cluster: '',
      payload: { $case: 'events', value: { events: [Event.fromPartial({ id: 'to-audit', routeTo: ['audit'] })] } },
    });
    assert.deepEqual(ack.eventIds, ['to-audit']);
    await memory.waitForCount(1);
    assert.deepEqual(
      memory.events.map((e) => e.id),
      ['to-audit'],
    );
    assert.equal(other.count, 0);
  });
});
