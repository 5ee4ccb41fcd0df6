/**
 * `npm run bench:tenants`: does a tenant flooding the gateway slow another one down?
 *
 * One gateway (src/cli/main.ts, bench/bench.config.ts: a counting in-memory emitter; gRPC and the
 * HTTP front door on free ports) with two tenants from a POLKU_TENANTS_FILE, the same quota each.
 * Then, for each sender in turn, each tenant its own process:
 *   1. the quiet tenant alone, at 20% of its quota;
 *   2. the quiet tenant at 20% again, while the noisy tenant sends at 10× its quota.
 * Recorded: the quiet tenant's accepted rate and Ack p99 in both phases (target: within 10%),
 * the noisy tenant's accepted and RATE_LIMITED counts, and the gateway's peak RSS; one table per
 * sender, then the targets per sender.
 *
 * A sender is a {@link Sender}: gRPC StreamEvents (bench/loadgen.ts, key in metadata x-api-key)
 * and HTTP `POST /v1/events` (bench/http-loadgen.ts, key in X-API-Key; request latency stands for
 * the Ack latency).
 *
 *   npm run bench:tenants -- [--sender grpc|http|both] [--duration-ms 5000] [--quota 5000] [--json]
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
const HTTP_LOADGEN = 'bench/http-loadgen.ts';
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 15_000;
/** The quiet tenant's share of its quota, and the noisy tenant's multiple of it (the issue's figures). */
const QUIET_SHARE = 0.2;
const NOISY_MULTIPLE = 10;
/** Target: the quiet tenant's rate and p99 during the flood within this of its figures alone. */
const WITHIN = 0.1;

/** What one sender process is asked to do. */
export interface SendPlan {
  /** Where the gateway listens, one address per sender kind. */
  readonly target: Targets;
  readonly apiKey: string;
  readonly source: string;
  /** Events per second over all its streams. */
  readonly rate: number;
  /** gRPC streams, or HTTP connections. */
  readonly streams: number;
  readonly batch: number;
  readonly durationMs: number;
  readonly warmupMs: number;
}

/** A way to send load as a tenant, in its own process; resolves with the generator's figures. */
export interface Sender {
  readonly name: SenderName;
  /**
   * Streams (connections) the noisy tenant uses to ask 10× its quota. HTTP/1.1 has one request
   * outstanding per connection, so asking 50,000/s in requests of 100 at ~10 ms a request on a
   * busy machine takes more connections than gRPC's windowed streams.
   */
  readonly noisyStreams: number;
  run(plan: SendPlan): Promise<LoadResult>;
}

export type SenderName = 'grpc' | 'http';

/** The gateway's listeners: gRPC host:port and the URL of the HTTP front door's events route. */
export interface Targets {
  readonly grpc: string;
  readonly http: string;
}

/** Runs a generator and parses the last JSON line it printed (its result). */
async function lastResult(name: string, script: string, args: string[]): Promise<LoadResult> {
  const gen = spawnTsx(name, script, args);
  let last = '';
  gen.onStdoutLine((line) => {
    if (line.startsWith('{') && !line.startsWith('{"phase"')) last = line;
  });
  const code = await gen.exited;
  if (code !== 0 || last === '') throw new Error(`${gen.name} exited ${code}:\n${gen.tail()}`);
  return JSON.parse(last) as LoadResult;
}

