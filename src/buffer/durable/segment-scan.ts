import { crc32 } from './crc32.js';
import { scanV1Segment, plausibleV1Length, V1_HEADER_BYTES } from './record-codec-v1.js';
import {
  HEADER_BYTES,
  RECORD_MAGIC_BYTES,
  SEGMENT_HEADER,
  SEGMENT_HEADER_BYTES,
  checkHeader,
  readAt,
  Segment,
  type LogFile,
} from './record-codec.js';

/*
 * Reading a segment file at open: telling its format apart, indexing its records, and finding
 * the next intact record after damage. Recovery (cutting a torn tail, starting the header of an
 * empty segment) is in recoverSegment, below.
 */

/** What {@link scanSegment} found. */
export interface ScanResult {
  /** Records framed whose payload checksum failed (verified scans only): skipped, one event each. */
  corruptRecords: number;
  /**
   * Seqs whose records were destroyed between two intact ones: the seq gap across each damaged
   * stretch the scan resynced past. Exact: every seq is accounted for by a record on one side.
   */
  gapEvents: number;
  /** Bytes skipped: the damaged stretches resynced past, plus the corrupt records. */
  lostBytes: number;
  /** One line per damaged stretch resynced past: offset, bytes and seqs lost. */
  regions: string[];
  /**
   * Bytes at the end of the file after the last record found that neither frame nor are a torn
   * last write; no record could be found in them. How many events they held is known only from the
   * next segment's first seq (for the last segment: not at all; at most one per header's bytes).
   */
  tailDamageBytes: number;
  /** A partial last write (last segment only): cut off, its events were never acknowledged. */
  tornTailBytes: number;
  /** Where the file must be cut (last segment only): start of the torn tail or tail damage. */
  cutAt?: number;
}

export interface ScanOptions {
  /** Check every payload checksum now (else only framing and header checksums; payloads when read). */
  verify: boolean;
  /** The segment appended to last: its unframed tail may be a torn write, and is cut. */
  last: boolean;
  /** Read size; tests use small ones to cross chunk boundaries. */
  chunkBytes?: number;
}

const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

const emptyScan = (): ScanResult => ({ corruptRecords: 0, gapEvents: 0, lostBytes: 0, regions: [], tailDamageBytes: 0, tornTailBytes: 0 });

/**
 * Builds `seg`'s index by walking `file`'s records, and sets `seg.version`. A version-1 file (no
 * segment header) is read by the old reader; a version-2 one resyncs after damage. Never throws
 * for damaged data, only for I/O errors.
 */
export async function scanSegment(file: LogFile, seg: Segment, o: ScanOptions): Promise<ScanResult> {
  const stat = await file.stat();
  const size = stat.size;
  seg.fileBytes = size;
  seg.newestMs = stat.mtimeMs;
  const head = Buffer.alloc(SEGMENT_HEADER_BYTES);
  const got = await readAt(file, head, Math.min(SEGMENT_HEADER_BYTES, size), 0);
  const result = emptyScan();
  if (got === 0) {
    seg.version = 2;
    seg.end = 0;
    // Only the segment appended to can be empty: a sealed one held records once.
    if (!o.last) result.regions.push('an empty sealed segment');
    return result;
  }
  if (head.subarray(0, got).equals(SEGMENT_HEADER.subarray(0, got))) {
    seg.version = 2;
    if (got === SEGMENT_HEADER_BYTES) return scanV2(file, seg, size, SEGMENT_HEADER_BYTES, o, result);
    // A header cut short: the segment was being created when the process stopped.
    seg.end = 0;
    if (o.last) {
      result.tornTailBytes = got;
      result.cutAt = 0;
    } else {
      result.tailDamageBytes = result.lostBytes = got;
      result.regions.push(`a segment header of ${got} bytes, cut short`);
    }
    return result;
  }
  if (got < 8) return scanV1(file, seg, o, result);
  if (plausibleV1Length(head.readUInt32LE(0))) {
    // Version 1, or a version-2 segment whose header was damaged into a plausible length. A
    // record with a marker and a matching header checksum does not occur in version 1 by chance
    // (a 1 in 2^64 match): when the file holds one, it is version 2.
    const trial = new Segment(seg.base, seg.path);
    trial.fileBytes = size;
    trial.newestMs = seg.newestMs;
    const v2 = await scanV2(file, trial, size, 0, o, emptyScan());
    if (trial.count === trial.corruptCount) return scanV1(file, seg, o, result);
    trial.version = 2;
    seg.adopt(trial);
    return v2;
  }
  // Neither format's start: a damaged segment header. Look for records all the same.
  seg.version = 2;
  return scanV2(file, seg, size, 0, o, result);
}

