import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Timers } from '../../src/clock.js';
import { emitResponseToResult, externalEmitter } from '../../src/emit/external.js';
import { buildComponent } from '../../src/registry/plugin-component.js';
import type { PluginSpec } from '../../src/registry/plugin-spec.js';
import { isPolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { externalIngestor } from '../../src/ingest/external.js';
import { pluginTarget } from '../../src/plugin-client/address.js';
import { ConcurrencyLimiter } from '../../src/plugin-client/limiter.js';

/** Real timers that keep the test alive (the system ones are unref'd). */
const timers: Timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
const events = (...ids: string[]) => ids.map((id) => Event.fromPartial({ id }));

/** Asserts `fn` throws POLKU_ERR_PIPELINE_INVALID with a message matching `pattern`. */
function refuses(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isPolkuError(err), String(err));
    assert.equal(err.code, 'POLKU_ERR_PIPELINE_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('plugin addresses', () => {
  test('host:port, http://host:port and bracketed IPv6 become grpc-js targets', () => {
    assert.equal(pluginTarget('p', 'localhost:9001'), 'localhost:9001');
    assert.equal(pluginTarget('p', 'http://plugins.internal:9002'), 'plugins.internal:9002');
    assert.equal(pluginTarget('p', 'HTTP://10.0.0.7:80/'), '10.0.0.7:80');
    assert.equal(pluginTarget('p', '[::1]:50051'), '[::1]:50051');
    assert.equal(pluginTarget('p', 'http://[fe80::1%eth0]:7'), '[fe80::1%eth0]:7');
  });

  test('https, other schemes, empty and malformed addresses are refused at construction, naming the plugin', () => {
    refuses(() => pluginTarget('csv', 'https://host:443'), /plugin "csv".*https:\/\/.*not support/);
    refuses(() => pluginTarget('csv', ''), /plugin "csv".*empty/);
    refuses(() => pluginTarget('csv', '   '), /empty/);
    refuses(() => pluginTarget('csv', 'unix:///tmp/sock'), /unsupported scheme unix/);
    refuses(() => pluginTarget('csv', 'grpc://h:1'), /unsupported scheme grpc/);
    refuses(() => pluginTarget('csv', 'localhost'), /not host:port/);
    refuses(() => pluginTarget('csv', 'localhost:'), /not host:port/);
    refuses(() => pluginTarget('csv', 'http://h:1/path'), /not host:port/);
    refuses(() => pluginTarget('csv', 'h:0'), /port 0/);
    refuses(() => pluginTarget('csv', 'h:70000'), /port 70000/);
    refuses(() => pluginTarget('csv', '::1:50051'), /brackets/);
    refuses(() => externalIngestor('csv', 'https://h:1'), /plugin "external:csv"/);
    refuses(() => externalEmitter('audit', 'nope'), /plugin "audit"/);
  });

  test('options are checked when the pipeline is built', () => {
    refuses(() => externalIngestor([], 'h:1'), /sources/);
    refuses(() => externalIngestor('csv', 'h:1', { callTimeoutMs: 0 }), /callTimeoutMs must be a positive number/);
    refuses(() => externalIngestor('csv', 'h:1', { maxConcurrency: 1.5 }), /maxConcurrency must be a positive integer/);
    refuses(() => externalEmitter('', 'h:1'), /non-empty name/);
    refuses(() => externalEmitter('x', 'h:1', { connectTimeoutMs: -1 }), /connectTimeoutMs/);
    refuses(() => externalEmitter('x', 'h:1', { maxCallsInFlight: 0 }), /maxCallsInFlight must be a positive integer/);
    refuses(() => externalEmitter('x', 'h:1', { minEventsPerCall: 2.5 }), /minEventsPerCall must be a positive integer/);
    refuses(() => externalEmitter('x', 'h:1', { maxCallBytes: -1 }), /maxCallBytes must be a positive integer/);
    refuses(() => externalEmitter('x', 'h:1', { preferredBatchSize: 0 }), /preferredBatchSize must be a positive integer/);
    // Fewer, larger Emit calls: the queue takes 4,000 events per batch unless told otherwise.
    assert.equal(externalEmitter('x', 'h:1').preferredBatchSize, 4_000);
    assert.equal(externalEmitter('x', 'h:1', { preferredBatchSize: 1_000 }).preferredBatchSize, 1_000);
    // A plugin that registers at run time gets the same batches (the wrapper forwards it).
    const auditSpec: PluginSpec = {
      name: 'audit',
      kind: 'emitter',
      address: '127.0.0.1:1',
      emitterName: 'audit',
      sources: [],
      version: '',
      description: '',
    };
    const registered = buildComponent(auditSpec, '127.0.0.1:1');
    assert.equal(registered.kind === 'emitter' ? registered.emitter.preferredBatchSize : undefined, 4_000);
    if (registered.kind === 'emitter') registered.emitter.close();
    const ingestor = externalIngestor(['csv', 'tsv'], 'h:1');
    assert.equal(ingestor.name, 'external:csv');
    assert.deepEqual(ingestor.sources, ['csv', 'tsv']);
    assert.equal(externalIngestor('csv', 'h:1', { name: 'csv-plugin' }).name, 'csv-plugin');
    assert.equal(externalEmitter('audit', 'h:1').name, 'audit');
  });

  test('a closed ingestor refuses batches as unavailable instead of throwing', async () => {
    const ingestor = externalIngestor('csv', '127.0.0.1:1');
    ingestor.close();
    const result = await ingestor.ingest({ source: 'csv', cluster: '', format: '' }, Buffer.from('a,b,c'));
    assert.deepEqual(result, { events: [], problems: [], unavailable: 'plugin at 127.0.0.1:1: the plugin client is closed' });
    assert.equal(ingestor.status().healthy, false);
  });
});

