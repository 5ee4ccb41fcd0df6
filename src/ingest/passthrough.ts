import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Event } from '../gen/polku/v1/event.js';
import { decodeEvent, isRefusal, refusedEvent, strictReader } from './event-decoder.js';
import type { IngestContext, IngestProblem, IngestResult, Ingestor } from './ingestor.js';
import { DEFAULT_LIMITS, type IntakeLimits } from './intake-rules.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface PassthroughIngestorOptions {
  name?: string;
  /** Sources whose raw bytes are protobuf events. */
  sources?: readonly string[];
}

/** Every key of {@link PassthroughIngestorOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const PASSTHROUGH_INGESTOR_OPTION_KEYS = optionKeys<PassthroughIngestorOptions>({ name: true, sources: true });

/** Format hints for one encoded `polku.event.v1.Event`. */
const SINGLE_FORMATS = ['protobuf', 'proto', 'passthrough', 'polku.event.v1.event'];
/** Format hints for a sequence of varint-length-delimited events (protobuf's writeDelimited). */
const DELIMITED_FORMATS = ['protobuf-delimited', 'proto-delimited'];

/**
 * The agents that send their own batches with format `protobuf` (docs: AGENT-PROTOCOLS.md), and
 * the ingestor that reads them. Their bytes are not a polku Event, and some of them would decode
 * as one (an EventBatch's field 1 is a length-delimited record, as Event's id is): without this,
 * a gateway lacking the agent's ingestor accepted one garbage event per batch and lost the rest.
 */
const AGENT_BATCHES: Readonly<Record<string, readonly [batchType: string, ingestor: string]>> = {
  tapio: ['tapio.v1.EventBatch', 'TapioIngestor'],
  elava: ['elava.v1.EventBatch', 'ElavaIngestor'],
  portti: ['portti.v1.EventBatch', 'PorttiIngestor'],
};

/**
 * Raw bytes that already are protobuf `Event`s: one event, or with format `protobuf-delimited`
 * a sequence of length-prefixed events. Decoded by the strict event decoder (event-decoder.ts):
 * an event that is larger than `maxEventBytes`, not UTF-8 in a string, outside an enum, or
 * malformed is refused alone (INVALID_EVENT / PAYLOAD_TOO_LARGE in its place); a length prefix
 * that runs past the data ends the parse there (PARSE_ERROR). Events before the damage are kept.
 * Records are counted before any is decoded: more than `maxBatchEvents` refuses the whole
 * message BATCH_TOO_LARGE without decoding one.
 *
 * A batch from an agent that sends its own batch format (`tapio`, `elava`, `portti`) is refused
 * PARSE_ERROR naming the batch type and the ingestor to add, unless this ingestor was told to
 * claim that source (`sources`): the gateway then lacks that agent's ingestor.
 */
export class PassthroughIngestor implements Ingestor {
  readonly name: string;
  readonly sources: readonly string[];
  readonly formats = [...SINGLE_FORMATS, ...DELIMITED_FORMATS];

  constructor(options: PassthroughIngestorOptions = {}) {
    this.name = options.name ?? 'passthrough';
    checkOptionKeys(`PassthroughIngestor "${this.name}"`, options, PASSTHROUGH_INGESTOR_OPTION_KEYS);
    this.sources = options.sources ?? [];
  }

  ingest(ctx: IngestContext, data: Uint8Array): IngestResult {
    const agent = Object.hasOwn(AGENT_BATCHES, ctx.source) && !this.sources.includes(ctx.source) ? AGENT_BATCHES[ctx.source] : undefined;
    if (agent !== undefined) {
      const message =
        `source "${ctx.source}" with format "${ctx.format}" sends ${agent[0]} batches, not polku Events: ` +
        `add the ${agent[1]} (in polku's default pipeline) to read them; refused whole, no event taken from it`;
      return { events: [], problems: [{ message, offset: 0 }] };
    }
    const limits = ctx.limits ?? DEFAULT_LIMITS;
    if (DELIMITED_FORMATS.includes(ctx.format.toLowerCase())) return decodeDelimited(data, limits);
    const reader = strictReader(data);
    const decoded = decodeEvent(reader, data.length, limits);
    if (!isRefusal(decoded)) return { events: [decoded], problems: [] };
    if (decoded.malformed) return { events: [], problems: [{ message: `not a protobuf Event: ${decoded.message}`, offset: 0 }] };
    return { events: [refusedEvent(decoded, decoded.id)], problems: [] };
  }
}

function decodeDelimited(data: Uint8Array, limits: IntakeLimits): IngestResult {
  const reader = strictReader(data);
  const records = countRecords(reader, limits.maxBatchEvents);
  if (records > limits.maxBatchEvents) {
    const max = limits.maxBatchEvents;
    const refusal = {
      code: 'BATCH_TOO_LARGE',
      message: `message has more than ${max} delimited events, limit ${max} (POLKU_MAX_BATCH_EVENTS); refused at record ${max + 1} without decoding the rest`,
    } as const;
    return { events: [refusedEvent(refusal)], problems: [] };
  }
  reader.pos = 0;
  const events: Event[] = [];
  const problems: IngestProblem[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    let length: number;
    try {
      length = reader.uint32();
      if (reader.pos + length > reader.len) throw new Error(`record of ${length} bytes overruns the data`);
    } catch (err) {
      // Lengths are the only framing: after a damaged prefix nothing further can be trusted.
      problems.push({ message: `damaged delimited Event record: ${(err as Error).message}`, offset: start });
      break;
    }
    // Bounded to the record: a damaged field cannot read into the next record.
    const decoded = decodeEvent(reader, length, limits);
    if (!isRefusal(decoded)) events.push(decoded);
    else if (decoded.malformed) problems.push({ message: `damaged Event record: ${decoded.message}`, offset: start });
    else events.push(refusedEvent(decoded, decoded.id));
  }
  return { events, problems };
}

/**
 * Counts the records from their length prefixes alone, stopping at `max + 1`. A damaged prefix
 * stops the count; the decode reports it.
 */
function countRecords(reader: BinaryReader, max: number): number {
  let count = 0;
  try {
    while (reader.pos < reader.len && count <= max) {
      const length = reader.uint32();
      reader.pos += length;
      if (reader.pos > reader.len) break;
      count++;
    }
  } catch {
    // counted what could be
  }
  return count;
}
