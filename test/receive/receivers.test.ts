import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { after, before, describe, test } from 'node:test';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { hub } from '../../src/hub/builder.js';
import { filter } from '../../src/middleware/filter.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { Gateway } from '../../src/server/gateway.js';
import { startGateway, type RunningGateway } from '../helpers/gateway-harness.js';
import { EchoReceiver, echoClient } from './test-receiver.js';

function say(client: grpc.Client & Record<string, any>, request: { source: string; words: string[] }) {
  return new Promise<{ event_ids: string[]; refusals: string[] }>((resolve, reject) =>
    client['Say'](request, (err: grpc.ServiceError | null, reply: { event_ids: string[]; refusals: string[] }) =>
      err ? reject(err) : resolve(reply),
    ),
  );
}

/** `list_services` over the v1alpha reflection protocol, as older grpcurl versions ask. */
async function reflectedServices(port: number): Promise<string[]> {
  const proto = join(PROTO_DIR, 'grpc/reflection/v1alpha/reflection.proto');
  const pkg = grpc.loadPackageDefinition(loadSync(proto, { keepCase: true })) as any;
  const client = new pkg.grpc.reflection.v1alpha.ServerReflection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const call = client.ServerReflectionInfo();
    const response: any = await new Promise((resolve, reject) => {
      call.on('data', resolve);
      call.on('error', reject);
      call.write({ list_services: '' });
    });
    call.end();
    return response.list_services_response.service.map((s: { name: string }) => s.name);
  } finally {
    client.close();
  }
}

describe('a receiver added through GatewayOptions.receivers', () => {
  const memory = new InMemoryEmitter();
  const echo = new EchoReceiver();
  let gw: RunningGateway;
  let client: grpc.Client & Record<string, any>;

  before(async () => {
    gw = await startGateway(
      hub()
        .middleware(filter((e) => Buffer.from(e.payload).toString() !== 'noise', { reason: 'noise is filtered' }))
        .emitter(memory),
      {
        limits: {
          ...DEFAULT_LIMITS,
          maxMessageBytes: 64 * 1024,
          maxBatchEvents: 3,
          maxPayloadBytes: 1024,
          maxMetadataBytes: 256,
          maxIdLength: 64,
        },
      },
      5_000,
      { receivers: [echo] },
    );
    client = echoClient(gw.grpcPort);
  });
  after(async () => {
    client.close();
    await gw.stop();
  });

  test('turns each request into events that reach the emitters, over real gRPC', async () => {
    const reply = await say(client, { source: 'echo-agent', words: ['hello', 'world'] });
    assert.equal(reply.event_ids.length, 2);
    assert.deepEqual(reply.refusals, []);
    await memory.waitForCount(2);
    assert.deepEqual(
      memory.events.map((e) => [e.source, e.eventType, Buffer.from(e.payload).toString()]),
      [
        ['echo-agent', 'echo.word', 'hello'],
        ['echo-agent', 'echo.word', 'world'],
      ],
    );
  });

  test('a refusal that fails the call gets the status from the catalogue: BATCH_TOO_LARGE is INVALID_ARGUMENT', async () => {
    await assert.rejects(say(client, { source: 'echo-agent', words: ['a', 'b', 'c', 'd'] }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /^BATCH_TOO_LARGE: /);
      return true;
    });
  });

  test('a refusal that is an answer arrives in the reply: FILTERED', async () => {
    const reply = await say(client, { source: 'echo-agent', words: ['noise'] });
    assert.deepEqual(reply.event_ids, []);
    assert.deepEqual(reply.refusals, ['FILTERED: noise is filtered']);
  });

  test('server reflection lists the new service beside the built-in ones', async () => {
    const names = await reflectedServices(gw.grpcPort);
    for (const name of ['polku.test.echo.Echo', 'polku.v1.Gateway', 'polku.v1.Admin', 'grpc.health.v1.Health']) {
      assert.ok(names.includes(name), `${name} not in ${names.join(',')}`);
    }
  });

  test('grpc.health.v1 reports the new service SERVING', async () => {
    const pkg = grpc.loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as any;
    const health = new pkg.grpc.health.v1.Health(`127.0.0.1:${gw.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const res: any = await new Promise((resolve, reject) =>
        health.Check({ service: 'polku.test.echo.Echo' }, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
      );
      assert.equal(res.status, 'SERVING');
    } finally {
      health.close();
    }
  });

  test('the built-in polku.v1.Gateway receiver still serves beside it', async () => {
    const ack: any = await new Promise((resolve, reject) =>
      gw.client['SendEvent']({ source: 'agent', event: { id: 'side-by-side', event_type: 'x' } }, (err: Error | null, a: unknown) =>
        err ? reject(err) : resolve(a),
      ),
    );
    assert.deepEqual(ack.event_ids, ['side-by-side']);
  });
});

describe('receiver lifecycle', () => {
  test('the gateway calls grpcServices, start, stopIntake, close in that order, each once', async () => {
    const echo = new EchoReceiver();
    const gw = await startGateway(hub().emitter(new InMemoryEmitter()), {}, 5_000, { receivers: [echo] });
    assert.deepEqual(echo.lifecycle, ['grpcServices', 'start']);
    await gw.stop();
    await gw.gateway.shutdown('again');
    assert.deepEqual(echo.lifecycle, ['grpcServices', 'start', 'stopIntake', 'close']);
  });

  test('two receivers with one name fail loudly when the gateway is built', () => {
    const registry = createRegistry();
    const logger = silentLogger();
    assert.throws(
      () =>
        new Gateway({
          hub: hub().emitter(new InMemoryEmitter()).build({ registry, logger }),
          registry,
          logger,
          grpcAddr: { host: '127.0.0.1', port: 0 },
          metricsAddr: { host: '127.0.0.1', port: 0 },
          shutdownTimeoutMs: 1_000,
          receivers: [new EchoReceiver(), new EchoReceiver()],
        }),
      { code: 'POLKU_ERR_PIPELINE_INVALID', message: 'two receivers are named "test-echo"' },
    );
  });
});
