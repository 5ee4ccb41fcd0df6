import { crc32 } from './crc32.js';

/*
 * The on-disk format of the durable log: how one record is framed, and how a segment file of
 * records is indexed and recovered at open ({@link Segment}, {@link recoverSegment}).
 */

/**
 * The framing of one record of the durable log, little-endian:
 *
 * ```
 * [u32 body length][u32 crc32 of the body] body = [f64 seq][f64 appendedAtMs][payload bytes]
 * ```
 *
 * "Body" is everything after the two u32 words, so a record takes `8 + length` bytes and the
 * length is at least 16. The checksum is IEEE CRC-32 over the body. A length below 16 or above
 * {@link MAX_BODY_BYTES} cannot have been written by us: it marks damage, and a reader cannot know
 * where the next record starts.
 */
export interface LogRecord {
  /** Position in the log: consecutive, starting at 1, never reused. */
  readonly seq: number;
  /** Wall-clock time of the append (the log's clock), for age-based retention and replay. */
  readonly appendedAtMs: number;
  /** The caller's bytes. From `read`, a view into a buffer shared by the records of one read call. */
  readonly payload: Uint8Array;
}

/** Length word + checksum word. */
export const PREFIX_BYTES = 8;
/** seq + appendedAtMs: the smallest possible body. */
export const MIN_BODY_BYTES = 16;
/** Everything before the payload. */
export const HEADER_BYTES = PREFIX_BYTES + MIN_BODY_BYTES;
/** The largest body a record may have; a larger length word is damage. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** The largest payload one record can carry. */
export const MAX_PAYLOAD_BYTES = MAX_BODY_BYTES - MIN_BODY_BYTES;

/** Bytes one record with a payload of `payloadBytes` takes on disk. */
export function recordBytes(payloadBytes: number): number {
  return HEADER_BYTES + payloadBytes;
}

/** Whether a length word can be one we wrote. */
export function plausibleLength(length: number): boolean {
  return length >= MIN_BODY_BYTES && length <= MAX_BODY_BYTES;
}

/** Writes one record into `buf` at `at`; returns the offset just past it. `buf` must have room. */
export function encodeRecord(buf: Buffer, at: number, seq: number, appendedAtMs: number, payload: Uint8Array): number {
  const body = MIN_BODY_BYTES + payload.length;
  buf.writeUInt32LE(body, at);
  buf.writeDoubleLE(seq, at + 8);
  buf.writeDoubleLE(appendedAtMs, at + 16);
  buf.set(payload, at + HEADER_BYTES);
  const end = at + PREFIX_BYTES + body;
  buf.writeUInt32LE(crc32(buf.subarray(at + PREFIX_BYTES, end)), at + 4);
  return end;
}

/** What {@link decodeRecord} found at an offset. */
export type Decoded =
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
export function decodeRecord(buf: Buffer, at: number, end: number = buf.length): Decoded {
  if (end - at < PREFIX_BYTES) return { kind: 'short' };
  const length = buf.readUInt32LE(at);
  if (!plausibleLength(length)) return { kind: 'bad-length', length };
  const size = PREFIX_BYTES + length;
  if (end - at < size) return { kind: 'short', size };
  const bodyStart = at + PREFIX_BYTES;
  if (crc32(buf.subarray(bodyStart, at + size)) !== buf.readUInt32LE(at + 4)) return { kind: 'bad-crc', size };
  const record: LogRecord = {
    seq: buf.readDoubleLE(bodyStart),
    appendedAtMs: buf.readDoubleLE(bodyStart + 8),
    // A plain Uint8Array view (not a Buffer), as the type says: no copy.
    payload: new Uint8Array(buf.buffer, buf.byteOffset + at + HEADER_BYTES, length - MIN_BODY_BYTES),
  };
  return { kind: 'ok', record, size };
}

/** The file operations the log uses; an `fs.promises` FileHandle fits. */
export interface LogFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number; mtimeMs: number }>;
  close(): Promise<void>;
}

/** Opens segment files. The default is `fs.promises.open`; tests inject files that fail. */
export interface LogFileSystem {
  open(path: string, flags: 'r' | 'r+' | 'w+'): Promise<LogFile>;
}

/**
 * One segment file and its in-memory index: record `k` has seq `base + k` and starts at file
 * offset `offset(k)`, so reads seek straight to it. Offsets of records known to be corrupt are
 * stored as `-offset - 1`.
 */
export class Segment {
  count = 0;
  corruptCount = 0;
  /** End of the last indexed record: what reads may cover. */
  end = 0;
  /** Size of the file on disk (may exceed `end` when its tail is unreadable). */
  fileBytes = 0;
  /** appendedAtMs of the newest record (the file's mtime when that is unknown). */
  newestMs = -Infinity;
  file: LogFile | undefined;
  /** Reads in progress: the file is closed only when none are. */
  users = 0;
  /** Deleted (or the log closed): close the file once no read uses it. */
  dead = false;
  private offsets = new Float64Array(1024);

  constructor(
    readonly base: number,
    readonly path: string,
  ) {}

