import { systemClock, type Clock } from '../../clock.js';
import { StorageError } from '../../errors/storage-error.js';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  SEGMENT_HEADER,
  SEGMENT_HEADER_BYTES,
  type Segment,
  decodeRecord,
  encodeRecord,
  encodeRecordHeader,
  type LogFileSystem,
  type RecordSource,
  type LogRecord,
} from './record-codec.js';
import { decodeV1Record } from './record-codec-v1.js';
import {
  DEFAULT_DAMAGED_MAX_BYTES,
  createSegment,
  fsOpen,
  fsOpenDurable,
  recoverSegments,
  storageError,
  type RecoveryReport,
} from './segment-files.js';

export type { LogFile, LogFileSystem, LogRecord, RecordSource } from './record-codec.js';
export { StorageError, type StorageErrorCode } from '../../errors/storage-error.js';
export { SEGMENT_NAME, DEFAULT_DAMAGED_MAX_BYTES, type RecoveryReport } from './segment-files.js';

export interface SegmentLogOptions {
  /** Where the segment files live; created if missing. */
  dir: string;
  /** Roll to a new segment file when a write would take the active one past this size. Default 64 MiB. */
  segmentBytes?: number;
  /**
   * An append resolves only once its records are on disk: the segment files are opened with
   * O_DSYNC (one write per group, durable when it returns), or, for files from `fileSystem` that
   * do not say `durableWrites`, each write is followed by an fdatasync. Default true; turn off
   * only in tests.
   */
  fsync?: boolean;
  /** `appendedAtMs` comes from `clock.nowMs()`; recovery time from `monotonicMs()`. Default systemClock. */
  clock?: Clock;
  /** How segment files are opened. Default `fs.promises.open`; tests inject failing files. */
  fileSystem?: LogFileSystem;
  /** Where damaged segments are copied at open before anything is cut. Default `<dir>/damaged`. */
  damagedDir?: string;
  /** The copies of damaged segments are kept below this many bytes in all. Default 256 MiB. */
  damagedMaxBytes?: number;
}

/** What one group commit took: told to {@link SegmentLog.onCommit} after each successful one. */
export interface GroupCommit {
  /** Records written. */
  readonly records: number;
  /** From the oldest append of the group to its write starting (queued behind the previous group). */
  readonly waitMs: number;
  /** The durable write itself (write, and fdatasync where the file is not O_DSYNC). */
  readonly writeMs: number;
}

interface PendingAppend {
  readonly records: readonly Uint8Array[] | RecordSource;
  /** When append() was called (clock.monotonicMs()). */
  readonly at: number;
  /** How many records. */
  readonly count: number;
  readonly bytes: number;
  readonly resolve: (firstSeq: number) => void;
  readonly reject: (err: unknown) => void;
}

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Reads go to disk in pieces of about this size, so no single read holds the event loop long. */
const READ_CHUNK_BYTES = 1024 * 1024;
/** The group-commit encode buffer is reused up to this size; larger groups get their own. */
const SCRATCH_MAX_BYTES = 8 * 1024 * 1024;
/** Idle read handles of sealed segments kept open. */
const MAX_IDLE_READERS = 4;

/**
 * An append-only log of records split into segment files `<dir>/<first seq, 20 digits>.log`.
 * Appends in one event-loop turn share one durable write (group commit; see `fsync`); every record
 * carries a CRC-32, so recovery after a crash finds torn and corrupt bytes, reports and skips them,
 * and never throws for damaged data. Seqs start at 1 and are never reused: the first seq of each
 * segment is in its file name, so they survive deletion of old segments and restarts.
 */
export class SegmentLog {
  /** Told of every successful group commit (metrics); must not throw. */
  onCommit: ((commit: GroupCommit) => void) | undefined;
  private flushes = 0;
  private corruptRead = 0;
  private corruptReadBytes = 0;
  private next: number;
  private totalBytes: number;
  private queue: PendingAppend[] = [];
  private flushing = false;
  private kickScheduled = false;
  private idleWaiters: Array<() => void> = [];
  /** A failed write could not be cut back: the next group goes to a fresh segment. */
  private rollPending = false;
  private scratch = Buffer.alloc(0);
  private readonly starts: number[] = [];
  private maintenance: Promise<unknown> = Promise.resolve();
  private readonly idleReaders = new Set<Segment>();
  private closing: Promise<void> | undefined;
  private readonly segmentBytes: number;
  private readonly fsync: boolean;
  private readonly clock: Clock;
  private readonly fs: LogFileSystem;

