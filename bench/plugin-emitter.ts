/**
 * The plugin path's speed: `npm run bench:plugin`.
 *
 * 1. Round trip: one client calls the TypeScript plugin's Emit directly, one call at a time,
 *    with batches of 100 events of ~400 B → p50/p99 per call.
 * 2. The emitter alone in this process (several call shapes), and encoding alone.
 * 3. Throughput: the gateway benchmark (bench/run.ts, gateway only) with the plugin as the only
 *    emitter → events/s delivered to the plugin (target ≥ 120,000/s), and the CPU each of the
 *    three processes (gateway, plugin, load generator) spent per delivered event: they share the
 *    machine's cores, so their sum bounds the rate.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Event } from '../src/gen/polku/v1/event.js';
import { IngestBatch } from '../src/gen/polku/v1/gateway.js';
import { attachWireBytes } from '../src/ingest/event-wire-bytes.js';
import { DEFAULT_LIMITS } from '../src/ingest/intake-rules.js';
import { decodeIngestBatch } from '../src/receive/polku-gateway/message-codec.js';
import { EmitRequest, EmitterPluginClient, type EmitResponse } from '../src/gen/polku/v1/plugin.js';
import { ExternalEmitter, type ExternalEmitterOptions } from '../src/emit/external.js';
import { encodeEmitRequest } from '../src/plugin-client/emit-request.js';
import { createLogger } from '../src/observability/logger.js';
import { createRegistry } from '../src/observability/metrics.js';
import { systemClock, systemTimers } from '../src/clock.js';

const TARGET = 120_000;
const ROUND_TRIPS = 2_000;
const { values: args } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '8000' },
    'warmup-ms': { type: 'string', default: '2000' },
    'alone-ms': { type: 'string', default: '3000' },
    'skip-gateway': { type: 'boolean', default: false },
  },
});

// BENCH_PLUGIN_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the plugin (as
// BENCH_GATEWAY_NODE_ARGS does the gateway).
const pluginNodeArgs = process.env['BENCH_PLUGIN_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
const plugin = spawn(process.execPath, [...pluginNodeArgs, '--import', 'tsx', 'bench/plugin-sink.ts', '0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
process.on('exit', () => plugin.kill('SIGKILL'));
let onCount: ((c: { events: number; cpuUs: number }) => void) | null = null;
const port = await new Promise<number>((resolve, reject) => {
  plugin.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    const m = /READY (\d+)/.exec(text);
    if (m) resolve(Number(m[1]));
    const c = /COUNT (\d+) (\d+)/.exec(text);
    if (c) {
      lastCount = { events: Number(c[1]), cpuUs: Number(c[2]) };
      onCount?.(lastCount);
    }
  });
  plugin.once('exit', (code) => reject(new Error(`plugin exited ${code}`)));
});
let lastCount: { events: number; cpuUs: number } | null = null;
const exited = new Promise<void>((resolve) => plugin.on('exit', () => resolve()));
/** The plugin's events received and CPU µs so far (it answers SIGUSR2). */
const pluginCount = () =>
  new Promise<{ events: number; cpuUs: number }>((resolve) => {
    onCount = resolve;
    plugin.kill('SIGUSR2');
  });
/**
 * The plugin's last count: the gateway calls its Shutdown when the run ends, and it prints the
 * count as it exits.
 */
const finalCount = async () => {
  await exited;
  return lastCount!;
};