describe('ConcurrencyLimiter', () => {
  test('holds at most max slots; waiters get them first come, first served', async () => {
    const limiter = new ConcurrencyLimiter(2, () => timers);
    assert.equal(await limiter.acquire(1000), true);
    assert.equal(await limiter.acquire(1000), true);
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) => limiter.acquire(5_000).then((ok) => (ok ? order.push(n) : 0)));
    assert.equal(limiter.queued, 3);
    limiter.release();
    limiter.release();
    limiter.release();
    await Promise.all(waits);
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(limiter.inFlight, 2);
  });

  test('a waiter that runs out of time gets false and loses its place', async () => {
    const limiter = new ConcurrencyLimiter(1, () => timers);
    await limiter.acquire(10);
    assert.equal(await limiter.acquire(20), false);
    assert.equal(limiter.queued, 0);
    const next = limiter.acquire(5_000);
    limiter.release();
    assert.equal(await next, true);
    limiter.release();
    assert.equal(limiter.inFlight, 0);
  });
});

describe('emitResponseToResult', () => {
  const response = (r: {
    successCount?: bigint;
    failedEventIds?: string[];
    errors?: Array<{ eventId: string; message: string; retryable: boolean }>;
  }) => ({
    successCount: r.successCount ?? 0n,
    failedEventIds: r.failedEventIds ?? [],
    errors: r.errors ?? [],
  });

  test('failed ids and errors become exactly those indices, with the retryable flags given', () => {
    const reading = emitResponseToResult(
      events('a', 'b', 'c', 'd', 'e'),
      response({
        successCount: 2n,
        failedEventIds: ['b', 'd', 'e'],
        errors: [
          { eventId: 'd', message: 'bad payload', retryable: false },
          { eventId: 'b', message: 'busy', retryable: true },
        ],
      }),
    );
    assert.deepEqual(reading.result, {
      status: 'partial',
      failures: [
        { index: 1, retryable: true, error: 'busy' },
        { index: 3, retryable: false, error: 'bad payload' },
        { index: 4, retryable: true, error: 'no reason given' },
      ],
    });
    assert.equal(reading.countMismatch, undefined);
    assert.deepEqual(reading.unknownIds, []);
  });

  test('repeated ids fail their copies in batch order; unknown ids are ignored and reported', () => {
    const reading = emitResponseToResult(
      events('x', 'y', 'x', 'x'),
      response({ successCount: 2n, failedEventIds: ['x', 'x', 'zzz'], errors: [{ eventId: 'nobody', message: '?', retryable: false }] }),
    );
    assert.deepEqual(reading.result, {
      status: 'partial',
      failures: [
        { index: 0, retryable: true, error: 'no reason given' },
        { index: 2, retryable: true, error: 'no reason given' },
      ],
    });
    assert.deepEqual(reading.unknownIds, ['zzz', 'nobody']);
  });

  test('an error without a failed id still fails its event; success_count is only cross-checked', () => {
    const reading = emitResponseToResult(
      events('a', 'b'),
      response({ successCount: 2n, errors: [{ eventId: 'b', message: 'full', retryable: false }] }),
    );
    assert.deepEqual(reading.result, { status: 'partial', failures: [{ index: 1, retryable: false, error: 'full' }] });
    assert.deepEqual(reading.countMismatch, { successCount: '2', failures: 1, batch: 2 });
  });

  test('all failed: retryable or failed as a whole; nothing failed: success', () => {
    assert.equal(emitResponseToResult(events('a', 'b'), response({ failedEventIds: ['a', 'b'] })).result.status, 'retryable');
    const failed = emitResponseToResult(events('a'), response({ errors: [{ eventId: 'a', message: 'no', retryable: false }] }));
    assert.deepEqual(failed.result, { status: 'failed', error: 'no' });
    assert.deepEqual(emitResponseToResult(events('a', 'b'), response({ successCount: 2n })).result, { status: 'success' });
  });
});
