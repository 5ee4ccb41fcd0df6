import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Event } from '../../gen/polku/v1/event.js';
import type { Ack, IngestBatch, IngestEvent, RawPayload } from '../../gen/polku/v1/gateway.js';
import { decodeEvent, isInvalidUtf8, isRefusal, refusedEvent, strictReader } from '../../ingest/event-decoder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../ingest/intake-rules.js';
import { LACKS_ID, LACKS_SOURCE, LACKS_TIMESTAMP, NO_WIRE_BYTES, type WireEvents } from '../../ingest/wire-events.js';
import { encodeAck } from './ack-encoder.js';
import { fieldEnd, guarded, skipUnknown, UnreadableMessage } from '../message-framing.js';

export { UnreadableMessage };

/** A StreamEvents request as decoded: the batch, and where its events sit in the bytes received. */
export interface ReceivedBatch {
  readonly batch: IngestBatch;
  /** Set when the batch carries events (not raw bytes). */
  readonly wire: WireEvents | undefined;
}

export const batchDeserializer = (maxBytes: number, limits: IntakeLimits = DEFAULT_LIMITS) =>
  guarded((b) => readIngestBatch(b, limits), 'IngestBatch', maxBytes);

export const eventDeserializer = (maxBytes: number, limits: IntakeLimits = DEFAULT_LIMITS) =>
  guarded((b) => decodeIngestEvent(b, limits), 'IngestEvent', maxBytes);

/** The reader's bound, narrowed to a field while it is read (BinaryReader checks every read against it). */
type Bounded = { len: number };

const EMPTY = new Uint8Array(0);

/**
 * Decodes a StreamEvents request, noting each event's byte range so durable mode can store those
 * bytes as they came (see WireEvents). Strict and bounded, so one message cannot cost more than
 * its limits allow (docs/security.md, "Decoding limits"):
 *
 * - Events are counted before any is decoded (a scan of tags and lengths); at event
 *   `maxBatchEvents + 1` the message is refused BATCH_TOO_LARGE and nothing more is read.
 * - Each event is decoded by the strict event decoder (src/ingest/event-decoder.ts): one larger
 *   than `maxEventBytes`, with a string that is not UTF-8, an enum value outside the contract or
 *   malformed inside its own length is refused alone, in its place; the rest are decoded.
 * - `source` and `cluster` must be UTF-8, else the batch is refused INVALID_BATCH naming the field.
 * - Concatenated messages merge as protobuf says: several `events` payloads append their events.
 *   `raw` and `events` in one message (the later would win, the earlier vanish) is refused
 *   INVALID_BATCH. An end-group tag or field number 0 is malformed, not a place to stop.
 *
 * Valid messages decode exactly as `IngestBatch.decode` does (test/receive/batch-decoder.test.ts).
 */
