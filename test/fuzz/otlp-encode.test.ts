import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeLogsRequest } from '../../src/emit/otlp-encode.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { decodeRecords } from '../emit/otlp-receiver.js';
import { fuzzRuns } from './runs.js';

// Keys from the vocabulary (resource, scope, trace, otel.attr.) and arbitrary ones, so every
// branch of the mapping is drawn.
const key = fc.oneof(
  fc.constantFrom(
    'service.name',
    'k8s.namespace.name',
    'k8s.pod.labels.app',
    'otel.scope.name',
    'otel.scope.version',
    'otel.attr.user.id',
    'otel.attr.event.name',
    'trace_id',
    'span_id',
    'severity_text',
    'polku.payload.format',
  ),
  fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }),
);
const value = fc.oneof(
  fc.string({ maxLength: 40, unit: 'grapheme' }),
  fc.constantFrom('json', 'text', '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7'),
);
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.json({ maxDepth: 4 }).map((j) => new Uint8Array(Buffer.from(j))),
  fc.string({ maxLength: 64, unit: 'grapheme' }).map((t) => new Uint8Array(Buffer.from(t))),
);
const event = fc.record({
  id: fc.string({ maxLength: 20 }),
  timestampUnixNs: fc.bigInt({ min: -1n, max: (1n << 63n) - 1n }),
  source: fc.string({ maxLength: 10 }),
  eventType: fc.string({ maxLength: 20 }),
  metadata: fc.dictionary(key, value, { maxKeys: 8 }),
  payload,
  severity: fc.integer({ min: 0, max: 5 }),
  outcome: fc.integer({ min: 0, max: 4 }),
});

test('every encoded request decodes with the official generated code: one record per event, in the order reported, ids and times kept', () => {
  fc.assert(
    fc.property(fc.array(event, { maxLength: 20 }), (drawn) => {
      const events = drawn.map((e) => Event.fromPartial(e));
      const { bytes, order } = encodeLogsRequest(events); // throws if the two passes disagree
      const records = decodeRecords(bytes);
      assert.equal(records.length, events.length);
      assert.deepEqual(
        [...order].sort((a, b) => a - b),
        events.map((_, i) => i),
      );
      for (let k = 0; k < records.length; k++) {
        const e = events[order[k]!]!;
        const r = records[k]!;
        assert.equal(r.attributes['log.record.uid'], e.id === '' ? undefined : e.id);
        assert.equal(r.timeUnixNano, String(e.timestampUnixNs > 0n ? e.timestampUnixNs : 0n));
        if (e.payload.length === 0) assert.equal(r.body, undefined);
      }
    }),
    { numRuns: fuzzRuns() },
  );
});
