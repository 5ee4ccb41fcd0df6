import { join } from 'node:path';
import type { Clock } from '../../clock.js';
import type { Event } from '../../gen/polku/v1/event.js';
import type { Logger } from '../../observability/logger.js';
import { CursorStore, DEFAULT_CURSOR_PERSIST_MS } from './cursor-store.js';
import { IdempotencyWindow } from './idempotency-window.js';
import type { WireEvents } from '../../ingest/wire-events.js';
import { decodeEventRecord, encodeEventRecord, EventRecords, idempotencyKeyOf, type EventRecordInput } from './event-record.js';
import { SegmentLog, StorageError, type RecoveryReport } from './segment-log.js';

export interface DurableOptions {
  /** Where the log, cursors and dead letters live (a hostPath in the chart). */
  dir: string;
  /** The log's size bound; when undelivered events fill it, new events are refused STORAGE_FULL. Default 1 GiB. */
  maxBytes?: number;
  /** Delivered events are kept for replay until they are older than this (or the log needs the room). Default 24 h. */
  maxAgeMs?: number;
  /** A resend of an accepted idempotency key within this window is acknowledged, not stored again. Default 10 min. */
  idempotencyWindowMs?: number;
  /**
   * Most idempotency keys remembered; the oldest go first. Default 200,000: at most about 17 MB of
   * typed arrays outside the JS heap (72–120 B a key, see IdempotencyWindow). At high rates
   * this, not the window, bounds how far back a resend is recognised (200,000 keys at 20k
   * events/s: 10 s).
   */
  idempotencyMaxKeys?: number;
  /** Attempts per event before it is dead-lettered. Default 10. */
  maxAttempts?: number;
  /** An event still failing retryably this long after it was accepted is dead-lettered. Default 1 h. */
  maxRetryAgeMs?: number;
  /**
   * Decoded recent events kept in memory, at most, for an emitter that fell behind; each is
   * released as soon as every emitter has read it. Default
   * 4,096 (two of an emitter's reads at the default batch size): an emitter that keeps up reads
   * an event within a commit or two of its arrival; a larger cache only keeps decoded events
   * (and the request buffers their payloads point into) alive longer. 20,000 cost 30–35 MB of
   * heap and 40–55 MB of peak RSS at full speed, for the same CPU per event (docs/benchmarks.md).
   */
  cacheEvents?: number;
  segmentBytes?: number;
  /**
   * A moved cursor is persisted (one pwrite of a small fixed-size slot) this many ms later, so
   * after a crash an emitter resends about this much delivery plus the batch it was sending.
   * Default 10 ms.
   */
  cursorPersistMs?: number;
  /** fdatasync before acknowledging. Only tests turn it off. Default true. */
  fsync?: boolean;
  /**
   * Batches one stream (StreamEvents, StreamK8sEvents) may have waiting for their commit at once:
   * the gateway reads a stream's next batches while earlier ones wait, so they share the next
   * group commit instead of the stream idling for each write. Acks still go out in order.
   * Default 4.
   */
  streamWindowBatches?: number;
  /**
   * Bytes (as received) of one stream's batches waiting for their commit, at most: reading stops at
   * this, whatever `streamWindowBatches` says (one batch always fits). Default 4 MiB.
   */
  streamWindowBytes?: number;
}

export const DURABLE_DEFAULTS = {
  maxBytes: 1024 * 1024 * 1024,
  maxAgeMs: 24 * 3600_000,
  idempotencyWindowMs: 10 * 60_000,
  idempotencyMaxKeys: 200_000,
  maxAttempts: 10,
  maxRetryAgeMs: 3600_000,
  cacheEvents: 4_096,
  cursorPersistMs: DEFAULT_CURSOR_PERSIST_MS,
  streamWindowBatches: 4,
  streamWindowBytes: 4 * 1024 * 1024,
} as const;

/** One event as delivery reads it back. */
export interface StoredEvent {
  readonly seq: number;
  readonly appendedAtMs: number;
  readonly targets: readonly string[];
  readonly event: Event;
}

/** A dead letter: an event an emitter gave up on, with why. */
export interface DeadLetter {
  readonly seq: number;
  readonly emitter: string;
  readonly reason: string;
  readonly attempts: number;
  readonly deadAtMs: number;
  readonly event: Event;
  readonly targets: readonly string[];
}

