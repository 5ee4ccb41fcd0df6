import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Event, type Severity } from '../../src/gen/polku/v1/event.js';
import { EmitRequest } from '../../src/gen/polku/v1/plugin.js';
import { encodeEmitRequest } from '../../src/plugin-client/emit-request.js';
import { fullEvent } from '../helpers/full-event.js';

/** What grpc-js sent before: the generated serializer's bytes. */
const generated = (events: Event[]): Buffer => Buffer.from(EmitRequest.encode({ events }).finish());

test('the EmitRequest encoder covers every field of Event (fails when event.proto gains one)', () => {
  const covered = ['id', 'timestampUnixNs', 'source', 'eventType', 'metadata', 'payload', 'routeTo', 'severity', 'outcome'];
  assert.deepEqual(Object.keys(Event.create()).sort(), [...covered].sort());
});

test('an EmitRequest is byte for byte what the generated encoder writes', () => {
  const cases: Event[][] = [
    [],
    [Event.create()], // every field default: an empty event, still one field of the request
    [fullEvent()],
    [fullEvent({ timestampUnixNs: -1n, severity: -3 as Severity }), fullEvent({ id: 'b' })], // 10-byte varints
    [fullEvent({ timestampUnixNs: 2n ** 63n - 1n, id: 'x'.repeat(200), payload: new Uint8Array(70_000).fill(7) })],
    [fullEvent({ source: '😀 emoji source', eventType: 'a'.repeat(65) + 'é' })], // surrogate pairs, long non-ASCII
    [fullEvent({ metadata: { '': 'empty key', k: '', '7': 'integer-like keys come first' }, routeTo: [''] })],
    [fullEvent({ id: 'lone \ud800 surrogate' })], // U+FFFD, 3 bytes, in both
    Array.from({ length: 300 }, (_, i) => fullEvent({ id: `e-${i}`, payload: new Uint8Array(i) })),
  ];
  for (const events of cases) {
    const { bytes, starts } = encodeEmitRequest(events);
    assert.deepEqual(bytes, generated(events));
    assert.equal(starts.length, events.length + 1);
    assert.equal(starts[events.length], bytes.length);
  }
});

test('events [a, b) of a batch are bytes starts[a] .. starts[b]: a request of their own', () => {
  const events = Array.from({ length: 10 }, (_, i) => fullEvent({ id: `e-${i}`, payload: new Uint8Array(i * 50) }));
  const { bytes, starts } = encodeEmitRequest(events);
  for (const [a, b] of [
    [0, 10],
    [0, 1],
    [3, 7],
    [9, 10],
  ] as const) {
    assert.deepEqual(bytes.subarray(starts[a]!, starts[b]!), generated(events.slice(a, b)));
  }
});

test('a timestamp outside int64 is refused as the generated encoder refuses it', () => {
  const events = [fullEvent({ timestampUnixNs: 2n ** 63n })];
  assert.throws(() => generated(events), /int64 too large/);
  assert.throws(() => encodeEmitRequest(events), /int64 too large/);
});
