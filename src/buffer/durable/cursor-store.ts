import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { systemTimers, type TimerHandle, type Timers } from '../../clock.js';
import { crc32 } from './crc32.js';
import { PositionFile } from './cursor-positions.js';
import { StorageError } from './segment-log.js';
import { polkuError } from '../../errors.js';

/** How long after a cursor moves its new position is written to the positions file. */
export const DEFAULT_CURSOR_PERSIST_MS = 10;

export interface CursorStoreOptions {
  /**
   * A moved cursor is written to the positions file (`<name>.pos`, one pwrite) this many ms
   * later; moves meanwhile share the write. After a kill, an emitter resends at most what it
   * delivered in about this long (plus the batch it was sending). Default 10 ms.
   */
  persistEveryMs?: number;
  /** Default: real timers, unref'd. */
  timers?: Timers;
}

/**
 * Per-consumer positions ("emitter X has everything below seq N"), kept in memory and persisted
 * two ways. {@link CursorStore.flush} writes them all into one small file:
 *
 * ```json
 * {"version":1,"cursors":[["webhook",1234]],"crc32":305419896}
 * ```
 *
 * The checksum covers `JSON.stringify(cursors)`, so a flipped digit is caught, not just broken
 * JSON. A flush replaces the file atomically (write `<file>.tmp`, fdatasync, rename, fsync the
 * directory): after a crash the file holds either the old cursors or the new ones, never a mix.
 * That costs a rename and a directory fsync (a journal commit that the event log's own fdatasyncs
 * then wait behind), so it is done when names come or go and at shutdown, not as cursors move.
 *
 * Moves go to the positions file ({@link PositionFile}): `persistEveryMs` after a cursor moved,
 * one pwrite of every position; `checkpoint()` (once a second) fdatasyncs it. At open the two
 * files are merged, the higher position of each name winning: cursors only move forward.
 */
export class CursorStore {
  /** Files written so far (coalesced flushes share one). */
  flushCount = 0;
  private readonly cursors: Map<string, number>;
  private changes = 0;
  private flushedChanges = 0;
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** Moves of known cursors so far, and how many of them the positions file has. */
  private moves = 0;
  private positionedMoves = 0;
  /** A name came since the JSON file was last written (it alone records names), or positions did not fit a slot. */
  private namesChanged = false;
  private persistTimer: TimerHandle | undefined;
  private persisting: Promise<void> | undefined;
  /** The last positions write failed: reported by the next checkpoint(). */
  private positionError: unknown;
  private closed = false;
  private readonly persistEveryMs: number;
  private readonly timers: Timers;

  private constructor(
    private readonly file: string,
    cursors: Map<string, number>,
    /** The file existed but did not check (bad JSON, shape or checksum): the store started empty. */
    readonly recoveredFromCorruption: boolean,
    private readonly positions: PositionFile,
    options: CursorStoreOptions,
  ) {
    this.cursors = cursors;
    this.persistEveryMs = options.persistEveryMs ?? DEFAULT_CURSOR_PERSIST_MS;
    this.timers = options.timers ?? systemTimers;
  }

