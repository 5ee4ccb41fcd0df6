import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { K8sEvent } from '../../src/gen/polku/v1/gateway.js';
import { hub } from '../../src/hub/builder.js';
import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { filter } from '../../src/middleware/filter.js';
import { Action, EventBatch, RawK8sEvent, Resource } from '../../src/gen/portti/v1/raw.js';
import { PORTTI_KINDS, PorttiIngestor } from '../../src/ingest/agents/portti.js';
import { PAYLOAD_FORMAT } from '../../src/metadata-keys.js';
import { porttiEventType, readK8sEvent } from '../../src/receive/portti/k8s-event.js';
import { GatedEmitter } from '../helpers/gated-emitter.js';
import { scrape, sample, startGateway, type RunningGateway, type WireAck } from '../helpers/gateway-harness.js';
import { AnswerStream, decode, encode, legacyPorttiClient, rawBidi, rawUnary, spoilUtf8, type ProtoClient } from './portti-clients.js';

const SEND = '/polku.v1.PorttiService/SendK8sEvent';
const STREAM = '/polku.v1.PorttiService/StreamK8sEvents';

/** A K8sEvent in proto-loader's shape. */
function k8sEvent(id: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    timestamp_unix_nano: '1796292000123456789', // above 2^53: a double would round it
    resource: 'Deployment',
    action: 'UPDATE',
    namespace: 'shop',
    name: 'cart',
    object: Buffer.from('{"kind":"Deployment","spec":{"replicas":3}}'),
    old_object: Buffer.from('{"kind":"Deployment","spec":{"replicas":2}}'),
    cluster_id: 'prod-eu',
    ...more,
  };
}

function sendK8sEvent(client: ProtoClient, event: Record<string, unknown>): Promise<{ success: boolean; error: string }> {
  return new Promise((resolve, reject) =>
    client['SendK8sEvent'](event, (err: Error | null, r: { success: boolean; error: string }) => (err ? reject(err) : resolve(r))),
  );
}

