// grpc.health.v1 as the gateway serves it (src/server/health-service.ts, its own codecs), called
// by a client built from the published health.proto (the grpc-health-check package's copy,
// through @grpc/proto-loader): Check, Watch and List answer what grpc-go and grpc-js answer.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HealthService } from '../../src/server/health-service.js';

describe('grpc.health.v1 (HealthService)', () => {
  const server = new grpc.Server();
  const health = new HealthService({ '': 'NOT_SERVING', 'polku.v1.Gateway': 'NOT_SERVING' });
  let client: any;

  before(async () => {
    server.addService(health.definition, health.implementation());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const pkg = grpc.loadPackageDefinition(loadSync(healthProtoPath, { enums: String, defaults: true })) as any;
    client = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });
  after(() => {
    client.close();
    server.forceShutdown();
  });

  const check = (service: string): Promise<{ status: string }> =>
    new Promise((resolve, reject) =>
      client.Check({ service }, (err: Error | null, r: { status: string }) => (err ? reject(err) : resolve(r))),
    );

  test('Check: the status of the server ("") and of a named service; an unknown name is NOT_FOUND', async () => {
    assert.equal((await check('')).status, 'NOT_SERVING');
    health.setStatus('', 'SERVING');
    health.setStatus('polku.v1.Gateway', 'SERVING');
    assert.equal((await check('')).status, 'SERVING');
    assert.equal((await check('polku.v1.Gateway')).status, 'SERVING');
    await assert.rejects(check('no.such.Service'), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, 'Health status unknown for service no.such.Service');
      return true;
    });
  });

  test('Watch: the current status at once, then every change; SERVICE_UNKNOWN for an unknown name', async () => {
    const seen: string[] = [];
    const call = client.Watch({ service: 'polku.v1.Gateway' });
    call.on('data', (r: { status: string }) => seen.push(r.status));
    call.on('error', () => undefined); // the cancel below ends it with CANCELLED
    const until = async (n: number): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (seen.length < n) {
        if (Date.now() > deadline) throw new Error(`Watch: ${seen.length} of ${n} answers: ${seen.join(', ')}`);
        await new Promise((r) => setImmediate(r));
      }
    };
    await until(1);
    health.setStatus('polku.v1.Gateway', 'NOT_SERVING');
    await until(2);
    health.setStatus('polku.v1.Gateway', 'SERVING');
    await until(3);
    call.cancel();
    assert.deepEqual(seen, ['SERVING', 'NOT_SERVING', 'SERVING']);

    const unknown: string[] = [];
    const other = client.Watch({ service: 'no.such.Service' });
    other.on('error', () => undefined);
    await new Promise<void>((resolve) => other.on('data', (r: { status: string }) => (unknown.push(r.status), resolve())));
    other.cancel();
    assert.deepEqual(unknown, ['SERVICE_UNKNOWN']);
  });

  test('List: every service with its status', async () => {
    health.setStatus('polku.v1.Gateway', 'NOT_SERVING');
    const res: any = await new Promise((resolve, reject) =>
      client.List({}, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
    );
    assert.deepEqual(
      Object.fromEntries(Object.entries(res.statuses as Record<string, { status: string }>).map(([k, v]) => [k, v.status])),
      { '': 'SERVING', 'polku.v1.Gateway': 'NOT_SERVING' },
    );
  });
});
