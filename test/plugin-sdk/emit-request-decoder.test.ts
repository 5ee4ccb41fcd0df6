import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Event, type Severity } from '../../src/gen/polku/v1/event.js';
import { EmitRequest } from '../../src/gen/polku/v1/plugin.js';
import { decodeEmitRequest } from '../../src/plugin/emit-request-decoder.js';
import { fullEvent } from '../helpers/full-event.js';

const encoded = (events: Event[]): Buffer => Buffer.from(EmitRequest.encode({ events }).finish());

/** Same objects as the generated decoder: values, key order and prototypes (deepStrictEqual). */
function same(bytes: Buffer): void {
  let expected: unknown;
  try {
    expected = EmitRequest.decode(bytes);
  } catch (err) {
    assert.throws(() => decodeEmitRequest(bytes), { message: (err as Error).message });
    return;
  }
  const got = decodeEmitRequest(bytes);
  assert.deepStrictEqual(got, expected);
  for (const [i, e] of got.events.entries()) {
    assert.deepEqual(Object.keys(e), Object.keys((expected as EmitRequest).events[i]!));
    assert.ok(Buffer.isBuffer(e.payload) === Buffer.isBuffer((expected as EmitRequest).events[i]!.payload));
  }
}

test('a request the gateway writes decodes to what EmitRequest.decode gives', () => {
  const cases: Event[][] = [
    [],
    [Event.create()],
    [fullEvent()],
    [fullEvent({ timestampUnixNs: -1n, severity: -3 as Severity }), fullEvent({ id: 'b', timestampUnixNs: 2n ** 63n - 1n })],
    [fullEvent({ id: 'x'.repeat(200), payload: new Uint8Array(70_000).fill(7) })],
    [fullEvent({ source: '😀 emoji source', eventType: '\ufeffbom kept', metadata: { '': 'empty key', k: '', '7': 'n' } })],
    Array.from({ length: 300 }, (_, i) => fullEvent({ id: `e-${i}`, payload: new Uint8Array(i % 5) })),
  ];
  for (const events of cases) same(encoded(events));
});

test('repeated fields: the last scalar wins, lists and map entries add up', () => {
  const w = new BinaryWriter();
  const inner = new BinaryWriter();
  inner.uint32(10).string('first').uint32(10).string('second');
  inner.uint32(42).fork().uint32(10).string('k').uint32(18).string('v1').join();
  inner.uint32(42).fork().uint32(18).string('no key').join();
  inner.uint32(42).fork().uint32(10).string('k').uint32(18).string('v2').join();
  inner.uint32(58).string('a').uint32(58).string('b');
  inner.uint32(80).int32(2).uint32(80).int32(-7);
  inner
    .uint32(50)
    .bytes(new Uint8Array([1]))
    .uint32(50)
    .bytes(new Uint8Array([2, 3]));
  w.uint32(10).bytes(inner.finish());
  same(Buffer.from(w.finish()));
});

test('what the gateway never writes goes to the generated decoder: same result, same errors', () => {
  const event = Buffer.from(Event.encode(fullEvent()).finish());
  const frame = (body: Uint8Array) => Buffer.from(new BinaryWriter().uint32(10).bytes(body).finish());
  const cases: Buffer[] = [
    Buffer.concat([frame(event), Buffer.from([0x98, 0x01, 0x05])]), // unknown top-level field 19
    frame(Buffer.concat([event, Buffer.from([0x60, 0x01])])), // unknown event field 12 (varint)
    frame(Buffer.concat([event, Buffer.from([0xa2, 0x06, 0x01, 0x41])])), // unknown field 100, two-byte tag
    frame(Buffer.from([0x2a, 0x02, 0x1a, 0x00])), // a metadata entry with an unknown field
    frame(Buffer.from([0x0a, 0x05, 0x61])), // id runs past the event (and the request)
    Buffer.from([0x0a, 0x05, 0x0a]), // the event runs past the request
    frame(Buffer.from([0x0a, 0x02, 0xff, 0xfe])), // invalid UTF-8: U+FFFD, in both
    Buffer.from([0x0a]), // a tag and nothing more
  ];
  for (const bytes of cases) same(bytes);
});
