import type { AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import { markAssignedId } from './assigned-ids.js';
import { decodeRefusalOf } from './event-decoder.js';
import type { UlidFactory } from './ulid.js';

/** Size limits on what agents send. Each violation refuses only what broke it. */
export interface IntakeLimits {
  /** Largest gRPC message (one IngestBatch or IngestEvent), bytes. Larger: BATCH_TOO_LARGE. */
  maxMessageBytes: number;
  /** Most events in one batch. More: BATCH_TOO_LARGE. */
  maxBatchEvents: number;
  /** Largest event payload, bytes. Larger: PAYLOAD_TOO_LARGE for that event. */
  maxPayloadBytes: number;
  /** Largest metadata (sum of key and value lengths). Larger: METADATA_TOO_LARGE for that event. */
  maxMetadataBytes: number;
  /** Longest event id, characters. Longer: INVALID_EVENT. */
  maxIdLength: number;
  /**
   * Largest single event as sent (its encoded bytes, or one JSON value), checked while decoding.
   * Larger: that event is refused, the rest of the message is read on.
   */
  maxEventBytes: number;
  /** Deepest nesting of one JSON value (objects and arrays). Deeper: that value is refused. */
  maxJsonDepth: number;
}

export const DEFAULT_LIMITS: Readonly<IntakeLimits> = Object.freeze({
  maxMessageBytes: 4 * 1024 * 1024,
  maxBatchEvents: 10_000,
  maxPayloadBytes: 1024 * 1024,
  maxMetadataBytes: 16 * 1024,
  maxIdLength: 256,
  // A payload at its limit plus metadata at its limit plus the envelope fits.
  maxEventBytes: 1024 * 1024 + 16 * 1024 + 4 * 1024,
  maxJsonDepth: 64,
});

/** Fixed per-event overhead in the byte estimate: the envelope's numbers and framing. */
const EVENT_OVERHEAD_BYTES = 48;

/** Why an event was refused at intake. */
export interface Refusal {
  readonly code: AckCode;
  readonly message: string;
}

/**
 * Checks one event against the limits and completes its envelope: an empty id gets a ULID, a
 * zero timestamp gets the batch's receive time, an empty source gets the batch's source.
 * Returns why the event is refused, or undefined when it is admitted.
 *
 * Runs once per event on the hot path: string lengths and one pass over metadata, no copies.
 */
export function admitEvent(
  event: Event,
  limits: IntakeLimits,
  batchSource: string,
  receivedAtNs: bigint,
  newId: UlidFactory,
): Refusal | undefined {
  // Refused by the decoder (invalid UTF-8, an enum value outside the contract, too large,
  // malformed): counted and answered here, in its place in the batch.
  const decodeRefusal = decodeRefusalOf(event);
  if (decodeRefusal !== undefined) return decodeRefusal;
  if (event.id.length > limits.maxIdLength) {
    return { code: 'INVALID_EVENT', message: `id is ${event.id.length} characters, limit ${limits.maxIdLength}` };
  }
  const payloadBytes = event.payload.length;
  if (payloadBytes > limits.maxPayloadBytes) {
    return {
      code: 'PAYLOAD_TOO_LARGE',
      message: `payload is ${payloadBytes} bytes, limit ${limits.maxPayloadBytes}`,
    };
  }
  let metadataBytes = 0;
  for (const key in event.metadata) metadataBytes += key.length + event.metadata[key]!.length;
  if (metadataBytes > limits.maxMetadataBytes) {
    return {
      code: 'METADATA_TOO_LARGE',
      message: `metadata is ${metadataBytes} bytes, limit ${limits.maxMetadataBytes}`,
    };
  }
  if (event.id === '') {
    event.id = newId();
    markAssignedId(event); // so a deduplicator never treats two id-less events as one
  }
  if (event.timestampUnixNs === 0n) event.timestampUnixNs = receivedAtNs;
  if (event.source === '') event.source = batchSource;
  return undefined;
}

export function eventBytes(event: Event): number {
  let n = EVENT_OVERHEAD_BYTES + event.payload.length + event.id.length + event.source.length + event.eventType.length;
  for (const key in event.metadata) n += key.length + event.metadata[key]!.length;
  for (let i = 0; i < event.routeTo.length; i++) n += event.routeTo[i]!.length;
  return n;
}
