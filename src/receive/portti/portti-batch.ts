import { isInvalidUtf8, strictReader } from '../../ingest/event-decoder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../ingest/intake-rules.js';
import { fieldEnd, skipUnknown, UnreadableMessage } from '../message-framing.js';

/** A portti.v1.EventBatch as received: its bytes untouched, for the portti ingestor's one decode. */
export interface ReceivedPorttiBatch {
  /** The message exactly as it came off the wire (the deserializer's buffer, not a copy). */
  readonly data: Uint8Array;
  /** The batch's `cluster_id`. */
  readonly cluster: string;
  /** How many `events` the batch holds (counted from their framing, none decoded). */
  readonly events: number;
}

/**
 * Reads what the receiver needs of a portti.v1.EventBatch without decoding its events (the portti
 * ingestor does that, strictly, once): the top level's framing is checked, the events are counted
 * (event `maxBatchEvents + 1` refuses the message BATCH_TOO_LARGE at once, as StreamEvents does),
 * and `cluster_id` is read as strict UTF-8 (else INVALID_BATCH naming it). `source` is not used:
 * whatever PORTTI calls itself, what comes over its service is from source `portti`.
 * Bytes that are not a message throw; the deserializer turns that into INVALID_BATCH.
 */
export function readPorttiBatch(bytes: Uint8Array, limits: IntakeLimits = DEFAULT_LIMITS): ReceivedPorttiBatch | UnreadableMessage {
  const reader = strictReader(bytes);
  let events = 0;
  let clusterAt = -1;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === 10) {
      if (events === limits.maxBatchEvents) {
        const max = limits.maxBatchEvents;
        return new UnreadableMessage(
          'BATCH_TOO_LARGE',
          `portti.v1.EventBatch has more than ${max} events, limit ${max} (POLKU_MAX_BATCH_EVENTS); refused at event ${max + 1} without decoding the rest`,
        );
      }
      events++;
      reader.pos = fieldEnd(reader);
      continue;
    }
    if (tag === 26) {
      clusterAt = reader.pos;
      reader.pos = fieldEnd(reader);
      continue;
    }
    if (tag === 18) {
      reader.pos = fieldEnd(reader);
      continue;
    }
    skipUnknown(reader, tag);
  }
  let cluster = '';
  if (clusterAt >= 0) {
    reader.pos = clusterAt;
    try {
      cluster = reader.string();
    } catch (err) {
      if (isInvalidUtf8(err)) return new UnreadableMessage('INVALID_BATCH', 'portti.v1.EventBatch cluster_id is not valid UTF-8');
      throw err;
    }
  }
  return { data: bytes, cluster, events };
}
