/**
 * `npm run bench:http`: HTTP ingest beside gRPC native, on the same gateway in the same run.
 *
 *   1. `polku serve --config bench/bench.config.ts` (passthrough and JSON ingestors, a counting
 *      in-memory emitter) in its own process, with the HTTP front door on a free port.
 *   2. gRPC native: bench/loadgen.ts, full speed, IngestBatches of 100 events (the figure of
 *      `npm run bench`).
 *   3. HTTP: bench/http-loadgen.ts, `POST /v1/events` with JSON arrays of 100 events over
 *      keep-alive connections, full speed.
 *   4. With `--frameworks`: what the receiver costs over the route's work. bench/http-framework-server.ts
 *      serves the same route work on a bare node:http handler and on the gateway's own HttpReceiver
 *      (routing, refusals, metrics), each measured `--rounds` times, alternating, so drift on this
 *      shared machine hits both alike. (Until 2026-12-03 night the receiver was fastify.)
 *
 * Prints a table (and `--json`); the target is >= 50k HTTP events/s (issue 17). Figures on a
 * machine shared with other work are rough: compare the ratios of one run.
 */
import { parseArgs } from 'node:util';
import { type Child, delay, freePort, hasExited, installChildCleanup, spawnTsx, stopChild } from './lib/children.js';
import type { LatencySummary, LoadResult } from './lib/load-result.js';

const TARGET_HTTP_PER_SEC = 50_000;
const EVENTS_PER_BATCH = 100;

const { values } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '10000' },
    'warmup-ms': { type: 'string', default: '2000' },
    connections: { type: 'string', default: '8' },
    streams: { type: 'string', default: '4' },
    frameworks: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
});
const durationMs = Number(values['duration-ms']);
const warmupMs = Number(values['warmup-ms']);
const connections = Number(values.connections);
const streams = Number(values.streams);

interface HttpLoadResult {
  acceptedPerSec: number;
  accepted: number;
  requests: number;
  statuses: Record<string, number>;
  requestBytes: number;
  latencyMs: LatencySummary;
}

const log = (msg: string): void => void process.stderr.write(`[bench:http] ${msg}\n`);

/** Runs a generator to its end and parses the last JSON line it printed. */
async function lastJson<T>(gen: Child): Promise<T> {
  let last = '';
  gen.onStdoutLine((line) => {
    if (line.startsWith('{') && !line.startsWith('{"phase"')) last = line;
  });
  const status = await gen.exited;
  if ((status !== 0 && status !== 2) || last === '') throw new Error(`${gen.name} exited with ${status}:\n${gen.tail()}`);
  return JSON.parse(last) as T;
}

function httpLoad(url: string): Promise<HttpLoadResult> {
  const args = ['--url', url, '--connections', String(connections), '--duration-ms', String(durationMs), '--warmup-ms', String(warmupMs)];
  return lastJson<HttpLoadResult>(spawnTsx('http-loadgen', 'bench/http-loadgen.ts', [...args, '--batch', String(EVENTS_PER_BATCH)]));
}

function grpcLoad(target: string): Promise<LoadResult> {
  const args = ['--target', target, '--streams', String(streams), '--duration-ms', String(durationMs), '--warmup-ms', String(warmupMs)];
  return lastJson<LoadResult>(spawnTsx('loadgen', 'bench/loadgen.ts', [...args, '--rate', '0', '--batch', String(EVENTS_PER_BATCH)]));
}

/** Waits for a line of the child's stdout or stderr (the gateway logs there) matching `pattern`. */
function waitLine(child: Child, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not seen in 30 s:\n${child.tail()}`)), 30_000);
    const onLine = (line: string): void => {
      const m = pattern.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.onStdoutLine(onLine);
    child.onStderrLine(onLine);
    void child.exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited (${status}) before ${what}:\n${child.tail()}`));
    });
  });
}

async function stop(child: Child): Promise<void> {
  if (!hasExited(child) && !(await stopChild(child, 15_000))) log(`warning: ${child.name} needed SIGKILL`);
}