/** gRPC StreamEvents through bench/loadgen.ts, the key in metadata x-api-key. */
export const grpcSender: Sender = {
  name: 'grpc',
  noisyStreams: 4,
  run(plan) {
    return lastResult(`loadgen ${plan.source}`, LOADGEN, [
      '--target',
      plan.target.grpc,
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
  },
};

/**
 * HTTP `POST /v1/events` through bench/http-loadgen.ts: keep-alive connections, JSON arrays of
 * `batch` events, the key in X-API-Key; refusals counted per event from the answers' `errors`.
 */
export const httpSender: Sender = {
  name: 'http',
  noisyStreams: 16,
  run(plan) {
    return lastResult(`http-loadgen ${plan.source}`, HTTP_LOADGEN, [
      '--url',
      plan.target.http,
      '--connections',
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
  },
};

const SENDERS: Record<SenderName, Sender> = { grpc: grpcSender, http: httpSender };

interface Options {
  durationMs: number;
  warmupMs: number;
  /** Each tenant's quota, events/s. */
  quota: number;
  json: boolean;
  senders: Sender[];
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '2000' },
      quota: { type: 'string', default: '5000' },
      json: { type: 'boolean', default: false },
      sender: { type: 'string', default: 'both' },
    },
    strict: true,
  });
  const sender = values.sender!;
  if (sender !== 'both' && sender !== 'grpc' && sender !== 'http') throw new Error(`--sender must be grpc, http or both, got ${sender}`);
  return {
    senders: sender === 'both' ? [grpcSender, httpSender] : [SENDERS[sender]],
    durationMs: Number(values['duration-ms']),
    warmupMs: Number(values['warmup-ms']),
    quota: Number(values.quota),
    json: values.json!,
  };
}

