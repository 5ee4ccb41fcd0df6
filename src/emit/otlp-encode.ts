import { isUtf8 } from 'node:buffer';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { Outcome, Severity, type Event } from '../gen/polku/v1/event.js';
import * as Keys from '../metadata-keys.js';

// Module constants rather than imported bindings: a loader that compiles imports to getters
// (tsx) would otherwise run one per metadata key of every event.
const OTEL_ATTRIBUTE_PREFIX = Keys.OTEL_ATTRIBUTE_PREFIX;
const OTEL_SCOPE_NAME = Keys.OTEL_SCOPE_NAME;
const OTEL_SCOPE_VERSION = Keys.OTEL_SCOPE_VERSION;
const PAYLOAD_FORMAT = Keys.PAYLOAD_FORMAT;
const PAYLOAD_FORMAT_JSON = Keys.PAYLOAD_FORMAT_JSON;
const PAYLOAD_FORMAT_TEXT = Keys.PAYLOAD_FORMAT_TEXT;
const SERVICE_NAME = Keys.SERVICE_NAME;
const SEVERITY_TEXT = Keys.SEVERITY_TEXT;
const SPAN_ID = Keys.SPAN_ID;
const TRACE_ID = Keys.TRACE_ID;

/**
 * Events → `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest` bytes, written
 * straight from the events (no intermediate LogRecord objects: this is the emitter's hot path).
 * Field numbers are those of opentelemetry-proto (proto/opentelemetry/); test/emit/otlp-*.test.ts
 * decodes the output with the OpenTelemetry exporter's own generated code, so a wrong number
 * fails there. The mapping is the reverse of the OTLP receiver's (src/receive/otlp/log-records.ts),
 * so an event that came in over OTLP goes out as the record it was:
 *
 * | Event | LogRecord |
 * | --- | --- |
 * | timestamp_unix_ns | time_unix_nano and observed_time_unix_nano |
 * | severity | severity_number (DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21) |
 * | metadata `severity_text`, else the severity | severity_text (`DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) |
 * | payload, `polku.payload.format: json` | body as a structured AnyValue (objects → kvlist, arrays, ints, doubles, bools, strings; null → empty) |
 * | payload, `polku.payload.format: text` or any valid UTF-8 | body.string_value |
 * | payload, other bytes | body.bytes_value |
 * | event_type | attribute `event.name` |
 * | id | attribute `log.record.uid` |
 * | source | resource `service.name` when metadata has none; attribute `polku.source` when it differs from that |
 * | outcome | attribute `polku.outcome` (`success`, `failure`, `timeout`, `unknown`) |
 * | metadata `trace_id` / `span_id` (hex) | trace_id / span_id bytes (kept as attributes when not valid hex ids) |
 * | metadata, resource keys ({@link isResourceKey}) | resource attributes; records are grouped by resource |
 * | metadata `otel.scope.name` / `otel.scope.version` | InstrumentationScope (default name `polku`); grouped by scope |
 * | metadata `otel.attr.<key>` | attribute `<key>` |
 * | other metadata (`polku.payload.format` of other formats included) | attribute, same key, string value |
 */

export const ATTR_EVENT_NAME = 'event.name';
export const ATTR_RECORD_UID = 'log.record.uid';
export const ATTR_SOURCE = 'polku.source';
export const ATTR_OUTCOME = 'polku.outcome';
/** InstrumentationScope.name of records whose metadata names no scope. */
export const SCOPE_NAME = 'polku';
/** Nesting past this in a JSON payload: the payload goes as a string body instead. */
const MAX_JSON_DEPTH = 64;

/**
 * Metadata keys that describe the thing that produced the event rather than the event: they go to
 * the OTLP Resource (OpenTelemetry resource semantic conventions). `k8s.object.*` is the object a
 * PORTTI event is about, not its producer, so it stays a record attribute.
 */
export const RESOURCE_KEY_PREFIXES: readonly string[] = Object.freeze([
  'service.',
  'k8s.cluster.',
  'k8s.node.',
  'k8s.namespace.',
  'k8s.pod.',
  'k8s.container.',
  'k8s.deployment.',
  'k8s.replicaset.',
  'k8s.daemonset.',
  'k8s.statefulset.',
  'k8s.job.',
  'k8s.cronjob.',
  'container.',
  'host.',
  'cloud.',
  'deployment.',
  'process.',
  'os.',
  'telemetry.',
]);

