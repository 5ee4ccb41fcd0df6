import { Event, Outcome, Severity } from '../gen/polku/v1/event.js';
import type { IngestContext, IngestProblem, IngestResult, Ingestor } from './ingestor.js';

export interface JsonIngestorOptions {
  name?: string;
  /** Sources whose raw bytes are JSON. */
  sources?: readonly string[];
}

const FORMATS = ['json', 'ndjson', 'jsonl', 'application/json', 'application/x-ndjson'];
const NDJSON_FORMATS = new Set(['ndjson', 'jsonl', 'application/x-ndjson']);

/*
 * JSON.parse turns integers above 2^53 into lossy doubles, and nanosecond timestamps are above
 * 2^53. Before parsing, digits-only timestamp values of 16+ digits are wrapped in quotes so they
 * reach the converter as exact strings.
 */
const BIG_TIMESTAMP = /("(?:timestamp_unix_ns|timestampUnixNs|timestamp)"\s*:\s*)(-?\d{16,})(?![\d.eE])/g;
const quoteBigTimestamps = (text: string): string => text.replace(BIG_TIMESTAMP, '$1"$2"');
const BOM = [0xef, 0xbb, 0xbf];
const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i;
const NS_PER_MS = 1_000_000n;

/**
 * JSON events: one object, an array of objects, or NDJSON (one object per line).
 *
 * Fields (snake_case or camelCase): `id`, `timestamp_unix_ns` (integer or digit string; or
 * `timestamp` as RFC 3339 text), `source`, `event_type` (or `type`), `metadata` (object),
 * `payload` (text, or any JSON value which is carried as its JSON text), `payload_base64`,
 * `route_to`, `severity` and `outcome` (by name, e.g. "ERROR" or "SEVERITY_ERROR", or number).
 * An element that is not a valid event becomes a PARSE_ERROR; the others are kept.
 */
export class JsonIngestor implements Ingestor {
  readonly name: string;
  readonly sources: readonly string[];
  readonly formats = FORMATS;
  // ignoreBOM: a byte order mark is skipped by hand below, so offsets stay in the agent's bytes.
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(options: JsonIngestorOptions = {}) {
    this.name = options.name ?? 'json';
    this.sources = options.sources ?? [];
  }

  ingest(ctx: IngestContext, data: Uint8Array): IngestResult {
    const start = data[0] === BOM[0] && data[1] === BOM[1] && data[2] === BOM[2] ? 3 : 0;
    let text: string;
    try {
      text = this.decoder.decode(start === 0 ? data : data.subarray(start));
    } catch {
      return { events: [], problems: [{ message: 'raw data is not valid UTF-8', offset: 0 }] };
    }
    if (!NDJSON_FORMATS.has(ctx.format.toLowerCase())) {
      const whole = tryParse(quoteBigTimestamps(text));
      if (whole.ok) return fromDocument(whole.value);
      // Not one JSON document: it may still be NDJSON. Only multi-line text gets that chance.
      if (!text.includes('\n')) {
        return { events: [], problems: [{ message: `invalid JSON: ${whole.error}`, offset: 0 }] };
      }
    }
    return fromLines(text, start);
  }
}

function fromDocument(doc: unknown): IngestResult {
  const events: Event[] = [];
  const problems: IngestProblem[] = [];
  if (Array.isArray(doc)) {
    for (let i = 0; i < doc.length; i++) {
      const converted = toEvent(doc[i]);
      if (typeof converted === 'string') problems.push({ message: `element ${i}: ${converted}` });
      else events.push(converted);
    }
  } else {
    const converted = toEvent(doc);
    if (typeof converted === 'string') problems.push({ message: converted, offset: 0 });
    else events.push(converted);
  }
  return { events, problems };
}

/** NDJSON; offsets are byte offsets into the data as sent (`base` skips a byte order mark). */
function fromLines(text: string, base: number): IngestResult {
  const events: Event[] = [];
  const problems: IngestProblem[] = [];
  let offset = base;
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    const lineOffset = offset;
    offset += Buffer.byteLength(line) + 1;
    if (line.trim() === '') continue;
    const parsed = tryParse(quoteBigTimestamps(line));
    const converted = parsed.ok ? toEvent(parsed.value) : `invalid JSON: ${parsed.error}`;
    if (typeof converted === 'string') problems.push({ message: `line ${lineNo}: ${converted}`, offset: lineOffset });
    else events.push(converted);
  }
  return { events, problems };
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

