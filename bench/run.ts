/**
 * `npm run bench`: measures the POLKU gateway end to end and against a bare
 * grpc-js server doing only the unavoidable work (decode + Ack), then checks
 * the figures against the project's performance targets.
 *
 * Sequence (each step in its own process, one at a time, because gateway and
 * load generator share the machine's 2 cores):
 *   1. gateway (src/cli/main.ts with bench/bench.config.ts): full-speed load,
 *      then a fixed-rate load for latency; emitted events/s come from its
 *      Prometheus counter, peak RSS from /proc. Then agent ingest: the same full-speed
 *      load as TAPIO sends it (tapio.v1.EventBatch of 100 events in a raw payload), as a ratio
 *      to the native polku batch figure of the same gateway.
 *   2. bench/bare-server.ts: the same full-speed load.
 *   3. a table (and --json) with PASS/MISS per target.
 *
 * See docs/benchmarks.md for what each figure means.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  type Child,
  delay,
  freePort,
  hasExited,
  installChildCleanup,
  REPO_ROOT,
  spawnCommand,
  spawnTsx,
  stopChild,
} from './lib/children.js';
import type { LoadgenMessage, LoadResult } from './lib/load-result.js';
import { readCpuSeconds, RssSampler } from './lib/procfs.js';
import { commitFigures, fmtCommits, fmtLoop, type CommitFigures } from './lib/commit-figures.js';
import { type CounterSum, sumCounter } from './lib/prom.js';

const GATEWAY_ENTRY = 'src/cli/main.ts';
const DEFAULT_GATEWAY_CONFIG = 'bench/bench.config.ts';
const BARE_SERVER = 'bench/bare-server.ts';
const LOADGEN = 'bench/loadgen.ts';
const LOADGEN_GRPCIO = 'bench/loadgen_grpcio.py';
const OTLP_LOADGEN = 'bench/otlp-loadgen.ts';
/** apt's python3 with python3-grpcio (scripts/install-plugin-toolchains.sh python). */
const PYTHON = '/usr/bin/python3';
/** bench/otlp-loadgen.ts's clients (grpcio: bench/otlp_loadgen_grpcio.py, gRPC C-core). */
const OTLP_CLIENTS = ['grpc-js', 'grpcio', 'http2'] as const;
type OtlpClient = (typeof OTLP_CLIENTS)[number];
const FORWARDED_COUNTER = 'polku_events_forwarded_total';
const READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 100;
const STOP_GRACE_MS = 15_000;
const EVENTS_PER_BATCH = 100;

/** Durable mode's target (issue: commit-before-ack throughput on this machine). */
const DURABLE_ACKED_PER_SEC = 80_000;
/** Durable mode's p99 Ack latency at --latency-rate, and its peak RSS over memory mode's (same load, same run). */
const DURABLE_P99_MS = 10;
const DURABLE_RSS_OVER_MEMORY = 1.5;

const TARGETS = {
  endToEndPerSec: 150_000,
  ratio: 0.6,
  /** Agent ingest: tapio batches' accepted events/s over native polku batches', same gateway, same run. */
  agentRatio: 0.7,
  /** OTLP/gRPC ingest (log records accepted/s) against the native figure of the same run. */
  otlpRatio: 0.6,
  p99Ms: 10,
  rssMb: 150,
};

interface RunOptions {
  durationMs: number;
  warmupMs: number;
  streams: number;
  /** Events/s of the fixed-rate run that measures latency. */
  latencyRate: number;
  skipBare: boolean;
  onlyBare: boolean;
  json: boolean;
  /** The gateway's pipeline module. */
  config: string;
  /** Every event a new id (loadgen --unique-ids): needed when the pipeline is durable. */
  uniqueIds: boolean;
  /** node: bench/loadgen.ts (grpc-js); grpcio: bench/loadgen_grpcio.py (gRPC C-core). */
  loadgen: 'node' | 'grpcio';
  /** The pipeline is durable: check durable mode's target (and send unique ids). */
  durable: boolean;
  /** Skip the agent-ingest run (tapio batches). Also skipped for durable and grpcio runs. */
  skipAgents: boolean;
  /** Skip the OTLP/gRPC phase (--skip-otlp); durable runs always skip it. */
  skipOtlp: boolean;
  /**
   * The OTLP load generator's client (--otlp-client): by default the native phase's library
   * (grpc-js with --loadgen node, C-core with --loadgen grpcio); http2 is node:http2 by hand.
   */
  otlpClient: OtlpClient;
  /**
   * With --durable: then run the gateway in memory mode (bench/bench.config.ts) under the same
   * load, for its peak RSS and CPU per event beside durable mode's (--memory-baseline).
   */
  memoryBaseline: boolean;
}

