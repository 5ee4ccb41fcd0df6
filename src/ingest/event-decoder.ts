import { BinaryReader } from '@bufbuild/protobuf/wire';
import type { AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { IntakeLimits } from './intake-rules.js';
import { freshString, repeatedString } from './wire-strings.js';

/**
 * A strict decoder for one `polku.event.v1.Event`, shared by the gRPC batch decoder, the unary
 * SendEvent decoder and the passthrough ingestor.
 *
 * Strict where the generated decoder is lenient, so that what the gateway stores is what the
 * agent sent, or nothing:
 * - every string field must be valid UTF-8 (the generated decoder replaces bad bytes with U+FFFD,
 *   so two ids differing only in invalid bytes became the same id);
 * - `severity` and `outcome` must be values of their enums (proto/polku/v1/event.proto);
 * - the event's fields must end exactly at its declared length (no field may run past it, no
 *   end-group tag may cut it short);
 * - an event larger than `maxEventBytes` is refused before any of it is decoded.
 *
 * Valid events decode to exactly what `Event.decode` gives (test/receive/batch-decoder.test.ts).
 * A refused event becomes a placeholder carrying its refusal ({@link refusedEvent}), so intake
 * counts and answers it in place, and the rest of the message is decoded on.
 */

/** Why an event was refused while decoding. */
export interface DecodeRefusal {
  readonly code: AckCode;
  readonly message: string;
  /** The event's id, when it was read before the refusal (so the Ack can name the event). */
  readonly id?: string;
  /** Not protobuf (a field runs past the event, a bad tag): a parse error rather than a refused value. */
  readonly malformed?: boolean;
}

/**
 * Shared by every copy of this module in the process (`Symbol.for`): a pipeline module loaded
 * through tsx (`polku serve --config x.ts`) gets its own copy of the hub's modules, while the
 * receivers decode with the CLI's. A module-local map would make a refusal set by one copy
 * invisible to the other, and the refused event's empty placeholder would be accepted.
 */
const refusals: WeakMap<Event, DecodeRefusal> = processWide('polku.decodeRefusals', () => new WeakMap());

function processWide<T>(name: string, make: () => T): T {
  const slot = globalThis as Record<symbol, unknown>;
  const key = Symbol.for(name);
  return (slot[key] ??= make()) as T;
}

/**
 * A placeholder for an event refused while decoding: an empty Event (with the id, when that much
 * was readable) that intake refuses with `refusal` (see `admitEvent`). A WeakMap rather than a
 * field, as in assigned-ids.ts: the Event type is the wire contract.
 */
export function refusedEvent(refusal: DecodeRefusal, id = ''): Event {
  const event: Event = {
    id,
    timestampUnixNs: 0n,
    source: '',
    eventType: '',
    metadata: {},
    payload: EMPTY,
    routeTo: [],
    severity: 0,
    outcome: 0,
  };
  refusals.set(event, refusal);
  return event;
}

/** The refusal a decoder attached to `event`, if it was refused while decoding. */
export function decodeRefusalOf(event: Event): DecodeRefusal | undefined {
  return refusals.get(event);
}

const EMPTY = new Uint8Array(0);
/** Largest value of polku.event.v1.Severity (SEVERITY_CRITICAL). */
const SEVERITY_MAX = 5;
/** Largest value of polku.event.v1.Outcome (OUTCOME_UNKNOWN). */
const OUTCOME_MAX = 4;

/** Thrown by the strict UTF-8 decoder below; caught by the event decoder, never escapes it. */
class InvalidUtf8 extends Error {}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The UTF-8 decoder for readers made by {@link strictReader}: throws on invalid bytes instead of
 * replacing them. BinaryReader decodes ASCII itself and calls this only for other bytes; a
 * leading U+FEFF is kept (it is text in a protobuf string, not a byte-order mark).
 */
function decodeUtf8Strict(bytes: Uint8Array): string {
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    throw new InvalidUtf8();
  }
}

/** A BinaryReader over `bytes` whose `string()` refuses invalid UTF-8. */
export function strictReader(bytes: Uint8Array): BinaryReader {
  return new BinaryReader(bytes, decodeUtf8Strict);
}

/** True when `err` is a strict reader's refusal of invalid UTF-8. */
export function isInvalidUtf8(err: unknown): boolean {
  return err instanceof InvalidUtf8;
}

/** The reader's bound, moved to the end of the event while it is decoded (BinaryReader checks against it). */
type Bounded = { len: number };

