import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Timestamp } from '../../gen/google/protobuf/timestamp.js';
import type { Event } from '../../gen/polku/v1/event.js';
import { isInvalidUtf8, refusedEvent, strictReader, type DecodeRefusal } from '../event-decoder.js';
import type { IngestContext, IngestProblem, IngestResult, Ingestor } from '../ingestor.js';
import { DEFAULT_LIMITS } from '../intake-rules.js';
import { checkOptionKeys, optionKeys } from '../../config/option-keys.js';
import { isAsciiRange } from '../wire-strings.js';

/**
 * What the agents' batches share (TAPIO, ELAVA, PORTTI): an `EventBatch` whose field 1 is
 * `repeated <agent event>` and whose other fields (source, cluster, node, account…) describe the
 * whole batch. One walker reads them all, strictly; each agent's file says how one of its events
 * becomes a POLKU event ({@link AgentFormat}).
 *
 * The walk, in two passes over the bytes:
 * 1. framing only: each field-1 record's position and length is noted (nothing decoded) and
 *    counted against `maxBatchEvents`; more refuses the whole batch BATCH_TOO_LARGE before one
 *    event is decoded. The batch's own fields are read here (they may come after the events).
 *    Broken framing (a length past the end, a bad tag, a known field with the wrong wire type)
 *    ends the walk with a problem (PARSE_ERROR) naming the source and the batch type; the records
 *    before it are kept.
 * 2. each record: larger than `maxEventBytes` → refused PAYLOAD_TOO_LARGE without decoding;
 *    otherwise decoded (ELAVA, PORTTI: the generated decoder; TAPIO: its envelope as the
 *    generated decoder reads it, its typed data checked by {@link checkMessage} rather than
 *    built, see docs/benchmarks.md) over a strict reader bounded to the record
 *    (invalid UTF-8 anywhere → INVALID_EVENT naming the field; damage inside the record → a
 *    PARSE_ERROR problem for it alone, the walk goes on, the framing around it being intact),
 *    then mapped by the agent ({@link AgentFormat.toEvent}: an enum value outside the proto is
 *    refused INVALID_EVENT naming the field and the value). A refused event stays in its place as
 *    a {@link refusedEvent} placeholder, so the Ack answers it and keeps the others.
 *
 * Unknown fields are skipped (an agent newer than the gateway); they stay in the payload bytes.
 */
export interface AgentFormat<Message, Batch> {
  /** The agent's name (`tapio`): first segment of event_type, named in problems. */
  readonly agent: string;
  /** Full name of the batch message (`tapio.v1.EventBatch`). */
  readonly batchType: string;
  /** Full name of the event message, field 1 of the batch (`tapio.v1.RawEbpfEvent`). */
  readonly eventType: string;
  /** The event message's top-level fields by number, to name the field a refusal is about. */
  readonly eventFields: Readonly<Record<number, string>>;
  /** The batch's own fields other than 1 (events), by number: name and wire type. */
  readonly batchFields: Readonly<Record<number, readonly [name: string, wireType: number]>>;
  /** A fresh holder for the batch's own fields. */
  newBatch(): Batch;
  /** Reads batch field `fieldNo` (one of {@link batchFields}, wire type checked) into `batch`. */
  readBatchField(reader: BinaryReader, fieldNo: number, batch: Batch): void;
  /** Decodes the event message as the generated decoder does (or the parts of it the mapping reads). */
  decode(reader: BinaryReader, length: number): Message;
  /**
   * One decoded agent event as a POLKU event, with `payload` (the record's bytes) and the batch's
   * fields; or why it is refused (an enum value the proto does not have).
   */
  toEvent(message: Message, batch: Batch, ctx: IngestContext, payload: Uint8Array): Event | DecodeRefusal;
}

/** Options of the three agent ingestors. */
export interface AgentIngestorOptions {
  /** Ingestor name (logs, metrics). Default: the agent's name. */
  name?: string;
  /** Batch sources claimed. Default: the agent's name (`tapio`, `elava`, `portti`). */
  sources?: readonly string[];
}

