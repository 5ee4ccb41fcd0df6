import { test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import assert from 'node:assert/strict';
import {
  clipUtf8,
  decodeEventRecord,
  encodeEventRecord,
  encodeEventRecords,
  idempotencyKeyOf,
} from '../../src/buffer/durable/event-record.js';
import { Event, type Severity } from '../../src/gen/polku/v1/event.js';
import { fullEvent } from '../helpers/full-event.js';
import { admitEvent, DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { NO_WIRE_BYTES } from '../../src/ingest/wire-events.js';
import { decodeIngestBatch } from '../../src/receive/polku-gateway/message-codec.js';

/** The event with its payload as a plain Uint8Array (decoding from a Buffer gives a Buffer view). */
const plain = (e: Event): Event => ({ ...e, payload: new Uint8Array(e.payload) });

test('the record encoder covers every field of Event (fails when event.proto gains one)', () => {
  const covered = ['id', 'timestampUnixNs', 'source', 'eventType', 'metadata', 'payload', 'routeTo', 'severity', 'outcome'];
  assert.deepEqual(Object.keys(Event.create()).sort(), [...covered].sort());
});

test('the event body is byte for byte what the generated encoder writes', () => {
  const cases: Event[] = [
    fullEvent(),
    Event.create(), // every field default: an empty body
    fullEvent({ timestampUnixNs: -1n, severity: -3 as Severity }), // 10-byte varints
    fullEvent({ timestampUnixNs: 2n ** 63n - 1n, id: 'x'.repeat(200), payload: new Uint8Array(70_000).fill(7) }),
    fullEvent({ source: '😀 emoji source', eventType: 'a'.repeat(65) + 'é' }), // surrogate pairs, long non-ASCII
    fullEvent({ metadata: { '': 'empty key', k: '' }, routeTo: [''] }),
  ];
  for (const event of cases) {
    const record = encodeEventRecord(event, [], '');
    // [0 key bytes][0 targets][body]
    assert.deepEqual(Buffer.from(record.subarray(2)), Buffer.from(Event.encode(event).finish()));
    assert.deepEqual(plain(decodeEventRecord(record).event), plain(Event.decode(Event.encode(event).finish())));
  }
});

test('int64 timestamps at every varint length boundary encode as the generated encoder does', () => {
  const values: bigint[] = [];
  for (let bits = 0; bits <= 64; bits++) {
    const p = 1n << BigInt(bits);
    values.push(p - 1n, p, p + 1n, -p);
  }
  for (const v of values) {
    const t = BigInt.asIntN(64, v);
    if (t === 0n) continue;
    const event = fullEvent({ timestampUnixNs: t });
    assert.deepEqual(
      Buffer.from(encodeEventRecord(event, [], '').subarray(2)),
      Buffer.from(Event.encode(event).finish()),
      `timestamp ${t}`,
    );
  }
});

test('many records share one buffer and each reads back whole', () => {
  const entries = Array.from({ length: 50 }, (_, i) => ({
    event: fullEvent({ id: `evt-${i}`, payload: new Uint8Array(i).fill(i) }),
    targets: i % 2 === 0 ? ['webhook'] : ['webhook', 'grpc-out'],
    key: i % 3 === 0 ? '' : `key-${i}`,
  }));
  const records = encodeEventRecords(entries);
  assert.equal(records.length, 50);
  assert.ok(
    records.every((r) => r.buffer === records[0]!.buffer),
    'one allocation for the whole commit',
  );
  records.forEach((r, i) => {
    const back = decodeEventRecord(r);
    assert.equal(back.idempotencyKey, entries[i]!.key);
    assert.equal(idempotencyKeyOf(r), entries[i]!.key);
    assert.deepEqual(back.targets, entries[i]!.targets);
    assert.deepEqual(plain(back.event), entries[i]!.event);
  });
});

test('keys over 255 UTF-8 bytes are cut at a character boundary, the same way they are compared', () => {
  const long = 'ключ-'.repeat(60); // 2-byte characters: a 255-byte cut would split one
  const clipped = clipUtf8(long);
  assert.ok(Buffer.byteLength(clipped) <= 255);
  assert.ok(long.startsWith(clipped));
  assert.ok(!clipped.includes('\uFFFD'));
  const record = encodeEventRecord(fullEvent(), ['a'], long);
  assert.equal(idempotencyKeyOf(record), clipped);
  assert.equal(decodeEventRecord(record).event.id, 'evt-1');
  assert.equal(clipUtf8('short'), 'short');
});

test('an event stored from its wire bytes reads back as the event intake accepted, fill-ins included', () => {
  const sent = [
    fullEvent(),
    fullEvent({ id: '', timestampUnixNs: 0n, source: '' }), // intake fills all three
    fullEvent({ source: '', metadata: {}, routeTo: [] }),
  ];
  const withUnknownField = Buffer.concat([Event.encode(fullEvent({ id: 'newer-agent' })).finish(), Buffer.from([0xf8, 0x06, 0x01])]);
  // A batch of the three, then a fourth event carrying a field this gateway does not know (111).
  const w = new BinaryWriter().uint32(10).string('agent-a').uint32(34).fork();
  for (const e of sent) w.uint32(10).bytes(Event.encode(e).finish());
  const bytes = w.uint32(10).bytes(withUnknownField).join().finish();

  const { batch, wire } = decodeIngestBatch(bytes);
  assert.equal(batch.payload?.$case, 'events');
  const decoded = batch.payload.$case === 'events' ? batch.payload.value.events : [];
  assert.equal(decoded.length, 4);
  let ulids = 0;
  for (const e of decoded)
    assert.equal(
      admitEvent(e, DEFAULT_LIMITS, 'agent-a', 42n, () => `01ASSIGNED${ulids++}`),
      undefined,
    );
  assert.equal(decoded[1]!.id, '01ASSIGNED0');

  const records = encodeEventRecords(
    decoded.map((event, i) => ({ event, targets: ['memory'], key: '', wireAt: i })),
    wire,
  );
  records.forEach((r, i) => assert.deepEqual(plain(decodeEventRecord(r).event), plain(decoded[i]!), `event ${i}`));
  // The stored bodies are the bytes sent, with only the fill-ins appended.
  const body = (r: Uint8Array) => Buffer.from(r.subarray(2 + 1 + 'memory'.length));
  assert.deepEqual(body(records[0]!), Buffer.from(Event.encode(sent[0]!).finish()));
  assert.deepEqual(body(records[3]!), withUnknownField, 'a field this gateway does not know is kept as sent');
  assert.deepEqual(
    body(records[1]!),
    Buffer.concat([
      Event.encode(fullEvent({ id: '', timestampUnixNs: 0n, source: '' })).finish(),
      Event.encode(Event.fromPartial({ id: '01ASSIGNED0', timestampUnixNs: 42n, source: 'agent-a' })).finish(),
    ]),
  );
});

test('an event whose wire bytes cannot stand for it, or without a batch position, is encoded afresh', () => {
  // A range marked NO_WIRE_BYTES (the strict batch decoder now refuses an event whose fields overrun
  // its declared length, so the mark is set by hand): its 3 bytes cannot stand for the event.
  const bytes = Buffer.from([0x0a, 0x05, ...Buffer.from('agent'), 0x22, 0x09, 0x0a, 0x03, 0x0a, 0x05, ...Buffer.from('hello')]);
  const wire = { bytes, starts: [11], ends: [14], lacks: [NO_WIRE_BYTES] };
  const event = Event.fromPartial({ id: 'hello' });
  admitEvent(event, DEFAULT_LIMITS, 'agent', 7n, () => 'unused');
  const [overrun, unplaced] = encodeEventRecords(
    [
      { event, targets: [], key: '', wireAt: 0 },
      { event, targets: [], key: '', wireAt: -1 },
    ],
    wire,
  );
  for (const r of [overrun!, unplaced!]) {
    assert.deepEqual(Buffer.from(r.subarray(2)), Buffer.from(Event.encode(event).finish()));
    assert.equal(decodeEventRecord(r).event.id, 'hello');
  }
});
