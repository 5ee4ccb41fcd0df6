import type { AckCode } from '../errors.js';
import type { IngestBatch, IngestEvent } from '../gen/polku/v1/gateway.js';
import type { WireEvents } from '../ingest/wire-events.js';
import type { IntakeRequest } from './intake-request.js';

/** A polku.v1 IngestBatch as an intake request. */
export function intakeOfBatch(batch: IngestBatch, receivedAtNs?: bigint, wire?: WireEvents): IntakeRequest {
  const base = { source: batch.source, cluster: batch.cluster, ...(receivedAtNs === undefined ? {} : { receivedAtNs }) };
  const p = batch.payload;
  if (p === undefined)
    return { ...base, payload: { kind: 'unreadable', code: 'INVALID_BATCH', message: 'batch has neither raw nor events payload' } };
  if (p.$case === 'events') return { ...base, payload: { kind: 'events', events: p.value.events, wire } };
  return { ...base, payload: { kind: 'raw', data: p.value.data, format: p.value.format } };
}

/** A polku.v1 IngestEvent (unary SendEvent) as an intake request: it never waits for room. */
export function intakeOfEvent(request: IngestEvent, receivedAtNs?: bigint): IntakeRequest {
  const base = { source: request.source, cluster: request.cluster, unary: true, ...(receivedAtNs === undefined ? {} : { receivedAtNs }) };
  const p = request.payload;
  if (p === undefined)
    return { ...base, payload: { kind: 'unreadable', code: 'INVALID_BATCH', message: 'request has neither raw nor event' } };
  if (p.$case === 'event') return { ...base, payload: { kind: 'events', events: [p.value] } };
  return { ...base, payload: { kind: 'raw', data: p.value, format: request.format } };
}

/** A message a receiver could not decode or size-check, as an intake request: refused and counted as one. */
export function intakeOfUnreadable(
  refusal: { readonly code: AckCode; readonly message: string },
  options: { unary: boolean; receivedAtNs?: bigint },
): IntakeRequest {
  return {
    source: '',
    cluster: '',
    unary: options.unary,
    ...(options.receivedAtNs === undefined ? {} : { receivedAtNs: options.receivedAtNs }),
    payload: { kind: 'unreadable', code: refusal.code, message: refusal.message },
  };
}
