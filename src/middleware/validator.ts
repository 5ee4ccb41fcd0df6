import { Counter, type Registry } from 'prom-client';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/** A custom rule: returns why the event is invalid, or undefined (or '') when it is fine. */
export type ValidationRule = (event: Event) => string | undefined;

export interface ValidatorOptions {
  /** Default `validator`. */
  name?: string;
  /** `eventType` must not be empty. */
  requiredEventType?: boolean;
  /** The payload must not be empty. */
  nonEmptyPayload?: boolean;
  /** Largest payload, bytes (tighter than the gateway-wide limit, for this pipeline). */
  maxPayloadBytes?: number;
  /** Metadata keys every event must carry (an empty value counts as present). */
  requiredMetadata?: readonly string[];
  /** The payload must be UTF-8 JSON. An empty payload is not JSON. */
  jsonPayload?: boolean;
  /** Rules of your own, run after the built-in ones. A rule that throws refuses the event MIDDLEWARE_ERROR. */
  custom?: ValidationRule | readonly ValidationRule[];
  /**
   * `drop` (default): an invalid event is refused VALIDATION_FAILED. `tag`: it goes on, with the
   * reason in metadata under `tagKey`.
   */
  onInvalid?: 'drop' | 'tag';
  /**
   * The metadata key `tag` writes. Default `polku.validation_error`. The key belongs to the
   * gateway: in `tag` mode a value a client sent under it is removed from valid events, so that
   * downstream the tag means what it says.
   */
  tagKey?: string;
}

/** Every key of {@link ValidatorOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const VALIDATOR_OPTION_KEYS = optionKeys<ValidatorOptions>({
  name: true,
  requiredEventType: true,
  nonEmptyPayload: true,
  maxPayloadBytes: true,
  requiredMetadata: true,
  jsonPayload: true,
  custom: true,
  onInvalid: true,
  tagKey: true,
});

interface Check {
  /** The option's name: it starts each reason and labels the failure metric. */
  readonly rule: string;
  readonly check: (event: Event) => string | undefined;
}

/** A reason comes from code and maybe from the payload (JSON errors quote it): keep it short. */
const MAX_REASON = 200;

/**
 * Checks each event against the configured rules, cheapest first, and stops at the first one it
 * breaks; the reason names that rule (`requiredMetadata: missing "tenant"`).
 *
 * ```ts
 * validator({ requiredEventType: true, jsonPayload: true, requiredMetadata: ['tenant'], onInvalid: 'tag' })
 * ```
 *
 * `polku_validation_failures_total{middleware,rule}` counts broken rules in both modes (the drop
 * metrics only see `drop`, and not which rule).
 */
export class Validator implements Middleware {
  readonly name: string;
  /** Dropping invalid events leaves the others as they are; tagging writes to their metadata. */
  readonly keepsEventsUnchanged: boolean;
  private readonly checks: readonly Check[];
  private readonly tag: boolean;
  private readonly tagKey: string;
  private failures: Counter<'middleware' | 'rule'> | undefined;
  private readonly failureChildren = new Map<string, Counter.Internal>();

  constructor(options: ValidatorOptions = {}) {
    this.name = options.name ?? 'validator';
    checkOptionKeys(`validator "${this.name}"`, options, VALIDATOR_OPTION_KEYS);
    const onInvalid = options.onInvalid ?? 'drop';
    if (onInvalid !== 'drop' && onInvalid !== 'tag') this.invalid(`onInvalid must be "drop" or "tag", got "${String(onInvalid)}"`);
    this.tag = onInvalid === 'tag';
    this.keepsEventsUnchanged = !this.tag;
    this.tagKey = options.tagKey ?? 'polku.validation_error';
    if (typeof this.tagKey !== 'string' || this.tagKey === '') this.invalid('tagKey must be a non-empty string');
    this.checks = this.compile(options);
  }

  init(ctx: ComponentContext): void {
    this.failures = failureCounter(ctx.registry);
    this.failureChildren.clear();
  }

