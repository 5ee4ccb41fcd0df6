import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemClock, systemTimers, type TimerHandle } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { AckCodes, isAckCode, polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Ack, AckError, IngestBatch } from '../gen/polku/v1/gateway.js';
import { silentLogger } from '../observability/logger.js';
import { DIAL_TLS_OPTION_KEYS, dialCredentials, PLAINTEXT_DIAL, type DialTlsOptions } from '../security/tls.js';
import { positionsById, resultOfFailures } from './batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { probeFail, probeOk } from './probe.js';
import { GrpcEndpoint, type EndpointRuntime, type PendingSend } from './grpc-endpoint.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RECONNECT_INITIAL_MS = 100;
const DEFAULT_RECONNECT_MAX_MS = 5_000;
/** A receiver whose buffer is this full and refused events with BUFFER_FULL gets a pause. */
const FULL_LOAD = 0.9;
const FULL_RETRY_AFTER_MS = 200;
/** Longest wait for a stream to close gracefully at shutdown. */
const SHUTDOWN_GRACE_MS = 1_000;

export interface GrpcEmitterOptions {
  /** Default `grpc`. */
  name?: string;
  /**
   * Downstream gateways: `host:port` or `http://host:port` (plaintext unless `tls` is set), or
   * `https://host:port` (TLS; the system's roots verify the server unless `tls.caFile` is set).
   */
  endpoints: readonly string[];
  /**
   * TLS to every endpoint: `caFile` verifies the server, `certFile` + `keyFile` are presented to it
   * (mTLS), `serverName` is the name its certificate must carry when it is not the dialled host.
   * Files are read when the emitter is built (a bad one throws) and re-read every 5 s: rotated
   * ones serve new connections.
   */
  tls?: DialTlsOptions;
  /** `IngestBatch.source` of forwarded batches. Default `polku`. */
  source?: string;
  /** Longest wait for a batch's Ack, fail-over included. Default 10 s. */
  timeoutMs?: number;
  /** Backoff between reconnect attempts to a down endpoint: doubling from `initialMs` to `maxMs`. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /**
   * `true` (default): an endpoint is first contacted by the first batch sent to it. `false`: every
   * endpoint is probed (a Health call) when the hub starts the emitter, so one that is not
   * reachable is logged, marked down and retried with backoff before any event needs it.
   */
  lazy?: boolean;
}

/** Every key of {@link GrpcEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const GRPC_EMITTER_OPTION_KEYS = optionKeys<GrpcEmitterOptions>({
  name: true,
  endpoints: true,
  tls: true,
  source: true,
  timeoutMs: true,
  reconnect: true,
  lazy: true,
});
const RECONNECT_OPTION_KEYS = optionKeys<NonNullable<GrpcEmitterOptions['reconnect']>>({ initialMs: true, maxMs: true });

type Outcome = 'success' | 'partial' | 'failed' | 'retryable' | 'timeout' | 'stream_error';
const OUTCOMES: readonly Outcome[] = ['success', 'partial', 'failed', 'retryable', 'timeout', 'stream_error'];

/**
 * Forwards batches to other gateways (anything serving `polku.v1.Gateway`) over StreamEvents.
 *
 * Each batch goes to the least loaded endpoint that is not down, judged by its last Ack's
 * `buffer_size / buffer_capacity` (ties: fewest batches awaiting Acks, then round robin); a load
 * is as fresh as that endpoint's last Ack. If the endpoint's stream fails before the Ack, the
 * batch goes to the next one while time remains; with none left the result is retryable. No Ack
 * within `timeoutMs`: retryable, and the stream is reset (Acks are matched in order, so a late
 * one would be misread). The Ack becomes the result event by event: accepted ids succeed, refused
 * ones fail with their code's retryability (see {@link ackToEmitResult}). Plaintext, TLS or mTLS (`tls`).
 *
 * Delivery is at least once: a batch whose stream broke after the receiver took it, but before
 * its Ack arrived, is reported retryable and sent again (here, to another endpoint, or by the
 * emitter queue), so the receiver may see it twice. Events carry their ids for deduplication.
 */
