import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { K8sEvent, K8sEventBatch } from '../../src/gen/polku/v1/gateway.js';
import { EventBatch, RawK8sEvent } from '../../src/gen/portti/v1/raw.js';
import { decodeRefusalOf } from '../../src/ingest/event-decoder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';
import { guarded, UnreadableMessage } from '../../src/receive/message-framing.js';
import { porttiEventType, readK8sEvent, readK8sEventBatch } from '../../src/receive/portti/k8s-event.js';
import { readPorttiBatch } from '../../src/receive/portti/portti-batch.js';
import { fuzzRuns } from './runs.js';

/** Surrogate halves are not UTF-8: keep only strings an encoder sends faithfully. */
const text = (maxLength: number) => fc.string({ unit: 'grapheme', maxLength });

const anyK8sEvent: fc.Arbitrary<K8sEvent> = fc.record({
  id: text(10),
  timestampUnixNano: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  resource: fc.oneof(fc.constantFrom('Deployment', 'RESOURCE_POD', 'configmap', 'PersistentVolumeClaim', ''), text(8)),
  action: fc.oneof(fc.constantFrom('UPDATE', 'ACTION_CREATE', 'delete', ''), text(6)),
  namespace: text(6),
  name: text(8),
  object: fc.uint8Array({ maxLength: 24 }),
  oldObject: fc.uint8Array({ maxLength: 24 }),
  clusterId: text(6),
});

const limitsArb = fc.record({ maxBatchEvents: fc.integer({ min: 1, max: 8 }) });
const withLimits = (l: { maxBatchEvents: number }): IntakeLimits => ({ ...DEFAULT_LIMITS, ...l });

/** Byte mutations of a valid message: flips, a cut, junk inserted. */
const mutated = (base: fc.Arbitrary<Uint8Array>) =>
  fc
    .tuple(
      base,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      fc.uint8Array({ maxLength: 6 }),
    )
    .map(([bytes, flips, cut, junk]) => {
      const b = Buffer.from(bytes);
      for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
      const at = b.length === 0 ? 0 : cut % b.length;
      return cut % 3 === 0 ? b.subarray(0, at) : Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
    });

const k8sBatchBytes = fc
  .tuple(fc.array(anyK8sEvent, { maxLength: 10 }), text(6))
  .map(([events, clusterId]) => Buffer.from(K8sEventBatch.encode({ events, clusterId }).finish()));

test('K8sEventBatch: valid batches decode as the generated decoder reads them, within the event limit', () => {
  fc.assert(
    fc.property(fc.array(anyK8sEvent, { maxLength: 10 }), text(6), limitsArb, (events, clusterId, l) => {
      const bytes = K8sEventBatch.encode({ events, clusterId }).finish();
      const got = readK8sEventBatch(bytes, withLimits(l));
      if (events.length > l.maxBatchEvents) {
        assert.ok(got instanceof UnreadableMessage && got.code === 'BATCH_TOO_LARGE');
        return;
      }
      assert.ok(!(got instanceof UnreadableMessage));
      const reference = K8sEventBatch.decode(bytes);
      assert.equal(got.cluster, reference.clusterId);
      assert.equal(got.events.length, reference.events.length);
      for (let i = 0; i < reference.events.length; i++) {
        const e: Event = got.events[i]!;
        const r = reference.events[i]!;
        assert.equal(decodeRefusalOf(e), undefined);
        assert.equal(e.id, r.id);
        assert.equal(e.timestampUnixNs, r.timestampUnixNano);
        assert.equal(e.eventType, porttiEventType(r.resource, r.action));
        assert.equal(e.eventType.split('.').length, 3, 'always three levels');
        assert.deepEqual(K8sEvent.decode(e.payload), r, 'the payload is the K8sEvent, every field kept');
      }
    }),
    { numRuns: fuzzRuns() },
  );
});

test('the PORTTI deserializers never throw, and never return more events than the limit', () => {
  fc.assert(
    fc.property(fc.oneof(mutated(k8sBatchBytes), fc.uint8Array({ maxLength: 64 })), limitsArb, (bytes, l) => {
      const limits = withLimits(l);
      const buf = Buffer.from(bytes);
      const batch = guarded((b) => readK8sEventBatch(b, limits), 'K8sEventBatch', limits.maxMessageBytes)(buf);
      if (!(batch instanceof UnreadableMessage)) assert.ok(batch.events.length <= l.maxBatchEvents);
      guarded((b) => readK8sEvent(b), 'K8sEvent', limits.maxMessageBytes)(buf);
      const portti = guarded((b) => readPorttiBatch(b, limits), 'portti.v1.EventBatch', limits.maxMessageBytes)(buf);
      if (!(portti instanceof UnreadableMessage)) {
        assert.ok(portti.events <= l.maxBatchEvents);
        assert.equal(portti.data, buf, 'the bytes as received, not a copy');
      }
    }),
    { numRuns: fuzzRuns() },
  );
});

test('portti.v1.EventBatch: the receiver counts the events and reads cluster_id as the generated decoder does', () => {
  const rawEvent = fc.record({ id: text(8), name: text(8), object: fc.uint8Array({ maxLength: 16 }) });
  fc.assert(
    fc.property(fc.array(rawEvent, { maxLength: 10 }), text(6), text(6), limitsArb, (events, source, clusterId, l) => {
      const bytes = EventBatch.encode({ events: events.map((e) => RawK8sEvent.fromPartial(e)), source, clusterId }).finish();
      const got = readPorttiBatch(bytes, withLimits(l));
      if (events.length > l.maxBatchEvents) {
        assert.ok(got instanceof UnreadableMessage && got.code === 'BATCH_TOO_LARGE');
        return;
      }
      assert.ok(!(got instanceof UnreadableMessage));
      assert.equal(got.events, events.length);
      assert.equal(got.cluster, EventBatch.decode(bytes).clusterId);
      assert.equal(got.data, bytes);
    }),
    { numRuns: fuzzRuns() },
  );
});