  private constructor(
    private readonly dir: string,
    private readonly segments: Segment[],
    options: SegmentLogOptions,
  ) {
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.fsync = options.fsync ?? true;
    this.clock = options.clock ?? systemClock;
    this.fs = options.fileSystem ?? (this.fsync ? fsOpenDurable : fsOpen);
    const active = this.active;
    this.next = active.base + active.count;
    this.totalBytes = segments.reduce((sum, s) => sum + s.fileBytes, 0);
  }

  /** Opens (or creates) the log in `options.dir`, recovering from whatever a crash left. */
  static async open(options: SegmentLogOptions): Promise<{ log: SegmentLog; recovery: RecoveryReport }> {
    const clock = options.clock ?? systemClock;
    const started = clock.monotonicMs();
    const fileSystem = options.fileSystem ?? ((options.fsync ?? true) ? fsOpenDurable : fsOpen);
    const { segments, report } = await recoverSegments(options.dir, fileSystem, {
      dir: options.damagedDir ?? join(options.dir, 'damaged'),
      maxBytes: options.damagedMaxBytes ?? DEFAULT_DAMAGED_MAX_BYTES,
      nowMs: clock.nowMs(),
    });
    const log = new SegmentLog(options.dir, segments, options);
    const recovery: RecoveryReport = {
      ...report,
      firstSeq: log.firstSeq,
      nextSeq: log.nextSeq,
      bytes: log.bytes,
      durationMs: clock.monotonicMs() - started,
    };
    return { log, recovery };
  }

  /** Successful group commits so far (one write and one fdatasync each). */
  get flushCount(): number {
    return this.flushes;
  }

  /** Lowest seq still in the log (== nextSeq when empty). */
  get firstSeq(): number {
    return Math.min(this.segments[0]!.base, this.next);
  }

  /** The seq the next append gets. */
  get nextSeq(): number {
    return this.next;
  }

  /** Bytes on disk over all segments. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Records skipped by `read` because their checksum (or seq) did not match; each counted once. */
  get corruptRecordsRead(): number {
    return this.corruptRead;
  }

  /** Bytes of the records counted in `corruptRecordsRead`. */
  get corruptBytesRead(): number {
    return this.corruptReadBytes;
  }

