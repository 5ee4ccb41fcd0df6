/**
 * The plugin path's speed: `npm run bench:plugin`.
 *
 * 1. Round trip: one client calls the TypeScript plugin's Emit directly, one call at a time,
 *    with batches of 100 events of ~400 B → p50/p99 per call.
 * 2. Throughput: the gateway benchmark (bench/run.ts, gateway only) with the plugin as the only
 *    emitter → events/s delivered to the plugin (target ≥ 50,000/s).
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { spawn, spawnSync } from 'node:child_process';
import { Event } from '../src/gen/polku/v1/event.js';
import { EmitterPluginClient, type EmitResponse } from '../src/gen/polku/v1/plugin.js';

const TARGET = 50_000;
const ROUND_TRIPS = 2_000;

const plugin = spawn(process.execPath, ['--import', 'tsx', 'bench/plugin-sink.ts', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => plugin.kill('SIGKILL'));
const port = await new Promise<number>((resolve, reject) => {
  plugin.stdout!.on('data', (d: Buffer) => {
    const m = /READY (\d+)/.exec(d.toString());
    if (m) resolve(Number(m[1]));
  });
  plugin.on('exit', (code) => reject(new Error(`plugin exited ${code}`)));
});

const client = new EmitterPluginClient(`127.0.0.1:${port}`, credentials.createInsecure());
const events = Array.from({ length: 100 }, (_, i) =>
  Event.fromPartial({
    id: `rt-${i}`,
    eventType: 'bench.synthetic',
    source: 'bench',
    payload: Buffer.alloc(330, 1),
    metadata: { cluster: 'bench' },
  }),
);
const emit = () =>
  new Promise<EmitResponse>((resolve, reject) =>
    client.emit({ events }, new Metadata(), { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res))),
  );
for (let i = 0; i < 200; i++) await emit(); // warm up
const latencies: number[] = [];
for (let i = 0; i < ROUND_TRIPS; i++) {
  const t0 = performance.now();
  await emit();
  latencies.push(performance.now() - t0);
}
client.close();
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;

const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', 'bench/run.ts', '--skip-bare', '--json', '--config', 'bench/bench-plugin.config.ts', '--duration-ms', '8000'],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, POLKU_BENCH_PLUGIN_ADDR: `127.0.0.1:${port}` } },
);
if (run.status !== 0) throw new Error(`bench/run.ts failed (exit ${run.status})`);
const result = JSON.parse(run.stdout.slice(run.stdout.indexOf('\n{') + 1)) as {
  gateway: { emittedPerSec: number | null; fullSpeed: { acceptedPerSec: number } };
};
const emitted = result.gateway.emittedPerSec ?? 0;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  [
    '',
    `plugin round trip (Emit of 100 events, one at a time, ${ROUND_TRIPS} calls): p50 ${pct(50).toFixed(2)} ms, p99 ${pct(99).toFixed(2)} ms`,
    `gateway → plugin: accepted ${fmt(result.gateway.fullSpeed.acceptedPerSec)} events/s, delivered to the plugin ${fmt(emitted)} events/s`,
    `target >= ${fmt(TARGET)} events/s to the plugin: ${emitted >= TARGET ? 'PASS' : 'MISS'}`,
    '',
  ].join('\n'),
);
plugin.kill('SIGTERM');
