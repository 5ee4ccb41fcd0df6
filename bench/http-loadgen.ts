/**
 * HTTP ingest load for `npm run bench:http` and the HTTP sender of `npm run bench:tenants`:
 * `--connections` keep-alive connections, each with one `POST /v1/events` outstanding at a time
 * (HTTP/1.1 does not pipeline), every request the same JSON array of `--batch` events of
 * ~`--event-bytes` each (event type, `--source`, two metadata entries, a hex text payload), as a
 * service batching its events would send them. At full speed by default; with `--rate` each
 * connection paces its requests as bench/loadgen.ts paces its streams. `--api-key` goes out as
 * `X-API-Key` on every request.
 *
 * Prints one JSON line: bench:http's fields (events accepted per second over the measured window
 * after the warmup, requests, statuses other than 202, request bytes, latency percentiles) and,
 * in the same line, a {@link LoadResult} (per-event refusal codes from the answers' `errors`,
 * request latency as the Ack latency), so bench/tenants.ts reads either generator the same way.
 * A request counts in the window when its answer arrives inside it.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request, type OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { LoadResult } from './lib/load-result.js';
import { round3, summarizeLatency } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    connections: { type: 'string', default: '8' },
    'duration-ms': { type: 'string', default: '10000' },
    'warmup-ms': { type: 'string', default: '2000' },
    batch: { type: 'string', default: '100' },
    'event-bytes': { type: 'string', default: '200' },
    /** Events/s over all connections; 0 = each connection sends its next request on the answer. */
    rate: { type: 'string', default: '0' },
    'api-key': { type: 'string', default: '' },
    source: { type: 'string', default: 'bench-http' },
  },
  strict: true,
});
if (!values.url) throw new Error('--url http://host:port/v1/events is required');
const url = new URL(values.url);
const connections = Number(values.connections);
const durationMs = Number(values['duration-ms']);
const warmupMs = Number(values['warmup-ms']);
const batch = Number(values.batch);
const eventBytes = Number(values['event-bytes']);
const rate = Number(values.rate);
if (!Number.isFinite(rate) || rate < 0) throw new Error(`--rate must be a number of events/s >= 0, got ${values.rate}`);

const source = values.source!;
const shape = (payload: string) =>
  JSON.stringify({
    event_type: 'bench.synthetic',
    source,
    metadata: { 'k8s.namespace.name': 'default', 'k8s.pod.name': 'bench-loadgen-7d9f8c6b5-x2k4q' },
    payload,
  });
const payload = randomBytes(Math.max(1, Math.floor((eventBytes - shape('').length) / 2))).toString('hex');
const body = Buffer.from(`[${Array.from({ length: batch }, () => shape(payload)).join(',')}]`);
const agent = new Agent({ keepAlive: true, maxSockets: connections });
const headers: OutgoingHttpHeaders = { 'Content-Type': 'application/json', 'Content-Length': String(body.length) };
if (values['api-key']) headers['X-API-Key'] = values['api-key'];
/** How an answer with no refusals ends (`{"accepted":[…],"errors":[]}`): such a 202 is read without parsing. */
const NO_ERRORS = Buffer.from('"errors":[]}');

const start = performance.now();
const measureFrom = start + warmupMs;
const end = measureFrom + durationMs;
let accepted = 0;
let requests = 0;
let ackErrors = 0;
const statuses = new Map<number, number>();
const errorCodes: Record<string, number> = {};
const latencies: number[] = [];
// The generator's own CPU over exactly the window, in µs (it competes with the gateway for the cores).
const cpuUsedUs = new Promise<number>((resolve) => {
  setTimeout(() => {
    const cpuStart = process.cpuUsage();
    setTimeout(() => {
      const cpu = process.cpuUsage(cpuStart);
      resolve(cpu.user + cpu.system);
    }, durationMs);
  }, warmupMs);
});

interface AnswerBody {
  accepted?: unknown[];
  errors?: { code?: string }[];
}

/** Counts one answer inside the window: its events taken, and every refusal by its code. */
function count(status: number, chunks: Buffer[]): void {
  requests++;
  const last = chunks[chunks.length - 1];
  // 202 with no errors: every event taken (the common case at full speed, so no JSON.parse).
  if (status === 202 && chunks.length === 1 && last !== undefined && endsWith(last, NO_ERRORS)) {
    accepted += batch;
    return;
  }
  if (status !== 202) statuses.set(status, (statuses.get(status) ?? 0) + 1);
  let answer: AnswerBody;
  try {
    answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AnswerBody;
  } catch {
    // Not the events answer: nothing accepted; the status says what happened.
    errorCodes[`HTTP_${status}`] = (errorCodes[`HTTP_${status}`] ?? 0) + 1;
    return;
  }
  accepted += answer.accepted?.length ?? 0;
  for (const e of answer.errors ?? []) {
    ackErrors++;
    const code = e.code ?? `HTTP_${status}`;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  }
}

function endsWith(buf: Buffer, tail: Buffer): boolean {
  return buf.length >= tail.length && buf.compare(tail, 0, tail.length, buf.length - tail.length) === 0;
}

function post(): Promise<void> {
  return new Promise((resolve, reject) => {
    const sentAt = performance.now();
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const now = performance.now();
        if (now >= measureFrom && now < end) {
          latencies.push(now - sentAt);
          count(res.statusCode ?? 0, chunks);
        }
        resolve();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Full speed: the next request goes out as the answer to the last one arrives. */
async function unpaced(): Promise<void> {
  while (performance.now() < end) await post();
}

/**
 * Paced: one request of `batch` events every `interval` ms on this connection, the connections
 * staggered across one interval. After a slow answer it catches up by at most one request (one
 * is all a connection can have outstanding) instead of bursting the backlog, as loadgen.ts does.
 */
async function paced(index: number): Promise<void> {
  const interval = (1000 * batch * connections) / rate;
  let due = performance.now() + (interval * index) / connections;
  for (;;) {
    const now = performance.now();
    due = Math.max(due, now - interval);
    if (due >= end) return;
    if (due > now) await sleep(due - now);
    due += interval;
    await post();
  }
}

await Promise.all(Array.from({ length: connections }, (_, i) => (rate === 0 ? unpaced() : paced(i))));
agent.destroy();
const acceptedPerSec = accepted / (durationMs / 1000);
const latencyMs = summarizeLatency(latencies);
const loadResult: LoadResult = {
  batchesSent: requests,
  eventsSent: requests * batch,
  eventsAccepted: accepted,
  ackErrors,
  errorCodes,
  batchBytes: body.length,
  durationS: round3(durationMs / 1000),
  acceptedPerSec: Math.round(acceptedPerSec),
  ackLatencyMs: latencyMs,
  unackedBatches: 0,
  loadgenCpuCores: round3((await cpuUsedUs) / 1000 / durationMs),
  streamErrors: [],
};
process.stdout.write(
  `${JSON.stringify({
    ...loadResult,
    // bench:http's fields (bench/http-ingest.ts reads these).
    acceptedPerSec,
    accepted,
    requests,
    statuses: Object.fromEntries(statuses),
    requestBytes: body.length,
    latencyMs,
  })}\n`,
);