function readOptions(): RunOptions {
  const { values } = parseArgs({
    options: {
      'duration-ms': { type: 'string', default: '10000' },
      'warmup-ms': { type: 'string', default: '2000' },
      streams: { type: 'string', default: '4' },
      'latency-rate': { type: 'string', default: '50000' },
      'skip-bare': { type: 'boolean', default: false },
      'only-bare': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      config: { type: 'string', default: DEFAULT_GATEWAY_CONFIG },
      'unique-ids': { type: 'boolean', default: false },
      loadgen: { type: 'string', default: 'node' },
      durable: { type: 'boolean', default: false },
      'skip-agents': { type: 'boolean', default: false },
      'skip-otlp': { type: 'boolean', default: false },
      'otlp-client': { type: 'string' },
      'memory-baseline': { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values['skip-bare'] && values['only-bare']) throw new Error('--skip-bare and --only-bare exclude each other');
  if (values.loadgen !== 'node' && values.loadgen !== 'grpcio') throw new Error(`--loadgen must be node or grpcio, got ${values.loadgen}`);
  // Both phases use one client library unless told otherwise: grpc-js with the Node load
  // generator, C-core with the Python one (an SDK or Collector sends both kinds of calls alike).
  const otlpClient = values['otlp-client'] ?? (values.loadgen === 'grpcio' ? 'grpcio' : 'grpc-js');
  if (!OTLP_CLIENTS.includes(otlpClient as OtlpClient)) {
    throw new Error(`--otlp-client must be one of ${OTLP_CLIENTS.join(', ')}, got ${otlpClient}`);
  }
  return {
    durationMs: positiveInt('duration-ms', values['duration-ms']),
    warmupMs: positiveInt('warmup-ms', values['warmup-ms']),
    streams: positiveInt('streams', values.streams),
    latencyRate: positiveInt('latency-rate', values['latency-rate']),
    skipBare: values['skip-bare'],
    onlyBare: values['only-bare'],
    json: values.json,
    config: values.config,
    uniqueIds: values['unique-ids'] || values.durable,
    loadgen: values.loadgen,
    durable: values.durable,
    skipAgents: values['skip-agents'] || values.durable || values.loadgen !== 'node',
    skipOtlp: values['skip-otlp'] || values.durable,
    otlpClient: otlpClient as OtlpClient,
    memoryBaseline: values['memory-baseline'] && values.durable,
  };
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return n;
}

const startedAt = performance.now();

function log(msg: string): void {
  const elapsed = ((performance.now() - startedAt) / 1000).toFixed(1).padStart(5);
  process.stderr.write(`[bench ${elapsed}s] ${msg}\n`);
}

// ---------------------------------------------------------------------------
// Load generator

interface WindowHooks {
  onStart?: () => Promise<void>;
  onEnd?: () => Promise<void>;
}

/** Runs bench/loadgen.ts once against `target` and returns its result line. */
async function runLoad(
  target: string,
  opts: RunOptions,
  rate: number,
  hooks: WindowHooks = {},
  extra: readonly string[] = [],
): Promise<LoadResult> {
  const args = [
    '--target',
    target,
    '--streams',
    String(opts.streams),
    '--duration-ms',
    String(opts.durationMs),
    '--warmup-ms',
    String(opts.warmupMs),
    '--rate',
    String(rate),
    '--batch',
    String(EVENTS_PER_BATCH),
    ...(opts.uniqueIds ? ['--unique-ids'] : []),
    ...extra,
  ];
  // The Node generator reports its window over IPC; the Python one as JSON lines on stdout.
  const gen =
    opts.loadgen === 'grpcio'
      ? spawnCommand('loadgen', PYTHON, [LOADGEN_GRPCIO, ...args])
      : spawnTsx('loadgen', LOADGEN, args, { ipc: true });
  const hookRuns: Promise<void>[] = [];
  const hookErrors: unknown[] = [];
  const onPhase = (msg: LoadgenMessage): void => {
    const hook = msg.phase === 'measure-start' ? hooks.onStart : hooks.onEnd;
    // Caught right away (and reported below) so a failing hook cannot be an unhandled rejection.
    if (hook) hookRuns.push(hook().catch((err: unknown) => void hookErrors.push(err)));
  };
  gen.proc.on('message', onPhase);
  let lastLine = '';
  gen.onStdoutLine((line) => {
    if (line.startsWith('{"phase"')) onPhase(JSON.parse(line) as LoadgenMessage);
    else if (line.trim() !== '') lastLine = line;
  });

  const status = await gen.exited;
  await Promise.all(hookRuns);
  // Exit 2 means some streams failed; the result line says which.
  if (status !== 0 && status !== 2) throw new Error(`load generator exited with ${status}:\n${gen.tail()}`);
  const result = JSON.parse(lastLine) as LoadResult;
  if (result.streamErrors.length > 0) {
    throw new Error(`streams to ${target} failed:\n  ${result.streamErrors.join('\n  ')}`);
  }
  if (hookErrors.length > 0) {
    const first = hookErrors[0];
    throw new Error(`sampling the server during the run failed: ${first instanceof Error ? first.message : String(first)}`);
  }
  return result;
}

function describeLoad(opts: RunOptions, rate: number): string {
  const pace = rate === 0 ? 'full speed' : `${rate.toLocaleString('en-US')} events/s`;
  return `${pace}, ${opts.streams} streams, ${opts.durationMs / 1000} s after ${opts.warmupMs / 1000} s warmup`;
}

// ---------------------------------------------------------------------------
// Server-side sampling over the load generator's measured window

interface Sample {
  at: number;
  cpuS: number | undefined;
  forwarded: CounterSum | undefined;
  /** The whole /metrics text, for the durable commit histograms. */
  exposition: string | undefined;
}

interface ServerFigures {
  /** Cores the server used during the window (1.0 = one core fully busy). */
  cpuCores: number | null;
  /** From the forwarded counter; null when there is no metrics endpoint or the counter never appeared. */
  emittedPerSec: number | null;
  /** Durable mode's group commits in the window; null in memory mode or without a metrics endpoint. */
  commits: CommitFigures | null;
}

/** Samples a server's CPU time (and forwarded counter) when the window starts and ends. */
async function fetchExposition(metricsUrl: string): Promise<string> {
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${metricsUrl} answered ${res.status}`);
  return res.text();
}

class ServerWindow {
  private start: Sample | undefined;
  private end: Sample | undefined;

  constructor(
    private readonly pid: number,
    private readonly metricsUrl?: string,
  ) {}

  hooks(): WindowHooks {
    return {
      onStart: async () => void (this.start = await this.sample()),
      onEnd: async () => void (this.end = await this.sample()),
    };
  }

  figures(): ServerFigures {
    const { start, end } = this;
    if (!start || !end) return { cpuCores: null, emittedPerSec: null, commits: null };
    const seconds = (end.at - start.at) / 1000;
    const cpuCores = start.cpuS !== undefined && end.cpuS !== undefined ? (end.cpuS - start.cpuS) / seconds : null;
    const emittedPerSec =
      start.forwarded && end.forwarded && end.forwarded.series > 0 ? (end.forwarded.value - start.forwarded.value) / seconds : null;
    const commits = start.exposition && end.exposition ? commitFigures(start.exposition, end.exposition, seconds) : null;
    return { cpuCores, emittedPerSec, commits };
  }

  private async sample(): Promise<Sample> {
    const at = performance.now();
    const cpuS = readCpuSeconds(this.pid);
    const exposition = this.metricsUrl ? await fetchExposition(this.metricsUrl) : undefined;
    const forwarded = exposition === undefined ? undefined : sumCounter(exposition, FORWARDED_COUNTER);
    return { at, cpuS, forwarded, exposition };
  }
}

// ---------------------------------------------------------------------------
// Servers under test

interface RunningServer {
  child: Child;
  grpcAddr: string;
  metricsUrl?: string;
  /** The gateway's OTLP/gRPC port (POLKU_OTLP_GRPC_ADDR). */
  otlpAddr?: string;
}

async function startGateway(config: string, env: Record<string, string> = {}): Promise<RunningServer> {
  for (const file of [GATEWAY_ENTRY, config]) {
    if (!existsSync(join(REPO_ROOT, file))) {
      throw new Error(`${file} does not exist yet: the gateway cannot be benchmarked (use --only-bare)`);
    }
  }
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const metricsAddr = `127.0.0.1:${await freePort()}`;
  const otlpAddr = `127.0.0.1:${await freePort()}`;
  const child = spawnTsx('gateway', GATEWAY_ENTRY, ['serve', '--config', config], {
    env: {
      POLKU_GRPC_ADDR: grpcAddr,
      POLKU_METRICS_ADDR: metricsAddr,
      POLKU_OTLP_GRPC_ADDR: otlpAddr,
      POLKU_OTLP_HTTP_ADDR: 'off',
      POLKU_HTTP_ADDR: 'off',
      POLKU_LOG_LEVEL: 'warn',
      ...env,
    },
    // Node refuses --cpu-prof in NODE_OPTIONS; this is how a profile of the gateway under load is taken.
    nodeArgs: process.env['BENCH_GATEWAY_NODE_ARGS']?.split(' ').filter(Boolean) ?? [],
  });
  await waitForReadyz(child, `http://${metricsAddr}/readyz`);
  return { child, grpcAddr, metricsUrl: `http://${metricsAddr}/metrics`, otlpAddr };
}

async function waitForReadyz(child: Child, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      throw new Error(`the gateway exited (${await child.exited}) before it was ready. Its output:\n${child.tail()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await delay(READY_POLL_MS);
  }
  throw new Error(
    `the gateway was not ready after ${READY_TIMEOUT_MS / 1000} s: GET ${url} last gave ${last}. Its output:\n${child.tail()}`,
  );
}

async function startBareServer(): Promise<RunningServer> {
  const child = spawnTsx('bare-server', BARE_SERVER, ['--addr', '127.0.0.1:0']);
  const port = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bare server not READY in 30 s:\n${child.tail()}`)), 30_000);
    child.onStdoutLine((line) => {
      const match = /^READY (\d+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void child.exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`bare server exited (${status}) before READY:\n${child.tail()}`));
    });
  });
  return { child, grpcAddr: `127.0.0.1:${port}` };
}