export function readIngestBatch(bytes: Uint8Array, limits: IntakeLimits = DEFAULT_LIMITS): ReceivedBatch | UnreadableMessage {
  const reader = strictReader(bytes);
  const batch: IngestBatch = { source: '', cluster: '', payload: undefined };
  /** [start, end) of each `events` payload that holds events, in order. */
  const segments: number[] = [];
  let sawEvents = false;
  let count = 0;
  // Singular fields are located each time they come and decoded once, the last (protobuf's rule):
  // a message of one field repeated costs a scan, not a string or view per repetition.
  const at = { source: NONE, cluster: NONE, data: NONE, format: NONE };
  let sawRaw = false;
  let field = '';
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      switch (tag) {
        case 10:
          at.source = locate(reader);
          continue;
        case 18:
          at.cluster = locate(reader);
          continue;
        case 26: {
          const end = fieldEnd(reader);
          sawRaw = true;
          locateRawPayload(reader, end, at);
          continue;
        }
        case 34: {
          const end = fieldEnd(reader);
          sawEvents = true;
          const start = reader.pos;
          const n = countEvents(reader, end, limits.maxBatchEvents - count);
          if (n < 0) {
            const max = limits.maxBatchEvents;
            return new UnreadableMessage(
              'BATCH_TOO_LARGE',
              `batch has more than ${max} events, limit ${max} (POLKU_MAX_BATCH_EVENTS); refused at event ${max + 1} without decoding the rest`,
            );
          }
          count += n;
          if (n > 0) segments.push(start, end);
          continue;
        }
      }
      skipUnknown(reader, tag);
    }
    field = 'source';
    if (at.source !== NONE) batch.source = stringAt(reader, at.source);
    field = 'cluster';
    if (at.cluster !== NONE) batch.cluster = stringAt(reader, at.cluster);
    field = 'raw.format';
    if (sawRaw && !sawEvents) {
      const raw: RawPayload = { data: EMPTY, format: '' };
      if (at.format !== NONE) raw.format = stringAt(reader, at.format);
      if (at.data !== NONE) {
        reader.pos = at.data;
        raw.data = reader.bytes();
      }
      batch.payload = { $case: 'raw', value: raw };
    }
  } catch (err) {
    if (isInvalidUtf8(err)) return new UnreadableMessage('INVALID_BATCH', `IngestBatch ${field} is not valid UTF-8`);
    throw err;
  }
  if (sawRaw && sawEvents) {
    return new UnreadableMessage(
      'INVALID_BATCH',
      'IngestBatch mixes payload kinds (raw and events): protobuf keeps only the later one, so it is refused rather than lose the other',
    );
  }
  if (!sawEvents) return { batch, wire: undefined };

  const events: Event[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const lacks: number[] = [];
  const bounded = reader as unknown as Bounded;
  const len = bounded.len;
  for (let s = 0; s < segments.length; s += 2) {
    const segmentEnd = segments[s + 1]!;
    reader.pos = segments[s]!;
    bounded.len = segmentEnd;
    while (reader.pos < segmentEnd) {
      const tag = reader.uint32();
      if (tag !== 10) {
        skipUnknown(reader, tag);
        continue;
      }
      const length = reader.uint32();
      const start = reader.pos;
      const decoded = decodeEvent(reader, length, limits);
      starts.push(start);
      ends.push(start + length);
      if (isRefusal(decoded)) {
        events.push(refusedEvent(decoded, decoded.id));
        lacks.push(NO_WIRE_BYTES);
        continue;
      }
      events.push(decoded);
      lacks.push(
        (decoded.id === '' ? LACKS_ID : 0) |
          (decoded.timestampUnixNs === 0n ? LACKS_TIMESTAMP : 0) |
          (decoded.source === '' ? LACKS_SOURCE : 0),
      );
    }
  }
  bounded.len = len;
  batch.payload = { $case: 'events', value: { events } };
  return { batch, wire: { bytes, starts, ends, lacks } };
}

/** {@link readIngestBatch} for callers that want an exception for a message it refuses whole (tests, tools). */
export function decodeIngestBatch(bytes: Uint8Array, limits: IntakeLimits = DEFAULT_LIMITS): ReceivedBatch {
  const r = readIngestBatch(bytes, limits);
  if (r instanceof UnreadableMessage) throw new Error(`${r.code}: ${r.message}`);
  return r;
}

/**
 * Counts the events of one `events` payload from their tags and lengths alone (no event is
 * decoded), checking every framing on the way so the decode that follows cannot fail on it, and
 * leaves the reader at the payload's end. Returns -1 at event `room + 1`, without reading further.
 */
function countEvents(reader: BinaryReader, end: number, room: number): number {
  const bounded = reader as unknown as Bounded;
  const len = bounded.len;
  bounded.len = end;
  let count = 0;
  try {
    while (reader.pos < end) {
      const tag = reader.uint32();
      if (tag === 10) {
        if (++count > room) return -1;
        reader.pos = fieldEnd(reader);
        continue;
      }
      skipUnknown(reader, tag);
    }
    return count;
  } finally {
    bounded.len = len;
  }
}