  process(events: Event[], ctx: MiddlewareContext): Event[] {
    const out: Event[] = [];
    const checks = this.checks;
    for (const event of events) {
      let reason: string | undefined;
      let rule = '';
      try {
        for (let i = 0; i < checks.length && !reason; i++) {
          rule = checks[i]!.rule;
          reason = checks[i]!.check(event);
        }
      } catch (err) {
        ctx.drop(event, 'MIDDLEWARE_ERROR', `validator "${this.name}" rule ${rule} threw: ${(err as Error).message}`);
        continue;
      }
      if (!reason) {
        if (this.tag && Object.hasOwn(event.metadata, this.tagKey)) delete event.metadata[this.tagKey];
        out.push(event);
        continue;
      }
      this.countFailure(rule);
      const text = clip(`${rule}: ${reason}`);
      if (this.tag) {
        event.metadata[this.tagKey] = text;
        out.push(event);
      } else {
        ctx.drop(event, 'VALIDATION_FAILED', text);
      }
    }
    return out;
  }

  private compile(o: ValidatorOptions): Check[] {
    const checks: Check[] = [];
    if (o.requiredEventType) {
      checks.push({ rule: 'requiredEventType', check: (e) => (e.eventType === '' ? 'event type is empty' : undefined) });
    }
    if (o.nonEmptyPayload) {
      checks.push({ rule: 'nonEmptyPayload', check: (e) => (e.payload.length === 0 ? 'payload is empty' : undefined) });
    }
    const max = o.maxPayloadBytes;
    if (max !== undefined) {
      if (!Number.isSafeInteger(max) || max < 0) this.invalid(`maxPayloadBytes must be an integer ≥ 0, got ${max}`);
      checks.push({
        rule: 'maxPayloadBytes',
        check: (e) => (e.payload.length > max ? `payload is ${e.payload.length} bytes, limit ${max}` : undefined),
      });
    }
    const required = o.requiredMetadata;
    if (required !== undefined && required.length > 0) {
      const keys = [...required];
      checks.push({
        rule: 'requiredMetadata',
        check: (e) => {
          for (const k of keys) if (!Object.hasOwn(e.metadata, k)) return `missing ${JSON.stringify(k)}`;
          return undefined;
        },
      });
    }
    if (o.jsonPayload) checks.push({ rule: 'jsonPayload', check: checkJson });
    const custom = o.custom === undefined ? [] : typeof o.custom === 'function' ? [o.custom] : [...o.custom];
    for (const rule of custom) {
      if (typeof rule !== 'function') this.invalid('custom rules must be functions');
      checks.push({ rule: 'custom', check: (e) => rule(e) || undefined });
    }
    return checks;
  }

  private countFailure(rule: string): void {
    if (this.failures === undefined) return;
    let child = this.failureChildren.get(rule);
    if (child === undefined) {
      child = this.failures.labels(this.name, rule);
      this.failureChildren.set(rule, child);
    }
    child.inc();
  }

  private invalid(message: string): never {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `validator "${this.name}": ${message}`);
  }
}

/** Builds a {@link Validator}. */
export function validator(options: ValidatorOptions = {}): Validator {
  return new Validator(options);
}

/** One decoder for all events: without `stream`, decode() keeps no state between calls. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

function checkJson(event: Event): string | undefined {
  if (event.payload.length === 0) return 'payload is empty, not JSON';
  let text: string;
  try {
    text = utf8.decode(event.payload);
  } catch {
    return 'payload is not valid UTF-8';
  }
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    return `payload is not valid JSON (${(err as Error).message})`;
  }
}

function clip(text: string): string {
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text;
}

function failureCounter(registry: Registry): Counter<'middleware' | 'rule'> {
  const name = 'polku_validation_failures_total';
  return (
    (registry.getSingleMetric(name) as Counter<'middleware' | 'rule'> | undefined) ??
    new Counter({
      name,
      help: 'Events that broke a validation rule, by validator and rule (dropped or tagged)',
      labelNames: ['middleware', 'rule'],
      registers: [registry],
    })
  );
}
