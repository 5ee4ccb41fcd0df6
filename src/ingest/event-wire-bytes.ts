import type { Event } from '../gen/polku/v1/event.js';
import { NO_WIRE_BYTES, type WireEvents } from './wire-events.js';

/**
 * The bytes an accepted event arrived in, kept on the event in memory mode for emitters that send
 * events as protobuf (`Emitter.wantsWireBytes`: the plugin emitter). Its EmitRequest then copies
 * each event's bytes instead of encoding the event field by field, which was most of the gateway's
 * emitter CPU (docs/benchmarks.md, "The plugin path"). Durable mode does the same for its log
 * records (src/buffer/durable/event-record.ts).
 *
 * When the bytes stand for the event: the memory backend attaches them only to events of a batch
 * the hub passed its WireEvents for, that is with no middleware that changes events and no tenants
 * (whose events get metadata added); intake's fill-ins (id, timestamp, source, see `lacks`) are
 * appended by the encoder, and protobuf reads a later field as overriding the empty one. After
 * admission nothing may change an event: emitters share them and must treat them as read-only
 * (the Emitter contract), so the bytes stay true for the event's whole time in the buffer.
 *
 * What they hold: a view of the message the event came in, which the event's payload (a view of
 * the same message) already keeps alive; so the buffer's bound holds as before, except for events
 * with no payload, which now keep their message (at most the largest gRPC message) until the last
 * of its events is delivered. Fields this gateway's contract does not know pass to the plugin as the
 * agent sent them, as they pass into the durable log: every protobuf decoder skips them.
 *
 * The mark is a non-enumerable symbol property, as in assigned-ids.ts: invisible to encoders,
 * JSON, object spread (a copy of the event has no bytes, so it is encoded afresh) and deep
 * equality; `Symbol.for` so every copy of this module in the process agrees.
 */
export interface WireSlice {
  /** The message the event arrived in. */
  readonly bytes: Uint8Array;
  /** The event's encoding is `bytes[start .. end)`. */
  readonly start: number;
  readonly end: number;
  /** The LACKS_* bits: fields intake filled in, to append after the bytes. */
  readonly lacks: number;
}

const WIRE = Symbol.for('polku.wireBytes');
/**
 * Reused: defineProperty reads the descriptor when called, so one object serves every event.
 * Configurable, so an event admitted again (a program submitting the same object twice) takes its
 * new bytes.
 */
const descriptor: { value: WireSlice | undefined; configurable: true } = { value: undefined, configurable: true };

/**
 * Keeps event `index` of `wire`'s batch on `event`, unless its bytes cannot stand for it
 * (NO_WIRE_BYTES). A frozen event (a custom ingestor's) is left without: it is encoded as before.
 */
export function attachWireBytes(event: Event, wire: WireEvents, index: number): void {
  const lacks = wire.lacks[index]!;
  if ((lacks & NO_WIRE_BYTES) !== 0) return;
  descriptor.value = { bytes: wire.bytes, start: wire.starts[index]!, end: wire.ends[index]!, lacks };
  try {
    Object.defineProperty(event, WIRE, descriptor);
  } catch {
    // not extensible: no bytes, encoded from its fields
  }
  descriptor.value = undefined;
}

/** The bytes `event` arrived in, when the memory backend kept them; undefined otherwise. */
export function wireBytesOf(event: Event): WireSlice | undefined {
  return (event as unknown as Record<symbol, WireSlice | undefined>)[WIRE];
}
