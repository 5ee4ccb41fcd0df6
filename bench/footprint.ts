/**
 * `npm run bench:footprint`: what an idle `polku serve` costs in memory, and where it goes.
 *
 * 1. Idle RSS of the compiled gateway (bin/polku.js → dist/, as the image runs it) in several
 *    configurations, each in a fresh process: VmRSS once start-up has settled (sampled for
 *    --settle-ms after the "gateway listening" line; the last sample) and VmHWM (the kernel's
 *    peak). The configurations differ by one thing each, so their differences are what a receiver
 *    or discovery costs:
 *      - everything off:      no HTTP front door, no OTLP ports, no discovery
 *      - + HTTP front door:   POLKU_HTTP_ADDR on
 *      - + OTLP:              POLKU_OTLP_GRPC_ADDR and POLKU_OTLP_HTTP_ADDR on
 *      - defaults:            HTTP and OTLP on, as `polku serve` starts with no settings
 *      - defaults + discovery: POLKU_DISCOVERY=kubernetes against a stand-in API server
 *        (test/discovery/fake-apiserver.ts, real list/watch over HTTP)
 *    Ports are 127.0.0.1:0 rather than 8080/4317/4318 so a run never fights another process for
 *    them; what is loaded and served is the same.
 * 2. Import cost of each dependency and entry point: RSS after `import()` in a fresh node process
 *    minus a fresh process that imports nothing. Not additive: packages share node's own lazily
 *    loaded internals (the CommonJS loader, streams, http), so the first one pays for those.
 *
 * 3. Full speed, in memory (bench/run.ts --skip-agents --skip-otlp, its gateway and the bare
 *    grpc-js server in the same run): the gateway's peak RSS over the bare server's (target
 *    ≤ 1.15×), events/s beside it. Then the chart's case: the same load on a gateway with
 *    discovery on (against the stand-in API server) and the --max-old-space-size the chart
 *    derives from its default memory limit (charts/polku/values.yaml: resources.limits.memory ×
 *    nodeOptions.heapPercent), whose peak must stay under 70 % of that limit. bench/run.ts runs
 *    the gateway from the TypeScript sources through tsx, which the image does not: its figures
 *    are a little above a compiled gateway's, on the safe side for the limit.
 *
 * 4. Full speed, compiled (`--only compiled`): the same comparison as 3 without tsx, which holds
 *    the transformed sources of every module it loaded (the gateway idles at ~112 MB under tsx and
 *    ~72 MB compiled, the bare server at 86 and 56): `node bin/polku.js serve --config
 *    bench/bench.config.dist.mjs` against bench/bare-server.dist.mjs, each alone under
 *    bench/loadgen.ts (4 streams, batches of 100, full speed), alternating for --rounds rounds.
 *    VmHWM is the peak. This is the gateway as the image runs it.
 *
 * Options: --settle-ms N (default 30000), --duration-ms N (full-speed window, default 3000),
 * --rounds N (compiled, default 2), --only idle|imports|load|compiled, --json.
 * Needs a build (`npm run build`); `npm run bench:footprint` runs one first.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeApiServer } from '../test/discovery/fake-apiserver.js';
import { type Child, delay, freePort, installChildCleanup, REPO_ROOT, spawnCommand, spawnTsx, stopChild } from './lib/children.js';
import { readCpuSeconds, readStatusKb } from './lib/procfs.js';

const { values } = parseArgs({
  options: {
    'settle-ms': { type: 'string', default: '30000' },
    only: { type: 'string' },
    'duration-ms': { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const SETTLE_MS = Number(values['settle-ms']);
const READY_TIMEOUT_MS = 30_000;
const BIN = join(REPO_ROOT, 'bin', 'polku.js');

/** The targets (docs/benchmarks.md). */
const TARGETS = { idleMb: 65, idleDiscoveryMb: 85, peakOverBare: 1.15, shareOfChartLimit: 0.7 };

