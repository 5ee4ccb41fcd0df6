import type { Event } from '../gen/polku/v1/event.js';
import { LACKS_ID, LACKS_SOURCE, LACKS_TIMESTAMP } from './wire-events.js';

/**
 * polku.event.v1.Event written straight into a buffer the caller sized: `eventSize` first, then
 * `writeEvent`, byte for byte what the generated `Event.encode` writes (field order, defaults
 * omitted as proto3 does). The generated encoder goes through a growable writer that forks once
 * per nested message and joins the chunks; on the hot paths that encode many events at once (a
 * durable commit's log records, a plugin's EmitRequest) that was most of the CPU.
 * test/durable/event-record.test.ts and test/plugins/emit-request.test.ts hold the two encodings
 * equal, and fail when event.proto gains a field this one misses.
 */

// Field tags of polku.event.v1.Event: (field number << 3) | wire type.
export const TAG_ID = 10;
export const TAG_TIMESTAMP = 16;
export const TAG_SOURCE = 26;
const TAG_EVENT_TYPE = 34;
const TAG_METADATA = 42;
const TAG_PAYLOAD = 50;
const TAG_ROUTE_TO = 58;
const TAG_SEVERITY = 80;
const TAG_OUTCOME = 88;
const TAG_MAP_KEY = 10;
const TAG_MAP_VALUE = 18;
/** Strings longer than this are measured and written by Buffer (native) rather than in JS. */
const SHORT_STRING = 64;

/** Protobuf size of `event`, omitting default values as proto3 (and the generated encoder) does. */
export function eventSize(e: Event): number {
  let n = 0;
  if (e.id !== '') n += stringField(e.id);
  if (e.timestampUnixNs !== 0n) n += 1 + varint64Size(e.timestampUnixNs);
  if (e.source !== '') n += stringField(e.source);
  if (e.eventType !== '') n += stringField(e.eventType);
  const metadata = e.metadata;
  for (const key in metadata) {
    const entry = mapEntrySize(key, metadata[key]!);
    n += 1 + varintSize(entry) + entry;
  }
  if (e.payload.length !== 0) n += 1 + varintSize(e.payload.length) + e.payload.length;
  for (const r of e.routeTo) n += stringField(r);
  if (e.severity !== 0) n += 1 + int32Size(e.severity);
  if (e.outcome !== 0) n += 1 + int32Size(e.outcome);
  return n;
}

/** The generated encoder's field order: id, timestamp, source, type, metadata, payload, route_to, severity, outcome. */
export function writeEvent(buf: Buffer, at: number, e: Event): number {
  if (e.id !== '') at = writeString(buf, at, TAG_ID, e.id);
  if (e.timestampUnixNs !== 0n) {
    buf[at++] = TAG_TIMESTAMP;
    at = writeVarint64(buf, at, e.timestampUnixNs);
  }
  if (e.source !== '') at = writeString(buf, at, TAG_SOURCE, e.source);
  if (e.eventType !== '') at = writeString(buf, at, TAG_EVENT_TYPE, e.eventType);
  const metadata = e.metadata;
  for (const key in metadata) {
    const value = metadata[key]!;
    buf[at++] = TAG_METADATA;
    at = writeVarint(buf, at, mapEntrySize(key, value));
    if (key !== '') at = writeString(buf, at, TAG_MAP_KEY, key);
    if (value !== '') at = writeString(buf, at, TAG_MAP_VALUE, value);
  }
  if (e.payload.length !== 0) {
    buf[at++] = TAG_PAYLOAD;
    at = writeVarint(buf, at, e.payload.length);
    buf.set(e.payload, at);
    at += e.payload.length;
  }
  for (const r of e.routeTo) at = writeString(buf, at, TAG_ROUTE_TO, r);
  if (e.severity !== 0) {
    buf[at++] = TAG_SEVERITY;
    at = writeInt32(buf, at, e.severity);
  }
  if (e.outcome !== 0) {
    buf[at++] = TAG_OUTCOME;
    at = writeInt32(buf, at, e.outcome);
  }
  return at;
}

/** A map entry writes its key and value only when not empty, as any proto3 message does. */
function mapEntrySize(key: string, value: string): number {
  return (key === '' ? 0 : stringField(key)) + (value === '' ? 0 : stringField(value));
}

/** Tag (one byte for every field here), length varint, UTF-8 bytes. */
export function stringField(s: string): number {
  const len = utf8Length(s);
  return 1 + varintSize(len) + len;
}

