import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { RawK8sEvent } from '../../src/gen/portti/v1/raw.js';
import { hub } from '../../src/hub/builder.js';
import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { GatedEmitter } from '../helpers/gated-emitter.js';
import { scrape, sample, startGateway, until, type RunningGateway, type WireAck } from '../helpers/gateway-harness.js';
import {
  AnswerStream,
  decode,
  encode,
  legacyPorttiClient,
  porttiClient,
  porttiEvents,
  rawBidi,
  spoilUtf8,
  StandInPorttiIngestor,
  type WirePorttiAck,
} from './portti-clients.js';

const STREAM = '/portti.v1.PorttiService/StreamK8sEvents';

describe('portti.v1.PorttiService from a client that has only the proto files', () => {
  const memory = new InMemoryEmitter();
  const ingestor = new StandInPorttiIngestor();
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(hub().ingestor(ingestor).emitter(memory), {
      limits: { ...DEFAULT_LIMITS, maxMessageBytes: 64 * 1024, maxBatchEvents: 5 },
    });
  });
  after(() => gw.stop());

  test('StreamK8sEvents: each batch reaches the ingestor as the bytes sent, and the Ack lists its ids in order', async () => {
    const client = porttiClient(gw.grpcPort);
    const stream = new AnswerStream<WirePorttiAck>(client['StreamK8sEvents']());
    const batches = [
      { events: porttiEvents('a'), source: 'portti', cluster_id: 'prod-eu' },
      { events: porttiEvents('b').slice(0, 1), source: 'anything', cluster_id: '' },
    ];
    const before = ingestor.received.length;
    for (const batch of batches) {
      const ack = await stream.send(batch);
      assert.deepEqual(
        ack.event_ids,
        batch.events.map((e) => e.id),
      );
      assert.match(ack.buffer_size, /^\d+$/, 'buffer_size is an int64');
    }
    assert.equal((await stream.end()).code, grpc.status.OK);
    client.close();

    const handed = ingestor.received.slice(before);
    assert.equal(handed.length, 2);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(handed[i]!.data, new Uint8Array(encode.porttiBatch(batches[i]!)), `batch ${i} byte for byte`);
      assert.equal(handed[i]!.source, 'portti', 'whatever the batch calls itself');
      assert.equal(handed[i]!.format, 'protobuf');
      assert.equal(handed[i]!.cluster, batches[i]!.cluster_id);
    }
    await memory.waitForCount(4);
    const out = memory.events.filter((e) => e.id.startsWith('a-') || e.id === 'b-create');
    assert.deepEqual(
      out.map((e) => e.id),
      ['a-create', 'a-update', 'a-delete', 'b-create'],
    );
    // The ingestor's payload is the RawK8sEvent as sent: every field survived the receiver.
    const update = RawK8sEvent.decode(out[1]!.payload);
    assert.equal(update.name, 'cart-7d9f');
    assert.deepEqual(update.labels, { app: 'cart', tier: 'web' });
    assert.equal(Buffer.from(update.oldObject).toString(), '{"kind":"Pod","status":{"phase":"Pending"}}');
    assert.equal(update.generation, 7n);
  });

  test('an event with invalid UTF-8 is missing from the Ack, the others are listed, the stream stays open and the refusal is counted', async () => {
    const events = porttiEvents('u');
    events[1]!['name'] = 'SPOILED1';
    const { stream, client } = rawBidi(gw.grpcPort, STREAM, decode.porttiAck);
    const ack = await stream.send(spoilUtf8(encode.porttiBatch({ events, cluster_id: 'c1' }), 'SPOILED1'));
    assert.deepEqual(ack.event_ids, ['u-create', 'u-delete']);
    const next = await stream.send(encode.porttiBatch({ events: porttiEvents('v').slice(2) }));
    assert.deepEqual(next.event_ids, ['v-delete'], 'the stream still answers');
    assert.equal((await stream.end()).code, grpc.status.OK);
    client.close();
    const metrics = await scrape(gw.metricsPort);
    assert.equal(sample(metrics, 'polku_portti_refused_events_total{service="portti.v1.PorttiService",code="PARSE_ERROR"}'), 1);
  });

  test('an unreadable message ends the stream INVALID_ARGUMENT with the refusal in details (portti.v1.Ack cannot carry it)', async () => {
    const { stream, client } = rawBidi(gw.grpcPort, STREAM, decode.porttiAck);
    const ok = await stream.send(encode.porttiBatch({ events: porttiEvents('w').slice(0, 1) }));
    assert.deepEqual(ok.event_ids, ['w-create']);
    await assert.rejects(stream.send(Buffer.from([0x0a, 0x7f, 0x01])), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /^INVALID_BATCH: malformed portti\.v1\.EventBatch: /);
      return true;
    });
    assert.equal((await stream.status).code, grpc.status.INVALID_ARGUMENT);
    client.close();
  });

  test('a batch over POLKU_MAX_BATCH_EVENTS ends the stream INVALID_ARGUMENT naming the limit, before any event is decoded', async () => {
    const before = ingestor.received.length;
    const { stream, client } = rawBidi(gw.grpcPort, STREAM, decode.porttiAck);
    const six = [...porttiEvents('x1'), ...porttiEvents('x2')];
    await assert.rejects(stream.send(encode.porttiBatch({ events: six })), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /^BATCH_TOO_LARGE: portti\.v1\.EventBatch has more than 5 events, limit 5 \(POLKU_MAX_BATCH_EVENTS\)/);
      return true;
    });
    client.close();
    assert.equal(ingestor.received.length, before, 'the ingestor never saw it');
    const metrics = await scrape(gw.metricsPort);
    assert.equal(sample(metrics, 'polku_portti_refused_events_total{service="portti.v1.PorttiService",code="BATCH_TOO_LARGE"}'), 1);
  });

  test('a cluster_id that is not UTF-8 refuses the batch INVALID_BATCH naming the field', async () => {
    const { stream, client } = rawBidi(gw.grpcPort, STREAM, decode.porttiAck);
    const bytes = spoilUtf8(encode.porttiBatch({ events: porttiEvents('y').slice(0, 1), cluster_id: 'CLUSTERX' }), 'CLUSTERX');
    await assert.rejects(stream.send(bytes), /INVALID_BATCH: portti\.v1\.EventBatch cluster_id is not valid UTF-8/);
    client.close();
  });

  test('Health answers the gateway health with no watchers, and the message says why', async () => {
    const client = porttiClient(gw.grpcPort);
    const res: any = await new Promise((resolve, reject) =>
      client['Health']({}, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
    );
    client.close();
    assert.equal(res.healthy, true);
    assert.deepEqual(res.watchers, {});
    assert.equal(res.message, "polku gateway healthy; no watchers (the gateway receives PORTTI's events, it watches nothing itself)");
  });

  test('grpc.health.v1 reports both PORTTI services SERVING and reflection lists them', async () => {
    const healthPkg = grpc.loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as any;
    const health = new healthPkg.grpc.health.v1.Health(`127.0.0.1:${gw.grpcPort}`, grpc.credentials.createInsecure());
    for (const service of ['portti.v1.PorttiService', 'polku.v1.PorttiService']) {
      const res: any = await new Promise((resolve, reject) =>
        health.Check({ service }, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
      );
      assert.equal(res.status, 'SERVING', service);
    }
    health.close();

    const reflectionProto = join(PROTO_DIR, 'grpc/reflection/v1/reflection.proto');
    const pkg = grpc.loadPackageDefinition(loadSync(reflectionProto, { keepCase: true })) as any;
    const reflection = new pkg.grpc.reflection.v1.ServerReflection(`127.0.0.1:${gw.grpcPort}`, grpc.credentials.createInsecure());
    const call = reflection.ServerReflectionInfo();
    const response: any = await new Promise((resolve, reject) => {
      call.on('data', resolve);
      call.on('error', reject);
      call.write({ list_services: '' });
    });
    call.end();
    reflection.close();
    const names = response.list_services_response.service.map((s: { name: string }) => s.name);
    assert.ok(names.includes('portti.v1.PorttiService'), names.join(','));
    assert.ok(names.includes('polku.v1.PorttiService'), names.join(','));
  });
});

