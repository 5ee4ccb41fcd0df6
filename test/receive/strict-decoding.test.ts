import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { IngestBatch, IngestEvent, type Ack } from '../../src/gen/polku/v1/gateway.js';
import { hub } from '../../src/hub/builder.js';
import { intakeOfBatch, intakeOfEvent, intakeOfUnreadable } from '../../src/hub/polku-messages.js';
import { decodeRefusalOf } from '../../src/ingest/event-decoder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import {
  decodeIngestEvent,
  readIngestBatch,
  UnreadableMessage,
  type ReceivedBatch,
} from '../../src/receive/polku-gateway/message-codec.js';
import { fullEvent } from '../helpers/full-event.js';

const LIMITS: IntakeLimits = { ...DEFAULT_LIMITS, maxBatchEvents: 5, maxEventBytes: 512 };

/** A batch whose events are the given encodings, as they are. */
function batchOf(eventBytes: Uint8Array[], source: Uint8Array = Buffer.from('agent')): Buffer {
  const w = new BinaryWriter();
  w.uint32(10).bytes(source);
  w.uint32(34).fork();
  for (const b of eventBytes) w.uint32(10).bytes(b);
  w.join();
  return Buffer.from(w.finish());
}

const enc = (e: Partial<Event>) => Event.encode(fullEvent({ routeTo: [], ...e })).finish();

/** An event whose id is the given bytes, with its other fields valid. */
function eventWithId(id: Uint8Array): Uint8Array {
  return new BinaryWriter().uint32(10).bytes(id).uint32(34).string('t').finish();
}

function decoded(bytes: Uint8Array, limits = LIMITS): ReceivedBatch {
  const r = readIngestBatch(bytes, limits);
  assert.ok(!(r instanceof UnreadableMessage), `refused: ${r instanceof UnreadableMessage ? r.message : ''}`);
  return r;
}

function eventsOf(r: ReceivedBatch): Event[] {
  return r.batch.payload?.$case === 'events' ? r.batch.payload.value.events : [];
}

/** Runs decoded bytes through a real hub, as the receiver does, and returns the Ack. */
async function ackFor(bytes: Uint8Array, limits = LIMITS): Promise<{ ack: Ack; delivered: InMemoryEmitter }> {
  const delivered = new InMemoryEmitter();
  const h = hub().emitter(delivered).build({ limits, registry: createRegistry(), logger: silentLogger() });
  await h.start();
  const r = readIngestBatch(bytes, limits);
  const ack = await (r instanceof UnreadableMessage
    ? h.submit(intakeOfUnreadable(r, { unary: false }))
    : h.submit(intakeOfBatch(r.batch, undefined, r.wire)));
  await h.drain(1_000);
  return { ack, delivered };
}

test('invalid UTF-8 in an id refuses that event alone, naming the field; two such ids no longer collapse into one', async () => {
  const bad1 = eventWithId(Buffer.from([0x61, 0xff]));
  const bad2 = eventWithId(Buffer.from([0x61, 0xfe]));
  const bytes = batchOf([enc({ id: 'ok-1' }), bad1, bad2, enc({ id: 'ok-2' })]);
  const events = eventsOf(decoded(bytes));
  assert.equal(events.length, 4);
  assert.equal(decodeRefusalOf(events[1]!)?.message, 'id is not valid UTF-8');
  const { ack } = await ackFor(bytes);
  assert.deepEqual(ack.eventIds, ['ok-1', 'ok-2']);
  assert.deepEqual(
    ack.errors.map((e) => [e.code, e.message]),
    [
      ['INVALID_EVENT', 'events[1]: id is not valid UTF-8'],
      ['INVALID_EVENT', 'events[2]: id is not valid UTF-8'],
    ],
  );
});

test('every string field of an event is checked: source, event_type, metadata, route_to', () => {
  const bad = Buffer.from([0xc3, 0x28]); // a lead byte followed by a non-continuation
  const cases: Array<[string, Uint8Array]> = [
    ['source', new BinaryWriter().uint32(10).string('x').uint32(26).bytes(bad).finish()],
    ['event_type', new BinaryWriter().uint32(10).string('x').uint32(34).bytes(bad).finish()],
    ['metadata', new BinaryWriter().uint32(10).string('x').uint32(42).fork().uint32(10).bytes(bad).uint32(18).string('v').join().finish()],
    ['metadata', new BinaryWriter().uint32(10).string('x').uint32(42).fork().uint32(10).string('k').uint32(18).bytes(bad).join().finish()],
    ['route_to', new BinaryWriter().uint32(10).string('x').uint32(58).bytes(bad).finish()],
  ];
  for (const [field, eventBytes] of cases) {
    const [event] = eventsOf(decoded(batchOf([eventBytes])));
    assert.deepEqual(decodeRefusalOf(event!), { code: 'INVALID_EVENT', message: `${field} is not valid UTF-8`, id: 'x' }, field);
  }
});

