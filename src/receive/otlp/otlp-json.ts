import { ExportLogsServiceRequest } from '../../gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { AnyValue, KeyValue } from '../../gen/opentelemetry/proto/common/v1/common.js';
import type { LogRecord, ResourceLogs, ScopeLogs } from '../../gen/opentelemetry/proto/logs/v1/logs.js';
import type { DeepPartial } from '../../gen/opentelemetry/proto/logs/v1/logs.js';

/** A body that is not an OTLP request: the message names what and where (`resourceLogs[0].scopeLogs[1]…`). */
export class OtlpBodyError extends Error {}

/** Deepest nesting of AnyValue arrays and key-value lists, as the protobuf decoder's recursion limit bounds it. */
export const MAX_ANYVALUE_DEPTH = 64;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads an OTLP/JSON `ExportLogsServiceRequest` (the OTLP specification's "JSON Protobuf
 * Encoding"): field names in lowerCamelCase (the proto names in snake_case are accepted too, as
 * protobuf's JSON parsers do), trace and span ids as hex (not base64), enums as integers, 64-bit
 * integers as decimal strings or numbers, `bytesValue` as base64. Unknown fields are ignored, as
 * the specification asks. Anything else (invalid UTF-8, not JSON, a field of the wrong type)
 * throws {@link OtlpBodyError} naming the field.
 */
export function requestOfJson(body: Uint8Array): ExportLogsServiceRequest {
  let text: string;
  try {
    text = fatalUtf8.decode(body);
  } catch {
    throw new OtlpBodyError('body is not valid UTF-8');
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw new OtlpBodyError(`body is not JSON: ${(err as Error).message}`);
  }
  const o = object(root, 'body');
  const partial: DeepPartial<ExportLogsServiceRequest> = {
    resourceLogs: array(field(o, 'resourceLogs', 'resource_logs'), 'resourceLogs').map((rl, i) => resourceLogs(rl, `resourceLogs[${i}]`)),
  };
  return ExportLogsServiceRequest.fromPartial(partial);
}

type Json = Record<string, unknown>;

function resourceLogs(v: unknown, at: string): DeepPartial<ResourceLogs> {
  const o = object(v, at);
  const resource = field(o, 'resource');
  const out: DeepPartial<ResourceLogs> = {
    scopeLogs: array(field(o, 'scopeLogs', 'scope_logs'), `${at}.scopeLogs`).map((sl, i) => scopeLogs(sl, `${at}.scopeLogs[${i}]`)),
    schemaUrl: str(field(o, 'schemaUrl', 'schema_url'), `${at}.schemaUrl`),
  };
  if (resource !== undefined && resource !== null) {
    const r = object(resource, `${at}.resource`);
    out.resource = { attributes: keyValues(field(r, 'attributes'), `${at}.resource.attributes`, 0) };
  }
  return out;
}

function scopeLogs(v: unknown, at: string): DeepPartial<ScopeLogs> {
  const o = object(v, at);
  const scope = field(o, 'scope');
  const out: DeepPartial<ScopeLogs> = {
    logRecords: array(field(o, 'logRecords', 'log_records'), `${at}.logRecords`).map((r, i) => logRecord(r, `${at}.logRecords[${i}]`)),
    schemaUrl: str(field(o, 'schemaUrl', 'schema_url'), `${at}.schemaUrl`),
  };
  if (scope !== undefined && scope !== null) {
    const s = object(scope, `${at}.scope`);
    out.scope = { name: str(field(s, 'name'), `${at}.scope.name`), version: str(field(s, 'version'), `${at}.scope.version`) };
  }
  return out;
}

function logRecord(v: unknown, at: string): DeepPartial<LogRecord> {
  const o = object(v, at);
  const body = field(o, 'body');
  return {
    timeUnixNano: uint64(field(o, 'timeUnixNano', 'time_unix_nano'), `${at}.timeUnixNano`),
    observedTimeUnixNano: uint64(field(o, 'observedTimeUnixNano', 'observed_time_unix_nano'), `${at}.observedTimeUnixNano`),
    severityNumber: int32(field(o, 'severityNumber', 'severity_number'), `${at}.severityNumber`),
    severityText: str(field(o, 'severityText', 'severity_text'), `${at}.severityText`),
    ...(body === undefined || body === null ? {} : { body: anyValue(body, `${at}.body`, 0) }),
    attributes: keyValues(field(o, 'attributes'), `${at}.attributes`, 0),
    droppedAttributesCount: int32(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${at}.droppedAttributesCount`),
    flags: int32(field(o, 'flags'), `${at}.flags`),
    traceId: hexBytes(field(o, 'traceId', 'trace_id'), `${at}.traceId`),
    spanId: hexBytes(field(o, 'spanId', 'span_id'), `${at}.spanId`),
    eventName: str(field(o, 'eventName', 'event_name'), `${at}.eventName`),
  };
}

function keyValues(v: unknown, at: string, depth: number): KeyValue[] {
  return array(v, at).map((kv, i) => {
    const o = object(kv, `${at}[${i}]`);
    const value = field(o, 'value');
    return {
      key: str(field(o, 'key'), `${at}[${i}].key`),
      value: value === undefined || value === null ? undefined : anyValue(value, `${at}[${i}].value`, depth),
    };
  });
}

function anyValue(v: unknown, at: string, depth: number): AnyValue {
  if (depth > MAX_ANYVALUE_DEPTH) throw new OtlpBodyError(`${at}: values nest deeper than ${MAX_ANYVALUE_DEPTH}`);
  const o = object(v, at);
  let x: unknown;
  if ((x = field(o, 'stringValue', 'string_value')) !== undefined) return { value: { $case: 'stringValue', value: str(x, at) } };
  if ((x = field(o, 'boolValue', 'bool_value')) !== undefined) {
    if (typeof x !== 'boolean') throw new OtlpBodyError(`${at}.boolValue: expected true or false`);
    return { value: { $case: 'boolValue', value: x } };
  }
  if ((x = field(o, 'intValue', 'int_value')) !== undefined) return { value: { $case: 'intValue', value: int64(x, `${at}.intValue`) } };
  if ((x = field(o, 'doubleValue', 'double_value')) !== undefined)
    return { value: { $case: 'doubleValue', value: double(x, `${at}.doubleValue`) } };
  if ((x = field(o, 'bytesValue', 'bytes_value')) !== undefined) {
    const text = str(x, `${at}.bytesValue`);
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) throw new OtlpBodyError(`${at}.bytesValue: expected base64`);
    return { value: { $case: 'bytesValue', value: Buffer.from(text, 'base64') } };
  }
  if ((x = field(o, 'arrayValue', 'array_value')) !== undefined) {
    const values = field(object(x, `${at}.arrayValue`), 'values');
    return {
      value: {
        $case: 'arrayValue',
        value: { values: array(values, `${at}.arrayValue.values`).map((e, i) => anyValue(e, `${at}.arrayValue.values[${i}]`, depth + 1)) },
      },
    };
  }
  if ((x = field(o, 'kvlistValue', 'kvlist_value')) !== undefined) {
    const values = field(object(x, `${at}.kvlistValue`), 'values');
    return { value: { $case: 'kvlistValue', value: { values: keyValues(values, `${at}.kvlistValue.values`, depth + 1) } } };
  }
  return { value: undefined };
}

function field(o: Json, camel: string, snake?: string): unknown {
  const v = o[camel];
  return v === undefined && snake !== undefined ? o[snake] : v;
}

function object(v: unknown, at: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new OtlpBodyError(`${at}: expected an object`);
  return v as Json;
}

function array(v: unknown, at: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new OtlpBodyError(`${at}: expected an array`);
  return v;
}

function str(v: unknown, at: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new OtlpBodyError(`${at}: expected a string`);
  return v;
}

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function uint64(v: unknown, at: string): bigint {
  if (v === undefined || v === null) return 0n;
  const n = integer(v, at);
  if (n < 0n || n > UINT64_MAX) throw new OtlpBodyError(`${at}: ${n} is outside 0..2^64-1`);
  return n;
}

function int64(v: unknown, at: string): bigint {
  const n = integer(v, at);
  if (n < INT64_MIN || n > INT64_MAX) throw new OtlpBodyError(`${at}: ${n} is outside the 64-bit signed range`);
  return n;
}

/** A 64-bit integer as protobuf's JSON mapping writes it: a decimal string, or a number. */
function integer(v: unknown, at: string): bigint {
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) return BigInt(v);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw new OtlpBodyError(`${at}: expected an integer (a decimal string or a number)`);
}

function int32(v: unknown, at: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v <= 2 ** 32 - 1) return v;
  throw new OtlpBodyError(`${at}: expected an integer (enums are sent as numbers in OTLP/JSON)`);
}

function double(v: unknown, at: string): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  throw new OtlpBodyError(`${at}: expected a number`);
}

/** Trace and span ids: hex in OTLP/JSON (the one place it differs from protobuf's base64 for bytes). */
function hexBytes(v: unknown, at: string): Uint8Array {
  const text = str(v, at);
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new OtlpBodyError(`${at}: expected hex digits (OTLP/JSON ids are hex)`);
  return Buffer.from(text, 'hex');
}
