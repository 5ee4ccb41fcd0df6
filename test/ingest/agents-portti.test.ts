import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { PORTTI_KINDS, PorttiIngestor } from '../../src/ingest/agents/portti.js';
import { Action, EventBatch, RawK8sEvent, Resource } from '../../src/gen/portti/v1/raw.js';
import { BIG_TS, BIG_TS_NS, batchOf, corrupt, ingestWith, refusal, unknownField } from './agents-support.js';

const ingestor = new PorttiIngestor();

const deployment = RawK8sEvent.fromPartial({
  id: 'p-1',
  timestamp: BIG_TS,
  resource: Resource.RESOURCE_DEPLOYMENT,
  action: Action.ACTION_UPDATE,
  namespace: 'shop',
  name: 'cart',
  uid: 'uid-1',
  object: new TextEncoder().encode('{"spec":{"replicas":3}}'),
  oldObject: new TextEncoder().encode('{"spec":{"replicas":2}}'),
  clusterId: 'prod-eu',
  resourceVersion: '4711',
  generation: 9_007_199_254_740_993n,
  labels: { app: 'cart', tier: '' },
  annotations: { 'deployment.kubernetes.io/revision': '7' },
});

test('a deployment update becomes portti.deployment.update with its fields in metadata and its message as payload', () => {
  const { events, problems } = ingestWith(
    ingestor,
    EventBatch.encode({ events: [deployment], source: 'portti', clusterId: 'other' }).finish(),
  );
  assert.deepEqual(problems, []);
  assert.equal(events.length, 1);
  const e = events[0]!;
  assert.equal(refusal(e), undefined);
  assert.equal(e.id, 'p-1');
  assert.equal(e.timestampUnixNs, BIG_TS_NS);
  assert.equal(e.source, 'portti');
  assert.equal(e.eventType, 'portti.deployment.update');
  assert.deepEqual(e.metadata, {
    'polku.payload.format': 'protobuf:portti.v1.RawK8sEvent',
    'k8s.cluster.name': 'prod-eu',
    'k8s.namespace.name': 'shop',
    'k8s.object.kind': 'Deployment',
    'k8s.object.name': 'cart',
    'k8s.object.uid': 'uid-1',
    'k8s.object.resource_version': '4711',
    'k8s.object.generation': '9007199254740993',
    'k8s.object.labels.app': 'cart',
    'k8s.object.labels.tier': '',
    'k8s.object.annotations.deployment.kubernetes.io/revision': '7',
  });
  assert.deepEqual(e.payload, RawK8sEvent.encode(deployment).finish());
  assert.deepEqual(RawK8sEvent.decode(e.payload), deployment);
  assert.equal(e.severity, 0);
  assert.equal(e.outcome, 0);
});

test('every action and resource gives its event_type; a pod is placed as a pod; empty fields are left out', () => {
  const sent = [];
  for (const action of [Action.ACTION_UNSPECIFIED, Action.ACTION_CREATE, Action.ACTION_UPDATE, Action.ACTION_DELETE]) {
    for (const resource of [Resource.RESOURCE_POD, Resource.RESOURCE_PVC, Resource.RESOURCE_UNSPECIFIED]) {
      sent.push(RawK8sEvent.fromPartial({ id: `${resource}-${action}`, resource, action, name: 'n', uid: 'u' }));
    }
  }
  const { events, problems } = ingestWith(ingestor, EventBatch.encode({ events: sent, source: '', clusterId: 'batch-cluster' }).finish());
  assert.deepEqual(problems, []);
  assert.deepEqual(
    events.map((e) => e.eventType),
    ['unspecified', 'create', 'update', 'delete'].flatMap((a) => [`portti.pod.${a}`, `portti.pvc.${a}`, `portti.unspecified.${a}`]),
  );
  assert.deepEqual(events[0]!.metadata, {
    'polku.payload.format': 'protobuf:portti.v1.RawK8sEvent',
    'k8s.cluster.name': 'batch-cluster',
    'k8s.object.kind': 'Pod',
    'k8s.object.name': 'n',
    'k8s.object.uid': 'u',
    'k8s.pod.name': 'n',
    'k8s.pod.uid': 'u',
  });
  assert.equal(events[1]!.metadata['k8s.object.kind'], 'PersistentVolumeClaim');
  assert.equal(events[2]!.metadata['k8s.object.kind'], undefined, 'RESOURCE_UNSPECIFIED has no kind');
  assert.equal(events[0]!.timestampUnixNs, 0n, 'no timestamp stays 0 so intake stamps the receive time');
});