test('valid UTF-8 of every kind round-trips exactly, a leading U+FEFF included', () => {
  const id = '\uFEFFid-é-κ-日本-🎉';
  const [event] = eventsOf(decoded(batchOf([enc({ id, metadata: { '🔑': '\uFEFFv' } })])));
  assert.equal(event!.id, id);
  assert.deepEqual(event!.metadata, { '🔑': '\uFEFFv' });
  assert.equal(decodeRefusalOf(event!), undefined);
});

test('invalid UTF-8 in the batch source or cluster refuses the batch INVALID_BATCH naming the field', () => {
  const r = readIngestBatch(batchOf([enc({})], Buffer.from([0x80])), LIMITS);
  assert.deepEqual(r, new UnreadableMessage('INVALID_BATCH', 'IngestBatch source is not valid UTF-8'));
  const format = new BinaryWriter()
    .uint32(26)
    .fork()
    .uint32(10)
    .bytes(Buffer.from('{}'))
    .uint32(18)
    .bytes(Buffer.from([0xed, 0xa0, 0x80]))
    .join();
  assert.deepEqual(
    readIngestBatch(format.finish(), LIMITS),
    new UnreadableMessage('INVALID_BATCH', 'IngestBatch raw.format is not valid UTF-8'),
  );
});

test('severity and outcome outside their enums are refused INVALID_EVENT naming the field and value', async () => {
  const sev = new BinaryWriter().uint32(10).string('s').uint32(80).int32(99).finish();
  const out = new BinaryWriter().uint32(10).string('o').uint32(88).int32(-1).finish();
  const { ack } = await ackFor(batchOf([sev, out, enc({ id: 'fine' })]));
  assert.deepEqual(ack.eventIds, ['fine']);
  assert.deepEqual(
    ack.errors.map((e) => [e.eventId, e.code, e.message]),
    [
      ['s', 'INVALID_EVENT', 'events[0]: severity 99 is not a polku.event.v1.Severity (0..5)'],
      ['o', 'INVALID_EVENT', 'events[1]: outcome -1 is not a polku.event.v1.Outcome (0..4)'],
    ],
  );
});

test('events are counted before decoding: maxBatchEvents passes, one more refuses the message BATCH_TOO_LARGE naming the limit', async () => {
  const five = Array.from({ length: 5 }, () => new Uint8Array(0));
  assert.equal(eventsOf(decoded(batchOf(five))).length, 5);
  const six = batchOf([...five, new Uint8Array(0)]);
  const r = readIngestBatch(six, LIMITS);
  assert.ok(r instanceof UnreadableMessage);
  assert.equal(r.code, 'BATCH_TOO_LARGE');
  assert.match(r.message, /limit 5 \(POLKU_MAX_BATCH_EVENTS\)/);
  const { ack } = await ackFor(six);
  assert.deepEqual(ack.eventIds, []);
  assert.equal(ack.errors.length, 1);
  assert.equal(ack.errors[0]!.code, 'BATCH_TOO_LARGE');
});

test('an event over maxEventBytes is refused alone with PAYLOAD_TOO_LARGE naming the limit; the rest are decoded', async () => {
  const big = enc({ id: 'big', payload: new Uint8Array(600) });
  const { ack, delivered } = await ackFor(batchOf([enc({ id: 'a' }), big, enc({ id: 'b' })]));
  assert.deepEqual(ack.eventIds, ['a', 'b']);
  assert.equal(ack.errors.length, 1);
  assert.equal(ack.errors[0]!.code, 'PAYLOAD_TOO_LARGE');
  assert.match(ack.errors[0]!.message, new RegExp(`^events\\[1\\]: event is ${big.length} bytes, limit 512 \\(POLKU_MAX_EVENT_BYTES\\)$`));
  assert.equal(delivered.events.length, 2);
});

