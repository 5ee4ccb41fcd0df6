import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type HTTPMethods } from 'fastify';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { formatAddress, type ListenAddress } from '../../config/env-parsers.js';
import { errorInfo, fillTemplate, type ErrorCode } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import type { ListenerTls } from '../../security/tls.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../../server/connection-guard.js';
import { apiKeyOfHeaders } from '../api-key.js';
import { mediaType } from '../http-body.js';
import { bindHttp, createHttpListener, type HttpListener, type HttpListenerOptions } from '../http-listener.js';
import type { IntakePort, Receiver, ReceiverContext } from '../receiver.js';
import { bodyFormatOf, EVENT_MEDIA_TYPES, EventsIntake, type BodyFormat, type HttpAnswer } from './events-intake.js';
import { HttpReceiverMetrics, type HttpRoute } from './http-metrics.js';
import {
  DEFAULT_HTTP_MAX_BODY_BYTES,
  DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
  HTTP_KEEP_ALIVE_TIMEOUT_MS,
  HTTP_DEFAULT_SOURCE,
  HTTP_RETRY_AFTER_SECONDS,
  type HttpSettings,
} from './http-settings.js';

export type { HttpSettings } from './http-settings.js';

/** The events path. */
export const HTTP_EVENTS_PATH = '/v1/events';
/** The front door's own health: 200 while it takes events, 503 while the gateway drains. */
export const HTTP_HEALTH_PATH = '/healthz';

export interface HttpReceiverOptions extends HttpSettings {
  addr: ListenAddress;
  /** The gateway's listener TLS (POLKU_TLS_*): the HTTP port serves it too. */
  tls?: ListenerTls | undefined;
  /** The gRPC port's connection budget; its `maxConnections` bounds this port on its own. */
  connections?: ConnectionLimits | undefined;
}

/**
 * PulseGate's front door: `POST /v1/events` on a port of its own (POLKU_HTTP_ADDR, default 8080),
 * for any service that speaks HTTP and JSON. A body is one event object, an array of them, or
 * NDJSON (Content-Type decides), optionally gzip; the events are POLKU's JSON event format, read
 * by the JSON ingestor. The answer is the hub's Ack as JSON, its status from the error catalogue's
 * table (src/receive/http/events-intake.ts). Served by fastify (routing, 404/405/415, body limit,
 * hooks): node:http alone measured no clearly faster for this route (docs/benchmarks.md, "HTTP
 * ingest"), so the well-kept framework wins.
 *
 * While the gateway drains, the listener stays open and every request is answered 503 with
 * `Retry-After` and `Connection: close`, so callers move to another replica instead of meeting a
 * refused connection; `close` shuts it.
 */
export class HttpReceiver implements Receiver {
  readonly name = 'http';
  private server: Server | HttpsServer | null = null;
  private app: FastifyInstance | null = null;
  private stopWatching: (() => void) | undefined;
  private bound = 0;
  private draining = false;

  constructor(private readonly o: HttpReceiverOptions) {}

  /** The bound port, once started. */
  get port(): number {
    return this.bound;
  }

  async start(ctx: ReceiverContext): Promise<void> {
    const log = ctx.logger.child({ component: 'http' });
    const metrics = new HttpReceiverMetrics(ctx.registry);
    const maxBodyBytes = this.o.maxBodyBytes ?? DEFAULT_HTTP_MAX_BODY_BYTES;
    const intake = new EventsIntake(ctx.hub, metrics, maxBodyBytes);
    const options: HttpListenerOptions = {
      addr: this.o.addr,
      handler: () => undefined,
      tls: this.o.tls,
      maxConnections: (this.o.connections ?? DEFAULT_CONNECTION_LIMITS).maxConnections,
      requestTimeoutMs: this.o.requestTimeoutMs ?? DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: HTTP_KEEP_ALIVE_TIMEOUT_MS,
      addrVariable: 'POLKU_HTTP_ADDR',
      what: 'HTTP server',
    };
    let made: Omit<HttpListener, 'port'> | undefined;
    const app = Fastify({
      // The server is ours, made as every POLKU listener is (TLS, timeouts, connection bound).
      serverFactory: (handler) => {
        made = createHttpListener({ ...options, handler });
        return made.server as Server;
      },
      bodyLimit: maxBodyBytes,
      exposeHeadRoutes: false,
      logger: false,
      // Answers while draining are the route's (503 from the hub), not fastify's.
      return503OnClosing: false,
    });
    registerRoutes(app, { hub: ctx.hub, intake, metrics, log, maxBodyBytes, draining: () => this.draining });
    await app.ready();
    this.app = app;
    const listener = await bindHttp(made!, options);
    this.server = listener.server;
    this.stopWatching = listener.stopWatching;
    this.bound = listener.port;
    log.info({ http: formatAddress({ ...this.o.addr, port: this.bound }), maxBodyBytes }, 'http listening');
  }

