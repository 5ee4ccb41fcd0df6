import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { EmitRequest } from '../../src/gen/polku/v1/plugin.js';
import { encodeEmitRequest } from '../../src/plugin-client/emit-request.js';
import { fuzzRuns } from './runs.js';

// Strings of every kind: ASCII, any code point (binary: lone surrogates too), short and past the
// encoder's 64-character fast path.
const text = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ maxLength: 80, unit: 'grapheme' }),
  fc.string({ maxLength: 80, unit: 'binary' }),
  fc.string({ maxLength: 8, unit: 'binary-ascii' }),
);
const event: fc.Arbitrary<Event> = fc.record({
  id: text,
  timestampUnixNs: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  source: text,
  eventType: text,
  metadata: fc.dictionary(text, text, { maxKeys: 6 }),
  payload: fc.uint8Array({ maxLength: 300 }),
  routeTo: fc.array(text, { maxLength: 3 }),
  severity: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
  outcome: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
});

test('encodeEmitRequest writes the generated encoder’s bytes for any batch, and slices by event', () => {
  fc.assert(
    fc.property(fc.array(event, { maxLength: 12 }), fc.nat(), fc.nat(), (events, x, y) => {
      const { bytes, starts } = encodeEmitRequest(events);
      assert.deepEqual(bytes, Buffer.from(EmitRequest.encode({ events }).finish()));
      const a = x % (events.length + 1);
      const b = a + (y % (events.length - a + 1));
      assert.deepEqual(bytes.subarray(starts[a]!, starts[b]!), Buffer.from(EmitRequest.encode({ events: events.slice(a, b) }).finish()));
    }),
    { numRuns: fuzzRuns(500) },
  );
});
