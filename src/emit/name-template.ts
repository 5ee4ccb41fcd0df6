import { polkuError } from '../errors.js';
import { Severity, type Event } from '../gen/polku/v1/event.js';

/** Default cap on the distinct names one template produces (streams, subjects). */
export const DEFAULT_MAX_NAMES = 1000;
/** What stands for a value when its name is over the cap: the template with every placeholder this. */
export const OVERFLOW_TOKEN = '_overflow';
/** What stands for an empty value (an event without a source, a missing metadata key). */
export const EMPTY_TOKEN = '_';
/** A value longer than this is cut: a destination name is an identifier, not a payload. */
const MAX_TOKEN_CHARS = 128;

type Part = string | ((event: Event) => string);

export interface NameTemplateOptions {
  /** For error messages: `redis emitter "audit": stream`. */
  owner: string;
  /** Makes one value safe inside a name (NATS: no dots, spaces or wildcards). Default: as is. */
  token?: (value: string) => string;
  /** Distinct names kept at most. Default {@link DEFAULT_MAX_NAMES}. */
  maxNames?: number;
  /** Name for events whose own name would pass `maxNames`. Default: the template with `_overflow` for every placeholder. */
  overflow?: string;
}

/**
 * A destination name per event from a template: `events:{source}`, `events.{source}.{event_type}`,
 * `audit.{metadata.k8s.namespace.name}`. Placeholders: `{source}`, `{event_type}`, `{severity}`
 * (`error`, `info`, … ; `unspecified`), `{metadata.<key>}`. An empty value becomes `_`; a value
 * longer than 128 characters is cut.
 *
 * Bounded: a producer sending a new source per event must not create streams or subjects without
 * end. The first `maxNames` distinct names are kept; an event whose name would be one more goes to
 * the overflow name instead (delivered, counted by `overflowed`), never refused. The table is never
 * evicted: a name once in use stays this template's, so an event never moves between streams.
 */
export class NameTemplate {
  readonly template: string;
  /** The name every event gets when the template has no placeholder; null otherwise. */
  readonly constant: string | null;
  readonly overflowName: string;
  readonly maxNames: number;
  /** Events sent to the overflow name since the last read; the owner moves it to its counter. */
  overflowed = 0;
  private readonly parts: Part[];
  private readonly names = new Map<string, string>();

  constructor(template: string, options: NameTemplateOptions) {
    const bad = (message: string) => polkuError('POLKU_ERR_PIPELINE_INVALID', `${options.owner}: ${message}`);
    if (typeof template !== 'string' || template === '') throw bad('must be a non-empty string');
    this.template = template;
    this.maxNames = options.maxNames ?? DEFAULT_MAX_NAMES;
    if (!Number.isInteger(this.maxNames) || this.maxNames < 1) throw bad(`maxNames must be a positive integer, got ${this.maxNames}`);
    const token = options.token ?? ((v: string) => v);
    const clean = (v: string): string => (v === '' ? EMPTY_TOKEN : token(v.length > MAX_TOKEN_CHARS ? v.slice(0, MAX_TOKEN_CHARS) : v));
    this.parts = [];
    let last = 0;
    for (const m of template.matchAll(/\{([^{}]*)\}/g)) {
      if (m.index > last) this.parts.push(template.slice(last, m.index));
      last = m.index + m[0].length;
      this.parts.push(placeholder(m[1]!, clean, bad));
    }
    if (last < template.length) this.parts.push(template.slice(last));
    if (/[{}]/.test(this.parts.filter((p) => typeof p === 'string').join(''))) {
      throw bad(`"${template}" has an unmatched { or }`);
    }
    this.overflowName = options.overflow ?? this.parts.map((p) => (typeof p === 'string' ? p : OVERFLOW_TOKEN)).join('');
    this.constant = this.parts.every((p) => typeof p === 'string') ? template : null;
  }

  /** Distinct names in use (the overflow name not counted unless an event's own name is it). */
  get size(): number {
    return this.names.size;
  }

  /** The event's destination name. Per event: one string built and one map lookup, no allocation once the name is known. */
  nameOf(event: Event): string {
    if (this.constant !== null) return this.constant;
    let name = '';
    for (const p of this.parts) name += typeof p === 'string' ? p : p(event);
    const known = this.names.get(name);
    if (known !== undefined) return known;
    if (this.names.size >= this.maxNames) {
      this.overflowed++;
      return this.overflowName;
    }
    this.names.set(name, name);
    return name;
  }
}

function placeholder(field: string, clean: (v: string) => string, bad: (m: string) => Error): (event: Event) => string {
  switch (field) {
    case 'source':
      return (e) => clean(e.source);
    case 'event_type':
      return (e) => clean(e.eventType);
    case 'severity':
      return (e) => severityToken(e.severity);
    default:
      if (field.startsWith('metadata.') && field.length > 'metadata.'.length) {
        const key = field.slice('metadata.'.length);
        return (e) => clean(e.metadata[key] ?? '');
      }
      throw bad(`unknown placeholder {${field}}: use {source}, {event_type}, {severity} or {metadata.<key>}`);
  }
}

const SEVERITY_TOKENS = new Map<number, string>();
function severityToken(severity: Severity): string {
  let t = SEVERITY_TOKENS.get(severity);
  if (t === undefined) {
    const name = Severity[severity];
    t = typeof name === 'string' ? name.replace(/^SEVERITY_/, '').toLowerCase() : String(severity);
    if (SEVERITY_TOKENS.size < 64) SEVERITY_TOKENS.set(severity, t);
  }
  return t;
}
