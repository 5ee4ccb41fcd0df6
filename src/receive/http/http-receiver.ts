import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { formatAddress, type ListenAddress } from '../../config/env-parsers.js';
import { errorInfo, fillTemplate, type ErrorCode } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import type { ListenerTls } from '../../security/tls.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../../server/connection-guard.js';
import { apiKeyOfHeaders } from '../api-key.js';
import { mediaType, readBody } from '../http-body.js';
import { listenHttp } from '../http-listener.js';
import type { IntakePort, Receiver, ReceiverContext } from '../receiver.js';
import { bodyFormatOf, EventsIntake, type HttpAnswer } from './events-intake.js';
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
 * table (src/receive/http/events-intake.ts). A plain node:http handler (two paths, 404/405/415,
 * the bounded body of http-body.ts, as the OTLP/HTTP port has): fastify served it before and
 * measured no faster for this route, while its module graph cost ~8 MB of every idle gateway with
 * the front door on (docs/benchmarks.md, "Footprint").
 *
 * While the gateway drains, the listener stays open and every request is answered 503 with
 * `Retry-After` and `Connection: close`, so callers move to another replica instead of meeting a
 * refused connection; `close` shuts it.
 */
export class HttpReceiver implements Receiver {
  readonly name = 'http';
  private server: Server | HttpsServer | null = null;
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
    const deps: RouteDeps = { hub: ctx.hub, intake, metrics, log, maxBodyBytes, draining: () => this.draining };
    const listener = await listenHttp({
      addr: this.o.addr,
      handler: (req, res) => route(deps, req, res),
      tls: this.o.tls,
      maxConnections: (this.o.connections ?? DEFAULT_CONNECTION_LIMITS).maxConnections,
      requestTimeoutMs: this.o.requestTimeoutMs ?? DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: HTTP_KEEP_ALIVE_TIMEOUT_MS,
      addrVariable: 'POLKU_HTTP_ADDR',
      what: 'HTTP server',
    });
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
    if (server)
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
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

function routeOf(path: string): HttpRoute {
  return path === HTTP_EVENTS_PATH ? 'events' : path === HTTP_HEALTH_PATH ? 'healthz' : 'other';
}

/**
 * One request: routed by path, then method. An answer that needs no body (404, 405, 415, a
 * refusal before reading) leaves the body unread: node discards it once the answer is sent and
 * keeps the connection. Every answer is counted by route and status class, with its latency.
 */
function route(d: RouteDeps, req: IncomingMessage, res: ServerResponse): void {
  const started = process.hrtime.bigint();
  const path = routePath(req.url ?? '/');
  const at: Answering = { d, res, route: routeOf(path), started };
  try {
    if (at.route === 'events') {
      if (req.method === 'POST') postEvents(at, req);
      else answer(at, refusal('POLKU_ERR_HTTP_METHOD_NOT_ALLOWED', `${req.method} (POST ${HTTP_EVENTS_PATH})`), 'POST');
    } else if (at.route === 'healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        answer(at, refusal('POLKU_ERR_HTTP_METHOD_NOT_ALLOWED', `${req.method} (GET)`), 'GET, HEAD');
      else if (d.draining() || d.hub.isClosing)
        answer(at, { status: 503, body: '{"status":"draining"}', retryAfter: HTTP_RETRY_AFTER_SECONDS });
      else answer(at, { status: 200, body: '{"status":"serving"}' });
    } else {
      answer(at, refusal('POLKU_ERR_HTTP_NOT_FOUND', `${path} (events are POSTed to ${HTTP_EVENTS_PATH})`));
    }
  } catch (err) {
    failed(at, err);
  }
}

/** What an answer needs: where it goes, and what to count it as. */
interface Answering {
  readonly d: RouteDeps;
  readonly res: ServerResponse;
  readonly route: HttpRoute;
  readonly started: bigint;
}

/**
 * `POST /v1/events`. In this order, each before the body is read: a request the caller's key alone
 * refuses (no key, an unknown key, a tenant with an empty bucket) is answered at once, so a tenant
 * flooding past its quota costs no body read or JSON parse and the quiet tenants' requests keep
 * their latency; then the Content-Type (415: a POST without one, or without a body, too), then
 * the Content-Encoding. Then the body is read, bounded by POLKU_HTTP_MAX_BODY_BYTES.
 */
function postEvents(at: Answering, req: IncomingMessage): void {
  const { d } = at;
  const h = req.headers;
  const early = d.hub.refuseBeforeReading?.({
    source: one(h['x-polku-source']) || HTTP_DEFAULT_SOURCE,
    apiKey: apiKeyOfHeaders(h),
    unary: true,
  });
  if (early !== undefined) return answer(at, d.intake.answerRefused(early));
  const format = bodyFormatOf(mediaType(h['content-type']));
  if (format === undefined) return answer(at, unsupportedType(h['content-type']));
  const encoding = (h['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'gzip' && encoding !== 'identity') {
    return answer(at, refusal('POLKU_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding}": send gzip or none`));
  }
  readBody(req, d.maxBodyBytes)
    .then(
      (body) => {
        // Refused by the hub like any unreadable message, so the drop is counted.
        d.metrics.body('events', body === 'too-large' ? Number(h['content-length'] ?? d.maxBodyBytes + 1) : body.length);
        const answered = d.intake.answer({
          format,
          gzip: encoding === 'gzip',
          body,
          source: one(h['x-polku-source']),
          apiKey: apiKeyOfHeaders(h),
          idempotencyKey: one(h['idempotency-key']),
          traceparent: one(h['traceparent']),
        });
        if (answered instanceof Promise)
          answered.then(
            (a) => answer(at, a),
            (err: unknown) => failed(at, err),
          );
        else answer(at, answered);
      },
      // The caller went away while sending its body: there is no one to answer.
      () => undefined,
    )
    .catch((err: unknown) => failed(at, err));
}

/** An answer the route could not make: logged, 500 if the caller is still there. */
function failed(at: Answering, err: unknown): void {
  at.d.log.error({ err }, 'HTTP request failed');
  if (!at.res.headersSent) answer(at, { status: 500, body: errorBody('INTERNAL', 'internal error while processing the request') });
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

/**
 * Sends an answer as JSON. While the gateway drains, with `Connection: close`: the caller should
 * open its next connection to another replica.
 */
function answer(at: Answering, a: HttpAnswer, allow?: string): void {
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(a.body),
  };
  if (a.retryAfter !== undefined) headers['Retry-After'] = String(a.retryAfter);
  if (allow !== undefined) headers['Allow'] = allow;
  if (at.d.draining()) headers['Connection'] = 'close';
  at.res.writeHead(a.status, headers);
  at.res.end(a.body);
  at.d.metrics.record(at.route, a.status, Number(process.hrtime.bigint() - at.started) / 1e9);
}
