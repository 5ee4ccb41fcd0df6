import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Event } from '../../src/gen/polku/v1/event.js';
import { EmitRequest } from '../../src/gen/polku/v1/plugin.js';
import { attachWireBytes, wireBytesOf } from '../../src/ingest/event-wire-bytes.js';
import { admitEvent, DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { createUlidFactory } from '../../src/ingest/ulid.js';
import { encodeEmitRequest } from '../../src/plugin-client/emit-request.js';
import { decodeEmitRequest } from '../../src/plugin/emit-request-decoder.js';
import { decodeIngestBatch } from '../../src/receive/polku-gateway/message-codec.js';
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

// Events as an agent may send them: valid for the strict decoder (UTF-8 strings, enum values of
// the contract), any field possibly missing (intake fills id, timestamp and source in).
const validText = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ maxLength: 80, unit: 'grapheme' }), fc.constant(''));
const sentEvent: fc.Arbitrary<Event> = fc.record({
  id: validText,
  timestampUnixNs: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })),
  source: validText,
  eventType: validText,
  metadata: fc.dictionary(validText, validText, { maxKeys: 4 }),
  payload: fc.uint8Array({ maxLength: 200 }),
  routeTo: fc.array(validText, { maxLength: 2 }),
  severity: fc.integer({ min: 0, max: 5 }),
  outcome: fc.integer({ min: 0, max: 4 }),
});
/**
 * What an agent's bytes may hold besides the canonical encoding: a field the contract does not
 * know (kept in the bytes, skipped by every decoder), and an earlier `id` that the real one
 * overrides (protobuf's last-wins).
 */
const extra = fc.record({
  unknown: fc.option(fc.tuple(fc.integer({ min: 12, max: 19 }), fc.uint8Array({ maxLength: 20 })), { nil: undefined }),
  staleId: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
  // How the event sits in the batch: its length prefix one byte longer than needed (valid
  // protobuf), a field the contract does not know before it, or in an `events` payload of its own.
  paddedLength: fc.boolean(),
  junkBefore: fc.boolean(),
  newPayload: fc.boolean(),
});

/** `v` as varint bytes, with one more (a continuation bit and a zero byte) than it needs. */
function paddedVarint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v | 0x80, 0x00);
  return out;
}

/** The SDK decoder's payloads are views of a Buffer: as Uint8Arrays, to compare. */
const plain = (e: Event): Event => ({ ...e, payload: new Uint8Array(e.payload) });

test('events sent over the wire and kept with their bytes reach the plugin as the same events', () => {
  const newId = createUlidFactory();
  fc.assert(
    fc.property(fc.array(fc.tuple(sentEvent, extra), { minLength: 1, maxLength: 8 }), (sent) => {
      const message = new BinaryWriter().uint32(10).string('agent');
      let payload = new BinaryWriter();
      const expected: Event[] = [];
      for (const [e, x] of sent) {
        const w = new BinaryWriter();
        if (x.staleId !== undefined) w.uint32(10).string(x.staleId);
        const canonical = Event.encode(e).finish();
        w.raw(canonical);
        if (x.unknown) w.uint32((x.unknown[0] << 3) | 2).bytes(x.unknown[1]);
        const bytes = w.finish();
        if (x.newPayload) {
          message.uint32(34).bytes(payload.finish());
          payload = new BinaryWriter();
        }
        if (x.junkBefore) payload.uint32((9 << 3) | 0).uint32(1);
        payload.uint32(10);
        if (x.paddedLength) payload.raw(new Uint8Array(paddedVarint(bytes.length)));
        else payload.uint32(bytes.length);
        payload.raw(bytes);
        expected.push(Event.decode(bytes));
      }
      message.uint32(34).bytes(payload.finish());
      const received = decodeIngestBatch(Buffer.from(message.finish()));
      const events = received.batch.payload?.$case === 'events' ? received.batch.payload.value.events : [];
      assert.equal(events.length, sent.length);
      for (let i = 0; i < events.length; i++) {
        assert.equal(admitEvent(events[i]!, DEFAULT_LIMITS, 'agent', 42n, newId), undefined);
        attachWireBytes(events[i]!, received.wire!, i);
        const want = expected[i]!;
        if (want.id === '') want.id = events[i]!.id;
        if (want.timestampUnixNs === 0n) want.timestampUnixNs = 42n;
        if (want.source === '') want.source = 'agent';
        assert.ok(wireBytesOf(events[i]!), `event ${i} keeps its bytes`);
      }
      // Decoded from a plain array, as `expected` was: payloads are Uint8Arrays on both sides.
      const encoded = encodeEmitRequest(events);
      const bytes = new Uint8Array(encoded.bytes);
      assert.deepEqual(EmitRequest.decode(bytes).events, expected);
      // Each event where `starts` says (a batch is split into calls there), and nothing else.
      for (let i = 0; i < events.length; i++) {
        const one = EmitRequest.decode(bytes.subarray(encoded.starts[i]!, encoded.starts[i + 1]!)).events;
        assert.deepEqual(one, [expected[i]]);
        assert.equal(bytes[encoded.starts[i]!], 10);
      }
      assert.deepEqual(decodeEmitRequest(bytes).events.map(plain), expected);
    }),
    { numRuns: fuzzRuns(500) },
  );
});
