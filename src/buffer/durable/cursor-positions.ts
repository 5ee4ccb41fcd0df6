import { constants } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { crc32 } from './crc32.js';

/** Each of the file's two slots holds at most this many bytes (header included). */
export const POSITION_SLOT_BYTES = 64 * 1024;
const MAGIC = 0x50435552; // "PCUR"
/** [u32 magic][u32 payload length][f64 generation][u32 CRC-32 of payload][u32 CRC-32 of the 20 bytes before] */
const HEADER_BYTES = 24;

/** What one valid slot holds. */
export interface Positions {
  readonly generation: number;
  readonly cursors: ReadonlyArray<readonly [string, number]>;
}

/**
 * The cursors' fast path: a file of two fixed-size slots, overwritten in place in turn with one
 * `pwrite` each (no temp file, no rename, no directory fsync), so persisting the cursors after
 * every delivered batch costs one small write. Each slot carries a generation and two checksums;
 * a write torn by a crash spoils only the slot it was writing, and the other still holds the
 * previous positions. Page-cache writes survive a killed process; `sync` (run on the durable
 * store's maintenance timer) makes them survive a power loss too.
 *
 * The names are those of {@link CursorStore}'s JSON file; this file only ever moves them forward.
 */
export class PositionFile {
  /** Slot writes so far. */
  writes = 0;
  private generation: number;
  private unsynced = false;
  private handle: FileHandle | undefined;

  private constructor(
    private readonly path: string,
    loaded: Positions | undefined,
  ) {
    this.generation = loaded?.generation ?? 0;
  }

  /** Reads `path` (a missing or unreadable file holds nothing); the newest valid slot is returned as `loaded`. */
  static async open(path: string): Promise<{ file: PositionFile; loaded: Positions | undefined }> {
    let bytes: Buffer | undefined;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const loaded = bytes === undefined ? undefined : newestSlot(bytes);
    return { file: new PositionFile(path, loaded), loaded };
  }

  /**
   * Writes `cursors` over the older slot. False (nothing written) when they do not fit in a slot:
   * the JSON file alone holds them then. Rejects with the file system's error.
   */
  async write(cursors: ReadonlyArray<readonly [string, number]>): Promise<boolean> {
    const payload = Buffer.from(JSON.stringify(cursors));
    if (HEADER_BYTES + payload.length > POSITION_SLOT_BYTES) return false;
    const generation = this.generation + 1;
    const buf = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(payload.length, 4);
    buf.writeDoubleLE(generation, 8);
    buf.writeUInt32LE(crc32(payload), 16);
    buf.writeUInt32LE(crc32(buf.subarray(0, 20)), 20);
    payload.copy(buf, HEADER_BYTES);
    // Created if missing, never truncated, and without O_APPEND: writes go where they are told.
    this.handle ??= await open(this.path, constants.O_RDWR | constants.O_CREAT);
    const at = (generation % 2) * POSITION_SLOT_BYTES;
    for (let done = 0; done < buf.length;) {
      const { bytesWritten } = await this.handle.write(buf, done, buf.length - done, at + done);
      if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      done += bytesWritten;
    }
    this.generation = generation;
    this.unsynced = true;
    this.writes++;
    return true;
  }

  /** fdatasync of what was written since the last sync (nothing when there was none). */
  async sync(): Promise<void> {
    if (!this.unsynced || this.handle === undefined) return;
    this.unsynced = false;
    try {
      await this.handle.datasync();
    } catch (err) {
      this.unsynced = true;
      throw err;
    }
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h === undefined) return;
    try {
      if (this.unsynced) await h.datasync();
      this.unsynced = false;
    } finally {
      await h.close();
    }
  }
}

/** The valid slot with the highest generation, if any. */
function newestSlot(bytes: Buffer): Positions | undefined {
  let best: Positions | undefined;
  for (let at = 0; at + HEADER_BYTES <= bytes.length; at += POSITION_SLOT_BYTES) {
    const slot = parseSlot(bytes, at);
    if (slot !== undefined && (best === undefined || slot.generation > best.generation)) best = slot;
  }
  return best;
}

function parseSlot(bytes: Buffer, at: number): Positions | undefined {
  if (bytes.readUInt32LE(at) !== MAGIC) return undefined;
  if (bytes.readUInt32LE(at + 20) !== crc32(bytes.subarray(at, at + 20))) return undefined;
  const length = bytes.readUInt32LE(at + 4);
  const end = at + HEADER_BYTES + length;
  if (HEADER_BYTES + length > POSITION_SLOT_BYTES || end > bytes.length) return undefined;
  const payload = bytes.subarray(at + HEADER_BYTES, end);
  if (bytes.readUInt32LE(at + 16) !== crc32(payload)) return undefined;
  const generation = bytes.readDoubleLE(at + 8);
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(doc)) return undefined;
  const cursors: Array<[string, number]> = [];
  for (const entry of doc as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) return undefined;
    const [name, seq] = entry as [unknown, unknown];
    if (typeof name !== 'string' || typeof seq !== 'number' || !Number.isFinite(seq)) return undefined;
    cursors.push([name, seq]);
  }
  return { generation, cursors };
}
