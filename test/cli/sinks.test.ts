// `polku sinks init postgres` as its own process against a real PostgreSQL server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { runPolku } from '../helpers/polku-process.js';
import { postgresMissing, PostgresServer } from '../helpers/postgres-server.js';

const skip = postgresMissing();
if (skip) console.log(`# polku sinks tests skipped: ${skip}`);

describe('polku sinks init postgres', { skip }, () => {
  let server: PostgresServer;
  before(async () => {
    server = await PostgresServer.start();
  });
  after(async () => {
    await server?.close();
  });

  test('creates the default table, and a second run leaves it be', async () => {
    for (const run of [1, 2]) {
      const p = runPolku(['sinks', 'init', 'postgres', '--connection', server.connectionString, '--table', 'public.events']);
      assert.deepEqual(await p.exited, { code: 0, signal: null }, `run ${run}: ${p.stderr.join('\n')}`);
      assert.match(p.stdout.join('\n'), /table public\.events is ready/);
    }
    const client = new pg.Client({ connectionString: server.connectionString });
    await client.connect();
    try {
      const { rows } = await client.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'events' ORDER BY ordinal_position`,
      );
      assert.deepEqual(
        rows.map((r) => `${r.column_name} ${r.data_type}`),
        [
          'id text',
          'time timestamp with time zone',
          'source text',
          'event_type text',
          'severity text',
          'metadata jsonb',
          'payload bytea',
          'received_at timestamp with time zone',
        ],
      );
    } finally {
      await client.end();
    }
  });

  test('a bad table name is refused before connecting; a refused connection exits 1 with the reason', async () => {
    const bad = runPolku(['sinks', 'init', 'postgres', '--connection', server.connectionString, '--table', 'x;drop']);
    assert.equal((await bad.exited).code, 1);
    assert.match(bad.stderr.join('\n'), /POLKU_ERR_PIPELINE_INVALID: .*table "x;drop" must be name or schema.name/);
    const wrongDb = runPolku(['sinks', 'init', 'postgres', '--connection', `${server.connectionString}_missing`]);
    assert.equal((await wrongDb.exited).code, 1);
    assert.match(wrongDb.stderr.join('\n'), /PostgreSQL 3D000: database "polku_missing" does not exist/);
  });
});
