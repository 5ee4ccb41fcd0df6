import type { Clock } from '../clock.js';
import { polkuError } from '../errors.js';
import { optionKeys } from '../config/option-keys.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe call is let through. Default 30 s. */
  resetTimeoutMs?: number;
}

/** Every key of {@link CircuitBreakerOptions}. */
export const CIRCUIT_BREAKER_OPTION_KEYS = optionKeys<CircuitBreakerOptions>({ failureThreshold: true, resetTimeoutMs: true });

/** What a caller may do now. */
export type CircuitPermit =
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number; readonly reason: string };

const ALLOWED: CircuitPermit = Object.freeze({ allowed: true });

/**
 * The circuit breaker's state machine, shared by everything that calls a destination that can
 * keep failing (emitters, plugin ingestors): closed → open after `failureThreshold` consecutive
 * failures → after `resetTimeoutMs` half-open, where one probe call decides: success closes,
 * failure opens again. Callers ask `permit()` before a call and report with `success()` or
 * `failure()` after it.
 */
export class CircuitBreaker {
  readonly threshold: number;
  readonly resetMs: number;
  private current: CircuitState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(
    options: CircuitBreakerOptions,
    private readonly clock: () => Clock,
    private readonly onChange: (from: CircuitState, to: CircuitState) => void = () => {},
  ) {
    this.threshold = options.failureThreshold ?? 5;
    this.resetMs = options.resetTimeoutMs ?? 30_000;
    if (!(this.threshold >= 1)) throw polkuError('POLKU_ERR_OPTION_INVALID', `failureThreshold must be at least 1, got ${this.threshold}`);
    if (!(this.resetMs >= 0)) throw polkuError('POLKU_ERR_OPTION_INVALID', `resetTimeoutMs must be 0 or more, got ${this.resetMs}`);
  }

  get state(): CircuitState {
    return this.current;
  }

  permit(): CircuitPermit {
    if (this.current === 'open') {
      const left = this.openedAt + this.resetMs - this.clock().monotonicMs();
      if (left > 0) return { allowed: false, retryAfterMs: left, reason: `circuit open after ${this.threshold} consecutive failures` };
      this.moveTo('half_open');
    }
    if (this.current === 'half_open') {
      if (this.probing) return { allowed: false, retryAfterMs: this.resetMs, reason: 'circuit half-open: a probe call is in flight' };
      this.probing = true;
    }
    return ALLOWED;
  }

  success(): void {
    this.probing = false;
    this.failures = 0;
    if (this.current !== 'closed') this.moveTo('closed');
  }

  failure(): void {
    this.probing = false;
    this.failures++;
    if (this.current === 'half_open' || (this.current === 'closed' && this.failures >= this.threshold)) {
      this.openedAt = this.clock().monotonicMs();
      this.moveTo('open');
    }
  }

  private moveTo(state: CircuitState): void {
    const from = this.current;
    this.current = state;
    this.onChange(from, state);
  }
}
