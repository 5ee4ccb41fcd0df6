import { status as GrpcStatus, type CallOptions, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { systemClock } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Empty } from '../gen/google/protobuf/empty.js';
import type { Event } from '../gen/polku/v1/event.js';
import {
  EmitterPluginService,
  type EmitterPluginClient,
  type EmitResponse,
  type PluginHealthResponse,
  type ShutdownResponse,
} from '../gen/polku/v1/plugin.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { CIRCUIT_BREAKER_OPTION_KEYS, type CircuitBreakerOptions } from '../resilience/circuit-breaker.js';
import { checkPositive, pluginTarget } from '../plugin-client/address.js';
import { emitterPluginClient } from '../plugin-client/client.js';
import { DIAL_TLS_OPTION_KEYS, dialCredentials, type DialTlsOptions } from '../security/tls.js';
import { PluginCaller, type CallResult } from '../plugin-client/plugin-caller.js';
import { encodeEmitRequest } from '../plugin-client/emit-request.js';
import { positionsById, resultOfFailures } from './batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { pluginProbe } from './probe.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/**
 * Emit calls in flight to one plugin at once (see `maxCallsInFlight`). One by default: measured
 * with `npm run bench:plugin` on a CPU-bound path (gateway and plugin sharing 2 cores), splitting
 * a batch of 1,000 into 2 or 4 concurrent calls cost about 1 µs more gateway CPU per event and
 * delivered less; bigger single calls cost less per event. Splitting pays when the plugin waits
 * on I/O of its own (its calls overlap) and the CPU is not the limit.
 */
export const DEFAULT_MAX_CALLS_IN_FLIGHT = 1;
/** A batch is split only into calls of at least this many events: smaller ones cost more per event. */
export const DEFAULT_MIN_EVENTS_PER_CALL = 250;
/**
 * Largest EmitRequest sent in one call (more events go in further calls). 4 MiB is the default
 * largest message a gRPC server accepts in every language (grpc-js, grpcio, grpc-go), so a plugin
 * written without setting it still takes every call; an event alone larger than this goes alone.
 */
export const DEFAULT_MAX_CALL_BYTES = 4 * 1024 * 1024;
/**
 * Events per batch the delivery queue hands a plugin emitter (its `preferredBatchSize`) when the
 * pipeline's `delivery.batchSize` is smaller. Each call costs the gateway and the plugin a fixed
 * amount besides its events: `npm run bench:plugin` on 2 cores delivered 102k events/s with
 * batches of 1,000 and 123k with 4,000 (2026-12-03, quiet). A partial batch still goes after
 * `delivery.flushIntervalMs`, so a quiet stream waits no longer; `maxCallBytes` still splits a
 * batch of large events.
 */
export const DEFAULT_PLUGIN_BATCH_SIZE = 4_000;
const EMIT_PATH = EmitterPluginService.emit.path;
const decodeEmitResponse = EmitterPluginService.emit.responseDeserialize;
/** The request is already protobuf bytes (see encodeEmitRequest): grpc-js sends them as they are. */
const asIs = (bytes: Buffer): Buffer => bytes;
const HEALTH_TIMEOUT_MS = 1_000;
/** Health is asked for by readiness probes and scrapes; the plugin is asked at most once a second. */
const HEALTH_CACHE_MS = 1_000;
const SHUTDOWN_TIMEOUT_MS = 5_000;
/** Call failures that retrying the same batch cannot fix. */
const NOT_RETRYABLE = new Set<GrpcStatus>([GrpcStatus.INVALID_ARGUMENT, GrpcStatus.UNIMPLEMENTED]);
const EMPTY: Empty = {};

