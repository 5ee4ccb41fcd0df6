/**
 * The HTTP route on one framework or the other, for the framework choice in `npm run bench:http
 * -- --frameworks` (docs/benchmarks.md, "HTTP ingest"). Both serve `POST /v1/events` with the
 * same route work (EventsIntake: parse with the JSON ingestor, submit to a hub running
 * bench/bench.config.ts's pipeline, the Ack as JSON); only what reads the request and writes the
 * answer differs:
 *   --framework gateway  the gateway's own HttpReceiver (routing, refusals, metrics; fastify until
 *                        2026-12-03 night, node:http since)
 *   --framework node     a bare node:http handler: read the bounded body, the same work, the answer
 * Prints `READY <port>` once listening; exits on SIGTERM.
 */
import { createServer, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { systemClock } from '../src/clock.js';
import { loadPipeline } from '../src/config/load-pipeline.js';
import { createLogger } from '../src/observability/logger.js';
import { bodyFormatOf, EventsIntake, type HttpAnswer } from '../src/receive/http/events-intake.js';
import { HttpReceiverMetrics } from '../src/receive/http/http-metrics.js';
import { HttpReceiver } from '../src/receive/http/http-receiver.js';
import { DEFAULT_HTTP_MAX_BODY_BYTES } from '../src/receive/http/http-settings.js';
import { mediaType, readBody } from '../src/receive/http-body.js';

const { values } = parseArgs({ options: { framework: { type: 'string', default: 'node' } }, strict: true });
const registry = new Registry();
const logger = createLogger('warn');
const hub = (await loadPipeline('bench/bench.config.ts')).build({ registry, logger });
await hub.start();
const ctx = { hub, logger, clock: systemClock, registry };

let port: number;
let stop: () => Promise<void>;
if (values.framework === 'gateway') {
  const receiver = new HttpReceiver({ addr: { host: '127.0.0.1', port: 0 } });
  await receiver.start(ctx);
  port = receiver.port;
  stop = () => receiver.close();
} else if (values.framework === 'node') {
  // The route on node:http alone: the same work, without a framework's routing, hooks and reply.
  const intake = new EventsIntake(hub, new HttpReceiverMetrics(registry), DEFAULT_HTTP_MAX_BODY_BYTES);
  const send = (res: ServerResponse, a: HttpAnswer): void => {
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(a.body) };
    if (a.retryAfter !== undefined) headers['Retry-After'] = a.retryAfter;
    res.writeHead(a.status, headers);
    res.end(a.body);
  };
  const server = createServer((req, res) => {
    const format = bodyFormatOf(mediaType(req.headers['content-type']));
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v1/events' || format === undefined) {
      req.resume();
      send(res, { status: 404, body: '{}' });
      return;
    }
    const h = req.headers;
    void readBody(req, DEFAULT_HTTP_MAX_BODY_BYTES)
      .then((body) =>
        intake.answer({
          format,
          gzip: h['content-encoding'] === 'gzip',
          body,
          source: h['x-polku-source'] as string | undefined,
          apiKey: h['x-api-key'] as string | undefined,
          idempotencyKey: h['idempotency-key'] as string | undefined,
          traceparent: h['traceparent'] as string | undefined,
        }),
      )
      .then((a) => send(res, a));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  stop = () => new Promise((resolve) => server.close(() => resolve()));
} else {
  throw new Error(`--framework must be node or gateway, got ${values.framework}`);
}
process.stdout.write(`READY ${port}\n`);
process.once('SIGTERM', () => {
  void stop()
    .then(() => hub.drain(5_000))
    .then(() => process.exit(0));
});
