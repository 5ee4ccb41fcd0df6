import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Event } from '../../src/gen/polku/v1/event.js';
import { PassthroughIngestor } from '../../src/ingest/passthrough.js';
import { ELAVA_CASES, TAPIO_CASES, elavaBatch, tapioBatch } from './agents-cases.js';
import { ingestWith } from './agents-support.js';

// The passthrough ingestor and the agents' batches: no bytes turned into garbage.

test('an agent source is refused whole, naming the batch type, the format and the ingestor to add', () => {
  const passthrough = new PassthroughIngestor();
  for (const [source, type, ingestor] of [
    ['tapio', 'tapio.v1.EventBatch', 'TapioIngestor'],
    ['elava', 'elava.v1.EventBatch', 'ElavaIngestor'],
    ['portti', 'portti.v1.EventBatch', 'PorttiIngestor'],
  ] as const) {
    const result = ingestWith(passthrough, tapioBatch(TAPIO_CASES), {}, source);
    assert.deepEqual(result.events, []);
    assert.deepEqual(result.problems, [
      {
        message: `source "${source}" with format "protobuf" sends ${type} batches, not polku Events: add the ${ingestor} (in polku's default pipeline) to read them; refused whole, no event taken from it`,
        offset: 0,
      },
    ]);
  }
});

test('a passthrough told to claim an agent source decodes its bytes as Events', () => {
  const claiming = new PassthroughIngestor({ sources: ['tapio'] });
  const event = Event.fromPartial({ id: 'mine', eventType: 'x' });
  assert.deepEqual(ingestWith(claiming, Event.encode(event).finish(), {}, 'tapio').events, [event]);
});

test('the strict Event decoder refuses a known field of the wrong wire type instead of skipping it', () => {
  const passthrough = new PassthroughIngestor();
  const cases: Array<[Uint8Array, string]> = [
    [
      new BinaryWriter().uint32(10).string('id').uint32(18).string('not a number').finish(),
      'field 2 (timestamp_unix_ns) has wire type 2, not 0',
    ],
    [new BinaryWriter().uint32(24).uint32(1).finish(), 'field 3 (source) has wire type 0, not 2'],
    [new BinaryWriter().uint32(82).string('x').finish(), 'field 10 (severity) has wire type 2, not 0'],
    [new BinaryWriter().uint32(42).fork().uint32(8).uint32(1).join().finish(), 'metadata entry field 1 has wire type 0, not 2'],
  ];
  for (const [bytes, why] of cases) {
    const result = ingestWith(passthrough, bytes, {}, 'some-agent');
    assert.deepEqual(result.events, []);
    assert.deepEqual(result.problems, [{ message: `not a protobuf Event: malformed event: ${why}`, offset: 0 }]);
  }
  // Unknown fields of any wire type are still skipped.
  const unknown = new BinaryWriter()
    .uint32(10)
    .string('ok')
    .uint32(99 << 3)
    .uint32(5)
    .uint32((98 << 3) | 2)
    .string('z')
    .finish();
  assert.deepEqual(
    ingestWith(passthrough, unknown, {}, 'some-agent').events.map((e) => e.id),
    ['ok'],
  );
});

test('agent batches as agents send them are no Event under any other source name', () => {
  const passthrough = new PassthroughIngestor();
  for (const data of [tapioBatch(TAPIO_CASES), tapioBatch([]), elavaBatch(ELAVA_CASES), elavaBatch([])]) {
    const result = ingestWith(passthrough, data, {}, 'some-agent');
    assert.deepEqual(result.events, []);
    assert.equal(result.problems.length, 1);
  }
});