/** Answers per key seen; keys repeat from event to event, so the prefix scan runs once per key. */
const resourceKeyCache = new Map<string, boolean>();
const RESOURCE_KEY_CACHE_MAX = 4096;

export function isResourceKey(key: string): boolean {
  let answer = resourceKeyCache.get(key);
  if (answer === undefined) {
    answer = false;
    for (const p of RESOURCE_KEY_PREFIXES) if (key.startsWith(p)) answer = true;
    if (resourceKeyCache.size >= RESOURCE_KEY_CACHE_MAX) resourceKeyCache.clear(); // bounded against endless distinct keys
    resourceKeyCache.set(key, answer);
  }
  return answer;
}

/** OTLP SeverityNumber and text for each POLKU Severity (the first of each OTLP range). */
const SEVERITY_NUMBER: Record<number, number> = {
  [Severity.SEVERITY_DEBUG]: 5,
  [Severity.SEVERITY_INFO]: 9,
  [Severity.SEVERITY_WARNING]: 13,
  [Severity.SEVERITY_ERROR]: 17,
  [Severity.SEVERITY_CRITICAL]: 21,
};
const SEVERITY_NAME: Record<number, string> = {
  [Severity.SEVERITY_DEBUG]: 'DEBUG',
  [Severity.SEVERITY_INFO]: 'INFO',
  [Severity.SEVERITY_WARNING]: 'WARN',
  [Severity.SEVERITY_ERROR]: 'ERROR',
  [Severity.SEVERITY_CRITICAL]: 'FATAL',
};
const OUTCOME_TEXT: Record<number, string> = {
  [Outcome.OUTCOME_SUCCESS]: 'success',
  [Outcome.OUTCOME_FAILURE]: 'failure',
  [Outcome.OUTCOME_TIMEOUT]: 'timeout',
  [Outcome.OUTCOME_UNKNOWN]: 'unknown',
};

/** Metadata keys that become LogRecord fields or the scope rather than attributes. */
const FIELD_KEYS = new Set([TRACE_ID, SPAN_ID, SEVERITY_TEXT, OTEL_SCOPE_NAME, OTEL_SCOPE_VERSION]);
/** Record attributes the event's own fields carry: an `otel.attr.` copy of them is not sent twice. */
const OWN_ATTRIBUTES = new Set([ATTR_EVENT_NAME, ATTR_RECORD_UID]);

const LEN = WireType.LengthDelimited;
const HEX32 = /^[0-9a-fA-F]{32}$/;
const HEX16 = /^[0-9a-fA-F]{16}$/;

/** One resource: its attributes and its scopes. */
interface ResourceGroup {
  readonly attributes: Array<[string, string]>;
  readonly scopes: Map<string, ScopeGroup>;
  serviceName: string;
}
interface ScopeGroup {
  readonly name: string;
  readonly version: string;
  readonly indices: number[];
}

/**
 * Encodes `events[from..to)` as one ExportLogsServiceRequest: one ResourceLogs per distinct set of
 * resource attributes and one ScopeLogs per scope in it (in order of first appearance), records in
 * batch order within a scope. Returns the bytes and the batch index of each record in request
 * order (the order partial success is attributed by).
 */
