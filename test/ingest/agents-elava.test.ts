import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ElavaIngestor } from '../../src/ingest/agents/elava.js';
import { RawCloudEvent } from '../../src/gen/elava/v1/raw.js';
import { BIG_TS_NS, batchOf, corrupt, ingestWith, refusal } from './agents-support.js';
import { ELAVA_CASES, ELAVA_EXPECTED, elavaBatch } from './agents-cases.js';

const ingestor = new ElavaIngestor();

test('every aws, gcp and azure resource case (and none) maps to its event_type and cloud metadata', () => {
  assert.equal(ELAVA_CASES.length, 7 + 6 + 5 + 2);
  const { events, problems } = ingestWith(ingestor, elavaBatch(ELAVA_CASES));
  assert.deepEqual(problems, []);
  assert.equal(events.length, ELAVA_CASES.length);
  events.forEach((e, i) => {
    assert.equal(refusal(e), undefined, ELAVA_CASES[i]!.id);
    assert.equal(e.id, ELAVA_CASES[i]!.id);
    assert.equal(e.source, 'elava');
    assert.equal(e.eventType, ELAVA_EXPECTED[i]!.eventType);
    assert.deepEqual(e.metadata, ELAVA_EXPECTED[i]!.metadata, ELAVA_CASES[i]!.id);
    assert.deepEqual(RawCloudEvent.decode(e.payload), ELAVA_CASES[i]);
    assert.deepEqual(e.payload, RawCloudEvent.encode(ELAVA_CASES[i]!).finish());
  });
  assert.equal(events[0]!.timestampUnixNs, BIG_TS_NS);
  assert.equal(events[1]!.timestampUnixNs, 1_700_000_001_000_000_001n);
  assert.ok(events.some((e) => e.eventType === 'elava.aws.s3_bucket.updated'));
});

test('an unknown provider or change type refuses that event alone', () => {
  const odd = (field: number, value: number) =>
    new BinaryWriter()
      .uint32(10)
      .string(`odd-${field}`)
      .uint32(field << 3)
      .int32(value)
      .finish();
  const { events } = ingestWith(ingestor, batchOf([odd(3, 4), RawCloudEvent.encode(ELAVA_CASES[0]!).finish(), odd(10, 5)]));
  assert.deepEqual(
    events.map((e) => refusal(e)?.message),
    [
      'elava.v1.RawCloudEvent provider 4 is not an elava.v1.CloudProvider value',
      undefined,
      'elava.v1.RawCloudEvent change_type 5 is not an elava.v1.ChangeType value',
    ],
  );
  assert.deepEqual(
    events.map((e) => e.id),
    ['odd-3', 'e-0', 'odd-10'],
  );
});

test('an unknown provider in the batch itself ends the parse with a PARSE_ERROR', () => {
  const tail = new BinaryWriter().uint32(24).int32(9).finish();
  const { events, problems } = ingestWith(ingestor, batchOf([RawCloudEvent.encode(ELAVA_CASES[1]!).finish()], tail));
  assert.equal(events.length, 1);
  assert.equal(
    problems[0]!.message,
    'elava batch is not an elava.v1.EventBatch: field 3 (provider) 9 is not an elava.v1.CloudProvider value',
  );
});

test('invalid UTF-8 in a tag refuses that event naming the tags field', () => {
  const bad = RawCloudEvent.fromPartial({ id: 'e-bad', tags: { owner: 'MARKER' } });
  const { events } = ingestWith(ingestor, corrupt(elavaBatch([ELAVA_CASES[0]!, bad]), 'MARKER'));
  assert.equal(refusal(events[0]!), undefined);
  assert.deepEqual(refusal(events[1]!), { code: 'INVALID_EVENT', message: 'elava.v1.RawCloudEvent field 9 (tags) holds invalid UTF-8' });
  assert.equal(events[1]!.id, 'e-bad');
});
