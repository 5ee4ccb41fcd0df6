import { Counter } from 'prom-client';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/**
 * One routing rule. Every condition given must hold (they are ANDed); a rule needs at least one.
 * For a catch-all rule use `when: () => true`.
 */
export interface RouteRule {
  /** Names the rule in the `route` label of `polku_routed_events_total`. Default `rule<index>`. */
  name?: string;
  /** Matches when `eventType` starts with this text. */
  eventTypePrefix?: string;
  /** Matches when `source` equals this text exactly. */
  source?: string;
  /** Matches when every key is present with the given value, or present at all for `true`. */
  metadata?: Record<string, string | true>;
  /** Matches when the function returns true. A function that throws refuses only that event. */
  when?: (event: Event) => boolean;
  /** The emitter names matching events are sent to (`routeTo`). Must not be empty. */
  to: readonly string[];
}

export interface RouterOptions {
  /** Default `router`. */
  name?: string;
  rules: readonly RouteRule[];
  /** `first`: the first matching rule decides. `all`: the union of every match, in rule order. Default `first`. */
  mode?: 'first' | 'all';
  /** Emitter names for events no rule matched. Default: leave their `routeTo` as it is. */
  defaultRoute?: readonly string[];
  /**
   * Whether rules replace a `routeTo` the client already set. Default false: an event that names
   * its emitters keeps them, and the rules only route events that named none.
   */
  override?: boolean;
}

/** Every key of {@link RouterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const ROUTER_OPTION_KEYS = optionKeys<RouterOptions>({ name: true, rules: true, mode: true, defaultRoute: true, override: true });
const ROUTE_RULE_KEYS = optionKeys<RouteRule>({ name: true, eventTypePrefix: true, source: true, metadata: true, when: true, to: true });

interface CompiledRule {
  readonly label: string;
  readonly test: (event: Event) => boolean;
  readonly to: readonly string[];
}

const METRIC = 'polku_routed_events_total';

/**
 * Sets each event's `routeTo` from rules on its type, source and metadata.
 *
 * ```ts
 * router({
 *   rules: [
 *     { eventTypePrefix: 'audit.', to: ['s3'] },
 *     { metadata: { tenant: 'acme' }, to: ['acme-kafka'] },
 *   ],
 *   defaultRoute: ['stdout'],
 * })
 * ```
 *
 * Names that match no emitter are not checked here (the router does not know the emitters); such
 * events are refused UNROUTABLE by the hub, which is the signal to fix the rule.
 */
export class EventRouter implements Middleware {
  readonly name: string;
  private readonly rules: readonly CompiledRule[];
  private readonly all: boolean;
  private readonly defaultRoute: readonly string[] | undefined;
  private readonly override: boolean;
  /** Per-batch tallies by rule index; the last two slots count the default route and no route. */
  private readonly tally: number[];
  /** Scratch list of the rules one event matched in `all` mode, reused across events. */
  private readonly matched: number[] = [];
  private counters: Counter.Internal[] | undefined;

  constructor(options: RouterOptions) {
    this.name = options.name ?? 'router';
    checkOptionKeys(`router "${this.name}"`, options, ROUTER_OPTION_KEYS);
    if (Array.isArray(options.rules))
      options.rules.forEach((rule, i) => checkOptionKeys(`router "${this.name}"`, rule, ROUTE_RULE_KEYS, `rules[${i}].`));
    if (!Array.isArray(options.rules)) invalid(this.name, 'rules must be an array');
    const mode = options.mode ?? 'first';
    if (mode !== 'first' && mode !== 'all') invalid(this.name, `mode must be "first" or "all", got "${String(mode)}"`);
    this.all = mode === 'all';
    this.rules = options.rules.map((rule, i) => compile(this.name, rule, i));
    if (options.defaultRoute !== undefined) checkNames(this.name, 'defaultRoute', options.defaultRoute);
    this.defaultRoute = options.defaultRoute;
    this.override = options.override ?? false;
    this.tally = new Array<number>(this.rules.length + 2).fill(0);
  }

