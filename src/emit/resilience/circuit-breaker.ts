import { Counter, Gauge } from 'prom-client';
import type { ComponentContext } from '../../component-context.js';
import { systemClock, type Clock } from '../../clock.js';
import type { Event } from '../../gen/polku/v1/event.js';
import type { Logger } from '../../observability/logger.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth } from '../emitter.js';
import {
  CIRCUIT_BREAKER_OPTION_KEYS,
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitState,
} from '../../resilience/circuit-breaker.js';
import { checkOptionKeys } from '../../config/option-keys.js';
import { EmitterWrapper } from './wrap.js';

export type { CircuitBreakerOptions, CircuitState };

const STATE_VALUE: Record<CircuitState, number> = { closed: 0, open: 1, half_open: 2 };

/**
 * Stops calling a destination that keeps failing. After `failureThreshold` consecutive batches
 * with nothing delivered, the circuit opens: batches are answered `retryable` at once (with the
 * time left as `retryAfterMs`) without calling the destination. After `resetTimeoutMs` one batch
 * is let through (half-open): success closes the circuit, failure opens it again.
 *
 * Metrics: `polku_circuit_state{emitter}` (0 closed, 1 open, 2 half-open) and
 * `polku_circuit_transitions_total{emitter,to}`.
 */
export class CircuitBreakerEmitter extends EmitterWrapper {
  private readonly breaker: CircuitBreaker;
  private clock: Clock = systemClock;
  private log: Logger | undefined;
  private stateGauge: Gauge<'emitter'> | undefined;
  private transitions: Counter<'emitter' | 'to'> | undefined;

  constructor(inner: Emitter, options: CircuitBreakerOptions = {}) {
    super(inner);
    checkOptionKeys(`withCircuitBreaker("${inner.name}")`, options, CIRCUIT_BREAKER_OPTION_KEYS);
    this.breaker = new CircuitBreaker(
      options,
      () => this.clock,
      (from, to) => this.changed(from, to),
    );
  }

  get state(): CircuitState {
    return this.breaker.state;
  }

  override init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.log = ctx.logger.child({ component: 'circuit-breaker', emitter: this.name });
    this.stateGauge = registered(
      ctx,
      'polku_circuit_state',
      () =>
        new Gauge({
          name: 'polku_circuit_state',
          help: 'Circuit breaker state: 0 closed, 1 open, 2 half-open',
          labelNames: ['emitter'],
          registers: [ctx.registry],
        }),
    );
    this.transitions = registered(
      ctx,
      'polku_circuit_transitions_total',
      () =>
        new Counter({
          name: 'polku_circuit_transitions_total',
          help: 'Circuit breaker state changes',
          labelNames: ['emitter', 'to'],
          registers: [ctx.registry],
        }),
    );
    this.stateGauge.set({ emitter: this.name }, STATE_VALUE[this.breaker.state]);
    super.init(ctx);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    const permit = this.breaker.permit();
    if (!permit.allowed) return EmitResults.retryable(permit.reason, permit.retryAfterMs);
    const result = await this.callInner(events);
    if (deliveredNothing(result, events.length)) this.breaker.failure();
    else this.breaker.success();
    return result;
  }

  override async health(): Promise<EmitterHealth> {
    const state = this.breaker.state;
    if (state !== 'closed') return { healthy: false, message: `circuit ${state.replace('_', '-')}` };
    return super.health();
  }

  private changed(from: CircuitState, to: CircuitState): void {
    this.log?.info({ from, to }, 'circuit state change');
    this.stateGauge?.set({ emitter: this.name }, STATE_VALUE[to]);
    this.transitions?.inc({ emitter: this.name, to });
  }
}

/** A batch "failed" for the breaker when none of its events got through. */
function deliveredNothing(result: EmitResult, size: number): boolean {
  if (result.status === 'success') return false;
  if (result.status === 'partial') return result.failures.length >= size;
  return true;
}

/** Several breakers share one registry: the metric families are created once. */
function registered<T>(ctx: ComponentContext, name: string, create: () => T): T {
  return (ctx.registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** `withCircuitBreaker(emitter, { failureThreshold: 5, resetTimeoutMs: 30_000 })` */
export const withCircuitBreaker = (inner: Emitter, options?: CircuitBreakerOptions): CircuitBreakerEmitter =>
  new CircuitBreakerEmitter(inner, options);
