import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { TapioIngestor } from '../../src/ingest/agents/tapio.js';
import { RawEbpfEvent } from '../../src/gen/tapio/v1/raw.js';
import { BIG_TS_NS, batchOf, corrupt, ingestWith, refusal, unknownField } from './agents-support.js';
import { TAPIO_CASES, TAPIO_EXPECTED, tapioBatch } from './agents-cases.js';

const ingestor = new TapioIngestor();

test('every typed-data case maps to its event_type and metadata, its message kept byte for byte', () => {
  const { events, problems } = ingestWith(ingestor, tapioBatch(TAPIO_CASES));
  assert.deepEqual(problems, []);
  assert.equal(events.length, TAPIO_CASES.length);
  events.forEach((e, i) => {
    assert.equal(refusal(e), undefined);
    assert.equal(e.id, TAPIO_CASES[i]!.id);
    assert.equal(e.source, 'tapio');
    assert.equal(e.eventType, TAPIO_EXPECTED[i]!.eventType);
    assert.deepEqual(e.metadata, TAPIO_EXPECTED[i]!.metadata);
    assert.deepEqual(e.payload, RawEbpfEvent.encode(TAPIO_CASES[i]!).finish());
    assert.deepEqual(RawEbpfEvent.decode(e.payload), TAPIO_CASES[i]);
    assert.equal(e.severity, 0);
    assert.equal(e.outcome, 0);
  });
  assert.equal(events[0]!.timestampUnixNs, BIG_TS_NS);
  assert.equal(events[1]!.timestampUnixNs, 0n);
});

test('batch fields written before the events are used as well', () => {
  const head = new BinaryWriter().uint32(26).string('c-head').uint32(34).string('n-head').finish();
  const data = new Uint8Array([...head, ...batchOf([RawEbpfEvent.encode(TAPIO_CASES[3]!).finish()])]);
  const { events } = ingestWith(ingestor, data);
  assert.equal(events[0]!.metadata['k8s.cluster.name'], 'c-head');
  assert.equal(events[0]!.metadata['k8s.node.name'], 'n-head');
});

test('invalid UTF-8 in a nested string refuses only that event, naming its data field', () => {
  const bad = RawEbpfEvent.fromPartial({
    id: 't-bad',
    type: 1,
    data: { $case: 'network', value: { dnsQuery: 'MARKER.example.com' } },
  });
  const { events, problems } = ingestWith(ingestor, corrupt(tapioBatch([TAPIO_CASES[0]!, bad, TAPIO_CASES[5]!]), 'MARKER'));
  assert.deepEqual(problems, []);
  assert.deepEqual(
    events.map((e) => refusal(e)?.message),
    [undefined, 'tapio.v1.RawEbpfEvent field 20 (network) holds invalid UTF-8', undefined],
  );
  assert.equal(events[1]!.id, 't-bad');
});

test('invalid UTF-8 in the id refuses the event with an empty id', () => {
  const { events } = ingestWith(ingestor, corrupt(tapioBatch([RawEbpfEvent.fromPartial({ id: 'MARKER' })]), 'MARKER'));
  assert.equal(refusal(events[0]!)!.message, 'tapio.v1.RawEbpfEvent field 1 (id) holds invalid UTF-8');
  assert.equal(events[0]!.id, '');
});

test('an EbpfType the proto does not have is refused, naming the field and value', () => {
  const odd = new BinaryWriter().uint32(10).string('t-odd').uint32(24).int32(6).finish();
  const { events } = ingestWith(ingestor, batchOf([odd]));
  assert.deepEqual(refusal(events[0]!), {
    code: 'INVALID_EVENT',
    message: 'tapio.v1.RawEbpfEvent type 6 is not a tapio.v1.EbpfType value',
    id: 't-odd',
  });
});

test('an invalid batch-level string ends the parse with a PARSE_ERROR naming the batch type', () => {
  const tail = new BinaryWriter().uint32(26).string('MARKER').finish();
  const data = corrupt(batchOf([RawEbpfEvent.encode(TAPIO_CASES[5]!).finish()], tail), 'MARKER');
  const { events, problems } = ingestWith(ingestor, data);
  assert.equal(events.length, 1, 'the event before the damage is kept');
  assert.equal(problems[0]!.message, 'tapio batch is not a tapio.v1.EventBatch: a batch field holds invalid UTF-8');
});

test('unknown fields, in the event and in its data, stay in the payload', () => {
  const record = new Uint8Array([...RawEbpfEvent.encode(TAPIO_CASES[0]!).finish(), ...unknownField()]);
  const { events } = ingestWith(ingestor, batchOf([record]));
  assert.deepEqual(events[0]!.payload, record);
  assert.equal(events[0]!.eventType, 'tapio.network.connection_reset');
});

test('typed data is checked without being built: valid non-ASCII kept, damage inside it refused alone', () => {
  const accented = RawEbpfEvent.fromPartial({
    id: 't-é',
    type: 3,
    data: { $case: 'storage', value: { device: 'nvme0n1', mountPoint: '/var/lib/données', errorCode: 'EIO ✗' } },
  });
  // network data whose dns_query (field 20) declares 9 bytes where 1 follows, inside an intact record
  const damaged = new Uint8Array([0x0a, 0x01, 0x64, 0xa2, 0x01, 0x04, 0xa2, 0x01, 0x09, 0x41]);
  const { events, problems } = ingestWith(
    ingestor,
    batchOf([RawEbpfEvent.encode(accented).finish(), damaged, RawEbpfEvent.encode(TAPIO_CASES[4]!).finish()]),
  );
  assert.deepEqual(
    events.map((e) => [e.id, e.eventType]),
    [
      ['t-é', 'tapio.storage'],
      ['t-cpu', 'tapio.cpu.throttled'],
    ],
  );
  assert.deepEqual(RawEbpfEvent.decode(events[0]!.payload), accented);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^tapio event 1 is not a tapio\.v1\.RawEbpfEvent: /);
});

test('invalid UTF-8 in storage, memory or cpu data refuses that event naming the data field', () => {
  const cases = [
    RawEbpfEvent.fromPartial({ id: 's', type: 3, data: { $case: 'storage', value: { errorCode: 'MARKER' } } }),
    RawEbpfEvent.fromPartial({ id: 'm', type: 4, data: { $case: 'memory', value: { cgroupPath: 'MARKER' } } }),
    RawEbpfEvent.fromPartial({ id: 'c', type: 5, data: { $case: 'cpu', value: { cgroupPath: 'MARKER' } } }),
    RawEbpfEvent.fromPartial({ id: 'k', type: 2, data: { $case: 'container', value: { image: 'MARKER' } } }),
  ];
  const names = ['22 (storage)', '23 (memory)', '24 (cpu)', '21 (container)'];
  cases.forEach((m, i) => {
    const { events } = ingestWith(ingestor, corrupt(tapioBatch([m]), 'MARKER'));
    assert.deepEqual(refusal(events[0]!), {
      code: 'INVALID_EVENT',
      message: `tapio.v1.RawEbpfEvent field ${names[i]} holds invalid UTF-8`,
    });
    assert.equal(events[0]!.id, m.id);
  });
});
