import pRetry from 'p-retry';
import type { Counter } from 'prom-client';
import type { ComponentContext } from '../../component-context.js';
import { systemTimers, type Timers } from '../../clock.js';
import type { Event } from '../../gen/polku/v1/event.js';
import { splitBatch } from '../batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EventFailure } from '../emitter.js';
import { EmitterWrapper } from './wrap.js';
import { checkOptionKeys, optionKeys } from '../../config/option-keys.js';

export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** First backoff; it grows by `factor` per retry up to `maxTimeoutMs`. Defaults 100 ms, ×2, 5 s. */
  minTimeoutMs?: number;
  factor?: number;
  maxTimeoutMs?: number;
  /** Jitter: multiply each backoff by a random factor in [1, 2). Default true. */
  randomize?: boolean;
  /**
   * No retry starts after this long since the first attempt. An attempt already running is not
   * cut short: wrap the inner emitter with `withTimeout` to bound each attempt. Default 30 s.
   */
  deadlineMs?: number;
}

/** Every key of {@link RetryOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const RETRY_OPTION_KEYS = optionKeys<RetryOptions>({
  retries: true,
  minTimeoutMs: true,
  factor: true,
  maxTimeoutMs: true,
  randomize: true,
  deadlineMs: true,
});

/** Thrown inside p-retry to ask for another attempt. */
class RetryableFailure extends Error {}

/**
 * Retries retryable failures with exponential backoff and jitter (p-retry), within an overall
 * deadline. Each attempt sends only the events still undelivered, so an event that got through is
 * never sent again by this wrapper; a non-retryable failure is final at once. A receiver's
 * `retryAfterMs` is waited out before the backoff. What is still failing at the end is returned
 * retryable, for the emitter queue's own (slower) retry.
 */
export class RetryEmitter extends EmitterWrapper {
  private readonly o: Required<RetryOptions>;
  private timers: Timers = systemTimers;
  private retried: Counter.Internal | undefined;

  constructor(inner: Emitter, options: RetryOptions = {}) {
    super(inner);
    checkOptionKeys(`withRetry("${inner.name}")`, options, RETRY_OPTION_KEYS);
    this.o = {
      retries: options.retries ?? 3,
      minTimeoutMs: options.minTimeoutMs ?? 100,
      factor: options.factor ?? 2,
      maxTimeoutMs: options.maxTimeoutMs ?? 5_000,
      randomize: options.randomize ?? true,
      deadlineMs: options.deadlineMs ?? 30_000,
    };
  }

  override init(ctx: ComponentContext): void {
    this.timers = ctx.timers;
    // The emitter queues' family (created by the hub) counts the wrapper's re-sends too.
    const family = ctx.registry.getSingleMetric('polku_emit_retries_total') as Counter<'emitter'> | undefined;
    this.retried = family?.labels(this.name);
    super.init(ctx);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    /** Indices (into `events`) not yet delivered and still worth retrying, in order. */
    let pending: readonly number[] = events.map((_, i) => i);
    const final: EventFailure[] = [];
    let lastError = '';
    let retryAfterMs: number | undefined;

    const attempt = async (): Promise<void> => {
      const batch = pending.length === events.length ? events : pending.map((i) => events[i]!);
      const result = await this.callInner(batch);
      // Split the indices themselves: what comes back is already in `events`' terms.
      const split = splitBatch(pending, result);
      split.failed.forEach((index, i) => final.push({ index, retryable: false, error: split.failedErrors[i]! }));
      pending = split.retry;
      retryAfterMs = split.retryAfterMs;
      if (pending.length > 0) {
        lastError = split.error;
        throw new RetryableFailure(split.error);
      }
    };

    try {
      await pRetry(attempt, {
        retries: this.o.retries,
        factor: this.o.factor,
        minTimeout: this.o.minTimeoutMs,
        maxTimeout: this.o.maxTimeoutMs,
        randomize: this.o.randomize,
        maxRetryTime: this.o.deadlineMs,
        unref: true,
        shouldRetry: ({ error }) => error instanceof RetryableFailure,
        onFailedAttempt: async () => {
          this.retried?.inc(pending.length);
          if (retryAfterMs !== undefined && retryAfterMs > 0) await this.sleep(retryAfterMs);
        },
      });
    } catch (err) {
      // Out of retries or time: what is pending stays retryable. Anything else is a bug upstream.
      if (!(err instanceof RetryableFailure)) throw err;
    }
    return combine(events.length, final, pending, lastError, retryAfterMs);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.timers.setTimeout(resolve, ms));
  }
}

function combine(
  size: number,
  final: EventFailure[],
  pending: readonly number[],
  lastError: string,
  retryAfterMs: number | undefined,
): EmitResult {
  if (final.length === 0 && pending.length === 0) return EmitResults.success();
  if (pending.length === size) return EmitResults.retryable(lastError, retryAfterMs);
  if (final.length === size && final.every((f) => f.error === final[0]!.error)) return EmitResults.failed(final[0]!.error);
  const failures = [...final, ...pending.map((index) => ({ index, retryable: true, error: lastError }))];
  failures.sort((a, b) => a.index - b.index);
  return EmitResults.partial(failures, retryAfterMs);
}

/** `withRetry(emitter, { retries: 3, deadlineMs: 30_000 })` */
export const withRetry = (inner: Emitter, options?: RetryOptions): RetryEmitter => new RetryEmitter(inner, options);
