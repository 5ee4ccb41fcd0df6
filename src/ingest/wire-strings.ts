import type { BinaryReader } from '@bufbuild/protobuf/wire';

/**
 * Strings of a message as the strict decoders read them, without the generated reader's cost:
 * one code path for the native event decoder (event-decoder.ts), the TAPIO batch decoder
 * (agents/tapio.ts) and the OTLP Export decoder (receive/otlp/export-decoder.ts).
 *
 * BinaryReader.string() reads ASCII by filling an array with the char codes and calling
 * String.fromCharCode on it: an array and a string per field. The ASCII here is checked in the
 * same loop, then the string is made by Buffer's native Latin-1 slice (the same characters for
 * ASCII bytes). Anything else goes to reader.string(), whose strict UTF-8 decoder (a
 * `strictReader`'s) refuses invalid bytes as before: strictness is the reader's, unchanged.
 *
 * The fields that repeat from message to message (sources, types, metadata keys and values,
 * Kubernetes names, attribute keys) are interned: a {@link StringTable} remembers the last string
 * seen per hash of its bytes, and a field whose bytes match gets that string instead of a new one.
 * An agent's events share most of them (namespace, pod, node, cluster…), and the buffer holds
 * thousands of events: fewer strings to make, and fewer for the garbage collector to copy and mark.
 * Bounded (`slots` strings of at most `maxBytes` each); a collision or a new value only replaces a
 * slot. A hit compares every byte with the remembered string's char codes, so a string is only
 * ever returned for exactly its own bytes.
 */

/** Longest string interned by default; longer ones are rarely repeated and cost more to compare. */
export const INTERN_MAX_BYTES = 64;
/** Slots in the shared table (a power of two). */
const INTERN_SLOTS = 1024;

type Readable = { buf: Uint8Array; len: number; pos: number };

/**
 * Buffer's native Latin-1 slice, called on the reader's bytes whether they are a Buffer (grpc-js,
 * node:http2) or a plain Uint8Array (a view the generated decoder made): no Buffer view to make
 * per string, no `toString` argument checks. Node's own `toString('latin1')` ends in this call.
 */
const nativeLatin1 = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string })
  .latin1Slice;

/** ASCII bytes as a string: one native copy. */
function latin1(buf: Uint8Array, start: number, end: number): string {
  if (start === end) return '';
  if (nativeLatin1 !== undefined) return nativeLatin1.call(buf, start, end);
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.toString('latin1', start, end);
}

/** Options of a {@link StringTable}. */
export interface StringTableOptions {
  /** Slots (rounded up to a power of two). */
  readonly slots: number;
  /** Longest string kept (bytes); longer ones are read, not interned. Default {@link INTERN_MAX_BYTES}. */
  readonly maxBytes?: number;
  /**
   * A prefix whose concatenation with each entry is kept beside it ({@link StringTable.prefixed}):
   * OTLP's `otel.attr.<key>` metadata keys, built once per entry instead of once per record.
   */
  readonly prefix?: string;
}

/**
 * A bounded, direct-mapped table of interned strings (see the module comment). Tables are kept
 * apart where one kind of field must not evict another: OTLP's attribute values (often unique)
 * never push out its attribute keys.
 */
export class StringTable {
  /**
   * The slot of the last string {@link read} returned from or put into the table; -1 when it was
   * not interned (too long, not ASCII, empty). Read it right after `read`, before the next one.
   */
  lastSlot = -1;
  private readonly text: string[];
  private readonly withPrefix: Array<string | undefined>;
  private readonly mask: number;
  private readonly maxBytes: number;
  private readonly prefix: string;

  constructor(o: StringTableOptions) {
    let slots = 1;
    while (slots < o.slots) slots *= 2;
    this.text = new Array<string>(slots).fill('');
    this.withPrefix = new Array<string | undefined>(slots).fill(undefined);
    this.mask = slots - 1;
    this.maxBytes = o.maxBytes ?? INTERN_MAX_BYTES;
    this.prefix = o.prefix ?? '';
  }

  /** Reads the string field at the reader (its length first); interned when ASCII and short. */
  read(reader: BinaryReader): string {
    const r = reader as unknown as Readable;
    const at = r.pos;
    const len = reader.uint32();
    const start = r.pos;
    const end = start + len;
    this.lastSlot = -1;
    if (end > r.len) {
      r.pos = at;
      return reader.string(); // throws the reader's own premature-EOF error
    }
    const buf = r.buf;
    if (len > this.maxBytes) return fresh(reader, buf, at, start, end);
    let hash = len;
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b > 0x7f) {
        r.pos = at;
        return reader.string(); // UTF-8: decoded (and checked) by the strict decoder
      }
      hash = (Math.imul(hash, 31) + b) | 0;
    }
    r.pos = end;
    if (len === 0) return '';
    const slot = (hash ^ (hash >>> 13)) & this.mask;
    const known = this.text[slot]!;
    this.lastSlot = slot;
    if (known.length === len && sameAscii(known, buf, start)) return known;
    const s = latin1(buf, start, end);
    this.text[slot] = s;
    this.withPrefix[slot] = undefined;
    return s;
  }

  /**
   * `prefix + text` for the string `read` just returned from slot `slot` (its {@link lastSlot}),
   * built once per entry; built anew when the entry is gone (replaced by a nested read) or was
   * never interned.
   */
  prefixed(slot: number, text: string): string {
    if (slot < 0 || this.text[slot] !== text) return this.prefix + text;
    return (this.withPrefix[slot] ??= this.prefix + text);
  }
}

/** The table of the native and agent decoders' repeated fields. */
const shared = new StringTable({ slots: INTERN_SLOTS });

/** A string field whose value is likely to repeat across events (interned in the shared table). */
export function repeatedString(reader: BinaryReader): string {
  return shared.read(reader);
}

/** A string field whose value is likely new (an id): read, not interned. */
export function freshString(reader: BinaryReader): string {
  const r = reader as unknown as Readable;
  const at = r.pos;
  const len = reader.uint32();
  const start = r.pos;
  const end = start + len;
  if (end > r.len) {
    r.pos = at;
    return reader.string(); // throws the reader's own premature-EOF error
  }
  return fresh(reader, r.buf, at, start, end);
}

/** The string at `start..end` (its length prefix at `at`), checked ASCII and sliced, or strictly decoded. */
function fresh(reader: BinaryReader, buf: Uint8Array, at: number, start: number, end: number): string {
  const r = reader as unknown as Readable;
  if (!isAsciiRange(buf, start, end)) {
    r.pos = at;
    return reader.string();
  }
  r.pos = end;
  return latin1(buf, start, end);
}

/** True when every byte of `buf[start..end)` is ASCII: such a string field is valid UTF-8 without decoding it. */
export function isAsciiRange(buf: Uint8Array, start: number, end: number): boolean {
  // OR of every byte: one test at the end instead of a branch per byte (ids, container ids, bodies).
  let high = 0;
  for (let i = start; i < end; i++) high |= buf[i]!;
  return high <= 0x7f;
}

function sameAscii(s: string, buf: Uint8Array, start: number): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}