export interface ExternalEmitterOptions {
  /** Longest wait for the plugin's channel to be ready before a call. Default 5 s. */
  connectTimeoutMs?: number;
  /** Longest wait for an Emit answer, connecting included. Default 30 s. */
  callTimeoutMs?: number;
  /** When to stop calling a failing plugin for a while. Default: open after 5 failures, for 30 s. */
  breaker?: CircuitBreakerOptions;
  /**
   * Emit calls in flight at once: a batch is split into up to this many calls, sent together,
   * each event's result mapped back to its place in the batch. Default 1 (each batch is one call,
   * unless over `maxCallBytes`); more helps a plugin whose Emit waits on I/O.
   */
  maxCallsInFlight?: number;
  /** A batch is split only into calls of at least this many events. Default 250. */
  minEventsPerCall?: number;
  /** Largest EmitRequest per call, in bytes; a bigger batch goes in more calls. Default 4 MiB. */
  maxCallBytes?: number;
  /**
   * Events per batch this emitter's queue takes when the pipeline's `delivery.batchSize` is
   * smaller (the larger of the two wins). Default 4,000: fewer, larger calls cost less per event.
   */
  preferredBatchSize?: number;
  /**
   * TLS to this plugin (`caFile`, `certFile` + `keyFile` for mTLS, `serverName`). Default: as the
   * process dials plugins (POLKU_PLUGIN_TLS_*; plaintext when unset).
   */
  tls?: DialTlsOptions;
}

export interface ExternalEmitterConfig extends ExternalEmitterOptions {
  /** The name events use in `route_to`; also the `plugin` label. */
  name: string;
  /** `host:port` or `http://host:port` (plaintext). */
  address: string;
}

/** Every key of {@link ExternalEmitterConfig}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const EXTERNAL_EMITTER_OPTION_KEYS = optionKeys<ExternalEmitterConfig>({
  name: true,
  address: true,
  connectTimeoutMs: true,
  callTimeoutMs: true,
  breaker: true,
  tls: true,
  maxCallsInFlight: true,
  minEventsPerCall: true,
  maxCallBytes: true,
  preferredBatchSize: true,
});

/**
 * An emitter implemented by a plugin process speaking `polku.v1.EmitterPlugin` over gRPC. A batch
 * is encoded once and sent as one `Emit` call, or split into a few concurrent calls (see
 * `maxCallsInFlight`); each answer's failed ids and errors become per-event failures (see
 * {@link emitResponseToResult}) at the events' places in the batch, so the emitter queue resends
 * only the retryable ones.
 *
 * A call that gets no answer (plugin down, deadline passed, circuit open) is `retryable`: the
 * plugin may or may not have delivered the batch, so delivery is at least once. A call the
 * plugin refuses as `INVALID_ARGUMENT` or `UNIMPLEMENTED` is `failed`. It never throws.
 */
export class ExternalEmitter implements Emitter {
  readonly name: string;
  /** Events that carry the bytes they arrived in are copied into the EmitRequest, not encoded. */
  readonly wantsWireBytes = true;
  readonly address: string;
  readonly preferredBatchSize: number;
  private readonly callTimeoutMs: number;
  private readonly maxCallsInFlight: number;
  private readonly minEventsPerCall: number;
  private readonly maxCallBytes: number;
  private readonly client: EmitterPluginClient;
  private readonly caller: PluginCaller;
  private log: Logger = silentLogger();
  private healthCache: { atMs: number; value: EmitterHealth } | null = null;
  private healthRun: Promise<EmitterHealth> | null = null;
  private shutdownRun: Promise<void> | null = null;
  private closed = false;
  private now = (): number => systemClock.monotonicMs();