/** Every key of {@link AgentIngestorOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const AGENT_INGESTOR_OPTION_KEYS = optionKeys<AgentIngestorOptions>({ name: true, sources: true });

/**
 * The three agent ingestors: each is this with its agent's format (how to read its batch and map
 * one of its events), claiming the agent's name as its source unless told otherwise.
 */
export abstract class AgentBatchIngestor<Message, Batch> implements Ingestor {
  readonly name: string;
  readonly sources: readonly string[];

  protected constructor(
    private readonly format: AgentFormat<Message, Batch>,
    agent: string,
    options: AgentIngestorOptions,
  ) {
    this.name = options.name ?? agent;
    checkOptionKeys(`${new.target.name} "${this.name}"`, options, AGENT_INGESTOR_OPTION_KEYS);
    this.sources = options.sources ?? [agent];
  }

  ingest(ctx: IngestContext, data: Uint8Array): IngestResult {
    return ingestAgentBatch(this.format, ctx, data);
  }
}

/** Protobuf wire types. */
export const VARINT = 0;
export const LEN = 2;

/** How a field of a nested message is checked without building it (only strings need a check). */
export type FieldCheck = 'string';
/** A nested message's string fields by number; other fields are skipped, as unknown fields are. */
export interface MessageCheck {
  readonly [field: number]: FieldCheck;
}

/**
 * Checks the length-delimited message at the reader (its length prefix first) as the strict
 * generated decoder reads it, without building it: every string field valid UTF-8 (ASCII checked
 * here by wire-strings.ts's `isAsciiRange`, anything else through the strict reader, which throws), the fields ending exactly at its
 * length. A field of another wire type is skipped, as the generated decoder does.
 */
export function checkMessage(reader: BinaryReader, fields: MessageCheck): void {
  const length = reader.uint32();
  const end = reader.pos + length;
  if (end > reader.len) throw new RangeError('premature EOF');
  const buf = (reader as unknown as { buf: Uint8Array }).buf;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const wireType = tag & 7;
    if (wireType === LEN && fields[tag >>> 3] === 'string') {
      const at = reader.pos;
      const n = reader.uint32();
      const from = reader.pos;
      if (from + n > end) throw new RangeError('premature EOF');
      if (!isAsciiRange(buf, from, from + n)) {
        reader.pos = at;
        reader.string(); // throws on invalid UTF-8
      } else reader.pos = from + n;
      continue;
    }
    if (wireType === VARINT) {
      // Most of a typed message's other fields (ports, counters): skipped here when the varint
      // ends within the message, else by the reader (which throws its own error).
      const from = reader.pos;
      let i = from;
      while (i < end && i - from < 10 && buf[i]! >= 0x80) i++;
      if (i < end && i - from < 10) {
        reader.pos = i + 1;
        continue;
      }
    }
    if (wireType === 4 || tag >>> 3 === 0) throw new Error(`unexpected tag ${tag}`);
    reader.skip(wireType, tag >>> 3);
  }
  if (reader.pos !== end) throw new RangeError('a nested message runs past its length');
}

/** The reader's bound (BinaryReader checks against it); moved to a record's end while it is decoded. */
type Bounded = { len: number };

/** The walk's first pass: where each record is, the batch's fields, and where the framing broke. */
interface Framing<Batch> {
  /** Pairs: start of the record's bytes, their length. */
  readonly records: number[];
  readonly batch: Batch;
  /** Set when the framing broke: the records before it are still read. */
  problem?: IngestProblem;
  /** Set when there were more than `maxBatchEvents` records. */
  tooLarge?: string;
}