const OFF = { POLKU_HTTP_ADDR: 'off', POLKU_OTLP_GRPC_ADDR: 'off', POLKU_OTLP_HTTP_ADDR: 'off' };
const HTTP_ON = { POLKU_HTTP_ADDR: '127.0.0.1:0' };
const OTLP_ON = { POLKU_OTLP_GRPC_ADDR: '127.0.0.1:0', POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0' };

interface IdleFigure {
  name: string;
  /** VmRSS 3 s after listening: start-up's young generation is still committed. */
  rss3sMb: number;
  /** VmRSS at the end of the settle window (after V8's memory reducer has run, ~8 s in). */
  rssMb: number;
  hwmMb: number;
}

/** When the early sample is taken: what earlier runs of this bench reported as "settled". */
const EARLY_SAMPLE_MS = 3000;

function log(line: string): void {
  process.stderr.write(`[footprint] ${line}\n`);
}

/** Starts the compiled gateway with `env`, waits for it to listen and settle, reads its memory, stops it. */
async function idle(name: string, env: Record<string, string>): Promise<IdleFigure> {
  const child: Child = spawnCommand(name, process.execPath, [BIN, 'serve'], {
    env: { POLKU_GRPC_ADDR: '127.0.0.1:0', POLKU_METRICS_ADDR: '127.0.0.1:0', POLKU_LOG_LEVEL: 'info', ...env },
  });
  try {
    const listening = new Promise<void>((resolve) => child.onStderrLine((l) => l.includes('"gateway listening"') && resolve()));
    const outcome = await Promise.race([listening.then(() => 'ok' as const), child.exited, delay(READY_TIMEOUT_MS).then(() => 'timeout')]);
    if (outcome !== 'ok') throw new Error(`${name}: the gateway did not start (${outcome}). Its output:\n${child.tail()}`);
    // Settled: the last of the samples over the settle window (timers, the first metrics scrape
    // of nothing, discovery's first list all happen in it). V8's memory reducer gives start-up's
    // young generation back (16 MB → 1 MB) once it sees the allocation rate low: about 10 s
    // after start in most runs, at the latest by its 30 s watchdog. The default window (30 s)
    // ends after it; the 3 s sample is what earlier runs reported. (One full GC forced after
    // start-up does not help: it restarts the reducer's wait, 18–26 s instead of 10.)
    let rssKb = 0;
    let rss3sKb = 0;
    for (let waited = 250; waited <= Math.max(SETTLE_MS, EARLY_SAMPLE_MS); waited += 250) {
      await delay(250);
      rssKb = readStatusKb(child.pid, 'VmRSS') ?? rssKb;
      if (waited === EARLY_SAMPLE_MS) rss3sKb = rssKb;
    }
    const hwmKb = readStatusKb(child.pid, 'VmHWM') ?? rssKb;
    return { name, rss3sMb: rss3sKb / 1024, rssMb: rssKb / 1024, hwmMb: hwmKb / 1024 };
  } finally {
    await stopChild(child, 5_000);
  }
}

/** RSS in MB of a fresh node process after importing `specifier` (nothing when empty). */
function importRss(specifier: string): number {
  const script = [
    "import { readFileSync } from 'node:fs';",
    specifier ? `await import(${JSON.stringify(specifier)});` : '',
    'await new Promise((r) => setTimeout(r, 200));',
    "const kb = Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);",
    'process.stdout.write(String(kb));',
  ].join('\n');
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`import ${specifier} failed: ${out.stderr}`);
  return Number(out.stdout) / 1024;
}

/** What is imported, in which code path: the figure is what that path costs over plain node. */
const IMPORTS: ReadonlyArray<{ specifier: string; when: string }> = [
  { specifier: '@grpc/grpc-js', when: 'always (the gRPC port)' },
  {
    specifier: 'grpc-health-check',
    when: 'no longer (it built its codecs with @grpc/proto-loader + protobufjs; src/server/health-service.ts serves grpc.health.v1)',
  },
  { specifier: '@bufbuild/protobuf/wire', when: 'always (the generated codecs)' },
  {
    specifier: '@bufbuild/protobuf',
    when: 'no longer at start (server reflection reads descriptors from the wire: src/server/descriptor-wire.ts)',
  },
  { specifier: 'prom-client', when: 'always (/metrics)' },
  { specifier: 'pino', when: 'always (logs)' },
  { specifier: 'pg', when: 'a PostgresEmitter is built, or `polku sinks init`' },
  { specifier: 'ioredis', when: 'a RedisStreamEmitter is built' },
  { specifier: '@nats-io/transport-node', when: 'a NatsEmitter is built' },
  { specifier: '@aws-sdk/client-s3', when: 'an S3Emitter is built' },
  {
    specifier: '@kubernetes/client-node',
    when: 'only for a kubeconfig whose user needs exec/auth-provider, a proxy-url, or KUBECONFIG listing several files',
  },
  { specifier: 'js-yaml', when: 'discovery or the enricher outside a cluster (reading the kubeconfig)' },
  { specifier: './dist/discovery/kubernetes-discovery.js', when: 'POLKU_DISCOVERY=kubernetes (its own list/watch client)' },
  { specifier: './dist/middleware/kubernetes/pod-cache.js', when: 'POLKU_K8S_ENRICH=true (the same client)' },
  { specifier: './dist/receive/otlp/otlp-receiver.js', when: 'OTLP ports on' },
  { specifier: './dist/receive/http/http-receiver.js', when: 'HTTP front door on' },
  { specifier: './dist/index.js', when: "a pipeline module's `import … from 'polku'`" },
  { specifier: './dist/server/index.js', when: 'embedding: polku/server' },
  { specifier: './dist/cli/serve.js', when: '`polku serve`: its module graph, before it starts anything' },
];