  constructor(config: ExternalEmitterConfig) {
    this.name = config.name;
    checkOptionKeys(`ExternalEmitter "${String(this.name)}"`, config, EXTERNAL_EMITTER_OPTION_KEYS);
    checkOptionKeys(`ExternalEmitter "${String(this.name)}"`, config.tls, DIAL_TLS_OPTION_KEYS, 'tls.');
    checkOptionKeys(`ExternalEmitter "${String(this.name)}"`, config.breaker, CIRCUIT_BREAKER_OPTION_KEYS, 'breaker.');
    if (typeof this.name !== 'string' || this.name === '') {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', 'an external emitter needs a non-empty name (the route_to name)');
    }
    const target = pluginTarget(this.name, config.address);
    const connectTimeoutMs = config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.callTimeoutMs = config.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    checkPositive(this.name, 'connectTimeoutMs', connectTimeoutMs);
    checkPositive(this.name, 'callTimeoutMs', this.callTimeoutMs);
    this.maxCallsInFlight = config.maxCallsInFlight ?? DEFAULT_MAX_CALLS_IN_FLIGHT;
    this.minEventsPerCall = config.minEventsPerCall ?? DEFAULT_MIN_EVENTS_PER_CALL;
    this.maxCallBytes = config.maxCallBytes ?? DEFAULT_MAX_CALL_BYTES;
    checkPositive(this.name, 'maxCallsInFlight', this.maxCallsInFlight, true);
    checkPositive(this.name, 'minEventsPerCall', this.minEventsPerCall, true);
    checkPositive(this.name, 'maxCallBytes', this.maxCallBytes, true);
    this.preferredBatchSize = config.preferredBatchSize ?? DEFAULT_PLUGIN_BATCH_SIZE;
    checkPositive(this.name, 'preferredBatchSize', this.preferredBatchSize, true);
    this.address = config.address;
    this.client = emitterPluginClient(target, config.tls ? dialCredentials(`plugin "${this.name}"`, config.tls) : undefined);
    // The limit holds a batch's calls to maxCallsInFlight (a byte-split batch may have more).
    this.caller = new PluginCaller({
      plugin: this.name,
      address: config.address,
      client: this.client,
      connectTimeoutMs,
      maxConcurrency: this.maxCallsInFlight,
      mainMethod: 'Emit',
      ...(config.breaker ? { breaker: config.breaker } : {}),
    });
  }

  init(ctx: ComponentContext): void {
    this.caller.init(ctx, 'external-emitter');
    this.log = ctx.logger.child({ component: 'external-emitter', plugin: this.name });
    this.now = () => ctx.clock.monotonicMs();
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (events.length === 0) return EmitResults.success();
    if (this.shutdownRun) return EmitResults.retryable(`plugin "${this.name}" is ${this.closed ? 'closed' : 'shut down'}`);
    const encoded = encodeEmitRequest(events);
    const ends = this.callEnds(encoded.starts);
    if (ends.length === 1) {
      const result = await this.call(encoded.bytes);
      return result.ok ? this.read(events, result.value) : this.callFailed(result);
    }
    // Several calls at once, one promise each (not per event); each answer is read against its own
    // slice of the batch and its failures moved to their places in the whole batch.
    const calls: Array<Promise<CallResult<EmitResponse>>> = [];
    for (let c = 0, from = 0; c < ends.length; from = ends[c++]!) {
      calls.push(this.call(encoded.bytes.subarray(encoded.starts[from]!, encoded.starts[ends[c]!]!)));
    }
    const results = await Promise.all(calls);
    const failures: EventFailure[] = [];
    let retryAfterMs: number | undefined;
    for (let c = 0, from = 0; c < ends.length; from = ends[c++]!) {
      const r = results[c]!;
      const to = ends[c]!;
      const part = r.ok ? this.read(events.slice(from, to), r.value) : this.callFailed(r);
      if (part.status !== 'success' && part.status !== 'failed' && part.retryAfterMs !== undefined) {
        retryAfterMs = Math.max(retryAfterMs ?? 0, part.retryAfterMs);
      }
      addFailures(failures, part, from, to);
    }
    return resultOfFailures(events.length, failures, retryAfterMs);
  }

  /**
   * Where each call of a batch ends (an index into the batch): as few calls as `minEventsPerCall`
   * allows, at most `maxCallsInFlight` of even size, each also kept under `maxCallBytes`.
   */
  private callEnds(starts: readonly number[]): number[] {
    const n = starts.length - 1;
    const calls = Math.max(1, Math.min(this.maxCallsInFlight, Math.floor(n / this.minEventsPerCall)));
    const perCall = Math.ceil(n / calls);
    const ends: number[] = [];
    let from = 0;
    for (let e = 0; e < n; e++) {
      // Event e is starts[e] .. starts[e + 1]: it starts a new call when this one is full or would
      // grow past the byte limit with it (an event alone over the limit still goes, alone).
      if (e > from && (e - from === perCall || starts[e + 1]! - starts[from]! > this.maxCallBytes)) {
        ends.push(e);
        from = e;
      }
    }
    ends.push(n);
    return ends;
  }

