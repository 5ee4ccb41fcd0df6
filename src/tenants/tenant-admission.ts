import type { AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import { admitEvent, eventBytes, type IntakeLimits } from '../ingest/intake-rules.js';
import type { UlidFactory } from '../ingest/ulid.js';
import { TENANT } from '../metadata-keys.js';
import { refill, waitMs } from '../middleware/rate-limiter.js';
import type { Tenant } from './tenant.js';

/** Where a batch came from, for the intake rules. */
export interface TenantBatch {
  readonly source: string;
  readonly receivedAtNs: bigint;
}

/** Where refused events are written (the batch's outcome). */
export interface RefusalSink {
  refuse(eventId: string, code: AckCode, message: string): void;
}

/**
 * Intake rules, then the tenant's own: the source each event carries must be one the tenant may
 * send (PERMISSION_DENIED for that event alone), and each takes a token from the tenant's bucket
 * (RATE_LIMITED with a retry-after when none is left). Accepted events get metadata
 * polku.tenant, overwriting whatever the caller wrote there, and the tenant's route when they
 * name none. The bucket is refilled once per batch, to `nowMs` (monotonic). Returns the events
 * admitted, in order; every other one is in `out` with its reason.
 */
export function admitTenantEvents(
  tenant: Tenant,
  events: readonly Event[],
  batch: TenantBatch,
  limits: IntakeLimits,
  newId: UlidFactory,
  nowMs: number,
  out: RefusalSink,
): Event[] {
  const spec = tenant.spec;
  const bucket = tenant.bucket;
  const limit = { rate: spec.rate, burst: spec.burst };
  refill(bucket, nowMs, limit);
  tenant.lastMessageEvents = events.length;
  const valid: Event[] = [];
  let bytes = 0;
  let overQuota = 0;
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const refusal = admitEvent(event, limits, batch.source, batch.receivedAtNs, newId);
    if (refusal !== undefined) {
      out.refuse(event.id, refusal.code, `events[${i}]: ${refusal.message}`);
      continue;
    }
    if (!tenant.allows(event.source)) {
      out.refuse(event.id, 'PERMISSION_DENIED', `events[${i}]: ${tenant.forbidden(event.source)}`);
      continue;
    }
    const wait = waitMs(bucket, limit);
    if (wait > 0) {
      overQuota++;
      out.refuse(event.id, 'RATE_LIMITED', `events[${i}]: ${tenant.overQuota(wait)}`);
      continue;
    }
    bucket.tokens -= 1;
    event.metadata[TENANT] = tenant.name;
    if (spec.emitters !== undefined && event.routeTo.length === 0) event.routeTo = [...spec.emitters];
    bytes += eventBytes(event);
    valid.push(event);
  }
  if (overQuota > 0) tenant.series.quotaRefusals.inc(overQuota);
  if (bytes > 0) tenant.series.bytes.inc(bytes);
  return valid;
}
