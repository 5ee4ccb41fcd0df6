import { Event } from '../../gen/polku/v1/event.js';
import { eventSize, filledSize, utf8Length, writeAscii, writeEvent, writeFilled } from '../../ingest/event-encoder.js';
import { NO_WIRE_BYTES, type WireEvents } from '../../ingest/wire-events.js';
import type { RecordSource } from './record-codec.js';

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
const text = new TextDecoder();

/** What one record is made of; `key` and target names are cut to 255 UTF-8 bytes. */
export interface EventRecordInput {
  readonly event: Event;
  readonly targets: readonly string[];
  readonly key: string;
  /** `key`'s hash in the store's idempotency window (DurableStore.keyHash), when the caller made it. */
  readonly keyHash?: number;
  /**
   * The event's position in the batch whose WireEvents are passed with it, when its wire bytes
   * may stand for it (nothing but intake's fill-ins changed it); absent or -1 otherwise.
   */
  readonly wireAt?: number;
}

export function encodeEventRecord(event: Event, targets: readonly string[], idempotencyKey: string): Uint8Array {
  return encodeEventRecords([{ event, targets, key: idempotencyKey }])[0]!;
}

/**
 * Encodes many records into one buffer and returns a view of each (see {@link EventRecords}, which
 * durable commits use to write them straight into the log's group buffer instead).
 */
export function encodeEventRecords(entries: readonly EventRecordInput[], wire?: WireEvents): Uint8Array[] {
  const records = new EventRecords(entries, wire);
  const buf = Buffer.allocUnsafe(records.payloadBytes);
  const out = new Array<Uint8Array>(entries.length);
  let at = 0;
  for (let i = 0; i < entries.length; i++) {
    const start = at;
    at = records.writePayload(i, buf, at);
    out[i] = buf.subarray(start, at);
  }
  // A size pass that disagrees with the write pass is a bug here, never bad input.
  if (at !== records.payloadBytes) throw new Error(`event records encoded to ${at} bytes, sized as ${records.payloadBytes}`);
  return out;
}

/**
 * A batch's event records as the log's RecordSource: sized when made, each written straight into
 * the group buffer when the group is written. This is the hot path of a durable commit, so it
 * writes the Event's protobuf encoding directly (or copies the bytes it arrived in) instead of
 * going through the generated encoder's growable writer, which was most of a commit's CPU time.
 * `Event.decode` reads it back; test/durable/event-record.test.ts holds the two encodings equal
 * field by field, and fails when event.proto gains a field this one misses.
 */
export class EventRecords implements RecordSource {
  readonly count: number;
  readonly payloadBytes: number;
  readonly largestPayload: number;

  constructor(
    private readonly entries: readonly EventRecordInput[],
    private readonly wire?: WireEvents,
  ) {
    let total = 0;
    let largest = 0;
    for (const e of entries) {
      let size = 1 + shortLength(e.key) + 1;
      const w = wireIndex(e, wire);
      size += w < 0 ? eventSize(e.event) : wire!.ends[w]! - wire!.starts[w]! + filledSize(e.event, wire!.lacks[w]!);
      for (const t of e.targets) size += 1 + shortLength(t);
      total += size;
      if (size > largest) largest = size;
    }
    this.count = entries.length;
    this.payloadBytes = total;
    this.largestPayload = largest;
  }

  writePayload(i: number, buf: Buffer, at: number): number {
    const e = this.entries[i]!;
    const wire = this.wire;
    at = putShort(buf, at, e.key);
    buf[at++] = e.targets.length;
    for (const t of e.targets) at = putShort(buf, at, t);
    const w = wireIndex(e, wire);
    if (w < 0) return writeEvent(buf, at, e.event);
    buf.set(wire!.bytes.subarray(wire!.starts[w]!, wire!.ends[w]!), at);
    return writeFilled(buf, at + wire!.ends[w]! - wire!.starts[w]!, e.event, wire!.lacks[w]!);
  }
}

/** The entry's index into `wire` when its wire bytes stand for it, else -1. */
function wireIndex(e: EventRecordInput, wire: WireEvents | undefined): number {
  const w = e.wireAt ?? -1;
  return wire === undefined || w < 0 || (wire.lacks[w]! & NO_WIRE_BYTES) !== 0 ? -1 : w;
}

/** The idempotency key alone, without decoding the event. */
export function idempotencyKeyOf(payload: Uint8Array): string {
  const len = payload[0]!;
  if (len === 0) return '';
  // Buffer's own UTF-8 slice is several times faster than TextDecoder for short strings, and a
  // restart decodes one key per event in the window (1,000,000 by default).
  return Buffer.from(payload.buffer, payload.byteOffset + 1, len).toString('utf8');
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

/** UTF-8 length of `s` once cut to 255 bytes (see clipUtf8). */
function shortLength(s: string): number {
  const len = utf8Length(s);
  return len <= MAX_SHORT ? len : utf8Length(clipUtf8(s));
}

/** `[u8 length][UTF-8, at most 255 bytes]`. */
function putShort(buf: Buffer, at: number, s: string): number {
  let len = utf8Length(s);
  if (len > MAX_SHORT) {
    s = clipUtf8(s);
    len = utf8Length(s);
  }
  buf[at++] = len;
  return at + (len === s.length ? writeAscii(buf, at, s) : buf.write(s, at, len, 'utf8'));
}

/**
 * `s` cut to at most 255 UTF-8 bytes at a character boundary, so it reads back as the same
 * string it is compared as (idempotency keys are remembered clipped).
 */
export function clipUtf8(s: string): string {
  if (s.length <= 63) return s; // at most 4 bytes per UTF-16 unit pair, 3 per unit: 63 × 4 ≤ 255
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= MAX_SHORT) return s;
  let cut = MAX_SHORT;
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--; // do not split a multi-byte character
  return bytes.toString('utf8', 0, cut);
}