const DLQ_PURGED = 'dead-letters:purged-before';
/** DurableStore.lookup's answers besides a seq to check on disk (seqs start at 1). */
export const NOT_SEEN = -1;
export const SEEN = 0;
const utf8 = new TextEncoder();
const text = new TextDecoder();

/**
 * The durable side of the buffer: the event log (commit before ack), each emitter's cursor, the
 * idempotency window and the dead letters, under one directory.
 *
 * Cursors are persisted `cursorPersistMs` after they move (a pwrite into the positions file) and
 * fdatasynced by maintain(): after a kill an emitter may receive again what it got in the last
 * few ms and the batch it was sending; after a power loss, what it got since the last maintain().
 * That is the at-least-once duplicate window (documented).
 */
export class DurableStore {
  readonly o: Required<Omit<DurableOptions, 'segmentBytes' | 'fsync'>> & Pick<DurableOptions, 'segmentBytes' | 'fsync'>;
  /** Decoded recent events by position `seq - cacheFirst`; may have holes until commits land. */
  private cache: Array<StoredEvent | undefined> = [];
  /** The idempotency key each cached event was stored with, at the same positions. */
  private cacheKeys: string[] = [];
  private cacheFirst = 1;
  /**
   * Where each emitter reading the log now stands. Cached events below all of them are released
   * at once rather than when the cache is full: an emitter that keeps up reads an event within a
   * commit of its arrival, and events kept beyond that only outlive young-generation collections
   * (each one then copied, promoted and marked), which cost a durable gateway a sixth of its CPU.
   */
  private readonly readers = new Map<string, number>();
  /** Cached events below this seq are released (delivered by every reader). */
  private releasedBelow = 1;
  /** One past the highest seq known to be on disk: what delivery may read up to. */
  private committedNext = 1;
  /** Hashes of the idempotency keys accepted within the window, with the seq that carried each. */
  private readonly keys: IdempotencyWindow;
  /** The last append failed for lack of disk space (and none has succeeded since). */
  private diskFull = false;
  private corruptSkipped = 0;
  /** (nextSeq, time) samples taken by maintain(): which seqs are older than the age bound. */
  private readonly checkpoints: Array<[number, number]> = [];

  private constructor(
    options: DurableOptions,
    readonly log: SegmentLog,
    readonly deadLetters: SegmentLog,
    readonly cursors: CursorStore,
    readonly recovery: RecoveryReport,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.o = { ...DURABLE_DEFAULTS, ...options };
    this.keys = new IdempotencyWindow(this.o.idempotencyWindowMs, this.o.idempotencyMaxKeys);
    this.cacheFirst = log.nextSeq;
    this.committedNext = log.nextSeq;
    this.releasedBelow = log.nextSeq;
  }

  static async open(options: DurableOptions, clock: Clock, logger: Logger): Promise<DurableStore> {
    const log = logger.child({ component: 'durable-store' });
    const common = {
      clock,
      ...(options.segmentBytes ? { segmentBytes: options.segmentBytes } : {}),
      ...(options.fsync === false ? { fsync: false } : {}),
    };
    // Damaged segments are copied to <dir>/damaged/<log>/ before recovery cuts anything.
    const damagedDir = (name: string): string => join(options.dir, 'damaged', name);
    const events = await SegmentLog.open({ dir: join(options.dir, 'events'), damagedDir: damagedDir('events'), ...common });
    const dead = await SegmentLog.open({ dir: join(options.dir, 'dead-letters'), damagedDir: damagedDir('dead-letters'), ...common });
    const cursors = await CursorStore.open(join(options.dir, 'cursors.json'), {
      persistEveryMs: options.cursorPersistMs ?? DURABLE_DEFAULTS.cursorPersistMs,
    });
    const r = events.recovery;
    const damaged = r.tornTailBytes > 0 || r.lostBytes > 0 || r.corruptSegments.length > 0;
    (damaged ? log.error.bind(log) : log.info.bind(log))(
      { ...r, cursorsRecoveredFromCorruption: cursors.recoveredFromCorruption },
      r.lostBytes > 0
        ? `event log recovered with damage skipped: ${r.lostEvents} events and ${r.lostBytes} bytes lost in ${r.skippedRegions} damaged stretch(es)` +
            (r.unknownTailBytes > 0 ? `, ${r.unknownTailBytes} unreadable bytes at the end` : '')
        : damaged
          ? 'event log recovered with damage skipped'
          : 'event log opened',
    );
    const d = dead.recovery;
    if (d.lostBytes > 0)
      log.error(d, `dead-letter log recovered with damage skipped: ${d.lostEvents} dead letters and ${d.lostBytes} bytes lost`);
    const store = new DurableStore(options, events.log, dead.log, cursors, r, clock, logger);
    const rebuildStarted = clock.monotonicMs();
    await store.rebuildIdempotencyWindow();
    log.info(
      { keys: store.keys.size, durationMs: Math.round(clock.monotonicMs() - rebuildStarted) },
      'idempotency window rebuilt from the log',
    );
    return store;
  }