/** Parses one agent batch as the {@link AgentFormat} says. Never throws. */
export function ingestAgentBatch<M, B>(format: AgentFormat<M, B>, ctx: IngestContext, data: Uint8Array): IngestResult {
  const limits = ctx.limits ?? DEFAULT_LIMITS;
  const reader = strictReader(data);
  const framing = frame(format, reader, limits.maxBatchEvents);
  if (framing.tooLarge !== undefined) return { events: [], problems: [], tooLarge: framing.tooLarge };
  const { records, batch } = framing;
  const events: Event[] = [];
  const problems: IngestProblem[] = [];
  const bounded = reader as unknown as Bounded;
  for (let r = 0; r < records.length; r += 2) {
    const start = records[r]!;
    const length = records[r + 1]!;
    const end = start + length;
    if (length > limits.maxEventBytes) {
      events.push(
        refusedEvent({
          code: 'PAYLOAD_TOO_LARGE',
          message: `${format.eventType} is ${length} bytes, limit ${limits.maxEventBytes} (POLKU_MAX_EVENT_BYTES)`,
        }),
      );
      continue;
    }
    reader.pos = start;
    bounded.len = end;
    let message: M;
    try {
      message = format.decode(reader, length);
      // The generated decoder stops quietly at an end-group tag: short of the end is damage too.
      if (reader.pos !== end) throw new Error(`its fields end at byte ${reader.pos - start} of ${length}`);
    } catch (err) {
      if (isInvalidUtf8(err)) {
        const field = fieldAround(reader, start, end, reader.pos, format.eventFields);
        const refusal = { code: 'INVALID_EVENT', message: `${format.eventType} ${field} holds invalid UTF-8` } as const;
        events.push(refusedEvent(refusal, idOf(reader, start, end)));
      } else {
        problems.push({
          message: `${format.agent} event ${r / 2} is not ${a(format.eventType)}: ${(err as Error).message}`,
          offset: start,
        });
      }
      continue;
    } finally {
      bounded.len = data.length;
    }
    // The payload is a view of the received bytes, not a copy: a copy costs an allocation and
    // a memcpy per event (measured in docs/benchmarks.md, "Agent ingest"), and every other
    // protobuf path (the gRPC batch decoder, passthrough) already keeps views of the message
    // buffer. The price: while any one event of a batch is buffered, the whole received batch
    // (at most maxMessageBytes) stays in memory; the buffer is bounded in events, so the worst
    // case is bounded too.
    const event = format.toEvent(message, batch, ctx, data.subarray(start, end));
    if ('code' in event) events.push(refusedEvent(event, event.id));
    else events.push(event);
  }
  if (framing.problem) problems.push(framing.problem);
  return { events, problems };
}

function frame<M, B>(format: AgentFormat<M, B>, reader: BinaryReader, maxEvents: number): Framing<B> {
  const framing: Framing<B> = { records: [], batch: format.newBatch() };
  const records = framing.records;
  let fieldAt = 0;
  try {
    while (reader.pos < reader.len) {
      fieldAt = reader.pos;
      const tag = reader.uint32();
      const fieldNo = tag >>> 3;
      const wireType = tag & 7;
      if (fieldNo === 1) {
        if (wireType !== LEN) throw new Error(`field 1 (events) has wire type ${wireType}, not ${LEN}`);
        const length = reader.uint32();
        const start = reader.pos;
        if (start + length > reader.len) throw new Error(`event ${records.length / 2} of ${length} bytes runs past the end`);
        if (records.length / 2 === maxEvents) {
          framing.tooLarge = `${format.agent} batch has more than ${maxEvents} events, limit ${maxEvents} (POLKU_MAX_BATCH_EVENTS); refused at event ${maxEvents + 1} without decoding any`;
          return framing;
        }
        records.push(start, length);
        reader.pos = start + length;
        continue;
      }
      const known = format.batchFields[fieldNo];
      if (known !== undefined) {
        if (wireType !== known[1]) throw new Error(`field ${fieldNo} (${known[0]}) has wire type ${wireType}, not ${known[1]}`);
        format.readBatchField(reader, fieldNo, framing.batch);
        continue;
      }
      if (fieldNo === 0 || wireType === 4 || wireType > 5) throw new Error(`bad tag ${tag}`);
      reader.skip(wireType, fieldNo);
    }
  } catch (err) {
    const why = isInvalidUtf8(err) ? `a batch field holds invalid UTF-8` : (err as Error).message;
    framing.problem = { message: `${format.agent} batch is not ${a(format.batchType)}: ${why}`, offset: fieldAt };
  }
  return framing;
}

