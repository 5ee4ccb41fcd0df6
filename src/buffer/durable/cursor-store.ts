import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from './crc32.js';
import { StorageError } from './segment-log.js';
import { polkuError } from '../../errors.js';

/**
 * Per-consumer positions ("emitter X has everything below seq N"), kept in memory and persisted
 * by {@link CursorStore.flush} into one small file:
 *
 * ```json
 * {"version":1,"cursors":[["webhook",1234]],"crc32":305419896}
 * ```
 *
 * The checksum covers `JSON.stringify(cursors)`, so a flipped digit is caught, not just broken
 * JSON. A flush replaces the file atomically (write `<file>.tmp`, fdatasync, rename, fsync the
 * directory): after a crash the file holds either the old cursors or the new ones, never a mix.
 */
export class CursorStore {
  /** Files written so far (coalesced flushes share one). */
  flushCount = 0;
  private readonly cursors: Map<string, number>;
  private changes = 0;
  private flushedChanges = 0;
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  private constructor(
    private readonly file: string,
    cursors: Map<string, number>,
    /** The file existed but did not check (bad JSON, shape or checksum): the store started empty. */
    readonly recoveredFromCorruption: boolean,
  ) {
    this.cursors = cursors;
  }

  /** Loads `file`. A missing file is an empty store; a corrupt one too, flagged. Throws only for I/O errors. */
  static async open(file: string): Promise<CursorStore> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new CursorStore(file, new Map(), false);
      throw new StorageError('STORAGE_IO', `cannot read cursors from ${file}: ${(err as Error).message}`, { cause: err });
    }
    const cursors = parse(text);
    return new CursorStore(file, cursors ?? new Map(), cursors === undefined);
  }

  get(name: string): number | undefined {
    return this.cursors.get(name);
  }

  /** Sets a position in memory; {@link flush} persists it. */
  set(name: string, seq: number): void {
    if (!Number.isFinite(seq)) throw polkuError('POLKU_ERR_OPTION_INVALID', `cursor ${name}: seq must be a finite number, got ${seq}`);
    if (this.cursors.get(name) === seq) return;
    this.cursors.set(name, seq);
    this.changes++;
  }

  entries(): Array<[string, number]> {
    return [...this.cursors];
  }

  /**
   * Persists the cursors as they are now. One write at a time: calls made while one runs share a
   * single follow-up write. Resolves at once when nothing changed since the last write.
   * Rejects with StorageError (STORAGE_FULL or STORAGE_IO); the previous file stays intact.
   */
  flush(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    if (this.inFlight === undefined) return this.start();
    const queued = this.inFlight
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    this.queued = queued;
    return queued;
  }

  private start(): Promise<void> {
    if (this.changes === this.flushedChanges) return Promise.resolve();
    const run = this.write().finally(() => {
      if (this.inFlight === run) this.inFlight = undefined;
    });
    this.inFlight = run;
    return run;
  }

  private async write(): Promise<void> {
    const upTo = this.changes;
    const entries = [...this.cursors];
    const body = JSON.stringify(entries);
    const text = `{"version":1,"cursors":${body},"crc32":${crc32(Buffer.from(body))}}\n`;
    const tmp = `${this.file}.tmp`;
    try {
      const f = await open(tmp, 'w');
      try {
        await f.writeFile(text, 'utf8');
        await f.datasync();
      } finally {
        await f.close();
      }
      await rename(tmp, this.file);
      const dir = await open(dirname(this.file), 'r');
      await dir.sync().finally(() => dir.close());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const full = code === 'ENOSPC' || code === 'EDQUOT';
      throw new StorageError(full ? 'STORAGE_FULL' : 'STORAGE_IO', `cannot write cursors to ${this.file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.flushedChanges = Math.max(this.flushedChanges, upTo);
    this.flushCount++;
  }
}

/** The cursors in `text`, or undefined when it is not a file we wrote intact. */
function parse(text: string): Map<string, number> | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const { version, cursors, crc32: sum } = doc as { version?: unknown; cursors?: unknown; crc32?: unknown };
  if (version !== 1 || !Array.isArray(cursors)) return undefined;
  if (sum !== crc32(Buffer.from(JSON.stringify(cursors)))) return undefined;
  const out = new Map<string, number>();
  for (const entry of cursors as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) return undefined;
    const [name, seq] = entry as [unknown, unknown];
    if (typeof name !== 'string' || typeof seq !== 'number' || !Number.isFinite(seq)) return undefined;
    out.set(name, seq);
  }
  return out;
}
