/**
 * Emitters against the servers they deliver to: `npm run bench:sinks [-- --duration-ms 5000]
 * [--only redis|nats]`. For each sink, a `polku serve` process with that emitter in its pipeline
 * module under bench/loadgen.ts (its own process, full speed), the events/s the server stored, and
 * in the same run the server's ceiling from a raw client loop; the ratio between the two.
 * Servers come from scripts/install-redis-nats.sh (redis-server, redis-benchmark, nats-server).
 */
import { parseArgs } from 'node:util';
import { installChildCleanup } from './lib/children.js';
import { fmt, type SinkOptions, type SinkResult } from './sinks/bus-common.js';
import { natsJetStream } from './sinks/nats.js';
import { redisStreams } from './sinks/redis.js';

const SINKS: Record<string, (opts: SinkOptions) => Promise<SinkResult>> = {
  redis: redisStreams,
  nats: natsJetStream,
};
/** Each sink's figure must reach this share of its raw client's. */
const MIN_RATIO = 0.5;

installChildCleanup();
const { values } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '5000' },
    'warmup-ms': { type: 'string', default: '2000' },
    only: { type: 'string' },
  },
  strict: true,
});
const opts: SinkOptions = { durationMs: Number(values['duration-ms']), warmupMs: Number(values['warmup-ms']) };
const names = values.only ? values.only.split(',') : Object.keys(SINKS);
for (const n of names) if (!SINKS[n]) throw new Error(`unknown sink ${n}: ${Object.keys(SINKS).join(', ')}`);

console.log(`sinks, ${opts.durationMs} ms measured per case after ${opts.warmupMs} ms of warm-up`);
const rows: SinkResult[] = [];
for (const n of names) {
  const r = await SINKS[n]!(opts);
  rows.push(r);
  console.log(`  ${r.sink}: ${r.notes.join('; ')}`);
}
console.log('');
console.log('| sink | through the gateway | raw client | ratio | target |');
console.log('|---|---:|---:|---:|---|');
let ok = true;
for (const r of rows) {
  const pass = r.gatewayPerSec >= r.target && r.ratio >= MIN_RATIO;
  ok &&= pass;
  console.log(
    `| ${r.sink} | ${fmt(r.gatewayPerSec)}/s | ${fmt(r.rawPerSec)}/s | ${r.ratio.toFixed(2)} | ≥ ${fmt(r.target)}/s and ≥ ${MIN_RATIO}: ${pass ? 'PASS' : 'MISS'} |`,
  );
}
process.exitCode = ok ? 0 : 1;
