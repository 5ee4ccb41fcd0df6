/**
 * The HTTP route on one framework or the other, for the framework choice in `npm run bench:http
 * -- --frameworks` (docs/benchmarks.md, "HTTP ingest"). Both serve `POST /v1/events` with the
 * same route work (EventsIntake: parse with the JSON ingestor, submit to a hub running
 * bench/bench.config.ts's pipeline, the Ack as JSON); only what reads the request and writes the
 * answer differs:
 *   --framework node     the gateway's own HttpReceiver on node:http
 *   --framework fastify  a fastify route: the body as a Buffer (its bodyLimit), then the same work
 * Prints `READY <port>` once listening; exits on SIGTERM.
 */
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { systemClock } from '../src/clock.js';
import { loadPipeline } from '../src/config/load-pipeline.js';
import { createLogger } from '../src/observability/logger.js';
import { bodyFormatOf, EventsIntake } from '../src/receive/http/events-intake.js';
import { HttpReceiverMetrics } from '../src/receive/http/http-metrics.js';
import { HttpReceiver } from '../src/receive/http/http-receiver.js';
import { DEFAULT_HTTP_MAX_BODY_BYTES } from '../src/receive/http/http-settings.js';
import { mediaType } from '../src/receive/http-body.js';

const { values } = parseArgs({ options: { framework: { type: 'string', default: 'node' } }, strict: true });
const registry = new Registry();
const logger = createLogger('warn');
const hub = (await loadPipeline('bench/bench.config.ts')).build({ registry, logger });
await hub.start();
const ctx = { hub, logger, clock: systemClock, registry };

let port: number;
let stop: () => Promise<void>;
if (values.framework === 'node') {
  const receiver = new HttpReceiver({ addr: { host: '127.0.0.1', port: 0 } });
  await receiver.start(ctx);
  port = receiver.port;
  stop = () => receiver.close();
} else if (values.framework === 'fastify') {
  // Installed for this measurement only (npm install --no-save fastify): the gateway does not use it.
  const { default: fastify } = (await import('fastify' as string)) as { default: (o: object) => FastifyLike };
  const app = fastify({ bodyLimit: DEFAULT_HTTP_MAX_BODY_BYTES, keepAliveTimeout: 65_000 });
  const intake = new EventsIntake(hub, new HttpReceiverMetrics(registry), DEFAULT_HTTP_MAX_BODY_BYTES);
  app.addContentTypeParser(['application/json', 'application/x-ndjson'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/v1/events', async (req, reply) => {
    const h = req.headers;
    const answer = await intake.answer({
      format: bodyFormatOf(mediaType(h['content-type'] as string | undefined))!,
      gzip: h['content-encoding'] === 'gzip',
      body: req.body as Buffer,
      source: h['x-polku-source'] as string | undefined,
      apiKey: h['x-api-key'] as string | undefined,
      idempotencyKey: h['idempotency-key'] as string | undefined,
      traceparent: h['traceparent'] as string | undefined,
    });
    if (answer.retryAfter !== undefined) void reply.header('Retry-After', String(answer.retryAfter));
    return reply.code(answer.status).type('application/json').send(answer.body);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  stop = () => app.close();
} else {
  throw new Error(`--framework must be node or fastify, got ${values.framework}`);
}
process.stdout.write(`READY ${port}\n`);
process.once('SIGTERM', () => {
  void stop()
    .then(() => hub.drain(5_000))
    .then(() => process.exit(0));
});

/** The few fastify calls made here, typed without importing its types (it is not a dependency). */
interface FastifyLike {
  addContentTypeParser(
    types: string[],
    opts: { parseAs: 'buffer' },
    parser: (req: unknown, body: Buffer, done: (err: Error | null, body: Buffer) => void) => void,
  ): void;
  post(
    path: string,
    handler: (req: { headers: Record<string, string | string[] | undefined>; body: unknown }, reply: FastifyReplyLike) => Promise<unknown>,
  ): void;
  listen(o: { host: string; port: number }): Promise<string>;
  close(): Promise<void>;
  server: { address(): unknown };
}
interface FastifyReplyLike {
  header(name: string, value: string): FastifyReplyLike;
  code(status: number): FastifyReplyLike;
  type(t: string): FastifyReplyLike;
  send(body: string): FastifyReplyLike;
}
