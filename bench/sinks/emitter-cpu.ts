/**
 * `node --import tsx bench/sinks/emitter-cpu.ts [--only nats,redis,postgres] [--batches 60] [--redis-commands script]`:
 * each bus/database emitter alone in this process against its real server (the test helpers'
 * servers on private ports), `emit` called back to back with batches of the load generator's
 * events (~400 B, 290 random payload bytes, every id new), one batch in flight as the delivery
 * layer calls it. Prints this process's CPU time (user + system) per event and the events/s.
 * CPU per event is what a loaded machine changes least: compare it before and after a change to
 * an emitter, in runs taken close together. The full path (ingest, buffer, delivery) is
 * `npm run bench:sinks`.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { systemClock, systemTimers } from '../../src/clock.js';
import type { Emitter } from '../../src/emit/emitter.js';
import { NatsEmitter } from '../../src/emit/nats.js';
import { PostgresEmitter } from '../../src/emit/postgres.js';
import { defaultTableDdl } from '../../src/emit/postgres-sql.js';
import { RedisStreamEmitter } from '../../src/emit/redis-stream.js';
import { Event, Severity } from '../../src/gen/polku/v1/event.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { NatsServer } from '../../test/helpers/nats-server.js';
import { PostgresServer } from '../../test/helpers/postgres-server.js';
import { RedisServer } from '../../test/helpers/redis-server.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'nats,redis,postgres' },
    batches: { type: 'string', default: '60' },
    batch: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '10' },
    'redis-per-command': { type: 'string', default: '1000,250' },
    'redis-commands': { type: 'string', default: 'script,pipeline' },
    postgres: { type: 'string', default: '4x500' },
  },
});
const BATCHES = Number(values.batches);
const BATCH = Number(values.batch);
const WARMUP = Number(values.warmup);
const payload = randomBytes(290);
let seq = 0;

function batchOf(n: number): Event[] {
  const b = seq++;
  return Array.from({ length: n }, (_, i) =>
    Event.fromPartial({
      id: `cpu-${process.pid}-${b}-${i}`,
      timestampUnixNs: 1_764_560_000_000_000_000n + BigInt(b * n + i),
      source: 'bench-loadgen',
      eventType: 'bench.synthetic',
      severity: Severity.SEVERITY_INFO,
      metadata: { cluster: 'bench', namespace: 'default', pod: 'bench-loadgen-7d9f8c6b5-x2k4q' },
      payload,
    }),
  );
}

async function measure(label: string, e: Emitter): Promise<void> {
  e.init?.({ registry: createRegistry(), logger: silentLogger(), clock: systemClock, timers: systemTimers });
  const batches = Array.from({ length: WARMUP + BATCHES }, () => batchOf(BATCH));
  for (let i = 0; i < WARMUP; i++) {
    const r = await e.emit(batches[i]!);
    if (r.status !== 'success') throw new Error(`${label}: warm-up batch ${r.status}: ${JSON.stringify(r).slice(0, 300)}`);
  }
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = WARMUP; i < batches.length; i++) {
    const r = await e.emit(batches[i]!);
    if (r.status !== 'success') throw new Error(`${label}: batch ${r.status}: ${JSON.stringify(r).slice(0, 300)}`);
  }
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const events = BATCHES * BATCH;
  console.log(
    `${label.padEnd(34)} ${((used.user + used.system) / events).toFixed(2).padStart(6)} µs CPU/event  ${Math.round((events / wall) * 1000)
      .toLocaleString('en-US')
      .padStart(8)} events/s`,
  );
  await e.shutdown?.();
}

const only = new Set(values.only.split(','));
console.log(`emitter-cpu: ${BATCHES} batches of ${BATCH} after ${WARMUP} warm-up batches, one in flight`);
if (only.has('nats')) {
  const server = await NatsServer.start();
  const nc = await connect({ servers: server.url });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: 'CPU', subjects: ['cpu.>'], max_msgs: 200_000 });
    await measure('nats jetstream', new NatsEmitter({ servers: server.url, subject: 'cpu.{source}' }));
  } finally {
    await nc.close();
    await server.close();
  }
}
if (only.has('redis')) {
  const server = await RedisServer.start();
  try {
    for (const per of values['redis-per-command'].split(',').map(Number)) {
      const o = { url: server.url, stream: 'cpu', maxLen: 200_000, eventsPerCommand: per };
      for (const batchCommand of values['redis-commands'].split(',') as Array<'script' | 'pipeline'>) {
        await measure(`redis ${batchCommand}, ${per} per command`, new RedisStreamEmitter({ ...o, batchCommand }));
      }
    }
  } finally {
    await server.close();
  }
}
if (only.has('postgres')) {
  const server = await PostgresServer.start({ settings: { max_wal_size: '4GB' } });
  const client = new pg.Client({ connectionString: server.connectionString });
  try {
    await client.connect();
    await client.query(defaultTableDdl());
    // poolSize × rowsPerStatement pairs.
    for (const shape of values.postgres.split(',')) {
      const [poolSize, rowsPerStatement] = shape.split('x').map(Number) as [number, number];
      const e = new PostgresEmitter({ connectionString: server.connectionString, poolSize, rowsPerStatement });
      await measure(`postgres, pool ${poolSize}, ${rowsPerStatement} rows a statement`, e);
    }
  } finally {
    await client.end();
    await server.close();
  }
}
