/**
 * Where each event of a decoded IngestBatch sits in the bytes it arrived in.
 *
 * Durable mode stores every accepted event in its log. When nothing in the pipeline changed an
 * event after it was decoded, the protobuf bytes the agent sent already are its encoding: the log
 * record copies them instead of encoding the event again (encoding was about 15 % of a durable
 * gateway's main thread). Only the fields intake fills in for events that arrived
 * without them (id, timestamp, source) are appended, which protobuf reads as overriding the empty
 * ones ("last field wins").
 *
 * Event `i` of the batch is `bytes[starts[i] .. ends[i])`, and `lacks[i]` says which of those
 * fields it arrived without (LACKS_* bits), or NO_WIRE_BYTES when its bytes cannot stand for it.
 */
export interface WireEvents {
  readonly bytes: Uint8Array;
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  readonly lacks: readonly number[];
}

export const LACKS_ID = 1;
export const LACKS_TIMESTAMP = 2;
export const LACKS_SOURCE = 4;
/**
 * The event's declared length and what the decoder read disagree (a field ran past the end, or an
 * end-group tag stopped it early): the decoded event is what counts, so it is encoded afresh.
 */
export const NO_WIRE_BYTES = 8;
