/**
 * `npm run bench:sinks [-- --duration-ms 8000 --only postgres,s3]`: each sink emitter against its
 * real server here, the gateway in its own process under bench/loadgen.ts at full speed, and the
 * server's own client alone beside it in the same run. One file per sink under bench/sinks/,
 * each exporting a function called below. Figures on a shared machine are rough: read the ratio.
 * Servers: scripts/install-postgres.sh (PostgreSQL), scripts/install-redis-nats.sh (redis-server,
 * nats-server); S3 is s3rver from npm. Each line prints the gateway's CPU per delivered event;
 * `intake` (paced at --intake-rate, default 50,000/s) is the same path with no destination, the
 * part of every sink's CPU per event that is not its emitter.
 */
import { parseArgs } from 'node:util';
import { installChildCleanup } from './lib/children.js';
import type { SinkResult } from './sinks/bus-common.js';
import type { SinkBenchOptions, SinkFigures } from './sinks/common.js';
import { intakeOnly } from './sinks/intake.js';
import { natsJetStream } from './sinks/nats.js';
import { benchPostgres } from './sinks/postgres.js';
import { redisStreams } from './sinks/redis.js';
import { benchS3 } from './sinks/s3.js';

/** The bus sinks measure what the server stored (their intake figure is the same window's). */
const stored = (r: SinkResult): SinkFigures => ({
  sink: r.sink,
  gatewayPerSec: r.gatewayPerSec,
  acceptedPerSec: r.gatewayPerSec,
  rawPerSec: r.rawPerSec,
  rawLabel: r.rawPerSec > 0 ? 'raw client loop' : 'none',
  target: r.target,
  gatewayCpuUsPerEvent: r.gatewayCpuUsPerEvent,
  notes: r.notes,
});

const SINKS: Record<string, (o: SinkBenchOptions) => Promise<SinkFigures>> = {
  postgres: (o) => benchPostgres(o),
  'postgres-async': (o) => benchPostgres(o, { synchronousCommit: false }),
  s3: benchS3,
  redis: async (o) => stored(await redisStreams(o)),
  nats: async (o) => stored(await natsJetStream(o)),
  // The same gateway path with no destination, paced at a sink's rate: its CPU per event is the
  // share of each sink's figure that is not the emitter.
  intake: async (o) => stored(await intakeOnly(o, Number(values['intake-rate']))),
};

/** The bar: the gateway delivers at least this share of the raw client's figure. */
const MIN_RATIO = 0.5;

const { values } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '8000' },
    'warmup-ms': { type: 'string', default: '2000' },
    streams: { type: 'string', default: '4' },
    batch: { type: 'string', default: '100' },
    only: { type: 'string' },
    'intake-rate': { type: 'string', default: '50000' },
  },
});
const options: SinkBenchOptions = {
  durationMs: Number(values['duration-ms']),
  warmupMs: Number(values['warmup-ms']),
  streams: Number(values.streams),
  batch: Number(values.batch),
};
const chosen = values.only === undefined ? Object.keys(SINKS) : values.only.split(',');
for (const name of chosen) if (!(name in SINKS)) throw new Error(`no sink "${name}"; there are ${Object.keys(SINKS).join(', ')}`);

installChildCleanup();
const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
console.log(
  `bench:sinks: ${options.durationMs / 1000} s windows after ${options.warmupMs / 1000} s warmup, loadgen ${options.streams} streams × ${options.batch}-event batches`,
);
for (const name of chosen) {
  const f = await SINKS[name]!(options);
  if (f.rawPerSec === 0) {
    console.log(
      `${f.sink.padEnd(9)} gateway ${fmt(f.gatewayPerSec)} events/s delivered (CPU ${f.gatewayCpuUsPerEvent.toFixed(1)} µs/event) | no raw client`,
    );
    for (const note of f.notes) console.log(`          ${note}`);
    continue;
  }
  const ratio = f.gatewayPerSec / f.rawPerSec;
  const verdicts = [
    f.target > 0 ? `${f.gatewayPerSec >= f.target ? 'PASS' : 'MISS'} ≥ ${f.target.toLocaleString('en-US')}/s` : 'no target',
    `${ratio >= MIN_RATIO ? 'PASS' : 'MISS'} ≥ ${MIN_RATIO} of raw`,
  ];
  console.log(
    `${f.sink.padEnd(9)} gateway ${fmt(f.gatewayPerSec)} events/s delivered (intake ${fmt(f.acceptedPerSec)}/s, CPU ${f.gatewayCpuUsPerEvent.toFixed(1)} µs/event) | raw ${fmt(f.rawPerSec)} events/s (${f.rawLabel}) | ratio ${ratio.toFixed(2)} | ${verdicts.join(', ')}`,
  );
  for (const note of f.notes) console.log(`          ${note}`);
}
