import { Event } from '../../gen/polku/v1/event.js';

/**
 * What durable mode stores per accepted event, inside one log record's payload:
 *
 * ```
 * [u8 idempotency-key length][key, UTF-8]
 * [u8 target count] then per target: [u8 name length][emitter name, UTF-8]
 * [the protobuf-encoded polku.event.v1.Event]
 * ```
 *
 * Targets are emitter names, resolved at admission (an empty route_to meant "every default
 * emitter" then), so a restart with the same pipeline delivers each event where it was routed.
 * The idempotency key sits before the event so the window can be rebuilt at start-up without
 * decoding events.
 */
export interface EventRecord {
  readonly idempotencyKey: string;
  readonly targets: readonly string[];
  readonly event: Event;
}

const MAX_SHORT = 255;
const utf8 = new TextEncoder();
const text = new TextDecoder();

export function encodeEventRecord(event: Event, targets: readonly string[], idempotencyKey: string): Uint8Array {
  const key = utf8.encode(idempotencyKey.length > MAX_SHORT ? idempotencyKey.slice(0, MAX_SHORT) : idempotencyKey);
  const names = targets.map((t) => utf8.encode(t));
  const body = Event.encode(event).finish();
  let size = 1 + Math.min(key.length, MAX_SHORT) + 1 + body.length;
  for (const n of names) size += 1 + n.length;
  const out = new Uint8Array(size);
  let at = 0;
  at = putShort(out, at, key);
  out[at++] = names.length;
  for (const n of names) at = putShort(out, at, n);
  out.set(body, at);
  return out;
}

/** The idempotency key alone, without decoding the event. */
export function idempotencyKeyOf(payload: Uint8Array): string {
  return text.decode(payload.subarray(1, 1 + payload[0]!));
}

/** Throws on a payload that is not an event record (the caller counts it as corrupt). */
export function decodeEventRecord(payload: Uint8Array): EventRecord {
  let at = 0;
  const keyLen = payload[at++]!;
  const idempotencyKey = text.decode(payload.subarray(at, at + keyLen));
  at += keyLen;
  const count = payload[at++];
  if (count === undefined) throw new Error('event record ends before its targets');
  const targets: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = payload[at++]!;
    if (at + len > payload.length) throw new Error('event record target runs past its end');
    targets.push(text.decode(payload.subarray(at, at + len)));
    at += len;
  }
  return { idempotencyKey, targets, event: Event.decode(payload.subarray(at)) };
}

function putShort(out: Uint8Array, at: number, bytes: Uint8Array): number {
  const len = Math.min(bytes.length, MAX_SHORT);
  out[at++] = len;
  out.set(bytes.subarray(0, len), at);
  return at + len;
}
