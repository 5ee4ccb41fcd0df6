/**
 * OTLP/gRPC load for `npm run bench`: `--streams` connections, each with `--inflight` Export calls
 * outstanding, every call the same pre-encoded ExportLogsServiceRequest of `--batch` log records
 * (~`--record-bytes` each as encoded: a string body, three resource attributes, one record
 * attribute, trace and span ids), as an OpenTelemetry SDK's BatchLogRecordProcessor sends them.
 * Prints one JSON line: records accepted per second over the measured window (after the warmup),
 * calls, refused calls, Ack latency percentiles and its own CPU cores over the window. The
 * window's ends are announced as `{"phase":"measure-start"}` / `{"phase":"measure-end"}` lines.
 *
 * Clients (`--client`): `http2` (node:http2, gRPC's unary framing by hand), `grpc-js`, `grpcio`
 * (gRPC C-core: bench/otlp_loadgen_grpcio.py, same flags and output). `--rate` paces the load at
 * that many log records/s over all connections; 0 (default) is full speed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type IncomingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchExportRequest } from './lib/otlp-request.js';

const EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    streams: { type: 'string', default: '4' },
    inflight: { type: 'string', default: '16' },
    'duration-ms': { type: 'string', default: '10000' },
    'warmup-ms': { type: 'string', default: '2000' },
    batch: { type: 'string', default: '100' },
    'record-bytes': { type: 'string', default: '400' },
    client: { type: 'string', default: 'http2' },
    rate: { type: 'string', default: '0' },
  },
  strict: true,
});
if (!values.target) throw new Error('--target host:port is required');
const CLIENTS = ['http2', 'grpc-js', 'grpcio'];
if (!CLIENTS.includes(values.client)) throw new Error(`--client must be one of ${CLIENTS.join(', ')}, got ${values.client}`);
const streams = Number(values.streams);
const inflight = Number(values.inflight);
const durationMs = Number(values['duration-ms']);
const warmupMs = Number(values['warmup-ms']);
const batch = Number(values.batch);
const recordBytes = Number(values['record-bytes']);
/** Log records per second over all connections; 0: as fast as the calls in flight allow. */
const rate = Number(values.rate);

const request = benchExportRequest(batch, recordBytes);

