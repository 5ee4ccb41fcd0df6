import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, systemTimers, type Clock, type Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import { LruMap } from './lru-map.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/** A token bucket: `rate` tokens per second flow in, at most `burst` are held. One event costs one token. */
export interface BucketLimit {
  /** Tokens per second, > 0. */
  rate: number;
  /** Most tokens held (the largest burst let through at once), ≥ 1. Default: `rate`, at least 1. */
  burst?: number;
}

/** A bucket per key. Keys come from the client, so the table is bounded (see `maxKeys`). */
export interface KeyedLimit extends BucketLimit {
  /** What an event's key is: its `source` (default) or the result of a function. */
  key?: 'source' | ((event: Event) => string);
  /** Takes the key from this metadata entry instead (a tenant id, say). Excludes `key`. */
  tenantKey?: string;
  /**
   * Most keys with a bucket of their own, default 10,000. When full, the least recently used key
   * is forgotten; if it comes back it starts again with a full bucket. So a client cycling
   * through more than `maxKeys` keys escapes its per-key limit: keep a `global` bucket too when
   * keys are not trusted. (In `delay` mode an evicted key's reservations go with it.)
   */
  maxKeys?: number;
}

export interface RateLimiterOptions {
  /** Default `rate-limiter`. */
  name?: string;
  /** One bucket all events share. */
  global?: BucketLimit;
  /**
   * A bucket per key. An event with an empty key (no tenant metadata, say) is not exempt: all
   * such events share the bucket of the key ''.
   */
  perKey?: KeyedLimit;
  /**
   * `refuse` (default): an event without a token is refused RATE_LIMITED with a retry-after.
   * `delay`: the batch waits until its events have tokens, at most `maxDelayMs`; an event that
   * would wait longer is refused.
   */
  onLimit?: 'refuse' | 'delay';
  /** Longest wait in `delay` mode, ms. Default 1000. */
  maxDelayMs?: number;
}

/** Every key of {@link RateLimiterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const RATE_LIMITER_OPTION_KEYS = optionKeys<RateLimiterOptions>({
  name: true,
  global: true,
  perKey: true,
  onLimit: true,
  maxDelayMs: true,
});
const BUCKET_LIMIT_KEYS = optionKeys<BucketLimit>({ rate: true, burst: true });
const KEYED_LIMIT_KEYS = optionKeys<KeyedLimit>({ rate: true, burst: true, key: true, tenantKey: true, maxKeys: true });

/** A token bucket's state; shared with the per-tenant quotas (src/tenants). */
export interface Bucket {
  tokens: number;
  /** Monotonic ms of the last refill. */
  lastMs: number;
}

/** Float slack so that exactly enough elapsed time counts as a whole token. */
const EPSILON = 1e-9;

/**
 * Token-bucket rate limiting, globally and/or per key (source, tenant, or any function of the event).
 *
 * ```ts
 * rateLimiter({ global: { rate: 5000, burst: 10000 }, perKey: { tenantKey: 'tenant', rate: 100 } })
 * ```
 *
 * An event passes only when every bucket that applies to it has a token, and then takes one from
 * each; a refused event costs nothing. Time is the injected clock's monotonic reading: a jump
 * forward refills at most `burst`, and a jump backwards mints nothing.
 *
 * In `delay` mode an event reserves its token ahead of time, driving the balance below zero; its
 * wait is how long the bucket takes to pay that back. Later events (in this batch or the next)
 * queue behind the reservations, so events keep their order. The batch is one unit: it resolves
 * once, after its longest wait, using one timer.
 */
export class RateLimiter implements Middleware {
  readonly name: string;
  readonly keepsEventsUnchanged = true;
  private readonly global: Required<BucketLimit> | undefined;
  private readonly perKey: Required<BucketLimit> | undefined;
  private readonly globalBucket: Bucket | undefined;
  private readonly buckets: LruMap<string, Bucket> | undefined;
  private readonly keyOf: (event: Event) => string;
  private readonly keyLabel: string;
  private readonly delay: boolean;
  private readonly maxDelayMs: number;
  private clock: Clock = systemClock;
  private timers: Timers = systemTimers;
  private keysGauge: Gauge.Internal<'middleware'> | undefined;
  private delayedCounter: Counter.Internal | undefined;

