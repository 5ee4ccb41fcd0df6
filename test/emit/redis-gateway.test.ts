// A real `polku serve` process with the RedisStreamEmitter in its pipeline module
// (test/fixtures/redis-stream.config.ts), fed over gRPC, read back from a real redis-server with
// ioredis: every event once; in durable mode an outage of 20 s under load loses nothing, and an
// entry Redis refuses is dead-lettered alone with the server's message.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { sample, scrape, until } from '../helpers/gateway-harness.js';
import { killAll, track } from '../helpers/line-process.js';
import { servePolku } from '../helpers/polku-process.js';
import { redisMissing, RedisServer } from '../helpers/redis-server.js';
import { sendEvents, steadyLoad } from './helpers/bus-load.js';

const skip = redisMissing();
const servers: RedisServer[] = [];
const clients: Redis[] = [];
after(async () => {
  await killAll();
  for (const c of clients) c.disconnect();
  for (const s of servers) await s.close();
});

async function redis(appendOnly = false) {
  const server = await RedisServer.start({ appendOnly });
  servers.push(server);
  const client = new Redis(server.url);
  client.on('error', () => undefined); // the outage test stops the server under it; it reconnects
  clients.push(client);
  return { server, client };
}

const gateway = async (url: string, durable: boolean) =>
  track(
    await servePolku(['--config', 'test/fixtures/redis-stream.config.ts'], {
      POLKU_TEST_REDIS_URL: url,
      ...(durable ? { POLKU_DURABLE: 'true', POLKU_DATA_DIR: mkdtempSync(join(tmpdir(), 'polku-redis-durable-')) } : {}),
    }),
  );

/** The `id` field of every entry of `stream`, in stream order. */
async function ids(client: Redis, stream: string): Promise<string[]> {
  const out: string[] = [];
  let from = '-';
  for (;;) {
    const page = await client.xrange(stream, from, '+', 'COUNT', 10_000);
    for (const [, fields] of page) out.push(fields[fields.indexOf('id') + 1]!);
    if (page.length < 10_000) return out;
    from = `(${page[page.length - 1]![0]}`;
  }
}

describe('gateway → RedisStreamEmitter → redis-server', { skip }, () => {
  test('2,000 events over gRPC land each exactly once, in order, with their fields', { timeout: 60_000 }, async () => {
    const { server, client } = await redis();
    const gw = await gateway(server.url, false);
    const acked = await sendEvents(gw.grpcPort, 'm', 2_000);
    assert.equal(acked.length, 2_000);
    await until(async () => (await client.xlen('polku:svc-a')) >= 2_000, '2,000 entries', 30_000);
    const got = await ids(client, 'polku:svc-a');
    assert.equal(got.length, 2_000, 'no entry twice');
    assert.deepEqual(got, acked, 'each acked id once, in order');
    const [, fields] = (await client.xrange('polku:svc-a', '-', '+', 'COUNT', 1))[0]!;
    const f = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]));
    assert.equal(f['source'], 'svc-a');
    assert.equal(f['event_type'], 'bus.test');
    assert.equal(f['severity'], 'SEVERITY_INFO');
    assert.equal(JSON.parse(f['metadata']!)['k8s.namespace.name'], 'shop');
    assert.equal(f['payload'], '{"n":"m-0"}');
    const metrics = await scrape(gw.metricsPort);
    assert.equal(sample(metrics, 'polku_redis_emitter_failed_events_total{emitter="redis",retryable="false"}'), 0);
    assert.equal(sample(metrics, 'polku_redis_emitter_streams{emitter="redis"}'), 1);
  });

  test(
    'durable: a stream Redis refuses (WRONGTYPE) dead-letters only its events, with the server’s message',
    { timeout: 60_000 },
    async () => {
      const { server, client } = await redis();
      await client.set('polku:broken', 'not a stream');
      const gw = await gateway(server.url, true);
      const good = await sendEvents(gw.grpcPort, 'g', 300, 'fine');
      const bad = await sendEvents(gw.grpcPort, 'b', 7, 'broken');
      assert.equal(good.length + bad.length, 307, 'all accepted: the refusal comes from the emitter');
      const admin = `http://127.0.0.1:${gw.metricsPort}/admin/dead-letters`;
      type Letters = { deadLetters: Array<{ emitter: string; reason: string; event: { id: string } }> };
      let letters: Letters['deadLetters'] = [];
      await until(
        async () => {
          letters = ((await (await fetch(admin)).json()) as Letters).deadLetters;
          return letters.length >= 7;
        },
        'seven dead letters',
        30_000,
      );
      assert.deepEqual(
        letters.map((l) => l.event.id),
        bad,
      );
      for (const l of letters) {
        assert.equal(l.emitter, 'redis');
        assert.match(l.reason, /WRONGTYPE Operation against a key holding the wrong kind of value/);
      }
      await until(async () => (await client.xlen('polku:fine')) >= 300, 'the neighbours', 30_000);
      assert.deepEqual(await ids(client, 'polku:fine'), good);
      const metrics = await scrape(gw.metricsPort);
      assert.equal(sample(metrics, 'polku_dead_letters_total{emitter="redis",reason="failed"}'), 7);
      assert.equal(sample(metrics, 'polku_redis_emitter_failed_events_total{emitter="redis",retryable="false"}'), 7);
    },
  );

  test(
    'durable: redis-server stopped for 20 s under load, then started: every acked event arrives (duplicates counted, none lost)',
    { timeout: 180_000 },
    async (t) => {
      const { server, client } = await redis(true);
      const gw = await gateway(server.url, true);
      const load = steadyLoad(gw.grpcPort, 'o');
      await until(async () => (await client.xlen('polku:load')) >= 1_000, 'delivery under way', 30_000);
      await server.stop();
      const ackedAtStop = load.acked.length;
      // The outage the test is about: 20 s of load with nowhere to deliver it.
      await new Promise((r) => setTimeout(r, 20_000));
      assert.ok(load.acked.length > ackedAtStop + 10_000, `acks went on while Redis was down (${load.acked.length - ackedAtStop})`);
      await server.start();
      await until(async () => (await client.xlen('polku:load')) > 0, 'Redis back with its data', 20_000);
      const ackedAtStart = load.acked.length;
      await until(() => load.acked.length >= ackedAtStart + 1_000, 'load after the restart', 20_000);
      await load.stop();
      const acked = load.acked;
      await until(async () => (await client.xlen('polku:load')) >= acked.length, `${acked.length} entries`, 90_000);
      const got = await ids(client, 'polku:load');
      const distinct = new Set(got);
      for (const id of acked) assert.ok(distinct.has(id), `acked ${id} is in the stream`);
      assert.equal(distinct.size, acked.length, 'nothing that was not acked');
      t.diagnostic(`${acked.length} acked, ${got.length} entries, ${got.length - distinct.size} duplicates (Redis Streams cannot dedupe)`);
      const metrics = await scrape(gw.metricsPort);
      assert.ok(sample(metrics, 'polku_redis_emitter_failed_events_total{emitter="redis",retryable="true"}')! > 0, 'the outage was seen');
      assert.equal(sample(metrics, 'polku_dead_letters_total{emitter="redis",reason="retries_exhausted"}') ?? 0, 0, 'nothing gave up');
    },
  );
});
