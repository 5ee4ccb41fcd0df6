import type { ExportLogsServiceRequest } from '../../gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { AnyValue, KeyValue } from '../../gen/opentelemetry/proto/common/v1/common.js';
import type { LogRecord } from '../../gen/opentelemetry/proto/logs/v1/logs.js';
import { Severity, type Event } from '../../gen/polku/v1/event.js';
import {
  OTEL_ATTRIBUTE_PREFIX,
  OTEL_SCOPE_NAME,
  OTEL_SCOPE_VERSION,
  PAYLOAD_FORMAT,
  PAYLOAD_FORMAT_JSON,
  PAYLOAD_FORMAT_TEXT,
  SERVICE_NAME,
  SEVERITY_TEXT,
  SPAN_ID,
  TRACE_ID,
} from '../../metadata-keys.js';

/** The source of a record whose resource names no `service.name`. */
export const OTLP_DEFAULT_SOURCE = 'otlp';
/** How log records become events. */
export interface LogMapping {
  readonly eventTypeAttribute: string;
  readonly idAttribute: string;
  /** POLKU_MAX_METADATA_BYTES: copying stops just past it, and intake refuses the record METADATA_TOO_LARGE. */
  readonly maxMetadataBytes: number;
}

/** A resource's or scope's attributes, as metadata entries, built once and copied into each of its records. */
type Entries = Array<readonly [key: string, value: string]>;

/**
 * Every log record of an Export request as one event, in request order (resource, scope, record),
 * so the Ack's refusals line up with the records. Ids are checked first ({@link idProblem}).
 *
 * Metadata: resource attributes under their own names (OpenTelemetry's semantic conventions, which
 * POLKU's vocabulary in src/metadata-keys.ts follows), the scope as `otel.scope.name` /
 * `otel.scope.version`, record attributes as `otel.attr.<key>`, then `trace_id`, `span_id`,
 * `severity_text` and `polku.payload.format`. Bounded: copying stops once the running size (keys
 * plus values, as intake counts it) passes `maxMetadataBytes`, and intake then refuses the record.
 */
export function eventsOfRequest(request: ExportLogsServiceRequest, o: LogMapping): Event[] {
  const events: Event[] = [];
  for (const rl of request.resourceLogs) {
    const resource: Entries = [];
    let source = OTLP_DEFAULT_SOURCE;
    for (const kv of rl.resource?.attributes ?? []) {
      const value = attributeText(kv.value);
      if (kv.key === SERVICE_NAME && kv.value?.value?.$case === 'stringValue' && value !== '') source = value;
      resource.push([kv.key, value]);
    }
    for (const sl of rl.scopeLogs) addScope(events, resource, source, sl.scope, sl.logRecords, o);
  }
  return events;
}

/**
 * Where the request breaks the OTLP data model in a way no record can be mapped from: a trace id
 * that is not 16 bytes or a span id that is not 8 (or empty). The whole request is then refused
 * INVALID_ARGUMENT / 400, as the OpenTelemetry Collector refuses it.
 */
export function idProblem(request: ExportLogsServiceRequest): string | undefined {
  for (let r = 0; r < request.resourceLogs.length; r++) {
    const rl = request.resourceLogs[r]!;
    for (let g = 0; g < rl.scopeLogs.length; g++) {
      const records = rl.scopeLogs[g]!.logRecords;
      for (let i = 0; i < records.length; i++) {
        const { traceId, spanId } = records[i]!;
        const at = `resourceLogs[${r}].scopeLogs[${g}].logRecords[${i}]`;
        if (traceId.length !== 0 && traceId.length !== 16) return `${at}.traceId is ${traceId.length} bytes; OTLP wants 16 or none`;
        if (spanId.length !== 0 && spanId.length !== 8) return `${at}.spanId is ${spanId.length} bytes; OTLP wants 8 or none`;
      }
    }
  }
  return undefined;
}

/** How many log records the request carries (what a whole-request refusal refuses). */
export function recordCount(request: ExportLogsServiceRequest): number {
  let n = 0;
  for (const rl of request.resourceLogs) {
    for (const sl of rl.scopeLogs) n += sl.logRecords.length;
  }
  return n;
}

function addScope(
  events: Event[],
  resource: Entries,
  source: string,
  scope: { name: string; version: string } | undefined,
  records: readonly LogRecord[],
  o: LogMapping,
): void {
  const shared: Entries = resource.slice();
  if (scope?.name) shared.push([OTEL_SCOPE_NAME, scope.name]);
  if (scope?.version) shared.push([OTEL_SCOPE_VERSION, scope.version]);
  for (let i = 0; i < records.length; i++) events.push(eventOfRecord(records[i]!, shared, source, o));
}