  constructor(options: RateLimiterOptions) {
    this.name = options.name ?? 'rate-limiter';
    checkOptionKeys(`rateLimiter "${this.name}"`, options, RATE_LIMITER_OPTION_KEYS);
    checkOptionKeys(`rateLimiter "${this.name}"`, options.global, BUCKET_LIMIT_KEYS, 'global.');
    checkOptionKeys(`rateLimiter "${this.name}"`, options.perKey, KEYED_LIMIT_KEYS, 'perKey.');
    if (options.global === undefined && options.perKey === undefined) this.invalid('give global and/or perKey limits');
    this.global = options.global && this.limit('global', options.global);
    // lastMs NaN until the first batch: the clock is known only after init, and a NaN reading
    // refills nothing, so the bucket starts full.
    this.globalBucket = this.global && { tokens: this.global.burst, lastMs: Number.NaN };
    const onLimit = options.onLimit ?? 'refuse';
    if (onLimit !== 'refuse' && onLimit !== 'delay') this.invalid(`onLimit must be "refuse" or "delay", got "${String(onLimit)}"`);
    this.delay = onLimit === 'delay';
    this.maxDelayMs = options.maxDelayMs ?? 1000;
    if (!(this.maxDelayMs >= 0) || !Number.isFinite(this.maxDelayMs)) this.invalid(`maxDelayMs must be ≥ 0, got ${this.maxDelayMs}`);
    const keyed = options.perKey;
    this.keyOf = () => '';
    this.keyLabel = 'key';
    if (keyed !== undefined) {
      this.perKey = this.limit('perKey', keyed);
      const maxKeys = keyed.maxKeys ?? 10_000;
      if (!Number.isSafeInteger(maxKeys) || maxKeys <= 0) this.invalid(`perKey.maxKeys must be a positive integer, got ${maxKeys}`);
      this.buckets = new LruMap(maxKeys);
      if (keyed.tenantKey !== undefined && keyed.key !== undefined) this.invalid('perKey takes key or tenantKey, not both');
      const { key, tenantKey } = keyed;
      if (tenantKey !== undefined) {
        // hasOwn: a tenant key named "constructor" must not read Object.prototype.
        this.keyOf = (e) => (Object.hasOwn(e.metadata, tenantKey) ? e.metadata[tenantKey]! : '');
        this.keyLabel = `metadata "${tenantKey}"`;
      } else if (typeof key === 'function') {
        this.keyOf = (e) => String(key(e) ?? '');
      } else if (key === undefined || key === 'source') {
        this.keyOf = (e) => e.source;
        this.keyLabel = 'source';
      } else {
        this.invalid(`perKey.key must be "source" or a function`);
      }
    }
  }

  /** Keys holding a bucket now (≤ maxKeys). */
  get keyCount(): number {
    return this.buckets?.size ?? 0;
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.timers = ctx.timers;
    this.keysGauge = gauge(ctx.registry).labels(this.name);
    this.keysGauge.set(this.keyCount);
    this.delayedCounter = delayedCounter(ctx.registry).labels(this.name);
    this.delayedCounter.inc(0); // creates the series: zeros rather than gaps
  }

  process(events: Event[], ctx: MiddlewareContext): Event[] | Promise<Event[]> {
    const now = this.clock.monotonicMs();
    const global = this.globalBucket;
    if (global !== undefined) refill(global, now, this.global!);
    const out: Event[] = [];
    let longestWait = 0;
    let delayed = 0;
    // A batch usually comes from one source (one tenant): look its bucket up once, not per event.
    let lastKey: string | undefined;
    let lastBucket: Bucket | undefined;
    for (const event of events) {
      let bucket: Bucket | undefined;
      let key = '';
      if (this.buckets !== undefined) {
        try {
          key = this.keyOf(event);
        } catch (err) {
          ctx.drop(event, 'MIDDLEWARE_ERROR', `rate limiter "${this.name}" key function threw: ${(err as Error).message}`);
          continue;
        }
        if (key === lastKey) bucket = lastBucket;
        else {
          bucket = this.bucketOf(key, now);
          lastKey = key;
          lastBucket = bucket;
        }
      }
      const keyWait = bucket === undefined ? 0 : waitMs(bucket, this.perKey!);
      const globalWait = global === undefined ? 0 : waitMs(global, this.global!);
      const wait = Math.max(keyWait, globalWait);
      if (wait === 0 || (this.delay && wait <= this.maxDelayMs)) {
        if (bucket !== undefined) bucket.tokens -= 1;
        if (global !== undefined) global.tokens -= 1;
        if (wait > 0) {
          delayed++;
          if (wait > longestWait) longestWait = wait;
        }
        out.push(event);
      } else {
        ctx.drop(event, 'RATE_LIMITED', this.refusal(key, keyWait, globalWait));
      }
    }
    this.keysGauge?.set(this.keyCount);
    if (delayed === 0) return out;
    this.delayedCounter?.inc(delayed);
    return new Promise((resolve) => {
      this.timers.setTimeout(() => resolve(out), Math.ceil(longestWait));
    });
  }

