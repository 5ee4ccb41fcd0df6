import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface SamplerOptions {
  /** Default `sampler`. */
  name?: string;
  /** Fraction of events kept, 0..1. Default 1 (keep all but what `rates` says). */
  rate?: number;
  /**
   * Rates by event-type prefix, e.g. `{ 'debug.': 0.01 }`. The longest matching prefix wins;
   * events no prefix matches use `rate`.
   */
  rates?: Readonly<Record<string, number>>;
  /**
   * What the decision hangs on. Default the event id. A string names a metadata entry (say
   * `'trace_id'`), so every event of a trace is kept or dropped together; a function computes the
   * key. When the entry is missing or the function returns '', the event id is used instead, so
   * such events are sampled one by one rather than all kept or all dropped as one group.
   */
  key?: string | ((event: Event) => string);
}

/** Every key of {@link SamplerOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const SAMPLER_OPTION_KEYS = optionKeys<SamplerOptions>({ name: true, rate: true, rates: true, key: true });

interface PrefixRate {
  readonly prefix: string;
  readonly rate: number;
  readonly threshold: number;
}

const TWO_POW_32 = 2 ** 32;

/**
 * Keeps a fraction of events, deterministically: the key is hashed to a number in [0, 2³²) and
 * the event is kept when that number is below `rate × 2³²`. The same key is decided the same way
 * by every sampler with the same rate, in any process, forever; so a retried event meets the
 * same fate, and related events sharing a key travel together. A lower rate keeps a subset of
 * what a higher rate keeps. The events left out are refused SAMPLED_OUT.
 *
 * ```ts
 * sampler({ rate: 0.5, rates: { 'debug.': 0.01 }, key: 'trace_id' })
 * ```
 */
export class Sampler implements Middleware {
  readonly name: string;
  readonly keepsEventsUnchanged = true;
  private readonly threshold: number;
  private readonly rate: number;
  /** Longest prefix first, so the first match is the most specific. */
  private readonly prefixes: readonly PrefixRate[];
  private readonly keyOf: (event: Event) => string;

  constructor(options: SamplerOptions = {}) {
    this.name = options.name ?? 'sampler';
    checkOptionKeys(`sampler "${this.name}"`, options, SAMPLER_OPTION_KEYS);
    this.rate = this.checkRate('rate', options.rate ?? 1);
    this.threshold = this.rate * TWO_POW_32;
    this.prefixes = Object.entries(options.rates ?? {})
      .map(([prefix, r]) => {
        const rate = this.checkRate(`rates["${prefix}"]`, r);
        return { prefix, rate, threshold: rate * TWO_POW_32 };
      })
      .sort((a, b) => b.prefix.length - a.prefix.length);
    const key = options.key;
    if (key === undefined) this.keyOf = (e) => e.id;
    else if (typeof key === 'function') this.keyOf = (e) => String(key(e) ?? '') || e.id;
    else if (typeof key === 'string' && key !== '') this.keyOf = (e) => (Object.hasOwn(e.metadata, key) && e.metadata[key]) || e.id;
    else throw polkuError('POLKU_ERR_PIPELINE_INVALID', `sampler "${this.name}": key must be a metadata key name or a function`);
  }

  process(events: Event[], ctx: MiddlewareContext): Event[] {
    const out: Event[] = [];
    for (const event of events) {
      const rule = this.ruleOf(event.eventType);
      const threshold = rule?.threshold ?? this.threshold;
      // Rate 1 and 0 need no hash: every hash is below 2³² and none is below 0.
      if (threshold >= TWO_POW_32) {
        out.push(event);
        continue;
      }
      let key: string;
      try {
        key = threshold <= 0 ? '' : this.keyOf(event);
      } catch (err) {
        ctx.drop(event, 'MIDDLEWARE_ERROR', `sampler "${this.name}" key function threw: ${(err as Error).message}`);
        continue;
      }
      if (threshold > 0 && hash32(key) < threshold) {
        out.push(event);
      } else {
        const why = rule === undefined ? `rate ${this.rate}` : `rate ${rule.rate} for event types "${rule.prefix}"*`;
        ctx.drop(event, 'SAMPLED_OUT', `sampled out by "${this.name}" (${why})`);
      }
    }
    return out;
  }

  /** True when an event with this key and type would be kept (for tests and dry runs). */
  keeps(key: string, eventType = ''): boolean {
    const threshold = this.ruleOf(eventType)?.threshold ?? this.threshold;
    return hash32(key) < threshold;
  }

  private ruleOf(eventType: string): PrefixRate | undefined {
    for (const p of this.prefixes) if (eventType.startsWith(p.prefix)) return p;
    return undefined;
  }

  private checkRate(what: string, rate: number): number {
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `sampler "${this.name}": ${what} must be between 0 and 1, got ${String(rate)}`);
    }
    return rate;
  }
}

/** Builds a {@link Sampler}. */
export function sampler(options: SamplerOptions = {}): Sampler {
  return new Sampler(options);
}

/**
 * FNV-1a (32-bit) over the string's UTF-16 code units, then murmur3's final mix.
 *
 * FNV-1a is a few multiplies per character and needs no encoding step or crypto call. Over
 * UTF-16 code units rather than UTF-8 bytes (identical for ASCII ids, which is nearly all of
 * them): the result is stable across processes and versions of this code, just not equal to a
 * byte-wise FNV of non-ASCII keys elsewhere. The final mix spreads FNV's last-character changes
 * into the high bits, which decide here: ids that differ only at the end (sequential ids, ULIDs
 * of one millisecond) would otherwise land close together.
 */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
