import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { EmitRequest } from '../../src/gen/polku/v1/plugin.js';
import { decodeEmitRequest } from '../../src/plugin/emit-request-decoder.js';
import { fuzzRuns } from './runs.js';

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ maxLength: 40, unit: 'grapheme' }),
  fc.string({ maxLength: 40, unit: 'binary' }),
);
const event: fc.Arbitrary<Event> = fc.record({
  id: text,
  timestampUnixNs: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  source: text,
  eventType: text,
  metadata: fc.dictionary(text, text, { maxKeys: 5 }),
  payload: fc.uint8Array({ maxLength: 100 }),
  routeTo: fc.array(text, { maxLength: 3 }),
  severity: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  outcome: fc.integer({ min: 0, max: 3 }),
});

/** Either both decoders give the same request or both throw the same error. */
function agree(bytes: Buffer): void {
  let expected: EmitRequest;
  try {
    expected = EmitRequest.decode(bytes);
  } catch (err) {
    assert.throws(() => decodeEmitRequest(bytes), { message: (err as Error).message });
    return;
  }
  assert.deepStrictEqual(decodeEmitRequest(bytes), expected);
}

test('the SDK decoder agrees with EmitRequest.decode on every request the gateway can write', () => {
  fc.assert(
    fc.property(fc.array(event, { maxLength: 8 }), (events) => agree(Buffer.from(EmitRequest.encode({ events }).finish()))),
    { numRuns: fuzzRuns(500) },
  );
});

test('… and on damaged ones: flipped, cut and random bytes', () => {
  fc.assert(
    fc.property(
      fc.array(event, { minLength: 1, maxLength: 3 }),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.nat(),
      (events, at, byte, cut) => {
        const bytes = Buffer.from(EmitRequest.encode({ events }).finish());
        bytes[at % bytes.length] = byte;
        agree(bytes.subarray(0, bytes.length - (cut % 4)));
      },
    ),
    { numRuns: fuzzRuns(1_000) },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (raw) => agree(Buffer.from(raw))),
    { numRuns: fuzzRuns(1_000) },
  );
});
