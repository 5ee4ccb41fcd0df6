import type { DurableEmitterQueue } from './durable-emitter-queue.js';
import type { DeadLetter, DurableStore, StoredEvent } from '../buffer/durable/durable-store.js';
import type { DurableMetrics } from './durable-metrics.js';

export interface ReplayRequest {
  /** Receive time range, milliseconds since the epoch, inclusive. */
  fromMs: number;
  toMs: number;
  /** Only this emitter; default every emitter each event was routed to. */
  emitter?: string;
}

export interface ReplayReport {
  /** Events found in the range (per target emitter). */
  matched: number;
  delivered: number;
}

/** Events (or dead letters) read, and sent, at a time: a replay holds no more than this in memory. */
const READ_CHUNK = 4096;

/**
 * Operations on a durable hub's log: replay a time range, list, replay and purge dead letters.
 * Replays go through each emitter's own queue, so they take turns with live delivery and get the
 * same retries and dead-lettering.
 */
export class DurableAdmin {
  constructor(
    /** The log itself, for inspection (tools, tests); the operations here are the supported way. */
    readonly store: DurableStore,
    /** The running emitters' queues, which replays go through. */
    readonly queues: () => readonly DurableEmitterQueue[],
    private readonly metrics: DurableMetrics,
    private readonly chunk = READ_CHUNK,
  ) {}

  /** Re-sends the events received in a time range, a chunk at a time. */
  async replay(request: ReplayRequest): Promise<ReplayReport> {
    const byEmitter = this.groupQueues(request.emitter);
    const report: ReplayReport = { matched: 0, delivered: 0 };
    const end = this.store.nextSeq; // events accepted during the replay are not part of it
    for (let seq = this.store.log.firstSeq; seq < end;) {
      const chunk = await this.store.read(seq, Math.min(this.chunk, end - seq));
      if (chunk.length === 0) break;
      const picked = new Map<string, StoredEvent[]>();
      for (const s of chunk) {
        if (s.appendedAtMs < request.fromMs || s.appendedAtMs > request.toMs) continue;
        for (const target of s.targets) if (byEmitter.has(target)) pick(picked, target, s);
      }
      await this.send(picked, byEmitter, report);
      seq = chunk[chunk.length - 1]!.seq + 1;
    }
    return report;
  }

  listDeadLetters(limit?: number): Promise<Array<DeadLetter & { id: number }>> {
    return this.store.listDeadLetters(limit);
  }

  /** One dead letter, whole (its event with payload and metadata), or undefined. */
  inspectDeadLetter(id: number): Promise<(DeadLetter & { id: number }) | undefined> {
    return this.store.deadLetter(id);
  }

  /**
   * Sends every dead letter to its emitter again, then forgets the ones it sent. Those that fail
   * again become new dead letters (with new ids); letters for an emitter no longer in the pipeline
   * are written back as new dead letters unchanged. A crash part way leaves the old letters in
   * place, to be replayed again: a letter may be delivered twice, never lost.
   */
  async replayDeadLetters(): Promise<ReplayReport & { keptForMissingEmitter: number }> {
    const upTo = this.store.nextDeadLetterId; // letters written meanwhile (failing again) wait for the next replay
    const byEmitter = this.groupQueues(undefined);
    const report: ReplayReport = { matched: 0, delivered: 0 };
    let kept = 0;
    for (let id = 1; id < upTo;) {
      // Letters written since upTo (by live delivery, or this replay failing again) are not part of it.
      const letters = (await this.store.listDeadLetters(this.chunk, id)).filter((d) => d.id < upTo);
      if (letters.length === 0) break;
      const picked = new Map<string, StoredEvent[]>();
      const orphans: DeadLetter[] = [];
      for (const { id: _id, ...d } of letters) {
        if (byEmitter.has(d.emitter)) pick(picked, d.emitter, { seq: d.seq, appendedAtMs: d.deadAtMs, targets: d.targets, event: d.event });
        else orphans.push(d);
      }
      await this.send(picked, byEmitter, report);
      await this.store.addDeadLetters(orphans);
      kept += orphans.length;
      id = letters[letters.length - 1]!.id + 1;
    }
    await this.store.purgeDeadLetters(upTo);
    return { ...report, keptForMissingEmitter: kept };
  }

  purgeDeadLetters(): Promise<number> {
    return this.store.purgeDeadLetters();
  }

  hasEmitter(name: string): boolean {
    return this.queues().some((q) => q.name === name);
  }

  private groupQueues(only: string | undefined): Map<string, DurableEmitterQueue> {
    const map = new Map<string, DurableEmitterQueue>();
    for (const q of this.queues()) if (only === undefined || q.name === only) map.set(q.name, q);
    if (only !== undefined && map.size === 0) throw new Error(`no emitter named "${only}"`);
    return map;
  }

  /** Sends each emitter its picked events (emitters in parallel), adding to `report`. */
  private async send(picked: Map<string, StoredEvent[]>, queues: Map<string, DurableEmitterQueue>, report: ReplayReport): Promise<void> {
    await Promise.all(
      [...picked].map(async ([name, events]) => {
        const queue = queues.get(name);
        if (!queue) return; // an emitter no longer in the pipeline
        report.matched += events.length;
        const n = await queue.replay(events);
        report.delivered += n;
        this.metrics.replayed.inc({ emitter: name }, n);
      }),
    );
  }
}

function pick(picked: Map<string, StoredEvent[]>, emitter: string, event: StoredEvent): void {
  let list = picked.get(emitter);
  if (!list) picked.set(emitter, (list = []));
  list.push(event);
}
