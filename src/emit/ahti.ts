import { Metadata, status as GrpcStatus, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemClock, systemTimers, type Clock, type Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import { AhtiServiceClient, type AhtiAck, type AhtiEventBatch } from '../gen/ahti/v1/events.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { Backoff } from '../resilience/backoff.js';
import { DIAL_TLS_OPTION_KEYS, dialCredentials, PLAINTEXT_DIAL, type DialTlsOptions } from '../security/tls.js';
import { positionsById, resultOfFailures } from './batch-split.js';
import { toAhtiEvent } from './ahti-map.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { grpcProbe } from './probe.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

const DEFAULT_ACK_TIMEOUT_MS = 10_000;
const DEFAULT_RECONNECT_INITIAL_MS = 100;
const DEFAULT_RECONNECT_MAX_MS = 5_000;
/** Longest wait for the stream to close gracefully at shutdown. */
const SHUTDOWN_GRACE_MS = 1_000;

export interface AhtiEmitterOptions {
  /** Default `ahti`. */
  name?: string;
  /** AHTI's gRPC address: `host:port`, `http://host:port` (plaintext) or `https://host:port` (TLS). */
  endpoint: string;
  /** TLS: `caFile`, `certFile` + `keyFile` (mTLS), `serverName`. */
  tls?: DialTlsOptions;
  /** gRPC metadata sent when the stream opens (an `authorization` token, say). */
  headers?: Record<string, string>;
  /** Longest wait for a batch's AhtiAck; then the batch is retryable and the stream is reset. Default 10 s. */
  ackTimeoutMs?: number;
  /** Backoff between reconnects after the stream failed: doubling from `initialMs` to `maxMs`. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /**
   * Whether events an AhtiAck refuses (`success: false`) are sent again. AHTI gives no reason
   * code, and its refusals are mostly passing (storage, load), so the default is true; the
   * delivery queue's retry limit ends a refusal that does not pass.
   */
  retryRefused?: boolean;
}

/** Every key of {@link AhtiEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const AHTI_EMITTER_OPTION_KEYS = optionKeys<AhtiEmitterOptions>({
  name: true,
  endpoint: true,
  tls: true,
  headers: true,
  ackTimeoutMs: true,
  reconnect: true,
  retryRefused: true,
});
const RECONNECT_OPTION_KEYS = optionKeys<NonNullable<AhtiEmitterOptions['reconnect']>>({ initialMs: true, maxMs: true });

type Outcome = 'success' | 'partial' | 'failed' | 'retryable' | 'timeout' | 'stream_error';
const OUTCOMES: readonly Outcome[] = ['success', 'partial', 'failed', 'retryable', 'timeout', 'stream_error'];

type Answer = { kind: 'ack'; ack: AhtiAck } | { kind: 'broken'; error: string } | { kind: 'timeout' };

/**
 * Streams batches to AHTI: one long-lived `ahti.v1.AhtiService/StreamEvents` call, opened on the
 * first batch, each batch one `AhtiEventBatch` (events mapped by {@link toAhtiEvent}), answered by
 * one `AhtiAck`. With one batch in flight per emitter, an ack always answers the batch awaiting it.
 *
 * - An event is delivered when an ack with `success: true` lists its id. Events an ack does not
 *   list are retryable ("not acknowledged").
 * - `success: false` refuses the ids it lists (all of the batch when it lists none) with its
 *   `error`; retryable unless `retryRefused` is false.
 * - No ack within `ackTimeoutMs`: the batch is retryable and the stream is reset (a late ack would
 *   answer the next batch).
 * - The stream fails or ends: the batch awaiting an ack is retryable; the next batch opens a new
 *   stream once the backoff (src/resilience/backoff.ts) has passed, and until then batches are
 *   answered retryable with the time left as `retryAfterMs`.
 *
 * Delivery is at least once: a batch whose ack was lost is sent again, with the same event ids.
 */
export class AhtiEmitter implements Emitter {
  readonly name: string;
  private readonly client: AhtiServiceClient;
  private readonly metadata: Metadata;
  private readonly ackTimeoutMs: number;
  private readonly retryRefused: boolean;
  private readonly backoff: Backoff;
  private stream: ClientDuplexStream<AhtiEventBatch, AhtiAck> | null = null;
  private pending: ((answer: Answer) => void) | null = null;
  private downUntilMs = 0;
  private lastError: string | null = null;
  private clock: Clock = systemClock;
  private timers: Timers = systemTimers;
  private log: Logger | null = null;
  private metrics: AhtiEmitterMetrics | null = null;
  private closed = false;

  /** As given (`host:port` or with its scheme), for probe. */
  private readonly endpoint: string;

  constructor(options: AhtiEmitterOptions) {
    this.name = options.name ?? 'ahti';
    checkOptionKeys(`AhtiEmitter "${this.name}"`, options, AHTI_EMITTER_OPTION_KEYS);
    checkOptionKeys(`AhtiEmitter "${this.name}"`, options.tls, DIAL_TLS_OPTION_KEYS, 'tls.');
    checkOptionKeys(`AhtiEmitter "${this.name}"`, options.reconnect, RECONNECT_OPTION_KEYS, 'reconnect.');
    const owner = `ahti emitter "${this.name}"`;
    const bad = (message: string) => polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: ${message}`);
    const endpoint = options.endpoint;
    if (typeof endpoint !== 'string' || !/^(https?:\/\/)?[^/\s]+:\d{1,5}$/.test(endpoint)) {
      throw bad(`endpoint "${String(endpoint)}" is not host:port, http://host:port or https://host:port`);
    }
    this.ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    if (!(this.ackTimeoutMs > 0) || !Number.isFinite(this.ackTimeoutMs)) {
      throw bad(`ackTimeoutMs must be a positive number, got ${this.ackTimeoutMs}`);
    }
    const initialMs = options.reconnect?.initialMs ?? DEFAULT_RECONNECT_INITIAL_MS;
    const maxMs = options.reconnect?.maxMs ?? DEFAULT_RECONNECT_MAX_MS;
    if (!(initialMs > 0) || !(maxMs >= initialMs)) throw bad(`reconnect needs 0 < initialMs <= maxMs, got ${initialMs} and ${maxMs}`);
    this.backoff = new Backoff({ initialMs, maxMs });
    this.retryRefused = options.retryRefused ?? true;
    if (options.tls !== undefined && endpoint.startsWith('http://'))
      throw bad('tls is set but the endpoint is http://: use host:port or https://');
    const secure = options.tls !== undefined || endpoint.startsWith('https://');
    const dial = secure ? dialCredentials(owner, options.tls ?? {}) : PLAINTEXT_DIAL;
    this.endpoint = endpoint;
    this.client = new AhtiServiceClient(endpoint.replace(/^https?:\/\//, ''), dial.credentials, {
      ...dial.channelOptions,
      'grpc.initial_reconnect_backoff_ms': initialMs,
      'grpc.max_reconnect_backoff_ms': maxMs,
    });
    this.metadata = new Metadata();
    for (const [k, v] of Object.entries(options.headers ?? {})) this.metadata.set(k.toLowerCase(), v);
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.timers = ctx.timers;
    this.log = ctx.logger.child({ component: 'ahti-emitter', emitter: this.name });
    this.metrics = AhtiEmitterMetrics.in(ctx.registry);
    for (const o of OUTCOMES) this.metrics.batches.labels(this.name, o).inc(0);
    this.metrics.up.labels(this.name).set(1);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.closed) return EmitResults.retryable(`ahti emitter "${this.name}" is shut down`);
    if (events.length === 0) return EmitResults.success();
    const wait = this.downUntilMs - this.clock.monotonicMs();
    if (this.stream === null && wait > 0) {
      return EmitResults.retryable(`AHTI stream down (${this.lastError}); reconnecting in ${Math.ceil(wait)} ms`, Math.ceil(wait));
    }
    const batch: AhtiEventBatch = { events: events.map(toAhtiEvent) };
    const stream = this.open();
    const started = this.clock.monotonicMs();
    const answer = await new Promise<Answer>((resolve) => {
      const timer = this.timers.setTimeout(() => resolve({ kind: 'timeout' }), this.ackTimeoutMs);
      this.pending = (a) => {
        this.timers.clearTimeout(timer);
        resolve(a);
      };
      try {
        stream.write(batch);
      } catch (err) {
        this.fail(stream, `write failed: ${(err as Error).message}`);
      }
    });
    this.pending = null;
    let outcome: Outcome;
    let result: EmitResult;
    if (answer.kind === 'timeout') {
      this.fail(stream, `no AhtiAck within ${this.ackTimeoutMs} ms; stream reset`);
      [outcome, result] = ['timeout', EmitResults.retryable(`timed out: no AhtiAck within ${this.ackTimeoutMs} ms`)];
    } else if (answer.kind === 'broken') {
      [outcome, result] = ['stream_error', EmitResults.retryable(`AHTI stream failed before the ack: ${answer.error}`)];
    } else {
      this.metrics?.ackSeconds.labels(this.name).observe((this.clock.monotonicMs() - started) / 1000);
      this.backoff.reset();
      this.lastError = null;
      this.metrics?.up.labels(this.name).set(1);
      result = ahtiAckToEmitResult(events, answer.ack, this.retryRefused);
      outcome = result.status;
    }
    this.metrics?.batches.labels(this.name, outcome).inc();
    return result;
  }

  /** AHTI's channel connects (plaintext or TLS as configured); no stream is opened, no event sent. */
  probe(signal: AbortSignal): Promise<ProbeResult> {
    return grpcProbe(this.client, `${this.endpoint} (AHTI)`, signal);
  }

  /** Unhealthy while the stream is down (after a failure, until a batch is acknowledged again). */
  health(): EmitterHealth {
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stream = this.stream;
    if (stream) {
      await new Promise<void>((resolve) => {
        const timer = this.timers.setTimeout(resolve, SHUTDOWN_GRACE_MS);
        stream.once('status', () => {
          this.timers.clearTimeout(timer);
          resolve();
        });
        stream.end();
      });
      this.fail(stream, 'emitter is shut down');
    }
    this.client.close();
  }

  private open(): ClientDuplexStream<AhtiEventBatch, AhtiAck> {
    if (this.stream) return this.stream;
    const stream = this.client.streamEvents(this.metadata.clone());
    stream.on('data', (ack: AhtiAck) => {
      if (stream !== this.stream) return;
      if (this.pending) this.pending({ kind: 'ack', ack });
      else this.log?.warn({ eventIds: ack.eventIds.length }, 'AhtiAck for no batch; ignored');
    });
    // 'error' precedes 'status' on a failed call; fail() acts once per stream.
    stream.on('error', (err: ServiceError) => this.fail(stream, `${GrpcStatus[err.code] ?? err.code}: ${err.details}`));
    stream.on('status', () => this.fail(stream, 'stream ended by AHTI'));
    this.stream = stream;
    return stream;
  }

  private fail(stream: ClientDuplexStream<AhtiEventBatch, AhtiAck>, reason: string): void {
    if (stream !== this.stream) return;
    this.stream = null;
    stream.cancel();
    this.pending?.({ kind: 'broken', error: reason });
    if (this.closed) return;
    this.lastError = reason;
    this.downUntilMs = this.clock.monotonicMs() + this.backoff.next();
    this.metrics?.up.labels(this.name).set(0);
    this.log?.warn({ reason }, 'AHTI stream down; reconnecting with backoff');
  }
}