interface LoadFigure {
  name: string;
  gatewayPeakMb: number;
  gatewayPerSec: number;
  gatewayCpuCores: number;
  barePeakMb: number | null;
  barePerSec: number | null;
}

/** The chart's default memory limit (MiB) and the old-space size it derives from it, read from values.yaml. */
function chartMemory(): { limitMiB: number; maxOldSpaceMiB: number } {
  const values = readFileSync(join(REPO_ROOT, 'charts', 'polku', 'values.yaml'), 'utf8');
  const limit = /^resources:\n(?:[ #].*\n)*? {2}limits:\n(?: {4}.*\n)*? {4}memory: (\d+)Mi$/m.exec(values);
  const percent = /^ {2}heapPercent: (\d+)$/m.exec(values);
  if (!limit || !percent) throw new Error('charts/polku/values.yaml: resources.limits.memory (in Mi) or nodeOptions.heapPercent not found');
  const limitMiB = Number(limit[1]);
  return { limitMiB, maxOldSpaceMiB: Math.floor((limitMiB * Number(percent[1])) / 100) };
}

/**
 * One bench/run.ts run (native polku batches at full speed), its --json read back. Asynchronous:
 * the stand-in API server the gateway's discovery talks to lives in this process.
 */
async function load(name: string, env: Record<string, string>, bare: boolean): Promise<LoadFigure> {
  const args = ['--import', 'tsx', 'bench/run.ts', '--json', '--skip-agents', '--skip-otlp'];
  // Not the default config's path: that one also runs the OtlpEmitter bench afterwards.
  args.push('--config', './bench/bench.config.ts', '--duration-ms', values['duration-ms'], '--warmup-ms', '1000');
  if (!bare) args.push('--skip-bare');
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${name}: bench/run.ts failed (${code})`);
  const json = JSON.parse(stdout.slice(stdout.lastIndexOf('\n{\n'))) as {
    gateway: { peakRssMb: number; serverCpuCores: number; fullSpeed: { acceptedPerSec: number } };
    bare: { peakRssMb: number; fullSpeed: { acceptedPerSec: number } } | null;
  };
  return {
    name,
    gatewayPeakMb: json.gateway.peakRssMb,
    gatewayPerSec: json.gateway.fullSpeed.acceptedPerSec,
    gatewayCpuCores: json.gateway.serverCpuCores,
    barePeakMb: json.bare?.peakRssMb ?? null,
    barePerSec: json.bare?.fullSpeed.acceptedPerSec ?? null,
  };
}

interface CompiledFigure {
  idleMb: number;
  peakMb: number;
  perSec: number;
  cpuUsPerEvent: number;
}

/** One compiled server (the gateway or the bare one) alone under bench/loadgen.ts at full speed. */
async function compiled(which: 'gateway' | 'bare'): Promise<CompiledFigure> {
  const port = await freePort();
  const child =
    which === 'gateway'
      ? spawnCommand('gateway', process.execPath, [BIN, 'serve', '--config', 'bench/bench.config.dist.mjs'], {
          env: { ...OFF, POLKU_GRPC_ADDR: `127.0.0.1:${port}`, POLKU_METRICS_ADDR: '127.0.0.1:0', POLKU_LOG_LEVEL: 'info' },
        })
      : spawnCommand('bare', process.execPath, ['bench/bare-server.dist.mjs'], { env: { BARE_ADDR: `127.0.0.1:${port}` } });
  try {
    const ready = new Promise<void>((resolve) => {
      child.onStderrLine((l) => l.includes('"gateway listening"') && resolve());
      child.onStdoutLine((l) => l.startsWith('READY ') && resolve());
    });
    const outcome = await Promise.race([ready.then(() => 'ok' as const), child.exited, delay(READY_TIMEOUT_MS).then(() => 'timeout')]);
    if (outcome !== 'ok') throw new Error(`${which}: did not start (${outcome}). Its output:\n${child.tail()}`);
    await delay(1_000);
    const idleKb = readStatusKb(child.pid, 'VmRSS') ?? 0;
    const cpu0 = readCpuSeconds(child.pid) ?? 0;
    const gen = spawnTsx('loadgen', 'bench/loadgen.ts', [
      ...['--target', `127.0.0.1:${port}`, '--streams', '4', '--rate', '0', '--batch', '100'],
      ...['--duration-ms', values['duration-ms'], '--warmup-ms', '1000'],
    ]);
    let last = '';
    gen.onStdoutLine((line) => {
      if (line.startsWith('{') && !line.startsWith('{"phase"')) last = line;
    });
    const status = await gen.exited;
    if (status !== 0 || last === '') throw new Error(`loadgen against ${which} exited with ${status}:\n${gen.tail()}`);
    const cpu = (readCpuSeconds(child.pid) ?? 0) - cpu0;
    const peakKb = readStatusKb(child.pid, 'VmHWM') ?? 0;
    const load = JSON.parse(last) as { acceptedPerSec: number; eventsAccepted: number; durationS: number };
    const warmupS = 1;
    // CPU over warm-up and window, per event accepted in both (the window's rate over the whole run).
    const events = load.acceptedPerSec * (load.durationS + warmupS);
    return { idleMb: idleKb / 1024, peakMb: peakKb / 1024, perSec: load.acceptedPerSec, cpuUsPerEvent: (cpu / events) * 1e6 };
  } finally {
    await stopChild(child, 5_000);
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('no dist/: run `npm run build` first');
  installChildCleanup();
  const only = values.only;
  const result: Result = {};
  const api = await new FakeApiServer().start();
  const dir = mkdtempSync(join(tmpdir(), 'polku-footprint-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeconfig());
  const DISCOVERY = { POLKU_DISCOVERY: 'kubernetes', KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: '', NODE_NAME: 'node-1' };
  try {
    await measure(only, result, DISCOVERY);
  } finally {
    await api.stop();
  }

  print(result);
}

async function measure(only: string | undefined, result: Result, DISCOVERY: Record<string, string>): Promise<void> {
  if (only === undefined || only === 'idle') {
    const figures: IdleFigure[] = [];
    const configs: Array<[string, Record<string, string>]> = [
      ['everything off', OFF],
      ['+ HTTP front door', { ...OFF, ...HTTP_ON }],
      ['+ OTLP ports', { ...OFF, ...OTLP_ON }],
      ['defaults (HTTP + OTLP on)', { ...HTTP_ON, ...OTLP_ON }],
      ['defaults + discovery', { ...HTTP_ON, ...OTLP_ON, ...DISCOVERY }],
      ['off + discovery', { ...OFF, ...DISCOVERY }],
    ];
    for (const [name, env] of configs) {
      log(`idle: ${name}`);
      figures.push(await idle(name, env));
    }
    result.idle = figures;
  }

  if (only === undefined || only === 'imports') {
    log('import costs (fresh process each)');
    const nodeMb = importRss('');
    result.nodeMb = nodeMb;
    result.imports = IMPORTS.map(({ specifier, when }) => ({ specifier, when, mb: importRss(specifier) - nodeMb }));
  }

  if (only === undefined || only === 'load') {
    const chart = chartMemory();
    result.chart = chart;
    log('full speed, in memory: gateway and bare grpc-js server (bench/run.ts)');
    const plain = await load('gateway vs bare server', {}, true);
    log(`full speed under the chart's defaults: discovery on, --max-old-space-size=${chart.maxOldSpaceMiB}`);
    const charted = await load(
      `chart defaults (discovery, --max-old-space-size=${chart.maxOldSpaceMiB})`,
      {
        ...DISCOVERY,
        BENCH_GATEWAY_NODE_ARGS: `--max-old-space-size=${chart.maxOldSpaceMiB}`,
      },
      false,
    );
    result.load = [plain, charted];
  }

  if (only === undefined || only === 'compiled') {
    result.compiled = [];
    for (let round = 1; round <= Number(values.rounds); round++) {
      log(`full speed, compiled, round ${round}: bare server, then gateway`);
      const bare = await compiled('bare');
      const gateway = await compiled('gateway');
      result.compiled.push({ bare, gateway });
    }
  }
}

type Result = {
  idle?: IdleFigure[];
  imports?: Array<{ specifier: string; when: string; mb: number }>;
  nodeMb?: number;
  load?: LoadFigure[];
  chart?: { limitMiB: number; maxOldSpaceMiB: number };
  compiled?: Array<{ bare: CompiledFigure; gateway: CompiledFigure }>;
};

function print(result: Result): void {
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  if (result.idle) {
    const target = (name: string): number => (name.includes('discovery') ? TARGETS.idleDiscoveryMb : TARGETS.idleMb);
    console.log(`\nIdle \`polku serve\` (compiled, settled ${SETTLE_MS} ms after listening)\n`);
    console.log(
      table([
        ['configuration', `VmRSS at ${EARLY_SAMPLE_MS / 1000} s`, 'VmRSS settled MB', 'VmHWM MB', 'target', 'verdict'],
        ...result.idle.map((f) => [
          f.name,
          f.rss3sMb.toFixed(1),
          f.rssMb.toFixed(1),
          f.hwmMb.toFixed(1),
          `≤ ${target(f.name)} MB`,
          f.rssMb <= target(f.name) ? 'PASS' : 'MISS',
        ]),
      ]),
    );
  }
  if (result.imports) {
    console.log(`\nImport cost: RSS over a fresh node process (${result.nodeMb!.toFixed(1)} MB), each in its own process\n`);
    console.log(table([['import', 'MB', 'loaded when'], ...result.imports.map((i) => [`\`${i.specifier}\``, i.mb.toFixed(1), i.when])]));
  }
  if (result.load && result.chart) {
    const [plain, charted] = result.load as [LoadFigure, LoadFigure];
    const limitMb = (result.chart.limitMiB * 1048576) / 1e6;
    const ratio = plain.barePeakMb ? plain.gatewayPeakMb / plain.barePeakMb : NaN;
    const share = charted.gatewayPeakMb / limitMb;
    const perEvent = (f: LoadFigure): string => `${((f.gatewayCpuCores / f.gatewayPerSec) * 1e6).toFixed(2)} µs`;
    console.log(`\nFull speed, in memory (bench/run.ts, native polku batches, ${values['duration-ms']} ms)\n`);
    console.log(
      table([
        ['figure', 'value', 'target', 'verdict'],
        ['gateway peak RSS', `${plain.gatewayPeakMb.toFixed(1)} MB`, '', ''],
        ['bare grpc-js server peak RSS', `${plain.barePeakMb?.toFixed(1) ?? 'n/a'} MB`, '', ''],
        ['gateway / bare peak RSS', ratio.toFixed(2), `≤ ${TARGETS.peakOverBare}`, ratio <= TARGETS.peakOverBare ? 'PASS' : 'MISS'],
        ['gateway / bare accepted events/s', `${Math.round(plain.gatewayPerSec)} / ${Math.round(plain.barePerSec ?? 0)}`, '', ''],
        ['gateway CPU per accepted event', perEvent(plain), '', ''],
        [`${charted.name}: peak RSS`, `${charted.gatewayPeakMb.toFixed(1)} MB`, '', ''],
        [
          `… as a share of the chart's ${result.chart.limitMiB}Mi limit`,
          `${(share * 100).toFixed(0)} %`,
          `≤ ${TARGETS.shareOfChartLimit * 100} %`,
          share <= TARGETS.shareOfChartLimit ? 'PASS' : 'MISS',
        ],
        [`${charted.name}: accepted events/s`, String(Math.round(charted.gatewayPerSec)), '', ''],
      ]),
    );
  }
  if (result.compiled) {
    console.log(
      `\nFull speed, compiled (node bin/polku.js vs bench/bare-server.dist.mjs, bench/loadgen.ts, ${values['duration-ms']} ms)\n`,
    );
    console.log(
      table([
        [
          'round',
          'gateway peak / idle MB',
          'bare peak / idle MB',
          'gateway / bare peak',
          'target',
          'events/s gateway / bare',
          'CPU µs/event gateway / bare',
        ],
        ...result.compiled.map(({ gateway: g, bare: b }, i) => [
          String(i + 1),
          `${g.peakMb.toFixed(1)} / ${g.idleMb.toFixed(1)}`,
          `${b.peakMb.toFixed(1)} / ${b.idleMb.toFixed(1)}`,
          (g.peakMb / b.peakMb).toFixed(2),
          `≤ ${TARGETS.peakOverBare}: ${g.peakMb / b.peakMb <= TARGETS.peakOverBare ? 'PASS' : 'MISS'}`,
          `${Math.round(g.perSec)} / ${Math.round(b.perSec)}`,
          `${g.cpuUsPerEvent.toFixed(2)} / ${b.cpuUsPerEvent.toFixed(2)}`,
        ]),
      ]),
    );
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
