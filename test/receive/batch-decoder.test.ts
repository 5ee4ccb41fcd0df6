import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { Event } from '../../src/gen/polku/v1/event.js';
import { IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { decodeRefusalOf } from '../../src/ingest/event-decoder.js';
import { LACKS_ID, LACKS_SOURCE, LACKS_TIMESTAMP, NO_WIRE_BYTES } from '../../src/ingest/wire-events.js';
import { decodeIngestBatch } from '../../src/receive/polku-gateway/message-codec.js';
import { fullEvent } from '../helpers/full-event.js';
import { mulberry32 } from '../helpers/seeded-random.js';

const eventsBatch = (events: Event[], source = 'agent'): Uint8Array =>
  IngestBatch.encode({ source, cluster: 'c1', payload: { $case: 'events', value: { events } } }).finish();

/** IngestBatch bytes whose events are the given encodings, as they are (unknown fields and all). */
function batchOfEventBytes(eventBytes: Uint8Array[], extra: (w: BinaryWriter) => void = () => {}): Uint8Array {
  const w = new BinaryWriter();
  w.uint32(10).string('agent');
  w.uint32(34).fork();
  for (const b of eventBytes) w.uint32(10).bytes(b);
  w.join();
  extra(w);
  return w.finish();
}

/** The generated decoder's answer, or the fact that it threw. */
function generated(bytes: Uint8Array): IngestBatch | 'throws' {
  try {
    return IngestBatch.decode(bytes);
  } catch {
    return 'throws';
  }
}

function ours(bytes: Uint8Array) {
  try {
    return decodeIngestBatch(bytes);
  } catch {
    return 'throws' as const;
  }
}

/** Each event's recorded bytes decode to that event, and its lacks bits say what it arrived without. */
function assertWireMatches(bytes: Uint8Array): void {
  const r = decodeIngestBatch(bytes);
  if (r.batch.payload?.$case !== 'events') {
    assert.equal(r.wire, undefined, 'a raw (or absent) payload has no event ranges');
    return;
  }
  const events = r.batch.payload.value.events;
  const wire = r.wire!;
  assert.equal(wire.bytes, bytes);
  assert.equal(wire.starts.length, events.length);
  events.forEach((e, i) => {
    if (wire.lacks[i] === NO_WIRE_BYTES) return;
    assert.deepEqual(Event.decode(bytes.subarray(wire.starts[i], wire.ends[i])), e, `event ${i} from its own bytes`);
    const lacks = (e.id === '' ? LACKS_ID : 0) | (e.timestampUnixNs === 0n ? LACKS_TIMESTAMP : 0) | (e.source === '' ? LACKS_SOURCE : 0);
    assert.equal(wire.lacks[i], lacks, `event ${i} lacks`);
  });
}

const valid: Array<[string, Uint8Array]> = [
  ['a batch of full events', eventsBatch([fullEvent(), fullEvent({ id: 'evt-2', routeTo: [] })])],
  [
    'events lacking id, timestamp and source',
    eventsBatch([fullEvent({ id: '', timestampUnixNs: 0n, source: '' }), fullEvent({ source: '' })]),
  ],
  ['an empty events payload', eventsBatch([])],
  [
    'a raw payload',
    IngestBatch.encode({
      source: 's',
      cluster: '',
      payload: { $case: 'raw', value: { data: Buffer.from('{"a":1}'), format: 'json' } },
    }).finish(),
  ],
  ['no payload at all', IngestBatch.encode({ source: 's', cluster: '', payload: undefined }).finish()],
  ['an empty message', new Uint8Array(0)],
  [
    'events with unknown fields (a newer agent)',
    batchOfEventBytes([Buffer.concat([Event.encode(fullEvent()).finish(), Buffer.from([0xf8, 0x06, 0x01])])], (w) =>
      w.uint32(800).int32(5),
    ),
  ],
];

for (const [what, bytes] of valid) {
  test(`decodes ${what} exactly as the generated decoder does`, () => {
    const expected = generated(bytes);
    assert.notEqual(expected, 'throws');
    assert.deepEqual(decodeIngestBatch(bytes).batch, expected);
    assertWireMatches(bytes);
  });
}

test('an event whose fields run past its declared length is refused alone; a broken frame after it refuses the batch', () => {
  // EventPayload { Event (declared 3 bytes) { id: "hello" (7 bytes) } }: the generated decoder
  // reads past the event's end and accepts it. The strict decoder keeps to the declared length:
  // the event is malformed, and the 4 bytes after it are not a field, so the message is refused.
  assert.throws(
    () => decodeIngestBatch(Buffer.from([0x22, 0x09, 0x0a, 0x03, 0x0a, 0x05, ...Buffer.from('hello')])),
    /INVALID_BATCH|premature EOF/,
  );
  const overrun = Buffer.from([0x0a, 0x05, 0x68]); // 3 bytes, its id claims 5
  const bytes = batchOfEventBytes([Event.encode(fullEvent({ id: 'before' })).finish()], () => {});
  const payload = Buffer.from([0x0a, overrun.length, ...overrun]);
  const withOverrun = Buffer.concat([bytes, Buffer.from([0x22, payload.length]), payload, eventsBatch([fullEvent({ id: 'after' })])]);
  const r = decodeIngestBatch(withOverrun);
  const events = r.batch.payload?.$case === 'events' ? r.batch.payload.value.events : [];
  assert.deepEqual(
    events.map((e) => e.id),
    ['before', '', 'after'],
  );
  assert.deepEqual(decodeRefusalOf(events[1]!)?.code, 'INVALID_EVENT');
  assert.match(decodeRefusalOf(events[1]!)!.message, /malformed event/);
  assert.equal(r.wire!.lacks[1], NO_WIRE_BYTES);
});

/** How many payload fields (raw or events) the message has at its top level: more than one merges. */
function payloadFields(bytes: Uint8Array): number {
  const r = new BinaryReader(bytes);
  let n = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 26 || tag === 34) n++;
    r.skip(tag & 7, tag >>> 3);
  }
  return n;
}

