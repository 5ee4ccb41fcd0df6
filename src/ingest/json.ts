import { type Event, Outcome, Severity } from '../gen/polku/v1/event.js';
import type { IngestContext, IngestProblem, IngestResult, Ingestor } from './ingestor.js';
import { DEFAULT_LIMITS, type IntakeLimits } from './intake-rules.js';
import { int64, Slot, SLOT_COUNT, SLOTS, SLOTS_BY_LENGTH } from './json-fields.js';
import { isJsonSpace, JsonScanner } from './json-scanner.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface JsonIngestorOptions {
  name?: string;
  /** Sources whose raw bytes are JSON. */
  sources?: readonly string[];
}

/** Every key of {@link JsonIngestorOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const JSON_INGESTOR_OPTION_KEYS = optionKeys<JsonIngestorOptions>({ name: true, sources: true });

const FORMATS = ['json', 'ndjson', 'jsonl', 'application/json', 'application/x-ndjson'];
const NDJSON_FORMATS = new Set(['ndjson', 'jsonl', 'application/x-ndjson']);
const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const NS_PER_MS = 1_000_000n;
const NEWLINE = 0x0a;
const EMPTY = new Uint8Array(0);

/**
 * JSON events: one object, an array of objects, or NDJSON (one object per line).
 *
 * Fields (snake_case or camelCase): `id`, `timestamp_unix_ns` (integer or digit string; or
 * `timestamp` as RFC 3339 text), `source`, `event_type` (or `type`), `metadata` (object),
 * `payload` (text, or any JSON value which is carried as its JSON text exactly as sent),
 * `payload_base64`, `route_to`, `severity` and `outcome` (by name, e.g. "ERROR" or
 * "SEVERITY_ERROR", or number). Other members are ignored and never built.
 *
 * Strict RFC 8259 JSON, read by a scanner that checks the limits as it goes: more elements than
 * `maxBatchEvents` stop reading at once (the whole message is refused `BATCH_TOO_LARGE`); an event
 * larger than `maxEventBytes`, nested deeper than `maxJsonDepth`, not UTF-8 or not valid JSON is a
 * PARSE_ERROR of its own, and the other events are kept. Integers keep every digit; a repeated
 * member name: the last one wins (as in JSON.parse).
 */
export class JsonIngestor implements Ingestor {
  readonly name: string;
  readonly sources: readonly string[];
  readonly formats = FORMATS;

  constructor(options: JsonIngestorOptions = {}) {
    this.name = options.name ?? 'json';
    checkOptionKeys(`JsonIngestor "${this.name}"`, options, JSON_INGESTOR_OPTION_KEYS);
    this.sources = options.sources ?? [];
  }

  ingest(ctx: IngestContext, data: Uint8Array): IngestResult {
    const read = new JsonRead(data, ctx.limits ?? DEFAULT_LIMITS);
    // A UTF-8 byte order mark is skipped; offsets stay in the agent's bytes.
    const start = data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : 0;
    if (!NDJSON_FORMATS.has(ctx.format.toLowerCase())) {
      const whole = read.document(start);
      if (whole) return whole;
      // Not one JSON document, but several lines: it may still be NDJSON.
      read.reset();
    }
    return read.lines(start);
  }
}

/** Node's Buffer decodes a range without the argument checks of `toString` (it is on every Buffer). */
type FastBuffer = Buffer & { utf8Slice(start: number, end: number): string };

/** Why a whole document could not be read as one value (it may still be NDJSON). */
interface NotOneDocument {
  message: string;
}

/** One ingest call: the bytes, two scanners (the event's members, its metadata's), the results. */
class JsonRead {
  private readonly buf: FastBuffer;
  private readonly n: number;
  private readonly scan: JsonScanner;
  private readonly inner: JsonScanner;
  private events: Event[] = [];
  private problems: IngestProblem[] = [];
  private count = 0;
  private readonly slots = new Int32Array(SLOT_COUNT);

