import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { EmitResults } from '../../src/emit/emitter.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { intakeOfBatch, intakeOfUnreadable } from '../../src/hub/polku-messages.js';
import { decodeRefusalOf } from '../../src/ingest/event-decoder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { batchDeserializer, UnreadableMessage, type ReceivedBatch } from '../../src/receive/polku-gateway/message-codec.js';
import { fuzzRuns } from './runs.js';

/** Events as an agent builds them: any valid UTF-8 text, any bytes, in-contract enums. */
const anyEvent: fc.Arbitrary<Event> = fc.record({
  id: fc.string({ unit: 'grapheme', maxLength: 12 }),
  timestampUnixNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  source: fc.string({ unit: 'binary', maxLength: 8 }),
  eventType: fc.string({ maxLength: 8 }),
  metadata: fc
    .dictionary(fc.string({ unit: 'binary', maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 6 }), { maxKeys: 4 })
    .map((m) => ({ ...m })),
  payload: fc.uint8Array({ maxLength: 16 }),
  routeTo: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  severity: fc.integer({ min: 0, max: 5 }),
  outcome: fc.integer({ min: 0, max: 4 }),
});

/** Surrogate halves are not UTF-8: the generator keeps only what an encoder can send faithfully. */
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8') === s;
const faithful = (e: Event) => [e.id, e.source, e.eventType, ...Object.entries(e.metadata).flat(), ...e.routeTo].every(wellFormed);

const encodeBatch = (events: Event[], source = 'agent'): Buffer => {
  const w = new BinaryWriter().uint32(10).string(source).uint32(34).fork();
  for (const e of events) w.uint32(10).bytes(Event.encode(e).finish());
  return Buffer.from(w.join().finish());
};

const limitsArb = fc.record({ maxBatchEvents: fc.integer({ min: 1, max: 12 }), maxEventBytes: fc.integer({ min: 16, max: 400 }) });
const withLimits = (l: { maxBatchEvents: number; maxEventBytes: number }): IntakeLimits => ({ ...DEFAULT_LIMITS, ...l });

const eventsOf = (r: ReceivedBatch): Event[] => (r.batch.payload?.$case === 'events' ? r.batch.payload.value.events : []);

/** Byte mutations: flips, truncation, insertion of junk. */
const mutated = (base: fc.Arbitrary<Buffer>) =>
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

/** Field-1 entries in the message's `events` payloads, by an independent scan (only for messages whose framing holds). */
function referenceCount(bytes: Uint8Array): number {
  const r = new BinaryReader(bytes);
  let n = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag !== 34) {
      r.skip(tag & 7, tag >>> 3);
      continue;
    }
    const inner = new BinaryReader(r.bytes());
    while (inner.pos < inner.len) {
      const t = inner.uint32();
      if (t === 10) n++;
      inner.skip(t & 7, t >>> 3);
    }
  }
  return n;
}

const sink = hub()
  .emitter({ name: 'sink', emit: () => Promise.resolve(EmitResults.success()) })
  .buffer({ capacity: 1_000_000, overflow: 'drop_oldest' })
  .build({ registry: createRegistry(), logger: silentLogger(), limits: { ...DEFAULT_LIMITS, maxBatchEvents: 12 } });
await sink.start();

test('valid batches round-trip exactly (every UTF-8 string, every enum value), or are refused whole past maxBatchEvents', () => {
  fc.assert(
    fc.property(fc.array(anyEvent.filter(faithful), { maxLength: 14 }), limitsArb, (events, l) => {
      const limits = withLimits({ ...l, maxEventBytes: 1 << 20 });
      const r = batchDeserializer(1 << 22, limits)(encodeBatch(events));
      if (events.length > limits.maxBatchEvents) {
        assert.ok(r instanceof UnreadableMessage);
        assert.equal(r.code, 'BATCH_TOO_LARGE');
        return;
      }
      assert.ok(!(r instanceof UnreadableMessage), r instanceof UnreadableMessage ? r.message : '');
      const got = eventsOf(r);
      assert.equal(got.length, events.length);
      got.forEach((e, i) => {
        assert.equal(decodeRefusalOf(e), undefined);
        assert.deepEqual({ ...e, payload: Buffer.from(e.payload) }, { ...events[i]!, payload: Buffer.from(events[i]!.payload) });
      });
    }),
    { numRuns: fuzzRuns() },
  );
});

