/**
 * OTLP/gRPC load for `npm run bench`: `--streams` connections, each with `--inflight` Export calls
 * outstanding, every call the same pre-encoded ExportLogsServiceRequest of `--batch` log records
 * (~`--record-bytes` each as encoded: a string body, three resource attributes, one record
 * attribute, trace and span ids), as an OpenTelemetry SDK's BatchLogRecordProcessor sends them.
 * Prints one JSON line: records accepted per second over the measured window (after the warmup),
 * calls, refused calls, Ack latency percentiles and its own CPU cores over the window. The
 * window's ends are announced as `{"phase":"measure-start"}` / `{"phase":"measure-end"}` lines.
 */
import { randomBytes } from 'node:crypto';
import { connect, type IncomingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { ExportLogsServiceRequest } from '../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { LogRecord } from '../src/gen/opentelemetry/proto/logs/v1/logs.js';

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
  },
  strict: true,
});
if (!values.target) throw new Error('--target host:port is required');
if (values.client !== 'http2' && values.client !== 'grpc-js') throw new Error(`--client must be http2 or grpc-js, got ${values.client}`);
const streams = Number(values.streams);
const inflight = Number(values.inflight);
const durationMs = Number(values['duration-ms']);
const warmupMs = Number(values['warmup-ms']);
const batch = Number(values.batch);
const recordBytes = Number(values['record-bytes']);

const str = (value: string) => ({ value: { $case: 'stringValue' as const, value } });
function record(body: string): LogRecord {
  return {
    timeUnixNano: 1_700_000_000_000_000_000n,
    observedTimeUnixNano: 0n,
    severityNumber: 9,
    severityText: 'INFO',
    body: str(body),
    attributes: [{ key: 'event.name', value: str('bench.synthetic') }],
    droppedAttributesCount: 0,
    flags: 1,
    traceId: randomBytes(16),
    spanId: randomBytes(8),
    eventName: '',
  };
}
const overhead = ExportLogsServiceRequest.encode({
  resourceLogs: [
    {
      resource: undefined,
      scopeLogs: [{ scope: undefined, logRecords: [record('')], schemaUrl: '' }],
      schemaUrl: '',
    },
  ],
}).finish().length;
const body = randomBytes(Math.max(1, Math.floor((recordBytes - overhead) / 2))).toString('hex');
const request = Buffer.from(
  ExportLogsServiceRequest.encode({
    resourceLogs: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: str('bench-otlp') },
            { key: 'k8s.namespace.name', value: str('default') },
            { key: 'k8s.pod.name', value: str('bench-loadgen-7d9f8c6b5-x2k4q') },
          ],
          droppedAttributesCount: 0,
          entityRefs: [],
        },
        scopeLogs: [
          {
            scope: { name: 'bench', version: '1', attributes: [], droppedAttributesCount: 0 },
            logRecords: Array.from({ length: batch }, () => record(body)),
            schemaUrl: '',
          },
        ],
        schemaUrl: '',
      },
    ],
  }).finish(),
);

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
async function http2Stream(): Promise<void> {
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
      while (performance.now() < end) await one();
    }),
  );
  session.close();
}

async function grpcJsStream(): Promise<void> {
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
      while (performance.now() < end) await one();
    }),
  );
  client.close();
}

await Promise.all(Array.from({ length: streams }, () => (values.client === 'http2' ? http2Stream() : grpcJsStream())));
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