  /** One past the last committed (durable) event: delivery reads below it. */
  get nextSeq(): number {
    return this.committedNext;
  }

  /** Decoded events held in memory: committed, and not yet passed by every reader. */
  get cachedEvents(): number {
    let n = 0;
    for (let at = Math.max(0, this.releasedBelow - this.cacheFirst); at < this.cache.length; at++) if (this.cache[at] !== undefined) n++;
    return n;
  }

  /** Records skipped because their checksum failed (recovery plus reads). */
  get corruptRecords(): number {
    return this.recovery.corruptRecords + this.log.corruptRecordsRead + this.corruptSkipped;
  }

  /**
   * Acknowledged events lost to damage since start: found at open (seq gaps and corrupt records),
   * then records whose checksum fails when read, and records that do not decode.
   */
  get lostEvents(): number {
    return this.recovery.lostEvents + this.log.corruptRecordsRead + this.corruptSkipped;
  }

  /** Bytes of the log lost to damage since start (found at open, then on read). */
  get lostBytes(): number {
    return this.recovery.lostBytes + this.log.corruptBytesRead;
  }

  /**
   * Whether `key` was accepted within the window, so an event carrying it is a resend to
   * acknowledge rather than store: NOT_SEEN, SEEN, or (when only the disk can tell) the seq of the
   * record to check with `storedKeyIs`. The window holds key hashes; a match is confirmed against
   * the key stored with the event, from memory when the event is recent. Keys here and in
   * commit() come clipped to 255 UTF-8 bytes (clipUtf8), as stored. `hash`: the key's
   * {@link keyHash}, when the caller already made it.
   */
  lookup(key: string, hash?: number): number {
    if (key === '') return NOT_SEEN;
    const seq = this.keys.candidateOf(hash ?? this.keys.hash(key), this.clock.nowMs());
    if (seq < 0) return NOT_SEEN;
    const at = seq - this.cacheFirst;
    if (at >= 0 && this.cache[at] !== undefined) return this.cacheKeys[at] === key ? SEEN : NOT_SEEN;
    return seq;
  }

  /** The idempotency window's hash of `key`: pass it to lookup() and as the entry's `keyHash` to commit(). */
  keyHash(key: string): number {
    return this.keys.hash(key);
  }

  /**
   * Whether the record at `seq` carries idempotency key `key`. A record gone (deleted for room)
   * or unreadable answers false: the event is stored again, a duplicate rather than a loss.
   */
  async storedKeyIs(seq: number, key: string): Promise<boolean> {
    try {
      const [record] = await this.log.read(seq, 1);
      return record?.seq === seq && idempotencyKeyOf(record.payload) === key;
    } catch (err) {
      this.logger.warn({ seq, err }, 'could not read a record to check an idempotency key; the event is stored again');
      return false;
    }
  }