/**
 * An AhtiAck as per-event results: delivered only when a `success: true` ack lists the id;
 * refused (`success: false`: its listed ids, or every event when it lists none) with its error,
 * retryable as `retryRefused` says; unlisted events retryable. Repeated ids match their copies in
 * batch order.
 */
export function ahtiAckToEmitResult(events: readonly Event[], ack: AhtiAck, retryRefused = true): EmitResult {
  const n = events.length;
  if (ack.success && ack.eventIds.length === n && sameIds(events, ack.eventIds)) return EmitResults.success();
  const take = positionsById(events);
  const listed = new Uint8Array(n);
  for (const id of ack.eventIds) {
    const i = take(id);
    if (i >= 0) listed[i] = 1;
  }
  const refusedAll = !ack.success && ack.eventIds.length === 0;
  const refused = `AHTI refused: ${ack.error || 'no reason given'}`;
  const failures: EventFailure[] = [];
  for (let i = 0; i < n; i++) {
    if (refusedAll || (!ack.success && listed[i])) failures.push({ index: i, retryable: retryRefused, error: refused });
    else if (!listed[i]) failures.push({ index: i, retryable: true, error: 'not acknowledged: the AhtiAck did not list it' });
  }
  return resultOfFailures(n, failures);
}

function sameIds(events: readonly Event[], ids: readonly string[]): boolean {
  for (let i = 0; i < events.length; i++) if (events[i]!.id !== ids[i]) return false;
  return true;
}

/** Metrics shared by every AhtiEmitter of one registry (labelled by emitter). */
class AhtiEmitterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, AhtiEmitterMetrics>();
  readonly batches: Counter<'emitter' | 'outcome'>;
  readonly up: Gauge<'emitter'>;
  readonly ackSeconds: Histogram<'emitter'>;

  static in(registry: Registry): AhtiEmitterMetrics {
    let m = AhtiEmitterMetrics.byRegistry.get(registry);
    if (!m) AhtiEmitterMetrics.byRegistry.set(registry, (m = new AhtiEmitterMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    this.batches = new Counter({
      name: 'polku_ahti_emitter_batches_total',
      help: 'Batches streamed to AHTI, by outcome',
      labelNames: ['emitter', 'outcome'],
      registers: [registry],
    });
    this.up = new Gauge({
      name: 'polku_ahti_emitter_stream_up',
      help: '0 while the AHTI stream is down (it failed and a reconnect is pending), else 1',
      labelNames: ['emitter'],
      registers: [registry],
    });
    this.ackSeconds = new Histogram({
      name: 'polku_ahti_emitter_ack_seconds',
      help: 'Time from writing a batch to receiving its AhtiAck',
      labelNames: ['emitter'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }
}