export class GrpcEmitter implements Emitter {
  readonly name: string;
  private readonly endpoints: readonly GrpcEndpoint[];
  private readonly source: string;
  private readonly timeoutMs: number;
  private readonly runtime: EndpointRuntime;
  private metrics: GrpcEmitterMetrics | null = null;
  private nextIndex = 0;
  private readonly lazy: boolean;
  private shutdownRun: Promise<void> | null = null;

  constructor(options: GrpcEmitterOptions) {
    this.name = options.name ?? 'grpc';
    checkOptionKeys(`GrpcEmitter "${this.name}"`, options, GRPC_EMITTER_OPTION_KEYS);
    checkOptionKeys(`GrpcEmitter "${this.name}"`, options.tls, DIAL_TLS_OPTION_KEYS, 'tls.');
    checkOptionKeys(`GrpcEmitter "${this.name}"`, options.reconnect, RECONNECT_OPTION_KEYS, 'reconnect.');
    this.source = options.source ?? 'polku';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.lazy = options.lazy ?? true;
    const reconnect = {
      initialMs: options.reconnect?.initialMs ?? DEFAULT_RECONNECT_INITIAL_MS,
      maxMs: options.reconnect?.maxMs ?? DEFAULT_RECONNECT_MAX_MS,
    };
    checkOptions(this.name, options.endpoints, this.timeoutMs, reconnect);
    const secure = options.tls !== undefined || options.endpoints.some((e) => e.startsWith('https://'));
    if (secure && options.endpoints.some((e) => e.startsWith('http://')))
      throw polkuError(
        'POLKU_ERR_PIPELINE_INVALID',
        `grpc emitter "${this.name}": http:// endpoints cannot be dialled with TLS: use host:port or https://`,
      );
    const dial = secure ? dialCredentials(`grpc emitter "${this.name}"`, options.tls ?? {}) : PLAINTEXT_DIAL;
    this.runtime = {
      clock: systemClock,
      timers: systemTimers,
      logger: silentLogger(),
      onStateChange: (e) => this.metrics?.up.set({ emitter: this.name, endpoint: e.address }, e.state === 'down' ? 0 : 1),
    };
    this.endpoints = options.endpoints.map(
      (address) =>
        new GrpcEndpoint({
          address,
          target: address.replace(/^https?:\/\//, ''),
          dial,
          reconnect,
          probeTimeoutMs: this.timeoutMs,
          runtime: this.runtime,
        }),
    );
  }

  init(ctx: ComponentContext): void {
    this.runtime.clock = ctx.clock;
    this.runtime.timers = ctx.timers;
    this.runtime.logger = ctx.logger.child({ component: 'grpc-emitter', emitter: this.name });
    this.metrics = GrpcEmitterMetrics.in(ctx.registry);
    for (const e of this.endpoints) {
      for (const outcome of OUTCOMES) this.metrics.batches.labels(this.name, e.address, outcome);
      this.runtime.onStateChange(e);
    }
    if (!this.lazy) for (const e of this.endpoints) e.connect();
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (events.length === 0) return EmitResults.success();
    if (this.shutdownRun) return EmitResults.retryable('grpc emitter is shut down');
    // The events go out as they are: grpc-js serializes them on write.
    const batch: IngestBatch = { source: this.source, cluster: '', payload: { $case: 'events', value: { events: events as Event[] } } };
    const deadline = new Deadline(this.runtime.timers, this.timeoutMs);
    const tried: GrpcEndpoint[] = [];
    let lastError = '';
    try {
      for (;;) {
        const endpoint = this.pick(tried);
        if (!endpoint) return this.unavailable(lastError);
        tried.push(endpoint);
        const started = this.runtime.clock.monotonicMs();
        const pending: PendingSend = endpoint.send(batch);
        const outcome = await Promise.race([pending.outcome, deadline.expired]);
        if (outcome === TIMED_OUT) {
          endpoint.abandon(pending, `no Ack within ${this.timeoutMs} ms; stream reset`);
          this.count(endpoint, 'timeout');
          return EmitResults.retryable(`timed out: no Ack from ${endpoint.address} within ${this.timeoutMs} ms`);
        }
        if (outcome.kind === 'ack') {
          this.metrics?.ackSeconds.labels(this.name).observe((this.runtime.clock.monotonicMs() - started) / 1000);
          const result = ackToEmitResult(events, outcome.ack);
          this.count(endpoint, result.status);
          return result;
        }
        this.count(endpoint, 'stream_error');
        lastError = `${endpoint.address}: ${outcome.error}`;
        if (deadline.passed) return EmitResults.retryable(`timed out after ${lastError}`);
      }
    } finally {
      deadline.cancel();
    }
  }

  /** Every endpoint: the channel connects and its Health answers. One down fails the probe (fail-over would hide it). */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    const results = await Promise.all(this.endpoints.map((e) => e.dial(signal)));
    const failed = results.filter((r) => !r.ok);
    if (failed.length === 0) return probeOk(results.map((r) => (r.ok ? r.detail : '')).join('; '));
    const first = failed[0]!;
    return first.ok ? first : probeFail(failed.map((r) => (r.ok ? '' : r.error)).join('; '), first.hint);
  }