export function writeString(buf: Buffer, at: number, tag: number, s: string): number {
  buf[at++] = tag;
  const len = utf8Length(s);
  at = writeVarint(buf, at, len);
  return at + (len === s.length ? writeAscii(buf, at, s) : buf.write(s, at, len, 'utf8'));
}

/**
 * UTF-8 length; short pure-ASCII strings (ids, names, most metadata) are counted in JS. A lone
 * surrogate counts 3 bytes (U+FFFD) here as in Buffer and in the generated encoder's TextEncoder.
 */
export function utf8Length(s: string): number {
  if (s.length > SHORT_STRING) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

/** Writes `s`, known to be ASCII, at `at`; returns its length. */
export function writeAscii(buf: Buffer, at: number, s: string): number {
  if (s.length > SHORT_STRING) return buf.write(s, at, s.length, 'latin1');
  for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i);
  return s.length;
}

/** Bytes of `v` (a non-negative integer up to 2^53) as a varint. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  for (let rest = Math.floor(v / 0x800000000); rest > 0; rest = Math.floor(rest / 128)) n++;
  return n;
}

export function writeVarint(buf: Buffer, at: number, v: number): number {
  while (v >= 0x80) {
    buf[at++] = (v & 0x7f) | 0x80;
    v = v < 0x100000000 ? v >>> 7 : Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

/**
 * int64 as protobuf writes it: two's complement in 64 bits, so a negative value takes 10 bytes.
 * Split once into 32-bit halves, then plain number arithmetic (nanosecond timestamps are above
 * 2^53, so they need all 64 bits; BigInt shifts per byte cost more).
 */
export function varint64Size(v: bigint): number {
  const u = BigInt.asUintN(64, v);
  const hi = Number(u >> 32n);
  if (hi === 0) return varintSize(Number(u));
  // 32 low bits + the high bits: 4 full groups of 7 come from the low word, then the rest.
  let n = 5;
  for (let rest = Math.floor(hi / 8); rest > 0; rest = Math.floor(rest / 128)) n++;
  return n;
}

export function writeVarint64(buf: Buffer, at: number, v: bigint): number {
  const u = BigInt.asUintN(64, v);
  let lo = Number(u & 0xffffffffn);
  let hi = Number(u >> 32n);
  // 28 low bits, 7 at a time, while more follow.
  for (let i = 0; i < 4; i++) {
    if (hi === 0 && lo < 0x80) {
      buf[at++] = lo;
      return at;
    }
    buf[at++] = (lo & 0x7f) | 0x80;
    lo = lo >>> 7;
  }
  // Byte 5: the last 4 bits of the low word and the first 3 of the high word.
  let next = (lo & 0x0f) | ((hi & 0x07) << 4);
  hi = hi >>> 3;
  while (hi > 0) {
    buf[at++] = next | 0x80;
    next = hi & 0x7f;
    hi = hi >>> 7;
  }
  buf[at++] = next;
  return at;
}

/** int32 (enums): negative values are sign-extended to 64 bits, as protobuf does. */
function int32Size(v: number): number {
  return v < 0 ? 10 : varintSize(v);
}

function writeInt32(buf: Buffer, at: number, v: number): number {
  return v < 0 ? writeVarint64(buf, at, BigInt(v)) : writeVarint(buf, at, v);
}

/**
 * Size of the fields written after an event's wire bytes (src/ingest/wire-events.ts): those it
 * arrived without (`lacks`, LACKS_* bits) and intake filled in. The conditions match eventSize's,
 * so a field still at its default stays out.
 */
export function filledSize(e: Event, lacks: number): number {
  if (lacks === 0) return 0;
  let n = 0;
  if (lacks & LACKS_ID && e.id !== '') n += stringField(e.id);
  if (lacks & LACKS_TIMESTAMP && e.timestampUnixNs !== 0n) n += 1 + varint64Size(e.timestampUnixNs);
  if (lacks & LACKS_SOURCE && e.source !== '') n += stringField(e.source);
  return n;
}

/** Writes what {@link filledSize} measured; protobuf reads each as overriding the empty field before it. */
export function writeFilled(buf: Buffer, at: number, e: Event, lacks: number): number {
  if (lacks === 0) return at;
  if (lacks & LACKS_ID && e.id !== '') at = writeString(buf, at, TAG_ID, e.id);
  if (lacks & LACKS_TIMESTAMP && e.timestampUnixNs !== 0n) {
    buf[at++] = TAG_TIMESTAMP;
    at = writeVarint64(buf, at, e.timestampUnixNs);
  }
  if (lacks & LACKS_SOURCE && e.source !== '') at = writeString(buf, at, TAG_SOURCE, e.source);
  return at;
}