async function scanV1(file: LogFile, seg: Segment, o: ScanOptions, result: ScanResult): Promise<ScanResult> {
  seg.version = 1;
  const v1 = await scanV1Segment(file, seg, o.verify, o.chunkBytes);
  result.corruptRecords = v1.corruptRecords;
  for (let k = 0; k < seg.count; k++) if (seg.isCorrupt(k)) result.lostBytes += seg.endOf(k) - seg.offset(k);
  const tail = seg.fileBytes - seg.end;
  if (v1.damage !== undefined) {
    // Version 1 has no markers: nothing after the damage can be found again.
    result.tailDamageBytes = tail;
    result.lostBytes += tail;
    result.regions.push(v1.damage);
  } else if (v1.cutAt !== undefined) {
    if (o.last) result.tornTailBytes = tail;
    else {
      result.tailDamageBytes = tail;
      result.lostBytes += tail;
      result.regions.push(`the last ${tail} bytes of a sealed segment do not check`);
    }
  }
  if (o.last && v1.cutAt !== undefined) result.cutAt = v1.cutAt;
  return result;
}

/** A window of the file in memory: bytes [start, start + len). */
class Window {
  buf: Buffer;
  start = 0;
  len = 0;

  constructor(
    private readonly file: LogFile,
    public size: number,
    private readonly chunk: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(HEADER_BYTES, Math.min(chunk, size)));
  }

  /** Index in `buf` of byte `pos` with `n` bytes after it in memory; -1 when the file ends first. */
  async fill(pos: number, n: number): Promise<number> {
    const want = Math.min(Math.max(this.chunk, n, HEADER_BYTES), this.size - pos);
    if (this.buf.length < want) this.buf = Buffer.allocUnsafe(want);
    const got = await readAt(this.file, this.buf, want, pos);
    this.start = pos;
    this.len = got;
    if (got < want) this.size = pos + got; // the file shrank under us: scan what is there
    return got >= n ? 0 : -1;
  }

  at(pos: number, n: number): number | Promise<number> {
    return pos >= this.start && pos + n <= this.start + this.len ? pos - this.start : this.fill(pos, n);
  }
}

async function scanV2(file: LogFile, seg: Segment, size: number, from: number, o: ScanOptions, result: ScanResult): Promise<ScanResult> {
  const w = new Window(file, size, o.chunkBytes ?? SCAN_CHUNK_BYTES);
  let pos = from;
  let expected = seg.base;
  let newest = NaN;
  let end = from;
  /** The scan stopped at a record whose header checks but which the file does not hold whole. */
  let tornRecord = false;
  while (pos + HEADER_BYTES <= w.size) {
    let b = w.at(pos, HEADER_BYTES);
    if (typeof b !== 'number') b = await b;
    if (b < 0) break;
    const length = checkHeader(w.buf, b);
    if (length >= 0 && w.buf.readDoubleLE(b + 8) === expected) {
      const size = HEADER_BYTES + length;
      if (pos + size > w.size) {
        tornRecord = true;
        break;
      }
      const appendedAtMs = w.buf.readDoubleLE(b + 16);
      seg.push(pos);
      if (o.verify) {
        let r = w.at(pos, size);
        if (typeof r !== 'number') r = await r;
        if (r < 0) break;
        if (crc32(w.buf.subarray(r + HEADER_BYTES, r + size)) !== w.buf.readUInt32LE(r + 24)) {
          if (o.last && pos + size === w.size) {
            // The final record does not check: a torn last write.
            seg.count--;
            tornRecord = true;
            break;
          }
          seg.markCorrupt(seg.count - 1);
          result.corruptRecords++;
          result.lostBytes += size;
        } else newest = appendedAtMs;
      } else newest = appendedAtMs;
      expected++;
      pos += size;
      end = pos;
      continue;
    }
    const found = await resync(w, pos, expected);
    if (found === undefined) break;
    const gap = found.seq - expected;
    for (let i = 0; i < gap; i++) seg.pushLost(found.at);
    result.gapEvents += gap;
    result.lostBytes += found.at - pos;
    result.regions.push(
      `${found.at - pos} bytes at offset ${pos} do not frame; resynced at offset ${found.at}, ` +
        (gap > 0 ? `${gap} records lost (seqs ${expected}..${found.seq - 1})` : 'no record lost'),
    );
    expected = found.seq;
    pos = end = found.at;
  }
  seg.end = end;
  if (Number.isFinite(newest)) seg.newestMs = newest;
  const tail = w.size - end;
  if (tail > 0) {
    if (o.last && (tornRecord || (await tornWrite(w, end)))) result.tornTailBytes = tail;
    else {
      result.tailDamageBytes = tail;
      result.lostBytes += tail;
      result.regions.push(`${tail} bytes at offset ${end} to the end of the file do not frame; no record found in them`);
    }
    if (o.last) result.cutAt = end;
  }
  return result;
}

