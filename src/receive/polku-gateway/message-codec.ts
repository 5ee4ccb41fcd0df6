import { BinaryReader } from '@bufbuild/protobuf/wire';
import type { AckCode } from '../../errors.js';
import { Event } from '../../gen/polku/v1/event.js';
import { Ack, IngestEvent, RawPayload, type IngestBatch } from '../../gen/polku/v1/gateway.js';
import { LACKS_ID, LACKS_SOURCE, LACKS_TIMESTAMP, NO_WIRE_BYTES, type WireEvents } from '../../ingest/wire-events.js';

/**
 * A request message the gateway could not take: too large, or not valid protobuf. Returned by the
 * deserializers below in place of throwing, because grpc-js ends the whole call when a
 * deserializer throws, and one bad batch must never close an agent's stream.
 */
export class UnreadableMessage {
  constructor(
    readonly code: AckCode,
    readonly message: string,
  ) {}
}

/**
 * Wraps a decoder with the size check and the error-to-refusal turn. Messages over the transport's
 * ceiling (`transportMessageLimit` in server/grpc-server.ts) never reach it: grpc-js ends those calls.
 */
function guarded<T>(decode: (buf: Buffer) => T, what: string, maxBytes: number) {
  return (buf: Buffer): T | UnreadableMessage => {
    if (buf.length > maxBytes) {
      return new UnreadableMessage('BATCH_TOO_LARGE', `${what} is ${buf.length} bytes, limit ${maxBytes}`);
    }
    try {
      return decode(buf);
    } catch (err) {
      return new UnreadableMessage('INVALID_BATCH', `malformed ${what}: ${(err as Error).message}`);
    }
  };
}

/** A StreamEvents request as decoded: the batch, and where its events sit in the bytes received. */
export interface ReceivedBatch {
  readonly batch: IngestBatch;
  /** Set when the batch carries events (not raw bytes). */
  readonly wire: WireEvents | undefined;
}

export const batchDeserializer = (maxBytes: number) => guarded(decodeIngestBatch, 'IngestBatch', maxBytes);

/**
 * `IngestBatch.decode`, field for field (the generated decoder's rules: a later payload replaces
 * an earlier one, unknown fields are skipped, an end-group tag stops), that also notes each
 * event's byte range so durable mode can store those bytes as they came (see WireEvents).
 * test/receive/batch-decoder.test.ts holds the two decoders equal, on valid and mangled input.
 */
export function decodeIngestBatch(bytes: Uint8Array): ReceivedBatch {
  const reader = new BinaryReader(bytes);
  const batch: IngestBatch = { source: '', cluster: '', payload: undefined };
  let wire: WireEvents | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    switch (tag) {
      case 10:
        batch.source = reader.string();
        continue;
      case 18:
        batch.cluster = reader.string();
        continue;
      case 26:
        batch.payload = { $case: 'raw', value: RawPayload.decode(reader, reader.uint32()) };
        wire = undefined;
        continue;
      case 34: {
        const events: Event[] = [];
        wire = { bytes, starts: [], ends: [], lacks: [] };
        decodeEventPayload(reader, reader.uint32(), events, wire);
        batch.payload = { $case: 'events', value: { events } };
        continue;
      }
    }
    if ((tag & 7) === 4 || tag === 0) break;
    reader.skip(tag & 7);
  }
  return { batch, wire };
}

/** polku.v1.EventPayload: `repeated polku.event.v1.Event events = 1`. */
function decodeEventPayload(reader: BinaryReader, length: number, events: Event[], wire: WireEvents): void {
  const end = reader.pos + length;
  const starts = wire.starts as number[];
  const ends = wire.ends as number[];
  const lacks = wire.lacks as number[];
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag === 10) {
      const len = reader.uint32();
      const start = reader.pos;
      const event = Event.decode(reader, len);
      events.push(event);
      starts.push(start);
      ends.push(start + len);
      lacks.push(
        reader.pos !== start + len
          ? NO_WIRE_BYTES
          : (event.id === '' ? LACKS_ID : 0) |
              (event.timestampUnixNs === 0n ? LACKS_TIMESTAMP : 0) |
              (event.source === '' ? LACKS_SOURCE : 0),
      );
      continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    reader.skip(tag & 7);
  }
}

export const eventDeserializer = (maxBytes: number) => guarded((b) => IngestEvent.decode(b), 'IngestEvent', maxBytes);

/** Encodes an Ack without the extra copy `Buffer.from(Uint8Array)` would make. */
export function serializeAck(ack: Ack): Buffer {
  const bytes = Ack.encode(ack).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