  push(offset: number): void {
    if (this.count === this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[this.count++] = offset;
  }

  offset(k: number): number {
    const v = this.offsets[k]!;
    return v < 0 ? -v - 1 : v;
  }

  /** Offset just past record `k`. */
  endOf(k: number): number {
    return k + 1 < this.count ? this.offset(k + 1) : this.end;
  }

  isCorrupt(k: number): boolean {
    return this.offsets[k]! < 0;
  }

  markCorrupt(k: number): void {
    if (this.offsets[k]! >= 0) {
      this.offsets[k] = -this.offsets[k]! - 1;
      this.corruptCount++;
    }
  }

  /** Keeps only records below `nextBase` (damage can make a segment look longer than it was). */
  clampTo(nextBase: number): void {
    const keep = Math.max(0, Math.min(this.count, nextBase - this.base));
    if (keep < this.count) {
      this.end = this.offset(keep);
      this.count = keep;
    }
    this.seal();
  }

  /** No more appends: give back the index's spare room. */
  seal(): void {
    if (this.offsets.length > this.count) this.offsets = this.offsets.slice(0, Math.max(this.count, 1));
  }

  async closeFile(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    await f?.close().catch(() => undefined);
  }
}

/** What {@link scanSegment} found. */
export interface ScanResult {
  /** Records skipped for a bad checksum (verified scans only). */
  corruptRecords: number;
  /** Why the rest of the file from some offset on cannot be read; undefined when it all frames. */
  damage?: string;
  /** Where the file must be cut (verified scans only): a torn tail, or the start of `damage`. */
  cutAt?: number;
}

const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Builds `seg`'s index by walking the record headers of `file`. A sealed segment is only framed
 * (its checksums are checked when read); the last one (`verify`) has every checksum checked,
 * since that is where a crash tears a write.
 */
export async function scanSegment(file: LogFile, seg: Segment, verify: boolean, chunkBytes = SCAN_CHUNK_BYTES): Promise<ScanResult> {
  const stat = await file.stat();
  let size = stat.size;
  seg.fileBytes = size;
  const result: ScanResult = { corruptRecords: 0 };
  let buf = Buffer.allocUnsafe(Math.max(HEADER_BYTES, Math.min(chunkBytes, size)));
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
      if (got - at < HEADER_BYTES && left >= HEADER_BYTES) break; // a header across the chunk's end: read on from it
      const length = left >= PREFIX_BYTES ? buf.readUInt32LE(at) : 0;
      if (left < PREFIX_BYTES || (plausibleLength(length) && PREFIX_BYTES + length > left)) {
        // The record runs past the end of the file: a write cut short.
        if (verify) result.cutAt = pos + at;
        else result.damage = `partial record at offset ${pos + at} (${left} bytes to the end)`;
        break scan;
      }
      if (!plausibleLength(length)) {
        if (verify && (await zeroFrom(file, pos + at, size)))
          result.cutAt = pos + at; // never-written blocks after a power loss
        else {
          result.damage = `implausible record length ${length} at offset ${pos + at}; ${left} bytes skipped`;
          if (verify) result.cutAt = pos + at;
        }
        break scan;
      }
      const recordSize = PREFIX_BYTES + length;
      if (got - at < (verify ? recordSize : HEADER_BYTES)) {
        if (at === 0) buf = Buffer.allocUnsafe(recordSize); // one record larger than the chunk
        break; // read on from this record
      }
      if (verify) {
        const d = decodeRecord(buf, at, got);
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

/** What {@link recoverSegment} did to one segment file. */
export interface SegmentRecovery {
  corruptRecords: number;
  /** Bytes of a partial last write cut from the end. */
  tornTailBytes: number;
  damage?: string;
  /** Set when unreadable bytes were cut from the last segment: appends must start at this seq or later. */
  skipTo?: number;
}

/**
 * Indexes one segment file at open and, for the last one (`last`), cuts off what cannot be
 * appended after: a torn tail, or everything from an implausible length on.
 */
export async function recoverSegment(file: LogFile, seg: Segment, last: boolean): Promise<SegmentRecovery> {
  const scan = await scanSegment(file, seg, last);
  const out: SegmentRecovery = {
    corruptRecords: scan.corruptRecords,
    tornTailBytes: 0,
    ...(scan.damage !== undefined ? { damage: scan.damage } : {}),
  };
  if (scan.cutAt === undefined) return out;
  const cut = seg.fileBytes - scan.cutAt;
  await file.truncate(scan.cutAt);
  await file.datasync();
  seg.fileBytes = scan.cutAt;
  if (scan.damage === undefined) out.tornTailBytes = cut;
  // Acknowledged records may have been in the unreadable bytes, and consumers may be past them:
  // later appends start beyond every seq those bytes could have held (one per HEADER_BYTES).
  else out.skipTo = seg.base + seg.count + Math.ceil(cut / HEADER_BYTES);
  return out;
}

async function readAt(file: LogFile, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await file.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

async function zeroFrom(file: LogFile, from: number, size: number): Promise<boolean> {
  const buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, size - from));
  for (let pos = from; pos < size;) {
    const got = await readAt(file, buf, Math.min(buf.length, size - pos), pos);
    if (got === 0) return true;
    for (let i = 0; i < got; i++) if (buf[i] !== 0) return false;
    pos += got;
  }
  return true;
}
