import type { Event } from '../gen/polku/v1/event.js';
import { eventSize, filledSize, varintSize, writeEvent, writeFilled, writeVarint } from '../ingest/event-encoder.js';
import { wireBytesOf, type WireSlice } from '../ingest/event-wire-bytes.js';

/**
 * A `polku.v1.EmitRequest` written straight from the events into one buffer, in two passes (sizes,
 * then bytes), byte for byte what `EmitRequest.encode` writes (test/plugins/emit-request.test.ts
 * compares them). The generated encoder goes through a growable writer that forks once per nested
 * message (the request, each event, each metadata entry), then `finish()` joins the chunks and the
 * generated serializer copies the result once more into a Buffer.
 *
 * An event that carries the bytes it arrived in (src/ingest/event-wire-bytes.ts: memory mode, no
 * middleware that changes events) is not encoded at all: its bytes are copied, then the fields
 * intake filled in. That request reads as the same events to every protobuf decoder, but is not
 * byte for byte the generated encoder's (the agent's field order and any field unknown here stay).
 *
 * An EmitRequest is nothing but its events, each as field 1: so the request for events
 * `[a, b)` of a batch is `bytes.subarray(starts[a], starts[b])`, and a batch split into several
 * calls is encoded once.
 */
export interface EncodedEmitRequest {
  /** The whole batch's EmitRequest. */
  readonly bytes: Buffer;
  /** Where event `i`'s field begins; `starts[n]` is the end. */
  readonly starts: readonly number[];
}

/** `polku.v1.EmitRequest.events` is field 1, length-delimited. */
const TAG_EVENTS = 10;
/** Encodes `events` as one EmitRequest. Throws only as the generated encoder does (an int64 out of range). */
export function encodeEmitRequest(events: readonly Event[]): EncodedEmitRequest {
  const n = events.length;
  const sizes = new Array<number>(n);
  const wires = new Array<WireSlice | undefined>(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const event = events[i]!;
    const wire = wireBytesOf(event);
    wires[i] = wire;
    let size: number;
    if (wire !== undefined) size = wire.end - wire.start + filledSize(event, wire.lacks);
    else {
      checkInt64(event.timestampUnixNs);
      size = eventSize(event);
    }
    sizes[i] = size;
    total += 1 + varintSize(size) + size;
  }
  const buf = Buffer.allocUnsafe(total);
  const starts = new Array<number>(n + 1);
  // A run of events that sat one after the other in the message they came in, each framed there
  // as here (an IngestBatch's EventPayload holds its events as field 1, as an EmitRequest does), is
  // copied at once: bytes[runFrom .. runTo) of `run` go to runAt. One copy per message rather than
  // per event (a copy of a few hundred bytes costs about as much as creating the view it needs).
  let run: Uint8Array | undefined;
  let runFrom = 0;
  let runTo = 0;
  let runAt = 0;
  let at = 0;
  for (let i = 0; i < n; i++) {
    starts[i] = at;
    const size = sizes[i]!;
    const wire = wires[i];
    if (wire !== undefined && wire.lacks === 0) {
      const framing = 1 + varintSize(size);
      // The bytes between the last event and this one are a one-byte tag 10 and a length as long
      // as ours: then both are minimal, so they are the bytes this encoder writes.
      if (wire.bytes === run && wire.start - framing === runTo && run[runTo] === TAG_EVENTS) {
        runTo = wire.end;
        at += framing + size;
        continue;
      }
      if (run !== undefined) copyRun(buf, runAt, run, runFrom, runTo);
      buf[at++] = TAG_EVENTS;
      at = writeVarint(buf, at, size);
      run = wire.bytes;
      runFrom = wire.start;
      runTo = wire.end;
      runAt = at;
      at += size;
      continue;
    }
    if (run !== undefined) {
      copyRun(buf, runAt, run, runFrom, runTo);
      run = undefined;
    }
    buf[at++] = TAG_EVENTS;
    at = writeVarint(buf, at, size);
    const event = events[i]!;
    if (wire === undefined) at = writeEvent(buf, at, event);
    else {
      copyRun(buf, at, wire.bytes, wire.start, wire.end);
      at = writeFilled(buf, at + wire.end - wire.start, event, wire.lacks);
    }
  }
  if (run !== undefined) copyRun(buf, runAt, run, runFrom, runTo);
  starts[n] = at;
  // A size pass that disagrees with the write pass is a bug here, never bad input.
  if (at !== total) throw new Error(`EmitRequest encoded to ${at} bytes, sized as ${total}`);
  return { bytes: buf, starts };
}

/** Copies `from[start .. end)` to `to` at `at`, through a plain view (a Buffer's subarray costs more to make). */
function copyRun(to: Buffer, at: number, from: Uint8Array, start: number, end: number): void {
  to.set(new Uint8Array(from.buffer, from.byteOffset + start, end - start), at);
}

/** The generated encoder refuses a timestamp outside int64; so does this one, with its message. */
function checkInt64(v: bigint): void {
  if (BigInt.asIntN(64, v) !== v) throw new Error('value provided for field message.timestampUnixNs of type int64 too large');
}