export function encodeLogsRequest(events: readonly Event[], from = 0, to = events.length): { bytes: Uint8Array; order: number[] } {
  const groups = new Map<string, ResourceGroup>();
  for (let i = from; i < to; i++) {
    const e = events[i]!;
    const md = e.metadata;
    let key = '';
    let attributes: Array<[string, string]> | null = null;
    let service = '';
    for (const k in md) {
      if (!isResourceKey(k)) continue;
      const v = md[k]!;
      (attributes ??= []).push([k, v]);
      key += `${k}\u0000${v}\u0000`;
      if (k === SERVICE_NAME) service = v;
    }
    if (service === '' && md[SERVICE_NAME] === undefined && e.source !== '') {
      (attributes ??= []).push([SERVICE_NAME, e.source]);
      key += `${SERVICE_NAME}\u0000${e.source}\u0000`;
      service = e.source;
    }
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { attributes: attributes ?? [], scopes: new Map(), serviceName: service }));
    const scopeName = md[OTEL_SCOPE_NAME] ?? SCOPE_NAME;
    const scopeVersion = md[OTEL_SCOPE_VERSION] ?? '';
    const scopeKey = `${scopeName}\u0000${scopeVersion}`;
    const s = g.scopes.get(scopeKey);
    if (s) s.indices.push(i);
    else g.scopes.set(scopeKey, { name: scopeName, version: scopeVersion, indices: [i] });
  }
  // Two passes over one preallocated buffer: sizes first (every length prefix is known before its
  // message is written), then the bytes. No nested writers, no chunk copies.
  const order: number[] = [];
  const recordSizes = new Int32Array(to - from);
  const bodies = new Map<number, Uint8Array>();
  let total = 0;
  const resourceSizes: number[] = [];
  const scopeSizes: number[] = [];
  for (const g of groups.values()) {
    let resource = 0;
    for (const [k, v] of g.attributes) resource += attributeSize(k, v);
    let rl = lenField(1, resource);
    for (const sc of g.scopes.values()) {
      let scope = lenField(1, scopeSize(sc));
      for (const i of sc.indices) {
        const n = visitRecord(null, events[i]!, g.serviceName, i, bodies);
        recordSizes[i - from] = n;
        scope += lenField(2, n);
      }
      scopeSizes.push(scope);
      rl += lenField(2, scope);
    }
    resourceSizes.push(resource, rl);
    total += lenField(1, rl);
  }
  const out = new Out(total);
  let r = 0;
  let sIdx = 0;
  for (const g of groups.values()) {
    const resource = resourceSizes[r++]!;
    out.len(1, resourceSizes[r++]!); // ResourceLogs
    out.len(1, resource); // Resource
    for (const [k, v] of g.attributes) out.attribute(1, k, v);
    for (const sc of g.scopes.values()) {
      out.len(2, scopeSizes[sIdx++]!); // ScopeLogs
      out.len(1, scopeSize(sc)); // InstrumentationScope
      out.str(1, sc.name);
      if (sc.version !== '') out.str(2, sc.version);
      for (const i of sc.indices) {
        out.len(2, recordSizes[i - from]!);
        visitRecord(out, events[i]!, g.serviceName, i, bodies);
        order.push(i);
      }
    }
  }
  if (out.pos !== total) throw new Error(`OTLP encoder: wrote ${out.pos} bytes of ${total}`);
  return { bytes: out.buf, order };
}

function scopeSize(sc: ScopeGroup): number {
  return strSize(1, sc.name) + (sc.version !== '' ? strSize(2, sc.version) : 0);
}

/**
 * One LogRecord's fields: written to `out`, or only sized when `out` is null. One function for
 * both passes, so the sizes cannot disagree with the bytes. Returns the record's size.
 */
function visitRecord(out: Out | null, e: Event, serviceName: string, index: number, bodies: Map<number, Uint8Array>): number {
  const md = e.metadata;
  let n = 0;
  const ts = e.timestampUnixNs > 0n ? e.timestampUnixNs : 0n;
  if (ts !== 0n) {
    out?.fixed64(1, ts);
    n += 9;
  }
  const sev = SEVERITY_NUMBER[e.severity];
  if (sev !== undefined) {
    out?.varintField(2, sev);
    n += 1 + varintSize(sev);
  }
  const sevText = md[SEVERITY_TEXT] ?? SEVERITY_NAME[e.severity];
  if (sevText !== undefined && sevText !== '') {
    out?.str(3, sevText);
    n += strSize(3, sevText);
  }
  if (e.payload.length > 0) {
    let body = bodies.get(index);
    if (body === undefined && out === null) {
      body = bodyOf(e.payload, md[PAYLOAD_FORMAT]);
      if (body !== undefined) bodies.set(index, body);
    }
    if (body !== undefined) {
      out?.bytesField(5, body);
      n += lenField(5, body.length);
    } else {
      // string_value (1) and bytes_value (7) are both length-delimited: valid UTF-8 goes out as it is.
      const inner = lenField(1, e.payload.length);
      if (out) {
        out.len(5, inner);
        out.bytesField(isUtf8(e.payload) ? 1 : 7, e.payload);
      }
      n += lenField(5, inner);
    }
  }
  if (e.eventType !== '') n += attr(out, ATTR_EVENT_NAME, e.eventType);
  if (e.id !== '') n += attr(out, ATTR_RECORD_UID, e.id);
  if (e.source !== '' && e.source !== serviceName) n += attr(out, ATTR_SOURCE, e.source);
  const outcome = OUTCOME_TEXT[e.outcome];
  if (outcome !== undefined) n += attr(out, ATTR_OUTCOME, outcome);
  let traceId: string | undefined;
  let spanId: string | undefined;
  for (const k in md) {
    const v = md[k]!;
    if (FIELD_KEYS.has(k)) {
      if (k === TRACE_ID) {
        if (HEX32.test(v)) traceId = v;
        else n += attr(out, k, v);
      } else if (k === SPAN_ID) {
        if (HEX16.test(v)) spanId = v;
        else n += attr(out, k, v);
      }
    } else if (k.startsWith(OTEL_ATTRIBUTE_PREFIX)) {
      const name = k.slice(OTEL_ATTRIBUTE_PREFIX.length);
      if (!OWN_ATTRIBUTES.has(name)) n += attr(out, name, v);
    } else if (k === PAYLOAD_FORMAT) {
      // text and json are what the body says; other formats (protobuf:…) tell how to read its bytes.
      if (v !== PAYLOAD_FORMAT_TEXT && v !== PAYLOAD_FORMAT_JSON) n += attr(out, k, v);
    } else if (!isResourceKey(k)) n += attr(out, k, v);
  }
  if (traceId !== undefined) {
    out?.hexField(9, traceId);
    n += 18;
  }
  if (spanId !== undefined) {
    out?.hexField(10, spanId);
    n += 10;
  }
  if (ts !== 0n) {
    out?.fixed64(11, ts);
    n += 9;
  }
  return n;
}

