/**
 * `npm run bench:tenants`: does a tenant flooding the gateway slow another one down?
 *
 * One gateway (src/cli/main.ts, bench/bench.config.ts: a counting in-memory emitter) with two
 * tenants from a POLKU_TENANTS_FILE, the same quota each. Then, each sender its own process:
 *   1. the quiet tenant alone, at 20% of its quota;
 *   2. the quiet tenant at 20% again, while the noisy tenant sends at 10× its quota.
 * Recorded: the quiet tenant's accepted rate and Ack p99 in both phases (target: within 10%),
 * the noisy tenant's accepted and RATE_LIMITED counts, and the gateway's peak RSS.
 *
 * A sender is a {@link Sender}: today gRPC StreamEvents (bench/loadgen.ts with --api-key); an
 * HTTP sender (POST /v1/events with X-API-Key) plugs in as another implementation.
 *
 *   npm run bench:tenants -- [--duration-ms 5000] [--quota 5000] [--json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hashKey } from '../src/tenants/api-key.js';
import { type Child, delay, freePort, hasExited, installChildCleanup, spawnTsx, stopChild } from './lib/children.js';
import type { LoadResult } from './lib/load-result.js';
import { RssSampler } from './lib/procfs.js';

const GATEWAY_ENTRY = 'src/cli/main.ts';
const GATEWAY_CONFIG = 'bench/bench.config.ts';
const LOADGEN = 'bench/loadgen.ts';
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 15_000;
/** The quiet tenant's share of its quota, and the noisy tenant's multiple of it (the figures). */
const QUIET_SHARE = 0.2;
const NOISY_MULTIPLE = 10;
/** Target: the quiet tenant's rate and p99 during the flood within this of its figures alone. */
const WITHIN = 0.1;

/** What one sender process is asked to do. */
export interface SendPlan {
  readonly target: string;
  readonly apiKey: string;
  readonly source: string;
  /** Events per second over all its streams. */
  readonly rate: number;
  readonly streams: number;
  readonly batch: number;
  readonly durationMs: number;
  readonly warmupMs: number;
}

/** A way to send load as a tenant, in its own process; resolves with the generator's figures. */
export interface Sender {
  readonly name: string;
  run(plan: SendPlan): Promise<LoadResult>;
}

/** gRPC StreamEvents through bench/loadgen.ts, the key in metadata x-api-key. */
export const grpcSender: Sender = {
  name: 'grpc',
  async run(plan) {
    const gen = spawnTsx(`loadgen ${plan.source}`, LOADGEN, [
      '--target',
      plan.target,
      '--streams',
      String(plan.streams),
      '--batch',
      String(plan.batch),
      '--rate',
      String(plan.rate),
      '--duration-ms',
      String(plan.durationMs),
      '--warmup-ms',
      String(plan.warmupMs),
      '--source',
      plan.source,
      '--api-key',
      plan.apiKey,
    ]);
    let last = '';
    gen.onStdoutLine((line) => {
      if (line.startsWith('{') && !line.startsWith('{"phase"')) last = line;
    });
    const code = await gen.exited;
    if (code !== 0 || last === '') throw new Error(`${gen.name} exited ${code}:\n${gen.tail()}`);
    return JSON.parse(last) as LoadResult;
  },
};

interface Options {
  durationMs: number;
  warmupMs: number;
  /** Each tenant's quota, events/s. */
  quota: number;
  json: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '2000' },
      quota: { type: 'string', default: '5000' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  return {
    durationMs: Number(values['duration-ms']),
    warmupMs: Number(values['warmup-ms']),
    quota: Number(values.quota),
    json: values.json!,
  };
}