  constructor(
    data: Uint8Array,
    private readonly limits: IntakeLimits,
  ) {
    this.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength) as FastBuffer;
    this.n = data.byteLength;
    this.scan = new JsonScanner(data);
    this.inner = new JsonScanner(data);
  }

  reset(): void {
    this.events = [];
    this.problems = [];
    this.count = 0;
  }

  private result(): IngestResult {
    return { events: this.events, problems: this.problems };
  }

  /** Counts one more element; past the limit, the message is refused whole. */
  private tooMany(at: number): IngestResult | undefined {
    if (++this.count <= this.limits.maxBatchEvents) return undefined;
    const max = this.limits.maxBatchEvents;
    return {
      events: [],
      problems: [],
      tooLarge: `more than ${max} events in one message (limit POLKU_MAX_BATCH_EVENTS=${max}); reading stopped at byte ${at}`,
    };
  }

  private hasNewline(from: number): boolean {
    return this.buf.indexOf(NEWLINE, from) >= 0;
  }

  /** The whole data as one value or an array of values; undefined: try it as NDJSON. */
  document(start: number): IngestResult | undefined {
    const b = this.buf;
    let i = start;
    while (i < this.n && isJsonSpace(b[i])) i++;
    if (i >= this.n) {
      if (this.hasNewline(start)) return undefined;
      this.problems.push({ message: 'invalid JSON: no value', offset: start });
      return this.result();
    }
    const failed = b[i] === 0x5b ? this.array(i) : this.single(i);
    if (failed === undefined || 'events' in failed) return failed ?? this.result();
    if (this.hasNewline(start)) return undefined;
    this.reset();
    this.problems.push({ message: failed.message, offset: start });
    return this.result();
  }

  private single(i: number): NotOneDocument | IngestResult | undefined {
    const b = this.buf;
    let end = this.n;
    while (end > i && isJsonSpace(b[end - 1])) end--;
    if (end - i > this.limits.maxEventBytes) {
      // Too large to read; refused as one value only if it is one (else it may be NDJSON).
      const after = this.scan.skip(i, end);
      if (after !== end) return notOne('more than one value', i);
      this.problem(this.tooLargeMessage(end - i), i);
      return undefined;
    }
    const tooMany = this.tooMany(i);
    if (tooMany) return tooMany;
    const after = this.scan.value(i, end, this.limits.maxJsonDepth, true);
    if (after < 0) {
      const fault = this.scan.fault;
      const message = this.faultMessage();
      // Too deep or not UTF-8, but one value for all that: refused as one event. Else it may be NDJSON.
      if (fault === 'syntax' || this.scan.skip(i, end) !== end) return { message };
      this.problem(message, i);
      return undefined;
    }
    if (after !== end) return notOne('unexpected data after the value', after);
    this.convert(i, '', i);
    return undefined;
  }

  private array(open: number): NotOneDocument | IngestResult | undefined {
    const b = this.buf;
    const n = this.n;
    const { maxEventBytes, maxJsonDepth } = this.limits;
    let i = skipSpace(b, open + 1, n);
    if (b[i] === 0x5d && i < n) {
      const rest = skipSpace(b, i + 1, n);
      return rest === n ? undefined : notOne('unexpected data after the array', rest);
    }
    for (let index = 0; ; index++) {
      if (i >= n) return notOne('unexpected end of JSON in an array', i);
      const tooMany = this.tooMany(i);
      if (tooMany) return tooMany;
      const label = `element ${index}: `;
      // The scan stops at the event size limit: a larger element is stepped over, not read.
      const limit = Math.min(n, i + maxEventBytes);
      let end = this.scan.value(i, limit, maxJsonDepth, true);
      if (end >= 0) {
        this.convert(i, label, i);
      } else {
        const cutAtLimit = this.scan.faultAt >= limit && limit < n;
        const message = cutAtLimit ? undefined : this.faultMessage();
        end = this.scan.skip(i, n);
        if (end < 0) return notOne('unexpected end of JSON in an array', n);
        if (end === i) return notOne(`unexpected "${String.fromCharCode(b[i]!)}" in an array`, i);
        this.problem(label + (message ?? this.tooLargeMessage(end - i)), i);
      }
      const j = skipSpace(b, end, n);
      if (j >= n) return notOne('unexpected end of JSON in an array', j);
      if (b[j] === 0x5d) {
        const rest = skipSpace(b, j + 1, n);
        return rest === n ? undefined : notOne('unexpected data after the array', rest);
      }
      if (b[j] !== 0x2c) return notOne('wanted "," or "]" in an array', j);
      i = skipSpace(b, j + 1, n);
      if (b[i] === 0x5d) return notOne('a trailing "," in an array', j);
    }
  }

  /** NDJSON: each non-blank line one event; offsets are byte offsets into the data as sent. */
  lines(start: number): IngestResult {
    const b = this.buf;
    const n = this.n;
    const { maxEventBytes, maxJsonDepth } = this.limits;
    let lineNo = 1;
    let lineStart = start;
    let i = start;
    for (;;) {
      // Blank lines and indentation, counted without a call per line.
      while (i < n && isJsonSpace(b[i])) {
        if (b[i] === NEWLINE) {
          lineNo++;
          lineStart = i + 1;
        }
        i++;
      }
      if (i >= n) return this.result();
      const newline = b.indexOf(NEWLINE, i);
      const lineEnd = newline < 0 ? n : newline;
      const tooMany = this.tooMany(lineStart);
      if (tooMany) return tooMany;
      let end = lineEnd;
      while (end > i && isJsonSpace(b[end - 1])) end--;
      const label = `line ${lineNo}: `;
      if (end - i > maxEventBytes) {
        this.problem(label + this.tooLargeMessage(end - i), lineStart);
      } else if (b[i] === 0x5b) {
        // An array is no event, however many elements it holds: not built to find that out.
        this.problem(`${label}an event must be a JSON object`, lineStart);
      } else {
        const after = this.scan.value(i, end, maxJsonDepth, true);
        if (after < 0) this.problem(label + this.faultMessage(), lineStart);
        else if (after !== end) {
          this.problem(`${label}invalid JSON: unexpected data after the value at byte ${after}`, lineStart);
        } else this.convert(i, label, lineStart);
      }
      if (newline < 0) return this.result();
      i = newline + 1;
      lineNo++;
      lineStart = i;
    }
  }

  /** A problem with the element just counted; `index` is its place among the elements (0-based). */
  private problem(message: string, offset: number): void {
    this.problems.push({ message, offset, index: this.count > 0 ? this.count - 1 : 0 });
  }

  private tooLargeMessage(bytes: number): string {
    return `event is ${bytes} bytes, over the limit POLKU_MAX_EVENT_BYTES=${this.limits.maxEventBytes}`;
  }

  private faultMessage(): string {
    const s = this.scan;
    if (s.fault === 'depth') {
      return `nesting deeper than ${this.limits.maxJsonDepth} (limit POLKU_MAX_JSON_DEPTH) at byte ${s.faultAt}`;
    }
    if (s.fault === 'utf8') return `not valid UTF-8: ${s.faultDetail} at byte ${s.faultAt}`;
    return `invalid JSON: ${s.faultDetail} at byte ${s.faultAt}`;
  }

  /** The value just scanned (members in `scan.members`) becomes an event or a problem. */
  private convert(at: number, label: string, offset: number): void {
    if (this.buf[at] !== 0x7b) {
      this.problem(`${label}an event must be a JSON object`, offset);
      return;
    }
    const converted = this.toEvent();
    if (typeof converted === 'string') this.problem(label + converted, offset);
    else this.events.push(converted);
  }

  /** Builds an event from the members of the object just scanned, or says why it cannot. */
  private toEvent(): Event | string {
    const m = this.scan.members;
    const slots = this.slots;
    slots.fill(-1);
    for (let k = 0; k < m.length; k += 6) {
      const slot = m[k + 2] ? SLOTS.get(this.key(m[k]!, m[k + 1]!, 1)) : this.slotOf(m[k]! + 1, m[k + 1]! - 1);
      // A repeated member: the last one wins.
      if (slot !== undefined) slots[slot] = k;
    }
    let id = '';
    const idAt = this.pick(Slot.id);
    if (idAt >= 0) {
      if (this.kind(idAt) !== 0x22) return '"id" must be a string';
      id = this.str(idAt);
    }
    const timestampUnixNs = this.timestamp();
    if (typeof timestampUnixNs === 'string') return timestampUnixNs;

    let source = '';
    const sourceAt = this.pick(Slot.source);
    if (sourceAt >= 0 && !this.isNull(sourceAt)) {
      if (this.kind(sourceAt) !== 0x22) return '"source" must be a string';
      source = this.str(sourceAt);
    }
    let eventType = '';
    const typeAt = this.pick(Slot.event_type, Slot.eventType, Slot.type);
    if (typeAt >= 0 && !this.isNull(typeAt)) {
      if (this.kind(typeAt) !== 0x22) return '"event_type" must be a string';
      eventType = this.str(typeAt);
    }

    const payload = this.payload();
    if (typeof payload === 'string') return payload;

    let routeTo: string[] = [];
    const routeAt = this.pick(Slot.route_to, Slot.routeTo);
    if (routeAt >= 0 && !this.isNull(routeAt)) {
      const list = this.kind(routeAt) === 0x5b ? (JSON.parse(this.text(routeAt)) as unknown[]) : undefined;
      if (!list || !list.every((r) => typeof r === 'string')) return '"route_to" must be an array of strings';
      routeTo = list as string[];
    }

    const severity = this.enumOf(this.pick(Slot.severity), Severity, 'SEVERITY_', 'severity');
    if (typeof severity === 'string') return severity;
    const outcome = this.enumOf(this.pick(Slot.outcome), Outcome, 'OUTCOME_', 'outcome');
    if (typeof outcome === 'string') return outcome;

    // Last: reading metadata reuses the inner scanner, and it is the costliest part.
    const metadata: Record<string, string> = {};
    const metadataAt = this.pick(Slot.metadata);
    if (metadataAt >= 0 && !this.isNull(metadataAt)) {
      if (this.kind(metadataAt) !== 0x7b) return '"metadata" must be an object';
      this.metadataInto(metadataAt, metadata);
    }
    // The shape Event.fromPartial({}) gives, built at once.
    return { id, timestampUnixNs, source, eventType, metadata, payload, routeTo, severity, outcome };
  }

  /** The member (an index into `scan.members`) of the first of these names present, or -1. */
  private pick(...order: Slot[]): number {
    for (const s of order) if (this.slots[s]! >= 0) return this.slots[s]!;
    return -1;
  }

  /** The slot of an unescaped member name, compared as bytes: no string is made for it. */
  private slotOf(start: number, end: number): Slot | undefined {
    const candidates = SLOTS_BY_LENGTH[end - start];
    if (candidates === undefined) return undefined;
    const b = this.buf;
    next: for (const [name, slot] of candidates) {
      for (let i = 0; i < name.length; i++) if (b[start + i] !== name[i]) continue next;
      return slot;
    }
    return undefined;
  }

  private key(start: number, end: number, escaped: number): string {
    return escaped ? (JSON.parse(this.buf.utf8Slice(start, end)) as string) : this.buf.utf8Slice(start + 1, end - 1);
  }

  /** The first byte of a member's value: 0x22 a string, 0x7b an object, 0x5b an array, ... */
  private kind(k: number): number {
    return this.buf[this.scan.members[k + 3]!]!;
  }

  private isNull(k: number): boolean {
    return this.kind(k) === 0x6e;
  }

  private isNumber(k: number): boolean {
    const c = this.kind(k);
    return c === 0x2d || (c >= 0x30 && c <= 0x39);
  }

  /** A member's value as its JSON text, exactly as sent. */
  private text(k: number): string {
    const m = this.scan.members;
    return this.buf.utf8Slice(m[k + 3]!, m[k + 4]!);
  }

  /** A string member's value. */
  private str(k: number): string {
    const m = this.scan.members;
    if (m[k + 5]) return JSON.parse(this.text(k)) as string;
    return this.buf.utf8Slice(m[k + 3]! + 1, m[k + 4]! - 1);
  }

  private timestamp(): bigint | string {
    const k = this.pick(Slot.timestamp_unix_ns, Slot.timestampUnixNs, Slot.timestamp);
    if (k < 0 || this.isNull(k)) return 0n;
    if (this.isNumber(k)) {
      const literal = this.text(k);
      if (/^-?\d+$/.test(literal)) return int64(BigInt(literal));
      const v = Number(literal);
      if (!Number.isSafeInteger(v)) return 'timestamp must be an integer number of nanoseconds';
      return BigInt(v);
    }
    if (this.kind(k) !== 0x22) return 'timestamp must be nanoseconds (number or digit string) or RFC 3339 text';
    const v = this.str(k);
    if (/^-?\d+$/.test(v)) return int64(BigInt(v));
    const match = RFC3339.exec(v);
    if (!match) return `timestamp "${v}" is neither nanoseconds nor RFC 3339`;
    const ms = Date.parse(`${match[1]}${match[3]}`);
    if (Number.isNaN(ms)) return `timestamp "${v}" is not a valid date`;
    const fraction = BigInt((match[2] ?? '').padEnd(9, '0'));
    return BigInt(ms) * NS_PER_MS + fraction;
  }

  private payload(): Uint8Array | string {
    const b64 = this.pick(Slot.payload_base64, Slot.payloadBase64);
    if (b64 >= 0 && !this.isNull(b64)) {
      const text = this.kind(b64) === 0x22 ? this.str(b64) : undefined;
      if (text === undefined || !BASE64.test(text)) return '"payload_base64" must be base64 text';
      return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    }
    const k = this.pick(Slot.payload);
    if (k < 0 || this.isNull(k)) return EMPTY;
    const m = this.scan.members;
    if (this.kind(k) !== 0x22) {
      // Any other JSON value is carried as its text exactly as sent: every digit, every member.
      return Buffer.from(this.buf.subarray(m[k + 3]!, m[k + 4]!));
    }
    if (m[k + 5]) return Buffer.from(this.str(k), 'utf8');
    // No escapes: the string's bytes are its UTF-8 text already.
    return Buffer.from(this.buf.subarray(m[k + 3]! + 1, m[k + 4]! - 1));
  }

  /** Metadata values that are not strings become their JSON text, exactly as sent. */
  private metadataInto(k: number, into: Record<string, string>): void {
    const outer = this.scan.members;
    const inner = this.inner;
    // Already validated as part of the event: this scan only finds the members again, and stops
    // at one more member than the limit has bytes (each distinct name adds at least one byte).
    const max = this.limits.maxMetadataBytes;
    const span = [outer[k + 3]!, outer[k + 4]!] as const;
    const capped = inner.value(span[0], span[1], this.limits.maxJsonDepth, true, max + 1) < 0;
    if (this.fill(into, inner.members) > max || !capped) return;
    // Repeated names kept it under the limit: read them all, from the start.
    for (const key of Object.keys(into)) delete into[key];
    inner.value(span[0], span[1], this.limits.maxJsonDepth, true);
    this.fill(into, inner.members);
  }

  /** Sets metadata entries from these members; returns its size as the hub counts it. */
  private fill(into: Record<string, string>, m: readonly number[]): number {
    // Its size as the hub counts it (keys + values, UTF-16 units), kept as it is built. Once past
    // the limit the rest is not built: the event, as it stands, is refused METADATA_TOO_LARGE.
    let size = 0;
    for (let j = 0; j < m.length && size <= this.limits.maxMetadataBytes; j += 6) {
      const key = this.key(m[j]!, m[j + 1]!, m[j + 2]!);
      const start = m[j + 3]!;
      const end = m[j + 4]!;
      let value: string;
      if (this.buf[start] !== 0x22) value = this.buf.utf8Slice(start, end);
      else if (m[j + 5]) value = JSON.parse(this.buf.utf8Slice(start, end)) as string;
      else value = this.buf.utf8Slice(start + 1, end - 1);
      const previous = Object.prototype.hasOwnProperty.call(into, key) ? into[key] : undefined;
      // "__proto__" is a name like any other: defined, not assigned (which would set a prototype).
      if (key === '__proto__') Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
      else into[key] = value;
      size += key.length + value.length - (previous === undefined ? 0 : key.length + previous.length);
    }
    return size;
  }

  private enumOf(k: number, values: Record<string, string | number>, prefix: string, field: string): number | string {
    if (k < 0 || this.isNull(k)) return 0;
    if (this.isNumber(k)) {
      const literal = this.text(k);
      const v = Number(literal);
      if (/^\d+$/.test(literal) && typeof values[v] === 'string') return v;
      return `unknown ${field} ${literal}`;
    }
    if (this.kind(k) === 0x22) {
      const upper = this.str(k).toUpperCase();
      const n = values[upper.startsWith(prefix) ? upper : prefix + upper];
      if (typeof n === 'number' && n >= 0) return n;
    }
    return `unknown ${field} ${this.text(k)}`;
  }
}

function notOne(what: string, at: number): NotOneDocument {
  return { message: `invalid JSON: ${what} at byte ${at}` };
}

function skipSpace(b: Uint8Array, i: number, n: number): number {
  while (i < n && isJsonSpace(b[i])) i++;
  return i;
}