/**
 * The first offset after `damageAt` holding a record header whose marker and checksum match and
 * whose seq fits: at least `expected`, and no more than the damaged bytes could have held (each
 * record takes at least HEADER_BYTES). Undefined when the file holds none.
 */
async function resync(w: Window, damageAt: number, expected: number): Promise<{ at: number; seq: number } | undefined> {
  let c = damageAt + 1;
  while (c + HEADER_BYTES <= w.size) {
    const b = await w.at(c, HEADER_BYTES);
    if (b < 0) return undefined;
    const idx = w.buf.subarray(0, w.len).indexOf(RECORD_MAGIC_BYTES, b);
    if (idx < 0) {
      // Not in this window: go on from its last 3 bytes (a marker may straddle the edge).
      c = Math.max(c + 1, w.start + w.len - 3);
      continue;
    }
    const cand = w.start + idx;
    if (cand + HEADER_BYTES > w.size) return undefined;
    if (idx + HEADER_BYTES > w.len) {
      c = cand; // the header runs past the window: read on from it
      await w.fill(c, HEADER_BYTES);
      continue;
    }
    if (checkHeader(w.buf, idx) >= 0) {
      const seq = w.buf.readDoubleLE(idx + 8);
      if (Number.isInteger(seq) && seq >= expected && seq - expected <= Math.floor((cand - damageAt) / HEADER_BYTES))
        return { at: cand, seq };
    }
    c = cand + 1;
  }
  return undefined;
}

/**
 * Whether the unframed tail from `from` looks like a write cut short rather than damage: fewer
 * bytes than a header, or (blocks allocated but never written before a power loss) nothing but
 * zeros after less than a header's worth of bytes.
 */
async function tornWrite(w: Window, from: number): Promise<boolean> {
  if (w.size - from < HEADER_BYTES) return true;
  for (let pos = from + HEADER_BYTES; pos < w.size;) {
    const n = Math.min(SCAN_CHUNK_BYTES, w.size - pos);
    const b = await w.at(pos, n);
    if (b < 0) return true;
    for (let i = 0; i < n; i++) if (w.buf[b + i] !== 0) return false;
    pos += n;
  }
  // The first header's worth may hold a partial header: torn only when it is a prefix of one.
  const b = await w.at(from, HEADER_BYTES);
  if (b < 0) return true;
  const head = w.buf.subarray(b, b + HEADER_BYTES);
  const zeroAt = head.findLastIndex((x) => x !== 0) + 1;
  return (
    zeroAt === 0 ||
    (zeroAt >= 4
      ? head.readUInt32LE(0) === RECORD_MAGIC_BYTES.readUInt32LE(0)
      : head.subarray(0, zeroAt).equals(RECORD_MAGIC_BYTES.subarray(0, zeroAt)))
  );
}

/** What {@link recoverSegment} did to one segment file. */
export interface SegmentRecovery extends ScanResult {
  /** Set when unreadable bytes were cut from the last segment: appends must start at this seq or later. */
  skipTo?: number;
}

/**
 * Indexes one segment file at open and, for the last one (`last`), cuts off what cannot be
 * appended after: a torn tail, or unreadable bytes at its end. `keepCopy` runs before anything is
 * cut whenever the file is damaged (not for a torn tail alone).
 */
export async function recoverSegment(file: LogFile, seg: Segment, last: boolean, keepCopy: () => Promise<void>): Promise<SegmentRecovery> {
  const scan: SegmentRecovery = await scanSegment(file, seg, { verify: last, last });
  if (scan.regions.length > 0 || scan.corruptRecords > 0) await keepCopy();
  if (!last) return scan;
  if (scan.cutAt !== undefined) {
    await file.truncate(scan.cutAt);
    seg.fileBytes = scan.cutAt;
    // Acknowledged records may have been in the unreadable bytes, and consumers may be past them:
    // later appends start beyond every seq those bytes could have held (one per header's bytes).
    if (scan.tailDamageBytes > 0)
      scan.skipTo = seg.base + seg.count + Math.ceil(scan.tailDamageBytes / (seg.version === 1 ? V1_HEADER_BYTES : HEADER_BYTES));
  }
  if (seg.version === 2 && seg.fileBytes < SEGMENT_HEADER_BYTES && seg.fileBytes > 0) {
    // A segment header cut short: the next append writes it whole.
    await file.truncate(0);
    seg.fileBytes = seg.end = 0;
  }
  if (scan.cutAt !== undefined) await file.datasync();
  return scan;
}
