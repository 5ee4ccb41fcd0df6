import { Counter, Histogram, type Registry } from 'prom-client';
import { systemClock, systemTimers, type Clock, type Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { DIAL_TLS_OPTION_KEYS, type DialTlsOptions } from '../security/tls.js';
import { resultOfFailures } from './batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { encodeLogsRequest } from './otlp-encode.js';
import { GrpcLogsTransport, HttpLogsTransport, type ExportAnswer, type OtlpTransport } from './otlp-transport.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

const DEFAULT_TIMEOUT_MS = 10_000;
/** Records per Export request; a larger emitter batch is sent as several requests, one after another. */
export const DEFAULT_OTLP_MAX_EXPORT_RECORDS = 4096;
/** Bytes per Export request: gRPC's default receive limit (4 MiB) less room for framing. */
export const DEFAULT_OTLP_MAX_EXPORT_BYTES = 4 * 1024 * 1024 - 64 * 1024;

export type OtlpProtocol = 'grpc' | 'http';

export interface OtlpEmitterOptions {
  /** Default `otlp`. */
  name?: string;
  /** `grpc` (LogsService/Export, default) or `http` (POST `<endpoint>/v1/logs`, protobuf). */
  protocol?: OtlpProtocol;
  /**
   * gRPC: `host:port`, `http://host:port` (plaintext) or `https://host:port` (TLS).
   * HTTP: a base URL (`http://collector:4318`); `/v1/logs` is appended unless it ends with it.
   */
  endpoint: string;
  /** Sent with every request (gRPC metadata or HTTP headers): `authorization`, API keys. */
  headers?: Record<string, string>;
  /** `gzip` compresses each request. Default `none`. */
  compression?: 'gzip' | 'none';
  /** Longest wait for one Export's answer. Default 10 s. */
  timeoutMs?: number;
  /** Records per Export request. Default {@link DEFAULT_OTLP_MAX_EXPORT_RECORDS}. */
  maxExportRecords?: number;
  /**
   * Largest request: a batch encoding past it is sent in halves (an event alone past it fails,
   * not retryable). Default {@link DEFAULT_OTLP_MAX_EXPORT_BYTES}, under the 4 MiB most receivers take.
   */
  maxExportBytes?: number;
  /** TLS to the endpoint: `caFile`, `certFile` + `keyFile` (mTLS), `serverName`. */
  tls?: DialTlsOptions;
}

/** Every key of {@link OtlpEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const OTLP_EMITTER_OPTION_KEYS = optionKeys<OtlpEmitterOptions>({
  name: true,
  protocol: true,
  endpoint: true,
  headers: true,
  compression: true,
  timeoutMs: true,
  maxExportRecords: true,
  maxExportBytes: true,
  tls: true,
});

/** Why `endpoint` cannot be dialled with `protocol` ("…" is not …), or undefined when it can. */
export function checkOtlpEndpoint(protocol: OtlpProtocol, endpoint: string): string | undefined {
  if (typeof endpoint !== 'string' || endpoint === '') return 'is required';
  if (protocol === 'grpc') {
    return /^(https?:\/\/)?[^/\s]+:\d{1,5}\/?$/.test(endpoint)
      ? undefined
      : `"${endpoint}" is not host:port, http://host:port or https://host:port`;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `"${endpoint}" is not a URL (http://host:port or https://host:port, a path may follow)`;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : `"${endpoint}" must start with http:// or https://`;
}

const OUTCOMES = ['success', 'partial', 'retryable', 'failed'] as const;
type Outcome = (typeof OUTCOMES)[number];

/**
 * Exports events as OTLP logs (mapping: src/emit/otlp-encode.ts and the README's "OpenTelemetry
 * (OTLP) out" table), one Export per emitter batch of up to `maxExportRecords` records.
 *
 * The receiver's answer becomes the emit result:
 * - accepted: delivered.
 * - partial success (`rejected_log_records = N`): OTLP says which records were refused by count
 *   only, and that they must not be sent again. So N events fail, not retryable, with the
 *   receiver's `error_message`; they are counted against the LAST N records of the request (in
 *   request order), every other record is delivered. The counts are exact, which events are not.
 * - retryable (gRPC CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS;
 *   RESOURCE_EXHAUSTED with RetryInfo; HTTP 429, 502, 503, 504; timeouts and network errors): the
 *   request's events are retryable, after RetryInfo's delay or `Retry-After` when given. Later
 *   requests of the same batch are not sent and are retryable too.
 * - anything else: the request's events failed, with the status and its message.
 *
 * Metrics: `polku_otlp_emitter_exports_total{emitter,outcome}`,
 * `polku_otlp_emitter_rejected_records_total{emitter}`, `polku_otlp_emitter_export_seconds{emitter}`.
 */
export class OtlpEmitter implements Emitter {
  readonly name: string;
  readonly protocol: OtlpProtocol;
  private readonly transport: OtlpTransport;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private clock: Clock = systemClock;
  private timers: Timers = systemTimers;
  private log: Logger | null = null;
  private metrics: OtlpEmitterMetrics | null = null;
  private lastError: string | null = null;
  private closed = false;

  constructor(options: OtlpEmitterOptions) {
    this.name = options.name ?? 'otlp';
    checkOptionKeys(`OtlpEmitter "${this.name}"`, options, OTLP_EMITTER_OPTION_KEYS);
    checkOptionKeys(`OtlpEmitter "${this.name}"`, options.tls, DIAL_TLS_OPTION_KEYS, 'tls.');
    const owner = `otlp emitter "${this.name}"`;
    const bad = (message: string) => polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: ${message}`);
    this.protocol = options.protocol ?? 'grpc';
    if (this.protocol !== 'grpc' && this.protocol !== 'http') throw bad(`protocol must be grpc or http, got ${String(this.protocol)}`);
    const endpointProblem = checkOtlpEndpoint(this.protocol, options.endpoint);
    if (endpointProblem) throw bad(`endpoint ${endpointProblem}`);
    const compression = options.compression ?? 'none';
    if (compression !== 'gzip' && compression !== 'none') throw bad(`compression must be gzip or none, got ${String(compression)}`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw bad(`timeoutMs must be a positive number, got ${timeoutMs}`);
    this.maxRecords = options.maxExportRecords ?? DEFAULT_OTLP_MAX_EXPORT_RECORDS;
    if (!Number.isInteger(this.maxRecords) || this.maxRecords < 1) {
      throw bad(`maxExportRecords must be a positive integer, got ${this.maxRecords}`);
    }
    this.maxBytes = options.maxExportBytes ?? DEFAULT_OTLP_MAX_EXPORT_BYTES;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1) {
      throw bad(`maxExportBytes must be a positive integer, got ${this.maxBytes}`);
    }
    const t = {
      owner,
      endpoint: options.endpoint,
      headers: { ...options.headers },
      compression,
      timeoutMs,
      tls: options.tls,
      timers: () => this.timers,
    } as const;
    this.transport = this.protocol === 'grpc' ? new GrpcLogsTransport(t) : new HttpLogsTransport(t);
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.timers = ctx.timers;
    this.log = ctx.logger.child({ component: 'otlp-emitter', emitter: this.name });
    this.metrics = OtlpEmitterMetrics.in(ctx.registry);
    for (const o of OUTCOMES) this.metrics.exports.labels(this.name, o).inc(0);
    this.metrics.rejected.labels(this.name).inc(0);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.closed) return EmitResults.retryable(`otlp emitter "${this.name}" is shut down`);
    const n = events.length;
    if (n === 0) return EmitResults.success();
    const failures: EventFailure[] = [];
    let retryAfterMs: number | undefined;
    let stopped: string | null = null;
    // Ranges still to send, first on top: record-bounded to start with, halved while a request
    // encodes past maxExportBytes (receivers refuse large messages: 4 MiB is gRPC's default).
    const ranges: Array<[number, number]> = [];
    for (let from = Math.floor((n - 1) / this.maxRecords) * this.maxRecords; from >= 0; from -= this.maxRecords) {
      ranges.push([from, Math.min(n, from + this.maxRecords)]);
    }
    while (ranges.length > 0) {
      const [from, to] = ranges.pop()!;
      if (stopped !== null) {
        for (let i = from; i < to; i++) failures.push({ index: i, retryable: true, error: stopped });
        continue;
      }
      const { bytes, order } = encodeLogsRequest(events, from, to);
      if (bytes.length > this.maxBytes) {
        if (to - from > 1) {
          const mid = from + Math.ceil((to - from) / 2);
          ranges.push([mid, to], [from, mid]);
        } else {
          const error = `the event encodes to ${bytes.length} bytes, over maxExportBytes (${this.maxBytes})`;
          failures.push({ index: from, retryable: false, error });
          this.metrics?.exports.labels(this.name, 'failed').inc();
        }
        continue;
      }
      const started = this.clock.monotonicMs();
      const answer = await this.export(bytes);
      this.metrics?.seconds.labels(this.name).observe((this.clock.monotonicMs() - started) / 1000);
      const outcome = this.apply(answer, order, failures);
      this.metrics?.exports.labels(this.name, outcome).inc();
      if (answer.kind === 'retryable') {
        stopped = `not sent: an earlier request of the batch was refused (${answer.error})`;
        retryAfterMs = answer.retryAfterMs;
      }
    }
    const result = failures.length === 0 ? EmitResults.success() : resultOfFailures(n, failures, retryAfterMs);
    this.lastError = result.status === 'retryable' || result.status === 'failed' ? result.error : null;
    return result;
  }

  /** Unhealthy, with the reason, while the last batch was wholly retryable or failed. */
  health(): EmitterHealth {
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  /** The collector is reachable: the gRPC channel connects, or an HTTP request is answered. */
  probe(signal: AbortSignal): Promise<ProbeResult> {
    return this.transport.probe(signal);
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }

  private async export(bytes: Uint8Array): Promise<ExportAnswer> {
    try {
      return await this.transport.export(bytes);
    } catch (err) {
      return { kind: 'retryable', error: `OTLP export failed: ${(err as Error).message}` };
    }
  }

  /** Adds the failures of one request (its records' batch indices in request order) and names the outcome. */
  private apply(answer: ExportAnswer, order: readonly number[], failures: EventFailure[]): Outcome {
    switch (answer.kind) {
      case 'ok': {
        const rejected = Math.min(answer.partial.rejected, order.length);
        if (rejected <= 0) {
          if (answer.partial.message !== '') this.log?.warn({ message: answer.partial.message }, 'OTLP receiver warned');
          return 'success';
        }
        this.metrics?.rejected.labels(this.name).inc(rejected);
        const error = `OTLP partial success: ${rejected} of ${order.length} log records rejected${answer.partial.message ? `: ${answer.partial.message}` : ''}`;
        for (let k = order.length - rejected; k < order.length; k++) failures.push({ index: order[k]!, retryable: false, error });
        return 'partial';
      }
      case 'retryable':
        for (const i of order) failures.push({ index: i, retryable: true, error: answer.error });
        return 'retryable';
      case 'failed':
        for (const i of order) failures.push({ index: i, retryable: false, error: answer.error });
        return 'failed';
    }
  }
}

/** Metrics shared by every OtlpEmitter of one registry (labelled by emitter). */
class OtlpEmitterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, OtlpEmitterMetrics>();
  readonly exports: Counter<'emitter' | 'outcome'>;
  readonly rejected: Counter<'emitter'>;
  readonly seconds: Histogram<'emitter'>;

  static in(registry: Registry): OtlpEmitterMetrics {
    let m = OtlpEmitterMetrics.byRegistry.get(registry);
    if (!m) OtlpEmitterMetrics.byRegistry.set(registry, (m = new OtlpEmitterMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    this.exports = new Counter({
      name: 'polku_otlp_emitter_exports_total',
      help: 'OTLP Export requests, by outcome (success, partial, retryable, failed)',
      labelNames: ['emitter', 'outcome'],
      registers: [registry],
    });
    this.rejected = new Counter({
      name: 'polku_otlp_emitter_rejected_records_total',
      help: 'Log records the OTLP receiver refused through partial success',
      labelNames: ['emitter'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'polku_otlp_emitter_export_seconds',
      help: 'Time from sending an Export request to its answer',
      labelNames: ['emitter'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }
}
