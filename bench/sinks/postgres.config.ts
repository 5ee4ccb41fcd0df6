// bench:sinks: the gateway with one PostgresEmitter, the default table; connection from the env.
// Delivery batches of 2,000 written as four statements of 500 at once: while one waits for its
// commit, the others are on the wire (and the server can group their commits).
import { hub, PostgresEmitter } from '../../src/index.js';

export default hub()
  .emitter(
    new PostgresEmitter({
      connectionString: process.env['POLKU_BENCH_PG_URL']!,
      poolSize: 4,
      rowsPerStatement: 500,
    }),
  )
  .buffer({ capacity: 20_000, overflow: 'block' }) // intake waits for PostgreSQL instead of refusing, as the Redis and NATS runs do
  .delivery({ batchSize: Number(process.env['POLKU_BENCH_BATCH'] ?? 2000) });