function fmtN(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

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
console.log(
  `\nplugin round trip (Emit of 100 events, one at a time, ${ROUND_TRIPS} calls): p50 ${pct(50).toFixed(2)} ms, p99 ${pct(99).toFixed(2)} ms`,
);

// 2. The emitter alone, in this process: ExternalEmitter.emit one batch at a time (as the
// delivery queue calls it) for alone-ms, one call per batch vs the default split into concurrent
// calls; events/s, and CPU per event of this process and of the plugin.
const aloneMs = Number(args['alone-ms']);
const loadgenLike = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    Event.fromPartial({
      id: `01JBENCH${String(i).padStart(18, '0')}`,
      timestampUnixNs: 1_764_000_000_000_000_000n + BigInt(i),
      eventType: 'bench.synthetic',
      source: 'bench',
      payload: Buffer.alloc(300, 1),
      metadata: { cluster: 'bench', namespace: 'default', pod: 'bench-loadgen-7d9f8c6b5-x2k4q' },
    }),
  );
/**
 * The same events as the gateway holds them in memory mode with a plugin emitter: decoded from an
 * IngestBatch the way the receiver decodes it, each keeping the bytes it arrived in
 * (src/ingest/event-wire-bytes.ts), so the EmitRequest copies them instead of encoding.
 */
const arrived = (n: number): Event[] => {
  const message = IngestBatch.encode({
    source: 'bench',
    cluster: 'bench',
    payload: { $case: 'events', value: { events: loadgenLike(n) } },
  }).finish();
  const { batch, wire } = decodeIngestBatch(Buffer.from(message), { ...DEFAULT_LIMITS, maxBatchEvents: n });
  const events = batch.payload?.$case === 'events' ? batch.payload.value.events : [];
  events.forEach((e, i) => attachWireBytes(e, wire!, i));
  return events;
};
async function alone(
  batch: number,
  options: ExternalEmitterOptions,
  make: (n: number) => Event[] = loadgenLike,
): Promise<{ perSec: number; selfUs: number; pluginUs: number }> {
  const e = new ExternalEmitter({ name: 'plugin', address: `127.0.0.1:${port}`, ...options });
  e.init({ registry: createRegistry(), logger: createLogger('warn'), clock: systemClock, timers: systemTimers });
  const events = make(batch);
  for (let i = 0; i < 20; i++) await e.emit(events); // warm up
  const p0 = await pluginCount();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < aloneMs) {
    const r = await e.emit(events);
    if (r.status !== 'success') throw new Error(`emit: ${JSON.stringify(r)}`);
    sent += events.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  const p1 = await pluginCount();
  e.close();
  return { perSec: sent / seconds, selfUs: (c1.user + c1.system) / sent, pluginUs: (p1.cpuUs - p0.cpuUs) / (p1.events - p0.events) };
}
const aloneRows: string[] = [];
const cases: Array<[number, string, ExternalEmitterOptions, ((n: number) => Event[])?]> = [
  [1000, 'one call per batch, events with their wire bytes (as the gateway sends them)', { maxCallsInFlight: 1 }, arrived],
  [4000, 'one call per batch, events with their wire bytes', { maxCallsInFlight: 1 }, arrived],
  [1000, 'one call per batch', { maxCallsInFlight: 1 }],
  [1000, '4 concurrent calls of 250', { maxCallsInFlight: 4, minEventsPerCall: 250 }],
  [2000, 'one call per batch', { maxCallsInFlight: 1 }],
  [4000, 'one call per batch', { maxCallsInFlight: 1 }],
];
for (const [batch, label, options, make] of cases) {
  const r = await alone(batch, options, make);
  aloneRows.push(
    `  batches of ${fmtN(batch)}, ${label}: ${fmtN(r.perSec)} events/s; CPU per event: emitter ${r.selfUs.toFixed(2)} µs, plugin ${r.pluginUs.toFixed(2)} µs`,
  );
}
// Encoding alone, the same batch: the generated encoder (as grpc-js's serializer calls it) vs ours.
const encodeBatch = loadgenLike(1000);
const timeEncode = (f: () => unknown) => {
  for (let i = 0; i < 50; i++) f();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 500) {
    f();
    n++;
  }
  return (n * encodeBatch.length) / ((performance.now() - t0) / 1000);
};
const generated = timeEncode(() => Buffer.from(EmitRequest.encode({ events: encodeBatch }).finish()));
const direct = timeEncode(() => encodeEmitRequest(encodeBatch));
const withBytes = arrived(1000);
const copied = timeEncode(() => encodeEmitRequest(withBytes));
aloneRows.push(
  `  encoding a batch of 1,000: generated ${fmtN(generated)} events/s, encodeEmitRequest ${fmtN(direct)} events/s (${(direct / generated).toFixed(2)}x), ` +
    `from the wire bytes ${fmtN(copied)} events/s (${(copied / generated).toFixed(2)}x)`,
);
console.log(['', 'the plugin emitter alone (in this process, one emit at a time):', ...aloneRows].join('\n'));
if (args['skip-gateway']) {
  plugin.kill('SIGTERM');
  process.exit(0);
}