  health(): EmitterHealth {
    const healthy = this.endpoints.some((e) => e.state !== 'down');
    return { healthy, message: this.endpoints.map((e) => e.describe()).join('; ') };
  }

  /** Ends every stream gracefully and closes the clients; runs once. */
  shutdown(): Promise<void> {
    this.shutdownRun ??= Promise.all(this.endpoints.map((e) => e.close(SHUTDOWN_GRACE_MS))).then(() => undefined);
    return this.shutdownRun;
  }

  /** Least loaded endpoint that is not down and not tried yet; ties by awaiting Acks, then round robin. */
  private pick(tried: readonly GrpcEndpoint[]): GrpcEndpoint | undefined {
    const n = this.endpoints.length;
    let best: GrpcEndpoint | undefined;
    let bestIndex = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.nextIndex + k) % n;
      const e = this.endpoints[i]!;
      if (e.state === 'down' || tried.includes(e)) continue;
      if (!best || e.load < best.load || (e.load === best.load && e.awaitingAcks < best.awaitingAcks)) {
        best = e;
        bestIndex = i;
      }
    }
    if (best) this.nextIndex = (bestIndex + 1) % n;
    return best;
  }

  /** Every endpoint is down (or failed this batch): retry once the first reconnect is due. */
  private unavailable(lastError: string): EmitResult {
    let wait = Number.POSITIVE_INFINITY;
    for (const e of this.endpoints) if (e.state === 'down') wait = Math.min(wait, e.reconnectInMs);
    const reason = lastError || this.health().message!;
    return EmitResults.retryable(`no grpc endpoint available: ${reason}`, Number.isFinite(wait) ? Math.max(1, wait) : undefined);
  }

  private count(endpoint: GrpcEndpoint, outcome: Outcome): void {
    this.metrics?.batches.labels(this.name, endpoint.address, outcome).inc();
  }
}

/**
 * Turns the Ack for `events` into a result. Ids in `event_ids` are delivered; an `AckError` with
 * an `event_id` fails that event, retryable as its code says (unknown codes: not retryable); one
 * with an empty `event_id` fails every event the Ack did not otherwise name; an event named
 * nowhere failed retryably ("not acknowledged"). A repeated id is matched to its copies in batch
 * order, errors first: the counts are exact, but which copy was refused cannot be known.
 */
export function ackToEmitResult(events: readonly Event[], ack: Ack): EmitResult {
  const n = events.length;
  if (ack.errors.length === 0 && ack.eventIds.length === n && sameIds(events, ack.eventIds)) return EmitResults.success();
  const take = positionsById(events);
  const verdict: Array<AckError | true | undefined> = new Array(n);
  let batchError: AckError | undefined;
  for (const err of ack.errors) {
    if (err.eventId === '') batchError ??= err;
    else {
      const i = take(err.eventId);
      if (i >= 0) verdict[i] = err;
    }
  }
  for (const id of ack.eventIds) {
    // An id matching no event is one the receiver gave to an event that had none.
    let i = take(id);
    if (i < 0) i = take('');
    if (i >= 0) verdict[i] = true;
  }
  const failures: EventFailure[] = [];
  let bufferFull = false;
  for (let i = 0; i < n; i++) {
    const v = verdict[i] ?? batchError;
    if (v === true) continue;
    if (v === undefined) {
      failures.push({ index: i, retryable: true, error: 'not acknowledged: the Ack neither accepted nor refused it' });
      continue;
    }
    bufferFull ||= v.code === 'BUFFER_FULL';
    failures.push({ index: i, retryable: isRetryable(v.code), error: `${v.code}: ${v.message}` });
  }
  const capacity = Number(ack.bufferCapacity);
  const full = capacity > 0 && Number(ack.bufferSize) / capacity >= FULL_LOAD;
  const retryAfterMs = bufferFull && full ? FULL_RETRY_AFTER_MS : undefined;
  return resultOfFailures(n, failures, retryAfterMs);
}

