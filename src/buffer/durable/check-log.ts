import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CursorStore } from './cursor-store.js';
import { Segment } from './record-codec.js';
import { scanSegment } from './segment-scan.js';
import { SEGMENT_NAME } from './segment-log.js';

/** What `polku validate` found in one of the durable directory's logs. */
export interface LogCheck {
  name: 'events' | 'dead-letters';
  segments: number;
  /** Records whose checksum and sequence number check. */
  records: number;
  /** Records whose checksum or sequence number does not: skipped (and counted) when read. */
  corruptRecords: number;
  /** A partial last write (a crash mid-append); the gateway cuts it off at its next start. */
  tornTailBytes: number;
  /**
   * Acknowledged events lost to damage: corrupt records plus the seq gaps across damaged stretches
   * (a sealed segment's unreadable end: up to the next segment's first seq). Unreadable bytes at
   * the end of the last segment have no seq after them: see `unknownTailBytes`.
   */
  lostEvents: number;
  /** Bytes that are damaged (torn tail excluded). */
  lostBytes: number;
  /** Damaged stretches the reader skips. */
  skippedRegions: number;
  /** Unreadable bytes at the end of the last segment: at most one event per 32 of them. */
  unknownTailBytes: number;
  /** Segments in the format of an older gateway (read as they are). */
  legacySegments: number;
  /** The damaged segments, one entry each. */
  damagedSegments: SegmentDamage[];
  /** Unreadable stretches, with the segment and offset. */
  damage: string[];
}

/** What one damaged segment lost. */
export interface SegmentDamage {
  file: string;
  lostEvents: number;
  lostBytes: number;
  /** Records framed but whose checksum fails. */
  corruptRecords: number;
  /** Damaged stretches skipped. */
  skippedRegions: number;
}

export interface DurableDirCheck {
  dir: string;
  /** False when the directory does not exist yet (nothing was ever stored): not a problem. */
  exists: boolean;
  logs: LogCheck[];
  cursors: { emitters: Array<[string, number]>; corrupt: boolean };
  /** No corrupt record, no damage, cursors readable. A torn tail alone is normal after a crash. */
  healthy: boolean;
}

/**
 * Checks a durable directory without changing it: every record's checksum in every segment, the
 * torn tail a crash may have left, and the cursor file. Safe to run beside a running gateway
 * (it only reads), though records being appended meanwhile may show as a torn tail.
 */
export async function checkDurableDir(dir: string): Promise<DurableDirCheck> {
  let exists = true;
  const logs: LogCheck[] = [];
  for (const name of ['events', 'dead-letters'] as const) {
    const check = await checkLog(join(dir, name), name);
    if (check === undefined) exists = false;
    else logs.push(check);
  }
  // Only reads: a store that is never set writes nothing (not even its positions file).
  const store = await CursorStore.open(join(dir, 'cursors.json'));
  const cursors = { emitters: store.entries(), corrupt: store.recoveredFromCorruption };
  const healthy = !cursors.corrupt && logs.every((l) => l.corruptRecords === 0 && l.damage.length === 0 && l.lostBytes === 0);
  return { dir, exists: exists || logs.length > 0, logs, cursors, healthy };
}

async function checkLog(dir: string, name: LogCheck['name']): Promise<LogCheck | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const out: LogCheck = {
    name,
    segments: names.length,
    records: 0,
    corruptRecords: 0,
    tornTailBytes: 0,
    lostEvents: 0,
    lostBytes: 0,
    skippedRegions: 0,
    unknownTailBytes: 0,
    legacySegments: 0,
    damagedSegments: [],
    damage: [],
  };
  /** The previous (sealed) segment: seqs between its last record and the next segment's first are lost. */
  let openTail: { seg: Segment; entry: SegmentDamage } | undefined;
  for (const [k, file] of names.entries()) {
    const last = k === names.length - 1;
    const seg = new Segment(Number(SEGMENT_NAME.exec(file)![1]), join(dir, file));
    if (openTail !== undefined) {
      const gap = Math.max(0, seg.base - openTail.seg.base - openTail.seg.count);
      openTail.entry.lostEvents += gap;
      out.lostEvents += gap;
      if (gap > 0 && !out.damagedSegments.includes(openTail.entry)) {
        out.damagedSegments.push(openTail.entry);
        out.damage.push(`${openTail.entry.file}: ends ${gap} seq(s) before the next segment starts`);
      }
    }
    const handle = await open(seg.path, 'r');
    try {
      const scan = await scanSegment(handle, seg, { verify: true, last });
      if (seg.version === 1) out.legacySegments++;
      out.corruptRecords += scan.corruptRecords;
      out.records += seg.count - seg.corruptCount;
      out.tornTailBytes += scan.tornTailBytes;
      for (const r of scan.regions) out.damage.push(`${name}/${file}: ${r}`);
      const entry: SegmentDamage = {
        file: `${name}/${file}`,
        lostEvents: scan.corruptRecords + scan.gapEvents,
        lostBytes: scan.lostBytes,
        corruptRecords: scan.corruptRecords,
        skippedRegions: scan.regions.length,
      };
      out.lostEvents += entry.lostEvents;
      out.lostBytes += entry.lostBytes;
      out.skippedRegions += entry.skippedRegions;
      if (last) out.unknownTailBytes += scan.tailDamageBytes;
      if (entry.lostBytes > 0 || entry.skippedRegions > 0) out.damagedSegments.push(entry);
      openTail = last ? undefined : { seg, entry };
    } finally {
      await handle.close();
    }
  }
  return out;
}

/** The check as `polku validate` prints it. */
export function describeCheck(c: DurableDirCheck): string {
  if (!c.exists) return `  durable log: ${c.dir} (empty: nothing stored yet)`;
  const lines = [`  durable log: ${c.dir} — ${c.healthy ? 'OK' : 'DAMAGED'}`];
  for (const l of c.logs) {
    lines.push(
      `    ${l.name.padEnd(13)} ${l.segments} segment(s), ${l.records} records, ${l.corruptRecords} corrupt, torn tail ${l.tornTailBytes} bytes` +
        (l.tornTailBytes > 0 ? ' (cut off at the next start)' : ''),
    );
    if (l.lostEvents > 0 || l.lostBytes > 0 || l.legacySegments > 0)
      lines.push(
        `    ${''.padEnd(13)} lost ${l.lostEvents} events, ${l.lostBytes} bytes, ${l.skippedRegions} damaged stretch(es) skipped` +
          (l.unknownTailBytes > 0 ? `; ${l.unknownTailBytes} unreadable bytes at the end (events not countable)` : '') +
          (l.legacySegments > 0 ? `; ${l.legacySegments} segment(s) in the previous format` : ''),
      );
    for (const s of l.damagedSegments)
      lines.push(
        `      segment ${s.file}: lost ${s.lostEvents} events, ${s.lostBytes} bytes, ${s.corruptRecords} corrupt record(s), ${s.skippedRegions} stretch(es) skipped`,
      );
    for (const d of l.damage) lines.push(`      damage: ${d}`);
  }
  const positions = c.cursors.emitters.map(([e, s]) => `${e}@${s}`).join(', ');
  lines.push(
    !c.cursors.corrupt
      ? `    cursors       ${positions || '(none)'}`
      : positions === ''
        ? '    cursors       cursors.json does not check: emitters restart at the end of the log'
        : `    cursors       cursors.json does not check; cursors.pos holds ${positions}`,
  );
  return lines.join('\n');
}