/** Stops a server with SIGTERM; a server that needs SIGKILL or exits non-zero is reported, not fatal. */
async function stopServer(server: RunningServer): Promise<void> {
  const { child } = server;
  if (hasExited(child)) {
    log(`warning: ${child.name} had already exited (${await child.exited})`);
    return;
  }
  if (!(await stopChild(child, STOP_GRACE_MS))) {
    log(`warning: ${child.name} did not exit within ${STOP_GRACE_MS / 1000} s of SIGTERM and was killed`);
    return;
  }
  const status = await child.exited;
  if (status !== 0) log(`warning: ${child.name} exited with ${status} after SIGTERM:\n${child.tail()}`);
}

/** Adds the server's last output to an error when the server died during the run. */
function withServerOutput(err: unknown, server: RunningServer): Error {
  const error = err instanceof Error ? err : new Error(String(err));
  if (hasExited(server.child)) error.message += `\n${server.child.name} exited; its output:\n${server.child.tail()}`;
  return error;
}

// ---------------------------------------------------------------------------
// The two benchmarks

interface BareFigures {
  fullSpeed: LoadResult;
  serverCpuCores: number | null;
  peakRssMb: number;
}

interface GatewayFigures extends BareFigures {
  emittedPerSec: number | null;
  /** The fixed-rate run (--latency-rate). */
  atRate: LoadResult;
  /** Durable mode's group commits at full speed and in the fixed-rate run (null in memory mode). */
  commits: CommitFigures | null;
  atRateCommits: CommitFigures | null;
  /** Full speed with TAPIO's batches (loadgen --tapio); undefined when skipped. */
  tapio?: LoadResult | undefined;
  /** Cores the gateway used during the tapio window. */
  tapioCpuCores?: number | null;
  /** OTLP/gRPC Export calls of 100 log records at full speed, to the same gateway (not in durable runs). */
  otlp: OtlpLoadResult | null;
  /** Cores the gateway used during the OTLP window. */
  otlpCpuCores: number | null;
}

