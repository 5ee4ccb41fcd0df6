/*
 * The segment files of a log directory: their names, creating one, and recovering them all at
 * open. Kept apart from SegmentLog, whose job is appending and reading once the files are known.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { StorageError } from '../../errors/storage-error.js';
import { Segment, type LogFileSystem } from './record-codec.js';
import { recoverSegment } from './segment-scan.js';

/** A segment file's name: its first record's seq, 20 digits. */
export const SEGMENT_NAME = /^(\d{20})\.log$/;
const segmentName = (base: number): string => `${String(base).padStart(20, '0')}.log`;
export const fsOpen: LogFileSystem = { open: (path, flags) => open(path, flags) };

/**
 * Opens the files appended to (`r+`, `w+`) with O_DSYNC, so each write is durable when it returns
 * (see LogFile.durableWrites); read-only ones as fsOpen does. What a log that syncs uses.
 */
export const fsOpenDurable: LogFileSystem = {
  async open(path, flags) {
    const { O_RDWR, O_CREAT, O_TRUNC, O_DSYNC } = fsConstants;
    // A platform without O_DSYNC (Windows) gets write + fdatasync, as a file without durableWrites.
    if (flags === 'r' || O_DSYNC === undefined) return open(path, flags);
    const handle = await open(path, (flags === 'w+' ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR) | O_DSYNC, 0o666);
    return Object.assign(handle, { durableWrites: true });
  },
};

export interface RecoveryReport {
  segments: number;
  records: number;
  firstSeq: number;
  nextSeq: number;
  bytes: number;
  /** Bytes cut from the end of the last segment: a partial last write. */
  tornTailBytes: number;
  /** Records with a bad checksum that were skipped (only the last segment is verified at open). */
  corruptRecords: number;
  /**
   * Acknowledged events found lost at open: records skipped for a bad checksum, plus the seq gap
   * across every damaged stretch the reader resynced past (and, for a sealed segment whose end
   * is unreadable, the gap up to the next segment's first seq). Unreadable bytes at the very end of
   * the log have no seq after them to measure by: they are in `lostBytes` and `unknownTailBytes`.
   */
  lostEvents: number;
  /** Bytes skipped as damaged (torn tails excluded). */
  lostBytes: number;
  /** Damaged stretches skipped (each with a line in `corruptSegments`). */
  skippedRegions: number;
  /** Unreadable bytes cut from the end of the last segment, whose events cannot be counted. */
  unknownTailBytes: number;
  /** `<file>: <why>` for each damaged stretch (offset, bytes and seqs lost). */
  corruptSegments: string[];
  /** Segments written by an older gateway (format version 1), read with the old reader. */
  legacySegments: number;
  /** Copies of damaged segments kept for inspection, and why a copy was not kept. */
  damagedCopies: string[];
  durationMs: number;
}

/** Where and how much of damaged segments {@link recoverSegments} copies aside before cutting. */
export interface DamagedCopies {
  /** Directory of the copies, `<segment>.<UTC time>`; created when needed. */
  dir: string;
  /** The copies in `dir` are kept below this many bytes in all: a copy that would pass it is not made. */
  maxBytes: number;
  /** Time for the copies' names. */
  nowMs: number;
}

/** Bound on the bytes of damaged segment copies kept: four full segments. */
export const DEFAULT_DAMAGED_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Opens every segment in `dir` (creating the directory when missing), checks the last one record
 * by record (a torn tail is cut, corrupt records are counted and skipped), and starts a fresh
 * segment when there is none or the last one could not be framed. Damaged data never throws: only
 * an I/O failure does, as a StorageError. `firstSeq`, `nextSeq`, `bytes` and `durationMs` are
 * left for the caller, which knows them once the log is built.
 */