  /**
   * Commits events to the log; resolves once they are on disk. Rejects with a StorageError
   * (STORAGE_FULL when the disk or the log's bound is full).
   */
  async commit(entries: readonly EventRecordInput[], wire?: WireEvents): Promise<void> {
    let first: number;
    try {
      first = await this.log.append(new EventRecords(entries, wire));
    } catch (err) {
      if (err instanceof StorageError && err.code === 'STORAGE_FULL') this.diskFull = true;
      throw err;
    }
    this.diskFull = false;
    const now = this.clock.nowMs();
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.key !== '') this.keys.addHash(e.keyHash ?? this.keys.hash(e.key), first + i, now);
      const at = first + i - this.cacheFirst;
      if (at >= 0) {
        this.cache[at] = { seq: first + i, appendedAtMs: now, targets: e.targets, event: e.event };
        this.cacheKeys[at] = e.key;
      }
    }
    this.committedNext = Math.max(this.committedNext, first + entries.length);
    this.trimCache(first);
  }

  /** Up to `limit` events from `fromSeq` on, from memory when recent, else from disk. */
  async read(fromSeq: number, limit: number): Promise<StoredEvent[]> {
    if (fromSeq >= this.cacheFirst && this.cache[fromSeq - this.cacheFirst] !== undefined) {
      const out: StoredEvent[] = [];
      for (let seq = fromSeq; out.length < limit && seq < this.committedNext; seq++) {
        const s = this.cache[seq - this.cacheFirst];
        if (s === undefined) break; // a hole: a commit still landing; the rest comes next read
        out.push(s);
      }
      return out;
    }
    limit = Math.min(limit, this.committedNext - fromSeq);
    if (limit <= 0) return [];
    const records = await this.log.read(fromSeq, limit);
    const out: StoredEvent[] = [];
    for (const r of records) {
      try {
        const { targets, event } = decodeEventRecord(r.payload);
        out.push({ seq: r.seq, appendedAtMs: r.appendedAtMs, targets, event });
      } catch (err) {
        this.corruptSkipped++;
        this.logger.error({ seq: r.seq, err }, 'event record does not decode; skipped');
      }
    }
    return out;
  }

  cursor(emitter: string): number | undefined {
    return this.cursors.get(emitter);
  }

  setCursor(emitter: string, seq: number): void {
    this.cursors.set(emitter, seq);
    if (this.readers.has(emitter)) {
      this.readers.set(emitter, seq);
      this.releaseDelivered();
    }
  }

  /** `emitter` reads the log from `seq` on: cached events at and after it stay until it moves past them. */
  openReader(emitter: string, seq: number): void {
    this.readers.set(emitter, seq);
  }

  /** `emitter` stopped reading (removed, retired, shut down): its position holds nothing in memory. */
  closeReader(emitter: string): void {
    if (this.readers.delete(emitter)) this.releaseDelivered();
  }

  /** Releases the cached events every reader has passed. */
  private releaseDelivered(): void {
    let below = this.committedNext;
    for (const seq of this.readers.values()) if (seq < below) below = seq;
    const end = Math.min(below - this.cacheFirst, this.cache.length);
    for (let at = Math.max(0, this.releasedBelow - this.cacheFirst); at < end; at++) {
      this.cache[at] = undefined;
      this.cacheKeys[at] = '';
    }
    if (below > this.releasedBelow) this.releasedBelow = below;
  }

  async addDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.deadLetters.append(letters.map(encodeDeadLetter));
  }

  /** Dead letters not purged, oldest first, from id `fromId` on. */
  async listDeadLetters(limit = 1000, fromId = 1): Promise<Array<DeadLetter & { id: number }>> {
    const from = Math.max(this.cursors.get(DLQ_PURGED) ?? 1, this.deadLetters.firstSeq, fromId);
    const records = await this.deadLetters.read(from, limit);
    return records.map((r) => ({ ...decodeDeadLetter(r.payload), id: r.seq }));
  }

  /** One dead letter by id, or undefined when there is none (never was, or purged). */
  async deadLetter(id: number): Promise<(DeadLetter & { id: number }) | undefined> {
    const from = Math.max(this.cursors.get(DLQ_PURGED) ?? 1, this.deadLetters.firstSeq);
    if (!Number.isSafeInteger(id) || id < from || id >= this.deadLetters.nextSeq) return undefined;
    const [record] = await this.deadLetters.read(id, 1);
    return record?.seq === id ? { ...decodeDeadLetter(record.payload), id } : undefined;
  }

  /** The id the next dead letter will get: purging before it forgets every one so far. */
  get nextDeadLetterId(): number {
    return this.deadLetters.nextSeq;
  }

  /** Forgets the dead letters with ids below `before` (default: all so far); returns how many. */
  async purgeDeadLetters(before = this.deadLetters.nextSeq): Promise<number> {
    const from = Math.max(this.cursors.get(DLQ_PURGED) ?? 1, this.deadLetters.firstSeq);
    const upTo = Math.min(before, this.deadLetters.nextSeq);
    if (upTo <= from) return 0;
    this.cursors.set(DLQ_PURGED, upTo);
    await this.cursors.flush();
    await this.deadLetters.deleteBefore(upTo);
    return upTo - from;
  }

  /**
   * Housekeeping, run on a timer: make cursors durable, then delete log segments every emitter is done
   * with once they are past the age bound or the log needs room.
   */
  async maintain(emitters: readonly string[]): Promise<void> {
    // On a full disk the cursor file cannot be rewritten; delivered segments must still go, or the
    // disk never frees. Deleting below cursors not yet persisted is safe: after a crash an emitter
    // resumes at the log's first event, past events it had delivered anyway.
    const flushed = await this.cursors.checkpoint().then(
      () => undefined,
      (err: unknown) => err,
    );
    const now = this.clock.nowMs();
    this.checkpoints.push([this.log.nextSeq, now]);
    const done = Math.min(...emitters.map((e) => this.cursors.get(e) ?? this.committedNext), this.committedNext);
    // Delivered events stay for replay until they are old, or until the log (or its disk) needs
    // their room.
    const needsRoom = this.log.bytes > this.o.maxBytes || this.diskFull;
    const below = needsRoom ? done : Math.min(done, this.seqOlderThan(now - this.o.maxAgeMs));
    if (below > this.log.firstSeq) await this.log.deleteBefore(below);
    while (this.checkpoints.length > 1 && this.checkpoints[1]![1] < now - this.o.maxAgeMs) this.checkpoints.shift();
    this.keys.expire(now);
    if (flushed !== undefined) throw flushed instanceof Error ? flushed : new Error(String(flushed));
  }

  /** Whether the log has room for more (undelivered events may not be deleted to make it). */
  get full(): boolean {
    return this.log.bytes >= this.o.maxBytes;
  }

  async close(): Promise<void> {
    await this.cursors.close();
    await this.log.close();
    await this.deadLetters.close();
  }

  /** Every seq below the returned one was appended before `cutoffMs` (as far as samples tell). */
  private seqOlderThan(cutoffMs: number): number {
    let seq = 0;
    for (const [next, at] of this.checkpoints) {
      if (at > cutoffMs) break;
      seq = next;
    }
    return seq;
  }

  /** `keepFrom`: the first seq of the commit just made, which no reader can have read yet. */
  private trimCache(keepFrom: number): void {
    // Released entries (every reader past them) and those beyond cacheEvents go, in steps of a
    // quarter of the cache, not at every commit: each splice moves every entry left, and commits
    // come hundreds of times a second. The commit just made stays whole however large it is (with
    // several batches per stream waiting, one group can hold more than cacheEvents): its events
    // were in memory anyway until now, and trimming them would send every emitter to the disk for
    // events it was about to read.
    const unreleased = Math.min(this.cache.length - this.o.cacheEvents, keepFrom - this.cacheFirst);
    const excess = Math.min(this.cache.length, Math.max(unreleased, this.releasedBelow - this.cacheFirst));
    if (excess > 0 && excess >= this.o.cacheEvents / 4) {
      this.cache.splice(0, excess);
      this.cacheKeys.splice(0, excess);
      this.cacheFirst += excess;
    }
  }

  /**
   * Reads the keys of events accepted within the window, so a restart keeps suppressing resends.
   * Only the last `idempotencyMaxKeys` events can still be in a full window, so reading starts
   * there: a restart with a million events in the log reads a fifth of them by default.
   */
  private async rebuildIdempotencyWindow(): Promise<void> {
    const cutoff = this.clock.nowMs() - this.o.idempotencyWindowMs;
    let seq = Math.max(this.log.firstSeq, this.log.nextSeq - this.o.idempotencyMaxKeys);
    while (seq < this.log.nextSeq) {
      const records = await this.log.read(seq, 4096);
      if (records.length === 0) break;
      for (const r of records) {
        if (r.appendedAtMs >= cutoff) {
          const key = idempotencyKeyOf(r.payload);
          if (key !== '') this.keys.add(key, r.seq, r.appendedAtMs);
        }
      }
      seq = records[records.length - 1]!.seq + 1;
    }
  }
}

function encodeDeadLetter(d: DeadLetter): Uint8Array {
  const head = utf8.encode(
    JSON.stringify({ seq: d.seq, emitter: d.emitter, reason: d.reason, attempts: d.attempts, deadAtMs: d.deadAtMs }),
  );
  const body = encodeEventRecord(d.event, d.targets, '');
  const out = new Uint8Array(4 + head.length + body.length);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  out.set(body, 4 + head.length);
  return out;
}

function decodeDeadLetter(payload: Uint8Array): DeadLetter {
  const len = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
  const head = JSON.parse(text.decode(payload.subarray(4, 4 + len))) as Omit<DeadLetter, 'event' | 'targets'>;
  const { event, targets } = decodeEventRecord(payload.subarray(4 + len));
  return { ...head, event, targets };
}
