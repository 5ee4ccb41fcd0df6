import { isUtf8 } from 'node:buffer';
import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { AckCode } from '../../errors.js';
import type { Event } from '../../gen/polku/v1/event.js';
import { isInvalidUtf8, strictReader } from '../../ingest/event-decoder.js';
import type { IntakeLimits } from '../../ingest/intake-rules.js';
import { StringTable } from '../../ingest/wire-strings.js';
import * as keys from '../../metadata-keys.js';
import * as framing from '../message-framing.js';
import * as records from './log-records.js';
import type { LogMapping } from './log-records.js';

// Imported bindings copied once: under a transpiling loader (tsx, as `npm run bench` runs the
// gateway) each use of an imported name is a getter call, which the per-record path cannot afford.
const OTEL_ATTRIBUTE_PREFIX = keys.OTEL_ATTRIBUTE_PREFIX;
const OTEL_SCOPE_NAME = keys.OTEL_SCOPE_NAME;
const OTEL_SCOPE_VERSION = keys.OTEL_SCOPE_VERSION;
const PAYLOAD_FORMAT = keys.PAYLOAD_FORMAT;
const PAYLOAD_FORMAT_JSON = keys.PAYLOAD_FORMAT_JSON;
const PAYLOAD_FORMAT_TEXT = keys.PAYLOAD_FORMAT_TEXT;
const SERVICE_NAME = keys.SERVICE_NAME;
const SEVERITY_TEXT = keys.SEVERITY_TEXT;
const SPAN_ID = keys.SPAN_ID;
const TRACE_ID = keys.TRACE_ID;
const fieldEnd = framing.fieldEnd;
const skipUnknown = framing.skipUnknown;
const severityOf = records.severityOf;
const OTLP_DEFAULT_SOURCE = records.OTLP_DEFAULT_SOURCE;

/** A protobuf ExportLogsServiceRequest as events, or why it could not be read. */
export type DecodedLogs =
  { readonly kind: 'events'; readonly events: Event[] } | { readonly kind: 'unreadable'; readonly code: AckCode; readonly message: string };

export type ExportLimits = Pick<IntakeLimits, 'maxBatchEvents' | 'maxJsonDepth'>;

/** Thrown inside the decoder, turned into an `unreadable` answer at its top. */
class Refusal extends Error {
  constructor(
    readonly code: AckCode,
    message: string,
  ) {
    super(message);
  }
}

const NOT_A_REQUEST = 'not an ExportLogsServiceRequest: ';
const INVALID_UTF8 = `${NOT_A_REQUEST}a string field is not valid UTF-8`;
const EMPTY = new Uint8Array(0);

/**
 * Short strings that come again record after record (attribute keys, severity texts, event
 * names, low-cardinality attribute values such as `bench.synthetic` or `GET`), read through the
 * shared string reading of src/ingest/wire-strings.ts (ASCII checked and sliced natively, interned
 * by their bytes in a bounded table; anything else decoded by the strict reader): no string, no
 * intermediate array and no `otel.attr.` concatenation per record, and the same string object
 * each time, which V8 has already internalized as a property key. Memory bounded whatever is
 * sent: `slots` × `INTERN_MAX_BYTES` per table.
 */
/** Attribute keys, severity texts and event names: few distinct ones in any stream; `otel.attr.<key>` kept beside each key. */
const names = new StringTable({ slots: 512, prefix: OTEL_ATTRIBUTE_PREFIX });
/** Attribute values: a unique value per record (a request id) misses and replaces; kept apart so it never evicts a key. */
const values = new StringTable({ slots: 512 });

/** What one decoding needs; one per request. */
interface State {
  readonly r: BinaryReader;
  /** The request's bytes as a Buffer (a view, not a copy), for hex ids. */
  readonly buf: Buffer;
  readonly events: Event[];
  readonly o: LogMapping;
  readonly limits: ExportLimits;
  /** The first trace or span id of a wrong length: reported once the whole request has decoded. */
  idProblem: string | undefined;
}

