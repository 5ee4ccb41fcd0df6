import type { DurableMetrics } from './durable-metrics.js';
import { NOT_SEEN, SEEN, type DurableStore } from '../buffer/durable/durable-store.js';
import { clipUtf8, type EventRecordInput } from '../buffer/durable/event-record.js';
import { StorageError } from '../buffer/durable/segment-log.js';
import type { Event } from '../gen/polku/v1/event.js';
import { hasClientId } from '../ingest/assigned-ids.js';
import type { WireEvents } from '../ingest/wire-events.js';
import type { Logger } from '../observability/logger.js';
import type { BatchOutcome } from '../hub/batch-outcome.js';
import { DurableBatchKeys } from './durable-batch-keys.js';
// An event's idempotency key is this metadata value when present, else its client id.
import { IDEMPOTENCY_KEY } from '../metadata-keys.js';

/** One batch's events on their way into the log, and what the hub needs to hear back. */
export interface DurableBatch {
  readonly events: readonly Event[];
  readonly out: BatchOutcome;
  /** The emitters an event is routed to; none: the event is refused UNROUTABLE. */
  readonly targetsOf: (event: Event) => ReadonlyArray<{ readonly name: string }>;
  /** Called for each event refused with a retryable code once middleware had let it through. */
  readonly refusedLater: (event: Event) => void;
  readonly wire?: WireEvents | undefined;
  /** Each event's position in `wire`'s batch when its wire bytes may be stored for it. */
  readonly wireAt?: readonly number[] | undefined;
}

/** A durable event repeating the idempotency key of an earlier entry of its batch. */
interface Repeat {
  readonly event: Event;
  readonly first: EventRecordInput;
}

/**
 * Durable admission: routes each event, acknowledges resends of idempotency keys accepted within
 * the window without storing them again, and commits the rest to the log; the Ack lists an event
 * only once it is on disk (or, for a resend, already was).
 *
 * A key the window matches is confirmed against the key stored with that event (the window keeps
 * hashes): at once when the event is still in memory, else by reading its record. An event
 * repeating a key earlier in its own batch shares that event's fate.
 */
export class DurableIntake {
  private lastTargets: ReadonlyArray<{ readonly name: string }> | null = null;
  private lastNames: readonly string[] = [];
  /** Key → the entry that carries it in the batch being admitted, or null once acknowledged as a resend. */
  private readonly batchKeys = new DurableBatchKeys();

  constructor(
    private readonly store: DurableStore,
    private readonly metrics: DurableMetrics,
    private readonly log: Logger,
  ) {}

  /** Settles every event of the batch in `out`; true (or a promise of it) when any was stored. */
  admit(b: DurableBatch): boolean | Promise<boolean> {
    const out = b.out;
    const store = this.store;
    const entries: EventRecordInput[] = [];
    const batchKeys = this.batchKeys;
    batchKeys.start(b.events.length);
    // Later events of this batch repeating an entry's key: they share that entry's fate.
    let repeats: Repeat[] | undefined;
    // Keys the window matched that only the record at `seq` can confirm.
    let unconfirmed: Array<{ entry: EventRecordInput; seq: number }> | undefined;
    for (let i = 0; i < b.events.length; i++) {
      const event = b.events[i]!;
      const targets = b.targetsOf(event);
      if (targets.length === 0) {
        out.refuse(event.id, 'UNROUTABLE', `no emitter named ${JSON.stringify(event.routeTo)}`);
        continue;
      }
      // Clipped here, once: the window compares and the log stores keys clipped.
      const key = clipUtf8(event.metadata[IDEMPOTENCY_KEY] ?? (hasClientId(event) ? event.id : ''));
      let known = NOT_SEEN;
      // The window's hash of the key: made once, for the batch, the window lookup and the commit.
      let keyHash = 0;
      if (key !== '') {
        keyHash = store.keyHash(key);
        const first = batchKeys.get(key, keyHash);
        if (first) {
          (repeats ??= []).push({ event, first });
          continue;
        }
        known = first === null ? SEEN : store.lookup(key, keyHash);
        if (known === SEEN) {
          if (first === undefined) batchKeys.set(key, keyHash, null);
          this.acceptResend(out, event);
          continue;
        }
      }
      if (store.full) {
        out.refuse(event.id, 'STORAGE_FULL', 'the durable log is full of undelivered events');
        b.refusedLater(event);
        continue;
      }
      const entry: EventRecordInput = { event, targets: this.namesOf(targets), key, keyHash, wireAt: b.wireAt ? b.wireAt[i]! : -1 };
      if (key !== '') batchKeys.set(key, keyHash, entry);
      if (known !== NOT_SEEN) (unconfirmed ??= []).push({ entry, seq: known });
      entries.push(entry);
    }
    if (unconfirmed === undefined) return this.commit(b, entries, repeats);
    return this.confirmResends(unconfirmed).then((resent) => {
      for (const e of resent) this.acceptResend(out, e.event);
      const kept: Repeat[] = [];
      for (const r of repeats ?? []) {
        if (resent.has(r.first)) this.acceptResend(out, r.event);
        else kept.push(r);
      }
      return this.commit(
        b,
        entries.filter((e) => !resent.has(e)),
        kept,
      );
    });
  }

  /**
   * The names of `targets`. The router hands out the same array for the same route, and nearly
   * every event of a pipeline takes the same one, so the last answer is kept rather than mapped
   * again per event (the array is shared by the records, which never change it).
   */
  private namesOf(targets: ReadonlyArray<{ readonly name: string }>): readonly string[] {
    if (targets !== this.lastTargets) {
      this.lastTargets = targets;
      this.lastNames = targets.map((q) => q.name);
    }
    return this.lastNames;
  }

  /** Already stored: acknowledging it again is what makes resends safe. */
  private acceptResend(out: BatchOutcome, event: Event): void {
    out.accept(event.id);
    this.metrics.idempotentResends.inc();
  }

  /** The entries whose keys the records the window pointed at really carry: resends. */
  private async confirmResends(unconfirmed: ReadonlyArray<{ entry: EventRecordInput; seq: number }>): Promise<Set<EventRecordInput>> {
    const resent = new Set<EventRecordInput>();
    for (const { entry, seq } of unconfirmed) if (await this.store.storedKeyIs(seq, entry.key)) resent.add(entry);
    return resent;
  }

  private commit(
    b: DurableBatch,
    entries: readonly EventRecordInput[],
    repeats: readonly Repeat[] | undefined,
  ): boolean | Promise<boolean> {
    const out = b.out;
    if (entries.length === 0) return false;
    return this.store.commit(entries, b.wire).then(
      () => {
        for (const e of entries) out.accept(e.event.id);
        if (repeats) for (const r of repeats) this.acceptResend(out, r.event);
        return true;
      },
      (err: unknown) => {
        const full = err instanceof StorageError && err.code === 'STORAGE_FULL';
        const code = full ? 'STORAGE_FULL' : 'STORAGE_ERROR';
        if (!full) this.log.error({ err }, 'durable log write failed');
        const message = full ? 'no space left for the durable log' : `durable log write failed: ${String(err)}`;
        for (const e of entries) {
          out.refuse(e.event.id, code, message);
          b.refusedLater(e.event);
        }
        // A repeat of a key whose first event was not stored must not be acknowledged as stored.
        if (repeats) {
          for (const r of repeats) {
            out.refuse(r.event.id, code, message);
            b.refusedLater(r.event);
          }
        }
        return false;
      },
    );
  }
}
