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
 * table (src/receive/http/events-intake.ts). Served on node:http: measured faster than fastify
 * for this one route (docs/benchmarks.md, "HTTP ingest").
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
    const handler = requestHandler({ hub: ctx.hub, intake, metrics, log, maxBodyBytes, draining: () => this.draining });
    const listener = await listenHttp({
      addr: this.o.addr,
      handler,
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
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }
}

interface HandlerDeps {
  hub: IntakePort;
  intake: EventsIntake;
  metrics: HttpReceiverMetrics;
  log: Logger;
  maxBodyBytes: number;
  draining: () => boolean;
}

function requestHandler(d: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = process.hrtime.bigint();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const route: HttpRoute = path === HTTP_EVENTS_PATH ? 'events' : path === HTTP_HEALTH_PATH ? 'healthz' : 'other';
    const done = (answer: HttpAnswer, allow?: string): void => {
      send(res, answer, d.draining(), allow);
      d.metrics.record(route, answer.status, Number(process.hrtime.bigint() - started) / 1e9);
    };
    if (route === 'other') {
      req.resume();
      done(refusal('POLKU_ERR_HTTP_NOT_FOUND', `${path} (events are POSTed to ${HTTP_EVENTS_PATH})`));
      return;
    }
    if (route === 'healthz') {
      req.resume();
      if (req.method !== 'GET' && req.method !== 'HEAD')
        done(refusal('POLKU_ERR_HTTP_METHOD_NOT_ALLOWED', `${req.method} (GET)`), 'GET, HEAD');
      else if (d.draining() || d.hub.isClosing) done({ status: 503, body: '{"status":"draining"}', retryAfter: HTTP_RETRY_AFTER_SECONDS });
      else done({ status: 200, body: '{"status":"serving"}' });
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      done(refusal('POLKU_ERR_HTTP_METHOD_NOT_ALLOWED', `${req.method} (POST ${HTTP_EVENTS_PATH})`), 'POST');
      return;
    }
    const type = mediaType(req.headers['content-type']);
    const format = bodyFormatOf(type);
    if (format === undefined) {
      req.resume();
      done(refusal('POLKU_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', `Content-Type "${type}": send application/json or application/x-ndjson`));
      return;
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'gzip' && encoding !== 'identity') {
      req.resume();
      done(refusal('POLKU_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding}": send gzip or none`));
      return;
    }
    const h = req.headers;
    readBody(req, d.maxBodyBytes)
      .then((body) => {
        d.metrics.body(route, body === 'too-large' ? Number(h['content-length'] ?? d.maxBodyBytes + 1) : body.length);
        return d.intake.answer({
          format,
          gzip: encoding === 'gzip',
          body,
          source: one(h['x-polku-source']),
          apiKey: apiKeyOfHeaders(h),
          idempotencyKey: one(h['idempotency-key']),
          traceparent: one(h['traceparent']),
        });
      })
      .then(done)
      .catch((err: unknown) => {
        d.log.error({ err }, 'HTTP request failed');
        if (!res.headersSent) done({ status: 500, body: errorBody('INTERNAL', 'internal error while processing the request') });
        else res.destroy();
      });
  };
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

function send(res: ServerResponse, answer: HttpAnswer, draining: boolean, allow?: string): void {
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(answer.body),
  };
  if (answer.retryAfter !== undefined) headers['Retry-After'] = answer.retryAfter;
  if (allow !== undefined) headers['Allow'] = allow;
  // Draining: the caller should open its next connection to another replica.
  if (draining) headers['Connection'] = 'close';
  res.writeHead(answer.status, headers);
  res.end(answer.body);
}
