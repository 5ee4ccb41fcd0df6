import { crc32, crc32Range } from './crc32.js';

/*
 * The on-disk format of the durable log (version 2): how a segment file starts, how one record is
 * framed, and the in-memory index of a segment ({@link Segment}). Scanning and recovering a
 * segment file at open is in segment-scan.ts; the version-1 format, still read, in
 * record-codec-v1.ts.
 *
 * A segment file starts with a 16-byte header:
 *
 * ```
 * ["POLKULOG"][u32 version = 2][u32 crc32 of the 12 bytes before]
 * ```
 *
 * Its first four bytes read as a version-1 length word are far above any length version 1 could
 * write, so the two formats are told apart by their first bytes. Each record is, little-endian:
 *
 * ```
 * [u32 marker 0xD1524B50][u32 payload length][f64 seq][f64 appendedAtMs][u32 crc32 of payload][u32 crc32 of the 28 bytes before]
 * [payload bytes]
 * ```
 *
 * The marker and the header's own checksum make every record findable again after damage: a
 * reader that meets bytes that do not frame scans forward for the next marker whose header
 * checksum matches and whose seq fits (see segment-scan.ts), instead of losing the rest of the
 * segment. The payload checksum is checked when the record is read.
 */

export interface LogRecord {
  /** Position in the log: consecutive, starting at 1, never reused. */
  readonly seq: number;
  /** Wall-clock time of the append (the log's clock), for age-based retention and replay. */
  readonly appendedAtMs: number;
  /** The caller's bytes. From `read`, a view into a buffer shared by the records of one read call. */
  readonly payload: Uint8Array;
}

/** The fixed bytes every segment file of version 2 starts with. */
export const SEGMENT_MAGIC = Buffer.from('POLKULOG', 'latin1');
export const SEGMENT_VERSION = 2;
/** Magic + version + checksum. */
export const SEGMENT_HEADER_BYTES = 16;
/** The segment header every new segment file starts with. */
export const SEGMENT_HEADER: Buffer = (() => {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32LE(SEGMENT_VERSION, 8);
  b.writeUInt32LE(crc32(b.subarray(0, 12)), 12);
  return b;
})();

/** The sync marker each record starts with (bytes 50 4B 52 D1). */
export const RECORD_MAGIC = 0xd1524b50;
/** The marker's bytes, for searching. */
export const RECORD_MAGIC_BYTES: Buffer = (() => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(RECORD_MAGIC, 0);
  return b;
})();
/** Bytes the header checksum covers: marker, length, seq, appendedAtMs, payload checksum. */
const HEADER_CHECKED_BYTES = 28;
/** Everything before the payload. */
export const HEADER_BYTES = 32;
/** The largest payload one record can carry; a larger length is damage. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024 - 16;

/** Bytes one record with a payload of `payloadBytes` takes on disk. */
export function recordBytes(payloadBytes: number): number {
  return HEADER_BYTES + payloadBytes;
}

/** Writes one record into `buf` at `at`; returns the offset just past it. `buf` must have room. */
export function encodeRecord(buf: Buffer, at: number, seq: number, appendedAtMs: number, payload: Uint8Array): number {
  buf.set(payload, at + HEADER_BYTES);
  return encodeRecordHeader(buf, at, seq, appendedAtMs, at + HEADER_BYTES + payload.length);
}

/**
 * Writes the header of the record at `at` whose payload is already in place, from
 * `at + HEADER_BYTES` to `end`; returns `end`. For payloads encoded straight into the group buffer.
 */
export function encodeRecordHeader(buf: Buffer, at: number, seq: number, appendedAtMs: number, end: number): number {
  buf.writeUInt32LE(RECORD_MAGIC, at);
  buf.writeUInt32LE(end - at - HEADER_BYTES, at + 4);
  buf.writeDoubleLE(seq, at + 8);
  buf.writeDoubleLE(appendedAtMs, at + 16);
  buf.writeUInt32LE(crc32(buf.subarray(at + HEADER_BYTES, end)), at + 24);
  buf.writeUInt32LE(crc32Range(buf, at, at + HEADER_CHECKED_BYTES), at + HEADER_CHECKED_BYTES);
  return end;
}

