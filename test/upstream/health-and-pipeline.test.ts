// Upstream POLKU's /health and /pipeline on the metrics port, from a real `polku serve`.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { AckStream, events, protoOnlyClient, until } from '../helpers/gateway-harness.js';
import { killAll } from '../helpers/line-process.js';
import { servePolku } from '../helpers/polku-process.js';

after(() => killAll());

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const get = async (port: number, path: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, any> };
};

describe('/health and /pipeline on the metrics port', () => {
  test('the embedded default: /health is 200 with every component and the events processed; /pipeline shows it whole', async () => {
    const gw = await servePolku([]);
    const client = protoOnlyClient(gw.grpcPort);
    const ack = await new AckStream(client).send({ source: 'h', events: { events: events(3) } });
    assert.equal(ack.event_ids.length, 3);
    client.close();

    const health = await get(gw.metricsPort, '/health');
    assert.equal(health.status, 200);
    assert.equal(health.type, 'application/json');
    assert.equal(health.body['healthy'], true);
    assert.equal(health.body['eventsProcessed'], '3');
    assert.match(health.body['uptimeSeconds'], /^\d+$/);
    assert.deepEqual(Object.keys(health.body['components']).sort(), ['buffer', 'emitter:stdout', 'intake']);
    assert.deepEqual(health.body['components']['intake'], { healthy: true, message: 'accepting' });

    const pipeline = await get(gw.metricsPort, '/pipeline');
    assert.equal(pipeline.status, 200);
    assert.deepEqual(
      pipeline.body['ingestors'].map((i: { name: string; sources: string[] }) => [i.name, i.sources]),
      [
        ['tapio', ['tapio']],
        ['elava', ['elava']],
        ['portti', ['portti']],
        ['json', []],
        ['passthrough', []],
      ],
    );
    assert.ok(pipeline.body['ingestors'][3].formats.includes('ndjson'));
    assert.ok(pipeline.body['ingestors'][4].formats.includes('protobuf'));
    assert.deepEqual(pipeline.body['middleware'], []);
    assert.deepEqual(
      pipeline.body['emitters'].map((e: { name: string; default: boolean }) => [e.name, e.default]),
      [['stdout', true]],
    );
    assert.equal(pipeline.body['buffer'].capacity, 10_000);
    assert.equal(typeof pipeline.body['buffer'].size, 'number');
    assert.deepEqual(pipeline.body['delivery'], { mode: 'memory' });
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('a module with middleware, forwarding to a dead endpoint and an admin token: /health 503 naming it; /pipeline wants the token', async () => {
    const dead = await deadPort();
    const gw = await servePolku(['--config', 'test/fixtures/filtering.config.ts'], {
      POLKU_EMIT_GRPC_ENDPOINTS: `127.0.0.1:${dead}`,
      POLKU_ADMIN_TOKEN: 'pipeline-token',
    });
    await gw.line(/"grpc endpoint down; reconnecting with backoff"/);
    let health = await get(gw.metricsPort, '/health');
    await until(async () => (health = await get(gw.metricsPort, '/health')).status === 503, '/health 503');
    assert.equal(health.body['healthy'], false);
    assert.equal(health.body['components']['emitter:grpc'].healthy, false);
    assert.match(health.body['components']['emitter:grpc'].message, new RegExp(`127\\.0\\.0\\.1:${dead} down`));
    assert.equal(health.body['components']['emitter:memory'].healthy, true);

    const refused = await get(gw.metricsPort, '/pipeline');
    assert.equal(refused.status, 401);
    assert.match(refused.body['error'], /\/pipeline needs authorization: Bearer <POLKU_ADMIN_TOKEN>/);
    assert.equal((await get(gw.metricsPort, '/pipeline', { authorization: 'Bearer wrong' })).status, 401);
    const pipeline = await get(gw.metricsPort, '/pipeline', { authorization: 'Bearer pipeline-token' });
    assert.equal(pipeline.status, 200);
    assert.deepEqual(pipeline.body['middleware'], [
      { position: 1, name: 'users-only' },
      { position: 2, name: 'tag-env' },
    ]);
    assert.deepEqual(
      pipeline.body['emitters'].map((e: { name: string; default: boolean }) => [e.name, e.default]),
      [
        ['memory', true],
        ['grpc', true],
      ],
    );
    assert.equal(pipeline.body['buffer'].capacity, 500);
    assert.equal(JSON.stringify(pipeline.body).includes(String(dead)), false, 'no addresses in /pipeline');
    gw.child.kill('SIGKILL');
  });
});
