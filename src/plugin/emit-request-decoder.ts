import type { Event } from '../gen/polku/v1/event.js';
import { EmitRequest } from '../gen/polku/v1/plugin.js';

/**
 * The SDK's decoder for an EmitRequest: what `EmitRequest.decode` gives, object for object
 * (test/plugin-sdk/emit-request-decoder.test.ts and a fast-check property compare them), in less
 * of the plugin's CPU. A plugin shares its node with the gateway, and the generated decoder was
 * most of the bench plugin's time: a reader call per field, strings through `TextDecoder` or a
 * temporary array of char codes. Here strings are one native `Buffer` slice each and the payload
 * a view of the request, as before.
 *
 * Only the request the gateway writes is read here: the known fields with their wire types,
 * lengths inside their event. Anything else (an unknown field, a group, a length that runs past
 * its message) hands the whole request to the generated decoder, so odd input from another
 * sender decodes (or fails) exactly as it always did.
 */
export function decodeEmitRequest(input: Buffer | Uint8Array): EmitRequest {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const events = readEvents(buf);
  return events === null ? EmitRequest.decode(buf) : { events };
}

/** Thrown by the readers when the input is not what they handle; the caller falls back. Made once. */
const UNHANDLED = new Error('not an EmitRequest as the gateway writes it');

/** The reader's position, shared by the small read functions below (one request at a time). */
let pos = 0;
/** The last varint64's low and high 32 bits (no array per timestamp). */
let varLo = 0;
let varHi = 0;

function readEvents(buf: Buffer): Event[] | null {
  const events: Event[] = [];
  pos = 0;
  try {
    while (pos < buf.length) {
      if (buf[pos++] !== 10) return null; // only field 1 (events), length-delimited
      const len = readLength(buf);
      const end = pos + len;
      if (end > buf.length) return null;
      events.push(readEvent(buf, end));
    }
    return events;
  } catch (err) {
    if (err === UNHANDLED) return null;
    throw err;
  }
}

/** One event, fields in any order and repeated as protobuf allows (last scalar wins, lists append). */
function readEvent(buf: Buffer, end: number): Event {
  // The same properties in the same order as the generated createBaseEvent: the same object shape.
  const e: Event = {
    id: '',
    timestampUnixNs: 0n,
    source: '',
    eventType: '',
    metadata: {},
    payload: EMPTY_PAYLOAD,
    routeTo: [],
    severity: 0,
    outcome: 0,
  };
  while (pos < end) {
    switch (buf[pos++]) {
      case 10:
        e.id = readString(buf, end, false);
        break;
      case 16:
        e.timestampUnixNs = readInt64(buf, end);
        break;
      case 26:
        e.source = readString(buf, end, true);
        break;
      case 34:
        e.eventType = readString(buf, end, true);
        break;
      case 42:
        readEntry(buf, end, e.metadata);
        break;
      case 50: {
        const len = readLength(buf);
        if (pos + len > end) throw UNHANDLED;
        e.payload = buf.subarray(pos, pos + len);
        pos += len;
        break;
      }
      case 58:
        e.routeTo.push(readString(buf, end, true));
        break;
      case 80:
        e.severity = readInt32(buf, end);
        break;
      case 88:
        e.outcome = readInt32(buf, end);
        break;
      default:
        throw UNHANDLED; // an unknown field or wire type, or a tag over one byte
    }
  }
  if (pos !== end) throw UNHANDLED;
  // Each event its own empty payload, as the generated decoder gives (no allocation when set).
  if (e.payload === EMPTY_PAYLOAD) e.payload = new Uint8Array(0);
  return e;
}

