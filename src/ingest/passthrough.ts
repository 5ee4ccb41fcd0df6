import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Event } from '../gen/polku/v1/event.js';
import type { IngestContext, IngestProblem, IngestResult, Ingestor } from './ingestor.js';

export interface PassthroughIngestorOptions {
  name?: string;
  /** Sources whose raw bytes are protobuf events. */
  sources?: readonly string[];
}

/** Format hints for one encoded `polku.event.v1.Event`. */
const SINGLE_FORMATS = ['protobuf', 'proto', 'passthrough', 'polku.event.v1.event'];
/** Format hints for a sequence of varint-length-delimited events (protobuf's writeDelimited). */
const DELIMITED_FORMATS = ['protobuf-delimited', 'proto-delimited'];

/**
 * Raw bytes that already are protobuf `Event`s: one event, or with format `protobuf-delimited`
 * a sequence of length-prefixed events. A record that does not decode is refused alone; a length
 * prefix that runs past the data ends the parse there. Events before the damage are kept.
 */
export class PassthroughIngestor implements Ingestor {
  readonly name: string;
  readonly sources: readonly string[];
  readonly formats = [...SINGLE_FORMATS, ...DELIMITED_FORMATS];

  constructor(options: PassthroughIngestorOptions = {}) {
    this.name = options.name ?? 'passthrough';
    this.sources = options.sources ?? [];
  }

  ingest(ctx: IngestContext, data: Uint8Array): IngestResult {
    if (DELIMITED_FORMATS.includes(ctx.format.toLowerCase())) return decodeDelimited(data);
    try {
      return { events: [Event.decode(data)], problems: [] };
    } catch (err) {
      return { events: [], problems: [{ message: `not a protobuf Event: ${(err as Error).message}`, offset: 0 }] };
    }
  }
}

function decodeDelimited(data: Uint8Array): IngestResult {
  const reader = new BinaryReader(data);
  const events: Event[] = [];
  const problems: IngestProblem[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    let end: number;
    try {
      const length = reader.uint32();
      end = reader.pos + length;
      if (end > reader.len) throw new Error(`record of ${length} bytes overruns the data`);
    } catch (err) {
      // Lengths are the only framing: after a damaged prefix nothing further can be trusted.
      problems.push({ message: `damaged delimited Event record: ${(err as Error).message}`, offset: start });
      break;
    }
    try {
      // A view bounded to the record, so a damaged field cannot read into the next record.
      events.push(Event.decode(data.subarray(reader.pos, end)));
    } catch (err) {
      problems.push({ message: `damaged Event record: ${(err as Error).message}`, offset: start });
    }
    reader.pos = end;
  }
  return { events, problems };
}