describe('portti.v1 StreamK8sEvents when the buffer is full', () => {
  test('a batch partly refused lists only the accepted ids; a batch refused whole ends the stream RESOURCE_EXHAUSTED', async () => {
    const gate = new GatedEmitter('held');
    const ingestor = new StandInPorttiIngestor();
    const gw = await startGateway(
      hub()
        .ingestor(ingestor)
        .emitter(gate)
        .buffer({ capacity: 4, overflow: 'reject' })
        .delivery({ batchSize: 100, flushIntervalMs: 1, maxAttempts: 3 }),
    );
    try {
      const client = porttiClient(gw.grpcPort);
      const stream = new AnswerStream<WirePorttiAck>(client['StreamK8sEvents']());
      const first = await stream.send({ events: porttiEvents('f') });
      assert.deepEqual(first.event_ids, ['f-create', 'f-update', 'f-delete']);
      const second = await stream.send({ events: porttiEvents('g') });
      assert.deepEqual(second.event_ids, ['g-create'], 'one place left');
      assert.equal(second.buffer_size, '4');
      await assert.rejects(stream.send({ events: porttiEvents('h') }), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.match(err.details, /^BUFFER_FULL: /);
        return true;
      });
      client.close();
      const metrics = await scrape(gw.metricsPort);
      assert.equal(sample(metrics, 'polku_portti_refused_events_total{service="portti.v1.PorttiService",code="BUFFER_FULL"}'), 5);
      gate.open();
      await until(() => gw.hub.stats().buffer.events === 0, 'the buffer to drain');
      assert.deepEqual(
        gate.batches.flat().map((e) => e.id),
        ['f-create', 'f-update', 'f-delete', 'g-create'],
        'exactly the acknowledged events, nothing else',
      );
    } finally {
      gate.open();
      await gw.stop();
    }
  });
});

