import { Counter, type Registry } from 'prom-client';
import { systemTimers, type TimerHandle, type Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError, type AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/**
 * Adds to one event (a lookup in a cache or a service). Return a new event, or change the one
 * given and return nothing. Change it only before the promise settles: an enrichment that
 * settles after its timeout is ignored, but the event object it holds has already moved on down
 * the pipeline, and the gateway cannot stop it from being changed there (copying every event to
 * guard against that would cost more than most enrichments).
 */
export type EnrichFn = (event: Event) => Promise<Event | void>;

export interface EnricherOptions {
  /** Default `enricher`. */
  name?: string;
  /** Longest wait for one event's enrichment, ms (> 0; Infinity for none). Default 1000. */
  timeoutMs?: number;
  /** Most enrichments in flight at once across the batch. Default 16. */
  concurrency?: number;
  /** A timed-out event goes on unchanged (`pass`, default) or is refused ENRICH_TIMEOUT (`drop`). */
  onTimeout?: 'pass' | 'drop';
  /** An event whose enrichment failed goes on unchanged (`pass`, default) or is refused MIDDLEWARE_ERROR (`drop`). */
  onError?: 'pass' | 'drop';
}

/** Every key of {@link EnricherOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const ENRICHER_OPTION_KEYS = optionKeys<EnricherOptions>({
  name: true,
  timeoutMs: true,
  concurrency: true,
  onTimeout: true,
  onError: true,
});

/** Why an event did not get its enrichment, when it is refused for it. */
interface Refusal {
  readonly code: AckCode;
  readonly message: string;
}

/**
 * Runs an asynchronous enrichment over each event of the batch, at most `concurrency` at a time,
 * each bounded by `timeoutMs`; the batch goes on, in its original order, once every event is
 * enriched, timed out or failed. The only middleware here that always returns a promise (for a
 * non-empty batch): waiting is its job.
 *
 * ```ts
 * enricher(async (e) => { e.metadata['team'] = await owners.lookup(e.source); }, { timeoutMs: 50 })
 * ```
 *
 * Timeouts and failures are counted in `polku_enrich_timeouts_total` / `polku_enrich_errors_total`
 * whatever happens to the event, since with `pass` nothing else would show them; refused ones
 * also show in the drop metrics. Failures are logged once per batch, with the first error.
 */
export class Enricher implements Middleware {
  readonly name: string;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly dropOnTimeout: boolean;
  private readonly dropOnError: boolean;
  private timers: Timers = systemTimers;
  private log: Logger | undefined;
  private timeouts: Counter.Internal | undefined;
  private errors: Counter.Internal | undefined;

  constructor(
    private readonly enrich: EnrichFn,
    options: EnricherOptions = {},
  ) {
    this.name = options.name ?? 'enricher';
    checkOptionKeys(`enricher "${this.name}"`, options, ENRICHER_OPTION_KEYS);
    if (typeof enrich !== 'function') this.invalid('needs an enrich function');
    this.timeoutMs = options.timeoutMs ?? 1000;
    if (!(this.timeoutMs > 0)) this.invalid(`timeoutMs must be positive, got ${this.timeoutMs}`);
    this.concurrency = options.concurrency ?? 16;
    if (!Number.isSafeInteger(this.concurrency) || this.concurrency <= 0) {
      this.invalid(`concurrency must be a positive integer, got ${this.concurrency}`);
    }
    this.dropOnTimeout = this.action('onTimeout', options.onTimeout) === 'drop';
    this.dropOnError = this.action('onError', options.onError) === 'drop';
  }

  init(ctx: ComponentContext): void {
    this.timers = ctx.timers;
    this.log = ctx.logger.child({ component: 'middleware', middleware: this.name });
    this.timeouts = counter(ctx.registry, 'polku_enrich_timeouts_total', 'Enrichments that did not finish in time').labels(this.name);
    this.errors = counter(ctx.registry, 'polku_enrich_errors_total', 'Enrichments that failed').labels(this.name);
    // inc(0) creates the series: zeros rather than gaps.
    this.timeouts.inc(0);
    this.errors.inc(0);
  }

  process(events: Event[], ctx: MiddlewareContext): Event[] | Promise<Event[]> {
    const n = events.length;
    if (n === 0) return events;
    return new Promise<Event[]>((resolve, reject) => {
      const results: Event[] = new Array<Event>(n);
      const refused: Array<Refusal | undefined> = new Array<Refusal | undefined>(n);
      let next = 0;
      let inFlight = 0;
      let done = 0;
      let timedOut = 0;
      let failed = 0;
      let firstError: unknown;
      let pumping = false;

      const finish = (): void => {
        // Runs inside a promise callback: anything thrown here must reach the hub (which refuses
        // the batch) rather than vanish and leave the batch waiting forever.
        try {
          if (timedOut > 0) this.timeouts?.inc(timedOut);
          if (failed > 0) {
            this.errors?.inc(failed);
            this.log?.warn({ failed, timedOut, err: firstError }, 'enrichment failed for some events');
          }
          const out: Event[] = [];
          // Refusals are reported in input order, whatever order the enrichments settled in.
          for (let i = 0; i < n; i++) {
            const refusal = refused[i];
            if (refusal === undefined) out.push(results[i]!);
            else ctx.drop(events[i]!, refusal.code, refusal.message);
          }
          resolve(out);
        } catch (err) {
          reject(err);
        }
      };

      const settled = (): void => {
        inFlight--;
        done++;
        pump();
      };

      const start = (i: number): void => {
        const event = events[i]!;
        let over = false;
        let timer: TimerHandle | undefined;
        const fail = (err: unknown): void => {
          if (over) return;
          over = true;
          if (timer !== undefined) this.timers.clearTimeout(timer);
          failed++;
          firstError ??= err;
          results[i] = event;
          if (this.dropOnError) {
            refused[i] = { code: 'MIDDLEWARE_ERROR', message: `enricher "${this.name}" failed: ${messageOf(err)}` };
          }
          settled();
        };
        let pending: Promise<Event | void>;
        try {
          pending = this.enrich(event);
        } catch (err) {
          fail(err);
          return;
        }
        if (this.timeoutMs !== Number.POSITIVE_INFINITY) {
          timer = this.timers.setTimeout(() => {
            if (over) return;
            over = true;
            timedOut++;
            results[i] = event;
            if (this.dropOnTimeout) {
              refused[i] = { code: 'ENRICH_TIMEOUT', message: `enricher "${this.name}" took longer than ${this.timeoutMs} ms` };
            }
            settled();
          }, this.timeoutMs);
        }
        // Promise.resolve: a function typed async may still return a plain value.
        Promise.resolve(pending).then((value) => {
          if (over) return; // late: the event already went on without it
          over = true;
          if (timer !== undefined) this.timers.clearTimeout(timer);
          results[i] = value ?? event;
          settled();
        }, fail);
      };

      // A loop, not recursion: enrich functions that throw at once would otherwise nest one
      // stack frame per event of the batch.
      const pump = (): void => {
        if (pumping) return;
        pumping = true;
        while (inFlight < this.concurrency && next < n) {
          inFlight++;
          start(next++);
        }
        pumping = false;
        if (done === n) finish();
      };

      pump();
    });
  }

  private action(what: string, value: 'pass' | 'drop' | undefined): 'pass' | 'drop' {
    const action = value ?? 'pass';
    if (action !== 'pass' && action !== 'drop') this.invalid(`${what} must be "pass" or "drop", got "${String(action)}"`);
    return action;
  }

  private invalid(message: string): never {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `enricher "${this.name}": ${message}`);
  }
}

/** Builds an {@link Enricher}. */
export function enricher(enrich: EnrichFn, options: EnricherOptions = {}): Enricher {
  return new Enricher(enrich, options);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function counter(registry: Registry, name: string, help: string): Counter<'middleware'> {
  return (
    (registry.getSingleMetric(name) as Counter<'middleware'> | undefined) ??
    new Counter({ name, help, labelNames: ['middleware'], registers: [registry] })
  );
}