/**
 * Decodes a protobuf `ExportLogsServiceRequest` straight into events, in one pass over the wire
 * (no intermediate message tree), producing exactly what `eventsOfRequest` (log-records.ts, the
 * reference, still used for OTLP/JSON) produces from the generated decoder's tree; the property in
 * test/fuzz/otlp-fast-decoder.test.ts holds the two together. Strict and bounded:
 *
 * - every string field (also those not mapped: schema URLs, entity refs, scope attributes) must be
 *   UTF-8, else the request is refused INVALID_BATCH, as the strict generated decoder refuses it;
 * - a known field with the wrong wire type, a length past its container, an end-group tag or
 *   field number 0 is malformed (INVALID_BATCH);
 * - log records are counted while decoding: record `maxBatchEvents + 1` refuses the request
 *   BATCH_TOO_LARGE and nothing more is read;
 * - AnyValue arrays and maps nested deeper than `maxJsonDepth` refuse the request INVALID_BATCH;
 * - metadata copying stops once past `maxMetadataBytes` (intake then refuses that record alone);
 * - a trace id that is not 16 bytes or a span id that is not 8 refuses the request, naming it.
 *
 * Resource and scope attributes are decoded once per ResourceLogs / ScopeLogs and copied into each
 * record's metadata from a prepared object. Events hold copies (strings, payload bytes), never
 * views of the request, so its bytes are free once this returns. Never throws.
 */
export function decodeExportLogs(bytes: Uint8Array, o: LogMapping, limits: ExportLimits): DecodedLogs {
  const r = strictReader(bytes);
  const st: State = {
    r,
    buf: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    events: [],
    o,
    limits,
    idProblem: undefined,
  };
  try {
    let index = 0;
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 10) resourceLogs(st, fieldEnd(r), index++);
      else other(r, tag, 1);
    }
  } catch (err) {
    if (err instanceof Refusal) return { kind: 'unreadable', code: err.code, message: err.message };
    if (isInvalidUtf8(err)) return { kind: 'unreadable', code: 'INVALID_BATCH', message: INVALID_UTF8 };
    return { kind: 'unreadable', code: 'INVALID_BATCH', message: `${NOT_A_REQUEST}${(err as Error).message}` };
  }
  if (st.idProblem !== undefined) {
    return { kind: 'unreadable', code: 'INVALID_BATCH', message: `not a valid ExportLogsServiceRequest: ${st.idProblem}` };
  }
  return { kind: 'events', events: st.events };
}

/**
 * An unknown field is skipped; a known one (numbers 1..`known`) with another wire type than its
 * own is malformed. `tag` is never a known field's own tag here.
 */
function other(r: BinaryReader, tag: number, known: number): void {
  const field = tag >>> 3;
  if (field >= 1 && field <= known) throw new Error(`field ${field} has wire type ${tag & 7} at byte ${r.pos}`);
  skipUnknown(r, tag);
}

/** Known fields of a message whose numbers are not 1..n: malformed with another wire type. */
function otherOf(r: BinaryReader, tag: number, known: readonly number[]): void {
  const field = tag >>> 3;
  if (known.includes(field)) throw new Error(`field ${field} has wire type ${tag & 7} at byte ${r.pos}`);
  skipUnknown(r, tag);
}

/** Metadata shared by every record of a scope (key, value, key, value…), and how many of its bytes count. */
interface Shared {
  readonly entries: readonly string[];
  readonly bytes: number;
}

/** ResourceLogs {1 resource, 2 scope_logs, 3 schema_url}: the resource first, wherever it sits. */
function resourceLogs(st: State, end: number, index: number): void {
  const r = st.r;
  const start = r.pos;
  const bound = r as unknown as { len: number };
  const outer = bound.len;
  bound.len = end;
  // Pass 1: frame the fields, find the resource. The last one wins, as the generated decoder
  // replaces a message field it decodes again; it still decodes the earlier ones, so they are read
  // (and refused when malformed) too: bytes are never taken that the generated decoder refuses.
  const resources: number[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      const resourceEnd = fieldEnd(r);
      resources.push(r.pos, resourceEnd);
      r.pos = resourceEnd;
    } else if (tag === 18) r.pos = fieldEnd(r);
    else if (tag === 26) r.string();
    else other(r, tag, 3);
  }
  // The resource's attributes, once (each earlier occurrence read and dropped).
  let entries: string[] = [];
  let source = OTLP_DEFAULT_SOURCE;
  for (let k = 0; k < resources.length; k += 2) {
    const resourceEnd = resources[k + 1]!;
    r.pos = resources[k]!;
    bound.len = resourceEnd;
    entries = [];
    source = OTLP_DEFAULT_SOURCE;
    while (r.pos < resourceEnd) {
      const tag = r.uint32();
      if (tag === 10) {
        const kvEnd = fieldEnd(r);
        const key = keyValue(st, kvEnd, 0);
        const value = kvText;
        if (key === SERVICE_NAME && kvKind === STRING && value !== '') source = value;
        entries.push(key, value);
      } else if (tag === 16) r.uint32();
      else if (tag === 26) entityRef(r, fieldEnd(r));
      else other(r, tag, 3);
    }
    bound.len = end;
  }
  // Pass 2: the scopes.
  r.pos = start;
  let scope = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 18) scopeLogs(st, fieldEnd(r), entries, source, `resourceLogs[${index}].scopeLogs[${scope++}]`);
    else skipUnknown(r, tag);
    bound.len = end;
  }
  bound.len = outer;
}

