import {
  connectivityState,
  Metadata,
  status as GrpcStatus,
  type CallOptions,
  type Client,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { systemClock, systemTimers, type Clock, type Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../resilience/circuit-breaker.js';
import { ConcurrencyLimiter } from './limiter.js';
import { PluginMetrics, type CallOutcome, type PluginMethod } from './plugin-metrics.js';

/** A generated client's unary method, bound to its client. */
export type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** Why a call produced no answer. `code` is the gRPC status when the call reached grpc-js. */
export interface CallFailure {
  readonly ok: false;
  readonly outcome: Exclude<CallOutcome, 'ok'>;
  readonly reason: string;
  readonly code?: GrpcStatus;
  /** Circuit open: when a call will be let through again. */
  readonly retryAfterMs?: number;
}

export type CallResult<T> = { readonly ok: true; readonly value: T } | CallFailure;

export interface PluginCallerOptions {
  /** The plugin's configured name: the `plugin` label and the name in messages. */
  plugin: string;
  /** The address as configured, for messages. */
  address: string;
  client: Client;
  connectTimeoutMs: number;
  breaker?: CircuitBreakerOptions;
  /** Calls in flight at most; unbounded when omitted. */
  maxConcurrency?: number;
  /** The plugin's main method, whose call counters start at zero. */
  mainMethod: PluginMethod;
}

/** Statuses that say the plugin itself is failing (not the request): they count for the breaker. */
const PLUGIN_FAULTS = new Set<GrpcStatus>([GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.DATA_LOSS, GrpcStatus.RESOURCE_EXHAUSTED]);

/**
 * Everything between a component and one plugin's gRPC client: the concurrency limit, the
 * circuit breaker, connecting within the connect timeout, deadlines, and the plugin's metrics.
 * Every call resolves to a {@link CallResult}; nothing here throws or rejects.
 *
 * Connection is lazy: the channel connects on the first call, and grpc-js reconnects it after a
 * failure (with a short backoff, see `client.ts`). A call waits for a ready channel at most
 * `connectTimeoutMs`, so a plugin that is not up yet is reported as such rather than as a slow call.
 */
export class PluginCaller {
  readonly plugin: string;
  readonly address: string;
  private readonly o: PluginCallerOptions;
  private readonly breaker: CircuitBreaker;
  private readonly limiter: ConcurrencyLimiter | null;
  private clock: Clock = systemClock;
  private timers: Timers = systemTimers;
  private log: Logger = silentLogger();
  private metrics: PluginMetrics | null = null;
  /** The last plugin fault, cleared by the next answer. */
  private lastFailure: string | null = null;
  private answered = false;
  private closed = false;

  constructor(options: PluginCallerOptions) {
    this.o = options;
    this.plugin = options.plugin;
    this.address = options.address;
    this.breaker = new CircuitBreaker(
      options.breaker ?? {},
      () => this.clock,
      (from, to) => this.log.info({ from, to }, 'plugin circuit state change'),
    );
    this.limiter = options.maxConcurrency === undefined ? null : new ConcurrencyLimiter(options.maxConcurrency, () => this.timers);
  }

  init(ctx: ComponentContext, component: string): void {
    this.clock = ctx.clock;
    this.timers = ctx.timers;
    this.log = ctx.logger.child({ component, plugin: this.plugin, address: this.address });
    this.metrics = new PluginMetrics(ctx.registry, this.plugin, [this.o.mainMethod]);
  }

  get circuit(): CircuitState {
    return this.breaker.state;
  }

  /** Calls in flight and waiting for a slot. */
  get load(): { inFlight: number; queued: number } {
    return { inFlight: this.limiter?.inFlight ?? 0, queued: this.limiter?.queued ?? 0 };
  }

  /**
   * A call through the limit and the breaker. `timeoutMs` bounds all of it: waiting for a slot,
   * connecting (at most `connectTimeoutMs` of it) and the call itself.
   */
  async guarded<Req, Res>(method: PluginMethod, invoke: Unary<Req, Res>, request: Req, timeoutMs: number): Promise<CallResult<Res>> {
    if (this.closed) return fail('unavailable', 'the plugin client is closed');
    const started = this.clock.monotonicMs();
    if (this.limiter && !(await this.limiter.acquire(timeoutMs))) {
      const { inFlight, queued } = this.load;
      this.metrics?.call(method, 'timeout');
      return fail('timeout', `no free call slot within ${timeoutMs} ms (${inFlight} calls in flight, ${queued} waiting)`);
    }
    try {
      if (this.clock.monotonicMs() - started >= timeoutMs) {
        // The slot came just as time ran out: nothing was asked of the plugin.
        this.metrics?.call(method, 'timeout');
        return fail('timeout', `no free call slot within ${timeoutMs} ms`);
      }
      const permit = this.breaker.permit();
      if (!permit.allowed) {
        this.metrics?.call(method, 'circuit_open');
        const last = this.lastFailure ? `; last failure: ${this.lastFailure}` : '';
        return { ok: false, outcome: 'circuit_open', reason: `${permit.reason}${last}`, retryAfterMs: permit.retryAfterMs };
      }
      const callStarted = this.clock.monotonicMs();
      const left = timeoutMs - (callStarted - started);
      const connectMs = Math.min(this.o.connectTimeoutMs, left);
      let result: CallResult<Res>;
      if (!(await this.connect(connectMs))) {
        result = fail('unavailable', `could not connect within ${Math.round(connectMs)} ms`);
      } else {
        result = await this.invoke(invoke, request, timeoutMs - (this.clock.monotonicMs() - started), timeoutMs);
      }
      const fault = !result.ok && isFault(result);
      if (fault) this.breaker.failure();
      else this.breaker.success();
      this.record(method, result, fault, (this.clock.monotonicMs() - callStarted) / 1000);
      return result;
    } finally {
      this.limiter?.release();
    }
  }

  /** A call that bypasses the limit and the breaker (Health, Shutdown) and does not wait to connect. */
  async direct<Req, Res>(method: PluginMethod, invoke: Unary<Req, Res>, request: Req, timeoutMs: number): Promise<CallResult<Res>> {
    if (this.closed) return fail('unavailable', 'the plugin client is closed');
    const started = this.clock.monotonicMs();
    const result = await this.invoke(invoke, request, timeoutMs, timeoutMs);
    const fault = !result.ok && isFault(result);
    this.record(method, result, fault, (this.clock.monotonicMs() - started) / 1000);
    return result;
  }

  /** Sets the health gauge from the plugin's own Health answer. */
  reportHealth(healthy: boolean): void {
    this.metrics?.healthy(healthy);
  }

  /** The plugin as the last calls saw it. */
  status(): { healthy: boolean; message: string } {
    if (this.closed) return { healthy: false, message: `${this.address}: client closed` };
    const state = this.breaker.state;
    if (state !== 'closed') {
      return {
        healthy: false,
        message: `${this.address}: circuit ${state.replace('_', '-')}; last failure: ${this.lastFailure ?? 'none'}`,
      };
    }
    if (this.lastFailure !== null) return { healthy: false, message: `${this.address}: last call failed: ${this.lastFailure}` };
    return { healthy: true, message: this.answered ? `${this.address}: ok` : `${this.address}: not called yet (connects on first use)` };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.o.client.close();
  }

  private connect(ms: number): Promise<boolean> {
    if (ms <= 0) return Promise.resolve(false);
    try {
      if (this.o.client.getChannel().getConnectivityState(true) === connectivityState.READY) return Promise.resolve(true);
    } catch {
      return Promise.resolve(false); // closed
    }
    // Asynchronous: grpc-js watches the channel until it is ready or the deadline passes.
    return new Promise((resolve) => this.o.client.waitForReady(Date.now() + ms, (err) => resolve(!err)));
  }

  private invoke<Req, Res>(invoke: Unary<Req, Res>, request: Req, leftMs: number, budgetMs: number): Promise<CallResult<Res>> {
    if (leftMs <= 0) return Promise.resolve(fail('timeout', `no answer within ${budgetMs} ms`));
    return new Promise((resolve) => {
      try {
        // grpc-js deadlines are wall-clock dates, whatever clock the component was given.
        invoke(request, new Metadata(), { deadline: Date.now() + leftMs }, (err, response) => {
          if (!err) resolve({ ok: true, value: response });
          else resolve(classify(err, budgetMs));
        });
      } catch (err) {
        resolve(fail('unavailable', `call failed: ${(err as Error).message}`));
      }
    });
  }

  private record(method: PluginMethod, result: CallResult<unknown>, fault: boolean, seconds: number): void {
    this.metrics?.call(method, result.ok ? 'ok' : result.outcome, seconds);
    const wasFailing = this.lastFailure !== null;
    if (fault) {
      this.lastFailure = (result as CallFailure).reason;
      if (!wasFailing) this.log.warn({ method, reason: this.lastFailure }, 'plugin call failed; plugin marked unhealthy');
    } else {
      this.answered = true;
      this.lastFailure = null;
      if (wasFailing) this.log.info({ method }, 'plugin answers again');
    }
    if (method !== 'Health') this.metrics?.healthy(!fault);
  }
}

function fail(outcome: Exclude<CallOutcome, 'ok'>, reason: string, code?: GrpcStatus): CallFailure {
  return code === undefined ? { ok: false, outcome, reason } : { ok: false, outcome, reason, code };
}

function classify(err: ServiceError, budgetMs: number): CallFailure {
  const code = err.code as GrpcStatus;
  const details = err.details || err.message;
  if (code === GrpcStatus.DEADLINE_EXCEEDED) return fail('timeout', `no answer within ${budgetMs} ms`, code);
  if (code === GrpcStatus.UNAVAILABLE || code === GrpcStatus.CANCELLED) return fail('unavailable', `${GrpcStatus[code]}: ${details}`, code);
  return fail('error', `${GrpcStatus[code] ?? code}: ${details}`, code);
}

/** Whether a failure says the plugin is down or broken (as opposed to refusing this request). */
function isFault(f: CallFailure): boolean {
  return f.outcome === 'timeout' || f.outcome === 'unavailable' || (f.code !== undefined && PLUGIN_FAULTS.has(f.code));
}
