import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { AckCode } from '../errors.js';

/*
 * What every receiver's own deserializers share: the stand-in for a message that could not be
 * read, the size check around a decoder, and the framing steps of a strict scan.
 */

/**
 * A request message the gateway could not take: too large, or not valid protobuf. Returned by the
 * deserializers in place of throwing, because grpc-js ends the whole call when a
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
export function guarded<T>(decode: (buf: Buffer) => T | UnreadableMessage, what: string, maxBytes: number) {
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

/** Reads a length prefix and returns where the field ends, refusing one that runs past the bound. */
export function fieldEnd(reader: BinaryReader): number {
  const length = reader.uint32();
  const end = reader.pos + length;
  if (end > reader.len) throw new RangeError(`a field of ${length} bytes runs past the end of what holds it`);
  return end;
}

/** Skips an unknown field; an end-group tag without a start or field number 0 is malformed. */
export function skipUnknown(reader: BinaryReader, tag: number): void {
  const wireType = tag & 7;
  if (wireType === 4 || tag >>> 3 === 0) throw new Error(`unexpected tag ${tag} at byte ${reader.pos}`);
  reader.skip(wireType, tag >>> 3);
}