/** EntityRef {1 schema_url, 2 type, 3 id_keys, 4 description_keys}: all strings, checked, not kept. */
function entityRef(r: BinaryReader, end: number): void {
  const bound = r as unknown as { len: number };
  const outer = bound.len;
  bound.len = end;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10 || tag === 18 || tag === 26 || tag === 34) r.string();
    else other(r, tag, 4);
  }
  bound.len = outer;
}

/** ScopeLogs {1 scope, 2 log_records, 3 schema_url}: the scope first, wherever it sits. */
function scopeLogs(st: State, end: number, resource: readonly string[], source: string, at: string): void {
  const r = st.r;
  const bound = r as unknown as { len: number };
  bound.len = end;
  const start = r.pos;
  // The scope: the last one wins and earlier ones are read too, as for the resource.
  const scopes: number[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      const scopeEnd = fieldEnd(r);
      scopes.push(r.pos, scopeEnd);
      r.pos = scopeEnd;
    } else if (tag === 18) r.pos = fieldEnd(r);
    else if (tag === 26) r.string();
    else other(r, tag, 3);
  }
  let name = '';
  let version = '';
  for (let k = 0; k < scopes.length; k += 2) {
    // InstrumentationScope {1 name, 2 version, 3 attributes (checked, not kept), 4 dropped_attributes_count}.
    const scopeEnd = scopes[k + 1]!;
    r.pos = scopes[k]!;
    bound.len = scopeEnd;
    name = '';
    version = '';
    while (r.pos < scopeEnd) {
      const tag = r.uint32();
      if (tag === 10) name = r.string();
      else if (tag === 18) version = r.string();
      else if (tag === 26) keyValue(st, fieldEnd(r), 0);
      else if (tag === 32) r.uint32();
      else other(r, tag, 4);
    }
    bound.len = end;
  }
  const shared = sharedOf(resource, name, version, st.o.maxMetadataBytes);
  r.pos = start;
  let i = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 18) {
      if (st.events.length === st.limits.maxBatchEvents) {
        throw new Refusal('BATCH_TOO_LARGE', `more than ${st.limits.maxBatchEvents} log records (POLKU_MAX_BATCH_EVENTS)`);
      }
      st.events.push(logRecord(st, fieldEnd(r), shared, source, at, i++));
    } else skipUnknown(r, tag);
    bound.len = end;
  }
}

/**
 * The metadata every record of a scope starts with: the resource's entries, then the scope's name
 * and version, copied as the reference copies them (stopping just past the limit).
 */
function sharedOf(resource: readonly string[], name: string, version: string, limit: number): Shared {
  const all = resource.slice();
  if (name !== '') all.push(OTEL_SCOPE_NAME, name);
  if (version !== '') all.push(OTEL_SCOPE_VERSION, version);
  let bytes = 0;
  let n = 0;
  for (; n < all.length && bytes <= limit; n += 2) bytes += all[n]!.length + all[n + 1]!.length;
  return { entries: all.slice(0, n), bytes };
}

const LOG_RECORD_FIELDS = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12];

/**
 * LogRecord {1 time_unix_nano, 2 severity_number, 3 severity_text, 5 body, 6 attributes,
 * 7 dropped_attributes_count, 8 flags, 9 trace_id, 10 span_id, 11 observed_time_unix_nano,
 * 12 event_name} as one event (the mapping of `eventOfRecord` in log-records.ts).
 */