async function startGateway(tenantsFile: string): Promise<{ child: Child; target: Targets; metricsUrl: string }> {
  const grpc = `127.0.0.1:${await freePort()}`;
  const http = `127.0.0.1:${await freePort()}`;
  const metrics = `127.0.0.1:${await freePort()}`;
  const child = spawnTsx('gateway', GATEWAY_ENTRY, ['serve', '--config', GATEWAY_CONFIG], {
    env: {
      POLKU_GRPC_ADDR: grpc,
      POLKU_HTTP_ADDR: http,
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
    if (ok) return { child, target: { grpc, http: `http://${http}/v1/events` }, metricsUrl: `http://${metrics}/metrics` };
    if (Date.now() > deadline) throw new Error(`the gateway was not ready in ${READY_TIMEOUT_MS} ms:\n${child.tail()}`);
    await delay(100);
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => n.toFixed(2);

/** One sender's two phases and what came of them. */
interface SenderRun {
  readonly sender: Sender;
  readonly alone: LoadResult;
  readonly flooded: LoadResult;
  readonly noisy: LoadResult;
  /** The gateway's resident set, sampled every 250 ms: peak in the quiet phase, and over both. */
  readonly rssAloneMb: number;
  readonly rssMb: number;
}

async function runSender(
  sender: Sender,
  plan: (tenant: 'quiet' | 'noisy', rate: number, streams: number) => SendPlan,
  pid: number,
  o: Options,
): Promise<SenderRun> {
  const quietRate = o.quota * QUIET_SHARE;
  const noisyRate = o.quota * NOISY_MULTIPLE;
  // A sampler per sender: VmHWM is the process's peak since it started, so the second sender's
  // figure would carry the first's.
  const rss = new RssSampler(pid);
  try {
    process.stderr.write(`[bench] quiet tenant alone at ${fmt(quietRate)}/s (${sender.name})\n`);
    const alone = await sender.run(plan('quiet', quietRate, 1));
    const rssAloneMb = rss.peakKb / 1024;
    process.stderr.write(`[bench] quiet at ${fmt(quietRate)}/s with noisy at ${fmt(noisyRate)}/s (${sender.name})\n`);
    const [flooded, noisy] = await Promise.all([
      sender.run(plan('quiet', quietRate, 1)),
      sender.run(plan('noisy', noisyRate, sender.noisyStreams)),
    ]);
    rss.sample();
    return { sender, alone, flooded, noisy, rssAloneMb, rssMb: rss.peakKb / 1024 };
  } finally {
    rss.stop();
  }
}

const pass = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
/** A table row: the label, then the value from column 54 (the tables' one layout). */
const row = (label: string, value: string): string => `${label.padEnd(53)}${value}`;

function report(r: SenderRun, o: Options, machine: string, peakRssMb: number): void {
  const { sender, alone, flooded, noisy } = r;
  const rateRatio = flooded.acceptedPerSec / alone.acceptedPerSec;
  const p99Ratio = flooded.ackLatencyMs.p99 / alone.ackLatencyMs.p99;
  if (o.json) {
    const result = {
      machine,
      sender: sender.name,
      quotaPerTenant: o.quota,
      durationMs: o.durationMs,
      quietAlone: { acceptedPerSec: alone.acceptedPerSec, ackLatencyMs: alone.ackLatencyMs, errors: alone.errorCodes },
      quietDuringFlood: { acceptedPerSec: flooded.acceptedPerSec, ackLatencyMs: flooded.ackLatencyMs, errors: flooded.errorCodes },
      noisy: {
        streams: sender.noisyStreams,
        sent: noisy.eventsSent,
        accepted: noisy.eventsAccepted,
        acceptedPerSec: noisy.acceptedPerSec,
        errors: noisy.errorCodes,
      },
      rateRatio,
      p99Ratio,
      gatewayPeakRssMb: { quietAlone: r.rssAloneMb, total: r.rssMb, sinceStart: peakRssMb },
    };
    console.log(JSON.stringify(result));
    return;
  }
  const latency = sender.name === 'http' ? 'request' : 'Ack';
  console.log(
    `POLKU tenants benchmark: ${machine}; sender ${sender.name}; quota ${fmt(o.quota)}/s per tenant, ${o.durationMs} ms per phase`,
  );
  console.log('');
  console.log(row('figure', 'value'));
  console.log(
    row(
      `quiet alone: accepted/s, ${latency} p50 / p99 ms`,
      `${fmt(alone.acceptedPerSec)}, ${ms(alone.ackLatencyMs.p50)} / ${ms(alone.ackLatencyMs.p99)}`,
    ),
  );
  console.log(
    row(
      `quiet during flood: accepted/s, ${latency} p50 / p99 ms`,
      `${fmt(flooded.acceptedPerSec)}, ${ms(flooded.ackLatencyMs.p50)} / ${ms(flooded.ackLatencyMs.p99)}`,
    ),
  );
  console.log(row('quiet refusals alone / during flood', `${JSON.stringify(alone.errorCodes)} / ${JSON.stringify(flooded.errorCodes)}`));
  console.log(
    row(
      'noisy: sent, accepted, refused by code',
      `${fmt(noisy.eventsSent)}, ${fmt(noisy.eventsAccepted)}, ${JSON.stringify(noisy.errorCodes)}`,
    ),
  );
  console.log(row('gateway peak RSS (quiet alone / overall)', `${r.rssAloneMb.toFixed(1)} / ${r.rssMb.toFixed(1)} MB`));
  console.log('');
}

/** The targets of one sender's run; `labelled` names the sender when several ran. */
function targets(r: SenderRun, labelled: boolean): void {
  const rateRatio = r.flooded.acceptedPerSec / r.alone.acceptedPerSec;
  const p99Ratio = r.flooded.ackLatencyMs.p99 / r.alone.ackLatencyMs.p99;
  const latency = r.sender.name === 'http' ? 'request' : 'Ack';
  console.log(row(labelled ? `target (${r.sender.name})` : 'target', 'actual   result'));
  console.log(row('quiet accepted rate during flood / alone >= 0.9', `${rateRatio.toFixed(3)}    ${pass(rateRatio >= 1 - WITHIN)}`));
  console.log(row(`quiet ${latency} p99 during flood / alone <= 1.1`, `${p99Ratio.toFixed(3)}    ${pass(p99Ratio <= 1 + WITHIN)}`));
}

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
  const total = new RssSampler(gw.child.pid);
  const plan = (tenant: 'quiet' | 'noisy', rate: number, streams: number): SendPlan => ({
    target: gw.target,
    apiKey: keys[tenant],
    source: tenant,
    rate,
    streams,
    batch: 100,
    durationMs: o.durationMs,
    warmupMs: o.warmupMs,
  });
  const machine = `${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`;
  try {
    const runs: SenderRun[] = [];
    for (const sender of o.senders) runs.push(await runSender(sender, plan, gw.child.pid, o));
    const peakRssMb = total.peakMb();
    for (const r of runs) report(r, o, machine, peakRssMb);
    if (o.json) return;
    if (runs.length > 1) console.log(`${row('gateway peak RSS over all senders (VmHWM)', `${peakRssMb.toFixed(1)} MB`)}\n`);
    runs.forEach((r, k) => {
      if (k > 0) console.log('');
      targets(r, runs.length > 1);
    });
  } finally {
    total.stop();
    await stopChild(gw.child, STOP_GRACE_MS);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