/** A metadata map entry: key and value default to '' when absent, as the generated decoder has it. */
function readEntry(buf: Buffer, end: number, into: Record<string, string>): void {
  const len = readLength(buf);
  const entryEnd = pos + len;
  if (entryEnd > end) throw UNHANDLED;
  let key = '';
  let value = '';
  while (pos < entryEnd) {
    const tag = buf[pos++];
    if (tag === 10) key = readString(buf, entryEnd, true);
    else if (tag === 18) value = readString(buf, entryEnd, true);
    else throw UNHANDLED;
  }
  if (pos !== entryEnd) throw UNHANDLED;
  into[key] = value;
}

/**
 * A string field. ASCII (checked in the loop that hashes it) is one native Latin-1 slice; other
 * text goes through Buffer's UTF-8 decoding, which replaces bad bytes with U+FFFD as TextDecoder
 * does and keeps a leading U+FEFF as the generated decoder's (ignoreBOM) does.
 *
 * With `intern`, for the fields that repeat from event to event (source, type, metadata keys and
 * values, route_to): a small table keeps the last string per hash of its bytes, and bytes that
 * match get that string again instead of a new one. Fewer strings to make and for the garbage
 * collector to trace, in a process that shares its node with the gateway. Bounded: INTERN_SLOTS
 * strings of at most INTERN_MAX_BYTES.
 */
function readString(buf: Buffer, end: number, intern: boolean): string {
  const len = readLength(buf);
  const start = pos;
  pos += len;
  if (pos > end) throw UNHANDLED;
  if (len === 0) return '';
  let hash = len;
  for (let i = start; i < pos; i++) {
    const b = buf[i]!;
    if (b > 0x7f) return buf.toString('utf8', start, pos);
    hash = (Math.imul(hash, 31) + b) | 0;
  }
  if (!intern || len > INTERN_MAX_BYTES) return buf.toString('latin1', start, pos);
  const slot = hash & (INTERN_SLOTS - 1);
  const known = interned[slot]!;
  if (known.length === len && sameAscii(known, buf, start)) return known;
  const s = buf.toString('latin1', start, pos);
  interned[slot] = s;
  return s;
}

/** Longest string interned; longer ones rarely repeat and cost more to compare. */
const INTERN_MAX_BYTES = 64;
/** Slots in the table (a power of two). */
const INTERN_SLOTS = 1024;
const interned: string[] = new Array<string>(INTERN_SLOTS).fill('');

function sameAscii(s: string, buf: Buffer, start: number): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

/** A length: a varint of at most 5 bytes below 2^31 (longer ones go to the generated decoder). */
function readLength(buf: Buffer): number {
  let b = buf[pos++]!;
  if (b < 0x80) return b;
  let v = b & 0x7f;
  for (let shift = 7; shift < 35; shift += 7) {
    b = buf[pos++]!;
    if (b === undefined) throw UNHANDLED;
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) {
      if (v > 0x7fffffff) throw UNHANDLED;
      return v;
    }
  }
  throw UNHANDLED;
}

/** A varint of up to 10 bytes into varLo and varHi (unsigned 32-bit halves). */
function readVarint64(buf: Buffer, end: number): void {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw UNHANDLED;
    const b = buf[pos++]!;
    const bits = b & 0x7f;
    if (i < 4) lo |= bits << (7 * i);
    else if (i === 4) {
      lo |= (bits & 0x0f) << 28;
      hi |= bits >>> 4;
    } else hi |= bits << (7 * i - 32);
    if (b < 0x80) {
      varLo = lo >>> 0;
      varHi = hi >>> 0;
      return;
    }
  }
  throw UNHANDLED;
}

function readInt64(buf: Buffer, end: number): bigint {
  readVarint64(buf, end);
  if (varHi === 0) return BigInt(varLo);
  return BigInt.asIntN(64, (BigInt(varHi) << 32n) | BigInt(varLo));
}

/** int32 (the enums): the varint's low 32 bits, signed, as the generated decoder reads it. */
function readInt32(buf: Buffer, end: number): number {
  readVarint64(buf, end);
  return varLo | 0;
}

const EMPTY_PAYLOAD = new Uint8Array(0);