test('PORTTI_KINDS names a Kubernetes kind for every Resource value', () => {
  const values = Object.values(Resource).filter((v): v is number => typeof v === 'number' && v > 0);
  assert.equal(PORTTI_KINDS.length, Math.max(...values) + 1);
  for (const v of values) assert.match(PORTTI_KINDS[v]!, /^[A-Z][A-Za-z]+$/, `Resource ${v}`);
});

test('invalid UTF-8 in one event refuses that event alone, naming the field; its id is kept for the Ack', () => {
  const bad = RawK8sEvent.fromPartial({ id: 'p-bad', name: 'MARKER-name', resource: 1, action: 1 });
  const data = corrupt(EventBatch.encode({ events: [deployment, bad, deployment], source: '', clusterId: '' }).finish(), 'MARKER');
  const { events, problems } = ingestWith(ingestor, data);
  assert.deepEqual(problems, []);
  assert.equal(events.length, 3);
  assert.equal(refusal(events[0]!), undefined);
  assert.equal(refusal(events[2]!), undefined);
  assert.deepEqual(refusal(events[1]!), {
    code: 'INVALID_EVENT',
    message: 'portti.v1.RawK8sEvent field 6 (name) holds invalid UTF-8',
  });
  assert.equal(events[1]!.id, 'p-bad');
});

test('invalid UTF-8 inside a map (labels) names the map field', () => {
  const bad = RawK8sEvent.fromPartial({ id: 'p-bad', labels: { app: 'MARKER' } });
  const { events } = ingestWith(ingestor, corrupt(EventBatch.encode({ events: [bad], source: '', clusterId: '' }).finish(), 'MARKER'));
  assert.equal(refusal(events[0]!)!.message, 'portti.v1.RawK8sEvent field 13 (labels) holds invalid UTF-8');
});

test('an enum value the proto does not have refuses that event INVALID_EVENT naming field and value', () => {
  const withResource = (resource: number, action: number) =>
    new BinaryWriter().uint32(10).string('odd').uint32(24).int32(resource).uint32(32).int32(action).finish();
  const { events, problems } = ingestWith(
    ingestor,
    batchOf([withResource(99, 1), withResource(1, 7), withResource(-1, 1), RawK8sEvent.encode(deployment).finish()]),
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(refusal(events[0]!), {
    code: 'INVALID_EVENT',
    message: 'portti.v1.RawK8sEvent resource 99 is not a portti.v1.Resource value',
    id: 'odd',
  });
  assert.equal(refusal(events[1]!)!.message, 'portti.v1.RawK8sEvent action 7 is not a portti.v1.Action value');
  assert.equal(refusal(events[2]!)!.message, 'portti.v1.RawK8sEvent resource -1 is not a portti.v1.Resource value');
  assert.equal(refusal(events[3]!), undefined);
});

test('a record whose length runs past the end ends the parse with PARSE_ERROR; the events before it are kept', () => {
  const good = RawK8sEvent.encode(deployment).finish();
  const whole = batchOf([good, good, good]);
  const cut = whole.subarray(0, whole.length - 5);
  const { events, problems } = ingestWith(ingestor, cut);
  assert.deepEqual(
    events.map((e) => e.id),
    ['p-1', 'p-1'],
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^portti batch is not a portti\.v1\.EventBatch: event 2 of \d+ bytes runs past the end$/);
  assert.equal(problems[0]!.offset, (2 * whole.length) / 3, 'the offset is where the third record starts');
});

test('a bad tag or a known batch field of the wrong wire type ends the parse, naming the batch type', () => {
  const good = RawK8sEvent.encode(deployment).finish();
  const badTag = batchOf([good], new Uint8Array([0x2c, 0x00]));
  assert.match(ingestWith(ingestor, badTag).problems[0]!.message, /^portti batch is not a portti\.v1\.EventBatch: bad tag 44$/);
  const wrongWire = batchOf([good], new BinaryWriter().uint32(16).uint32(5).finish());
  const r = ingestWith(ingestor, wrongWire);
  assert.equal(r.events.length, 1);
  assert.equal(r.problems[0]!.message, 'portti batch is not a portti.v1.EventBatch: field 2 (source) has wire type 0, not 2');
  const eventsAsVarint = new BinaryWriter().uint32(8).uint32(1).finish();
  assert.equal(
    ingestWith(ingestor, eventsAsVarint).problems[0]!.message,
    'portti batch is not a portti.v1.EventBatch: field 1 (events) has wire type 0, not 2',
  );
});

test('damage inside one record (its framing intact) is a PARSE_ERROR for that record; the others are kept', () => {
  const good = RawK8sEvent.encode(deployment).finish();
  const damaged = new Uint8Array([0x2a, 0x09, 0x41]); // namespace: 9 bytes declared, 1 present
  const { events, problems } = ingestWith(ingestor, batchOf([good, damaged, good]));
  assert.equal(events.length, 2);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^portti event 1 is not a portti\.v1\.RawK8sEvent: /);
});

