import { isUtf8 } from 'node:buffer';
import { Outcome, Severity, type Event } from '../gen/polku/v1/event.js';
import * as Keys from '../metadata-keys.js';
import { attributeSize, jsonBody, lenField, Out, strSize, varintSize } from './otlp-wire.js';

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
 * | event_type | `event_name` (12) and attribute `event.name` |
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
  // event_name (12, OTLP 1.5) as well as the `event.name` attribute, for receivers of older protos.
  if (e.eventType !== '') {
    out?.str(12, e.eventType);
    n += strSize(12, e.eventType);
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