/** A record attribute (field 6): written when `out` is given; its size either way. */
function attr(out: Out | null, key: string, value: string): number {
  out?.attribute(6, key, value);
  return attributeSize(key, value);
}

/** The body's AnyValue bytes when it is structured (a JSON payload that parses), else undefined. */
function bodyOf(payload: Uint8Array, format: string | undefined): Uint8Array | undefined {
  return format === PAYLOAD_FORMAT_JSON ? (jsonBody(payload) ?? undefined) : undefined;
}

function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A length-delimited field of `size` bytes, tag (fields < 16: one byte) and prefix included. */
function lenField(_field: number, size: number): number {
  return 1 + varintSize(size) + size;
}

function strSize(field: number, s: string): number {
  return lenField(field, Buffer.byteLength(s));
}

/** KeyValue{key, value: AnyValue{string_value}} as one repeated field. */
function attributeSize(key: string, value: string): number {
  const kv = strSize(1, key) + lenField(2, strSize(1, value));
  return lenField(6, kv);
}

/** A preallocated buffer written front to back; field numbers here are all below 16 (one-byte tags). */
class Out {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  varintField(field: number, n: number): void {
    this.buf[this.pos++] = field << 3;
    this.varint(n);
  }

  /** A length-delimited field's tag and length; its `size` bytes follow. */
  len(field: number, size: number): void {
    this.buf[this.pos++] = (field << 3) | 2;
    this.varint(size);
  }

  str(field: number, s: string): void {
    this.len(field, Buffer.byteLength(s));
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  bytesField(field: number, b: Uint8Array): void {
    this.len(field, b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  hexField(field: number, hex: string): void {
    this.len(field, hex.length / 2);
    this.pos += this.buf.write(hex, this.pos, 'hex');
  }

  fixed64(field: number, v: bigint): void {
    this.buf[this.pos++] = (field << 3) | 1;
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
  }

  attribute(field: number, key: string, value: string): void {
    const keyLen = Buffer.byteLength(key);
    const valueLen = Buffer.byteLength(value);
    const any = 1 + varintSize(valueLen) + valueLen;
    this.len(field, 1 + varintSize(keyLen) + keyLen + 1 + varintSize(any) + any);
    this.len(1, keyLen);
    this.pos += this.buf.write(key, this.pos, 'utf8');
    this.len(2, any);
    this.len(1, valueLen);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }
}

/** A JSON payload as AnyValue bytes; null when it is not JSON or nests too deep. */
function jsonBody(payload: Uint8Array): Uint8Array | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    return null;
  }
  const w = new BinaryWriter();
  return writeAnyValue(w, value, 0) ? w.finish() : null;
}

/** The fields of one AnyValue for `value`; false when nesting passes {@link MAX_JSON_DEPTH}. */
function writeAnyValue(w: BinaryWriter, value: unknown, depth: number): boolean {
  if (depth > MAX_JSON_DEPTH) return false;
  switch (typeof value) {
    case 'string':
      w.tag(1, LEN).string(value);
      return true;
    case 'boolean':
      w.tag(2, WireType.Varint).bool(value);
      return true;
    case 'number':
      if (Number.isSafeInteger(value)) w.tag(3, WireType.Varint).int64(value);
      else w.tag(4, WireType.Bit64).double(value);
      return true;
    case 'object': {
      if (value === null) return true; // an empty AnyValue
      if (Array.isArray(value)) {
        w.tag(5, LEN).fork(); // ArrayValue
        for (const item of value) {
          w.tag(1, LEN).fork();
          if (!writeAnyValue(w, item, depth + 1)) return false;
          w.join();
        }
        w.join();
        return true;
      }
      w.tag(6, LEN).fork(); // KeyValueList
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        w.tag(1, LEN).fork().tag(1, LEN).string(k).tag(2, LEN).fork();
        if (!writeAnyValue(w, v, depth + 1)) return false;
        w.join().join();
      }
      w.join();
      return true;
    }
    default:
      return true;
  }
}

