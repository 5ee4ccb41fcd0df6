import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Event } from '../../src/gen/polku/v1/event.js';
import { IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { LACKS_ID, LACKS_SOURCE, LACKS_TIMESTAMP, NO_WIRE_BYTES } from '../../src/ingest/wire-events.js';
import { decodeIngestBatch } from '../../src/receive/polku-gateway/message-codec.js';
import { fullEvent } from '../helpers/full-event.js';

/** Deterministic PRNG (mulberry32): the same mangled inputs on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
  [
    'a raw payload after an events payload replaces it',
    batchOfEventBytes([Event.encode(fullEvent()).finish()], (w) => w.uint32(26).fork().uint32(10).bytes(Buffer.from('x')).join()),
  ],
  [
    'two events payloads: the second replaces the first',
    Buffer.concat([eventsBatch([fullEvent({ id: 'first' })]), eventsBatch([fullEvent({ id: 'second' })])]),
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

test('an event whose fields run past its declared length is decoded as the generated decoder does, without wire bytes', () => {
  // EventPayload { Event (declared 3 bytes) { id: "hello" (7 bytes) } }: the generated decoder
  // reads past the event's end and accepts it; its 3 declared bytes cannot stand for it.
  const bytes = Buffer.from([0x22, 0x09, 0x0a, 0x03, 0x0a, 0x05, ...Buffer.from('hello')]);
  const expected = generated(bytes);
  assert.notEqual(expected, 'throws');
  const r = decodeIngestBatch(bytes);
  assert.deepEqual(r.batch, expected);
  assert.equal(r.batch.payload?.$case === 'events' && r.batch.payload.value.events[0]!.id, 'hello');
  assert.deepEqual(r.wire!.lacks, [NO_WIRE_BYTES]);
});

test('mangled batches: both decoders throw, or both give the same batch, and recorded ranges still hold', () => {
  const random = prng(20261201);
  const seeds = valid.map(([, b]) => b).filter((b) => b.length > 0);
  let agreedThrow = 0;
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
    if (expected === 'throws') {
      assert.equal(got, 'throws', `round ${round}: the generated decoder refused ${bytes.toString('hex')}`);
      agreedThrow++;
    } else {
      assert.notEqual(got, 'throws', `round ${round}: ours refused what the generated decoder took: ${bytes.toString('hex')}`);
      assert.deepEqual((got as { batch: IngestBatch }).batch, expected, `round ${round}: ${bytes.toString('hex')}`);
      assertWireMatches(bytes);
      agreedDecode++;
    }
  }
  // Both outcomes must actually have been exercised for the comparison to mean anything.
  assert.ok(agreedThrow > 100 && agreedDecode > 100, `throws ${agreedThrow}, decodes ${agreedDecode}`);
});
