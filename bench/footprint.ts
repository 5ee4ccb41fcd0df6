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
 * Options: --settle-ms N (default 3000), --only idle|imports, --json.
 * Needs a build (`npm run build`); `npm run bench:footprint` runs one first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeApiServer } from '../test/discovery/fake-apiserver.js';
import { type Child, delay, installChildCleanup, REPO_ROOT, spawnCommand, stopChild } from './lib/children.js';
import { readStatusKb } from './lib/procfs.js';

const { values } = parseArgs({
  options: {
    'settle-ms': { type: 'string', default: '3000' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const SETTLE_MS = Number(values['settle-ms']);
const READY_TIMEOUT_MS = 30_000;
const BIN = join(REPO_ROOT, 'bin', 'polku.js');

/** The idle targets (docs/benchmarks.md). */
const TARGETS = { idleMb: 65, idleDiscoveryMb: 85 };

const OFF = { POLKU_HTTP_ADDR: 'off', POLKU_OTLP_GRPC_ADDR: 'off', POLKU_OTLP_HTTP_ADDR: 'off' };
const HTTP_ON = { POLKU_HTTP_ADDR: '127.0.0.1:0' };
const OTLP_ON = { POLKU_OTLP_GRPC_ADDR: '127.0.0.1:0', POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0' };

interface IdleFigure {
  name: string;
  rssMb: number;
  hwmMb: number;
}

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
    // of nothing, discovery's first list all happen in it).
    let rssKb = 0;
    for (let waited = 0; waited < SETTLE_MS; waited += 250) {
      await delay(250);
      rssKb = readStatusKb(child.pid, 'VmRSS') ?? rssKb;
    }
    const hwmKb = readStatusKb(child.pid, 'VmHWM') ?? rssKb;
    return { name, rssMb: rssKb / 1024, hwmMb: hwmKb / 1024 };
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
  { specifier: 'grpc-health-check', when: 'always (grpc.health.v1; pulls @grpc/proto-loader + protobufjs)' },
  { specifier: '@bufbuild/protobuf', when: 'always (the generated codecs)' },
  { specifier: 'prom-client', when: 'always (/metrics)' },
  { specifier: 'pino', when: 'always (logs)' },
  { specifier: 'fastify', when: 'HTTP front door on (POLKU_HTTP_ADDR)' },
  { specifier: 'pg', when: 'a PostgresEmitter is built, or `polku sinks init`' },
  { specifier: 'ioredis', when: 'a RedisStreamEmitter is built' },
  { specifier: '@nats-io/transport-node', when: 'a NatsEmitter is built' },
  { specifier: '@aws-sdk/client-s3', when: 'an S3Emitter is built' },
  { specifier: '@kubernetes/client-node', when: 'POLKU_DISCOVERY=kubernetes or POLKU_K8S_ENRICH=true' },
  { specifier: './dist/receive/otlp/otlp-receiver.js', when: 'OTLP ports on' },
  { specifier: './dist/receive/http/http-receiver.js', when: 'HTTP front door on' },
  { specifier: './dist/index.js', when: "a pipeline module's `import … from 'polku'`" },
  { specifier: './dist/server/index.js', when: 'embedding: polku/server' },
  { specifier: './dist/cli/serve.js', when: '`polku serve`: its module graph, before it starts anything' },
];

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('no dist/: run `npm run build` first');
  installChildCleanup();
  const only = values.only;
  const result: { idle?: IdleFigure[]; imports?: Array<{ specifier: string; when: string; mb: number }>; nodeMb?: number } = {};

  if (only === undefined || only === 'idle') {
    const api = await new FakeApiServer().start();
    const dir = mkdtempSync(join(tmpdir(), 'polku-footprint-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeConfig().exportConfig());
    try {
      const figures: IdleFigure[] = [];
      const configs: Array<[string, Record<string, string>]> = [
        ['everything off', OFF],
        ['+ HTTP front door', { ...OFF, ...HTTP_ON }],
        ['+ OTLP ports', { ...OFF, ...OTLP_ON }],
        ['defaults (HTTP + OTLP on)', { ...HTTP_ON, ...OTLP_ON }],
        [
          'defaults + discovery',
          {
            ...HTTP_ON,
            ...OTLP_ON,
            POLKU_DISCOVERY: 'kubernetes',
            KUBECONFIG: kubeconfig,
            KUBERNETES_SERVICE_HOST: '',
            NODE_NAME: 'node-1',
          },
        ],
        [
          'off + discovery',
          { ...OFF, POLKU_DISCOVERY: 'kubernetes', KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: '', NODE_NAME: 'node-1' },
        ],
      ];
      for (const [name, env] of configs) {
        log(`idle: ${name}`);
        figures.push(await idle(name, env));
      }
      result.idle = figures;
    } finally {
      await api.stop();
    }
  }

  if (only === undefined || only === 'imports') {
    log('import costs (fresh process each)');
    const nodeMb = importRss('');
    result.nodeMb = nodeMb;
    result.imports = IMPORTS.map(({ specifier, when }) => ({ specifier, when, mb: importRss(specifier) - nodeMb }));
  }

  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  if (result.idle) {
    const target = (name: string): number => (name.includes('discovery') ? TARGETS.idleDiscoveryMb : TARGETS.idleMb);
    console.log(`\nIdle \`polku serve\` (compiled, settled ${SETTLE_MS} ms after listening)\n`);
    console.log(
      table([
        ['configuration', 'VmRSS MB', 'VmHWM MB', 'target', 'verdict'],
        ...result.idle.map((f) => [
          f.name,
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
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
