import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { EventBatch as ElavaBatch, RawCloudEvent } from '../../src/gen/elava/v1/raw.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { type Ack, GatewayClient, type IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { Action, EventBatch as PorttiBatch, RawK8sEvent, Resource } from '../../src/gen/portti/v1/raw.js';
import { EventBatch as TapioBatch, RawEbpfEvent } from '../../src/gen/tapio/v1/raw.js';
import { sample, scrape, until } from '../helpers/gateway-harness.js';
import { ROOT, killAll, track } from '../helpers/line-process.js';
import type { EventJson } from '../../src/emit/event-json.js';
import { servePolku, stdoutEvents } from '../helpers/polku-process.js';
import { BIG_TS, BIG_TS_NS, batchOf, corrupt } from './agents-support.js';
import { ELAVA_CASES, ELAVA_EXPECTED, TAPIO_CASES, TAPIO_EXPECTED, elavaBatch, tapioBatch } from './agents-cases.js';

// The agents' batches through a real `polku serve` over real gRPC, out of the stdout emitter.

after(() => killAll());

/** PORTTI: each action, with labels, annotations, object and old_object. */
const PORTTI_CASES = [Action.ACTION_UNSPECIFIED, Action.ACTION_CREATE, Action.ACTION_UPDATE, Action.ACTION_DELETE].map((action, i) =>
  RawK8sEvent.fromPartial({
    id: `p-${i}`,
    timestamp: { seconds: BIG_TS.seconds + BigInt(i), nanos: BIG_TS.nanos },
    resource: i % 2 === 0 ? Resource.RESOURCE_DEPLOYMENT : Resource.RESOURCE_POD,
    action,
    namespace: 'shop',
    name: `obj-${i}`,
    uid: `uid-${i}`,
    object: Buffer.from(`{"v":${i}}`),
    oldObject: i === 2 ? Buffer.from('{"v":1}') : new Uint8Array(0),
    resourceVersion: `${100 + i}`,
    generation: BigInt(i),
    labels: { app: 'cart' },
    annotations: { note: `n${i}` },
  }),
);
const PORTTI_TYPES = ['portti.deployment.unspecified', 'portti.pod.create', 'portti.deployment.update', 'portti.pod.delete'];
const porttiBatch = (events: RawK8sEvent[]) => PorttiBatch.encode({ events, source: 'portti', clusterId: 'c-portti' }).finish();

function payloadOf(e: EventJson): Uint8Array {
  return e.payload !== undefined ? Buffer.from(e.payload, 'utf8') : Buffer.from(e.payload_base64 ?? '', 'base64');
}

function raw(source: string, data: Uint8Array, format = 'protobuf'): IngestBatch {
  return { source, cluster: '', payload: { $case: 'raw', value: { data, format } } };
}

/** One StreamEvents call; `send` resolves with the Ack for that batch. */
function stream(port: number) {
  const client = new GatewayClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.streamEvents();
  const waiting: Array<(a: Ack) => void> = [];
  call.on('data', (ack: Ack) => waiting.shift()?.(ack));
  call.on('error', () => {});
  return {
    send: (batch: IngestBatch) =>
      new Promise<Ack>((resolve) => {
        waiting.push(resolve);
        call.write(batch);
      }),
    close: () => {
      call.end();
      client.close();
    },
  };
}