/** ExportLogsServiceResponse.partial_success, as the receiver filled it. */
export interface PartialSuccess {
  readonly rejected: number;
  readonly message: string;
}

/** Decodes ExportLogsServiceResponse; throws on bytes that are not one. */
export function decodeLogsResponse(bytes: Uint8Array): PartialSuccess {
  let rejected = 0;
  let message = '';
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 1 && type === LEN) {
      const p = new BinaryReader(r.bytes());
      while (p.pos < p.len) {
        const [f, t] = p.tag();
        if (f === 1 && t === WireType.Varint) rejected = Number(p.int64());
        else if (f === 2 && t === LEN) message = p.string();
        else p.skip(t, f);
      }
    } else r.skip(type, field);
  }
  return { rejected, message };
}

/** ExportLogsServiceResponse in OTLP/JSON (`{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"…"}}`). */
export function decodeLogsResponseJson(text: string): PartialSuccess {
  const parsed = JSON.parse(text) as { partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string } } | null;
  const p = parsed?.partialSuccess;
  return { rejected: Number(p?.rejectedLogRecords ?? 0) || 0, message: typeof p?.errorMessage === 'string' ? p.errorMessage : '' };
}

/**
 * From `google.rpc.Status` bytes (the gRPC `grpc-status-details-bin` trailer, or an OTLP/HTTP error
 * body): its message and the delay of a `google.rpc.RetryInfo` detail, if any. Unreadable bytes
 * give `{}`.
 */
export function decodeRpcStatus(bytes: Uint8Array): { message?: string; retryDelayMs?: number } {
  const out: { message?: string; retryDelayMs?: number } = {};
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [field, type] = r.tag();
      if (field === 2 && type === LEN) out.message = r.string();
      else if (field === 3 && type === LEN) {
        const any = new BinaryReader(r.bytes());
        let typeUrl = '';
        let value: Uint8Array | undefined;
        while (any.pos < any.len) {
          const [f, t] = any.tag();
          if (f === 1 && t === LEN) typeUrl = any.string();
          else if (f === 2 && t === LEN) value = any.bytes();
          else any.skip(t, f);
        }
        if (typeUrl.endsWith('/google.rpc.RetryInfo') && value) {
          const delay = readRetryDelay(value);
          if (delay !== undefined) out.retryDelayMs = delay;
        }
      } else r.skip(type, field);
    }
  } catch {
    return {};
  }
  return out;
}

/** RetryInfo{retry_delay: Duration{seconds, nanos}} → milliseconds. */
function readRetryDelay(bytes: Uint8Array): number | undefined {
  const r = new BinaryReader(bytes);
  let ms: number | undefined;
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 1 && type === LEN) {
      const d = new BinaryReader(r.bytes());
      let seconds = 0;
      let nanos = 0;
      while (d.pos < d.len) {
        const [f, t] = d.tag();
        if (f === 1 && t === WireType.Varint) seconds = Number(d.int64());
        else if (f === 2 && t === WireType.Varint) nanos = d.int32();
        else d.skip(t, f);
      }
      ms = Math.max(0, Math.round(seconds * 1000 + nanos / 1e6));
    } else r.skip(type, field);
  }
  return ms;
}
