import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clipUtf8, decodeEventRecord, encodeEventRecord, encodeEventRecords, idempotencyKeyOf } from '../../src/buffer/durable/event-record.js';
import { Event, Outcome, Severity } from '../../src/gen/polku/v1/event.js';

/** The event with its payload as a plain Uint8Array (decoding from a Buffer gives a Buffer view). */
const plain = (e: Event): Event => ({ ...e, payload: new Uint8Array(e.payload) });

/** An event with every field of polku.event.v1.Event set to something other than its default. */
function fullEvent(overrides: Partial<Event> = {}): Event {
  return {
    id: 'evt-1',
    timestampUnixNs: 1_764_560_000_123_456_789n,
    source: 'kubelet',
    eventType: 'pod.started',
    metadata: { namespace: 'default', 'ünïcode-κλειδί': 'värde ✓', empty: '' },
    payload: new Uint8Array([0, 1, 2, 250, 255]),
    routeTo: ['webhook', 'file'],
    severity: Severity.SEVERITY_WARNING,
    outcome: Outcome.OUTCOME_FAILURE,
    ...overrides,
  };
}

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
    assert.deepEqual(Buffer.from(encodeEventRecord(event, [], '').subarray(2)), Buffer.from(Event.encode(event).finish()), `timestamp ${t}`);
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
  assert.ok(records.every((r) => r.buffer === records[0]!.buffer), 'one allocation for the whole commit');
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
