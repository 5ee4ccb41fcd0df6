import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Ack } from '../../src/gen/polku/v1/gateway.js';
import { encodeAck } from '../../src/receive/polku-gateway/ack-encoder.js';
import { fuzzRuns } from '../fuzz/runs.js';

const generated = (ack: Ack): Buffer => Buffer.from(Ack.encode(ack).finish());

test('the Ack encoder covers every field of Ack, AckError and MiddlewareStats (fails when gateway.proto gains one)', () => {
  const ack = Ack.fromPartial({ errors: [{}], middlewareStats: {} });
  assert.deepEqual(Object.keys(ack).sort(), ['bufferCapacity', 'bufferSize', 'errors', 'eventIds', 'middlewareStats']);
  assert.deepEqual(Object.keys(ack.errors[0]!).sort(), ['code', 'eventId', 'message']);
  assert.deepEqual(Object.keys(ack.middlewareStats!).sort(), [
    'bufferOverflowCount',
    'dedupCount',
    'filteredCount',
    'rateLimitedCount',
    'sampledOutCount',
    'totalForwarded',
    'totalReceived',
  ]);
});

test('an Ack is byte for byte what the generated encoder writes', () => {
  const cases: Ack[] = [
    Ack.fromPartial({}),
    Ack.fromPartial({ middlewareStats: {} }), // an all-zero stats message is still there, empty
    Ack.fromPartial({
      eventIds: Array.from({ length: 100 }, (_, i) => `01JBENCH${String(i).padStart(18, '0')}`),
      bufferSize: 20_000n,
      bufferCapacity: 100_000n,
      middlewareStats: { totalReceived: 100n, totalForwarded: 99n, dedupCount: 1n },
    }),
    Ack.fromPartial({
      eventIds: ['ä', '', '😀'.repeat(40)],
      errors: [
        { eventId: 'x', code: 'INVALID_EVENT', message: 'events[3]: severity 9 is not a polku.event.v1.Severity (0..5)' },
        {},
        { message: 'é' },
      ],
      bufferSize: -1n, // ten bytes, as int64 writes a negative number
      bufferCapacity: 2n ** 63n - 1n,
    }),
  ];
  for (const ack of cases) assert.deepEqual(encodeAck(ack), generated(ack));
});

test('an int64 out of range is refused as the generated encoder refuses it', () => {
  const ack = Ack.fromPartial({ bufferSize: 2n ** 63n });
  assert.throws(() => generated(ack), /int64 too large/);
  assert.throws(() => encodeAck(ack), /bufferSize of type int64 too large/);
});

const text = fc.oneof(fc.string({ maxLength: 70 }), fc.string({ maxLength: 70, unit: 'binary' }));
const int64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));

test('any Ack encodes as the generated encoder writes it', () => {
  const ack = fc.record({
    eventIds: fc.array(text, { maxLength: 8 }),
    errors: fc.array(fc.record({ eventId: text, code: text, message: text }), { maxLength: 3 }),
    bufferSize: int64,
    bufferCapacity: int64,
    middlewareStats: fc.option(
      fc.record({
        rateLimitedCount: int64,
        sampledOutCount: int64,
        dedupCount: int64,
        filteredCount: int64,
        bufferOverflowCount: int64,
        totalReceived: int64,
        totalForwarded: int64,
      }),
      { nil: undefined },
    ),
  });
  fc.assert(
    fc.property(ack, (a) => assert.deepEqual(encodeAck(a), generated(a))),
    { numRuns: fuzzRuns(500) },
  );
});