/** Where a singular field's length prefix is (see {@link locate}); NONE when it never came. */
const NONE = -1;

/** Notes where a length-delimited field starts (its length prefix) and steps over it. */
function locate(reader: BinaryReader): number {
  const start = reader.pos;
  reader.pos = fieldEnd(reader);
  return start;
}

/** The string whose length prefix is at `at`. */
function stringAt(reader: BinaryReader, at: number): string {
  reader.pos = at;
  return reader.string();
}

/** polku.v1.RawPayload: notes where its fields are; a later `data` or `format` overrides an earlier one. */
function locateRawPayload(reader: BinaryReader, end: number, at: { data: number; format: number }): void {
  const bounded = reader as unknown as Bounded;
  const len = bounded.len;
  bounded.len = end;
  try {
    while (reader.pos < end) {
      const tag = reader.uint32();
      if (tag === 10) at.data = locate(reader);
      else if (tag === 18) at.format = locate(reader);
      else skipUnknown(reader, tag);
    }
  } finally {
    bounded.len = len;
  }
}

/**
 * Decodes a SendEvent request with the same rules: strings must be UTF-8 (`source`, `cluster`,
 * `format`: INVALID_BATCH naming the field), the event goes through the strict event decoder
 * (refused alone, as INVALID_EVENT or PAYLOAD_TOO_LARGE in the Ack), several `event` fields merge
 * as protobuf says, and `raw` with `event` in one message is refused INVALID_BATCH.
 */
export function decodeIngestEvent(bytes: Uint8Array, limits: IntakeLimits = DEFAULT_LIMITS): IngestEvent | UnreadableMessage {
  const reader = strictReader(bytes);
  const request: IngestEvent = { source: '', cluster: '', payload: undefined, format: '' };
  let rawData: Uint8Array | undefined;
  let event: Event | undefined;
  let refused = false;
  const at = { source: NONE, cluster: NONE, raw: NONE, format: NONE };
  let field = '';
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      switch (tag) {
        case 10:
          at.source = locate(reader);
          continue;
        case 18:
          at.cluster = locate(reader);
          continue;
        case 26:
          at.raw = locate(reader);
          continue;
        case 34: {
          const length = reader.uint32();
          if (reader.pos + length > reader.len) throw new RangeError(`an event of ${length} bytes runs past the message`);
          const decoded = decodeEvent(reader, length, limits, refused ? undefined : event);
          if (isRefusal(decoded)) {
            event = refusedEvent(decoded, decoded.id);
            refused = true;
          } else if (!refused) event = decoded;
          continue;
        }
        case 42:
          at.format = locate(reader);
          continue;
      }
      skipUnknown(reader, tag);
    }
    field = 'source';
    if (at.source !== NONE) request.source = stringAt(reader, at.source);
    field = 'cluster';
    if (at.cluster !== NONE) request.cluster = stringAt(reader, at.cluster);
    field = 'format';
    if (at.format !== NONE) request.format = stringAt(reader, at.format);
    if (at.raw !== NONE) {
      reader.pos = at.raw;
      rawData = reader.bytes();
    }
  } catch (err) {
    if (isInvalidUtf8(err)) return new UnreadableMessage('INVALID_BATCH', `IngestEvent ${field} is not valid UTF-8`);
    throw err;
  }
  if (rawData !== undefined && event !== undefined) {
    return new UnreadableMessage(
      'INVALID_BATCH',
      'IngestEvent mixes payload kinds (raw and event): protobuf keeps only the later one, so it is refused rather than lose the other',
    );
  }
  if (rawData !== undefined) request.payload = { $case: 'raw', value: rawData };
  else if (event !== undefined) request.payload = { $case: 'event', value: event };
  return request;
}

/** Encodes an Ack straight into a Buffer (src/receive/polku-gateway/ack-encoder.ts). */
export function serializeAck(ack: Ack): Buffer {
  return encodeAck(ack);
}