  private call(request: Buffer): Promise<CallResult<EmitResponse>> {
    return this.caller.guarded<Buffer, EmitResponse>(
      'Emit',
      (req: Buffer, md: Metadata, opts: Partial<CallOptions>, cb: (err: ServiceError | null, res: EmitResponse) => void) =>
        this.client.makeUnaryRequest(EMIT_PATH, asIs, decodeEmitResponse, req, md, opts, (err, res) => cb(err, res!)),
      request,
      this.callTimeoutMs,
    );
  }

  private callFailed(result: Exclude<CallResult<unknown>, { ok: true }>): EmitResult {
    const error = `plugin at ${this.address}: ${result.reason}`;
    if (result.code !== undefined && NOT_RETRYABLE.has(result.code)) return EmitResults.failed(error);
    return EmitResults.retryable(error, result.retryAfterMs);
  }

  private read(events: readonly Event[], response: EmitResponse): EmitResult {
    const mapped = emitResponseToResult(events, response);
    if (mapped.unknownIds.length > 0) {
      this.log.warn(
        { ids: { unknown: mapped.unknownIds.slice(0, 10), count: mapped.unknownIds.length } },
        'plugin named events not in the batch; ignored',
      );
    }
    if (mapped.countMismatch) {
      this.log.warn({ counts: mapped.countMismatch }, 'plugin success_count disagrees with its failure list; trusting the list');
    }
    return mapped.result;
  }

  /** The plugin's own Health answer (1 s deadline), asked at most once a second. */
  health(): EmitterHealth | Promise<EmitterHealth> {
    if (this.shutdownRun) return { healthy: false, message: this.closed ? 'closed' : 'shut down' };
    const cached = this.healthCache;
    if (cached && this.now() - cached.atMs < HEALTH_CACHE_MS) return cached.value;
    this.healthRun ??= this.askHealth().finally(() => (this.healthRun = null));
    return this.healthRun;
  }

  /**
   * Calls the plugin's Shutdown (5 s deadline), then closes the client. Runs once; does nothing
   * after {@link close}.
   */
  shutdown(): Promise<void> {
    this.shutdownRun ??= this.caller
      .direct<Empty, ShutdownResponse>(
        'Shutdown',
        (req, md, opts, cb) => this.client.shutdown(req, md, opts, cb),
        EMPTY,
        SHUTDOWN_TIMEOUT_MS,
      )
      .then((r) => {
        if (!r.ok) this.log.warn({ reason: r.reason }, 'plugin Shutdown call failed');
        else if (!r.value.success) this.log.warn({ reply: { message: r.value.message } }, 'plugin reported an unclean shutdown');
        this.caller.close();
      });
    return this.shutdownRun;
  }

  /**
   * Closes the connection without calling the plugin's Shutdown RPC, for a plugin the gateway
   * uses but does not own (one that registered itself or was discovered): Shutdown would stop a
   * process that other gateways may still send to. Later batches are answered retryable, health
   * is unhealthy (`closed`), and `shutdown()` does nothing. Synchronous; runs once.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shutdownRun ??= Promise.resolve();
    this.caller.close();
  }

  /** The plugin's channel connects and its Health rpc answers healthy (polku validate --probe). */
  probe(signal: AbortSignal): Promise<ProbeResult> {
    return pluginProbe(this.client, this.address, signal);
  }

