/**
 * PostgresEmitter under `npm run bench:sinks`: a PostgreSQL server started here (initdb in a temp
 * folder, the server's default durability settings: fsync and synchronous_commit on), the default
 * table, the gateway in its own process, bench/loadgen.ts in another. The ceiling beside it: the
 * `pg` client alone in this process, sending the emitter's own statement (INSERT … SELECT FROM
 * unnest … ON CONFLICT DO NOTHING) with rows of the same shape, the way the gateway's pipeline
 * (postgres.config.ts) writes: 2,000 rows a round as four 500-row statements at once on a pool of
 * four connections. A parallel emitter measured against a one-connection client would flatter
 * it; the one-connection figure (500 rows back to back, the ceiling before 2026-12-03 15:40) is
 * printed beside it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { defaultTableDdl, DEFAULT_POSTGRES_COLUMNS, insertPlan } from '../../src/emit/postgres-sql.js';
import { Event, Severity } from '../../src/gen/polku/v1/event.js';
import { PostgresServer } from '../../test/helpers/postgres-server.js';
import { gatewayDelivery, OFFERED_LOAD, rawLoop, type SinkBenchOptions, type SinkFigures } from './common.js';

export const POSTGRES_TARGET = 50_000;
/** The gateway's pool (postgres.config.ts): the raw client gets as many connections. */
const RAW_CONNECTIONS = 4;

export interface PostgresBenchCase {
  /**
   * false: `synchronous_commit=off` on the server, a setting many event stores run with (a crash
   * of the database can lose its last ~0.6 s of commits, never corrupt). Default true: the
   * server's own default, an fsync of the WAL per commit, which this machine's disk bounds.
   */
  synchronousCommit?: boolean;
}

export async function benchPostgres(o: SinkBenchOptions, c: PostgresBenchCase = {}): Promise<SinkFigures> {
  const sync = c.synchronousCommit ?? true;
  const server = await PostgresServer.start({
    fast: false,
    settings: { max_wal_size: '4GB', ...(sync ? {} : { synchronous_commit: 'off' }) },
  });
  const client = new pg.Client({ connectionString: server.connectionString });
  try {
    await client.connect();
    await client.query(defaultTableDdl('raw_events'));
    await client.query(defaultTableDdl('polku_events'));

    const plan = insertPlan('bench', 'raw_events', DEFAULT_POSTGRES_COLUMNS);
    const rawBatch = 500;
    // The load generator's payload: ~300 random bytes (events of ~400 B).
    const payload = randomBytes(300);
    const rows = (b: string) =>
      Array.from({ length: rawBatch }, (_, i) =>
        Event.fromPartial({
          id: `raw-${b}-${i}`,
          timestampUnixNs: 1_764_560_000_000_000_000n + BigInt(i),
          source: 'bench-loadgen',
          eventType: 'bench.synthetic',
          severity: Severity.SEVERITY_INFO,
          metadata: { cluster: 'bench', namespace: 'default', pod: 'bench-loadgen-7d9f8c6b5-x2k4q' },
          payload,
        }),
      );
    const rawOne = await rawLoop(o.durationMs, o.warmupMs, async (b) => {
      await client.query({ text: plan.sql, values: plan.columns(rows(`1-${b}`)) });
      return rawBatch;
    });
    const pool = new pg.Pool({ connectionString: server.connectionString, max: RAW_CONNECTIONS });
    let raw: number;
    try {
      raw = await rawLoop(o.durationMs, o.warmupMs, async (b) => {
        await Promise.all(
          Array.from({ length: RAW_CONNECTIONS }, (_, s) => pool.query({ text: plan.sql, values: plan.columns(rows(`p-${b}-${s}`)) })),
        );
        return rawBatch * RAW_CONNECTIONS;
      });
    } finally {
      await pool.end();
    }

    const run = await gatewayDelivery(
      o,
      'bench/sinks/postgres.config.ts',
      { POLKU_BENCH_PG_URL: server.connectionString },
      {
        name: 'polku_postgres_rows_total',
        labels: { result: 'inserted' },
      },
      raw * OFFERED_LOAD,
    );
    const stored = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM polku_events')).rows[0]!.n;
    return {
      sink: sync ? 'postgres' : 'postgres, synchronous_commit=off',
      gatewayPerSec: run.deliveredPerSec,
      acceptedPerSec: run.acceptedPerSec,
      rawPerSec: raw,
      rawLabel: `pg alone, the same INSERT, ${RAW_CONNECTIONS} × 500 rows at once on ${RAW_CONNECTIONS} connections`,
      gatewayCpuUsPerEvent: run.cpuUsPerEvent,
      target: POSTGRES_TARGET,
      notes: [
        `raw pg, 500 rows back to back on one connection (the ceiling before 2026-12-03 15:40): ${Math.round(rawOne).toLocaleString('en-US')}/s`,
        `${stored.toLocaleString('en-US')} rows in the table after the run; ${run.dropped} events dropped by the gateway`,
      ],
    };
  } finally {
    await client.end().catch(() => undefined);
    await server.close();
  }
}