/** bench/otlp-loadgen.ts's result line. */
interface OtlpLoadResult {
  acceptedPerSec: number;
  accepted: number;
  rejected: number;
  calls: number;
  refusedCalls: number;
  errors: Record<string, number>;
  requestBytes: number;
  latencyMs: { p50: number; p99: number; max: number };
  loadgenCpuCores: number;
}

/** Runs bench/otlp-loadgen.ts against the gateway's OTLP/gRPC port, as many connections as native streams. */
async function runOtlpLoad(target: string, opts: RunOptions, hooks: WindowHooks = {}): Promise<OtlpLoadResult> {
  const args = [
    '--target',
    target,
    '--streams',
    String(opts.streams),
    '--duration-ms',
    String(opts.durationMs),
    '--warmup-ms',
    String(opts.warmupMs),
    '--batch',
    String(EVENTS_PER_BATCH),
    '--client',
    opts.otlpClient,
  ];
  const gen = spawnTsx('otlp-loadgen', OTLP_LOADGEN, args);
  const hookRuns: Promise<void>[] = [];
  let lastLine = '';
  gen.onStdoutLine((line) => {
    if (line.startsWith('{"phase"')) {
      const hook = (JSON.parse(line) as LoadgenMessage).phase === 'measure-start' ? hooks.onStart : hooks.onEnd;
      if (hook) hookRuns.push(hook());
    } else if (line.trim() !== '') lastLine = line;
  });
  const status = await gen.exited;
  await Promise.all(hookRuns);
  if (status !== 0) throw new Error(`OTLP load generator exited with ${status}:\n${gen.tail()}`);
  return JSON.parse(lastLine) as OtlpLoadResult;
}

