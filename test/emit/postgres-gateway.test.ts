// `polku serve` with a PostgresEmitter in its pipeline module (test/fixtures/postgres-sink.config.ts),
// events sent over gRPC, rows read back with `pg`: each exactly once; in durable mode through a
// 20 s outage of the server under load; a row the server rejects dead-lettered alone.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { defaultTableDdl } from '../../src/emit/postgres-sql.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { killAll, track } from '../helpers/line-process.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';
import { postgresMissing, PostgresServer } from '../helpers/postgres-server.js';

const skip = postgresMissing();
if (skip) console.log(`# postgres gateway tests skipped: ${skip}`);

/** Polls `probe` until it returns a value, or fails after `limitMs` naming `what`. */
async function until<T>(probe: () => Promise<T | undefined>, what: string, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One sample of a gateway's /metrics (0 when the series is absent). */
async function metric(port: number, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

const batchOf = (prefix: string, n: number, eventType = (_i: number) => 'pg.test') => ({
  source: 'load',
  events: {
    events: Array.from({ length: n }, (_, i) => ({
      id: `${prefix}-${i}`,
      event_type: eventType(i),
      metadata: { n: String(i) },
      payload: Buffer.from(`{"n":${i}}`),
    })),
  },
});

describe('polku serve → PostgreSQL', { skip }, () => {
  let server: PostgresServer;
  let client: pg.Client;
  const dirs: string[] = [];

  before(async () => {
    server = await PostgresServer.start();
    client = new pg.Client({ connectionString: server.connectionString });
    await client.connect();
  });
  after(async () => {
    await killAll();
    await client?.end().catch(() => undefined);
    await server?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function ids(table: string): Promise<string[]> {
    return (await client.query<{ id: string }>(`SELECT id FROM ${table}`)).rows.map((r) => r.id);
  }

  test('2,000 events over gRPC: each one row, exactly once', async () => {
    await client.query(defaultTableDdl('memory_rows'));
    const gw = track(
      await servePolku(['--config', 'test/fixtures/postgres-sink.config.ts'], {
        POLKU_TEST_PG_URL: server.connectionString,
        POLKU_TEST_PG_TABLE: 'memory_rows',
      }),
    );
    const grpcClient = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(grpcClient);
    const acked: string[] = [];
    for (let b = 0; b < 10; b++) acked.push(...(await stream.send(batchOf(`m${b}`, 200))).event_ids);
    assert.equal(acked.length, 2000);
    const got = await until(async () => {
      const rows = await ids('memory_rows');
      return rows.length >= 2000 ? rows : undefined;
    }, '2,000 rows');
    assert.equal(got.length, 2000);
    assert.deepEqual(new Set(got), new Set(acked));
    assert.equal(await metric(gw.metricsPort, 'polku_postgres_rows_total', { emitter: 'postgres', result: 'inserted' }), 2000);
    const row = (
      await client.query(`SELECT source, event_type, metadata, convert_from(payload, 'UTF8') AS p FROM memory_rows WHERE id = 'm3-7'`)
    ).rows[0];
    assert.deepEqual(row, { source: 'load', event_type: 'pg.test', metadata: { n: '7' }, p: '{"n":7}' });
    await stream.end();
    grpcClient.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('memory mode, a CHECK-refused row: dropped alone, counted emit_failed, logged with the server message', async () => {
    await client.query(`CREATE TABLE checked_memory (
      event_id text PRIMARY KEY,
      kind text NOT NULL CHECK (kind <> 'poison'))`);
    const gw = track(
      await servePolku(['--config', 'test/fixtures/postgres-sink.config.ts'], {
        POLKU_TEST_PG_URL: server.connectionString,
        POLKU_TEST_PG_TABLE: 'checked_memory',
        POLKU_TEST_PG_COLUMNS: JSON.stringify({ id: 'event_id', event_type: 'kind' }),
      }),
    );
    const grpcClient = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(grpcClient);
    const ack = await stream.send(batchOf('mm', 500, (i) => (i === 10 || i === 400 ? 'poison' : 'fine')));
    assert.equal(ack.event_ids.length, 500);
    const dropped = await until(async () => {
      const n = await metric(gw.metricsPort, 'polku_events_dropped_total', { reason: 'emit_failed' });
      return n >= 2 ? n : undefined;
    }, 'two emit_failed drops');
    assert.equal(dropped, 2);
    assert.equal((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM checked_memory')).rows[0]!.n, 498);
    assert.match(await gw.line(/emitter refused events; dropped/), /PostgreSQL 23514: .*checked_memory_kind_check/);
    await stream.end();
    grpcClient.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('durable mode: PostgreSQL stopped for 20 s under load, then started: every acked event arrives once', async (t) => {
    await client.query(defaultTableDdl('durable_rows'));
    const dir = mkdtempSync(join(tmpdir(), 'polku-pg-durable-'));
    dirs.push(dir);
    const gw = track(
      await servePolku(['--config', 'test/fixtures/postgres-sink.config.ts'], {
        POLKU_TEST_PG_URL: server.connectionString,
        POLKU_TEST_PG_TABLE: 'durable_rows',
        POLKU_DURABLE: 'true',
        POLKU_DATA_DIR: dir,
      }),
    );
    const grpcClient = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(grpcClient);
    const acked = new Set<string>();
    let loading = true;
    let batchNo = 0;
    // Load all along: 50 events every 25 ms, each batch awaiting its Ack.
    const load = (async () => {
      while (loading) {
        for (const id of (await stream.send(batchOf(`d${batchNo++}`, 50))).event_ids) acked.add(id);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    await until(async () => ((await ids('durable_rows')).length >= 1000 ? true : undefined), 'the first 1,000 rows');
    await client.end();
    await server.stop();
    const stoppedAt = acked.size;
    await new Promise((r) => setTimeout(r, 20_000)); // the outage itself, not a wait for a condition
    assert.ok(acked.size > stoppedAt + 1000, `events kept being acked while PostgreSQL was down (${acked.size - stoppedAt})`);
    await server.startAgain();
    client = new pg.Client({ connectionString: server.connectionString });
    await client.connect();
    await new Promise((r) => setTimeout(r, 1_000)); // a little load after the restart too
    loading = false;
    await load;
    const want = acked.size;
    const got = await until(
      async () => {
        const rows = await ids('durable_rows');
        return rows.length >= want ? rows : undefined;
      },
      `all ${want} acked events in the table`,
      120_000,
    );
    t.diagnostic(`${want} events acked, ${acked.size - stoppedAt} of them while PostgreSQL was down`);
    assert.equal(got.length, want, 'no duplicate rows');
    assert.deepEqual(new Set(got), acked);
    assert.equal(await metric(gw.metricsPort, 'polku_dead_letters_total', { emitter: 'postgres' }), 0);
    assert.ok((await metric(gw.metricsPort, 'polku_postgres_failures_total', { emitter: 'postgres', kind: 'connection' })) >= 1);
    await stream.end();
    grpcClient.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('durable mode, a user table with a CHECK: the rejected events are dead letters with the server message, 1,000 neighbours in', async () => {
    await client.query(`CREATE TABLE checked (
      event_id text PRIMARY KEY,
      kind text NOT NULL CHECK (kind <> 'poison'),
      body bytea NOT NULL)`);
    const dir = mkdtempSync(join(tmpdir(), 'polku-pg-check-'));
    dirs.push(dir);
    const gw = track(
      await servePolku(['--config', 'test/fixtures/postgres-sink.config.ts'], {
        POLKU_TEST_PG_URL: server.connectionString,
        POLKU_TEST_PG_TABLE: 'checked',
        POLKU_TEST_PG_COLUMNS: JSON.stringify({ id: 'event_id', event_type: 'kind', payload: 'body' }),
        POLKU_DURABLE: 'true',
        POLKU_DATA_DIR: dir,
      }),
    );
    const grpcClient = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(grpcClient);
    const poison = new Set([3, 250, 999]);
    const ack = await stream.send(batchOf('c', 1003, (i) => (poison.has(i) ? 'poison' : 'fine')));
    assert.equal(ack.event_ids.length, 1003, 'all accepted: the refusal comes later, from the database');
    const dead = await until(async () => {
      const n = await metric(gw.metricsPort, 'polku_dead_letters_total', { emitter: 'postgres', reason: 'failed' });
      return n >= 3 ? n : undefined;
    }, 'three dead letters');
    assert.equal(dead, 3);
    const rows = await until(async () => {
      const r = (await client.query<{ event_id: string }>('SELECT event_id FROM checked')).rows;
      return r.length >= 1000 ? r : undefined;
    }, '1,000 rows');
    assert.equal(rows.length, 1000);
    assert.ok(rows.every((r) => !['c-3', 'c-250', 'c-999'].includes(r.event_id)));
    const list = runPolku(['dlq', 'list', '--admin', `127.0.0.1:${gw.metricsPort}`]);
    assert.equal((await list.exited).code, 0, list.stderr.join('\n'));
    const letters = (JSON.parse(list.stdout.join('\n')) as { deadLetters: Array<{ reason: string; event: { id: string } }> }).deadLetters;
    assert.deepEqual(
      letters.map((l) => l.event.id),
      ['c-3', 'c-250', 'c-999'],
    );
    for (const l of letters)
      assert.match(l.reason, /PostgreSQL 23514: new row for relation "checked" violates check constraint "checked_kind_check"/);
    await stream.end();
    grpcClient.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });
});
