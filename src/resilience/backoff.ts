/** Growth of the delay per failed attempt unless a policy says otherwise: doubling. */
export const DEFAULT_BACKOFF_FACTOR = 2;
/**
 * Exponents past this add nothing (2^30 times any delay worth waiting exceeds every cap) and
 * would only push the arithmetic towards Infinity.
 */
const MAX_EXPONENT = 30;

/** How a retry loop waits: exponential from `initialMs`, capped at `maxMs`, optionally jittered. */
export interface BackoffPolicy {
  /** The wait after the first failure. */
  readonly initialMs: number;
  /** No wait (before jitter) is longer than this. */
  readonly maxMs: number;
  /** Growth per failure. Default {@link DEFAULT_BACKOFF_FACTOR}. */
  readonly factor?: number;
  /**
   * Jitter: a source of numbers in [0, 1); each wait is multiplied by `1 + jitter()` (so up to
   * twice as long) and rounded, spreading out retries that failed together. Omitted: no jitter.
   * Tests inject a fixed function.
   */
  readonly jitter?: () => number;
}

/**
 * The wait before retrying after `attempt` failures in a row (1 for the first):
 * `min(initialMs × factor^(attempt − 1), maxMs)`, then jittered if the policy says so.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), MAX_EXPONENT);
  const base = Math.min(policy.initialMs * (policy.factor ?? DEFAULT_BACKOFF_FACTOR) ** exponent, policy.maxMs);
  return policy.jitter ? Math.round(base * (1 + policy.jitter())) : base;
}

/**
 * A retry loop's failure count with its policy, for loops that retry until something succeeds
 * (a watch restarting, a registration): `next()` on each failure, `reset()` on success.
 */
export class Backoff {
  private failures = 0;

  constructor(private readonly policy: BackoffPolicy) {}

  /** Counts a failure and returns how long to wait before the next try. */
  next(): number {
    this.failures++;
    return backoffDelay(this.failures, this.policy);
  }

  /** Something succeeded: the next failure waits `initialMs` again. */
  reset(): void {
    this.failures = 0;
  }
}
