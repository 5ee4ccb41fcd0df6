import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { Event } from '../../src/gen/polku/v1/event.js';
import { decodeRefusalOf } from '../../src/ingest/event-decoder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';
import { PassthroughIngestor } from '../../src/ingest/passthrough.js';
import type { IngestResult } from '../../src/ingest/ingestor.js';
import { fuzzRuns } from './runs.js';

const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8') === s;

const anyEvent: fc.Arbitrary<Event> = fc
  .record({
    id: fc.string({ unit: 'binary', maxLength: 10 }),
    timestampUnixNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    source: fc.string({ maxLength: 6 }),
    eventType: fc.string({ unit: 'grapheme', maxLength: 6 }),
    metadata: fc
      .dictionary(fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 4 }), { maxKeys: 3 })
      .map((m) => ({ ...m })),
    payload: fc.uint8Array({ maxLength: 12 }),
    routeTo: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
    severity: fc.integer({ min: 0, max: 5 }),
    outcome: fc.integer({ min: 0, max: 4 }),
  })
  .filter((e) => [e.id, e.eventType, ...Object.values(e.metadata)].every(wellFormed));

const delimited = (events: Event[]) => {
  const w = new BinaryWriter();
  for (const e of events) w.bytes(Event.encode(e).finish());
  return Buffer.from(w.finish());
};

const ingestor = new PassthroughIngestor();
const ingest = (data: Uint8Array, limits: IntakeLimits, format = 'protobuf-delimited'): IngestResult =>
  ingestor.ingest({ source: 's', cluster: '', format, limits }, data) as IngestResult;

const limitsArb = fc.record({ maxBatchEvents: fc.integer({ min: 1, max: 10 }), maxEventBytes: fc.integer({ min: 8, max: 300 }) });

/** Complete records before the first frame that overruns the data (an independent scan). */
function framedRecords(data: Uint8Array): { records: number; brokenFrame: boolean } {
  const r = new BinaryReader(data);
  let records = 0;
  try {
    while (r.pos < r.len) {
      const length = r.uint32();
      if (r.pos + length > r.len) return { records, brokenFrame: true };
      r.pos += length;
      records++;
    }
  } catch {
    return { records, brokenFrame: true };
  }
  return { records, brokenFrame: false };
}

test('valid delimited events round-trip exactly, or the message is refused BATCH_TOO_LARGE as one past maxBatchEvents', () => {
  fc.assert(
    fc.property(fc.array(anyEvent, { maxLength: 12 }), limitsArb, (events, l) => {
      const limits = { ...DEFAULT_LIMITS, ...l, maxEventBytes: 1 << 20 };
      const r = ingest(delimited(events), limits);
      assert.deepEqual(r.problems, []);
      if (events.length > limits.maxBatchEvents) {
        assert.equal(r.events.length, 1);
        assert.equal(decodeRefusalOf(r.events[0]!)?.code, 'BATCH_TOO_LARGE');
        return;
      }
      assert.equal(r.events.length, events.length);
      r.events.forEach((e, i) => {
        assert.equal(decodeRefusalOf(e), undefined);
        assert.deepEqual({ ...e, payload: Buffer.from(e.payload) }, { ...events[i]!, payload: Buffer.from(events[i]!.payload) });
      });
    }),
    { numRuns: fuzzRuns() },
  );
});

test('mutated delimited data never throws, never yields more than the limit, and accounts for every record', () => {
  fc.assert(
    fc.property(
      fc.array(anyEvent, { maxLength: 12 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      limitsArb,
      (events, flips, cut, l) => {
        const limits = { ...DEFAULT_LIMITS, ...l };
        const data = delimited(events);
        for (const [at, v] of flips) if (data.length > 0) data[at % data.length] = v;
        const bytes = cut % 2 === 0 ? data : data.subarray(0, data.length === 0 ? 0 : cut % data.length);
        const r = ingest(bytes, limits);
        const { records, brokenFrame } = framedRecords(bytes);
        if (records > limits.maxBatchEvents) {
          assert.equal(r.events.length, 1);
          assert.equal(decodeRefusalOf(r.events[0]!)?.code, 'BATCH_TOO_LARGE');
          assert.deepEqual(r.problems, []);
          return;
        }
        assert.ok(r.events.length <= limits.maxBatchEvents);
        // Each complete record is an event (accepted or refused in place) or a PARSE_ERROR problem;
        // a broken frame is one more problem.
        assert.equal(r.events.length + r.problems.length, records + (brokenFrame ? 1 : 0));
        for (const e of r.events) {
          const refusal = decodeRefusalOf(e);
          if (!refusal) assert.ok(e.severity <= 5 && e.outcome <= 4 && e.severity >= 0 && e.outcome >= 0);
        }
      },
    ),
    { numRuns: fuzzRuns() },
  );
});

test('a single protobuf Event of arbitrary bytes never throws and gives exactly one event or one problem', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), limitsArb, (bytes, l) => {
      const r = ingest(bytes, { ...DEFAULT_LIMITS, ...l }, 'protobuf');
      assert.equal(r.events.length + r.problems.length, 1);
    }),
    { numRuns: fuzzRuns() },
  );
});
