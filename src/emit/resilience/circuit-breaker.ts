import { Counter, Gauge } from 'prom-client';
import type { ComponentContext } from '../../component-context.js';
import { systemClock, type Clock } from '../../clock.js';
import type { Event } from '../../gen/polku/v1/event.js';
import type { Logger } from '../../observability/logger.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth } from '../emitter.js';
import { EmitterWrapper } from './wrap.js';

export type CircuitState = 'closed' | 'open' | 'half_open';
const STATE_VALUE: Record<CircuitState, number> = { closed: 0, open: 1, half_open: 2 };

export interface CircuitBreakerOptions {
  /** Consecutive failed batches that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe batch is let through. Default 30 s. */
  resetTimeoutMs?: number;
}

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
  private readonly threshold: number;
  private readonly resetMs: number;
  private clock: Clock = systemClock;
  private log: Logger | undefined;
  private current: CircuitState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private stateGauge: Gauge<'emitter'> | undefined;
  private transitions: Counter<'emitter' | 'to'> | undefined;

  constructor(inner: Emitter, options: CircuitBreakerOptions = {}) {
    super(inner);
    this.threshold = options.failureThreshold ?? 5;
    this.resetMs = options.resetTimeoutMs ?? 30_000;
    if (!(this.threshold >= 1)) throw new RangeError(`failureThreshold must be at least 1, got ${this.threshold}`);
  }

  get state(): CircuitState {
    return this.current;
  }

  override init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.log = ctx.logger.child({ component: 'circuit-breaker', emitter: this.name });
    this.stateGauge = registered(ctx, 'polku_circuit_state', () =>
      new Gauge({ name: 'polku_circuit_state', help: 'Circuit breaker state: 0 closed, 1 open, 2 half-open', labelNames: ['emitter'], registers: [ctx.registry] }),
    );
    this.transitions = registered(ctx, 'polku_circuit_transitions_total', () =>
      new Counter({ name: 'polku_circuit_transitions_total', help: 'Circuit breaker state changes', labelNames: ['emitter', 'to'], registers: [ctx.registry] }),
    );
    this.stateGauge.set({ emitter: this.name }, STATE_VALUE[this.current]);
    super.init(ctx);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.current === 'open') {
      const left = this.openedAt + this.resetMs - this.clock.monotonicMs();
      if (left > 0) return EmitResults.retryable(`circuit open after ${this.threshold} failed batches`, left);
      this.moveTo('half_open');
    }
    if (this.current === 'half_open') {
      if (this.probing) return EmitResults.retryable('circuit half-open: a probe batch is in flight', this.resetMs);
      this.probing = true;
    }
    const result = await this.callInner(events);
    this.probing = false;
    if (deliveredNothing(result, events.length)) this.onFailure();
    else this.onSuccess();
    return result;
  }

  override async health(): Promise<EmitterHealth> {
    if (this.current !== 'closed') return { healthy: false, message: `circuit ${this.current.replace('_', '-')}` };
    return super.health();
  }

  private onFailure(): void {
    this.failures++;
    if (this.current === 'half_open' || (this.current === 'closed' && this.failures >= this.threshold)) {
      this.openedAt = this.clock.monotonicMs();
      this.moveTo('open');
    }
  }

  private onSuccess(): void {
    this.failures = 0;
    if (this.current !== 'closed') this.moveTo('closed');
  }

  private moveTo(state: CircuitState): void {
    this.log?.info({ from: this.current, to: state, failures: this.failures }, 'circuit state change');
    this.current = state;
    this.stateGauge?.set({ emitter: this.name }, STATE_VALUE[state]);
    this.transitions?.inc({ emitter: this.name, to: state });
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
