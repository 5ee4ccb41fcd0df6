import type { Event } from '../gen/polku/v1/event.js';
import type { TenantShare } from '../tenants/tenant.js';

/**
 * An accepted event while the buffer holds it. One of these is shared by every emitter queue the
 * event was routed to; the event itself is never copied.
 */
export interface BufferedEvent {
  readonly event: Event;
  /** Approximate size, counted against the buffer's byte bound. */
  readonly bytes: number;
  /** Admission order across the whole buffer; the smallest live one is the oldest. */
  readonly seq: number;
  /** Emitter queues that still have to deliver (or give up on) this event. */
  refs: number;
  /** Set once no queue holds the event any more and its room is free again. */
  released: boolean;
  /** The tenant's slice of the buffer it counts against (undefined: no tenants). */
  readonly share: TenantShare | undefined;
  /** Wall-clock ms when it was admitted (the tenants' delivery lag). */
  readonly atMs: number;
}
