import type { Counter } from 'prom-client';
import type { DurableStore, StoredEvent } from '../buffer/durable/durable-store.js';
import type { Clock, TimerHandle, Timers } from '../clock.js';
import { splitBatch } from '../emit/batch-split.js';
import type { Emitter, EmitResult, EmitterHealth } from '../emit/emitter.js';
import type { Logger } from '../observability/logger.js';
import type { Taps } from '../hub/taps.js';
import { backoffDelay, type BackoffPolicy } from '../resilience/backoff.js';
import { queueHealth, type DeliveryQueue } from './delivery-queue.js';
import type { EmitterQueueMetrics, EmitterSeries } from './emitter-queue-metrics.js';

/** Backoff between attempts: 100 ms doubling to 30 s, each with up to 100 % jitter. */
const BACKOFF_INITIAL_MS = 100;
const BACKOFF_MAX_MS = 30_000;

export interface DurableEmitterQueueOptions {
  emitter: Emitter;
  isDefault: boolean;
  store: DurableStore;
  batchSize: number;
  clock: Clock;
  timers: Timers;
  metrics: EmitterQueueMetrics;
  deadLettered: Counter<'emitter' | 'reason'>;
  logger: Logger;
  /** Deterministic jitter in tests. */
  random?: () => number;
  /** Delivered batches are offered here while a tap is open. */
  taps?: Taps | undefined;
}

/**
 * One emitter's delivery in durable mode. It reads the event log from its own cursor (recent
 * events come from memory, older ones from disk), sends batches of the events routed to it, and
 * moves its cursor past each batch once every event in it is delivered or dead-lettered. The
 * cursor is persisted, so after a restart it resumes where it stopped.
 *
 * Retryable failures are retried with exponential backoff on this queue alone (others go on);
 * only the events still failing are resent. After `maxAttempts`, or once an event has waited
 * `maxRetryAgeMs`, it goes to the dead letters with its reason. A non-retryable failure goes
 * there at once.
 */
export class DurableEmitterQueue implements DeliveryQueue {
  readonly name: string;
  readonly emitter: Emitter;
  readonly isDefault: boolean;
  private readonly o: DurableEmitterQueueOptions;
  private readonly log: Logger;
  private readonly backoff: BackoffPolicy;
  private cursor: number;
  private running = false;
  /** The delivery loop while it runs (resolved once it stopped). */
  private loop: Promise<void> = Promise.resolve();
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private lastError: string | null = null;
  private sleeping: { timer: TimerHandle; wake: () => void } | null = null;
  /** appendedAtMs of the oldest event this queue has not delivered yet, or null when caught up. */
  private oldestPendingAt: number | null = null;
  /** Deliveries run one at a time (the emitter contract): the main loop and replays chain here. */
  private exclusive: Promise<unknown> = Promise.resolve();
  /** Events of the batch the emitter has now (0 when none). */
  private sending = 0;
  private readonly series: EmitterSeries;

  constructor(options: DurableEmitterQueueOptions) {
    this.o = options;
    this.emitter = options.emitter;
    this.name = options.emitter.name;
    this.isDefault = options.isDefault;
    this.log = options.logger.child({ component: 'durable-queue', emitter: this.name });
    this.backoff = { initialMs: BACKOFF_INITIAL_MS, maxMs: BACKOFF_MAX_MS, jitter: options.random ?? Math.random };
    // A new emitter starts with what arrives from now on; a known one where it stopped.
    this.cursor = Math.max(options.store.cursor(this.name) ?? options.store.nextSeq, options.store.log.firstSeq);
    options.store.setCursor(this.name, this.cursor);
    options.store.openReader(this.name, this.cursor);
    this.series = options.metrics.seriesOf(this.name);
  }

  /** Log records at or after this queue's cursor (some may be routed elsewhere). */
  get depth(): number {
    return Math.max(0, this.o.store.nextSeq - this.cursor);
  }

  get position(): number {
    return this.cursor;
  }

  /** Seconds the oldest undelivered event has waited (0 when caught up). */
  get lagSeconds(): number {
    return this.oldestPendingAt === null ? 0 : Math.max(0, (this.o.clock.nowMs() - this.oldestPendingAt) / 1000);
  }

  /** Events of the batch being sent now (0 when none is). */
  get inFlightCount(): number {
    return this.sending;
  }

  get lastBatchSucceeded(): boolean {
    return this.lastError === null;
  }

  kick(): void {
    if (!this.running && !this.closed) this.loop = this.run();
  }

