import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { after, before, describe, test } from 'node:test';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { EmitResults, type Emitter } from '../../src/emit/emitter.js';
import { hub } from '../../src/hub/builder.js';
import { AckStream, events, scrape, sample, startGateway, until, type RunningGateway } from '../helpers/gateway-harness.js';

const failing: Emitter = {
  name: 'broken',
  emit: () => Promise.resolve(EmitResults.failed('destination refused the batch')),
};

describe('health, reflection and metrics', () => {
  const memory = new InMemoryEmitter({ name: 'memory' });
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(hub().emitter(memory).emitter(failing).delivery({ batchSize: 10, flushIntervalMs: 1, maxAttempts: 1 }), {
      maxSourceLabels: 2,
    });
  });
  after(() => gw.stop());

  test('Gateway.Health reports buffer, emitters, uptime and events processed', async () => {
    const stream = new AckStream(gw.client);
    await stream.send({ source: 'h', events: { events: events(4) } });
    await stream.end();
    await until(() => gw.hub.stats().buffer.events === 0, 'delivery');
    const health: any = await new Promise((resolve, reject) =>
      gw.client['Health']({}, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))),
    );
    assert.equal(health.events_processed, '4');
    assert.equal(health.components['emitter:memory'].healthy, true);
    assert.equal(health.components['emitter:broken'].healthy, false);
    assert.match(health.components['emitter:broken'].message, /destination refused/);
    assert.match(health.components['buffer'].message, /^0\/10000 events/);
    assert.equal(health.healthy, false, 'one emitter failing makes the gateway unhealthy');
    assert.ok(Number(health.uptime_seconds) >= 0);
  });

  test('grpc.health.v1 answers SERVING for the server and for polku.v1.Gateway', async () => {
    const pkg = grpc.loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as any;
    const client = new pkg.grpc.health.v1.Health(`127.0.0.1:${gw.grpcPort}`, grpc.credentials.createInsecure());
    try {
      for (const service of ['', 'polku.v1.Gateway']) {
        const res: any = await new Promise((resolve, reject) =>
          client.Check({ service }, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
        );
        assert.equal(res.status, 'SERVING', `status of "${service}"`);
      }
    } finally {
      client.close();
    }
  });

  test('server reflection lists the services, so grpcurl needs no proto files', async () => {
    const reflectionProto = join(PROTO_DIR, 'grpc/reflection/v1/reflection.proto');
    const pkg = grpc.loadPackageDefinition(loadSync(reflectionProto, { keepCase: true })) as any;
    const client = new pkg.grpc.reflection.v1.ServerReflection(`127.0.0.1:${gw.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const call = client.ServerReflectionInfo();
      const response: any = await new Promise((resolve, reject) => {
        call.on('data', resolve);
        call.on('error', reject);
        call.write({ list_services: '' });
      });
      call.end();
      const names = response.list_services_response.service.map((s: { name: string }) => s.name);
      assert.ok(names.includes('polku.v1.Gateway'), names.join(','));
      assert.ok(names.includes('polku.v1.Admin'), names.join(','));
      assert.ok(names.includes('grpc.health.v1.Health'), names.join(','));
    } finally {
      client.close();
    }
  });

  test('/metrics is scraped over HTTP with intake, delivery, drop and buffer series; sources are bounded', async () => {
    const stream = new AckStream(gw.client);
    for (const source of ['s1', 's2', 's3', 's4']) {
      await stream.send({ source, events: { events: events(2) } });
    }
    await stream.end();
    await until(() => gw.hub.stats().buffer.events === 0, 'delivery');
    const res = await fetch(`http://127.0.0.1:${gw.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.equal(sample(text, 'polku_events_received_total{source="s1"}'), 2);
    // Past the limit of 2 distinct sources ("h" and "s1"), the rest fold into "other".
    assert.equal(sample(text, 'polku_events_received_total{source="s2"}'), undefined);
    assert.equal(sample(text, 'polku_events_received_total{source="s4"}'), undefined);
    assert.equal(sample(text, 'polku_events_received_total{source="other"}'), 6);
    assert.equal(sample(text, 'polku_events_forwarded_total{emitter="memory"}'), 12);
    assert.equal(sample(text, 'polku_events_forwarded_total{emitter="broken"}'), undefined);
    assert.equal(sample(text, 'polku_events_dropped_total{reason="emit_failed"}'), 12);
    assert.equal(sample(text, 'polku_emitter_healthy{emitter="memory"}'), 1);
    assert.equal(sample(text, 'polku_emitter_healthy{emitter="broken"}'), 0);
    assert.equal(sample(text, 'polku_buffer_events'), 0);
    assert.equal(sample(text, 'polku_buffer_capacity_events'), 10000);
    assert.equal(sample(text, 'polku_grpc_active_streams'), 0);
    assert.ok((sample(text, 'polku_batch_processing_seconds_count') ?? 0) >= 5);
    assert.ok((sample(text, 'polku_emit_batch_size_count{emitter="memory"}') ?? 0) >= 1);
    assert.ok(sample(text, 'polku_emit_duration_seconds_count{emitter="memory"}') !== undefined);
  });

  test('an open stream shows in polku_grpc_active_streams', async () => {
    const stream = new AckStream(gw.client);
    await stream.send({ source: 's1', events: { events: events(1) } });
    assert.equal(sample(await scrape(gw.metricsPort), 'polku_grpc_active_streams'), 1);
    await stream.end();
    await until(() => gw.hub.stats().buffer.events === 0, 'delivery');
  });

  test('/healthz and /readyz answer 200 while serving; unknown paths 404', async () => {
    assert.equal((await fetch(`http://127.0.0.1:${gw.metricsPort}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${gw.metricsPort}/readyz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${gw.metricsPort}/nope`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${gw.metricsPort}/metrics`, { method: 'POST' })).status, 405);
  });
});