// `--client grpcio`: gRPC C-core, in Python (apt's python3-grpcio), sends the same bytes, handed
// over as a file; its output lines are this process's.
if (values.client === 'grpcio') {
  const dir = mkdtempSync(join(tmpdir(), 'polku-otlp-request-'));
  const file = join(dir, 'export-request.bin');
  writeFileSync(file, request);
  const args = ['bench/otlp_loadgen_grpcio.py', '--target', values.target, '--request-file', file];
  for (const flag of ['streams', 'inflight', 'duration-ms', 'warmup-ms', 'batch', 'rate'] as const) args.push(`--${flag}`, values[flag]);
  const child = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

/** rejected_log_records of a response's partial_success (field 1 → field 1), 0 when absent. */
function rejectedOf(response: Buffer): number {
  if (response.length === 0) return 0;
  const r = new BinaryReader(response);
  if (r.uint32() !== 10) return 0;
  const p = new BinaryReader(r.bytes());
  return p.uint32() === 8 ? Number(p.int64()) : 0;
}

const start = performance.now();
const measureFrom = start + warmupMs;
const end = measureFrom + durationMs;
let accepted = 0;
let rejected = 0;
let calls = 0;
let refusedCalls = 0;
const latencies: number[] = [];
const errors = new Map<string, number>();
// The measured window, announced on stdout (run.ts samples the gateway's CPU time at each end),
// and this process's own CPU time over it: the generator must not be the bottleneck.
let cpuAtStart: NodeJS.CpuUsage | undefined;
let cpuUsedUs = 0;
const windowStart = setTimeout(() => {
  cpuAtStart = process.cpuUsage();
  process.stdout.write('{"phase":"measure-start"}\n');
}, warmupMs);
const windowEnd = setTimeout(() => {
  const used = process.cpuUsage(cpuAtStart);
  cpuUsedUs = used.user + used.system;
  process.stdout.write('{"phase":"measure-end"}\n');
}, warmupMs + durationMs);

/** One finished call: counted when it ends inside the measured window. */
function recordCall(sentAt: number, grpcStatus: number, response: Buffer | undefined): void {
  const now = performance.now();
  if (now < measureFrom || now >= end) return;
  calls++;
  latencies.push(now - sentAt);
  if (grpcStatus !== 0) {
    refusedCalls++;
    errors.set(String(grpcStatus), (errors.get(String(grpcStatus)) ?? 0) + 1);
  } else {
    const r = rejectedOf(response ?? Buffer.alloc(0));
    rejected += r;
    accepted += batch - r;
  }
}

/**
 * Under `--rate`, a connection's calls start at its share of the rate, `interval` apart (falling
 * behind by at most a window's worth after a stall); without it, as soon as a call ends.
 */
function pacer(k: number): () => Promise<void> {
  if (rate === 0) return () => Promise.resolve();
  const interval = (1000 * batch * streams) / rate;
  let due = performance.now() + (interval * k) / streams;
  return async () => {
    const at = due;
    due = Math.max(due + interval, performance.now() - interval * inflight);
    const wait = at - performance.now();
    if (wait > 0) await sleep(wait);
  };
}

/** The request as one gRPC message (uncompressed flag, big-endian length, the bytes), framed once. */
const framed = Buffer.concat([
  Buffer.from([0, request.length >>> 24, (request.length >>> 16) & 255, (request.length >>> 8) & 255, request.length & 255]),
  request,
]);

/**
 * `--client http2` (the default): each Export call is an HTTP/2 stream on a `node:http2` session,
 * the same bytes on the wire as a gRPC client sends (POST, application/grpc, te: trailers, one
 * length-prefixed message; the status from the trailers). A grpc-js client spends about as much
 * CPU per unary call as the server it loads (docs/benchmarks.md), which on a 2-core machine takes
 * the gateway's second core; an SDK or Collector in another pod would not.
 */
async function http2Stream(k: number): Promise<void> {
  const pace = pacer(k);
  const session = connect(`http://${values.target!}`);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  session.on('error', () => undefined);
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const sentAt = performance.now();
      const req = session.request({
        ':method': 'POST',
        ':path': EXPORT,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      let status = -1;
      const statusOf = (headers: IncomingHttpHeaders): void => {
        const s = headers['grpc-status'];
        if (typeof s === 'string') status = Number(s);
      };
      req.on('response', statusOf);
      req.on('trailers', statusOf);
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('close', () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        // UNKNOWN (2) when the stream ended without a status.
        recordCall(sentAt, status === -1 ? 2 : status, body.length >= 5 ? body.subarray(5) : undefined);
        resolve();
      });
      req.on('error', () => undefined);
      req.end(framed);
    });
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (performance.now() < end) {
        await pace();
        await one();
      }
    }),
  );
  session.close();
}

async function grpcJsStream(k: number): Promise<void> {
  const pace = pacer(k);
  const client = new Client(values.target!, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const sentAt = performance.now();
      client.makeUnaryRequest(
        EXPORT,
        (b: Buffer) => b,
        (b: Buffer) => b,
        request,
        new Metadata(),
        {},
        (err, response) => {
          recordCall(sentAt, err ? err.code : 0, response);
          resolve();
        },
      );
    });
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (performance.now() < end) {
        await pace();
        await one();
      }
    }),
  );
  client.close();
}

await Promise.all(Array.from({ length: streams }, (_, k) => (values.client === 'http2' ? http2Stream(k) : grpcJsStream(k))));
clearTimeout(windowStart);
clearTimeout(windowEnd);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
process.stdout.write(
  `${JSON.stringify({
    acceptedPerSec: accepted / (durationMs / 1000),
    accepted,
    rejected,
    calls,
    refusedCalls,
    errors: Object.fromEntries(errors),
    requestBytes: request.length,
    loadgenCpuCores: cpuUsedUs / 1000 / durationMs,
    client: values.client,
    latencyMs: { p50: pct(50), p99: pct(99), max: latencies.at(-1) ?? 0 },
  })}\n`,
);
