import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { PassthroughIngestor } from '../../src/ingest/passthrough.js';
import type { IngestResult } from '../../src/ingest/ingestor.js';
import { Event, Outcome, Severity } from '../../src/gen/polku/v1/event.js';

const ingestor = new PassthroughIngestor();

function ingest(data: Uint8Array, format: string): IngestResult {
  const result = ingestor.ingest({ source: 'agent-1', cluster: 'c1', format }, data);
  assert.ok(!(result instanceof Promise), 'the passthrough ingestor answers synchronously');
  return result;
}

const full = Event.fromPartial({
  id: 'evt-1',
  timestampUnixNs: 1732000000123456789n,
  source: 'agent-1',
  eventType: 'user.signup',
  metadata: { region: 'eu', tier: 'gold' },
  payload: new Uint8Array([0, 1, 2, 255]),
  routeTo: ['sink-a', 'sink-b'],
  severity: Severity.SEVERITY_ERROR,
  outcome: Outcome.OUTCOME_FAILURE,
});

const small = (id: string) => Event.fromPartial({ id, eventType: 'tick', timestampUnixNs: 1n });

/** Length-delimited records, the way protobuf's writeDelimited frames them. */
function delimited(events: Event[]): { bytes: Uint8Array; starts: number[] } {
  const writer = new BinaryWriter();
  const starts: number[] = [];
  let at = 0;
  for (const e of events) {
    starts.push(at);
    const body = Event.encode(e).finish().length;
    writer.fork();
    Event.encode(e, writer);
    writer.join();
    at += varintLength(body) + body;
  }
  return { bytes: writer.finish(), starts };
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n >>>= 7;
    len++;
  }
  return len;
}

test('one encoded Event round-trips unchanged', () => {
  const { events, problems } = ingest(Event.encode(full).finish(), 'protobuf');
  assert.deepEqual(problems, []);
  assert.equal(events.length, 1);
  assert.deepEqual(events[0], full);
});

test('every single-event format hint is understood, in any case', () => {
  const bytes = Event.encode(small('x')).finish();
  for (const format of ['protobuf', 'PROTO', 'passthrough', 'polku.event.v1.Event']) {
    assert.deepEqual(
      ingest(bytes, format).events.map((e) => e.id),
      ['x'],
      format,
    );
  }
  assert.deepEqual(
    ingest(bytes, '').events.map((e) => e.id),
    ['x'],
    'no hint means a single event',
  );
});

test('BinaryWriter fork/join writes a varint length followed by the encoded event', () => {
  // Checks the framing the other tests rely on, including a record over 127 bytes (2-byte prefix).
  const big = Event.fromPartial({ id: 'big', payload: new Uint8Array(300).fill(7) });
  for (const e of [small('a'), big]) {
    const plain = Event.encode(e).finish();
    const { bytes } = delimited([e]);
    const reader = new BinaryReader(bytes);
    assert.equal(reader.uint32(), plain.length);
    assert.deepEqual(bytes.subarray(reader.pos), plain);
  }
});

test('protobuf-delimited data with three events gives all three, in order', () => {
  const sent = [full, small('b'), Event.fromPartial({ id: 'c', payload: new Uint8Array(200).fill(1) })];
  const { events, problems } = ingest(delimited(sent).bytes, 'protobuf-delimited');
  assert.deepEqual(problems, []);
  assert.deepEqual(events, sent);
});

test('the proto-delimited hint is an alias, compared case-insensitively', () => {
  const { events } = ingest(delimited([small('a'), small('b')]).bytes, 'Proto-Delimited');
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'b'],
  );
});

test('empty protobuf-delimited data gives no events and no problems', () => {
  assert.deepEqual(ingest(new Uint8Array(0), 'protobuf-delimited'), { events: [], problems: [] });
});

test('a truncated last record keeps the events before it and reports where the damaged record starts', () => {
  const { bytes, starts } = delimited([small('a'), small('b'), small('c')]);
  const { events, problems } = ingest(bytes.subarray(0, bytes.length - 2), 'protobuf-delimited');
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'b'],
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.offset, starts[2]);
  assert.match(problems[0]!.message, /damaged delimited Event record/);
});

test('a last record cut inside its length prefix is reported at the prefix', () => {
  const { bytes } = delimited([small('a')]);
  // 0x80 starts a varint that never ends.
  const data = new Uint8Array([...bytes, 0x80]);
  const { events, problems } = ingest(data, 'protobuf-delimited');
  assert.deepEqual(
    events.map((e) => e.id),
    ['a'],
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.offset, bytes.length);
});

test('a record whose contents overrun its own length is refused alone; the records after it are kept', () => {
  // First record: length 2, holding the start of an id string that claims 2 more bytes; those
  // bytes belong to the next record. The length prefix still frames the stream, so the damage
  // stays inside the record.
  const rest = delimited([small('second'), small('third')]).bytes;
  const data = new Uint8Array([2, 0x0a, 0x02, ...rest]);
  const { events, problems } = ingest(data, 'protobuf-delimited');
  assert.deepEqual(
    events.map((e) => e.id),
    ['second', 'third'],
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.offset, 0);
});

test('garbage bytes give a problem, not a throw', () => {
  // 0x0f is field 1 with wire type 7, which does not exist.
  const garbage = new Uint8Array([0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  let result: IngestResult | undefined;
  assert.doesNotThrow(() => {
    result = ingest(garbage, 'protobuf');
  });
  assert.deepEqual(result!.events, []);
  assert.equal(result!.problems.length, 1);
  assert.match(result!.problems[0]!.message, /^not a protobuf Event: /);
  assert.equal(result!.problems[0]!.offset, 0);
});

test('garbage bytes in delimited mode give a problem, not a throw', () => {
  const { events, problems } = ingest(new Uint8Array([0x03, 0x0f, 0xff, 0xff]), 'protobuf-delimited');
  assert.deepEqual(events, []);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.offset, 0);
});

test('the ingestor is named and claims the sources it was given', () => {
  const named = new PassthroughIngestor({ name: 'pb', sources: ['edge'] });
  assert.equal(named.name, 'pb');
  assert.deepEqual(named.sources, ['edge']);
  assert.equal(new PassthroughIngestor().name, 'passthrough');
});
