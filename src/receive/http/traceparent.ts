/**
 * A W3C Trace Context `traceparent` header (https://www.w3.org/TR/trace-context/#traceparent-header):
 * `version-traceid-parentid-flags`, lower-case hex. Version 00 is exactly 55 characters; a later
 * version may append fields after a dash, which are ignored, as the specification asks. Version
 * ff, and an all-zero trace id or parent id, are invalid.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
}

/** The header's trace and parent span ids, or undefined when it does not follow the format. */
export function parseTraceparent(header: string): TraceContext | undefined {
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, , rest] = m;
  if (version === 'ff') return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId: traceId!, spanId: spanId! };
}
