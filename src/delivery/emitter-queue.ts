import type { BufferedEvent } from '../buffer/buffered-event.js';
import { FairQueue } from '../buffer/fair-queue.js';
import type { AdmissionTarget, EventBuffer } from '../buffer/event-buffer.js';
import type { Clock, TimerHandle, Timers } from '../clock.js';
import { splitBatch } from '../emit/batch-split.js';
import { batchSizeOf, type Emitter, type EmitResult, type EmitterHealth } from '../emit/emitter.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import type { DropCounter } from '../observability/metrics.js';
import type { Taps } from '../hub/taps.js';
import { backoffDelay, type BackoffPolicy } from '../resilience/backoff.js';
import { queueHealth } from './delivery-queue.js';
import type { EmitterQueueMetrics, EmitterSeries } from './emitter-queue-metrics.js';

/** Backoff when a retryable failure names no retry-after: 100 ms, doubling, at most 5 s. */
const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 5_000;
const RETRY_BACKOFF: BackoffPolicy = { initialMs: RETRY_INITIAL_MS, maxMs: RETRY_MAX_MS };

export interface DeliveryOptions {
  /** Events per `emit` call at most; a full batch is sent at once. */
  batchSize: number;
  /** A partial batch is sent after waiting this long. */
  flushIntervalMs: number;
  /** Attempts per event for retryable failures before it is dropped as `emit_retries_exhausted`. */
  maxAttempts: number;
}

export interface EmitterQueueOptions extends DeliveryOptions {
  emitter: Emitter;
  /** Whether events with an empty `route_to` go to this emitter. */
  isDefault: boolean;
  buffer: EventBuffer;
  clock: Clock;
  timers: Timers;
  metrics: EmitterQueueMetrics;
  drops: DropCounter;
  logger: Logger;
  /** Delivered batches are offered here while a tap is open. */
  taps?: Taps | undefined;
}

/**
 * One emitter's own queue, so a slow or failing emitter never stalls the others.
 *
 * Events arrive in admission order and are sent in that order: one batch in flight at a time, a
 * batch of retryable failures goes out again before anything newer. Batches flush when
 * `batchSize` events (or the emitter's larger preferred size) wait or after `flushIntervalMs`. Every event ends in exactly one of:
 * delivered (forwarded), failed (dropped `emit_failed`), out of attempts (dropped
 * `emit_retries_exhausted`), evicted by `drop_oldest`, or abandoned at shutdown.
 */
export class EmitterQueue implements AdmissionTarget {
  readonly name: string;
  readonly emitter: Emitter;
  readonly isDefault: boolean;
  private readonly o: EmitterQueueOptions;
  /** `batchSize`, or the emitter's preferred size when larger (batchSizeOf). */
  readonly batchSize: number;
  private readonly log: Logger;
  /** One lane per tenant, taken fairly (one lane, a plain FIFO, without tenants). */
  private readonly pending = new FairQueue(256);
  private inFlight: readonly BufferedEvent[] | null = null;
  /** Retryable failures waiting for their next attempt; they go before anything pending. */
  private retryBatch: readonly BufferedEvent[] | null = null;
  private retryAttempt = 0;
  private retryDelayMs = 0;
  private timer: TimerHandle | null = null;
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private lastError: string | null = null;
  private readonly series: EmitterSeries;

  constructor(options: EmitterQueueOptions) {
    this.o = options;
    this.emitter = options.emitter;
    this.name = options.emitter.name;
    this.isDefault = options.isDefault;
    this.batchSize = batchSizeOf(options.emitter, options.batchSize);
    this.log = options.logger.child({ component: 'emitter-queue', emitter: this.name });
    this.series = options.metrics.seriesOf(this.name);
  }

  /** Events waiting, in flight, or waiting to be retried. */
  get depth(): number {
    return this.pending.length + (this.inFlight?.length ?? 0) + (this.retryBatch?.length ?? 0);
  }

  /** Events of the batch being sent now (0 when none is). */
  get inFlightCount(): number {
    return this.inFlight?.length ?? 0;
  }

  enqueue(buffered: BufferedEvent): void {
    this.pending.push(buffered);
  }

  oldestPending(): BufferedEvent | undefined {
    return this.pending.peekOldest();
  }

  dropOldestPending(): void {
    this.pending.shiftOldest();
  }

  /** The oldest pending event's admission time per tenant lane (the tenants' delivery lag). */
  oldestByTenant(into: Map<string, number>): void {
    this.pending.oldestByTenant(into);
    for (const b of this.inFlight ?? []) noteOldest(into, b);
    for (const b of this.retryBatch ?? []) noteOldest(into, b);
  }

  /** Called after each admitted batch: sends a full batch now, or arms the flush timer. */
  kick(): void {
    if (this.inFlight || this.retryBatch) return;
    if (this.pending.length === 0) {
      this.notifyIdle();
      return;
    }
    if (this.pending.length >= this.batchSize || this.draining) {
      this.clearTimer();
      this.send(this.take(), 1);
    } else if (this.timer === null) {
      this.timer = this.o.timers.setTimeout(() => {
        this.timer = null;
        if (!this.inFlight && !this.retryBatch && this.pending.length > 0) this.send(this.take(), 1);
      }, this.o.flushIntervalMs);
    }
  }