test('more than maxBatchEvents records refuse the whole batch before any is decoded', () => {
  const bad = corrupt(RawK8sEvent.encode(RawK8sEvent.fromPartial({ id: 'MARKER' })).finish(), 'MARKER');
  const result = ingestWith(ingestor, batchOf([bad, bad, bad, bad]), { maxBatchEvents: 3 });
  assert.equal(
    result.tooLarge,
    'portti batch has more than 3 events, limit 3 (POLKU_MAX_BATCH_EVENTS); refused at event 4 without decoding any',
  );
  assert.equal(ingestWith(ingestor, batchOf([bad, bad, bad]), { maxBatchEvents: 3 }).tooLarge, undefined);
});

test('one event over maxEventBytes is refused PAYLOAD_TOO_LARGE without decoding; the rest are kept', () => {
  const big = RawK8sEvent.fromPartial({ id: 'big', object: new Uint8Array(5_000) });
  const size = RawK8sEvent.encode(big).finish().length;
  const { events } = ingestWith(
    ingestor,
    EventBatch.encode({ events: [deployment, big, deployment], source: '', clusterId: '' }).finish(),
    {
      maxEventBytes: 4_096,
    },
  );
  assert.equal(events.length, 3);
  assert.deepEqual(refusal(events[1]!), {
    code: 'PAYLOAD_TOO_LARGE',
    message: `portti.v1.RawK8sEvent is ${size} bytes, limit 4096 (POLKU_MAX_EVENT_BYTES)`,
  });
  assert.equal(refusal(events[0]!), undefined);
});

test('unknown fields are allowed and stay in the payload bytes', () => {
  const record = new Uint8Array([...RawK8sEvent.encode(deployment).finish(), ...unknownField()]);
  const { events, problems } = ingestWith(ingestor, batchOf([record], unknownField()));
  assert.deepEqual(problems, []);
  assert.equal(events[0]!.eventType, 'portti.deployment.update');
  assert.deepEqual(events[0]!.payload, record);
});

test('a timestamp whose nanos are out of range is refused, not guessed', () => {
  const odd = RawK8sEvent.fromPartial({ id: 'ts', timestamp: { seconds: 1n, nanos: 1_000_000_000 } });
  const { events } = ingestWith(ingestor, EventBatch.encode({ events: [odd], source: '', clusterId: '' }).finish());
  assert.deepEqual(refusal(events[0]!), { code: 'INVALID_EVENT', message: 'timestamp.nanos 1000000000 is outside 0..999999999', id: 'ts' });
});

test('an empty batch gives no events and no problems', () => {
  assert.deepEqual(ingestWith(ingestor, new Uint8Array(0)), { events: [], problems: [] });
});
