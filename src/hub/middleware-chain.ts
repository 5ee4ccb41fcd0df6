import { AckCodes, type AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Middleware, MiddlewareContext } from '../middleware/middleware.js';
import type { Logger } from '../observability/logger.js';
import type { BatchOutcome } from './batch-outcome.js';
import type { HubMetrics } from './hub-metrics.js';

/** What the chain needs of the batch it runs: where it came from and where refusals go. */
export interface ChainBatch {
  readonly source: string;
  readonly cluster: string;
  readonly receivedAtNs: bigint;
  readonly outcome: BatchOutcome;
  /**
   * Events refused retryably after middleware began, with the stage that refused them (a
   * middleware's index, or the middleware count for delivery). Kept only when some middleware
   * wants to hear of them (`refusedLater`).
   */
  laterRefusals?: Array<{ event: Event; stage: number }>;
}

export interface MiddlewareChainOptions {
  middleware: readonly Middleware[];
  metrics: HubMetrics;
  logger: Logger;
}

const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as Promise<T>)?.then === 'function';

/**
 * The pipeline's middleware, run in order over a batch. Synchronous unless a step returns a
 * promise. A step that throws refuses what it was given (MIDDLEWARE_ERROR). Middleware that keeps
 * per-event state (a deduplicator's keys) hears, once the batch is settled, of the events it let
 * through that a later stage refused retryably, so a resend is not taken for a duplicate.
 */
export class MiddlewareChain {
  private readonly steps: readonly Middleware[];
  /** Indices of middleware with a `refusedLater` hook. */
  private readonly undoers: readonly number[];
  private readonly metrics: HubMetrics;
  private readonly log: Logger;
  /** Events each step was given and kept, added once per batch for `polku top` (no per-event work). */
  private readonly given: number[];
  private readonly kept: number[];

  constructor(options: MiddlewareChainOptions) {
    this.steps = options.middleware;
    this.given = options.middleware.map(() => 0);
    this.kept = options.middleware.map(() => 0);
    this.undoers = options.middleware.flatMap((m, i) => (m.refusedLater ? [i] : []));
    this.metrics = options.metrics;
    this.log = options.logger;
  }

  /** How many steps there are; also the stage number of delivery, after the last step. */
  get length(): number {
    return this.steps.length;
  }

  /** True when no step changes the events it keeps (they may be stored as the bytes they came in). */
  get keepsEventsUnchanged(): boolean {
    return this.steps.every((m) => m.keepsEventsUnchanged === true);
  }

  /** Each step's name with the events it was given and kept since the hub started. */
  counts(): Array<{ name: string; given: number; kept: number }> {
    return this.steps.map((m, i) => ({ name: m.name, given: this.given[i]!, kept: this.kept[i]! }));
  }

  /** Runs the steps from `from` on; stops early once no event is left. */
  run(batch: ChainBatch, events: Event[], from = 0): Event[] | Promise<Event[]> {
    const ctx = this.contextFor(batch);
    let current = events;
    for (let i = from; i < this.steps.length && current.length > 0; i++) {
      const step = this.steps[i]!;
      ctx.step = step.name;
      ctx.stage = i;
      let result: Event[] | Promise<Event[]>;
      this.given[i]! += current.length;
      try {
        result = step.process(current, ctx);
      } catch (err) {
        return this.failed(batch, step, current, err);
      }
      if (isPromise(result)) {
        const pending = current;
        const stage = i;
        return result.then(
          (next) => {
            this.kept[stage]! += next.length;
            return this.run(batch, next, stage + 1);
          },
          (err: unknown) => this.failed(batch, step, pending, err),
        );
      }
      this.kept[i]! += result.length;
      current = result;
    }
    return current;
  }

  /** Remembers a retryable refusal for the middleware before `stage` that keep per-event state. */
  noteLaterRefusal(batch: ChainBatch, event: Event, stage: number): void {
    if (this.undoers.length === 0 || stage <= this.undoers[0]!) return;
    (batch.laterRefusals ??= []).push({ event, stage });
  }

  /** Tells each middleware with a `refusedLater` hook of the events later stages refused. */
  undoForLaterRefusals(refusals: ReadonlyArray<{ event: Event; stage: number }>): void {
    for (const index of this.undoers) {
      const later = refusals.filter((r) => r.stage > index).map((r) => r.event);
      if (later.length === 0) continue;
      try {
        this.steps[index]!.refusedLater!(later);
      } catch (err) {
        this.log.error({ middleware: this.steps[index]!.name, err }, 'refusedLater hook failed');
      }
    }
  }

  private failed(batch: ChainBatch, step: Middleware, events: Event[], err: unknown): Event[] {
    this.log.error({ middleware: step.name, err }, 'middleware failed; batch refused');
    const message = `middleware "${step.name}" failed: ${err instanceof Error ? err.message : String(err)}`;
    for (const e of events) batch.outcome.refuse(e.id, 'MIDDLEWARE_ERROR', message);
    this.metrics.middlewareDropped(step.name, 'MIDDLEWARE_ERROR', events.length);
    return [];
  }

  private contextFor(batch: ChainBatch): MiddlewareContext & { step: string; stage: number } {
    const ctx = {
      source: batch.source,
      cluster: batch.cluster,
      receivedAtNs: batch.receivedAtNs,
      step: '',
      stage: 0,
      drop: (event: Event, code: AckCode, message: string) => {
        batch.outcome.refuse(event.id, code, message);
        this.metrics.middlewareDropped(ctx.step, code);
        if (AckCodes[code].retryable) this.noteLaterRefusal(batch, event, ctx.stage);
      },
    };
    return ctx;
  }
}