/**
 * Records an appender writes straight into the log's group buffer, so a commit makes neither a
 * payload buffer per append nor a copy of it (a durable gateway's commits otherwise allocated
 * tens of MB/s outside the heap, each of which the garbage collector had to account for).
 */
export interface RecordSource {
  /** How many records. */
  readonly count: number;
  /** Their payloads' bytes in all. */
  readonly payloadBytes: number;
  /** The largest payload's bytes (each is limited to MAX_PAYLOAD_BYTES). */
  readonly largestPayload: number;
  /** Writes record `i`'s payload from `buf[at]` on; returns where it ends. */
  writePayload(i: number, buf: Buffer, at: number): number;
}

/**
 * The payload length of the record header at `at` when its marker and header checksum match
 * (its seq, time and payload checksum are then as written), else -1. `buf` must hold the whole
 * header.
 */
export function checkHeader(buf: Buffer, at: number): number {
  if (buf.readUInt32LE(at) !== RECORD_MAGIC) return -1;
  if (crc32Range(buf, at, at + HEADER_CHECKED_BYTES) !== buf.readUInt32LE(at + HEADER_CHECKED_BYTES)) return -1;
  const length = buf.readUInt32LE(at + 4);
  return length <= MAX_PAYLOAD_BYTES ? length : -1;
}

/** What {@link decodeRecord} found at an offset. */
export type Decoded =
  /** A whole record whose header and payload checksums match. */
  | { readonly kind: 'ok'; readonly record: LogRecord; readonly size: number }
  /** The bytes end before the record does (`size` is set when the header was readable). */
  | { readonly kind: 'short'; readonly size?: number }
  /** No marker, or the header checksum fails: where the record ends is unknown. */
  | { readonly kind: 'bad-header' }
  /** The header checks but the payload does not: skip `size` bytes to the next record. */
  | { readonly kind: 'bad-crc'; readonly size: number };

/**
 * Decodes the record at `at` in `buf[0, end)`. The payload is a view into `buf` (no copy).
 * Checks both checksums, not the seq: the caller knows which seq it expects.
 */
export function decodeRecord(buf: Buffer, at: number, end: number = buf.length): Decoded {
  if (end - at < HEADER_BYTES) return { kind: 'short' };
  const length = checkHeader(buf, at);
  if (length < 0) return { kind: 'bad-header' };
  const size = HEADER_BYTES + length;
  if (end - at < size) return { kind: 'short', size };
  const payload = new Uint8Array(buf.buffer, buf.byteOffset + at + HEADER_BYTES, length);
  if (crc32(payload) !== buf.readUInt32LE(at + 24)) return { kind: 'bad-crc', size };
  // A plain Uint8Array view (not a Buffer), as the type says: no copy.
  return { kind: 'ok', record: { seq: buf.readDoubleLE(at + 8), appendedAtMs: buf.readDoubleLE(at + 16), payload }, size };
}

/** The file operations the log uses; an `fs.promises` FileHandle fits. */
export interface LogFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number; mtimeMs: number }>;
  close(): Promise<void>;
  /**
   * The file was opened with O_DSYNC: a write returns once its data is on disk, as a write then
   * datasync would, so the log skips the datasync. One trip through the thread pool instead of
   * two, and one event-loop turn less before a group's Acks.
   */
  readonly durableWrites?: boolean;
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
  /** The on-disk format: 2 (records with markers) or 1 (written by an older gateway; read only). */
  version: 1 | 2 = 2;
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

  /**
   * Indexes a seq whose record was destroyed (found missing by the seq gap after damage): it
   * reads as corrupt, its extent empty at `offset` (where the next record starts).
   */
  pushLost(offset: number): void {
    this.push(-offset - 1);
    this.corruptCount++;
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

  /** Takes over the index another scan of the same file built (the reading that recovered more). */
  adopt(other: Segment): void {
    this.count = other.count;
    this.corruptCount = other.corruptCount;
    this.end = other.end;
    this.fileBytes = other.fileBytes;
    this.newestMs = other.newestMs;
    this.version = other.version;
    this.offsets = other.offsets;
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

/** Reads up to `length` bytes at `position` into `buf`; fewer only at the end of the file. */
export async function readAt(file: LogFile, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await file.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
