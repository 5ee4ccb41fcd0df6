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
  const w = new BinaryWriter();
  const order: number[] = [];
  for (const g of groups.values()) {
    w.tag(1, LEN).fork(); // ResourceLogs
    w.tag(1, LEN).fork(); // Resource
    for (const [k, v] of g.attributes) writeStringAttribute(w, 1, k, v);
    w.join();
    for (const s of g.scopes.values()) {
      w.tag(2, LEN).fork(); // ScopeLogs
      w.tag(1, LEN).fork().tag(1, LEN).string(s.name); // InstrumentationScope
      if (s.version !== '') w.tag(2, LEN).string(s.version);
      w.join();
      for (const i of s.indices) {
        writeLogRecord(w, events[i]!, g.serviceName);
        order.push(i);
      }
      w.join();
    }
    w.join();
  }
  return { bytes: w.finish(), order };
}

function writeLogRecord(w: BinaryWriter, e: Event, serviceName: string): void {
  const md = e.metadata;
  w.tag(2, LEN).fork(); // ScopeLogs.log_records
  const ts = e.timestampUnixNs > 0n ? e.timestampUnixNs : 0n;
  if (ts !== 0n) w.tag(1, WireType.Bit64).fixed64(ts);
  const sev = SEVERITY_NUMBER[e.severity];
  if (sev !== undefined) w.tag(2, WireType.Varint).int32(sev);
  const sevText = md[SEVERITY_TEXT] ?? SEVERITY_NAME[e.severity];
  if (sevText !== undefined && sevText !== '') w.tag(3, LEN).string(sevText);
  const format = md[PAYLOAD_FORMAT];
  if (e.payload.length > 0) writeBody(w, e.payload, format);
  if (e.eventType !== '') writeStringAttribute(w, 6, ATTR_EVENT_NAME, e.eventType);
  if (e.id !== '') writeStringAttribute(w, 6, ATTR_RECORD_UID, e.id);
  if (e.source !== '' && e.source !== serviceName) writeStringAttribute(w, 6, ATTR_SOURCE, e.source);
  const outcome = OUTCOME_TEXT[e.outcome];
  if (outcome !== undefined) writeStringAttribute(w, 6, ATTR_OUTCOME, outcome);
  let traceId: string | undefined;
  let spanId: string | undefined;
  for (const k in md) {
    const v = md[k]!;
    if (FIELD_KEYS.has(k)) {
      if (k === TRACE_ID) {
        if (HEX32.test(v)) traceId = v;
        else writeStringAttribute(w, 6, k, v);
      } else if (k === SPAN_ID) {
        if (HEX16.test(v)) spanId = v;
        else writeStringAttribute(w, 6, k, v);
      }
    } else if (k.startsWith(OTEL_ATTRIBUTE_PREFIX)) {
      const name = k.slice(OTEL_ATTRIBUTE_PREFIX.length);
      if (!OWN_ATTRIBUTES.has(name)) writeStringAttribute(w, 6, name, v);
    } else if (k === PAYLOAD_FORMAT) {
      // text and json are what the body says; other formats (protobuf:…) tell how to read its bytes.
      if (v !== PAYLOAD_FORMAT_TEXT && v !== PAYLOAD_FORMAT_JSON) writeStringAttribute(w, 6, k, v);
    } else if (!isResourceKey(k)) writeStringAttribute(w, 6, k, v);
  }
  if (traceId !== undefined) w.tag(9, LEN).bytes(Buffer.from(traceId, 'hex'));
  if (spanId !== undefined) w.tag(10, LEN).bytes(Buffer.from(spanId, 'hex'));
  if (ts !== 0n) w.tag(11, WireType.Bit64).fixed64(ts);
  w.join();
}

/** LogRecord.body (field 5): structured for JSON payloads, else a string or bytes value. */
function writeBody(w: BinaryWriter, payload: Uint8Array, format: string | undefined): void {
  if (format === PAYLOAD_FORMAT_JSON) {
    const structured = jsonBody(payload);
    if (structured) {
      w.tag(5, LEN).bytes(structured);
      return;
    }
  }
  // string_value (1) and bytes_value (7) are both length-delimited: valid UTF-8 goes out as it is.
  w.tag(5, LEN)
    .fork()
    .tag(isUtf8(payload) ? 1 : 7, LEN)
    .bytes(payload)
    .join();
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

/** KeyValue{key, value: AnyValue{string_value}} as field `field` of the open message. */
function writeStringAttribute(w: BinaryWriter, field: number, key: string, value: string): void {
  w.tag(field, LEN).fork().tag(1, LEN).string(key).tag(2, LEN).fork().tag(1, LEN).string(value).join().join();
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