test('every agent and typed-data case through polku serve: one for one out of stdout, ids, types, metadata, payloads, ns timestamps', async () => {
  const p = track(await servePolku([]));
  const s = stream(p.grpcPort);
  const sent = [
    { source: 'tapio', data: tapioBatch(TAPIO_CASES), ids: TAPIO_CASES.map((e) => e.id) },
    { source: 'elava', data: elavaBatch(ELAVA_CASES), ids: ELAVA_CASES.map((e) => e.id) },
    { source: 'portti', data: porttiBatch(PORTTI_CASES), ids: PORTTI_CASES.map((e) => e.id) },
  ];
  for (const b of sent) {
    const ack = await s.send(raw(b.source, b.data));
    assert.deepEqual(ack.errors, [], b.source);
    assert.deepEqual(ack.eventIds, b.ids, b.source);
  }
  const total = TAPIO_CASES.length + ELAVA_CASES.length + PORTTI_CASES.length;
  await until(() => stdoutEvents(p).length >= total, `${total} events on stdout`);
  const out = stdoutEvents(p);
  assert.equal(out.length, total, 'nothing else emitted');
  const byId = new Map(out.map((e) => [e.id, e]));
  assert.equal(byId.size, total, 'each id once');

  TAPIO_CASES.forEach((m, i) => {
    const e = byId.get(m.id)!;
    assert.equal(e.source, 'tapio');
    assert.equal(e.event_type, TAPIO_EXPECTED[i]!.eventType);
    assert.deepEqual(e.metadata, TAPIO_EXPECTED[i]!.metadata);
    assert.deepEqual(RawEbpfEvent.decode(payloadOf(e)), m);
  });
  assert.equal(byId.get('t-net')!.timestamp_unix_ns, BIG_TS_NS.toString(), 'exact to the nanosecond');
  ELAVA_CASES.forEach((m, i) => {
    const e = byId.get(m.id)!;
    assert.equal(e.source, 'elava');
    assert.equal(e.event_type, ELAVA_EXPECTED[i]!.eventType);
    assert.deepEqual(e.metadata, ELAVA_EXPECTED[i]!.metadata);
    assert.deepEqual(RawCloudEvent.decode(payloadOf(e)), m);
  });
  assert.equal(byId.get('e-0')!.timestamp_unix_ns, BIG_TS_NS.toString());
  PORTTI_CASES.forEach((m, i) => {
    const e = byId.get(m.id)!;
    assert.equal(e.event_type, PORTTI_TYPES[i]);
    assert.equal(e.metadata['k8s.object.labels.app'], 'cart');
    assert.equal(e.metadata['k8s.object.annotations.note'], `n${i}`);
    assert.equal(e.metadata['k8s.cluster.name'], 'c-portti');
    assert.equal(e.metadata['polku.payload.format'], 'protobuf:portti.v1.RawK8sEvent');
    assert.deepEqual(RawK8sEvent.decode(payloadOf(e)), m);
    assert.equal(e.timestamp_unix_ns, (BIG_TS_NS + BigInt(i) * 1_000_000_000n).toString());
  });
  const metrics = await scrape(p.metricsPort);
  assert.equal(sample(metrics, 'polku_events_accepted_total{source="tapio"}'), TAPIO_CASES.length);
  assert.equal(sample(metrics, 'polku_events_accepted_total{source="elava"}'), ELAVA_CASES.length);
  assert.equal(sample(metrics, 'polku_events_accepted_total{source="portti"}'), PORTTI_CASES.length);
  s.close();
});