async function startGateway(tenantsFile: string): Promise<{ child: Child; grpc: string; metricsUrl: string }> {
  const grpc = `127.0.0.1:${await freePort()}`;
  const metrics = `127.0.0.1:${await freePort()}`;
  const child = spawnTsx('gateway', GATEWAY_ENTRY, ['serve', '--config', GATEWAY_CONFIG], {
    env: {
      POLKU_GRPC_ADDR: grpc,
      POLKU_METRICS_ADDR: metrics,
      POLKU_OTLP_GRPC_ADDR: 'off',
      POLKU_OTLP_HTTP_ADDR: 'off',
      POLKU_LOG_LEVEL: 'warn',
      POLKU_TENANTS_FILE: tenantsFile,
    },
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (hasExited(child)) throw new Error(`the gateway exited before it was ready:\n${child.tail()}`);
    const ok = await fetch(`http://${metrics}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { child, grpc, metricsUrl: `http://${metrics}/metrics` };
    if (Date.now() > deadline) throw new Error(`the gateway was not ready in ${READY_TIMEOUT_MS} ms:\n${child.tail()}`);
    await delay(100);
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => n.toFixed(2);

async function main(): Promise<void> {
  installChildCleanup();
  const o = options();
  const dir = mkdtempSync(join(tmpdir(), 'polku-bench-tenants-'));
  const file = join(dir, 'tenants.json');
  const keys = { quiet: 'bench-quiet-key', noisy: 'bench-noisy-key' };
  writeFileSync(
    file,
    JSON.stringify({
      tenants: (['quiet', 'noisy'] as const).map((name) => ({
        name,
        apiKeys: [hashKey(keys[name])],
        sources: [name],
        rate: o.quota,
        burst: o.quota,
      })),
    }),
  );
  const gw = await startGateway(file);
  const rss = new RssSampler(gw.child.pid);
  const sender = grpcSender;
  const plan = (tenant: 'quiet' | 'noisy', rate: number, streams: number): SendPlan => ({
    target: gw.grpc,
    apiKey: keys[tenant],
    source: tenant,
    rate,
    streams,
    batch: 100,
    durationMs: o.durationMs,
    warmupMs: o.warmupMs,
  });
  const quietRate = o.quota * QUIET_SHARE;
  const noisyRate = o.quota * NOISY_MULTIPLE;
  try {
    process.stderr.write(`[bench] quiet tenant alone at ${fmt(quietRate)}/s (${sender.name})\n`);
    const alone = await sender.run(plan('quiet', quietRate, 1));
    const rssAloneMb = rss.peakMb();
    process.stderr.write(`[bench] quiet at ${fmt(quietRate)}/s with noisy at ${fmt(noisyRate)}/s\n`);
    const [flooded, noisy] = await Promise.all([sender.run(plan('quiet', quietRate, 1)), sender.run(plan('noisy', noisyRate, 4))]);
    const rateRatio = flooded.acceptedPerSec / alone.acceptedPerSec;
    const p99Ratio = flooded.ackLatencyMs.p99 / alone.ackLatencyMs.p99;
    const result = {
      machine: `${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
      sender: sender.name,
      quotaPerTenant: o.quota,
      durationMs: o.durationMs,
      quietAlone: { acceptedPerSec: alone.acceptedPerSec, ackLatencyMs: alone.ackLatencyMs, errors: alone.errorCodes },
      quietDuringFlood: { acceptedPerSec: flooded.acceptedPerSec, ackLatencyMs: flooded.ackLatencyMs, errors: flooded.errorCodes },
      noisy: { sent: noisy.eventsSent, accepted: noisy.eventsAccepted, acceptedPerSec: noisy.acceptedPerSec, errors: noisy.errorCodes },
      rateRatio,
      p99Ratio,
      gatewayPeakRssMb: { quietAlone: rssAloneMb, total: rss.peakMb() },
    };
    if (o.json) {
      console.log(JSON.stringify(result));
      return;
    }
    const pass = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
    console.log(
      `POLKU tenants benchmark: ${result.machine}; sender ${sender.name}; quota ${fmt(o.quota)}/s per tenant, ${o.durationMs} ms per phase`,
    );
    console.log('');
    console.log(`figure                                               value`);
    console.log(
      `quiet alone: accepted/s, Ack p50 / p99 ms            ${fmt(alone.acceptedPerSec)}, ${ms(alone.ackLatencyMs.p50)} / ${ms(alone.ackLatencyMs.p99)}`,
    );
    console.log(
      `quiet during flood: accepted/s, Ack p50 / p99 ms     ${fmt(flooded.acceptedPerSec)}, ${ms(flooded.ackLatencyMs.p50)} / ${ms(flooded.ackLatencyMs.p99)}`,
    );
    console.log(
      `quiet refusals alone / during flood                  ${JSON.stringify(alone.errorCodes)} / ${JSON.stringify(flooded.errorCodes)}`,
    );
    console.log(
      `noisy: sent, accepted, refused by code               ${fmt(noisy.eventsSent)}, ${fmt(noisy.eventsAccepted)}, ${JSON.stringify(noisy.errorCodes)}`,
    );
    console.log(`gateway peak RSS (quiet alone / overall)             ${rssAloneMb.toFixed(1)} / ${rss.peakMb().toFixed(1)} MB`);
    console.log('');
    console.log(`target                                               actual   result`);
    console.log(`quiet accepted rate during flood / alone >= 0.9      ${rateRatio.toFixed(3)}    ${pass(rateRatio >= 1 - WITHIN)}`);
    console.log(`quiet Ack p99 during flood / alone <= 1.1            ${p99Ratio.toFixed(3)}    ${pass(p99Ratio <= 1 + WITHIN)}`);
  } finally {
    rss.stop();
    await stopChild(gw.child, STOP_GRACE_MS);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
