import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import { hasClientId as idFromClient } from '../ingest/assigned-ids.js';
import { LruMap } from './lru-map.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface DeduplicatorOptions {
  /** Default `deduplicator`. */
  name?: string;
  /** How long an event's key is remembered, ms (from when it was first seen). Default 60,000. */
  ttlMs?: number;
  /**
   * Most keys remembered, default 100,000. When full, the oldest is forgotten first, even before
   * its TTL: under that load the window is shorter than `ttlMs` (see
   * `polku_deduplicator_evicted_total`), but memory stays bounded.
   */
  maxKeys?: number;
  /**
   * The identity of an event. Default its id. An empty key means "no identity": the event is
   * never a duplicate and is not remembered.
   */
  key?: (event: Event) => string;
  /**
   * False for an event whose id the gateway assigned (it arrived without one); such events are
   * never duplicates. Default: the mark intake leaves (see src/ingest/assigned-ids.ts). Applied only when
   * deduplicating by id (no `key`), unless given explicitly.
   */
  hasClientId?: (event: Event) => boolean;
}

/** Every key of {@link DeduplicatorOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const DEDUPLICATOR_OPTION_KEYS = optionKeys<DeduplicatorOptions>({
  name: true,
  ttlMs: true,
  maxKeys: true,
  key: true,
  hasClientId: true,
});

/**
 * Refuses, as DUPLICATE, events whose key was seen within the last `ttlMs`: agents retry
 * batches whose Ack they missed, and the retry must not deliver twice. Within one batch the
 * second occurrence is a duplicate too.
 *
 * ```ts
 * deduplicator({ ttlMs: 5 * 60_000, maxKeys: 500_000 })
 * ```
 *
 * The window runs from the first sighting; duplicates do not extend it. Time is the injected
 * clock's monotonic reading; should it step backwards, the deduplicator's time stands still until
 * it catches up, so no entry expires early.
 *
 * Place it late in the pipeline, after steps that refuse retryable events (the rate limiter):
 * a key is remembered when the event passes this step, so an event refused further on and sent
 * again would be refused DUPLICATE. `forget(event)` undoes that for one event.
 */
export class Deduplicator implements Middleware {
  readonly name: string;
  readonly keepsEventsUnchanged = true;
  private readonly ttlMs: number;
  /** Key → monotonic ms first seen. Never touched after insertion, so the front is the oldest. */
  private readonly seen: LruMap<string, number>;
  private readonly keyOf: (event: Event) => string;
  private readonly hasClientId: ((event: Event) => boolean) | undefined;
  private clock: Clock = systemClock;
  /** Latest clock reading used; time never runs backwards here. */
  private lastNow = Number.NEGATIVE_INFINITY;
  private evictedBefore = 0;
  private keysGauge: Gauge.Internal<'middleware'> | undefined;
  private evictedCounter: Counter.Internal | undefined;

  constructor(options: DeduplicatorOptions = {}) {
    this.name = options.name ?? 'deduplicator';
    checkOptionKeys(`deduplicator "${this.name}"`, options, DEDUPLICATOR_OPTION_KEYS);
    this.ttlMs = options.ttlMs ?? 60_000;
    if (!(this.ttlMs > 0)) this.invalid(`ttlMs must be positive, got ${this.ttlMs}`);
    const maxKeys = options.maxKeys ?? 100_000;
    if (!Number.isSafeInteger(maxKeys) || maxKeys <= 0) this.invalid(`maxKeys must be a positive integer, got ${maxKeys}`);
    this.seen = new LruMap(maxKeys);
    const key = options.key;
    this.keyOf = key === undefined ? (e) => e.id : (e) => String(key(e) ?? '');
    this.hasClientId = options.hasClientId ?? (key === undefined ? idFromClient : undefined);
  }

  /** Keys remembered now (≤ maxKeys). */
  get keyCount(): number {
    return this.seen.size;
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.keysGauge = metric(ctx.registry, 'polku_deduplicator_keys', 'Keys a deduplicator remembers', Gauge).labels(this.name);
    this.evictedCounter = metric(
      ctx.registry,
      'polku_deduplicator_evicted_total',
      'Keys a deduplicator forgot before their TTL because its table was full',
      Counter,
    ).labels(this.name);
    this.keysGauge.set(this.seen.size);
    this.evictedCounter.inc(0); // creates the series: zeros rather than gaps
  }

  process(events: Event[], ctx: MiddlewareContext): Event[] {
    const now = (this.lastNow = Math.max(this.lastNow, this.clock.monotonicMs()));
    const ttl = this.ttlMs;
    this.seen.pruneOldest((seenAt) => now - seenAt >= ttl);
    const out: Event[] = [];
    for (const event of events) {
      let key: string;
      try {
        key = this.hasClientId !== undefined && !this.hasClientId(event) ? '' : this.keyOf(event);
      } catch (err) {
        ctx.drop(event, 'MIDDLEWARE_ERROR', `deduplicator "${this.name}" key function threw: ${(err as Error).message}`);
        continue;
      }
      if (key !== '') {
        const seenAt = this.seen.peek(key);
        if (seenAt !== undefined && now - seenAt < ttl) {
          ctx.drop(event, 'DUPLICATE', `duplicate of an event seen in the last ${ttl} ms (deduplicator "${this.name}")`);
          continue;
        }
        this.seen.set(key, now);
      }
      out.push(event);
    }
    this.keysGauge?.set(this.seen.size);
    const evicted = this.seen.evicted;
    if (evicted > this.evictedBefore) {
      this.evictedCounter?.inc(evicted - this.evictedBefore);
      this.evictedBefore = evicted;
    }
    return out;
  }

  /**
   * Forgets the key of an event that passed this step but was refused later (say BUFFER_FULL),
   * so that sending it again is not refused as a duplicate.
   */
  refusedLater(events: readonly Event[]): void {
    for (const event of events) this.forget(event);
  }

  forget(event: Event): void {
    if (this.hasClientId !== undefined && !this.hasClientId(event)) return;
    const key = this.keyOf(event);
    if (key !== '') this.seen.delete(key);
  }

  private invalid(message: string): never {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `deduplicator "${this.name}": ${message}`);
  }
}

/** Builds a {@link Deduplicator}. */
export function deduplicator(options: DeduplicatorOptions = {}): Deduplicator {
  return new Deduplicator(options);
}

/** The registry's metric of that name, or a new one: several deduplicators share one metric, by label. */
function metric<M extends Gauge<'middleware'> | Counter<'middleware'>>(
  registry: Registry,
  name: string,
  help: string,
  Kind: new (config: { name: string; help: string; labelNames: ['middleware']; registers: Registry[] }) => M,
): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? new Kind({ name, help, labelNames: ['middleware'], registers: [registry] });
}