installChildCleanup();
const httpPort = await freePort();
const grpcPort = await freePort();
const gateway = spawnTsx('gateway', 'src/cli/main.ts', ['serve', '--config', 'bench/bench.config.ts'], {
  env: {
    POLKU_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
    POLKU_METRICS_ADDR: `127.0.0.1:${await freePort()}`,
    POLKU_HTTP_ADDR: `127.0.0.1:${httpPort}`,
    POLKU_OTLP_GRPC_ADDR: 'off',
    POLKU_OTLP_HTTP_ADDR: 'off',
    // info: the "gateway listening" line says when both ports are open.
    POLKU_LOG_LEVEL: 'info',
  },
});
await waitLine(gateway, /"gateway listening"/, 'the gateway listening');
log(`gRPC native: full speed, ${streams} streams, batches of ${EVENTS_PER_BATCH}, ${durationMs / 1000} s`);
const native = await grpcLoad(`127.0.0.1:${grpcPort}`);
await delay(500);
log(`HTTP: full speed, ${connections} keep-alive connections, JSON arrays of ${EVENTS_PER_BATCH}, ${durationMs / 1000} s`);
const http = await httpLoad(`http://127.0.0.1:${httpPort}/v1/events`);
await stop(gateway);

const frameworks: Record<string, number[]> = {};
if (values.frameworks) {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const framework of ['node', 'gateway']) {
      const server = spawnTsx(`http-${framework}`, 'bench/http-framework-server.ts', ['--framework', framework]);
      const port = (await waitLine(server, /^READY (\d+)$/, 'READY'))[1]!;
      log(`framework ${framework}, round ${round + 1}`);
      const r = await httpLoad(`http://127.0.0.1:${port}/v1/events`);
      (frameworks[framework] ??= []).push(r.acceptedPerSec);
      await stop(server);
    }
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const summary = {
  nativeAcceptedPerSec: native.acceptedPerSec,
  httpAcceptedPerSec: http.acceptedPerSec,
  ratio: http.acceptedPerSec / native.acceptedPerSec,
  httpLatencyMs: http.latencyMs,
  httpStatuses: http.statuses,
  httpRequestBytes: http.requestBytes,
  target: TARGET_HTTP_PER_SEC,
  verdict: http.acceptedPerSec >= TARGET_HTTP_PER_SEC ? 'PASS' : 'MISS',
  frameworks,
};
if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
else {
  const rows: [string, string][] = [
    ['gRPC native accepted events/s (batches of 100)', fmt(native.acceptedPerSec)],
    [`HTTP accepted events/s (arrays of 100, ${http.requestBytes} B a request)`, fmt(http.acceptedPerSec)],
    ['ratio HTTP / native', summary.ratio.toFixed(2)],
    ['HTTP request latency p50 / p99 / max (ms)', `${http.latencyMs.p50} / ${http.latencyMs.p99} / ${http.latencyMs.max}`],
    [`HTTP >= ${fmt(TARGET_HTTP_PER_SEC)} events/s`, summary.verdict],
  ];
  for (const [name, figures] of Object.entries(frameworks))
    rows.push([`framework ${name} accepted events/s, each round`, figures.map(fmt).join(', ')]);
  if (frameworks['node'] && frameworks['gateway']) {
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    rows.push(['ratio bare node:http / gateway receiver (means)', (mean(frameworks['node']) / mean(frameworks['gateway'])).toFixed(2)]);
    // Each round's pair ran back to back: its ratio is the least touched by drift on a shared machine.
    const pairs = frameworks['node'].map((n, i) => n / frameworks['gateway']![i]!).sort((a, b) => a - b);
    rows.push(['ratio bare node:http / gateway receiver, each round (sorted)', pairs.map((r) => r.toFixed(2)).join(', ')]);
    rows.push(['ratio bare node:http / gateway receiver, median of rounds', pairs[Math.floor(pairs.length / 2)]!.toFixed(2)]);
  }
  const width = Math.max(...rows.map(([n]) => n.length));
  for (const [name, value] of rows) process.stdout.write(`${name.padEnd(width)}  ${value}\n`);
  if (Object.keys(http.statuses).length > 0) process.stdout.write(`note: HTTP answers other than 202: ${JSON.stringify(http.statuses)}\n`);
}