  /**
   * Appends payloads as consecutive records; resolves with the first one's seq once they are
   * durable. Appends made in the same event-loop turn, and those made while the previous group was
   * being written, share one durable write (a group bigger than `segmentBytes` is split). No
   * timer: a group is what arrived meanwhile, so its size follows the disk's sync time. The
   * payloads (or a RecordSource's) are encoded when the group is written: do not change what
   * they are made from before the promise settles.
   * Rejects with StorageError STORAGE_FULL (disk full; the file is cut back, the seqs are not
   * used), STORAGE_IO, or STORAGE_CLOSED; with a RangeError for a payload over MAX_PAYLOAD_BYTES.
   */
  append(records: readonly Uint8Array[] | RecordSource): Promise<number> {
    if (this.closing !== undefined) return Promise.reject(new StorageError('STORAGE_CLOSED', 'the log is closed'));
    let bytes = 0;
    let largest = 0;
    let count: number;
    if (Array.isArray(records)) {
      const payloads = records as readonly Uint8Array[];
      count = payloads.length;
      for (const p of payloads) {
        if (p.length > largest) largest = p.length;
        bytes += HEADER_BYTES + p.length;
      }
    } else {
      const source = records as RecordSource;
      count = source.count;
      largest = source.largestPayload;
      bytes = count * HEADER_BYTES + source.payloadBytes;
    }
    if (largest > MAX_PAYLOAD_BYTES)
      return Promise.reject(new RangeError(`a record payload is limited to ${MAX_PAYLOAD_BYTES} bytes, got ${largest}`));
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ records, at: this.clock.monotonicMs(), count, bytes, resolve, reject });
      if (!this.flushing && !this.kickScheduled) {
        this.kickScheduled = true;
        setImmediate(this.kick);
      }
    });
  }

  /** Up to `limit` records with seq >= fromSeq, in seq order, read from disk; corrupt ones are skipped and counted. */
  async read(fromSeq: number, limit: number): Promise<LogRecord[]> {
    if (this.closing !== undefined) throw new StorageError('STORAGE_CLOSED', 'the log is closed');
    const out: LogRecord[] = [];
    let seq = Math.max(Math.ceil(fromSeq) || 0, this.firstSeq);
    while (out.length < limit && seq < this.next) {
      const k = this.segmentIndexOf(seq);
      const seg = this.segments[k]!;
      const n = Math.min(seg.count - (seq - seg.base), limit - out.length);
      if (seq < seg.base)
        seq = seg.base; // older segments were deleted meanwhile
      else if (n <= 0)
        seq = this.segments[k + 1]?.base ?? this.next; // a gap: on to the next segment
      else {
        await this.readRecords(seg, seq - seg.base, n, out);
        seq = Math.max(seq + n, this.firstSeq);
      }
    }
    return out;
  }

  /** Deletes whole segments whose records all have seq < `seq`; never the active one. Returns how many records went. */
  deleteBefore(seq: number): Promise<number> {
    return this.exclusive(async () => {
      let deleted = 0;
      while (this.segments.length > 1 && this.segments[1]!.base <= seq) deleted += await this.dropOldest();
      return deleted;
    });
  }

  /** Deletes the oldest whole segments while the log exceeds maxBytes or the segment's newest record is older than maxAgeMs. */
  enforceRetention(limits: { maxBytes?: number; maxAgeMs?: number }): Promise<{ firstSeq: number; deletedRecords: number }> {
    return this.exclusive(async () => {
      const cutoff = this.clock.nowMs() - (limits.maxAgeMs ?? Infinity);
      let deletedRecords = 0;
      while (this.segments.length > 1) {
        const over = limits.maxBytes !== undefined && this.totalBytes > limits.maxBytes;
        if (!over && !(this.segments[0]!.newestMs < cutoff)) break;
        deletedRecords += await this.dropOldest();
      }
      return { firstSeq: this.firstSeq, deletedRecords };
    });
  }

  /** Stops taking appends, waits for the pending ones to be written, closes the files. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.flushing || this.kickScheduled) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      await this.maintenance;
      for (const seg of this.segments) {
        seg.dead = true;
        await this.releaseIfIdle(seg);
      }
    })();
    return this.closing;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private readonly kick = (): void => {
    this.kickScheduled = false;
    if (!this.flushing) void this.drain();
  };

  /** Writes queued appends group by group; one group in flight at a time. */
  private async drain(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      // Everything queued goes in one group, unless it is more than a segment's worth.
      let n = 0;
      let bytes = 0;
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.bytes <= this.segmentBytes)) bytes += this.queue[n++]!.bytes;
      const group = n === this.queue.length ? this.queue : this.queue.slice(0, n);
      this.queue = n === this.queue.length ? [] : this.queue.slice(n);
      await this.commit(group, bytes);
    }
    this.flushing = false;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** One durable write for the whole group; settles every append in it. Never throws. */
  private async commit(group: PendingAppend[], bytes: number): Promise<void> {
    let records = 0;
    for (const a of group) records += a.count;
    let seg = this.active;
    let start = seg.fileBytes;
    try {
      if (bytes === 0) return settle(group, this.next);
      if (this.rollPending || (start > 0 && start + bytes > this.segmentBytes)) {
        seg = await this.roll();
        start = 0;
      }
      // A new segment's header goes out with its first group: still one write.
      if (start === 0) bytes += SEGMENT_HEADER_BYTES;
      if (bytes > this.scratch.length && bytes <= SCRATCH_MAX_BYTES)
        this.scratch = Buffer.allocUnsafe(Math.max(bytes, 2 * this.scratch.length));
      const buf = bytes <= this.scratch.length ? this.scratch : Buffer.allocUnsafe(bytes);
      const now = this.clock.nowMs();
      let at = start === 0 ? SEGMENT_HEADER.copy(buf, 0) : 0;
      let seq = this.next;
      // Where each record starts in buf, for the segment's index once the group is on disk.
      const starts = this.starts;
      starts.length = 0;
      for (const a of group) {
        if (Array.isArray(a.records)) {
          for (const p of a.records as readonly Uint8Array[]) {
            starts.push(at);
            at = encodeRecord(buf, at, seq++, now, p);
          }
        } else {
          const source = a.records as RecordSource;
          for (let i = 0; i < source.count; i++) {
            starts.push(at);
            at = encodeRecordHeader(buf, at, seq++, now, source.writePayload(i, buf, at + HEADER_BYTES));
          }
        }
      }
      // A source that wrote other than it sized is a bug; nothing of it may reach the disk.
      if (at !== bytes) throw new Error(`a group of ${records} records encoded to ${at} bytes, sized as ${bytes}`);
      const writeStart = this.clock.monotonicMs();
      try {
        for (let done = 0; done < bytes;) {
          const { bytesWritten } = await seg.file!.write(buf, done, bytes - done, start + done);
          if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
          done += bytesWritten;
        }
        // A file opened with O_DSYNC has it on disk already (LogFile.durableWrites).
        if (this.fsync && seg.file!.durableWrites !== true) await seg.file!.datasync();
      } catch (err) {
        await this.cutBack(seg, start, bytes, records);
        throw err;
      }
      this.flushes++;
      if (this.onCommit !== undefined) {
        const done = this.clock.monotonicMs();
        this.onCommit({ records, waitMs: writeStart - group[0]!.at, writeMs: done - writeStart });
      }
      for (const at of starts) seg.push(start + at);
      seg.fileBytes = seg.end = start + bytes;
      seg.newestMs = now;
      this.totalBytes += bytes;
      settle(group, this.next);
      this.next = seq;
    } catch (err) {
      const e = storageError(err, `append of ${records} records to ${seg.path} failed`);
      for (const a of group) a.reject(e);
    }
  }

  /** After a failed write: cut the file back so no partial record stays; if even that fails, burn the seqs and move on. */
  private async cutBack(seg: Segment, start: number, bytes: number, records: number): Promise<void> {
    try {
      await seg.file!.truncate(start);
      // Best effort: should the cut not reach the disk, the next group overwrites the same bytes,
      // and a crash before that can only bring back records of this failed (unacknowledged) group.
      if (this.fsync) await seg.file!.datasync().catch(() => undefined);
    } catch {
      // The tail may hold (part of) the group: never reuse its seqs, continue in a new segment.
      this.totalBytes += bytes;
      seg.fileBytes = start + bytes;
      this.next += records;
      this.rollPending = true;
    }
  }

  private async roll(): Promise<Segment> {
    const sealed = this.active;
    await createSegment(this.dir, this.segments, this.next, this.fs);
    this.rollPending = false;
    if (this.active !== sealed) {
      sealed.seal();
      this.idleReaders.add(sealed);
      await this.trimIdleReaders();
    }
    return this.active;
  }

  private async readRecords(seg: Segment, i: number, n: number, out: LogRecord[]): Promise<void> {
    seg.users++;
    this.idleReaders.delete(seg);
    try {
      if (seg.file === undefined) {
        const f = await this.fs.open(seg.path, 'r');
        if (seg.file === undefined) seg.file = f;
        else await f.close(); // a concurrent read opened it first
      }
      for (let k = i; k < i + n;) {
        // Whole records up to about READ_CHUNK_BYTES (at least one) per read.
        const from = seg.offset(k);
        let j = k + 1;
        while (j < i + n && seg.endOf(j) - from <= READ_CHUNK_BYTES) j++;
        const length = seg.endOf(j - 1) - from;
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await seg.file.read(buf, got, length - got, from + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        const decode = seg.version === 1 ? decodeV1Record : decodeRecord;
        for (; k < j; k++) {
          if (seg.isCorrupt(k)) continue;
          const d = decode(buf, seg.offset(k) - from, got);
          if (d.kind === 'ok' && d.record.seq === seg.base + k) out.push(d.record);
          else {
            seg.markCorrupt(k);
            this.corruptRead++;
            // A record that frames but does not check counts its own size (bytes after it that do
            // not frame were counted at open).
            this.corruptReadBytes += d.kind === 'bad-crc' ? d.size : seg.endOf(k) - seg.offset(k);
          }
        }
      }
    } catch (err) {
      if (!(seg.dead && (err as NodeJS.ErrnoException).code === 'ENOENT')) throw storageError(err, `read of ${seg.path} failed`);
    } finally {
      seg.users--;
      if (seg !== this.active && !seg.dead) this.idleReaders.add(seg);
      await this.trimIdleReaders();
      await this.releaseIfIdle(seg);
    }
  }

  private async dropOldest(): Promise<number> {
    const seg = this.segments.shift()!;
    try {
      await unlink(seg.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.segments.unshift(seg);
        throw storageError(err, `cannot delete segment ${seg.path}`);
      }
    }
    this.totalBytes -= seg.fileBytes;
    seg.dead = true;
    this.idleReaders.delete(seg);
    await this.releaseIfIdle(seg);
    return seg.count - seg.corruptCount;
  }

  private async trimIdleReaders(): Promise<void> {
    for (const seg of this.idleReaders) {
      if (this.idleReaders.size <= MAX_IDLE_READERS) return;
      this.idleReaders.delete(seg);
      if (seg.users === 0 && seg !== this.active) await seg.closeFile();
    }
  }

  private async releaseIfIdle(seg: Segment): Promise<void> {
    if (seg.dead && seg.users === 0) await seg.closeFile();
  }

  /** Index of the segment holding `seq` (or the last one starting at or below it). */
  private segmentIndexOf(seq: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid]!.base <= seq) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Maintenance runs one at a time, after what is already running. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(new StorageError('STORAGE_CLOSED', 'the log is closed'));
    const run = this.maintenance.then(fn);
    this.maintenance = run.catch(() => undefined);
    return run;
  }
}

/** Creates the segment file starting at `base` (made durable in the directory) and appends it. */
function settle(group: readonly PendingAppend[], first: number): void {
  for (const a of group) {
    a.resolve(first);
    first += a.count;
  }
}