  stopIntake(): void {
    // Idle keep-alive connections are left open: closing one races a request the caller is
    // writing on it (a reset instead of an answer). Their next request is answered 503 with
    // `Connection: close`.
    this.draining = true;
  }

  async close(): Promise<void> {
    this.draining = true;
    this.stopWatching?.();
    this.stopWatching = undefined;
    const server = this.server;
    this.server = null;
    const app = this.app;
    this.app = null;
    // The server was bound by bindHttp, not by app.listen, so fastify's close does not close it:
    // both are closed here (an embedding program would otherwise keep running on the port).
    await Promise.all([
      app?.close(),
      server &&
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    ]);
  }
}

interface RouteDeps {
  hub: IntakePort;
  intake: EventsIntake;
  metrics: HttpReceiverMetrics;
  log: Logger;
  maxBodyBytes: number;
  draining: () => boolean;
}

/** Every method but the route's own: answered 405 with `Allow`. */
const METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
/** Started-at of each request, for the latency histogram (a symbol: no property clash with fastify's). */
const STARTED = Symbol('polku.http.started');
type Timed = FastifyRequest & { [STARTED]?: bigint };

function routeOf(url: string): HttpRoute {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return path === HTTP_EVENTS_PATH ? 'events' : path === HTTP_HEALTH_PATH ? 'healthz' : 'other';
}

/**
 * The routes on a fastify instance whose server is ours (`serverFactory`: TLS, timeouts and the
 * connection bound as every POLKU listener has them). Bodies are taken as bytes (`parseAs:
 * 'buffer'`, bounded by fastify's `bodyLimit`) and read by the route, never by a JSON parser of
 * fastify's: the JSON ingestor reads them, with its own limits and per-event errors.
 */
