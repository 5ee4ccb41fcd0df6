import type { Ack, MiddlewareStats } from '../../gen/polku/v1/gateway.js';
import { stringField, varint64Size, varintSize, writeString, writeVarint, writeVarint64 } from '../../ingest/event-encoder.js';

/**
 * `polku.v1.Ack` written straight into one buffer, sizes first, byte for byte what `Ack.encode`
 * writes (test/receive/ack-encoder.test.ts and a fast-check property compare them). Every batch of
 * every stream is answered with one, naming each accepted event's id: the generated encoder wrote
 * each id through its growable writer, forked for each error and for the stats, and joined the
 * chunks, 3–4 % of a gateway's CPU at full speed; here it is one allocation and plain writes.
 */

// Field tags: (field number << 3) | wire type.
const TAG_EVENT_IDS = 10;
const TAG_ERRORS = 18;
const TAG_BUFFER_SIZE = 24;
const TAG_BUFFER_CAPACITY = 32;
const TAG_STATS = 42;
const TAG_ERROR_ID = 10;
const TAG_ERROR_CODE = 18;
const TAG_ERROR_MESSAGE = 26;

export function encodeAck(ack: Ack): Buffer {
  let total = 0;
  const ids = ack.eventIds;
  for (let i = 0; i < ids.length; i++) total += stringField(ids[i]!);
  const errors = ack.errors;
  const errorSizes = new Array<number>(errors.length);
  for (let i = 0; i < errors.length; i++) {
    const e = errors[i]!;
    const size =
      (e.eventId === '' ? 0 : stringField(e.eventId)) +
      (e.code === '' ? 0 : stringField(e.code)) +
      (e.message === '' ? 0 : stringField(e.message));
    errorSizes[i] = size;
    total += 1 + varintSize(size) + size;
  }
  total += int64Field(ack.bufferSize, 'bufferSize') + int64Field(ack.bufferCapacity, 'bufferCapacity');
  const stats = ack.middlewareStats;
  const statsSize = stats === undefined ? 0 : statsBodySize(stats);
  if (stats !== undefined) total += 1 + varintSize(statsSize) + statsSize;

  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < ids.length; i++) at = writeString(buf, at, TAG_EVENT_IDS, ids[i]!);
  for (let i = 0; i < errors.length; i++) {
    const e = errors[i]!;
    buf[at++] = TAG_ERRORS;
    at = writeVarint(buf, at, errorSizes[i]!);
    if (e.eventId !== '') at = writeString(buf, at, TAG_ERROR_ID, e.eventId);
    if (e.code !== '') at = writeString(buf, at, TAG_ERROR_CODE, e.code);
    if (e.message !== '') at = writeString(buf, at, TAG_ERROR_MESSAGE, e.message);
  }
  at = writeInt64Field(buf, at, TAG_BUFFER_SIZE, ack.bufferSize);
  at = writeInt64Field(buf, at, TAG_BUFFER_CAPACITY, ack.bufferCapacity);
  if (stats !== undefined) {
    buf[at++] = TAG_STATS;
    at = writeVarint(buf, at, statsSize);
    at = writeInt64Field(buf, at, 8, stats.rateLimitedCount);
    at = writeInt64Field(buf, at, 16, stats.sampledOutCount);
    at = writeInt64Field(buf, at, 24, stats.dedupCount);
    at = writeInt64Field(buf, at, 32, stats.filteredCount);
    at = writeInt64Field(buf, at, 40, stats.bufferOverflowCount);
    at = writeInt64Field(buf, at, 48, stats.totalReceived);
    at = writeInt64Field(buf, at, 56, stats.totalForwarded);
  }
  // A size pass that disagrees with the write pass is a bug here, never bad input.
  if (at !== total) throw new Error(`Ack encoded to ${at} bytes, sized as ${total}`);
  return buf;
}

function statsBodySize(s: MiddlewareStats): number {
  return (
    int64Field(s.rateLimitedCount, 'rateLimitedCount') +
    int64Field(s.sampledOutCount, 'sampledOutCount') +
    int64Field(s.dedupCount, 'dedupCount') +
    int64Field(s.filteredCount, 'filteredCount') +
    int64Field(s.bufferOverflowCount, 'bufferOverflowCount') +
    int64Field(s.totalReceived, 'totalReceived') +
    int64Field(s.totalForwarded, 'totalForwarded')
  );
}

/** Size of an int64 field (tag under 128): none at 0, as proto3 omits defaults. Refuses what the generated encoder refuses. */
function int64Field(v: bigint, name: string): number {
  if (v === 0n) return 0;
  if (BigInt.asIntN(64, v) !== v) throw new Error(`value provided for field message.${name} of type int64 too large`);
  return 1 + varint64Size(v);
}

function writeInt64Field(buf: Buffer, at: number, tag: number, v: bigint): number {
  if (v === 0n) return at;
  buf[at++] = tag;
  return writeVarint64(buf, at, v);
}
