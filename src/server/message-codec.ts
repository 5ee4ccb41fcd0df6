import type { AckCode } from '../errors.js';
import { Ack, IngestBatch, IngestEvent } from '../gen/polku/v1/gateway.js';

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

const MiB = 1024 * 1024;

/**
 * The transport's own ceiling. Messages up to it reach our deserializer, which refuses those over
 * POLKU_MAX_MESSAGE_BYTES with an Ack and keeps the stream open; beyond it grpc-js itself answers
 * RESOURCE_EXHAUSTED and ends the call (there is no reading past a message that large).
 */
export function transportMessageLimit(maxMessageBytes: number): number {
  return Math.max(maxMessageBytes * 4, 16 * MiB);
}

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

export const batchDeserializer = (maxBytes: number) =>
  guarded((b) => IngestBatch.decode(b), 'IngestBatch', maxBytes);

export const eventDeserializer = (maxBytes: number) =>
  guarded((b) => IngestEvent.decode(b), 'IngestEvent', maxBytes);

/** Encodes an Ack without the extra copy `Buffer.from(Uint8Array)` would make. */
export function serializeAck(ack: Ack): Buffer {
  const bytes = Ack.encode(ack).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