export type EventLimits = Pick<IntakeLimits, 'maxEventBytes' | 'maxMetadataBytes'>;

/**
 * Most `route_to` entries one event may carry. Names of emitters: a gateway has a handful. A
 * bound so that one event of empty entries (`3a 00` repeated) cannot become an array of half a
 * million strings; more is refused INVALID_EVENT.
 */
export const MAX_ROUTE_TO_ENTRIES = 1_024;

/**
 * Event's fields by number: name and wire type (proto/polku/v1/event.proto). A field sent with
 * another wire type makes the event malformed rather than being skipped as unknown.
 */
const EVENT_FIELDS: Readonly<Record<number, readonly [name: string, wireType: number]>> = {
  1: ['id', 2],
  2: ['timestamp_unix_ns', 0],
  3: ['source', 2],
  4: ['event_type', 2],
  5: ['metadata', 2],
  6: ['payload', 2],
  7: ['route_to', 2],
  10: ['severity', 0],
  11: ['outcome', 0],
};

/** Where a singular string or bytes field sits; decoded once, after the event's last field. */
const NONE = -1;

/**
 * Decodes the event at `reader.pos .. reader.pos + length` of a {@link strictReader}, into
 * `target` when given (protobuf's merge: a later encoding of the same message overrides its
 * scalars and appends to its lists). Leaves `reader.pos` at the event's end whatever happens, so
 * the caller reads on. Returns the event, or why it was refused; throws only when the declared
 * length runs past the reader's bound (the framing around the event is broken).
 *
 * Bounded work whatever the bytes: the size is checked before anything is read; a singular field
 * sent many times (`id`, `payload`…) is only located each time and decoded once, the last (as
 * protobuf keeps the last); metadata stops at `maxMetadataBytes` (the sum intake checks, counted
 * as entries arrive, each entry at least one) and route_to at {@link MAX_ROUTE_TO_ENTRIES}.
 */
export function decodeEvent(reader: BinaryReader, length: number, limits: EventLimits, target?: Event): Event | DecodeRefusal {
  const start = reader.pos;
  const end = start + length;
  if (end > reader.len) throw new RangeError(`an event of ${length} bytes runs past the end of what holds it`);
  if (length > limits.maxEventBytes) {
    reader.pos = end;
    return {
      code: 'PAYLOAD_TOO_LARGE',
      message: `event is ${length} bytes, limit ${limits.maxEventBytes} (POLKU_MAX_EVENT_BYTES)`,
    };
  }
  const bounded = reader as unknown as Bounded;
  const outerLen = bounded.len;
  bounded.len = end;
  const event: Event = target ?? {
    id: '',
    timestampUnixNs: 0n,
    source: '',
    eventType: '',
    metadata: {},
    payload: EMPTY,
    routeTo: [],
    severity: 0,
    outcome: 0,
  };
  let idAt = NONE;
  let sourceAt = NONE;
  let typeAt = NONE;
  let payloadAt = NONE;
  let metadataCost = 0;
  let field = 'event';
  try {
    while (reader.pos < end) {
      const tag = reader.uint32();
      switch (tag) {
        case 10:
          idAt = locate(reader);
          continue;
        case 16:
          event.timestampUnixNs = reader.int64() as bigint;
          continue;
        case 26:
          sourceAt = locate(reader);
          continue;
        case 34:
          typeAt = locate(reader);
          continue;
        case 42:
          field = 'metadata';
          metadataCost += decodeMetadataEntry(reader, reader.uint32(), event.metadata);
          if (metadataCost > limits.maxMetadataBytes) {
            return {
              code: 'METADATA_TOO_LARGE',
              message: `metadata is over ${limits.maxMetadataBytes} bytes, limit ${limits.maxMetadataBytes} (POLKU_MAX_METADATA_BYTES; an entry counts at least 1)`,
              id: idFor(reader, idAt, event),
            };
          }
          continue;
        case 50:
          payloadAt = locate(reader);
          continue;
        case 58:
          field = 'route_to';
          if (event.routeTo.length === MAX_ROUTE_TO_ENTRIES) {
            return {
              code: 'INVALID_EVENT',
              message: `route_to has more than ${MAX_ROUTE_TO_ENTRIES} entries`,
              id: idFor(reader, idAt, event),
            };
          }
          event.routeTo.push(repeatedString(reader));
          continue;
        case 80: {
          const severity = reader.int32();
          if (severity < 0 || severity > SEVERITY_MAX) {
            return {
              code: 'INVALID_EVENT',
              message: `severity ${severity} is not a polku.event.v1.Severity (0..${SEVERITY_MAX})`,
              id: idFor(reader, idAt, event),
            };
          }
          event.severity = severity;
          continue;
        }
        case 88: {
          const outcome = reader.int32();
          if (outcome < 0 || outcome > OUTCOME_MAX) {
            return {
              code: 'INVALID_EVENT',
              message: `outcome ${outcome} is not a polku.event.v1.Outcome (0..${OUTCOME_MAX})`,
              id: idFor(reader, idAt, event),
            };
          }
          event.outcome = outcome;
          continue;
        }
      }
      const wireType = tag & 7;
      if (wireType === 4 || tag >>> 3 === 0) throw new Error(`unexpected tag ${tag}`);
      const known = EVENT_FIELDS[tag >>> 3];
      // A known field with another wire type: these bytes are not an Event (another message,
      // such as an agent's EventBatch, whose field 2 is a string where Event's is an int64).
      if (known !== undefined) throw new Error(`field ${tag >>> 3} (${known[0]}) has wire type ${wireType}, not ${known[1]}`);
      field = 'event';
      reader.skip(wireType, tag >>> 3);
    }
    // The located singular fields, decoded once each (the last of each as sent).
    if (idAt !== NONE) {
      field = 'id';
      reader.pos = idAt;
      event.id = freshString(reader);
    }
    if (sourceAt !== NONE) {
      field = 'source';
      reader.pos = sourceAt;
      event.source = repeatedString(reader);
    }
    if (typeAt !== NONE) {
      field = 'event_type';
      reader.pos = typeAt;
      event.eventType = repeatedString(reader);
    }
    if (payloadAt !== NONE) {
      reader.pos = payloadAt;
      event.payload = reader.bytes();
    }
    return event;
  } catch (err) {
    if (err instanceof InvalidUtf8) {
      return { code: 'INVALID_EVENT', message: `${field} is not valid UTF-8`, id: field === 'id' ? '' : idFor(reader, idAt, event) };
    }
    return { code: 'INVALID_EVENT', message: `malformed event: ${(err as Error).message}`, malformed: true };
  } finally {
    // Whatever was read (a refusal may have gone back for the id), the caller reads on from here.
    reader.pos = end;
    bounded.len = outerLen;
  }
}

