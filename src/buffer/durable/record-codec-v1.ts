import { crc32 } from './crc32.js';
import type { LogFile, LogRecord, Segment } from './record-codec.js';
import { readAt } from './record-codec.js';

/*
 * The first on-disk format of the durable log (version 1), kept so a gateway upgraded in place
 * reads the segments its predecessor wrote. New segments are written in version 2
 * (record-codec.ts); a version-1 segment is never appended to again.
 */

/**
 * The framing of one version-1 record, little-endian:
 *
 * ```
 * [u32 body length][u32 crc32 of the body] body = [f64 seq][f64 appendedAtMs][payload bytes]
 * ```
 *
 * "Body" is everything after the two u32 words, so a record takes `8 + length` bytes and the
 * length is at least 16. The checksum is IEEE CRC-32 over the body. A length below 16 or above
 * {@link V1_MAX_BODY_BYTES} cannot have been written by us: it marks damage, and since lengths are
 * the only framing, a reader cannot know where the next record starts (what version 2 fixes).
 */
/** Length word + checksum word. */
export const V1_PREFIX_BYTES = 8;
/** seq + appendedAtMs: the smallest possible body. */
export const V1_MIN_BODY_BYTES = 16;
/** Everything before the payload. */
export const V1_HEADER_BYTES = V1_PREFIX_BYTES + V1_MIN_BODY_BYTES;
/** The largest body a record may have; a larger length word is damage. */
export const V1_MAX_BODY_BYTES = 64 * 1024 * 1024;
/** The largest payload one record can carry. */
export const V1_MAX_PAYLOAD_BYTES = V1_MAX_BODY_BYTES - V1_MIN_BODY_BYTES;

/** Bytes one record with a payload of `payloadBytes` takes on disk. */
export function v1RecordBytes(payloadBytes: number): number {
  return V1_HEADER_BYTES + payloadBytes;
}

/** Whether a length word can be one we wrote. */
export function plausibleV1Length(length: number): boolean {
  return length >= V1_MIN_BODY_BYTES && length <= V1_MAX_BODY_BYTES;
}

/** Writes one record into `buf` at `at`; returns the offset just past it. `buf` must have room. */
export function encodeV1Record(buf: Buffer, at: number, seq: number, appendedAtMs: number, payload: Uint8Array): number {
  const body = V1_MIN_BODY_BYTES + payload.length;
  buf.writeUInt32LE(body, at);
  buf.writeDoubleLE(seq, at + 8);
  buf.writeDoubleLE(appendedAtMs, at + 16);
  buf.set(payload, at + V1_HEADER_BYTES);
  const end = at + V1_PREFIX_BYTES + body;
  buf.writeUInt32LE(crc32(buf.subarray(at + V1_PREFIX_BYTES, end)), at + 4);
  return end;
}

/** What {@link decodeV1Record} found at an offset. */
export type V1Decoded =
  /** A whole record whose checksum matches. */
  | { readonly kind: 'ok'; readonly record: LogRecord; readonly size: number }
  /** The bytes end before the record does (`size` is set when the length word was readable). */
  | { readonly kind: 'short'; readonly size?: number }
  /** The length word is implausible: the rest of the bytes cannot be framed. */
  | { readonly kind: 'bad-length'; readonly length: number }
  /** A plausible length, but the checksum does not match: skip `size` bytes to the next record. */
  | { readonly kind: 'bad-crc'; readonly size: number };

/**
 * Decodes the record at `at` in `buf[0, end)`. The payload is a view into `buf` (no copy).
 * Checks the checksum, not the seq: the caller knows which seq it expects.
 */
export function decodeV1Record(buf: Buffer, at: number, end: number = buf.length): V1Decoded {
  if (end - at < V1_PREFIX_BYTES) return { kind: 'short' };
  const length = buf.readUInt32LE(at);
  if (!plausibleV1Length(length)) return { kind: 'bad-length', length };
  const size = V1_PREFIX_BYTES + length;
  if (end - at < size) return { kind: 'short', size };
  const bodyStart = at + V1_PREFIX_BYTES;
  if (crc32(buf.subarray(bodyStart, at + size)) !== buf.readUInt32LE(at + 4)) return { kind: 'bad-crc', size };
  const record: LogRecord = {
    seq: buf.readDoubleLE(bodyStart),
    appendedAtMs: buf.readDoubleLE(bodyStart + 8),
    // A plain Uint8Array view (not a Buffer), as the type says: no copy.
    payload: new Uint8Array(buf.buffer, buf.byteOffset + at + V1_HEADER_BYTES, length - V1_MIN_BODY_BYTES),
  };
  return { kind: 'ok', record, size };
}