test('bad agent events are refused in their place, the rest accepted, the stream kept open, counters moving', async () => {
  const p = track(await servePolku([], { POLKU_MAX_BATCH_EVENTS: '20', POLKU_MAX_EVENT_BYTES: '4096', POLKU_MAX_METADATA_BYTES: '1024' }));
  const s = stream(p.grpcPort);
  const ok = (id: string) => RawEbpfEvent.fromPartial({ id, type: 1, subtype: 'x' });
  const enc = (m: RawEbpfEvent) => RawEbpfEvent.encode(m).finish();

  // Invalid UTF-8 in one event's string: only that one refused, named by id.
  const utf8 = await s.send(
    raw('tapio', corrupt(tapioBatch([ok('a1'), RawEbpfEvent.fromPartial({ id: 'a2', podName: 'MARKER' }), ok('a3')]), 'MARKER')),
  );
  assert.deepEqual(utf8.eventIds, ['a1', 'a3']);
  assert.deepEqual(
    utf8.errors.map((e) => [e.eventId, e.code, e.message]),
    [['a2', 'INVALID_EVENT', 'events[1]: tapio.v1.RawEbpfEvent field 8 (pod_name) holds invalid UTF-8']],
  );

  // An enum value the proto does not have.
  const oddType = new BinaryWriter().uint32(10).string('b2').uint32(24).int32(42).finish();
  const badEnum = await s.send(raw('tapio', batchOf([enc(ok('b1')), oddType])));
  assert.deepEqual(badEnum.eventIds, ['b1']);
  assert.deepEqual(
    badEnum.errors.map((e) => [e.eventId, e.code, e.message]),
    [['b2', 'INVALID_EVENT', 'events[1]: tapio.v1.RawEbpfEvent type 42 is not a tapio.v1.EbpfType value']],
  );

  // A damaged record mid-batch: the events before it are kept, the parse ends there.
  const whole = batchOf([enc(ok('c1')), enc(ok('c2')), enc(ok('c3'))]);
  const damaged = Uint8Array.from(whole);
  damaged[enc(ok('c1')).length + 2 + 1] = 0x7f; // c2's length byte: now runs past the end
  const dmg = await s.send(raw('tapio', damaged));
  assert.deepEqual(dmg.eventIds, ['c1']);
  assert.equal(dmg.errors.length, 1);
  assert.equal(dmg.errors[0]!.code, 'PARSE_ERROR');
  assert.match(
    dmg.errors[0]!.message,
    /^tapio batch is not a tapio\.v1\.EventBatch: event 1 of 127 bytes runs past the end \(at byte \d+\)$/,
  );

  // Over maxBatchEvents: the whole batch, nothing decoded.
  const many = await s.send(raw('elava', elavaBatch(Array.from({ length: 21 }, (_, i) => RawCloudEvent.fromPartial({ id: `m${i}` })))));
  assert.deepEqual(many.eventIds, []);
  assert.deepEqual(
    many.errors.map((e) => e.code),
    ['BATCH_TOO_LARGE'],
  );
  assert.match(many.errors[0]!.message, /more than 20 events, limit 20 \(POLKU_MAX_BATCH_EVENTS\)/);

  // One event over maxEventBytes; one whose labels take metadata over maxMetadataBytes.
  const big = RawK8sEvent.fromPartial({ id: 'd2', object: new Uint8Array(5_000) });
  const labelled = RawK8sEvent.fromPartial({
    id: 'd3',
    labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label-${i}`, 'x'.repeat(20)])),
  });
  const sized = await s.send(
    raw('portti', porttiBatch([RawK8sEvent.fromPartial({ id: 'd1' }), big, labelled, RawK8sEvent.fromPartial({ id: 'd4' })])),
  );
  assert.deepEqual(sized.eventIds, ['d1', 'd4']);
  assert.deepEqual(
    sized.errors.map((e) => [e.eventId, e.code]),
    [
      ['', 'PAYLOAD_TOO_LARGE'],
      ['d3', 'METADATA_TOO_LARGE'],
    ],
  );
  assert.match(sized.errors[0]!.message, /^events\[1\]: portti\.v1\.RawK8sEvent is \d+ bytes, limit 4096 \(POLKU_MAX_EVENT_BYTES\)$/);

  const accepted = ['a1', 'a3', 'b1', 'c1', 'd1', 'd4'];
  await until(() => stdoutEvents(p).length >= accepted.length, 'the accepted events on stdout');
  assert.deepEqual(
    stdoutEvents(p)
      .map((e) => e.id)
      .sort(),
    accepted,
  );
  const metrics = await scrape(p.metricsPort);
  assert.equal(sample(metrics, 'polku_events_dropped_total{reason="invalid_event"}'), 2);
  assert.equal(sample(metrics, 'polku_events_dropped_total{reason="parse_error"}'), 1);
  assert.equal(sample(metrics, 'polku_events_dropped_total{reason="payload_too_large"}'), 1);
  assert.equal(sample(metrics, 'polku_events_dropped_total{reason="metadata_too_large"}'), 1);
  assert.equal(sample(metrics, 'polku_events_dropped_total{reason="batch_too_large"}'), 21);
  s.close();
});

test('a gateway without the agents\u2019 ingestors refuses their batches PARSE_ERROR, counted, never accepting an event', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'polku-agents-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'no-agents.config.ts');
  writeFileSync(
    config,
    `import { hub, JsonIngestor, PassthroughIngestor, StdoutEmitter } from ${JSON.stringify(join(ROOT, 'src/index.ts'))};\n` +
      'export default hub().ingestor(new JsonIngestor()).ingestor(new PassthroughIngestor()).emitter(new StdoutEmitter());\n',
  );
  const p = track(await servePolku(['--config', config]));
  const s = stream(p.grpcPort);
  const shapes: Array<[string, Uint8Array]> = [
    ['tapio', tapioBatch(TAPIO_CASES)],
    ['tapio', tapioBatch([TAPIO_CASES[5]!])],
    [
      'tapio',
      TapioBatch.encode({ events: [RawEbpfEvent.fromPartial({ id: 'only-id' })], source: '', clusterId: '', nodeName: '' }).finish(),
    ],
    ['elava', elavaBatch(ELAVA_CASES)],
    ['elava', elavaBatch([ELAVA_CASES[19]!])],
    [
      'elava',
      ElavaBatch.encode({ events: [RawCloudEvent.fromPartial({ id: 'only-id' })], source: '', provider: 0, accountId: '' }).finish(),
    ],
    ['portti', porttiBatch(PORTTI_CASES)],
    ['portti', porttiBatch([PORTTI_CASES[1]!])],
    ['portti', PorttiBatch.encode({ events: [RawK8sEvent.fromPartial({ id: 'only-id' })], source: '', clusterId: '' }).finish()],
  ];
  for (const [source, data] of shapes) {
    const ack = await s.send(raw(source, data));
    assert.deepEqual(ack.eventIds, [], `${source}: no event accepted`);
    assert.equal(ack.errors.length, 1);
    assert.equal(ack.errors[0]!.code, 'PARSE_ERROR');
    assert.match(
      ack.errors[0]!.message,
      new RegExp(
        `^source "${source}" with format "protobuf" sends ${source}\\.v1\\.EventBatch batches, not polku Events: add the \\w+Ingestor`,
      ),
    );
  }
  // Under a source name the gateway cannot tell apart, an agent batch as sent (its source field
  // set) still is no Event: its field 2 is a string where Event's is an int64 (or, for ELAVA,
  // field 3 a varint where Event's is a string).
  for (const data of [tapioBatch(TAPIO_CASES), elavaBatch(ELAVA_CASES), porttiBatch(PORTTI_CASES)]) {
    const ack = await s.send(raw('some-agent', data));
    assert.deepEqual(ack.eventIds, []);
    assert.deepEqual(
      ack.errors.map((e) => e.code),
      ['PARSE_ERROR'],
    );
    assert.match(ack.errors[0]!.message, /^not a protobuf Event: malformed event: field \d \(\w+\) has wire type \d, not \d/);
  }
  // A sentinel polku event: once it is out, everything sent before it has been through.
  const sentinel = await s.send(raw('some-agent', Event.encode(Event.fromPartial({ id: 'sentinel', eventType: 'x' })).finish()));
  assert.deepEqual(sentinel.eventIds, ['sentinel']);
  await until(() => stdoutEvents(p).length >= 1, 'the sentinel on stdout');
  assert.deepEqual(
    stdoutEvents(p).map((e) => e.id),
    ['sentinel'],
  );
  const metrics = await scrape(p.metricsPort);
  assert.equal(sample(metrics, 'polku_events_dropped_total{reason="parse_error"}'), shapes.length + 3);
  s.close();
});
