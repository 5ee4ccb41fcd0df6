import http from 'node:http';
import https from 'node:https';
import { Counter, Histogram, type Registry } from 'prom-client';
import { systemClock, systemTimers, type Clock, type Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { CertificateFiles, DIAL_TLS_OPTION_KEYS, type DialTlsOptions } from '../security/tls.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { httpStatus, httpVerdict, probeFailure } from './probe.js';
import { eventToJson } from './event-json.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/** One batch is in flight per emitter, so one socket is the steady state; a few cover a socket being torn down. */
const MAX_SOCKETS = 4;
/** Response bytes kept; a failure list for a large batch fits many times over, anything longer is not one. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Response bytes quoted in an error. */
const ERROR_BODY_BYTES = 200;
/** A receiver asking for a longer pause than this is capped, so one answer cannot park the queue for days. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

const OUTCOMES = ['success', 'partial', 'retryable', 'failed', 'timeout', 'network_error'] as const;
type Outcome = (typeof OUTCOMES)[number];

export interface WebhookEmitterOptions {
  /** Default `webhook`. */
  name?: string;
  /** Where batches go; `http:` or `https:`. */
  url: string;
  /** Extra request headers (authorization, for example); they cannot replace the ones this emitter sets. */
  headers?: Record<string, string>;
  /** Whole request, from sending to the last byte of the answer, on the hub's timers. Default 10 s. */
  timeoutMs?: number;
  /** Default `POST`. */
  method?: 'POST' | 'PUT';
  /**
   * For an `https:` url: `caFile` verifies the server (default: the system's roots), `certFile` +
   * `keyFile` are presented to it (mTLS), `serverName` is the name its certificate must carry when
   * it is not the url's host. Files are read when the emitter is built (a bad one throws) and
   * re-read every 5 s; rotated ones are used for new connections.
   */
  tls?: DialTlsOptions;
}

/** Every key of {@link WebhookEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const WEBHOOK_EMITTER_OPTION_KEYS = optionKeys<WebhookEmitterOptions>({
  name: true,
  url: true,
  headers: true,
  timeoutMs: true,
  method: true,
  tls: true,
});

/** What came back for one request, before it is judged. */
type Answer =
  | { kind: 'response'; status: number; headers: http.IncomingHttpHeaders; body: Buffer }
  | { kind: 'timeout' }
  | { kind: 'network'; error: string };

/**
 * Sends each batch as one HTTP request:
 *
 * ```http
 * POST /hook HTTP/1.1
 * Content-Type: application/json
 * Polku-Batch-Size: 2
 *
 * {"events":[<eventToJson(event)>, <eventToJson(event)>]}
 * ```
 *
 * Connections come from a keep-alive pool and are reused across batches.
 *
 * The answer decides the result:
 * - 2xx: delivered. A receiver may accept part of a batch by answering 200 or 207 with
 *   `{"failed":[{"index":3,"retryable":true,"error":"..."}]}` (`index` into the batch's `events`);
 *   the listed events failed (only retryable ones are sent again), every other one was delivered.
 *   Entries without an integer `index` inside the batch are ignored; `retryable` defaults to false.
 * - 429 and 5xx: retryable, after `Retry-After` (seconds or an HTTP date) when given, capped at 5 min.
 * - any other status (4xx, and 3xx: redirects are not followed): failed; the error quotes the status
 *   and the first 200 bytes of the body.
 * - no answer within `timeoutMs`, a refused or reset connection: retryable.
 *
 * Metrics: `polku_webhook_requests_total{emitter,outcome}` and `polku_webhook_request_seconds{emitter}`.
 */
export class WebhookEmitter implements Emitter {
  readonly name: string;
  private readonly url: URL;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly method: 'POST' | 'PUT';
  private agent: http.Agent;
  private stopWatching: (() => void) | undefined;
  private readonly transport: typeof http | typeof https;
  private clock: Clock = systemClock;
  private timers: Timers = systemTimers;
  private log: Logger | null = null;
  private requests: Map<Outcome, Counter.Internal> | null = null;
  private durations: Histogram.Internal<'emitter'> | null = null;
  /** Why the last batch failed; null while the last one went through. */
  private lastError: string | null = null;
  private closed = false;

