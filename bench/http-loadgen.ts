/**
 * HTTP ingest load for `npm run bench:http`: `--connections` keep-alive connections, each with one
 * `POST /v1/events` outstanding at a time (HTTP/1.1 does not pipeline), every request the same
 * JSON array of `--batch` events of ~`--event-bytes` each (event type, source, two metadata
 * entries, a hex text payload), as a service batching its events would send them. Prints one
 * JSON line: events accepted per second over the measured window (after the warmup), requests,
 * statuses other than 202, and latency percentiles.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { summarizeLatency } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    connections: { type: 'string', default: '8' },
    'duration-ms': { type: 'string', default: '10000' },
    'warmup-ms': { type: 'string', default: '2000' },
    batch: { type: 'string', default: '100' },
    'event-bytes': { type: 'string', default: '200' },
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

const shape = (payload: string) =>
  JSON.stringify({
    event_type: 'bench.synthetic',
    source: 'bench-http',
    metadata: { 'k8s.namespace.name': 'default', 'k8s.pod.name': 'bench-loadgen-7d9f8c6b5-x2k4q' },
    payload,
  });
const payload = randomBytes(Math.max(1, Math.floor((eventBytes - shape('').length) / 2))).toString('hex');
const body = Buffer.from(`[${Array.from({ length: batch }, () => shape(payload)).join(',')}]`);
const agent = new Agent({ keepAlive: true, maxSockets: connections });
const headers = { 'Content-Type': 'application/json', 'Content-Length': String(body.length) };

const start = performance.now();
const measureFrom = start + warmupMs;
const end = measureFrom + durationMs;
let accepted = 0;
let requests = 0;
const statuses = new Map<number, number>();
const latencies: number[] = [];

function post(): Promise<void> {
  return new Promise((resolve, reject) => {
    const sentAt = performance.now();
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const now = performance.now();
        if (now >= measureFrom && now < end) {
          requests++;
          latencies.push(now - sentAt);
          const status = res.statusCode ?? 0;
          // 202: every event taken. Anything else: count what the answer lists.
          if (status === 202) accepted += batch;
          else {
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            try {
              accepted += (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { accepted: unknown[] }).accepted.length;
            } catch {
              // not the events answer: nothing accepted
            }
          }
        }
        resolve();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

await Promise.all(
  Array.from({ length: connections }, async () => {
    while (performance.now() < end) await post();
  }),
);
agent.destroy();
process.stdout.write(
  `${JSON.stringify({
    acceptedPerSec: accepted / (durationMs / 1000),
    accepted,
    requests,
    statuses: Object.fromEntries(statuses),
    requestBytes: body.length,
    latencyMs: summarizeLatency(latencies),
  })}\n`,
);