function registerRoutes(app: FastifyInstance, d: RouteDeps): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(EVENT_MEDIA_TYPES, { parseAs: 'buffer', bodyLimit: d.maxBodyBytes }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', (req: Timed, _reply, done) => {
    req[STARTED] = process.hrtime.bigint();
    done();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    // Draining: the caller should open its next connection to another replica.
    if (d.draining()) void reply.header('Connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (req: Timed, reply, done) => {
    const started = req[STARTED];
    d.metrics.record(routeOf(req.url), reply.statusCode, started === undefined ? 0 : Number(process.hrtime.bigint() - started) / 1e9);
    done();
  });

  // Before the body is read: a request the caller's key alone refuses (no key, an unknown key, a
  // tenant with an empty bucket) is answered at once, so a tenant flooding past its quota costs
  // no body read or JSON parse, and the quiet tenants' requests keep their latency. Node discards
  // the unread body and keeps the connection.
  const early = d.hub.refuseBeforeReading?.bind(d.hub);
  const onRequest = early
    ? (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
        const h = req.headers;
        const ack = early({ source: one(h['x-polku-source']) || HTTP_DEFAULT_SOURCE, apiKey: apiKeyOfHeaders(h), unary: true });
        if (ack === undefined) return done();
        // Answered from the hook: fastify skips parsing and the handler (done is not called).
        void send(reply, d.intake.answerRefused(ack));
      }
    : undefined;
  app.post(HTTP_EVENTS_PATH, { ...(onRequest ? { onRequest } : {}) }, (req, reply) => {
    const h = req.headers;
    const encoding = (h['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'gzip' && encoding !== 'identity') {
      return send(reply, refusal('POLKU_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding}": send gzip or none`));
    }
    // A POST without a body (or Content-Type) reaches here with none: 415, as a wrong type does.
    const format = bodyFormatOf(mediaType(h['content-type']));
    if (format === undefined || !Buffer.isBuffer(req.body)) return send(reply, unsupportedType(h['content-type']));
    d.metrics.body('events', req.body.length);
    return answerEvents(d, req, reply, req.body, format, encoding === 'gzip');
  });
  app.route({
    method: METHODS.filter((m) => m !== 'POST'),
    url: HTTP_EVENTS_PATH,
    handler: (req, reply) => send(reply, refusal('POLKU_ERR_HTTP_METHOD_NOT_ALLOWED', `${req.method} (POST ${HTTP_EVENTS_PATH})`), 'POST'),
  });
  app.route({
    method: ['GET', 'HEAD'],
    url: HTTP_HEALTH_PATH,
    handler: (_req, reply) =>
      d.draining() || d.hub.isClosing
        ? send(reply, { status: 503, body: '{"status":"draining"}', retryAfter: HTTP_RETRY_AFTER_SECONDS })
        : send(reply, { status: 200, body: '{"status":"serving"}' }),
  });
  app.route({
    method: METHODS.filter((m) => m !== 'GET' && m !== 'HEAD'),
    url: HTTP_HEALTH_PATH,
    handler: (req, reply) => send(reply, refusal('POLKU_ERR_HTTP_METHOD_NOT_ALLOWED', `${req.method} (GET)`), 'GET, HEAD'),
  });
  app.setNotFoundHandler((req, reply) =>
    send(reply, refusal('POLKU_ERR_HTTP_NOT_FOUND', `${routePath(req.url)} (events are POSTed to ${HTTP_EVENTS_PATH})`)),
  );
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(reply, unsupportedType(req.headers['content-type']));
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && routeOf(req.url) === 'events') {
      // Refused by the hub like any unreadable message, so the drop is counted.
      const format = bodyFormatOf(mediaType(req.headers['content-type'])) ?? 'json';
      d.metrics.body('events', Number(req.headers['content-length'] ?? d.maxBodyBytes + 1));
      return answerEvents(d, req, reply, 'too-large', format, false);
    }
    d.log.error({ err }, 'HTTP request failed');
    return send(reply, { status: 500, body: errorBody('INTERNAL', 'internal error while processing the request') });
  });
}

function answerEvents(
  d: RouteDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  body: Buffer | 'too-large',
  format: BodyFormat,
  gzip: boolean,
): FastifyReply | Promise<FastifyReply> {
  const h = req.headers;
  const answer = d.intake.answer({
    format,
    gzip,
    body,
    source: one(h['x-polku-source']),
    apiKey: apiKeyOfHeaders(h),
    idempotencyKey: one(h['idempotency-key']),
    traceparent: one(h['traceparent']),
  });
  return answer instanceof Promise ? answer.then((a) => send(reply, a)) : send(reply, answer);
}

function unsupportedType(contentType: string | undefined): HttpAnswer {
  return refusal(
    'POLKU_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
    `Content-Type "${mediaType(contentType)}": send application/json or application/x-ndjson`,
  );
}

function routePath(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** A header's value; node joins repeated custom headers with ", ", which is kept as sent. */
function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A request the front door does not route, in the events answer's shape. */
function refusal(code: ErrorCode, ...args: unknown[]): HttpAnswer {
  const { message } = fillTemplate(code, args);
  return { status: errorInfo(code).http, body: errorBody(code, message) };
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ accepted: [], errors: [{ code, message }] });
}

function send(reply: FastifyReply, answer: HttpAnswer, allow?: string): FastifyReply {
  if (answer.retryAfter !== undefined) void reply.header('Retry-After', String(answer.retryAfter));
  if (allow !== undefined) void reply.header('Allow', allow);
  return reply.code(answer.status).type('application/json').send(answer.body);
}