test('mangled batches: what the strict decoder accepts whole, the generated decoder decodes the same; what that refuses, the strict one refuses too', () => {
  const random = mulberry32(20261201);
  const seeds = valid.map(([, b]) => b).filter((b) => b.length > 0);
  let agreedRefusal = 0;
  let agreedDecode = 0;
  for (let round = 0; round < 3_000; round++) {
    const base = Buffer.from(seeds[round % seeds.length]!);
    let bytes: Buffer;
    const how = Math.floor(random() * 3);
    if (how === 0) {
      bytes = base.subarray(0, Math.floor(random() * base.length)); // truncated
    } else if (how === 1) {
      bytes = Buffer.from(base);
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--)
        bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    } else {
      const at = Math.floor(random() * base.length);
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 6) }, () => Math.floor(random() * 256)));
      bytes = Buffer.concat([base.subarray(0, at), junk, base.subarray(at)]);
    }
    const expected = generated(bytes);
    const got = ours(bytes);
    const refusedEvents =
      got === 'throws' || got.batch.payload?.$case !== 'events'
        ? 0
        : got.batch.payload.value.events.filter((e) => decodeRefusalOf(e)).length;
    if (expected === 'throws') {
      assert.ok(got === 'throws' || refusedEvents > 0, `round ${round}: the generated decoder refused ${bytes.toString('hex')}`);
      agreedRefusal++;
    } else if (got !== 'throws' && refusedEvents === 0 && payloadFields(bytes) <= 1) {
      assert.deepEqual(got.batch, expected, `round ${round}: ${bytes.toString('hex')}`);
      assertWireMatches(bytes);
      agreedDecode++;
    }
    if (got !== 'throws') assertWireMatches(bytes);
  }
  // Both outcomes must actually have been exercised for the comparison to mean anything.
  assert.ok(agreedRefusal > 100 && agreedDecode > 100, `refused ${agreedRefusal}, decoded ${agreedDecode}`);
});