describe('polku.v1.PorttiService (the older PORTTI service) from a client that has only the proto files', () => {
  const memory = new InMemoryEmitter();
  let gw: RunningGateway;
  let client: ProtoClient;
  const byId = (id: string): Event => {
    const e = memory.events.find((x) => x.id === id);
    assert.ok(e, `event ${id} delivered`);
    return e;
  };

  before(async () => {
    gw = await startGateway(
      hub()
        .emitter(memory)
        .middleware(filter((e) => !e.id.startsWith('noise'), { reason: 'noise is filtered' })),
      {
        limits: { ...DEFAULT_LIMITS, maxMessageBytes: 64 * 1024, maxBatchEvents: 5 },
      },
    );
    client = legacyPorttiClient(gw.grpcPort);
  });
  after(async () => {
    client.close();
    await gw.stop();
  });

  test('SendK8sEvent: success, one event with the id, type, exact timestamp, metadata and the K8sEvent as payload', async () => {
    const sent = k8sEvent('k-1');
    assert.deepEqual(await sendK8sEvent(client, sent), { success: true, error: '' });
    await memory.waitForCount(1);
    const e = byId('k-1');
    assert.equal(e.source, 'portti');
    assert.equal(e.eventType, 'portti.deployment.update');
    assert.equal(e.timestampUnixNs, 1796292000123456789n);
    assert.deepEqual(e.metadata, {
      'polku.payload.format': 'protobuf:polku.v1.K8sEvent',
      'k8s.object.kind': 'Deployment',
      'k8s.object.name': 'cart',
      'k8s.namespace.name': 'shop',
      'k8s.cluster.name': 'prod-eu',
    });
    assert.deepEqual(new Uint8Array(e.payload), new Uint8Array(encode.k8sEvent(sent)), 'the message as sent, byte for byte');
    const back = K8sEvent.decode(e.payload);
    assert.equal(Buffer.from(back.oldObject).toString(), '{"kind":"Deployment","spec":{"replicas":2}}');
  });

  test('the event type is the same whichever way PORTTI spells resource and action', () => {
    for (const [resource, action] of [
      ['Deployment', 'UPDATE'],
      ['deployment', 'update'],
      ['RESOURCE_DEPLOYMENT', 'ACTION_UPDATE'],
      ['resource_deployment', 'Action_Update'],
    ] as const) {
      assert.equal(porttiEventType(resource, action), 'portti.deployment.update', `${resource}/${action}`);
    }
    assert.equal(porttiEventType('ConfigMap', 'DELETE'), 'portti.configmap.delete');
    assert.equal(porttiEventType('PersistentVolumeClaim', 'CREATE'), 'portti.pvc.create', "the Kubernetes kind gives the enum's word");
    assert.equal(porttiEventType('', ''), 'portti.unspecified.unspecified');
    assert.equal(porttiEventType('deployments.apps', 'patch me'), 'portti.deployments_apps.patch_me', 'never an extra level');
  });

  test('a K8sEvent maps as the portti ingestor maps the same RawK8sEvent, for every resource and action and each spelling', () => {
    const ingestor = new PorttiIngestor();
    let compared = 0;
    for (let resource = 1; resource < PORTTI_KINDS.length; resource++) {
      for (const action of [Action.ACTION_CREATE, Action.ACTION_UPDATE, Action.ACTION_DELETE]) {
        const raw = RawK8sEvent.fromPartial({
          id: 'same',
          timestamp: { seconds: 1796292000n, nanos: 123456789 },
          resource,
          action,
          namespace: 'shop',
          name: 'thing',
          clusterId: 'prod-eu',
        });
        const viaIngestor = ingestor.ingest(
          { source: 'portti', cluster: '', format: 'protobuf' },
          EventBatch.encode({ events: [raw], source: '', clusterId: '' }).finish(),
        );
        assert.equal(viaIngestor.problems.length, 0);
        const expected = viaIngestor.events[0]!;
        const enumName = Resource[resource]!;
        for (const spelling of [enumName, PORTTI_KINDS[resource]!, enumName.slice('RESOURCE_'.length).toLowerCase()]) {
          const k8s = K8sEvent.encode({
            id: 'same',
            timestampUnixNano: 1796292000123456789n,
            resource: spelling,
            action: Action[action]!.slice('ACTION_'.length),
            namespace: 'shop',
            name: 'thing',
            object: new Uint8Array(0),
            oldObject: new Uint8Array(0),
            clusterId: 'prod-eu',
          }).finish();
          const got = readK8sEvent(k8s) as Event;
          assert.equal(got.eventType, expected.eventType, `${spelling}/${Action[action]}`);
          assert.equal(got.timestampUnixNs, expected.timestampUnixNs);
          const { [PAYLOAD_FORMAT]: gotFormat, ...gotMeta } = got.metadata;
          const { [PAYLOAD_FORMAT]: expectedFormat, ...expectedMeta } = expected.metadata;
          assert.deepEqual(gotMeta, expectedMeta, `${spelling}/${Action[action]}`);
          assert.deepEqual([gotFormat, expectedFormat], ['protobuf:polku.v1.K8sEvent', 'protobuf:portti.v1.RawK8sEvent']);
          compared++;
        }
      }
    }
    assert.equal(compared, 28 * 3 * 3);
  });

  test('SendK8sEvent: an event the pipeline refuses is success=false with the Ack error, not a failed call', async () => {
    const r = await sendK8sEvent(client, k8sEvent('noise-1'));
    assert.deepEqual(r, { success: false, error: 'FILTERED: noise is filtered' });
  });

  test('SendK8sEvent: invalid UTF-8 in a string is success=false INVALID_EVENT naming the field', async () => {
    const bytes = spoilUtf8(encode.k8sEvent(k8sEvent('k-bad', { namespace: 'SPOILED1' })), 'SPOILED1');
    const r = await rawUnary(gw.grpcPort, SEND, bytes, decode.sendResponse);
    assert.equal(r.success, false);
    assert.match(r.error, /^INVALID_EVENT: .*K8sEvent namespace is not valid UTF-8/);
  });

  test('SendK8sEvent: bytes that are not a K8sEvent fail the call INVALID_ARGUMENT', async () => {
    await assert.rejects(rawUnary(gw.grpcPort, SEND, Buffer.from([0x0a, 0x7f]), decode.sendResponse), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /^INVALID_BATCH: malformed K8sEvent/);
      return true;
    });
  });

  test('StreamK8sEvents: full Acks, an error for the event with invalid UTF-8, an unreadable message answered, the stream kept open', async () => {
    const { stream, client: raw } = rawBidi<WireAck>(gw.grpcPort, STREAM, decode.ack);
    const batch = {
      cluster_id: 'batch-cluster',
      events: [
        k8sEvent('s-1', { cluster_id: '' }),
        k8sEvent('s-2', { name: 'SPOILED2' }),
        k8sEvent('s-3', { resource: 'RESOURCE_POD', action: 'ACTION_CREATE' }),
      ],
    };
    const ack = await stream.send(spoilUtf8(encode.k8sEventBatch(batch), 'SPOILED2'));
    assert.deepEqual(ack.event_ids, ['s-1', 's-3']);
    assert.deepEqual(
      ack.errors.map((e) => [e.event_id, e.code]),
      [['s-2', 'INVALID_EVENT']],
    );
    assert.match(ack.errors[0]!.message, /K8sEvent name is not valid UTF-8/);
    assert.match(ack.buffer_capacity, /^\d+$/);

    const unreadable = await stream.send(Buffer.from([0x0a, 0x7f, 0x01]));
    assert.deepEqual(unreadable.event_ids, []);
    assert.equal(unreadable.errors[0]!.code, 'INVALID_BATCH');
    assert.match(unreadable.errors[0]!.message, /^malformed K8sEventBatch: /);

    const tooMany = await stream.send(encode.k8sEventBatch({ events: Array.from({ length: 6 }, (_, i) => k8sEvent(`t-${i}`)) }));
    assert.equal(tooMany.errors[0]!.code, 'BATCH_TOO_LARGE');
    assert.match(tooMany.errors[0]!.message, /K8sEventBatch has more than 5 events, limit 5 \(POLKU_MAX_BATCH_EVENTS\)/);

    const after = await stream.send(encode.k8sEventBatch({ events: [k8sEvent('s-4')] }));
    assert.deepEqual(after.event_ids, ['s-4'], 'still open and answering');
    assert.equal((await stream.end()).code, grpc.status.OK);
    raw.close();

    await memory.waitForCount(4);
    assert.equal(byId('s-1').metadata['k8s.cluster.name'], 'batch-cluster', "the batch's cluster where the event has none");
    assert.equal(byId('s-3').eventType, 'portti.pod.create');
    assert.equal(byId('s-3').metadata['k8s.object.kind'], 'Pod');
    assert.equal(byId('s-3').metadata['k8s.pod.name'], 'cart', 'a pod is placed as one');
    assert.equal(memory.events.filter((e) => e.id.startsWith('s-') || e.id.startsWith('t-')).length, 3, 'nothing refused was delivered');
    const metrics = await scrape(gw.metricsPort);
    const refused = (code: string) => sample(metrics, `polku_portti_refused_events_total{service="polku.v1.PorttiService",code="${code}"}`);
    assert.equal(refused('INVALID_EVENT'), 2, 'one in SendK8sEvent, one in the stream');
    assert.equal(refused('INVALID_BATCH'), 2);
    assert.equal(refused('BATCH_TOO_LARGE'), 1);
  });

  test('StreamK8sEvents through the proto-loader client: ids in order, one Ack per batch', async () => {
    const stream = new AnswerStream<WireAck>(client['StreamK8sEvents']());
    const first = await stream.send({ events: [k8sEvent('p-1'), k8sEvent('p-2', { action: 'DELETE' })] });
    const second = await stream.send({ events: [k8sEvent('p-3')] });
    assert.deepEqual(first.event_ids, ['p-1', 'p-2']);
    assert.deepEqual(second.event_ids, ['p-3']);
    assert.equal((await stream.end()).code, grpc.status.OK);
    await memory.waitForCount(7);
    assert.equal(byId('p-2').eventType, 'portti.deployment.delete');
  });
});

describe('polku.v1 SendK8sEvent when the buffer is full', () => {
  test('fails the call RESOURCE_EXHAUSTED with the Ack error as details', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(hub().emitter(gate).buffer({ capacity: 1, overflow: 'reject' }));
    const client = legacyPorttiClient(gw.grpcPort);
    try {
      assert.deepEqual(await sendK8sEvent(client, k8sEvent('b-1')), { success: true, error: '' });
      await assert.rejects(sendK8sEvent(client, k8sEvent('b-2')), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.match(err.details, /^BUFFER_FULL: /);
        return true;
      });
    } finally {
      client.close();
      gate.open();
      await gw.stop();
    }
  });
});