/** The top-level field of the record `start..end` that holds byte `pos - 1`, as `field 8 (pod_name)`. */
function fieldAround(reader: BinaryReader, start: number, end: number, pos: number, names: Readonly<Record<number, string>>): string {
  let fieldNo = 0;
  try {
    reader.pos = start;
    while (reader.pos < end) {
      const tag = reader.uint32();
      fieldNo = tag >>> 3;
      reader.skip(tag & 7, fieldNo);
      if (reader.pos >= pos) break;
    }
  } catch {
    // fall back to the last field seen
  }
  return fieldNo === 0 ? 'a string' : `field ${fieldNo} (${names[fieldNo] ?? 'unknown'})`;
}

/** The record's id (field 1), when it is readable, for the Ack; '' when it is not. */
function idOf(reader: BinaryReader, start: number, end: number): string {
  let id = '';
  try {
    reader.pos = start;
    while (reader.pos < end) {
      const tag = reader.uint32();
      if (tag === 10) id = reader.string();
      else reader.skip(tag & 7, tag >>> 3);
    }
  } catch {
    return '';
  }
  return id;
}

/** A Timestamp as int64 nanoseconds since the epoch, exact; absent → 0n (intake stamps receive time). */
export function timestampNs(ts: Timestamp | undefined, id: string): bigint | DecodeRefusal {
  if (ts === undefined) return 0n;
  return timestampOf(ts.seconds, ts.nanos, id);
}

/** A Timestamp's seconds and nanos (as sent) as int64 nanoseconds since the epoch, exact, or why they are refused. */
export function timestampOf(seconds: bigint, nanos: number, id: string): bigint | DecodeRefusal {
  if (nanos < 0 || nanos > 999_999_999) {
    return { code: 'INVALID_EVENT', message: `timestamp.nanos ${nanos} is outside 0..999999999`, id };
  }
  const ns = seconds * 1_000_000_000n + BigInt(nanos);
  if (ns > INT64_MAX || ns < INT64_MIN) {
    return { code: 'INVALID_EVENT', message: `timestamp ${seconds}s is outside what int64 nanoseconds hold (1677..2262)`, id };
  }
  return ns;
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * An enum's values as event_type segments: index = value, the name lower-cased without its
 * prefix (`EBPF_TYPE_NETWORK` → `network`). A value past the end is not in the proto.
 */
export function enumSegments(values: Record<string, string | number>, prefix: string): readonly string[] {
  const segments: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === 'number' && value >= 0) segments[value] = name.slice(prefix.length).toLowerCase();
  }
  return segments;
}

/** An INVALID_EVENT refusal for an enum value the proto does not have: the gateway does not guess a name. */
export function badEnum(eventType: string, field: string, value: number, enumName: string, id: string): DecodeRefusal {
  return { code: 'INVALID_EVENT', message: `${eventType} ${field} ${value} is not ${a(enumName)} value`, id };
}

/** Sets `key` to `value` unless the value is empty (empty agent fields are left out). */
export function put(metadata: { [key: string]: string }, key: string, value: string): void {
  if (value !== '') metadata[key] = value;
}

/** Adds each entry of `map` under `prefix` (labels, annotations, tags); empty values are kept, keys are what they name. */
export function putAll(metadata: { [key: string]: string }, prefix: string, map: { [key: string]: string }): void {
  for (const key in map) metadata[prefix + key] = map[key]!;
}

/** `name` with its indefinite article: `a tapio.v1.EventBatch`, `an elava.v1.EventBatch`. */
export function a(name: string): string {
  return /^[aeiou]/i.test(name) ? `an ${name}` : `a ${name}`;
}