  init(ctx: ComponentContext): void {
    const counter =
      (ctx.registry.getSingleMetric(METRIC) as Counter<'middleware' | 'route'> | undefined) ??
      new Counter({
        name: METRIC,
        help: 'Events routed by a router middleware, by matching rule ("default": default route, "none": left as it was)',
        labelNames: ['middleware', 'route'],
        registers: [ctx.registry],
      });
    const labels = [...this.rules.map((r) => r.label), 'default', 'none'];
    this.counters = labels.map((route) => counter.labels(this.name, route));
    // inc(0) creates the series, so dashboards see zeros rather than gaps.
    for (const c of this.counters) c.inc(0);
  }

  process(events: Event[], ctx: MiddlewareContext): Event[] {
    const out: Event[] = [];
    const tally = this.tally;
    const noRoute = tally.length - 1;
    for (const event of events) {
      if (!this.override && event.routeTo.length > 0) {
        tally[noRoute]!++;
        out.push(event);
        continue;
      }
      let routed: string[] | undefined;
      try {
        routed = this.all ? this.matchAll(event) : this.matchFirst(event);
      } catch (err) {
        ctx.drop(event, 'MIDDLEWARE_ERROR', `router "${this.name}" rule threw: ${(err as Error).message}`);
        continue;
      }
      if (routed === undefined && this.defaultRoute !== undefined) {
        routed = [...this.defaultRoute];
        tally[noRoute - 1]!++;
      } else if (routed === undefined) {
        tally[noRoute]!++;
      }
      if (routed !== undefined) event.routeTo = routed;
      out.push(event);
    }
    this.flushTally();
    return out;
  }

  /** A copy of the first matching rule's names (a copy: later steps may edit `routeTo`). */
  private matchFirst(event: Event): string[] | undefined {
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (rule.test(event)) {
        this.tally[i]!++;
        return [...rule.to];
      }
    }
    return undefined;
  }

  private matchAll(event: Event): string[] | undefined {
    let names: string[] | undefined;
    let matched = 0;
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (!rule.test(event)) continue;
      this.matched[matched++] = i;
      names ??= [];
      // Route lists are a handful of names: includes() beats building a Set per event.
      for (const n of rule.to) if (!names.includes(n)) names.push(n);
    }
    // Tallied only once every rule ran: a rule that throws drops the event, which then counts nowhere.
    for (let j = 0; j < matched; j++) this.tally[this.matched[j]!]!++;
    return names;
  }

  /** One counter increment per route per batch, not per event. */
  private flushTally(): void {
    const tally = this.tally;
    for (let i = 0; i < tally.length; i++) {
      if (tally[i]! > 0) {
        this.counters?.[i]!.inc(tally[i]!);
        tally[i] = 0;
      }
    }
  }
}

/** Builds an {@link EventRouter}. */
export function router(options: RouterOptions): EventRouter {
  return new EventRouter(options);
}

/** Turns a rule into one test function, checking the cheap conditions first. */
function compile(middleware: string, rule: RouteRule, index: number): CompiledRule {
  checkNames(middleware, `rules[${index}].to`, rule.to);
  const tests: Array<(e: Event) => boolean> = [];
  const { eventTypePrefix, source, metadata, when } = rule;
  if (eventTypePrefix !== undefined) tests.push((e) => e.eventType.startsWith(eventTypePrefix));
  if (source !== undefined) tests.push((e) => e.source === source);
  if (metadata !== undefined) {
    for (const [key, want] of Object.entries(metadata)) {
      // hasOwn: metadata is a plain object, and "constructor" must not count as present by inheritance.
      tests.push(want === true ? (e) => Object.hasOwn(e.metadata, key) : (e) => e.metadata[key] === want);
    }
  }
  if (when !== undefined) tests.push(when);
  if (tests.length === 0) {
    invalid(middleware, `rules[${index}] has no condition (use when: () => true for a catch-all)`);
  }
  const test =
    tests.length === 1
      ? tests[0]!
      : (e: Event) => {
          for (const t of tests) if (!t(e)) return false;
          return true;
        };
  return { label: rule.name ?? `rule${index}`, test, to: [...rule.to] };
}

function checkNames(middleware: string, what: string, names: readonly string[] | undefined): void {
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) {
    invalid(middleware, `${what} must be a non-empty list of emitter names`);
  }
}

function invalid(middleware: string, message: string): never {
  throw polkuError('POLKU_ERR_PIPELINE_INVALID', `router "${middleware}": ${message}`);
}