/** The event's id for a refusal, when it can be read ('' when it cannot). */
function idFor(reader: BinaryReader, idAt: number, event: Event): string {
  if (idAt === NONE) return event.id;
  try {
    return stringAt(reader, idAt);
  } catch {
    return '';
  }
}

/** Notes where a length-delimited field starts (its length prefix) and steps over it. */
function locate(reader: BinaryReader): number {
  const at = reader.pos;
  const length = reader.uint32();
  reader.pos += length;
  if (reader.pos > reader.len) throw new RangeError('premature EOF');
  return at;
}

/** The string whose length prefix is at `at`. */
function stringAt(reader: BinaryReader, at: number): string {
  reader.pos = at;
  return reader.string();
}

/**
 * A `map<string, string>` entry, as the generated decoder reads it (an entry without value is set
 * to ""). Returns what it costs against maxMetadataBytes: its key and value lengths as intake
 * counts them, and at least 1, so the number of entries is bounded too.
 */
function decodeMetadataEntry(reader: BinaryReader, length: number, into: { [key: string]: string }): number {
  const end = reader.pos + length;
  if (end > reader.len) throw new RangeError('premature EOF');
  let key = '';
  let value = '';
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag === 10) key = repeatedString(reader);
    else if (tag === 18) value = repeatedString(reader);
    else {
      if ((tag & 7) === 4 || tag >>> 3 === 0) throw new Error(`unexpected tag ${tag} in a metadata entry`);
      if (tag >>> 3 <= 2) throw new Error(`metadata entry field ${tag >>> 3} has wire type ${tag & 7}, not 2`);
      reader.skip(tag & 7, tag >>> 3);
    }
  }
  if (reader.pos !== end) throw new RangeError('metadata entry runs past its length');
  into[key] = value;
  return Math.max(1, key.length + value.length);
}

/** True when a decoder result is a refusal rather than an event. */
export function isRefusal(result: Event | DecodeRefusal): result is DecodeRefusal {
  return (result as DecodeRefusal).code !== undefined;
}