/** What {@link scanV1Segment} found. */
export interface V1ScanResult {
  /** Records skipped for a bad checksum (verified scans only). */
  corruptRecords: number;
  /** Why the rest of the file from some offset on cannot be read; undefined when it all frames. */
  damage?: string;
  /** Where the file must be cut (verified scans only): a torn tail, or the start of `damage`. */
  cutAt?: number;
}

const V1_SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Builds `seg`'s index by walking the record headers of `file`. A sealed segment is only framed
 * (its checksums are checked when read); the last one (`verify`) has every checksum checked,
 * since that is where a crash tears a write.
 */
export async function scanV1Segment(file: LogFile, seg: Segment, verify: boolean, chunkBytes = V1_SCAN_CHUNK_BYTES): Promise<V1ScanResult> {
  const stat = await file.stat();
  let size = stat.size;
  seg.fileBytes = size;
  const result: V1ScanResult = { corruptRecords: 0 };
  let buf = Buffer.allocUnsafe(Math.max(V1_HEADER_BYTES, Math.min(chunkBytes, size)));
  let pos = 0;
  let newest = NaN;
  let end = 0;
  scan: while (pos < size) {
    const want = Math.min(buf.length, size - pos);
    const got = await readAt(file, buf, want, pos);
    if (got < want) size = pos + got; // the file shrank under us: frame what is there
    let at = 0;
    while (at < got) {
      const left = size - pos - at;
      if (got - at < V1_HEADER_BYTES && left >= V1_HEADER_BYTES) break; // a header across the chunk's end: read on from it
      const length = left >= V1_PREFIX_BYTES ? buf.readUInt32LE(at) : 0;
      if (left < V1_PREFIX_BYTES || (plausibleV1Length(length) && V1_PREFIX_BYTES + length > left)) {
        // The record runs past the end of the file: a write cut short.
        if (verify) result.cutAt = pos + at;
        else result.damage = `partial record at offset ${pos + at} (${left} bytes to the end)`;
        break scan;
      }
      if (!plausibleV1Length(length)) {
        if (verify && (await zeroFrom(file, pos + at, size)))
          result.cutAt = pos + at; // never-written blocks after a power loss
        else {
          result.damage = `implausible record length ${length} at offset ${pos + at}; ${left} bytes skipped`;
          if (verify) result.cutAt = pos + at;
        }
        break scan;
      }
      const recordSize = V1_PREFIX_BYTES + length;
      if (got - at < (verify ? recordSize : V1_HEADER_BYTES)) {
        if (at === 0) buf = Buffer.allocUnsafe(recordSize); // one record larger than the chunk
        break; // read on from this record
      }
      if (verify) {
        const d = decodeV1Record(buf, at, got);
        if (d.kind !== 'ok' && recordSize === left) {
          result.cutAt = pos + at; // the final record does not check: a torn last write
          break scan;
        }
        seg.push(pos + at);
        if (d.kind !== 'ok' || d.record.seq !== seg.base + seg.count - 1) {
          seg.markCorrupt(seg.count - 1);
          result.corruptRecords++;
        } else newest = d.record.appendedAtMs;
      } else {
        seg.push(pos + at);
        newest = buf.readDoubleLE(at + 16);
      }
      at += recordSize;
      end = pos + at;
    }
    pos += at;
  }
  seg.end = end;
  seg.newestMs = Number.isFinite(newest) ? newest : stat.mtimeMs;
  return result;
}

async function zeroFrom(file: LogFile, from: number, size: number): Promise<boolean> {
  const buf = Buffer.allocUnsafe(Math.min(V1_SCAN_CHUNK_BYTES, size - from));
  for (let pos = from; pos < size;) {
    const got = await readAt(file, buf, Math.min(buf.length, size - pos), pos);
    if (got === 0) return true;
    for (let i = 0; i < got; i++) if (buf[i] !== 0) return false;
    pos += got;
  }
  return true;
}