async function benchGateway(opts: RunOptions): Promise<GatewayFigures> {
  log('starting the gateway');
  // A durable pipeline's log goes in a directory of its own, removed afterwards (a 10 s run writes
  // about a gigabyte). bench/bench-durable.config.ts reads it from POLKU_BENCH_DATA_DIR.
  const dataDir = opts.durable ? mkdtempSync(join(tmpdir(), 'polku-bench-durable-')) : undefined;
  const gw = await startGateway(opts.config, dataDir ? { POLKU_BENCH_DATA_DIR: dataDir } : {}).catch((err: unknown) => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  const rss = new RssSampler(gw.child.pid);
  try {
    log(`gateway: ${describeLoad(opts, 0)}`);
    const window = new ServerWindow(gw.child.pid, gw.metricsUrl);
    const fullSpeed = await runLoad(gw.grpcAddr, opts, 0, window.hooks());
    const { cpuCores, emittedPerSec, commits } = window.figures();
    if (emittedPerSec === null) log(`warning: the gateway exports no ${FORWARDED_COUNTER}; emitted events/s unknown`);

    log(`gateway: ${describeLoad(opts, opts.latencyRate)}`);
    const rateWindow = new ServerWindow(gw.child.pid, gw.metricsUrl);
    const atRate = await runLoad(gw.grpcAddr, opts, opts.latencyRate, rateWindow.hooks());
    const atRateCommits = rateWindow.figures().commits;

    let tapio: LoadResult | undefined;
    let tapioCpuCores: number | null = null;
    if (!opts.skipAgents) {
      log(`gateway, tapio batches: ${describeLoad(opts, 0)}`);
      const tapioWindow = new ServerWindow(gw.child.pid);
      tapio = await runLoad(gw.grpcAddr, opts, 0, tapioWindow.hooks(), ['--tapio']);
      tapioCpuCores = tapioWindow.figures().cpuCores;
    }
    let otlp: OtlpLoadResult | null = null;
    let otlpCpuCores: number | null = null;
    if (!opts.skipOtlp && gw.otlpAddr) {
      log(
        `gateway, OTLP/gRPC: full speed, ${opts.streams} connections (${opts.otlpClient} client), batches of ${EVENTS_PER_BATCH} log records`,
      );
      const otlpWindow = new ServerWindow(gw.child.pid);
      otlp = await runOtlpLoad(gw.otlpAddr, opts, otlpWindow.hooks());
      otlpCpuCores = otlpWindow.figures().cpuCores;
    }
    return {
      fullSpeed,
      atRate,
      tapio,
      tapioCpuCores,
      otlp,
      otlpCpuCores,
      emittedPerSec,
      commits,
      atRateCommits,
      serverCpuCores: cpuCores,
      peakRssMb: rss.peakMb(),
    };
  } catch (err) {
    throw withServerOutput(err, gw);
  } finally {
    rss.stop();
    await stopServer(gw);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

async function benchBare(opts: RunOptions): Promise<BareFigures> {
  log('starting the bare server');
  const bare = await startBareServer();
  const rss = new RssSampler(bare.child.pid);
  try {
    log(`bare server: ${describeLoad(opts, 0)}`);
    const window = new ServerWindow(bare.child.pid);
    const fullSpeed = await runLoad(bare.grpcAddr, opts, 0, window.hooks());
    log('bare server: done, stopping it');
    return { fullSpeed, serverCpuCores: window.figures().cpuCores, peakRssMb: rss.peakMb() };
  } catch (err) {
    throw withServerOutput(err, bare);
  } finally {
    rss.stop();
    await stopServer(bare);
  }
}

// ---------------------------------------------------------------------------
// Targets and report

type Verdict = 'PASS' | 'MISS' | 'n/a';

interface TargetCheck {
  name: string;
  goal: string;
  actual: string;
  verdict: Verdict;
}

function checkTargets(opts: RunOptions, gw?: GatewayFigures, bare?: BareFigures, memory?: GatewayFigures): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const na = (name: string, goal: string): TargetCheck => ({ name, goal, actual: 'not run', verdict: 'n/a' });

  if (opts.durable) {
    // Every Ack waits for an fdatasync; what counts is how many events are acknowledged durably.
    const goal = `>= ${fmtInt(DURABLE_ACKED_PER_SEC)}/s`;
    const name = 'durable: acked events/s (commit before Ack)';
    if (!gw) return [na(name, goal)];
    const acked = gw.fullSpeed.acceptedPerSec;
    checks.push({ name, goal, actual: `${fmtInt(acked)}/s`, verdict: acked >= DURABLE_ACKED_PER_SEC ? 'PASS' : 'MISS' });
    const { p99 } = gw.atRate.ackLatencyMs;
    const sent = sentPerSec(gw.atRate);
    const reachedRate = sent >= 0.95 * opts.latencyRate;
    checks.push({
      name: `durable: p99 Ack latency at ${fmtInt(opts.latencyRate)}/s`,
      goal: `<= ${DURABLE_P99_MS} ms`,
      actual: reachedRate ? `${p99.toFixed(2)} ms` : `${p99.toFixed(2)} ms, but only ${fmtInt(sent)}/s sent`,
      verdict: reachedRate && p99 <= DURABLE_P99_MS ? 'PASS' : 'MISS',
    });
    const rssName = 'durable: peak RSS / memory mode peak RSS (same load)';
    const rssGoal = `<= ${DURABLE_RSS_OVER_MEMORY}`;
    if (!memory) checks.push(na(rssName, rssGoal));
    else {
      const ratio = gw.peakRssMb / memory.peakRssMb;
      checks.push({ name: rssName, goal: rssGoal, actual: ratio.toFixed(2), verdict: ratio <= DURABLE_RSS_OVER_MEMORY ? 'PASS' : 'MISS' });
    }
    return checks;
  }

  const e2eGoal = `>= ${fmtInt(TARGETS.endToEndPerSec)}/s`;
  if (!gw) checks.push(na('end-to-end events/s (emitted)', e2eGoal));
  else {
    const emitted = gw.emittedPerSec;
    checks.push({
      name: 'end-to-end events/s (emitted)',
      goal: e2eGoal,
      actual: emitted === null ? `no ${FORWARDED_COUNTER}` : `${fmtInt(emitted)}/s`,
      verdict: emitted !== null && emitted >= TARGETS.endToEndPerSec ? 'PASS' : 'MISS',
    });
  }

  const ratioGoal = `>= ${TARGETS.ratio}`;
  if (!gw || !bare) checks.push(na('gateway / bare accepted events/s', ratioGoal));
  else {
    const ratio = gw.fullSpeed.acceptedPerSec / bare.fullSpeed.acceptedPerSec;
    checks.push({
      name: 'gateway / bare accepted events/s',
      goal: ratioGoal,
      actual: ratio.toFixed(2),
      verdict: ratio >= TARGETS.ratio ? 'PASS' : 'MISS',
    });
  }

  const p99Name = `p99 ack latency at ${fmtInt(opts.latencyRate)}/s`;
  const p99Goal = `<= ${TARGETS.p99Ms} ms`;
  if (!gw) checks.push(na(p99Name, p99Goal));
  else {
    const { p99 } = gw.atRate.ackLatencyMs;
    // A latency measured below the asked rate says nothing about that rate. The
    // sent rate is what counts: the generator only falls behind when acks are slow.
    const sent = sentPerSec(gw.atRate);
    const reachedRate = sent >= 0.95 * opts.latencyRate;
    checks.push({
      name: p99Name,
      goal: p99Goal,
      actual: reachedRate ? `${p99.toFixed(2)} ms` : `${p99.toFixed(2)} ms, but only ${fmtInt(sent)}/s sent`,
      verdict: reachedRate && p99 <= TARGETS.p99Ms ? 'PASS' : 'MISS',
    });
  }

  const agentName = 'agent ingest: tapio / native polku batch accepted events/s';
  const agentGoal = `>= ${TARGETS.agentRatio}`;
  if (!gw?.tapio) checks.push(na(agentName, agentGoal));
  else {
    const ratio = gw.tapio.acceptedPerSec / gw.fullSpeed.acceptedPerSec;
    checks.push({ name: agentName, goal: agentGoal, actual: ratio.toFixed(2), verdict: ratio >= TARGETS.agentRatio ? 'PASS' : 'MISS' });
  }

  const otlpName = 'OTLP/gRPC ingest / native accepted events/s';
  const otlpGoal = `>= ${TARGETS.otlpRatio}`;
  if (!gw?.otlp) checks.push(na(otlpName, otlpGoal));
  else {
    const ratio = gw.otlp.acceptedPerSec / gw.fullSpeed.acceptedPerSec;
    checks.push({ name: otlpName, goal: otlpGoal, actual: ratio.toFixed(2), verdict: ratio >= TARGETS.otlpRatio ? 'PASS' : 'MISS' });
  }

  const rssGoal = `<= ${TARGETS.rssMb} MB`;
  if (!gw) checks.push(na('gateway peak RSS', rssGoal));
  else {
    checks.push({
      name: 'gateway peak RSS',
      goal: rssGoal,
      actual: `${gw.peakRssMb.toFixed(1)} MB`,
      verdict: gw.peakRssMb <= TARGETS.rssMb ? 'PASS' : 'MISS',
    });
  }
  return checks;
}

function sentPerSec(r: LoadResult): number {
  return r.eventsSent / r.durationS;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtLatency(r: LoadResult): string {
  return fmtLatencyMs(r.ackLatencyMs);
}

function fmtLatencyMs(l: { p50: number; p99: number; max: number }): string {
  return `${l.p50.toFixed(2)} / ${l.p99.toFixed(2)} / ${l.max.toFixed(2)} ms`;
}

function fmtCores(cores: number | null): string {
  return cores === null ? 'n/a' : cores.toFixed(2);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function ackErrorNote(label: string, r: LoadResult): string[] {
  if (r.ackErrors === 0 && r.unackedBatches === 0) return [];
  const codes = Object.entries(r.errorCodes)
    .map(([code, n]) => `${code}=${n}`)
    .join(', ');
  return [`note: ${label}: ${r.ackErrors} refused events (${codes || 'no code'}), ${r.unackedBatches} batches never acked`];
}

function report(opts: RunOptions, gw?: GatewayFigures, bare?: BareFigures, memory?: GatewayFigures): string {
  const sample = gw?.fullSpeed ?? bare?.fullSpeed;
  const header =
    `POLKU benchmark: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}\n` +
    `load: ${opts.streams} streams, batches of ${EVENTS_PER_BATCH} events (~${sample ? Math.round(sample.batchBytes / EVENTS_PER_BATCH) : '?'} B each), ` +
    `${opts.durationMs / 1000} s measured after ${opts.warmupMs / 1000} s warmup\n` +
    `load generator: ${opts.loadgen === 'grpcio' ? 'bench/loadgen_grpcio.py (gRPC C-core)' : 'bench/loadgen.ts (grpc-js)'}` +
    `${opts.uniqueIds ? ', every event id new' : ''}; pipeline: ${opts.config}`;

  const na = 'not run';
  const rows: string[][] = [['figure', 'value']];
  rows.push(['gateway accepted events/s (full speed)', gw ? fmtInt(gw.fullSpeed.acceptedPerSec) : na]);
  rows.push(['gateway emitted events/s (full speed)', gw ? (gw.emittedPerSec === null ? 'unknown' : fmtInt(gw.emittedPerSec)) : na]);
  rows.push(['gateway ack latency p50 / p99 / max (full speed)', gw ? fmtLatency(gw.fullSpeed) : na]);
  rows.push([`gateway ack latency p50 / p99 / max (at ${fmtInt(opts.latencyRate)}/s)`, gw ? fmtLatency(gw.atRate) : na]);
  rows.push([
    `gateway sent / accepted events/s (at ${fmtInt(opts.latencyRate)}/s)`,
    gw ? `${fmtInt(sentPerSec(gw.atRate))} / ${fmtInt(gw.atRate.acceptedPerSec)}` : na,
  ]);
  const tapio = gw?.tapio;
  rows.push([
    'gateway accepted events/s, tapio batches (full speed)',
    tapio ? `${fmtInt(tapio.acceptedPerSec)} (~${Math.round(tapio.batchBytes / EVENTS_PER_BATCH)} B each)` : na,
  ]);
  rows.push([
    'ratio tapio / native polku batch (accepted)',
    tapio && gw ? (tapio.acceptedPerSec / gw.fullSpeed.acceptedPerSec).toFixed(2) : na,
  ]);
  // Per gateway CPU-second: on a shared machine the gateway may not get its cores, and this
  // ratio says what each format costs the gateway whatever it got.
  const perCpu = (r: LoadResult, cores: number | null | undefined) => (cores ? r.acceptedPerSec / cores : null);
  const nativePerCpu = gw ? perCpu(gw.fullSpeed, gw.serverCpuCores) : null;
  const tapioPerCpu = tapio && gw ? perCpu(tapio, gw.tapioCpuCores) : null;
  rows.push([
    'accepted events per gateway CPU-second, native / tapio',
    nativePerCpu !== null && tapioPerCpu !== null
      ? `${fmtInt(nativePerCpu)} / ${fmtInt(tapioPerCpu)} (ratio ${(tapioPerCpu / nativePerCpu).toFixed(2)})`
      : na,
  ]);
  rows.push([
    'gateway CPU µs per native event / per TAPIO event',
    nativePerCpu !== null && tapioPerCpu !== null ? `${(1e6 / nativePerCpu).toFixed(2)} / ${(1e6 / tapioPerCpu).toFixed(2)}` : na,
  ]);
  rows.push([
    `gateway OTLP/gRPC accepted log records/s (full speed, ${opts.otlpClient} client)`,
    gw?.otlp ? `${fmtInt(gw.otlp.acceptedPerSec)} (~${Math.round(gw.otlp.requestBytes / EVENTS_PER_BATCH)} B each)` : na,
  ]);
  rows.push(['gateway OTLP/gRPC Export latency p50 / p99 / max', gw?.otlp ? fmtLatencyMs(gw.otlp.latencyMs) : na]);
  rows.push(['ratio OTLP/gRPC / native (accepted)', gw?.otlp ? (gw.otlp.acceptedPerSec / gw.fullSpeed.acceptedPerSec).toFixed(2) : na]);
  // CPU per event survives a loaded machine better than events/s: what each path costs the gateway.
  const usPer = (perSec: number, cores: number | null | undefined) => (cores && perSec > 0 ? (cores * 1e6) / perSec : null);
  const nativeUs = gw ? usPer(gw.fullSpeed.acceptedPerSec, gw.serverCpuCores) : null;
  const otlpUs = gw?.otlp ? usPer(gw.otlp.acceptedPerSec, gw.otlpCpuCores) : null;
  rows.push([
    'gateway CPU µs per native event / per OTLP log record',
    nativeUs !== null && otlpUs !== null ? `${nativeUs.toFixed(2)} / ${otlpUs.toFixed(2)} (ratio ${(nativeUs / otlpUs).toFixed(2)})` : na,
  ]);
  rows.push([
    'gateway / OTLP load generator CPU cores (OTLP phase)',
    gw?.otlp ? `${fmtCores(gw.otlpCpuCores ?? null)} / ${fmtCores(gw.otlp.loadgenCpuCores)}` : na,
  ]);
  rows.push(['gateway peak RSS', gw ? `${gw.peakRssMb.toFixed(1)} MB` : na]);
  rows.push(['gateway CPU cores (full speed)', gw ? fmtCores(gw.serverCpuCores) : na]);
  const fullSpeedUs = (g: GatewayFigures | undefined) => (g ? usPer(g.fullSpeed.acceptedPerSec, g.serverCpuCores) : null);
  const gwUs = fullSpeedUs(gw);
  rows.push(['gateway CPU µs per accepted event (full speed)', gwUs === null ? na : gwUs.toFixed(2)]);
  if (opts.durable) {
    rows.push(['durable: per group commit, full speed', gw ? fmtCommits(gw.commits) : na]);
    rows.push([`durable: per group commit, at ${fmtInt(opts.latencyRate)}/s`, gw ? fmtCommits(gw.atRateCommits) : na]);
    rows.push([`durable: event loop and GC, at ${fmtInt(opts.latencyRate)}/s`, gw ? fmtLoop(gw.atRateCommits) : na]);
  }
  if (opts.memoryBaseline) {
    const memUs = fullSpeedUs(memory);
    rows.push(['memory mode, same load: accepted events/s (full speed)', memory ? fmtInt(memory.fullSpeed.acceptedPerSec) : na]);
    rows.push([
      'memory mode, same load: CPU µs per accepted event (ratio durable / memory)',
      memUs !== null && gwUs !== null ? `${memUs.toFixed(2)} (${(gwUs / memUs).toFixed(2)})` : na,
    ]);
    rows.push([
      'memory mode, same load: peak RSS (ratio durable / memory)',
      memory && gw ? `${memory.peakRssMb.toFixed(1)} MB (${(gw.peakRssMb / memory.peakRssMb).toFixed(2)})` : na,
    ]);
  }
  rows.push(['bare server accepted events/s', bare ? fmtInt(bare.fullSpeed.acceptedPerSec) : na]);
  rows.push(['bare server ack latency p50 / p99 / max', bare ? fmtLatency(bare.fullSpeed) : na]);
  rows.push(['bare server peak RSS', bare ? `${bare.peakRssMb.toFixed(1)} MB` : na]);
  rows.push(['bare server CPU cores', bare ? fmtCores(bare.serverCpuCores) : na]);
  rows.push(['load generator CPU cores (full speed)', fmtCores(sample?.loadgenCpuCores ?? null)]);
  rows.push([
    'ratio gateway / bare (accepted)',
    gw && bare ? (gw.fullSpeed.acceptedPerSec / bare.fullSpeed.acceptedPerSec).toFixed(2) : na,
  ]);

  const checks = checkTargets(opts, gw, bare, memory);
  const targetRows = [['target', 'goal', 'actual', 'result'], ...checks.map((c) => [c.name, c.goal, c.actual, c.verdict])];

  const notes = [
    ...(gw ? ackErrorNote('gateway full speed', gw.fullSpeed) : []),
    ...(gw ? ackErrorNote(`gateway at ${opts.latencyRate}/s`, gw.atRate) : []),
    ...(gw?.tapio ? ackErrorNote('gateway tapio batches', gw.tapio) : []),
    ...(bare ? ackErrorNote('bare server', bare.fullSpeed) : []),
    ...(gw?.otlp && (gw.otlp.refusedCalls > 0 || gw.otlp.rejected > 0)
      ? [`note: OTLP/gRPC: ${gw.otlp.refusedCalls} refused calls (${JSON.stringify(gw.otlp.errors)}), ${gw.otlp.rejected} rejected records`]
      : []),
  ];
  return [header, '', table(rows), '', table(targetRows), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

async function main(): Promise<void> {
  installChildCleanup();
  const opts = readOptions();
  const gw = opts.onlyBare ? undefined : await benchGateway(opts);
  const bare = opts.skipBare ? undefined : await benchBare(opts);
  // Memory mode under the same load (grpcio or not, unique ids), right after: its peak RSS and CPU
  // per event are the baseline durable mode's are compared with.
  if (opts.memoryBaseline)
    log('the same gateway in memory mode (bench/bench.config.ts), same load: the baseline for RSS and CPU per event');
  const memory = opts.memoryBaseline
    ? await benchGateway({
        ...opts,
        durable: false,
        memoryBaseline: false,
        config: DEFAULT_GATEWAY_CONFIG,
        skipAgents: true,
        skipOtlp: true,
      })
    : undefined;

  log('done');
  process.stdout.write(`\n${report(opts, gw, bare, memory)}\n`);
  // OtlpEmitter throughput (target >= 100k events/s): the default pipeline's run only.
  if (!opts.onlyBare && !opts.durable && opts.config === DEFAULT_GATEWAY_CONFIG) {
    log('OtlpEmitter: bench/otlp-emitter.ts (npm run bench:otlp), 3 s per case');
    const otlp = spawnSync(process.execPath, ['--import', 'tsx', 'bench/otlp-emitter.ts', '--duration-ms', '3000'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.stdout.write(`\n${otlp.stdout}`);
  }
  if (opts.json) {
    const results = {
      machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, node: process.version },
      options: opts,
      gateway: gw ?? null,
      bare: bare ?? null,
      memoryBaseline: memory ?? null,
      targets: checkTargets(opts, gw, bare, memory),
    };
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  }
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  // The 'exit' handler kills any child still running.
  process.exit(1);
});