const before = await pluginCount();
const run = spawnSync(
  process.execPath,
  [
    ...[
      '--import',
      'tsx',
      'bench/run.ts',
      '--skip-bare',
      '--skip-agents',
      '--skip-otlp',
      '--json',
      '--config',
      'bench/bench-plugin.config.ts',
    ],
    ...['--duration-ms', args['duration-ms']!, '--warmup-ms', args['warmup-ms']!],
  ],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, POLKU_BENCH_PLUGIN_ADDR: `127.0.0.1:${port}` } },
);
if (run.status !== 0) throw new Error(`bench/run.ts failed (exit ${run.status})`);
const result = JSON.parse(run.stdout.slice(run.stdout.indexOf('\n{') + 1)) as {
  gateway: {
    emittedPerSec: number | null;
    serverCpuCores: number | null;
    peakRssMb: number;
    fullSpeed: { acceptedPerSec: number; loadgenCpuCores: number };
  };
};
const after = await finalCount();
const emitted = result.gateway.emittedPerSec ?? 0;
// CPU per delivered event: the gateway's over the measured window, the plugin's over the whole
// run (warmup included; per event, so the window does not matter much).
const gatewayUs = result.gateway.serverCpuCores !== null && emitted > 0 ? (result.gateway.serverCpuCores / emitted) * 1e6 : null;
const pluginEvents = after.events - before.events;
const pluginUs = pluginEvents > 0 ? (after.cpuUs - before.cpuUs) / pluginEvents : null;
// The load generator's over its measured window (the same window as the gateway's).
const loadgenCores = result.gateway.fullSpeed.loadgenCpuCores;
const loadgenUs = emitted > 0 ? (loadgenCores / emitted) * 1e6 : null;
const us = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)} µs`);
// What the three processes on this machine's cores cost together per delivered event, and the
// rate that would be if they had the machine's cores to themselves and nothing else ran.
const cores = availableParallelism();
const totalUs = gatewayUs !== null && pluginUs !== null && loadgenUs !== null ? gatewayUs + pluginUs + loadgenUs : null;
const fmt = fmtN;
console.log(
  [
    '',
    `gateway → plugin: accepted ${fmt(result.gateway.fullSpeed.acceptedPerSec)} events/s, delivered to the plugin ${fmt(emitted)} events/s`,
    `CPU per delivered event: gateway ${us(gatewayUs)} (${result.gateway.serverCpuCores?.toFixed(2) ?? 'n/a'} cores), plugin ${us(pluginUs)} (${fmt(pluginEvents)} events), load generator ${us(loadgenUs)} (${loadgenCores.toFixed(2)} cores)`,
    `all three: ${us(totalUs)} per event, so at most ${totalUs === null ? 'n/a' : fmt((cores * 1e6) / totalUs)} events/s on ${cores} free cores; gateway peak RSS ${result.gateway.peakRssMb.toFixed(1)} MB`,
    `target >= ${fmt(TARGET)} events/s to the plugin: ${emitted >= TARGET ? 'PASS' : 'MISS'}`,
    '',
  ].join('\n'),
);
plugin.kill('SIGTERM');
