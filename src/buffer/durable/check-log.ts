import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CursorStore } from './cursor-store.js';
import { scanSegment, Segment } from './record-codec.js';
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
  /** Unreadable stretches, with the segment and offset. */
  damage: string[];
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
  const store = await CursorStore.open(join(dir, 'cursors.json'));
  const cursors = { emitters: store.entries(), corrupt: store.recoveredFromCorruption };
  const healthy = !cursors.corrupt && logs.every((l) => l.corruptRecords === 0 && l.damage.length === 0);
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
  const out: LogCheck = { name, segments: names.length, records: 0, corruptRecords: 0, tornTailBytes: 0, damage: [] };
  for (const [k, file] of names.entries()) {
    const seg = new Segment(Number(SEGMENT_NAME.exec(file)![1]), join(dir, file));
    const handle = await open(seg.path, 'r');
    try {
      const scan = await scanSegment(handle, seg, true);
      out.corruptRecords += scan.corruptRecords;
      out.records += seg.count - scan.corruptRecords;
      if (scan.damage !== undefined) out.damage.push(`${name}/${file}: ${scan.damage}`);
      else if (scan.cutAt !== undefined && k < names.length - 1) {
        // Only the segment being appended to can be torn by a crash; a sealed one was complete.
        out.damage.push(`${name}/${file}: the last ${seg.fileBytes - scan.cutAt} bytes of a sealed segment do not check`);
      } else if (scan.cutAt !== undefined) out.tornTailBytes += seg.fileBytes - scan.cutAt;
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
    for (const d of l.damage) lines.push(`      damage: ${d}`);
  }
  lines.push(
    c.cursors.corrupt
      ? '    cursors       cursors.json does not check: emitters restart at the end of the log'
      : `    cursors       ${c.cursors.emitters.map(([e, s]) => `${e}@${s}`).join(', ') || '(none)'}`,
  );
  return lines.join('\n');
}
