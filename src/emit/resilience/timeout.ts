import type { ComponentContext } from '../../component-context.js';
import { systemTimers, type Timers } from '../../clock.js';
import type { Event } from '../../gen/polku/v1/event.js';
import { EmitResults, type EmitResult, type Emitter } from '../emitter.js';
import { EmitterWrapper } from './wrap.js';
import { polkuError } from '../../errors.js';
import { checkOptionKeys, optionKeys } from '../../config/option-keys.js';

export interface TimeoutOptions {
  /** Longest wait for one batch. */
  timeoutMs: number;
}

/** Every key of {@link TimeoutOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const TIMEOUT_OPTION_KEYS = optionKeys<TimeoutOptions>({ timeoutMs: true });

/**
 * Bounds how long one batch may take: past `timeoutMs` the batch is answered `retryable`.
 *
 * The inner call cannot be cancelled, so it may still deliver after the timeout; the retry then
 * sends those events again. This is where at-least-once delivery can duplicate an event.
 */
export class TimeoutEmitter extends EmitterWrapper {
  private timers: Timers = systemTimers;

  constructor(
    inner: Emitter,
    private readonly options: TimeoutOptions,
  ) {
    super(inner);
    checkOptionKeys(`withTimeout("${inner.name}")`, options, TIMEOUT_OPTION_KEYS);
    if (!(options.timeoutMs > 0)) throw polkuError('POLKU_ERR_OPTION_INVALID', `timeoutMs must be positive, got ${options.timeoutMs}`);
  }

  override init(ctx: ComponentContext): void {
    this.timers = ctx.timers;
    super.init(ctx);
  }

  emit(events: readonly Event[]): Promise<EmitResult> {
    return new Promise((resolve) => {
      let settled = false;
      const timer = this.timers.setTimeout(() => {
        if (settled) return;
        settled = true;
        resolve(EmitResults.retryable(`timed out after ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      void this.callInner(events).then((result) => {
        if (settled) return;
        settled = true;
        this.timers.clearTimeout(timer);
        resolve(result);
      });
    });
  }
}

/** `withTimeout(emitter, { timeoutMs: 2_000 })` */
export const withTimeout = (inner: Emitter, options: TimeoutOptions): TimeoutEmitter => new TimeoutEmitter(inner, options);