test('mutated batches never throw, never yield more events than the limit, and every event is accounted for', async () => {
  await fc.assert(
    fc.asyncProperty(mutated(fc.array(anyEvent, { maxLength: 14 }).map((e) => encodeBatch(e))), limitsArb, async (bytes, l) => {
      const limits = withLimits(l);
      const r = batchDeserializer(1 << 22, limits)(bytes); // throws would fail the property
      if (r instanceof UnreadableMessage) {
        assert.ok(['INVALID_BATCH', 'BATCH_TOO_LARGE'].includes(r.code));
        const ack = await sink.submit(intakeOfUnreadable(r, { unary: false }));
        assert.equal(ack.eventIds.length + ack.errors.length, 1);
        return;
      }
      const events = eventsOf(r);
      assert.ok(events.length <= limits.maxBatchEvents);
      assert.equal(events.length, referenceCount(bytes), 'one event (accepted or refused) per event field sent');
      for (const e of events) {
        const refusal = decodeRefusalOf(e);
        if (refusal) assert.ok(['INVALID_EVENT', 'PAYLOAD_TOO_LARGE', 'METADATA_TOO_LARGE'].includes(refusal.code));
        else assert.ok(e.severity >= 0 && e.severity <= 5 && e.outcome >= 0 && e.outcome <= 4);
      }
      const ack = await sink.submit(intakeOfBatch(r.batch, undefined, r.wire));
      // A message without a payload (INVALID_BATCH) or with raw bytes no ingestor claims is refused as one.
      const sent = r.batch.payload?.$case === 'events' ? events.length : 1;
      assert.equal(ack.eventIds.length + ack.errors.length, sent, 'accepted + refused = events in the message');
    }),
    { numRuns: fuzzRuns() },
  );
});

test('an id of arbitrary bytes is accepted exactly when it is UTF-8, and then decodes to exactly that text', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (idBytes) => {
      const event = new BinaryWriter().uint32(10).bytes(idBytes).uint32(34).string('t').finish();
      const bytes = Buffer.from(new BinaryWriter().uint32(34).fork().uint32(10).bytes(event).join().finish());
      const r = batchDeserializer(1 << 22)(bytes);
      assert.ok(!(r instanceof UnreadableMessage));
      const [e] = eventsOf(r);
      if (isUtf8(idBytes)) {
        assert.equal(decodeRefusalOf(e!), undefined);
        assert.deepEqual(Buffer.from(e!.id, 'utf8'), Buffer.from(idBytes));
      } else {
        assert.deepEqual(decodeRefusalOf(e!), { code: 'INVALID_EVENT', message: 'id is not valid UTF-8', id: '' });
      }
    }),
    { numRuns: fuzzRuns() },
  );
});

test('concatenated batches merge: the events of all, in order', () => {
  fc.assert(
    fc.property(fc.array(fc.array(anyEvent.filter(faithful), { maxLength: 4 }), { minLength: 1, maxLength: 4 }), (parts) => {
      const bytes = Buffer.concat(parts.map((p, i) => encodeBatch(p, `s${i}`)));
      const r = batchDeserializer(1 << 22, withLimits({ maxBatchEvents: 16, maxEventBytes: 1 << 20 }))(bytes);
      assert.ok(!(r instanceof UnreadableMessage));
      assert.deepEqual(
        eventsOf(r).map((e) => e.id),
        parts.flat().map((e) => e.id),
      );
      assert.equal(r.batch.source, `s${parts.length - 1}`);
    }),
    { numRuns: fuzzRuns() },
  );
});