export async function recoverSegments(
  dir: string,
  fs: LogFileSystem,
  damaged: DamagedCopies,
): Promise<{ segments: Segment[]; report: RecoveryReport }> {
  const report: RecoveryReport = {
    segments: 0,
    records: 0,
    firstSeq: 1,
    nextSeq: 1,
    bytes: 0,
    tornTailBytes: 0,
    corruptRecords: 0,
    lostEvents: 0,
    lostBytes: 0,
    skippedRegions: 0,
    unknownTailBytes: 0,
    corruptSegments: [],
    legacySegments: 0,
    damagedCopies: [],
    durationMs: 0,
  };
  let names: string[];
  try {
    await mkdir(dir, { recursive: true });
    names = (await readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
  } catch (err) {
    throw storageError(err, `cannot open log directory ${dir}`);
  }
  const segments: Segment[] = [];
  let skipTo = 0;
  /**
   * The previous (sealed) segment: seqs between its last record and the next segment's first are
   * lost (an unreadable or cut end; also seqs an earlier recovery gave an unreadable end room for).
   */
  let openTail: Segment | undefined;
  let openTailDamaged = false;
  for (let k = 0; k < names.length; k++) {
    const last = k === names.length - 1;
    const seg = new Segment(Number(SEGMENT_NAME.exec(names[k]!)![1]), join(dir, names[k]!));
    const file = await fs.open(seg.path, last ? 'r+' : 'r').catch((err: unknown) => {
      throw storageError(err, `cannot open segment ${seg.path}`);
    });
    try {
      const found = await recoverSegment(file, seg, last, () => keepDamagedCopy(seg, damaged, report));
      if (openTail !== undefined) {
        const gap = Math.max(0, seg.base - openTail.base - openTail.count);
        report.lostEvents += gap;
        if (gap > 0 && !openTailDamaged)
          report.corruptSegments.push(`${basename(openTail.path)}: ends ${gap} seq(s) before the next segment starts`);
      }
      openTail = last ? undefined : seg;
      openTailDamaged = found.tailDamageBytes > 0;
      if (last && found.tailDamageBytes > 0) report.unknownTailBytes += found.tailDamageBytes;
      report.corruptRecords += found.corruptRecords;
      report.lostEvents += found.corruptRecords + found.gapEvents;
      report.lostBytes += found.lostBytes;
      report.skippedRegions += found.regions.length;
      report.tornTailBytes += found.tornTailBytes;
      if (seg.version === 1) report.legacySegments++;
      for (const r of found.regions) report.corruptSegments.push(`${names[k]}: ${r}`);
      skipTo = found.skipTo ?? 0;
    } catch (err) {
      await file.close().catch(() => undefined);
      throw storageError(err, `cannot recover segment ${seg.path}`);
    }
    if (last) seg.file = file;
    else await file.close();
    segments.push(seg);
  }
  for (let k = 0; k + 1 < segments.length; k++) segments[k]!.clampTo(segments[k + 1]!.base);
  const lastSeg = segments[segments.length - 1];
  // A segment written by an older gateway is read, never appended to: new records go to a new one.
  const legacyLast = lastSeg?.version === 1;
  if (lastSeg === undefined || skipTo > 0 || legacyLast) {
    // A damaged (or old) last segment with no records left to keep: drop it.
    const emptied = lastSeg !== undefined && lastSeg.count === 0 && (skipTo > 0 || legacyLast) ? segments.pop() : undefined;
    const base = lastSeg === undefined ? 1 : Math.max(skipTo, lastSeg.base + lastSeg.count);
    try {
      if (legacyLast && emptied === undefined) {
        lastSeg.seal();
        await lastSeg.closeFile();
      }
      // An emptied segment of the same first seq is overwritten by the new one, else deleted.
      if (emptied?.base === base) await emptied.closeFile();
      await createSegment(dir, segments, base, fs);
      if (emptied !== undefined && emptied.base !== base) await emptied.closeFile().then(() => unlink(emptied.path));
    } catch (err) {
      for (const seg of [...segments, emptied]) await seg?.closeFile();
      throw storageError(err, `cannot start a new segment in ${dir}`);
    }
  }
  report.segments = segments.length;
  report.records = segments.reduce((sum, s) => sum + s.count - s.corruptCount, 0);
  return { segments, report };
}

/**
 * Copies a damaged segment into `damaged.dir` before recovery cuts anything, unless a copy of the
 * same size is already there (the same damage seen at an earlier start) or the copies would pass
 * `damaged.maxBytes`. Never throws: a copy that cannot be made is reported, recovery goes on.
 */
async function keepDamagedCopy(seg: Segment, damaged: DamagedCopies, report: RecoveryReport): Promise<void> {
  const name = basename(seg.path);
  try {
    await mkdir(damaged.dir, { recursive: true });
    let kept = 0;
    for (const f of await readdir(damaged.dir)) {
      const size = (await stat(join(damaged.dir, f))).size;
      if (f.startsWith(`${name}.`) && size === seg.fileBytes) {
        report.damagedCopies.push(`${name}: already kept as ${join(damaged.dir, f)}`);
        return;
      }
      kept += size;
    }
    if (kept + seg.fileBytes > damaged.maxBytes) {
      report.damagedCopies.push(`${name}: not kept, the copies in ${damaged.dir} would pass ${damaged.maxBytes} bytes`);
      return;
    }
    const stamp = new Date(damaged.nowMs).toISOString().replace(/[-:]/g, '').replace('.', '-');
    const dest = join(damaged.dir, `${name}.${stamp}`);
    await copyFile(seg.path, dest);
    report.damagedCopies.push(`${name}: kept as ${dest}`);
  } catch (err) {
    report.damagedCopies.push(`${name}: not kept: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Creates (and syncs) an empty segment whose first record will be `base`, and appends it to `segments`. */
export async function createSegment(dir: string, segments: Segment[], base: number, fs: LogFileSystem): Promise<void> {
  const seg = new Segment(base, join(dir, segmentName(base)));
  seg.file = await fs.open(seg.path, 'w+');
  try {
    const d = await open(dir, 'r');
    await d.sync().finally(() => d.close());
  } catch (err) {
    await seg.closeFile();
    throw err;
  }
  segments.push(seg);
}

/** A failure of the file system as a StorageError: STORAGE_FULL for a full disk or quota, else STORAGE_IO. */
export function storageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new StorageError(full ? 'STORAGE_FULL' : 'STORAGE_IO', `${what}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}
