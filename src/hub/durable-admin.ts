import type { DurableEmitterQueue } from '../buffer/durable/durable-emitter-queue.js';
import type { DeadLetter, DurableStore, StoredEvent } from '../buffer/durable/durable-store.js';
import type { DurableMetrics } from '../buffer/durable/durable-metrics.js';

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

const READ_CHUNK = 4096;

/**
 * Operations on a durable hub's log: replay a time range, list, replay and purge dead letters.
 * Replays go through each emitter's own queue, so they take turns with live delivery and get the
 * same retries and dead-lettering.
 */
export class DurableAdmin {
  constructor(
    private readonly store: DurableStore,
    private readonly queues: () => readonly DurableEmitterQueue[],
    private readonly metrics: DurableMetrics,
  ) {}

  async replay(request: ReplayRequest): Promise<ReplayReport> {
    const byEmitter = this.groupQueues(request.emitter);
    const picked = new Map<string, StoredEvent[]>();
    for (let seq = this.store.log.firstSeq; seq < this.store.nextSeq; ) {
      const chunk = await this.store.read(seq, READ_CHUNK);
      if (chunk.length === 0) break;
      for (const s of chunk) {
        if (s.appendedAtMs < request.fromMs || s.appendedAtMs > request.toMs) continue;
        for (const target of s.targets) {
          if (!byEmitter.has(target)) continue;
          let list = picked.get(target);
          if (!list) picked.set(target, (list = []));
          list.push(s);
        }
      }
      seq = chunk[chunk.length - 1]!.seq + 1;
    }
    return this.send(picked, byEmitter);
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
    const upTo = this.store.nextDeadLetterId;
    const letters = await this.store.listDeadLetters(Number.MAX_SAFE_INTEGER);
    const byEmitter = this.groupQueues(undefined);
    const picked = new Map<string, StoredEvent[]>();
    const orphans: DeadLetter[] = [];
    for (const d of letters) {
      if (d.id >= upTo) continue;
      if (!byEmitter.has(d.emitter)) {
        orphans.push(d);
        continue;
      }
      let list = picked.get(d.emitter);
      if (!list) picked.set(d.emitter, (list = []));
      list.push({ seq: d.seq, appendedAtMs: d.deadAtMs, targets: d.targets, event: d.event });
    }
    const report = await this.send(picked, byEmitter);
    await this.store.addDeadLetters(orphans.map(({ seq, emitter, reason, attempts, deadAtMs, event, targets }) => ({ seq, emitter, reason, attempts, deadAtMs, event, targets })));
    await this.store.purgeDeadLetters(upTo);
    return { ...report, keptForMissingEmitter: orphans.length };
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

  private async send(picked: Map<string, StoredEvent[]>, queues: Map<string, DurableEmitterQueue>): Promise<ReplayReport> {
    let matched = 0;
    let delivered = 0;
    await Promise.all(
      [...picked].map(async ([name, events]) => {
        const queue = queues.get(name);
        if (!queue) return; // an emitter no longer in the pipeline
        matched += events.length;
        const n = await queue.replay(events);
        delivered += n;
        this.metrics.replayed.inc({ emitter: name }, n);
      }),
    );
    return { matched, delivered };
  }
}