function isRetryable(code: string): boolean {
  return isAckCode(code) && AckCodes[code].retryable;
}

function sameIds(events: readonly Event[], ids: readonly string[]): boolean {
  for (let i = 0; i < events.length; i++) if (events[i]!.id !== ids[i]) return false;
  return true;
}

const TIMED_OUT = Symbol('timed out');

/** One emit's time budget on the injected timers. */
class Deadline {
  passed = false;
  readonly expired: Promise<typeof TIMED_OUT>;
  private readonly timer: TimerHandle;

  constructor(
    private readonly timers: EndpointRuntime['timers'],
    ms: number,
  ) {
    let fire!: () => void;
    this.expired = new Promise((resolve) => (fire = () => resolve(TIMED_OUT)));
    this.timer = timers.setTimeout(() => {
      this.passed = true;
      fire();
    }, ms);
  }

  cancel(): void {
    this.timers.clearTimeout(this.timer);
  }
}

/** Metrics shared by every GrpcEmitter of one registry (labelled by emitter). */
class GrpcEmitterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, GrpcEmitterMetrics>();
  readonly batches: Counter<'emitter' | 'endpoint' | 'outcome'>;
  readonly up: Gauge<'emitter' | 'endpoint'>;
  readonly ackSeconds: Histogram<'emitter'>;

  static in(registry: Registry): GrpcEmitterMetrics {
    let m = GrpcEmitterMetrics.byRegistry.get(registry);
    if (!m) GrpcEmitterMetrics.byRegistry.set(registry, (m = new GrpcEmitterMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    this.batches = new Counter({
      name: 'polku_grpc_emitter_batches_total',
      help: 'Batches sent to a downstream gateway, by endpoint (as configured) and outcome',
      labelNames: ['emitter', 'endpoint', 'outcome'],
      registers: [registry],
    });
    this.up = new Gauge({
      name: 'polku_grpc_emitter_endpoint_up',
      help: '0 while the endpoint is down (its stream failed and a reconnect is pending), else 1',
      labelNames: ['emitter', 'endpoint'],
      registers: [registry],
    });
    this.ackSeconds = new Histogram({
      name: 'polku_grpc_emitter_ack_seconds',
      help: 'Time from writing a batch to receiving its Ack',
      labelNames: ['emitter'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }
}

function checkOptions(name: string, endpoints: readonly string[], timeoutMs: number, r: { initialMs: number; maxMs: number }): void {
  const bad = (message: string) => polkuError('POLKU_ERR_PIPELINE_INVALID', `grpc emitter "${name}": ${message}`);
  if (!Array.isArray(endpoints) || endpoints.length === 0) throw bad('endpoints must list at least one host:port');
  for (const e of endpoints) {
    if (typeof e !== 'string' || !/^(https?:\/\/)?[^/\s]+:\d{1,5}$/.test(e))
      throw bad(`endpoint "${String(e)}" is not host:port, http://host:port or https://host:port`);
  }
  if (new Set(endpoints).size !== endpoints.length) throw bad('endpoints are listed twice');
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw bad(`timeoutMs must be a positive number, got ${timeoutMs}`);
  if (!(r.initialMs > 0) || !(r.maxMs >= r.initialMs)) {
    throw bad(`reconnect needs 0 < initialMs <= maxMs, got ${r.initialMs} and ${r.maxMs}`);
  }
}