  constructor(options: WebhookEmitterOptions) {
    this.name = options.name ?? 'webhook';
    checkOptionKeys(`WebhookEmitter "${this.name}"`, options, WEBHOOK_EMITTER_OPTION_KEYS);
    checkOptionKeys(`WebhookEmitter "${this.name}"`, options.tls, DIAL_TLS_OPTION_KEYS, 'tls.');
    this.url = parseUrl(this.name, options.url);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `webhook "${this.name}": timeoutMs must be a positive number, got ${this.timeoutMs}`);
    }
    this.method = options.method ?? 'POST';
    for (const [key, value] of Object.entries(options.headers ?? {})) {
      try {
        http.validateHeaderName(key);
        http.validateHeaderValue(key, value);
      } catch (err) {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `webhook "${this.name}": header ${JSON.stringify(key)}: ${(err as Error).message}`);
      }
    }
    this.headers = { ...options.headers };
    const secure = this.url.protocol === 'https:';
    this.transport = secure ? https : http;
    if (options.tls !== undefined && !secure) {
      throw polkuError(
        'POLKU_ERR_PIPELINE_INVALID',
        `webhook "${this.name}": tls is set but the url is ${this.url.protocol}//: use https://`,
      );
    }
    if (options.tls === undefined) {
      this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: MAX_SOCKETS });
    } else {
      const tls = options.tls;
      const files = new CertificateFiles(
        tls,
        {
          cert: `webhook "${this.name}": tls.certFile`,
          key: `webhook "${this.name}": tls.keyFile`,
          ca: `webhook "${this.name}": tls.caFile`,
        },
        'POLKU_ERR_PIPELINE_INVALID',
      );
      const agent = (): https.Agent =>
        new https.Agent({
          keepAlive: true,
          maxSockets: MAX_SOCKETS,
          ...files.secureContextOptions(),
          ...(tls.serverName ? { servername: tls.serverName } : {}),
        });
      this.agent = agent();
      // A rotation: new connections use the new files; the old agent's requests end within timeoutMs.
      this.stopWatching = files.onChange(() => {
        const old = this.agent;
        this.agent = agent();
        const t = this.timers.setTimeout(() => old.destroy(), this.timeoutMs);
        if (typeof t === 'object' && 'unref' in t) t.unref?.();
      });
    }
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.timers = ctx.timers;
    this.log = ctx.logger.child({ component: 'webhook-emitter', emitter: this.name });
    const counter = metric(
      ctx.registry,
      'polku_webhook_requests_total',
      (registers) =>
        new Counter({
          name: 'polku_webhook_requests_total',
          help: 'Webhook requests, by outcome',
          labelNames: ['emitter', 'outcome'],
          registers,
        }),
    );
    const histogram = metric(
      ctx.registry,
      'polku_webhook_request_seconds',
      (registers) =>
        new Histogram({ name: 'polku_webhook_request_seconds', help: 'Webhook request duration', labelNames: ['emitter'], registers }),
    );
    // Every series exists from the start, so a dashboard sees zeros rather than gaps. `labels()`
    // alone does not create one in prom-client; `inc(0)` and `zero()` do.
    this.requests = new Map(OUTCOMES.map((o) => [o, counter.labels(this.name, o)]));
    for (const child of this.requests.values()) child.inc(0);
    histogram.zero({ emitter: this.name });
    this.durations = histogram.labels(this.name);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.closed) return EmitResults.retryable(`webhook "${this.name}" is shut down`);
    if (events.length === 0) return EmitResults.success();
    const started = this.clock.monotonicMs();
    let outcome: Outcome;
    let result: EmitResult;
    try {
      const body = Buffer.from(JSON.stringify({ events: events.map(eventToJson) }));
      const answer = await this.send(body, events.length);
      [outcome, result] = this.judge(answer, events.length);
    } catch (err) {
      // Nothing above should throw; if it does, the batch is kept rather than lost.
      [outcome, result] = ['network_error', EmitResults.retryable(`webhook request failed: ${(err as Error).message}`)];
    }
    this.durations?.observe((this.clock.monotonicMs() - started) / 1000);
    this.requests?.get(outcome)!.inc();
    this.lastError = result.status === 'retryable' || result.status === 'failed' ? result.error : null;
    return result;
  }

  /** Unhealthy, with the reason, while the last batch was retryable or failed; a partial answer shows the receiver works. */
  health(): EmitterHealth {
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  /**
   * One HEAD request, with the emitter's headers and TLS, and no event: any HTTP answer means the
   * server is reachable, except 401/403, which refuse the credentials the batches will carry.
   */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    const target = `${this.url.origin}${this.url.pathname}`;
    try {
      const status = await httpStatus(this.transport, this.url, { method: 'HEAD', headers: this.headers, agent: this.agent, signal });
      return httpVerdict(target, status, 'check the authorization header (headers) or the client certificate (tls)');
    } catch (err) {
      return probeFailure(target, err, signal);
    }
  }

  /** Closes pooled connections; later batches are refused as retryable. */
  async shutdown(): Promise<void> {
    this.closed = true;
    this.stopWatching?.();
    this.agent.destroy();
  }

  private send(body: Buffer, count: number): Promise<Answer> {
    return new Promise((resolve) => {
      let req: http.ClientRequest | undefined;
      const timer = this.timers.setTimeout(() => {
        finish({ kind: 'timeout' });
        req?.destroy(); // the socket is in an unknown state: never give it back to the pool
      }, this.timeoutMs);
      let settled = false;
      const finish = (answer: Answer): void => {
        if (settled) return;
        settled = true;
        this.timers.clearTimeout(timer);
        resolve(answer);
      };
      const headers = {
        ...this.headers,
        'Content-Type': 'application/json',
        'Content-Length': String(body.length),
        'Polku-Batch-Size': String(count),
      };
      try {
        req = this.transport.request(this.url, { method: this.method, agent: this.agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          // Read to the end even past the cap: a fully read response frees the socket for the next batch.
          res.on('data', (chunk: Buffer) => {
            if (kept < MAX_RESPONSE_BYTES) chunks.push(chunk);
            kept += chunk.length;
          });
          res.on('end', () => finish({ kind: 'response', status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (err) => finish({ kind: 'network', error: describe(err) }));
          // 'end' comes first when the body is whole; a close without it is a cut connection.
          res.on('close', () => finish({ kind: 'network', error: 'connection closed before the response was complete' }));
        });
        req.on('error', (err) => finish({ kind: 'network', error: describe(err) }));
        req.end(body);
      } catch (err) {
        finish({ kind: 'network', error: describe(err as Error) });
      }
    });
  }

  private judge(answer: Answer, count: number): [Outcome, EmitResult] {
    if (answer.kind === 'timeout') return ['timeout', EmitResults.retryable(`webhook timed out after ${this.timeoutMs} ms`)];
    if (answer.kind === 'network') return ['network_error', EmitResults.retryable(`webhook connection failed: ${answer.error}`)];
    const { status, headers, body } = answer;
    const retryAfterMs = parseRetryAfter(headers['retry-after'], this.clock.nowMs());
    if (status >= 200 && status < 300) {
      const failures = status === 200 || status === 207 ? this.failureList(body, count) : [];
      if (failures.length === 0) return ['success', EmitResults.success()];
      return ['partial', EmitResults.partial(failures, retryAfterMs)];
    }
    const error = `webhook answered HTTP ${status}: ${body.subarray(0, ERROR_BODY_BYTES).toString('utf8')}`;
    if (status === 429 || status >= 500) return ['retryable', EmitResults.retryable(error, retryAfterMs)];
    return ['failed', EmitResults.failed(error)];
  }

  /** The failures a 200/207 body lists; none when the body is not a failure list. */
  private failureList(body: Buffer, count: number): EventFailure[] {
    if (body.length === 0 || body.length >= MAX_RESPONSE_BYTES) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return []; // any other 2xx body is the receiver's business
    }
    const failed = (parsed as { failed?: unknown } | null)?.failed;
    if (!Array.isArray(failed)) return [];
    const failures: EventFailure[] = [];
    for (const entry of failed as Array<Record<string, unknown> | null>) {
      const index = entry?.['index'];
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count) {
        this.log?.warn({ entry }, 'webhook failure entry without a valid index; ignored');
        continue;
      }
      const error = entry!['error'];
      failures.push({
        index,
        retryable: entry!['retryable'] === true,
        error: typeof error === 'string' ? error : 'refused by the webhook',
      });
    }
    return failures;
  }
}

function parseUrl(name: string, url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `webhook "${name}": url ${JSON.stringify(url)} is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `webhook "${name}": url must start with http:// or https://, got ${parsed.protocol}//`);
  }
  return parsed;
}

/** `Retry-After` as milliseconds from now: delay-seconds or an HTTP date; undefined when absent or unreadable. */
function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - nowMs);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** Several webhook emitters share one registry: the first registers each metric, the others reuse it. */
function metric<T>(registry: Registry, name: string, create: (registers: Registry[]) => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create([registry]);
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}