function logRecord(st: State, end: number, shared: Shared, source: string, at: string, index: number): Event {
  const r = st.r;
  const bound = r as unknown as { len: number };
  bound.len = end;
  const limit = st.o.maxMetadataBytes;
  // Assigned one by one: far cheaper than spreading a prepared object (V8's spread of dotted keys is slow).
  const metadata: Record<string, string> = {};
  const sharedEntries = shared.entries;
  for (let i = 0; i < sharedEntries.length; i += 2) metadata[sharedEntries[i]!] = sharedEntries[i + 1]!;
  let bytes = shared.bytes;
  let time = 0n;
  let observed = 0n;
  let severity = 0;
  let severityText = '';
  let eventName = '';
  let id = '';
  let eventType = '';
  let traceAt = -1;
  let traceLen = 0;
  let spanAt = -1;
  let spanLen = 0;
  let bodyKind = NONE;
  let bodyText = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 9:
        time = big(r.fixed64());
        break;
      case 89:
        observed = big(r.fixed64());
        break;
      case 16:
        severity = r.int32();
        break;
      case 26:
        severityText = names.read(r);
        break;
      case 42:
        anyValue(st, fieldEnd(r), 0, true);
        bodyKind = kvKind;
        bodyText = kvText;
        break;
      case 50: {
        const kvEnd = fieldEnd(r);
        if (bytes > limit) {
          keyValue(st, kvEnd, 0);
          break;
        }
        const name = keyValue(st, kvEnd, 0);
        const value = kvText;
        if (kvKind === STRING) {
          if (name === st.o.eventTypeAttribute) eventType = value;
          if (name === st.o.idAttribute) id = value;
        }
        const key = names.prefixed(kvKeySlot, name);
        metadata[key] = value;
        bytes += key.length + value.length;
        break;
      }
      case 56:
        r.uint32();
        break;
      case 69:
        r.fixed32();
        break;
      case 74: {
        const e = fieldEnd(r);
        traceAt = r.pos;
        traceLen = e - traceAt;
        r.pos = e;
        break;
      }
      case 82: {
        const e = fieldEnd(r);
        spanAt = r.pos;
        spanLen = e - spanAt;
        r.pos = e;
        break;
      }
      case 98:
        eventName = names.read(r);
        break;
      default:
        otherOf(r, tag, LOG_RECORD_FIELDS);
    }
    bound.len = end;
  }
  if (st.idProblem === undefined) {
    const where = `${at}.logRecords[${index}]`;
    if (traceAt >= 0 && traceLen !== 0 && traceLen !== 16) st.idProblem = `${where}.traceId is ${traceLen} bytes; OTLP wants 16 or none`;
    else if (spanAt >= 0 && spanLen !== 0 && spanLen !== 8) st.idProblem = `${where}.spanId is ${spanLen} bytes; OTLP wants 8 or none`;
  }
  if (traceLen !== 0 && traceAt >= 0) metadata[TRACE_ID] = hex(st.buf, traceAt, traceAt + traceLen);
  if (spanLen !== 0 && spanAt >= 0) metadata[SPAN_ID] = hex(st.buf, spanAt, spanAt + spanLen);
  if (severityText !== '') metadata[SEVERITY_TEXT] = severityText;
  let payload: Uint8Array = EMPTY;
  if (bodyKind === STRING) {
    // The string's own bytes (checked UTF-8 by anyValue), copied: the event must not hold the request.
    payload = bodyCopy;
    metadata[PAYLOAD_FORMAT] = PAYLOAD_FORMAT_TEXT;
  } else if (bodyKind !== NONE) {
    payload = Buffer.from(bodyKind === BYTES ? JSON.stringify(bodyText) : bodyText, 'utf8');
    metadata[PAYLOAD_FORMAT] = PAYLOAD_FORMAT_JSON;
  }
  return {
    id,
    timestampUnixNs: time !== 0n ? time : observed,
    source,
    eventType: eventName !== '' ? eventName : eventType,
    metadata,
    payload,
    routeTo: [],
    severity: severityOf(severity),
    outcome: 0,
  };
}

/**
 * Bytes as hex through Buffer's native hex slice, without `toString`'s argument handling (trace
 * and span ids: two per record); the same text as `buf.toString('hex', start, end)`.
 */
const nativeHex = (Buffer.prototype as unknown as { hexSlice?: (this: Buffer, start: number, end: number) => string }).hexSlice;
function hex(buf: Buffer, start: number, end: number): string {
  return nativeHex !== undefined ? nativeHex.call(buf, start, end) : buf.toString('hex', start, end);
}

function big(v: bigint | string): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}

// The last AnyValue read: its kind and text (a string as it is, bytes as base64, anything else as
// its JSON), and for a string, where its bytes sit. Module state rather than an object per value.
const NONE = 0;
const STRING = 1;
const BYTES = 2;
const OTHER = 3;
let kvKind = NONE;
let kvText = '';
/** The names table's slot of the last KeyValue's key (for its prefixed metadata key), -1 when not interned. */
let kvKeySlot = -1;
let bodyCopy: Uint8Array = EMPTY;

