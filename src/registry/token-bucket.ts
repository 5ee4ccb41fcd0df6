import type { Clock } from '../clock.js';
import { polkuError } from '../errors.js';

/**
 * A token bucket on the injected monotonic clock: `burst` tokens at most, refilled at
 * `ratePerSecond`. Each `take()` spends one token or says how long until one is there.
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1))
      throw polkuError('POLKU_ERR_OPTION_INVALID', 'a token bucket needs a positive rate and a burst of at least 1');
    this.tokens = burst;
    this.lastMs = clock.monotonicMs();
  }

  /** Spends a token: `{ ok: true }`, or `{ ok: false, retryAfterMs }` when the bucket is empty. */
  take(): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.clock.monotonicMs();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastMs) * this.ratePerSecond) / 1000);
    this.lastMs = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond) };
  }
}