  /**
   * Resolves once the delivery loop has stopped (after abandon(): the batch in flight finished),
   * or after `timeoutMs`, whichever comes first.
   */
  async stopped(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.loop, deadline]);
    clearTimeout(timer);
  }

  startDraining(): void {
    this.kick();
  }

  whenIdle(): Promise<void> {
    if (!this.running && this.cursor >= this.o.store.nextSeq) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  abandon(): number {
    this.closed = true;
    this.o.store.closeReader(this.name);
    this.sleeping?.wake();
    const left = this.depth;
    this.notifyIdle();
    return left;
  }

  health(): Promise<EmitterHealth> {
    return queueHealth(this.lastError, this.emitter);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.closed && this.cursor < this.o.store.nextSeq) {
        const stored = await this.o.store.read(this.cursor, this.o.batchSize * 4);
        if (stored.length === 0) {
          // Nothing readable up to the end (records skipped as corrupt): move past them.
          this.cursor = this.o.store.nextSeq;
          break;
        }
        const mine: StoredEvent[] = [];
        let next = this.cursor;
        for (const s of stored) {
          if (mine.length === this.o.batchSize) break;
          next = s.seq + 1;
          if (s.targets.includes(this.name)) mine.push(s);
        }
        if (mine.length > 0) {
          this.oldestPendingAt = mine[0]!.appendedAtMs;
          await this.deliverExclusive(mine);
        }
        if (this.closed) break; // stopped mid-batch: the cursor stays, the batch is resent next start
        this.cursor = next;
        this.o.store.setCursor(this.name, this.cursor);
      }
    } catch (err) {
      this.lastError = `delivery loop failed: ${(err as Error).message}`;
      this.log.error({ err }, 'durable delivery loop failed; will resume on the next event');
    } finally {
      this.oldestPendingAt = null;
      this.running = false;
      this.notifyIdle();
    }
  }

  /**
   * Sends events again (a replay of a time range or of dead letters), with the same retries and
   * dead-lettering as live delivery, one batch at a time between live batches. Returns how many
   * were delivered.
   */
  async replay(events: readonly StoredEvent[]): Promise<number> {
    let delivered = 0;
    for (let i = 0; i < events.length && !this.closed; i += this.o.batchSize) {
      delivered += await this.deliverExclusive(events.slice(i, i + this.o.batchSize));
    }
    return delivered;
  }

  private deliverExclusive(batch: readonly StoredEvent[]): Promise<number> {
    const run = this.exclusive.then(() => this.deliver(batch));
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  /** Sends a batch until each event is delivered or dead-lettered (or the queue is stopped). Returns how many were delivered. */
  private async deliver(batch: readonly StoredEvent[]): Promise<number> {
    const store = this.o.store;
    let pending = batch;
    let total = 0;
    for (let attempt = 1; !this.closed; attempt++) {
      const started = this.o.clock.monotonicMs();
      this.sending = pending.length;
      const result = await this.callEmitter(pending);
      this.sending = 0;
      this.series.emitDuration.observe((this.o.clock.monotonicMs() - started) / 1000);
      this.series.batchSize.observe(pending.length);
      const { delivered, retry, failed, failedErrors, error, retryAfterMs } = splitBatch(pending, result);
      this.series.forwarded.inc(delivered.length);
      total += delivered.length;
      const taps = this.o.taps;
      if (taps?.active && delivered.length > 0)
        taps.offer(
          'emitter',
          delivered.map((s) => s.event),
          this.name,
        );
      this.lastError = retry.length + failed.length === 0 ? null : error;
      if (failed.length > 0) await this.deadLetter(failed, 'failed', failedErrors, attempt);
      if (retry.length === 0) return total;
      const now = this.o.clock.nowMs();
      const expired = retry.filter((s) => now - s.appendedAtMs >= store.o.maxRetryAgeMs);
      const again = expired.length === 0 ? retry : retry.filter((s) => now - s.appendedAtMs < store.o.maxRetryAgeMs);
      if (expired.length > 0)
        await this.deadLetter(expired, 'expired', `still failing after ${store.o.maxRetryAgeMs} ms: ${error}`, attempt);
      if (again.length === 0) return total;
      if (attempt >= store.o.maxAttempts) {
        await this.deadLetter(again, 'retries_exhausted', `${attempt} attempts: ${error}`, attempt);
        return total;
      }
      this.series.retried.inc(again.length);
      await this.sleep(retryAfterMs ?? backoffDelay(attempt, this.backoff));
      pending = again;
    }
    return total;
  }

  private async callEmitter(batch: readonly StoredEvent[]): Promise<EmitResult> {
    try {
      return await this.emitter.emit(batch.map((s) => s.event));
    } catch (err) {
      return { status: 'retryable', error: `emit threw: ${(err as Error).message}` };
    }
  }

  /** `error` is one message for all, or one per event. */
  private async deadLetter(
    events: readonly StoredEvent[],
    reason: 'failed' | 'expired' | 'retries_exhausted',
    error: string | readonly string[],
    attempts: number,
  ): Promise<void> {
    const deadAtMs = this.o.clock.nowMs();
    const why = (i: number): string => (typeof error === 'string' ? error : error[i]!);
    await this.o.store.addDeadLetters(
      events.map((s, i) => ({ seq: s.seq, emitter: this.name, reason: why(i), attempts, deadAtMs, event: s.event, targets: s.targets })),
    );
    this.o.deadLettered.inc({ emitter: this.name, reason }, events.length);
    this.log.warn({ events: events.length, reason, error: why(0) }, 'events dead-lettered');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        if (!this.sleeping) return;
        this.o.timers.clearTimeout(this.sleeping.timer);
        this.sleeping = null;
        resolve();
      };
      this.sleeping = { timer: this.o.timers.setTimeout(() => wake(), ms), wake };
    });
  }

  private notifyIdle(): void {
    if (this.running || (this.cursor < this.o.store.nextSeq && !this.closed)) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