  private async askHealth(): Promise<EmitterHealth> {
    const r = await this.caller.direct<Empty, PluginHealthResponse>(
      'Health',
      (req, md, opts, cb) => this.client.health(req, md, opts, cb),
      EMPTY,
      HEALTH_TIMEOUT_MS,
    );
    let value: EmitterHealth;
    if (!r.ok) value = { healthy: false, message: `plugin at ${this.address}: health check failed: ${r.reason}` };
    else value = { healthy: r.value.healthy, message: r.value.message || (r.value.healthy ? 'ok' : 'plugin reports unhealthy') };
    const circuit = this.caller.circuit;
    if (circuit !== 'closed') value = { healthy: value.healthy, message: `${value.message}; circuit ${circuit.replace('_', '-')}` };
    this.caller.reportHealth(value.healthy);
    this.healthCache = { atMs: this.now(), value };
    return value;
  }
}

/** What an EmitResponse says about a batch, and what in it did not add up. */
export interface EmitResponseReading {
  readonly result: EmitResult;
  /** Ids the plugin named that match no (remaining) event of the batch: ignored. */
  readonly unknownIds: readonly string[];
  /** Set when `success_count` + failures is not the batch size (the failure list is trusted). */
  readonly countMismatch?: { readonly successCount: string; readonly failures: number; readonly batch: number };
}

/**
 * Turns a plugin's EmitResponse for `events` into a result. Each id in `failed_event_ids` and each
 * `EmitError` fails one event with that id; an id listed in both is one failure, with the error's
 * message and `retryable`. A failed id without an error is retryable ("no reason given"). A
 * repeated id fails its copies in batch order (each match takes the first copy not yet failed);
 * an id matching no remaining event is ignored and reported in `unknownIds`. Every event not
 * failed was delivered: `success_count` is only cross-checked.
 */
export function emitResponseToResult(events: readonly Event[], response: EmitResponse): EmitResponseReading {
  const n = events.length;
  const failedIds = response.failedEventIds ?? [];
  const errors = response.errors ?? [];
  const unknownIds: string[] = [];
  const failures: EventFailure[] = [];
  if (failedIds.length > 0 || errors.length > 0) {
    const take = positionsById(events);
    // Errors by id, in order, to pair with the failed ids.
    const reasons = new Map<string, Array<EmitResponse['errors'][number]>>();
    for (const e of errors) {
      const list = reasons.get(e.eventId);
      if (list) list.push(e);
      else reasons.set(e.eventId, [e]);
    }
    const fail = (id: string, e: EmitResponse['errors'][number] | undefined): void => {
      const index = take(id);
      if (index < 0) unknownIds.push(id);
      else
        failures.push(
          e
            ? { index, retryable: e.retryable, error: e.message || 'plugin gave no message' }
            : { index, retryable: true, error: 'no reason given' },
        );
    };
    for (const id of failedIds) fail(id, reasons.get(id)?.shift());
    // Errors for ids not in failed_event_ids fail their events too: a plugin that reports why an
    // event failed has not delivered it.
    for (const [id, rest] of reasons) for (const e of rest) fail(id, e);
    failures.sort((a, b) => a.index - b.index);
  }
  const reading = { unknownIds, ...countCheck(response.successCount, failures.length, n) };
  return { ...reading, result: resultOfFailures(n, failures) };
}

function countCheck(successCount: bigint, failures: number, batch: number): Pick<EmitResponseReading, 'countMismatch'> {
  if (BigInt(failures) + (successCount ?? 0n) === BigInt(batch)) return {};
  return { countMismatch: { successCount: String(successCount), failures, batch } };
}

/** Adds the failures of `part`, the result for events `[from, to)` of a batch, at their places in the batch. */
function addFailures(into: EventFailure[], part: EmitResult, from: number, to: number): void {
  switch (part.status) {
    case 'success':
      return;
    case 'retryable':
    case 'failed':
      for (let i = from; i < to; i++) into.push({ index: i, retryable: part.status === 'retryable', error: part.error });
      return;
    case 'partial':
      for (const f of part.failures) into.push({ index: from + f.index, retryable: f.retryable, error: f.error });
  }
}

/** `externalEmitter('audit', 'localhost:9002')`: events routed to `audit` go to the plugin there. */
export const externalEmitter = (emitterName: string, address: string, options: ExternalEmitterOptions = {}): ExternalEmitter =>
  new ExternalEmitter({ ...options, name: emitterName, address });
