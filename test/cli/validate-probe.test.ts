// `polku validate --probe` as an operator runs it before a rollout: a real PostgreSQL, Redis, NATS
// (JetStream), S3 server, an emitter plugin written with the TypeScript SDK and an HTTP server,
// each started here on a private port; the same module pointed at closed ports and a missing
// table. Exact lines (the probe's own duration aside) and exit codes.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { defaultTableDdl } from '../../src/emit/postgres-sql.js';
import { privatePort } from '../helpers/bus-server.js';
import { killAll, startProcess, track } from '../helpers/line-process.js';
import { natsMissing, NatsServer } from '../helpers/nats-server.js';
import { runPolku } from '../helpers/polku-process.js';
import { postgresMissing, PostgresServer } from '../helpers/postgres-server.js';
import { redisMissing, RedisServer } from '../helpers/redis-server.js';
import { S3Server } from '../helpers/s3-server.js';

const skip = postgresMissing() || redisMissing() || natsMissing();
if (skip) console.log(`# validate --probe tests skipped: ${skip}`);

const MODULE = 'test/fixtures/probe.config.ts';

describe('polku validate --probe', { skip }, () => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  let nats: NatsServer;
  let s3: S3Server;
  let pluginAddress: string;
  let ingestorAddress: string;
  let webhook: Server;
  let webhookStatus = 405;
  let webhookUrl: string;
  let closed: number;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'polku-probe-'));
    [postgres, redis, nats, s3] = await Promise.all([
      PostgresServer.start(),
      RedisServer.start(),
      NatsServer.start(),
      S3Server.start('events'),
    ]);
    const client = new pg.Client({ connectionString: postgres.connectionString });
    await client.connect();
    await client.query(defaultTableDdl());
    await client.end();
    const nc = await connect({ servers: nats.url });
    await (await jetstreamManager(nc)).streams.add({ name: 'POLKU', subjects: ['polku.>'] });
    await nc.close();
    const plugin = (kind: string) => track(startProcess(process.execPath, ['--import', 'tsx', 'test/fixtures/probe-plugin.ts', '0', kind]));
    const [emitterPlugin, ingestorPlugin] = [plugin('emitter'), plugin('ingestor')];
    pluginAddress = `127.0.0.1:${(await emitterPlugin.line(/READY (\d+)/, 30_000))[1]}`;
    ingestorAddress = `127.0.0.1:${(await ingestorPlugin.line(/READY (\d+)/, 30_000))[1]}`;
    webhook = createServer((_req, res) => {
      res.statusCode = webhookStatus;
      res.end();
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    webhookUrl = `http://127.0.0.1:${(webhook.address() as { port: number }).port}/hook`;
    closed = await privatePort(); // bound by nobody: every dial there is refused
  });

  after(async () => {
    await killAll();
    webhook?.close();
    await Promise.allSettled([postgres?.close(), redis?.close(), nats?.close(), s3?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function probe(env: Record<string, string>, extra: string[] = []) {
    const p = runPolku(['validate', '--config', MODULE, '--no-type-check', '--probe', ...extra], {
      PROBE_PG: postgres.connectionString,
      PROBE_PG_TABLE: 'polku_events',
      PROBE_REDIS: redis.url,
      PROBE_NATS: nats.url,
      PROBE_S3: s3.endpoint,
      PROBE_PLUGIN: pluginAddress,
      PROBE_INGESTOR_PLUGIN: ingestorAddress,
      PROBE_WEBHOOK: webhookUrl,
      PROBE_FILE: join(dir, 'out', 'events.ndjson'),
      ...env,
    });
    const { code } = await p.exited;
    const at = p.stdout.findIndex((l) => l.startsWith('probe ('));
    // The probe's own duration is the one part that changes between runs.
    const lines = at < 0 ? [] : p.stdout.slice(at).map((l) => l.replace(/\(\d+ ms\)$/, '(N ms)'));
    return { code, lines, err: p.stderr.join('\n'), out: p.stdout.join('\n') };
  }

  const port = (url: string): string => new URL(url).port;

  test('everything up: one ok line per target, the emitter without a probe skipped; exit 0', async () => {
    webhookStatus = 405; // any answer is "reachable": the probe sends HEAD, the webhook wants POST
    const r = await probe({});
    assert.equal(r.code, 0, r.out + r.err);
    assert.deepEqual(r.lines, [
      'probe (timeout 5000 ms):',
      `ok   postgres  127.0.0.1:${postgres.port} table polku_events (N ms)`,
      `ok   redis  redis://127.0.0.1:${port(redis.url)} PING, batch script loaded (N ms)`,
      `ok   nats  nats://127.0.0.1:${port(nats.url)} stream POLKU covers polku._overflow._overflow (N ms)`,
      `ok   s3  127.0.0.1:${port(s3.endpoint)} bucket events (N ms)`,
      `ok   plugin  plugin at ${pluginAddress} healthy (ok) (N ms)`,
      `ok   webhook  ${webhookUrl} reachable (HTTP 405) (N ms)`,
      `ok   file  ${join(dir, 'out', 'events.ndjson')} can be created (${dir} writable) (N ms)`,
      'ok   stdout  standard output (N ms)',
      'skip custom: no probe',
      `ok   csv-plugin  plugin at ${ingestorAddress} healthy (ok) (N ms)`,
      'probe OK: 10 of 10 reachable or not probed',
    ]);
  });

  test('some down: each failure named with its hint, the rest still ok; exit 1', async () => {
    webhookStatus = 401;
    const r = await probe({
      PROBE_PG_TABLE: 'missing_table',
      PROBE_REDIS: `redis://127.0.0.1:${closed}`,
      PROBE_NATS: `nats://127.0.0.1:${closed}`,
      PROBE_PLUGIN: `127.0.0.1:${closed}`,
      PROBE_INGESTOR_PLUGIN: pluginAddress, // an emitter plugin where an ingestor plugin is expected
    });
    assert.equal(r.code, 1, r.out + r.err);
    assert.deepEqual(r.lines, [
      'probe (timeout 5000 ms):',
      `FAIL postgres  127.0.0.1:${postgres.port}: table missing_table does not exist (create it: polku sinks init postgres (or set table))`,
      `FAIL redis  redis://127.0.0.1:${closed}: connect ECONNREFUSED 127.0.0.1:${closed} (nothing listens there: is the server up, and the address and port right?)`,
      `FAIL nats  nats://127.0.0.1:${closed}: connection refused (nothing listens there: is the server up, and the address and port right?)`,
      `ok   s3  127.0.0.1:${port(s3.endpoint)} bucket events (N ms)`,
      `FAIL plugin  plugin at 127.0.0.1:${closed}: GRPC_UNREACHABLE cannot connect (refused, reset, or the TLS handshake failed) (nothing answers gRPC there: is it running, the address right, and TLS set as the server expects?)`,
      `FAIL webhook  ${webhookUrl}: HTTP 401: credentials refused (check the authorization header (headers) or the client certificate (tls))`,
      `ok   file  ${join(dir, 'out', 'events.ndjson')} can be created (${dir} writable) (N ms)`,
      'ok   stdout  standard output (N ms)',
      'skip custom: no probe',
      `FAIL csv-plugin  plugin at ${pluginAddress}: 12 UNIMPLEMENTED: The server does not implement the method /polku.v1.IngestorPlugin/Health (another kind of server answers there: is the address the one this expects?)`,
      'probe FAILED: 6 failed, 4 of 10 reachable or not probed',
    ]);
  });
  test('gRPC and OTLP emitters: a gateway and a collector up, AHTI down; exit 1', async () => {
    webhookStatus = 405;
    const p = runPolku(
      ['validate', '--config', 'test/fixtures/probe-grpc.config.ts', '--no-type-check', '--probe', '--probe-timeout-ms', '8000'],
      {
        // The emitter plugin's port serves gRPC: GrpcEmitter's Health reaches it and finds no Gateway there.
        PROBE_GRPC: pluginAddress,
        PROBE_AHTI: `127.0.0.1:${closed}`,
        PROBE_OTLP_HTTP: webhookUrl.replace('/hook', ''),
      },
    );
    const { code } = await p.exited;
    const at = p.stdout.findIndex((l) => l.startsWith('probe ('));
    assert.equal(code, 1, p.stdout.join('\n') + p.stderr.join('\n'));
    assert.deepEqual(
      p.stdout.slice(at).map((l) => l.replace(/\(\d+ ms\)$/, '(N ms)')),
      [
        'probe (timeout 8000 ms):',
        `FAIL forward  ${pluginAddress}: 12 UNIMPLEMENTED: The server does not implement the method /polku.v1.Gateway/Health (another kind of server answers there: is the address the one this expects?)`,
        `FAIL ahti  127.0.0.1:${closed} (AHTI): GRPC_UNREACHABLE cannot connect (refused, reset, or the TLS handshake failed) (nothing answers gRPC there: is it running, the address right, and TLS set as the server expects?)`,
        `FAIL otlp-grpc  127.0.0.1:${closed} (OTLP/gRPC): GRPC_UNREACHABLE cannot connect (refused, reset, or the TLS handshake failed) (nothing answers gRPC there: is it running, the address right, and TLS set as the server expects?)`,
        `ok   otlp-http  ${webhookUrl.replace('/hook', '')}/v1/logs reachable (HTTP 405) (N ms)`,
        'probe FAILED: 3 failed, 1 of 4 reachable or not probed',
      ],
    );
  });
});