  /** The key's bucket, refilled to `now`; a new key (or one evicted earlier) starts full. */
  private bucketOf(key: string, now: number): Bucket {
    let bucket = this.buckets!.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.perKey!.burst, lastMs: now };
      this.buckets!.set(key, bucket);
    } else {
      refill(bucket, now, this.perKey!);
    }
    return bucket;
  }

  private refusal(key: string, keyWait: number, globalWait: number): string {
    const short: string[] = [];
    if (keyWait > 0) short.push(`per-key bucket for ${this.keyLabel} ${JSON.stringify(clip(key))} (${describe(this.perKey!)})`);
    if (globalWait > 0) short.push(`global bucket (${describe(this.global!)})`);
    const retryMs = Math.ceil(Math.max(keyWait, globalWait));
    return `rate limit exceeded: ${short.join(' and ')}; retry after ${retryMs} ms`;
  }

  private limit(what: string, limit: BucketLimit): Required<BucketLimit> {
    const rate = limit.rate;
    if (!(rate > 0) || !Number.isFinite(rate)) this.invalid(`${what}.rate must be a positive number, got ${rate}`);
    const burst = limit.burst ?? Math.max(1, rate);
    if (!(burst >= 1) || !Number.isFinite(burst)) this.invalid(`${what}.burst must be at least 1, got ${burst}`);
    return { rate, burst };
  }

  private invalid(message: string): never {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `rate limiter "${this.name}": ${message}`);
  }
}

/** Builds a {@link RateLimiter}. */
export function rateLimiter(options: RateLimiterOptions): RateLimiter {
  return new RateLimiter(options);
}

/**
 * Adds the tokens earned since the last refill, capped at `burst`. A clock reading earlier than
 * the last one (a monotonic clock should never do this, but a faulty or replaced one might) adds
 * nothing and becomes the new reference, so the bucket neither mints tokens nor stays frozen
 * until the clock catches up again.
 */
export function refill(bucket: Bucket, now: number, limit: Required<BucketLimit>): void {
  const elapsed = now - bucket.lastMs;
  if (elapsed > 0) bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsed * limit.rate) / 1000);
  if (!Number.isNaN(now)) bucket.lastMs = now;
}

/** Milliseconds until the bucket holds a whole token; 0 when it holds one now. */
export function waitMs(bucket: Bucket, limit: Required<BucketLimit>): number {
  if (bucket.tokens >= 1 - EPSILON) return 0;
  return ((1 - bucket.tokens) * 1000) / limit.rate;
}

function describe(limit: Required<BucketLimit>): string {
  return `${limit.rate}/s, burst ${limit.burst}`;
}

/** Keys are client values: keep messages short whatever they send. */
function clip(key: string): string {
  return key.length > 64 ? `${key.slice(0, 64)}…` : key;
}

function gauge(registry: Registry): Gauge<'middleware'> {
  const name = 'polku_rate_limiter_keys';
  return (
    (registry.getSingleMetric(name) as Gauge<'middleware'> | undefined) ??
    new Gauge({ name, help: 'Keys holding a per-key bucket in a rate limiter', labelNames: ['middleware'], registers: [registry] })
  );
}

function delayedCounter(registry: Registry): Counter<'middleware'> {
  const name = 'polku_rate_limiter_delayed_total';
  return (
    (registry.getSingleMetric(name) as Counter<'middleware'> | undefined) ??
    new Counter({
      name,
      help: 'Events a rate limiter held back until they had tokens (delay mode)',
      labelNames: ['middleware'],
      registers: [registry],
    })
  );
}
