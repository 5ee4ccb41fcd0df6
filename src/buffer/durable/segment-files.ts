/*
 * The segment files of a log directory: their names, creating one, and recovering them all at
 * open. Kept apart from SegmentLog, whose job is appending and reading once the files are known.
 */
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../errors/storage-error.js';
import { Segment, recoverSegment, type LogFileSystem } from './record-codec.js';

/** A segment file's name: its first record's seq, 20 digits. */
export const SEGMENT_NAME = /^(\d{20})\.log$/;
const segmentName = (base: number): string => `${String(base).padStart(20, '0')}.log`;
export const fsOpen: LogFileSystem = { open: (path, flags) => open(path, flags) };

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
  /** `<file>: <why>` for each file that could not be framed past some offset (the rest skipped). */
  corruptSegments: string[];
  durationMs: number;
}

/**
 * Opens every segment in `dir` (creating the directory when missing), checks the last one record
 * by record (a torn tail is cut, corrupt records are counted and skipped), and starts a fresh
 * segment when there is none or the last one could not be framed. Damaged data never throws: only
 * an I/O failure does, as a StorageError. `firstSeq`, `nextSeq`, `bytes` and `durationMs` are
 * left for the caller, which knows them once the log is built.
 */
export async function recoverSegments(dir: string, fs: LogFileSystem): Promise<{ segments: Segment[]; report: RecoveryReport }> {
  const report: RecoveryReport = {
    segments: 0,
    records: 0,
    firstSeq: 1,
    nextSeq: 1,
    bytes: 0,
    tornTailBytes: 0,
    corruptRecords: 0,
    corruptSegments: [],
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
  for (let k = 0; k < names.length; k++) {
    const last = k === names.length - 1;
    const seg = new Segment(Number(SEGMENT_NAME.exec(names[k]!)![1]), join(dir, names[k]!));
    const file = await fs.open(seg.path, last ? 'r+' : 'r').catch((err: unknown) => {
      throw storageError(err, `cannot open segment ${seg.path}`);
    });
    try {
      const found = await recoverSegment(file, seg, last);
      report.corruptRecords += found.corruptRecords;
      report.tornTailBytes += found.tornTailBytes;
      if (found.damage !== undefined) report.corruptSegments.push(`${names[k]}: ${found.damage}`);
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
  if (segments.length === 0 || skipTo > 0) {
    // A damaged last segment cut down to nothing has no records left to keep: drop it.
    const emptied = skipTo > 0 && segments[segments.length - 1]!.fileBytes === 0 ? segments.pop() : undefined;
    try {
      await createSegment(dir, segments, Math.max(skipTo, 1), fs);
      if (emptied !== undefined) await emptied.closeFile().then(() => unlink(emptied.path));
    } catch (err) {
      for (const seg of [...segments, emptied]) await seg?.closeFile();
      throw storageError(err, `cannot start a new segment in ${dir}`);
    }
  }
  report.segments = segments.length;
  report.records = segments.reduce((sum, s) => sum + s.count, 0) - report.corruptRecords;
  return { segments, report };
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