test('concatenated IngestBatch messages merge: every events payload appends, and the ranges still hold', () => {
  const first = IngestBatch.encode({
    source: 'a',
    cluster: 'c',
    payload: { $case: 'events', value: { events: [fullEvent({ id: '1' })] } },
  }).finish();
  const second = IngestBatch.encode({
    source: 'b',
    cluster: '',
    payload: { $case: 'events', value: { events: [fullEvent({ id: '2' }), fullEvent({ id: '3' })] } },
  }).finish();
  const bytes = Buffer.concat([first, second]);
  const r = decoded(bytes);
  assert.equal(r.batch.source, 'b', 'a later scalar wins');
  assert.equal(r.batch.cluster, 'c', 'an absent scalar does not override');
  const events = eventsOf(r);
  assert.deepEqual(
    events.map((e) => e.id),
    ['1', '2', '3'],
  );
  events.forEach((e, i) => assert.deepEqual(Event.decode(bytes.subarray(r.wire!.starts[i], r.wire!.ends[i])), e));
});

test('raw and events in one message is refused INVALID_BATCH, whichever comes first', () => {
  const events = IngestBatch.encode({ source: 'a', cluster: '', payload: { $case: 'events', value: { events: [fullEvent()] } } }).finish();
  const raw = IngestBatch.encode({
    source: 'a',
    cluster: '',
    payload: { $case: 'raw', value: { data: Buffer.from('{}'), format: 'json' } },
  }).finish();
  for (const bytes of [Buffer.concat([events, raw]), Buffer.concat([raw, events])]) {
    const r = readIngestBatch(bytes, LIMITS);
    assert.ok(r instanceof UnreadableMessage);
    assert.equal(r.code, 'INVALID_BATCH');
    assert.match(r.message, /mixes payload kinds/);
  }
});

test('two raw payloads merge field by field as protobuf says', () => {
  const a = IngestBatch.encode({
    source: 's',
    cluster: '',
    payload: { $case: 'raw', value: { data: Buffer.from('A'), format: 'json' } },
  }).finish();
  const b = new BinaryWriter().uint32(26).fork().uint32(10).bytes(Buffer.from('B')).join().finish();
  const r = decoded(Buffer.concat([a, b]));
  assert.deepEqual(r.batch.payload, { $case: 'raw', value: { data: Buffer.from('B'), format: 'json' } });
});

test('SendEvent: strict strings, enums and merge, and raw mixed with event is refused', async () => {
  const ok = IngestEvent.encode({
    source: 's',
    cluster: '',
    format: '',
    payload: { $case: 'event', value: fullEvent({ id: 'u1' }) },
  }).finish();
  const merged = decodeIngestEvent(
    Buffer.concat([ok, new BinaryWriter().uint32(34).fork().uint32(58).string('extra').join().finish()]),
    LIMITS,
  );
  assert.ok(!(merged instanceof UnreadableMessage));
  assert.deepEqual(
    merged.payload?.$case === 'event' && merged.payload.value.routeTo,
    ['webhook', 'file', 'extra'],
    'a repeated field appends',
  );

  const badSource = new BinaryWriter()
    .uint32(10)
    .bytes(Buffer.from([0xff]))
    .finish();
  assert.deepEqual(decodeIngestEvent(badSource, LIMITS), new UnreadableMessage('INVALID_BATCH', 'IngestEvent source is not valid UTF-8'));
  const mixed = Buffer.concat([ok, new BinaryWriter().uint32(26).bytes(Buffer.from('x')).finish()]);
  assert.equal((decodeIngestEvent(mixed, LIMITS) as UnreadableMessage).code, 'INVALID_BATCH');

  const badEnum = new BinaryWriter().uint32(34).fork().uint32(10).string('e').uint32(80).int32(6).join().finish();
  const request = decodeIngestEvent(badEnum, LIMITS);
  assert.ok(!(request instanceof UnreadableMessage));
  const h = hub().emitter(new InMemoryEmitter()).build({ limits: LIMITS, registry: createRegistry(), logger: silentLogger() });
  await h.start();
  const ack = await h.submit(intakeOfEvent(request));
  assert.deepEqual(
    ack.errors.map((e) => [e.eventId, e.code, e.message]),
    [['e', 'INVALID_EVENT', 'events[0]: severity 6 is not a polku.event.v1.Severity (0..5)']],
  );
  await h.drain(1_000);
});