/**
 * KeyValue {1 key, 2 value}: returns the key, leaves the value's kind and attribute text in
 * `kvKind` / `kvText` (no value: NONE, '').
 */
function keyValue(st: State, end: number, depth: number): string {
  const r = st.r;
  const bound = r as unknown as { len: number };
  const outer = bound.len;
  bound.len = end;
  let key = '';
  let keySlot = -1;
  let kind = NONE;
  let text = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      key = names.read(r);
      keySlot = names.lastSlot;
    } else if (tag === 18) {
      anyValue(st, fieldEnd(r), depth, false);
      kind = kvKind;
      text = kvText;
      bound.len = end;
    } else other(r, tag, 2);
  }
  bound.len = outer;
  kvKind = kind;
  kvText = text;
  kvKeySlot = keySlot;
  return key;
}

/**
 * AnyValue {1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes}, the last one sent
 * winning (a oneof): its kind in `kvKind`, its text in `kvText` (`jsonOf` / `attributeText` of
 * log-records.ts). A body string's bytes are checked here without decoding them (`body`).
 */
function anyValue(st: State, end: number, depth: number, body: boolean): void {
  const r = st.r;
  const bound = r as unknown as { len: number };
  const outer = bound.len;
  bound.len = end;
  let kind = NONE;
  let text = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        kind = STRING;
        if (body) {
          // The string's own bytes, copied (the event must not hold the request) and checked as
          // UTF-8 on the copy: no view of the request made for the check.
          const sEnd = fieldEnd(r);
          const copy = Buffer.allocUnsafe(sEnd - r.pos);
          st.buf.copy(copy, 0, r.pos, sEnd);
          if (!isUtf8(copy)) throw new Refusal('INVALID_BATCH', INVALID_UTF8);
          bodyCopy = copy;
          r.pos = sEnd;
          text = '';
        } else text = values.read(r);
        break;
      case 16:
        kind = OTHER;
        text = r.bool() ? 'true' : 'false';
        break;
      case 24:
        kind = OTHER;
        text = String(r.int64());
        break;
      case 33: {
        kind = OTHER;
        const d = r.double();
        text = Number.isFinite(d) ? String(d) : JSON.stringify(String(d));
        break;
      }
      case 42:
        kind = OTHER;
        text = arrayJson(st, fieldEnd(r), depth + 1);
        bound.len = end;
        break;
      case 50:
        kind = OTHER;
        text = kvlistJson(st, fieldEnd(r), depth + 1);
        bound.len = end;
        break;
      case 58: {
        kind = BYTES;
        const bEnd = fieldEnd(r);
        text = st.buf.toString('base64', r.pos, bEnd);
        r.pos = bEnd;
        break;
      }
      default:
        other(r, tag, 7);
    }
  }
  bound.len = outer;
  kvKind = kind;
  kvText = text;
}

/** The last AnyValue read as JSON text. */
function lastJson(): string {
  if (kvKind === STRING || kvKind === BYTES) return JSON.stringify(kvText);
  return kvKind === NONE ? 'null' : kvText;
}

function deeper(st: State, depth: number): void {
  if (depth > st.limits.maxJsonDepth) {
    throw new Refusal(
      'INVALID_BATCH',
      `${NOT_A_REQUEST}AnyValue arrays and maps nest deeper than ${st.limits.maxJsonDepth} (POLKU_MAX_JSON_DEPTH)`,
    );
  }
}

/** ArrayValue {1 values} as a JSON array. */
function arrayJson(st: State, end: number, depth: number): string {
  deeper(st, depth);
  const r = st.r;
  const bound = r as unknown as { len: number };
  const outer = bound.len;
  bound.len = end;
  let out = '[';
  let first = true;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      anyValue(st, fieldEnd(r), depth, false);
      bound.len = end;
      out += first ? lastJson() : `,${lastJson()}`;
      first = false;
    } else other(r, tag, 1);
  }
  bound.len = outer;
  return `${out}]`;
}

/** KeyValueList {1 values} as a JSON object (duplicate keys kept, as sent). */
function kvlistJson(st: State, end: number, depth: number): string {
  deeper(st, depth);
  const r = st.r;
  const bound = r as unknown as { len: number };
  const outer = bound.len;
  bound.len = end;
  let out = '{';
  let first = true;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      const key = keyValue(st, fieldEnd(r), depth);
      bound.len = end;
      const entry = `${JSON.stringify(key)}:${lastJson()}`;
      out += first ? entry : `,${entry}`;
      first = false;
    } else other(r, tag, 1);
  }
  bound.len = outer;
  return `${out}}`;
}