  /** From now on send whatever is pending without waiting for a full batch (shutdown drain). */
  startDraining(): void {
    this.draining = true;
    this.kick();
  }

  /** Resolves when nothing is pending, in flight or waiting for a retry. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Gives up on everything still queued (drain deadline passed); returns how many were abandoned. */
  abandon(): number {
    this.clearTimer();
    let n = 0;
    for (let b = this.pending.shift(); b; b = this.pending.shift()) {
      n++;
      this.o.buffer.settle(b);
    }
    for (const b of this.retryBatch ?? []) {
      n++;
      this.o.buffer.settle(b);
    }
    this.retryBatch = null;
    this.notifyIdle();
    return n;
  }

  health(): Promise<EmitterHealth> {
    return queueHealth(this.lastError, this.emitter);
  }

  /** Whether the last batch went through; cheap enough for a metrics scrape. */
  get lastBatchSucceeded(): boolean {
    return this.lastError === null;
  }

  private take(): BufferedEvent[] {
    return this.pending.take(this.batchSize);
  }

  private send(batch: readonly BufferedEvent[], attempt: number): void {
    if (batch.length === 0) {
      this.kick();
      return;
    }
    this.inFlight = batch;
    const events: Event[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) events[i] = batch[i]!.event;
    const started = this.o.clock.monotonicMs();
    let result: Promise<EmitResult>;
    try {
      result = this.emitter.emit(events);
    } catch (err) {
      result = Promise.resolve({ status: 'retryable', error: `emit threw: ${(err as Error).message}` });
    }
    result.then(
      (r) => this.onResult(batch, attempt, r, started),
      (err: unknown) => this.onResult(batch, attempt, { status: 'retryable', error: `emit rejected: ${String(err)}` }, started),
    );
  }

  private onResult(batch: readonly BufferedEvent[], attempt: number, result: EmitResult, started: number): void {
    this.series.emitDuration.observe((this.o.clock.monotonicMs() - started) / 1000);
    this.series.batchSize.observe(batch.length);
    this.inFlight = null;
    const { delivered, retry, failed, error, retryAfterMs } = splitBatch(batch, result);
    const failures = retry.length + failed.length;
    this.lastError = failures === 0 ? null : result.status === 'partial' ? `${failures} of ${batch.length} events failed: ${error}` : error;
    // Only an answer that can deliver counts: a failed batch adds no forwarded series of zero.
    if (result.status === 'success' || result.status === 'partial') this.deliver(delivered);
    if (failed.length > 0) {
      if (result.status === 'failed') this.log.warn({ events: failed.length, error }, 'emit failed; events dropped');
      else this.log.warn({ events: failed.length, error }, 'emitter refused events; dropped');
      this.drop(failed, 'emit_failed');
    }
    if (retry.length > 0) this.retryOrDrop(retry, attempt, error, retryAfterMs);
    if (this.retryBatch) this.scheduleRetry();
    else this.kick();
  }

  private retryOrDrop(events: readonly BufferedEvent[], attempt: number, error: string, retryAfterMs: number | undefined): void {
    if (attempt >= this.o.maxAttempts) {
      this.log.warn({ events: events.length, attempts: attempt, error }, 'emit retries exhausted; events dropped');
      this.drop(events, 'emit_retries_exhausted');
      return;
    }
    this.series.retried.inc(events.length);
    this.retryBatch = events;
    this.retryAttempt = attempt;
    this.retryDelayMs = retryAfterMs ?? backoffDelay(attempt, RETRY_BACKOFF);
  }

  private scheduleRetry(): void {
    this.clearTimer();
    this.timer = this.o.timers.setTimeout(() => {
      this.timer = null;
      const batch = this.retryBatch;
      this.retryBatch = null;
      if (batch) this.send(batch, this.retryAttempt + 1);
    }, this.retryDelayMs);
  }

  private deliver(events: readonly BufferedEvent[]): void {
    for (const b of events) this.o.buffer.settle(b);
    this.series.forwarded.inc(events.length);
    const taps = this.o.taps;
    if (taps?.active && events.length > 0)
      taps.offer(
        'emitter',
        events.map((b) => b.event),
        this.name,
      );
  }

  private drop(events: readonly BufferedEvent[], reason: 'emit_failed' | 'emit_retries_exhausted'): void {
    for (const b of events) this.o.buffer.settle(b);
    this.o.drops.count(reason, events.length);
  }

  private isIdle(): boolean {
    return !this.inFlight && !this.retryBatch && this.pending.length === 0;
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      this.o.timers.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

/** Keeps the earliest admission time per tenant name. */
export function noteOldest(into: Map<string, number>, b: BufferedEvent): void {
  const share = b.share;
  if (share === undefined) return;
  const seen = into.get(share.name);
  if (seen === undefined || b.atMs < seen) into.set(share.name, b.atMs);
}
