import type { Event } from '../gen/polku/v1/event.js';

/**
 * Which events got their id from the gateway rather than from the client.
 *
 * Intake gives an event that arrived with an empty id a fresh ULID before any middleware runs,
 * so by the time the deduplicator looks, `event.id` is never empty and "the client sent no id"
 * is invisible in the event itself. The gateway records it here instead, by object identity.
 *
 * A WeakSet rather than a marker field: the Event type is generated from the wire contract (a
 * field would be encoded and sent to emitters), and a WeakSet entry disappears with its event, so
 * the set needs no cleanup and cannot grow past the events alive.
 *
 * Limits: the mark belongs to the object. A middleware that replaces an event with a new object
 * (a transform returning `{ ...e }`, an enricher returning a copy) loses it, and the copy then
 * looks like it carries a client id. Its id is still a fresh ULID, so it can only ever duplicate
 * itself; the cost is one slot in the deduplicator's table, not a wrong refusal.
 *
 * Process-wide (`Symbol.for`), as the decoder's refusals are: a pipeline module loaded through tsx
 * has its own copy of these modules.
 */
const assigned: WeakSet<Event> = ((globalThis as Record<symbol, unknown>)[Symbol.for('polku.assignedIds')] ??=
  new WeakSet<Event>()) as WeakSet<Event>;

/** Records that the gateway, not the client, chose `event.id`. Intake calls it after assigning the id. */
export function markAssignedId(event: Event): void {
  assigned.add(event);
}

/** True when `event.id` came from the client (intake did not mark the event). */
export function hasClientId(event: Event): boolean {
  return !assigned.has(event);
}