type Json = Record<string, unknown>;

/** Converts one parsed JSON value to an Event, or returns why it cannot. */
export function toEvent(value: unknown): Event | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'an event must be a JSON object';
  const o = value as Json;
  const event = Event.fromPartial({});

  const id = pick(o, 'id');
  if (id !== undefined) {
    if (typeof id !== 'string') return '"id" must be a string';
    event.id = id;
  }
  const ts = timestampOf(o);
  if (typeof ts === 'string') return ts;
  event.timestampUnixNs = ts;

  for (const [field, keys] of STRING_FIELDS) {
    const v = pick(o, ...keys);
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return `"${keys[0]}" must be a string`;
    event[field] = v;
  }

  const metadata = pick(o, 'metadata');
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata)) return '"metadata" must be an object';
    for (const [k, v] of Object.entries(metadata as Json)) {
      // Agents often send numbers and booleans; metadata is string-valued on the wire.
      event.metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
  }

  const payload = payloadOf(o);
  if (typeof payload === 'string') return payload;
  event.payload = payload;

  const routeTo = pick(o, 'route_to', 'routeTo');
  if (routeTo !== undefined && routeTo !== null) {
    if (!Array.isArray(routeTo) || !routeTo.every((r) => typeof r === 'string')) {
      return '"route_to" must be an array of strings';
    }
    event.routeTo = routeTo as string[];
  }

  const severity = enumOf(pick(o, 'severity'), Severity, 'SEVERITY_', 'severity');
  if (typeof severity === 'string') return severity;
  event.severity = severity;
  const outcome = enumOf(pick(o, 'outcome'), Outcome, 'OUTCOME_', 'outcome');
  if (typeof outcome === 'string') return outcome;
  event.outcome = outcome;
  return event;
}

const STRING_FIELDS: ReadonlyArray<readonly ['source' | 'eventType', readonly string[]]> = [
  ['source', ['source']],
  ['eventType', ['event_type', 'eventType', 'type']],
];

function pick(o: Json, ...keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined) return o[k];
  return undefined;
}

function timestampOf(o: Json): bigint | string {
  const v = pick(o, 'timestamp_unix_ns', 'timestampUnixNs', 'timestamp');
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) return 'timestamp must be an integer number of nanoseconds';
    return BigInt(v);
  }
  if (typeof v !== 'string') return 'timestamp must be nanoseconds (number or digit string) or RFC 3339 text';
  if (/^-?\d+$/.test(v)) {
    const ns = BigInt(v);
    if (BigInt.asIntN(64, ns) !== ns) return 'timestamp does not fit in int64 nanoseconds';
    return ns;
  }
  const m = RFC3339.exec(v);
  if (!m) return `timestamp "${v}" is neither nanoseconds nor RFC 3339`;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return `timestamp "${v}" is not a valid date`;
  const fraction = BigInt((m[2] ?? '').padEnd(9, '0'));
  return BigInt(ms) * NS_PER_MS + fraction;
}

function payloadOf(o: Json): Uint8Array | string {
  const b64 = pick(o, 'payload_base64', 'payloadBase64');
  if (b64 !== undefined && b64 !== null) {
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) return '"payload_base64" must be base64 text';
    return Buffer.from(b64, b64.includes('-') || b64.includes('_') ? 'base64url' : 'base64');
  }
  const p = o['payload'];
  if (p === undefined || p === null) return new Uint8Array(0);
  return Buffer.from(typeof p === 'string' ? p : JSON.stringify(p), 'utf8');
}

function enumOf(v: unknown, values: Record<string, string | number>, prefix: string, field: string): number | string {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && typeof values[v] === 'string' && v >= 0) return v;
    return `unknown ${field} ${v}`;
  }
  if (typeof v === 'string') {
    const upper = v.toUpperCase();
    const n = values[upper.startsWith(prefix) ? upper : prefix + upper];
    if (typeof n === 'number' && n >= 0) return n;
  }
  return `unknown ${field} ${JSON.stringify(v)}`;
}
