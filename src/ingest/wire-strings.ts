import type { BinaryReader } from '@bufbuild/protobuf/wire';

/**
 * Strings of an event as the strict decoder reads them, without the generated reader's cost.
 *
 * BinaryReader.string() reads ASCII by filling an array with the char codes and calling
 * String.fromCharCode on it: an array and a string per field, 8–10 fields an event. The ASCII here
 * is checked in the same loop, then the string is made by Buffer's native Latin-1 slice (the same
 * characters for ASCII bytes). Anything else goes to reader.string(), whose strict UTF-8 decoder
 * refuses invalid bytes as before.
 *
 * The fields that repeat from event to event (source, type, metadata keys and values, route_to)
 * are interned: a small table remembers the last string seen per hash of its bytes, and an event
 * whose bytes match gets that string instead of a new one. An agent's events share most of them
 * (namespace, pod, node, cluster…), and the buffer holds thousands of events: fewer strings to
 * make, and fewer for the garbage collector to copy and mark. Bounded (INTERN_SLOTS strings of at
 * most INTERN_MAX_BYTES); a collision or a new value only replaces a slot.
 */

/** Longest string interned; longer ones are rarely repeated and cost more to compare. */
const INTERN_MAX_BYTES = 64;
/** Slots in the table (a power of two). */
const INTERN_SLOTS = 1024;
const interned: string[] = new Array<string>(INTERN_SLOTS).fill('');

type Readable = { buf: Uint8Array; len: number };

/** A string field whose value is likely to repeat across events (interned). */
export function repeatedString(reader: BinaryReader): string {
  return readString(reader, true);
}

/** A string field whose value is likely new (an id): read, not interned. */
export function freshString(reader: BinaryReader): string {
  return readString(reader, false);
}

function readString(reader: BinaryReader, intern: boolean): string {
  const at = reader.pos;
  const len = reader.uint32();
  const start = reader.pos;
  const r = reader as unknown as Readable;
  const end = start + len;
  if (end > r.len) {
    reader.pos = at;
    return reader.string(); // throws the reader's own premature-EOF error
  }
  const buf = r.buf;
  let hash = len;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b > 0x7f) {
      reader.pos = at;
      return reader.string(); // UTF-8: decoded (and checked) by the strict decoder
    }
    hash = (Math.imul(hash, 31) + b) | 0;
  }
  reader.pos = end;
  if (!intern || len > INTERN_MAX_BYTES) return latin1(buf, start, end);
  const slot = hash & (INTERN_SLOTS - 1);
  const known = interned[slot]!;
  if (known.length === len && sameAscii(known, buf, start)) return known;
  const s = latin1(buf, start, end);
  interned[slot] = s;
  return s;
}

function sameAscii(s: string, buf: Uint8Array, start: number): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

/** ASCII bytes as a string: one native copy (grpc-js hands messages as Buffers; a Uint8Array gets a view). */
function latin1(buf: Uint8Array, start: number, end: number): string {
  if (start === end) return '';
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.toString('latin1', start, end);
}