describe('PORTTI streams at shutdown', () => {
  test('open StreamK8sEvents calls of both services end UNAVAILABLE once their batch is answered', async () => {
    const memory = new InMemoryEmitter();
    const gw = await startGateway(hub().ingestor(new StandInPorttiIngestor()).emitter(memory));
    const portti = porttiClient(gw.grpcPort);
    const legacy = legacyPorttiClient(gw.grpcPort);
    try {
      const own = new AnswerStream<WirePorttiAck>(portti['StreamK8sEvents']());
      const older = new AnswerStream<WireAck>(legacy['StreamK8sEvents']());
      assert.deepEqual((await own.send({ events: porttiEvents('z').slice(0, 1) })).event_ids, ['z-create']);
      assert.deepEqual((await older.send({ events: [{ id: 'old-1', resource: 'Pod', action: 'CREATE' }] })).event_ids, ['old-1']);
      const open = await scrape(gw.metricsPort);
      assert.equal(sample(open, 'polku_portti_active_streams{service="portti.v1.PorttiService"}'), 1);
      assert.equal(sample(open, 'polku_portti_active_streams{service="polku.v1.PorttiService"}'), 1);
      const stopped = gw.stop();
      const [a, b] = await Promise.all([own.status, older.status]);
      assert.equal(a.code, grpc.status.UNAVAILABLE);
      assert.equal(b.code, grpc.status.UNAVAILABLE);
      assert.match(a.details, /shutting down/);
      await stopped;
      assert.deepEqual(
        memory.events.map((e) => e.id),
        ['z-create', 'old-1'],
        'what was acknowledged was delivered before exit',
      );
    } finally {
      portti.close();
      legacy.close();
    }
  });
});

describe('PORTTI streams under the overflow policy block', () => {
  test('a batch that does not fit waits unanswered and the stream is paused; nothing is refused, all is delivered', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(
      hub()
        .ingestor(new StandInPorttiIngestor())
        .emitter(gate)
        .buffer({ capacity: 3, overflow: 'block' })
        .delivery({ batchSize: 100, flushIntervalMs: 1, maxAttempts: 3 }),
    );
    const portti = porttiClient(gw.grpcPort);
    const legacy = legacyPorttiClient(gw.grpcPort);
    try {
      const own = new AnswerStream<WirePorttiAck>(portti['StreamK8sEvents']());
      const older = new AnswerStream<WireAck>(legacy['StreamK8sEvents']());
      assert.deepEqual((await own.send({ events: porttiEvents('m') })).event_ids, ['m-create', 'm-update', 'm-delete']);
      const blocked = own.send({ events: porttiEvents('n').slice(0, 1) });
      const blockedOlder = older.send({ events: [{ id: 'o-1', resource: 'Pod', action: 'CREATE' }] });
      await until(() => gw.hub.stats().buffer.blockedWriters === 2, 'both batches to block');
      const metrics = await scrape(gw.metricsPort);
      assert.equal(sample(metrics, 'polku_portti_paused_streams{service="portti.v1.PorttiService"}'), 1);
      assert.equal(sample(metrics, 'polku_portti_paused_streams{service="polku.v1.PorttiService"}'), 1);
      assert.equal(own.answers.length, 1, 'no Ack while blocked');
      assert.equal(older.answers.length, 0);
      gate.open();
      assert.deepEqual((await blocked).event_ids, ['n-create']);
      const answered = await blockedOlder;
      assert.deepEqual([answered.event_ids, answered.errors], [['o-1'], []]);
      await until(() => gw.hub.stats().buffer.events === 0, 'the buffer to drain');
      assert.deepEqual(
        gate.batches
          .flat()
          .map((e) => e.id)
          .sort(),
        ['m-create', 'm-delete', 'm-update', 'n-create', 'o-1'],
      );
      assert.equal((await own.end()).code, grpc.status.OK);
      assert.equal((await older.end()).code, grpc.status.OK);
    } finally {
      portti.close();
      legacy.close();
      gate.open();
      await gw.stop();
    }
  });
});