  /**
   * Loads `file` and its positions file. A missing file is an empty store; a corrupt one too,
   * flagged (the positions file may still bring the positions back). Throws only for I/O errors.
   */
  static async open(file: string, options: CursorStoreOptions = {}): Promise<CursorStore> {
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new StorageError('STORAGE_IO', `cannot read cursors from ${file}: ${(err as Error).message}`, { cause: err });
    }
    const parsed = text === undefined ? new Map<string, number>() : parse(text);
    const cursors = parsed ?? new Map<string, number>();
    const path = positionsFileOf(file);
    const { file: positions, loaded } = await PositionFile.open(path).catch((err: unknown) => {
      throw new StorageError('STORAGE_IO', `cannot read cursor positions from ${path}: ${(err as Error).message}`, { cause: err });
    });
    let namesChanged = false;
    for (const [name, seq] of loaded?.cursors ?? []) {
      const known = cursors.get(name);
      if (known === undefined) namesChanged = true;
      if (known === undefined || seq > known) cursors.set(name, seq);
    }
    const store = new CursorStore(file, cursors, parsed === undefined, positions, options);
    if (namesChanged) {
      // Names only the positions file knows: the next flush or checkpoint writes them to JSON.
      store.namesChanged = true;
      store.changes++;
    }
    return store;
  }

  /** The positions file's path (`cursors.json` → `cursors.pos`). */
  get positionsFile(): string {
    return positionsFileOf(this.file);
  }

  /** Writes of the positions file so far. */
  get positionWrites(): number {
    return this.positions.writes;
  }

  get(name: string): number | undefined {
    return this.cursors.get(name);
  }

  /** Sets a position in memory; a move is written to the positions file `persistEveryMs` later, a new name by {@link flush}. */
  set(name: string, seq: number): void {
    if (!Number.isFinite(seq)) throw polkuError('POLKU_ERR_OPTION_INVALID', `cursor ${name}: seq must be a finite number, got ${seq}`);
    const known = this.cursors.get(name);
    if (known === seq) return;
    this.cursors.set(name, seq);
    this.changes++;
    // A new name is for the JSON file (written at start and when an emitter is added); the
    // positions file takes moves, and is not even created before the first.
    if (known === undefined) this.namesChanged = true;
    else {
      this.moves++;
      this.schedulePositions();
    }
  }

  /**
   * For the maintenance timer: makes every position durable. When only positions moved, the
   * positions file is written (if a write is due) and fdatasynced; when names came, the JSON file
   * is rewritten. Rejects with StorageError, also for a positions write that failed since.
   */
  async checkpoint(): Promise<void> {
    const failed = this.positionError;
    this.positionError = undefined;
    if (failed !== undefined && !this.namesChanged) throw storageErrorOf(failed, `cannot write cursor positions to ${this.positionsFile}`);
    if (!this.namesChanged) {
      try {
        await this.persistPositions();
      } catch (err) {
        this.positionError = undefined; // reported here, not again by the next checkpoint
        throw err;
      }
    }
    if (this.namesChanged) return this.flush(); // also when the positions did not fit a slot
    try {
      await this.positions.sync();
    } catch (err) {
      throw storageErrorOf(err, `cannot sync cursor positions to ${this.positionsFile}`);
    }
  }

  /** Writes the JSON file (flush), then closes the positions file. Positions moved later are not persisted. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.persistTimer !== undefined) this.timers.clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    await this.persisting?.catch(() => undefined); // the JSON file written next holds every position
    try {
      await this.flush();
    } finally {
      await this.positions.close();
    }
  }

  private schedulePositions(): void {
    if (this.persistTimer !== undefined || this.persisting !== undefined || this.closed) return;
    this.persistTimer = this.timers.setTimeout(() => {
      this.persistTimer = undefined;
      this.persistPositions().catch((err: unknown) => (this.positionError = err));
    }, this.persistEveryMs);
  }

  /** One positions write at a time; moves made while it runs get the next one. */
  private persistPositions(): Promise<void> {
    if (this.persisting !== undefined) return this.persisting.then(() => this.persistPositions());
    if (this.moves === this.positionedMoves) return Promise.resolve();
    const upTo = this.moves;
    const run = this.positions.write([...this.cursors]).then(
      (written) => {
        this.persisting = undefined;
        this.positionedMoves = Math.max(this.positionedMoves, upTo);
        // Too many names for a slot: the JSON file, rewritten by the next checkpoint, holds them.
        if (!written) this.namesChanged = true;
        if (this.moves !== this.positionedMoves) this.schedulePositions();
      },
      (err: unknown) => {
        // No retry on a timer (a full disk would make it spin): the next move tries again.
        this.persisting = undefined;
        throw storageErrorOf(err, `cannot write cursor positions to ${this.positionsFile}`);
      },
    );
    this.persisting = run;
    return run;
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
    const names = this.namesChanged;
    this.namesChanged = false;
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
      this.namesChanged ||= names;
      throw storageErrorOf(err, `cannot write cursors to ${this.file}`);
    }
    this.flushedChanges = Math.max(this.flushedChanges, upTo);
    this.flushCount++;
  }
}

function positionsFileOf(file: string): string {
  return `${file.replace(/\.json$/, '')}.pos`;
}

function storageErrorOf(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new StorageError(full ? 'STORAGE_FULL' : 'STORAGE_IO', `${what}: ${(err as Error).message}`, { cause: err });
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
