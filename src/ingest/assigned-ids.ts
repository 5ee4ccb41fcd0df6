import type { Event } from '../gen/polku/v1/event.js';

/**
 * Which events got their id from the gateway rather than from the client.
 *
 * Intake gives an event that arrived with an empty id a fresh ULID before any middleware runs,
 * so by the time the deduplicator looks, `event.id` is never empty and "the client sent no id"
 * is invisible in the event itself. The gateway marks the object instead.
 *
 * The mark is a non-enumerable symbol property: not a field of the Event type (generated from the
 * wire contract, so a field would be encoded and sent to emitters), invisible to encoders,
 * JSON.stringify, object spread and deep-equality checks, and gone with its event. It replaced a
 * WeakSet, whose entries cost every id-less event an ephemeron the garbage collector must trace:
 * OTLP log records (which rarely carry an id) went from 103–112k to 121–127k records/s in
 * `npm run bench` (docs/benchmarks.md, "OTLP/gRPC ingest"). An event object that cannot take a
 * property (frozen by a custom ingestor) is remembered in a WeakSet as before.
 *
 * Limits: the mark belongs to the object. A middleware that replaces an event with a new object
 * (a transform returning `{ ...e }`, an enricher returning a copy) loses it, and the copy then
 * looks like it carries a client id. Its id is still a fresh ULID, so it can only ever duplicate
 * itself; the cost is one slot in the deduplicator's table, not a wrong refusal.
 *
 * `Symbol.for`, so that every copy of this module in the process agrees (a pipeline module loaded
 * through tsx has its own copy of the hub's modules).
 */
const ASSIGNED = Symbol.for('polku.assignedId');
const MARK: PropertyDescriptor = { value: true };
/** Marks of events that could not take the property, shared by every copy of this module. */
const frozen: { events: WeakSet<Event>; any: boolean } = ((globalThis as Record<symbol, unknown>)[Symbol.for('polku.assignedIds')] ??= {
  events: new WeakSet<Event>(),
  any: false,
}) as { events: WeakSet<Event>; any: boolean };

/** Records that the gateway, not the client, chose `event.id`. Intake calls it after assigning the id. */
export function markAssignedId(event: Event): void {
  try {
    Object.defineProperty(event, ASSIGNED, MARK);
  } catch {
    frozen.events.add(event);
    frozen.any = true;
  }
}

/** True when `event.id` came from the client (intake did not mark the event). */
export function hasClientId(event: Event): boolean {
  if ((event as unknown as Record<symbol, unknown>)[ASSIGNED] === true) return false;
  return !(frozen.any && frozen.events.has(event));
}
