// PostgresEmitter against a real PostgreSQL server started here (test/helpers/postgres-server.ts):
// rows read back with `pg`, resends, a user table with its own columns and a CHECK constraint,
// the server gone, the table missing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { systemClock, systemTimers } from '../../src/clock.js';
import { PostgresEmitter, type PostgresEmitterOptions } from '../../src/emit/postgres.js';
import { defaultTableDdl } from '../../src/emit/postgres-sql.js';
import { Event, Outcome, Severity } from '../../src/gen/polku/v1/event.js';
import { PAYLOAD_FORMAT, PAYLOAD_FORMAT_JSON } from '../../src/metadata-keys.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { postgresMissing, PostgresServer } from '../helpers/postgres-server.js';

const skip = postgresMissing();
if (skip) console.log(`# postgres emitter tests skipped: ${skip}`);

describe('PostgresEmitter', { skip }, () => {
  let server: PostgresServer;
  let client: pg.Client;
  const closers: Array<() => Promise<void>> = [];

  before(async () => {
    server = await PostgresServer.start();
    client = new pg.Client({ connectionString: server.connectionString });
    await client.connect();
  });
  after(async () => {
    for (const c of closers) await c();
    await client?.end();
    await server?.close();
  });

  function emitter(options: Partial<PostgresEmitterOptions>) {
    const e = new PostgresEmitter({ connectionString: server.connectionString, ...options });
    const registry = createRegistry();
    e.init({ registry, logger: silentLogger(), clock: systemClock, timers: systemTimers });
    closers.push(() => e.shutdown());
    const metric = async (name: string, labels: Record<string, string>): Promise<number> => {
      const m = (await registry.getSingleMetric(name)!.get()).values.find((v) =>
        Object.entries(labels).every(([k, val]) => v.labels[k] === val),
      );
      return m?.value ?? 0;
    };
    return { e, metric };
  }

  function events(n: number, prefix: string): Event[] {
    return Array.from({ length: n }, (_, i) =>
      Event.fromPartial({
        id: `${prefix}-${i}`,
        timestampUnixNs: 1_764_560_000_123_456_789n + BigInt(i),
        source: 'tapio',
        eventType: 'k8s.pod.created',
        metadata: { 'k8s.pod.name': `web-${i}`, quote: `a "quoted" \\ value\n${i}` },
        payload: Buffer.from([0, 1, 2, 255, i % 256]),
        severity: Severity.SEVERITY_WARNING,
        outcome: Outcome.OUTCOME_FAILURE,
      }),
    );
  }

  test('a batch lands as rows of the default table, each field exact; a resend adds none', async () => {
    await client.query(defaultTableDdl('default_rows'));
    const { e, metric } = emitter({ table: 'default_rows' });
    const batch = events(500, 'd');
    assert.deepEqual(await e.emit(batch), { status: 'success' });
    assert.deepEqual(await e.emit(batch.slice(0, 200)), { status: 'success' }, 'a resend succeeds');
    const { rows } = await client.query<{
      id: string;
      us: string;
      source: string;
      event_type: string;
      severity: string;
      metadata: Record<string, string>;
      payload: Buffer;
    }>(
      `SELECT id, (extract(epoch from time) * 1000000)::bigint::text AS us, source, event_type, severity, metadata, payload
         FROM default_rows ORDER BY id`,
    );
    assert.equal(rows.length, 500);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const ev of batch) {
      const r = byId.get(ev.id)!;
      assert.equal(r.us, (ev.timestampUnixNs / 1000n).toString(), 'time to the microsecond');
      assert.equal(r.source, 'tapio');
      assert.equal(r.event_type, 'k8s.pod.created');
      assert.equal(r.severity, 'WARNING');
      assert.deepEqual(r.metadata, ev.metadata);
      assert.deepEqual([...r.payload], [...ev.payload]);
    }
    assert.equal(await metric('polku_postgres_rows_total', { result: 'inserted' }), 500);
    assert.equal(await metric('polku_postgres_rows_total', { result: 'duplicate' }), 200);
    assert.equal(await metric('polku_postgres_batches_total', { outcome: 'success' }), 2);
  });

  test('a user table: own columns, JSON payloads as jsonb; a CHECK-rejected row fails alone with the server message', async () => {
    await client.query(`CREATE TABLE audit (
      event_id text PRIMARY KEY,
      happened timestamptz NOT NULL,
      kind text NOT NULL CHECK (kind <> 'forbidden'),
      outcome text NOT NULL,
      body jsonb,
      inserted timestamptz NOT NULL DEFAULT now())`);
    const { e, metric } = emitter({
      table: 'public.audit',
      columns: { id: 'event_id', time: 'happened', event_type: 'kind', outcome: 'outcome', payload_json: 'body' },
    });
    const batch = events(100, 'u').map((ev, i) => ({
      ...ev,
      eventType: i === 17 || i === 80 ? 'forbidden' : ev.eventType,
      metadata: { [PAYLOAD_FORMAT]: PAYLOAD_FORMAT_JSON },
      payload: Buffer.from(JSON.stringify({ n: i })),
    }));
    const result = await e.emit(batch);
    assert.equal(result.status, 'partial');
    assert.ok(result.status === 'partial');
    assert.deepEqual(
      result.failures.map((f) => [f.index, f.retryable]),
      [
        [17, false],
        [80, false],
      ],
    );
    assert.match(result.failures[0]!.error, /PostgreSQL 23514: .*violates check constraint "audit_kind_check"/);
    const { rows } = await client.query<{ event_id: string; outcome: string; n: number }>(
      `SELECT event_id, outcome, (body->>'n')::int AS n FROM audit`,
    );
    assert.equal(rows.length, 98, 'every neighbour is in');
    assert.ok(rows.every((r) => r.outcome === 'FAILURE' && r.event_id === `u-${r.n}`));
    assert.equal(await metric('polku_postgres_rows_total', { result: 'rejected' }), 2);
    assert.equal(await metric('polku_postgres_rows_total', { result: 'inserted' }), 98);
    assert.equal(await metric('polku_postgres_batches_total', { outcome: 'partial' }), 1);
  });

  test('a missing table is retryable (events wait for `polku sinks init`), and unhealthy with the server message', async () => {
    const { e, metric } = emitter({ table: 'not_yet' });
    const result = await e.emit(events(3, 'm'));
    assert.equal(result.status, 'retryable');
    assert.ok(result.status === 'retryable');
    assert.match(result.error, /PostgreSQL 42P01: relation "not_yet" does not exist/);
    assert.equal((await e.health()).healthy, false);
    assert.equal(await metric('polku_postgres_failures_total', { kind: 'config' }), 1);
    await client.query(defaultTableDdl('not_yet'));
    assert.deepEqual(await e.emit(events(3, 'm')), { status: 'success' });
    assert.equal((await e.health()).healthy, true);
  });

  test('batches above rowsPerStatement go as several statements on the pool', async () => {
    await client.query(defaultTableDdl('chunked'));
    const { e, metric } = emitter({ table: 'chunked', rowsPerStatement: 100, poolSize: 3 });
    assert.deepEqual(await e.emit(events(1050, 'c')), { status: 'success' });
    assert.equal((await client.query('SELECT count(*)::int AS n FROM chunked')).rows[0].n, 1050);
    assert.equal(await metric('polku_postgres_rows_total', { result: 'inserted' }), 1050);
  });

  test('parallel statements with one refused row: that row alone fails, at its batch index; every other statement and neighbour is in', async () => {
    await client.query(`CREATE TABLE par (id text PRIMARY KEY, event_type text NOT NULL CHECK (event_type <> 'forbidden'))`);
    const { e, metric } = emitter({ table: 'par', columns: { id: 'id', event_type: 'event_type' }, rowsPerStatement: 100, poolSize: 4 });
    const batch = events(1000, 'p').map((ev, i) => (i === 537 ? { ...ev, eventType: 'forbidden' } : ev));
    const result = await e.emit(batch);
    assert.ok(result.status === 'partial', JSON.stringify(result));
    assert.deepEqual(
      result.failures.map((f) => [f.index, f.retryable]),
      [[537, false]],
    );
    assert.match(result.failures[0]!.error, /PostgreSQL 23514: .*violates check constraint "par_event_type_check"/);
    const { rows } = await client.query<{ id: string }>('SELECT id FROM par');
    assert.deepEqual(
      rows.map((r) => r.id).sort(),
      batch
        .filter((_, i) => i !== 537)
        .map((ev) => ev.id)
        .sort(),
    );
    assert.equal(await metric('polku_postgres_rows_total', { result: 'inserted' }), 999);
    assert.equal(await metric('polku_postgres_rows_total', { result: 'rejected' }), 1);
    // A resend of the whole batch adds no row twice; the refused one fails again, alone.
    const again = await e.emit(batch);
    assert.ok(again.status === 'partial');
    assert.deepEqual(
      again.failures.map((f) => f.index),
      [537],
    );
    assert.equal((await client.query('SELECT count(*)::int AS n FROM par')).rows[0].n, 999);
  });

  test('the server gone: the batch is retryable; back: it goes in', async () => {
    await client.query(defaultTableDdl('outage'));
    const { e, metric } = emitter({ table: 'outage', connectTimeoutMs: 1000 });
    assert.deepEqual(await e.emit(events(10, 'o')), { status: 'success' }); // a pooled connection exists
    await client.end();
    await server.stop();
    const down = await e.emit(events(10, 'o2'));
    assert.equal(down.status, 'retryable');
    assert.ok(down.status === 'retryable');
    assert.match(down.error, /PostgreSQL/);
    assert.ok((await metric('polku_postgres_failures_total', { kind: 'connection' })) >= 1);
    await server.startAgain();
    client = new pg.Client({ connectionString: server.connectionString });
    await client.connect();
    assert.deepEqual(await e.emit(events(10, 'o2')), { status: 'success' });
    assert.equal((await client.query('SELECT count(*)::int AS n FROM outage')).rows[0].n, 20);
  });

  test('its preferred batch is poolSize × rowsPerStatement: one statement per connection at once', () => {
    assert.equal(new PostgresEmitter({ connectionString: 'postgres://x' }).preferredBatchSize, 2_000);
    assert.equal(new PostgresEmitter({ connectionString: 'postgres://x', poolSize: 2, rowsPerStatement: 300 }).preferredBatchSize, 600);
  });

  test('bad options are refused with the option named', () => {
    assert.throws(
      () => new PostgresEmitter({ connectionString: 'postgres://x', table: 'a;drop' }),
      /table "a;drop" must be name or schema.name/,
    );
    assert.throws(() => new PostgresEmitter({ connectionString: 'postgres://x', columns: { source: 's' } }), /columns.id is required/);
    assert.throws(
      () => new PostgresEmitter({ connectionString: 'postgres://x', columns: { id: 'a', nope: 'b' } as never }),
      /columns.nope is not an event field/,
    );
    assert.throws(
      () => new PostgresEmitter({ connectionString: 'postgres://x', poolSize: 0 }),
      /poolSize must be a positive whole number, got 0/,
    );
  });
});
