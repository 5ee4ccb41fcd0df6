import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OverflowPolicy } from '../../src/buffer/event-buffer.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PolkuError } from '../../src/errors.js';
import { DEFAULT_BUFFER, hub } from '../../src/hub/builder.js';
import { JsonIngestor } from '../../src/ingest/json.js';
import type { Middleware } from '../../src/middleware/middleware.js';

const pipelineInvalid = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PolkuError, 'throws a PolkuError');
  assert.equal(err.code, 'POLKU_ERR_PIPELINE_INVALID');
  assert.match(err.message, pattern);
  return true;
};

const memory = (name = 'memory') => new InMemoryEmitter({ name });

test('a pipeline without emitters is invalid', () => {
  const builder = hub().ingestor(new JsonIngestor());
  assert.throws(() => builder.definition(), pipelineInvalid(/no emitter/));
  assert.throws(() => builder.build(), pipelineInvalid(/no emitter/));
});

test('two emitters with the same name are invalid', () => {
  const builder = hub().emitter(memory('sink')).emitter(memory('other')).emitter(memory('sink'));
  assert.throws(() => builder.build(), pipelineInvalid(/two emitters are named "sink"/));
});

test('an emitter with an empty name is invalid', () => {
  assert.throws(() => hub().emitter(memory('')).build(), pipelineInvalid(/empty name/));
});

test('a middleware without process() is invalid', () => {
  const broken = { name: 'broken' } as unknown as Middleware;
  assert.throws(() => hub().emitter(memory()).middleware(broken).build(), pipelineInvalid(/"broken" has no process/));
});

test('a non-positive buffer capacity is invalid', () => {
  for (const capacity of [0, -5, 1.5]) {
    assert.throws(
      () => hub().emitter(memory()).buffer({ capacity }).build(),
      pipelineInvalid(new RegExp(`buffer\\.capacity must be a positive integer, got ${capacity}`)),
    );
  }
});

test('non-positive delivery settings are invalid', () => {
  assert.throws(() => hub().emitter(memory()).delivery({ batchSize: 0 }).build(), pipelineInvalid(/delivery\.batchSize/));
  assert.throws(
    () => hub().emitter(memory()).delivery({ flushIntervalMs: -1 }).build(),
    pipelineInvalid(/delivery\.flushIntervalMs must be 0 or more/),
  );
});

test('an unknown overflow policy is invalid, naming the policies', () => {
  assert.throws(
    () =>
      hub()
        .emitter(memory())
        .buffer({ overflow: 'maybe' as OverflowPolicy })
        .build(),
    pipelineInvalid(/buffer\.overflow must be one of reject, drop_oldest, block, got "maybe"/),
  );
});

test('an unknown default ingestor is invalid', () => {
  const builder = hub().ingestor(new JsonIngestor()).defaultIngestor('xml').emitter(memory());
  assert.throws(() => builder.build(), pipelineInvalid(/default ingestor "xml"/));
});

test('without settings anywhere the defaults apply', () => {
  const built = hub().emitter(memory()).build();
  assert.equal(built.stats().buffer.capacity, DEFAULT_BUFFER.capacity);
  assert.equal(built.stats().buffer.maxBytes, DEFAULT_BUFFER.maxBytes);
  assert.equal(built.stats().buffer.overflow, DEFAULT_BUFFER.overflow);
});

test('runtime settings passed to build() win over the defaults', () => {
  const built = hub()
    .emitter(memory())
    .build({ buffer: { ...DEFAULT_BUFFER, capacity: 50, overflow: 'block' } });
  assert.equal(built.stats().buffer.capacity, 50);
  assert.equal(built.stats().buffer.overflow, 'block');
  assert.equal(built.stats().buffer.maxBytes, DEFAULT_BUFFER.maxBytes);
});

test('builder settings win over the runtime settings, field by field', () => {
  const built = hub()
    .emitter(memory())
    .buffer({ capacity: 7 })
    .buffer({ overflow: 'drop_oldest' })
    .build({ buffer: { capacity: 50, maxBytes: 4096, overflow: 'block' } });
  assert.equal(built.stats().buffer.capacity, 7);
  assert.equal(built.stats().buffer.overflow, 'drop_oldest');
  assert.equal(built.stats().buffer.maxBytes, 4096, 'what the builder leaves unset comes from the runtime');
});

test('builder limits win over runtime limits, which win over the defaults', () => {
  const built = hub()
    .emitter(memory())
    .limits({ maxBatchEvents: 3 })
    .build({
      limits: { ...DEFAULT_LIMITS, maxMessageBytes: 2048, maxBatchEvents: 30, maxPayloadBytes: 64, maxMetadataBytes: 64, maxIdLength: 10 },
    });
  assert.equal(built.limits.maxBatchEvents, 3);
  assert.equal(built.limits.maxPayloadBytes, 64);
  assert.equal(built.limits.maxIdLength, 10);
});

test('a runtime setting the builder overrides cannot make the pipeline invalid', () => {
  const built = hub()
    .emitter(memory())
    .buffer({ capacity: 5 })
    .build({ buffer: { ...DEFAULT_BUFFER, capacity: 0 } });
  assert.equal(built.stats().buffer.capacity, 5);
});

test('emitters become queues in order, default unless registered otherwise', () => {
  const built = hub().emitter(memory('a')).emitter(memory('b'), { default: false }).build();
  assert.deepEqual(
    built.stats().emitters.map((q) => [q.name, q.isDefault]),
    [
      ['a', true],
      ['b', false],
    ],
  );
});

test('an emitter added to a running hub is a default one unless registered otherwise, as in the builder', () => {
  const built = hub().emitter(memory('a')).build();
  built.addEmitter(memory('b'));
  built.addEmitter(memory('c'), { default: false });
  assert.deepEqual(
    built.stats().emitters.map((q) => [q.name, q.isDefault]),
    [
      ['a', true],
      ['b', true],
      ['c', false],
    ],
  );
});

test('the definition lists the parts as they were added', () => {
  const json = new JsonIngestor();
  const sink = memory('sink');
  const definition = hub().ingestor(json).defaultIngestor('json').emitter(sink).definition();
  assert.deepEqual(definition.ingestors, [json]);
  assert.equal(definition.defaultIngestor, 'json');
  assert.deepEqual(definition.middleware, []);
  assert.deepEqual(definition.emitters, [{ emitter: sink, isDefault: true }]);
});