/** One log record as an event; see {@link eventsOfRequest}. */
export function eventOfRecord(record: LogRecord, shared: Entries, source: string, o: LogMapping): Event {
  const metadata: Record<string, string> = {};
  const limit = o.maxMetadataBytes;
  let bytes = 0;
  for (let i = 0; i < shared.length && bytes <= limit; i++) {
    const [k, v] = shared[i]!;
    metadata[k] = v;
    bytes += k.length + v.length;
  }
  let id = '';
  let eventType = '';
  const attributes: readonly KeyValue[] = record.attributes;
  for (let i = 0; i < attributes.length && bytes <= limit; i++) {
    const kv = attributes[i]!;
    const value = attributeText(kv.value);
    if (kv.key === o.eventTypeAttribute && kv.value?.value?.$case === 'stringValue') eventType = value;
    if (kv.key === o.idAttribute && kv.value?.value?.$case === 'stringValue') id = value;
    const key = OTEL_ATTRIBUTE_PREFIX + kv.key;
    metadata[key] = value;
    bytes += key.length + value.length;
  }
  if (record.traceId.length !== 0) metadata[TRACE_ID] = hex(record.traceId);
  if (record.spanId.length !== 0) metadata[SPAN_ID] = hex(record.spanId);
  if (record.severityText !== '') metadata[SEVERITY_TEXT] = record.severityText;
  let payload: Uint8Array = EMPTY;
  const body = record.body?.value;
  if (body !== undefined) {
    if (body.$case === 'stringValue') {
      payload = Buffer.from(body.value, 'utf8');
      metadata[PAYLOAD_FORMAT] = PAYLOAD_FORMAT_TEXT;
    } else {
      payload = Buffer.from(jsonOf(record.body), 'utf8');
      metadata[PAYLOAD_FORMAT] = PAYLOAD_FORMAT_JSON;
    }
  }
  return {
    id,
    timestampUnixNs: record.timeUnixNano !== 0n ? record.timeUnixNano : record.observedTimeUnixNano,
    source,
    // `event_name` (OTLP 1.5) first, then the configurable attribute.
    eventType: record.eventName !== '' ? record.eventName : eventType,
    metadata,
    payload,
    routeTo: [],
    severity: severityOf(record.severityNumber),
    outcome: 0,
  };
}

const EMPTY = new Uint8Array(0);

/**
 * OpenTelemetry's SeverityNumber (1–24, four steps per level) as POLKU's Severity: TRACE and
 * DEBUG → DEBUG, INFO → INFO, WARN → WARNING, ERROR → ERROR, FATAL → CRITICAL; 0 or out of
 * range → UNSPECIFIED.
 */
export function severityOf(n: number): Severity {
  if (n >= 1 && n <= 8) return Severity.SEVERITY_DEBUG;
  if (n >= 9 && n <= 12) return Severity.SEVERITY_INFO;
  if (n >= 13 && n <= 16) return Severity.SEVERITY_WARNING;
  if (n >= 17 && n <= 20) return Severity.SEVERITY_ERROR;
  if (n >= 21 && n <= 24) return Severity.SEVERITY_CRITICAL;
  return Severity.SEVERITY_UNSPECIFIED;
}

/** An attribute's value as metadata text: strings as they are, every other kind as its JSON. */
export function attributeText(value: AnyValue | undefined): string {
  const v = value?.value;
  if (v === undefined) return '';
  if (v.$case === 'stringValue') return v.value;
  if (v.$case === 'bytesValue') return Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength).toString('base64');
  return jsonOf(value);
}

/**
 * An AnyValue as JSON text: ints exactly (as JSON numbers of any size), doubles as numbers (NaN and
 * ±Infinity, which JSON lacks, as the strings protobuf's JSON mapping uses), bytes as base64,
 * arrays and key-value lists as arrays and objects, an empty value as null. Nesting is bounded by
 * the decoder (ts-proto's recursion limit of 100 messages).
 */
export function jsonOf(value: AnyValue | undefined): string {
  const v = value?.value;
  if (v === undefined) return 'null';
  switch (v.$case) {
    case 'stringValue':
      return JSON.stringify(v.value);
    case 'boolValue':
      return v.value ? 'true' : 'false';
    case 'intValue':
      return v.value.toString();
    case 'doubleValue':
      return Number.isFinite(v.value) ? String(v.value) : JSON.stringify(String(v.value));
    case 'bytesValue':
      return JSON.stringify(Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength).toString('base64'));
    case 'arrayValue':
      return `[${v.value.values.map((e) => jsonOf(e)).join(',')}]`;
    case 'kvlistValue':
      return `{${v.value.values.map((kv) => `${JSON.stringify(kv.key)}:${kv.value ? jsonOf(kv.value) : 'null'}`).join(',')}}`;
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
