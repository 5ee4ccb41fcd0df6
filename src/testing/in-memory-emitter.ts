import { InMemoryEmitter as KeepingEmitter, type InMemoryEmitterOptions } from '../emit/in-memory.js';
import type { ComponentContext } from '../component-context.js';
import type { EmitResult } from '../emit/emitter.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Ack } from '../gen/polku/v1/gateway.js';

export type { InMemoryEmitterOptions };

/** How long a wait of {@link InMemoryEmitter} lasts before it gives up. */
export interface WaitOptions {
  /** Milliseconds before the wait rejects. Default 5000. */
  timeoutMs?: number;
}

const DEFAULT_WAIT_MS = 5_000;

/**
 * The in-memory emitter for tests: keeps what it receives, and waits for delivery.
 *
 * ```ts
 * const memory = new InMemoryEmitter();
 * const h = hub().ingestor(new JsonIngestor()).emitter(memory).build();
 * const ack = await h.processBatch(batch);
 * await memory.drained();         // everything the hub accepted for this emitter has arrived here
 * await memory.waitForAcked(ack); // or: every event this Ack accepted
 * await memory.waitForCount(3);   // or: at least 3 events in all
 * ```
 *
 * The hub's delivery timers are unref'd so a gateway never stays up for a pending flush; a test
 * script awaiting delivery would then end with nothing left to run before the flush fires. While
 * a wait is pending this emitter holds a ref'd timer (its timeout), which keeps the process up.
 */
export class InMemoryEmitter extends KeepingEmitter {
  private idWaiters: Array<{ missing: Set<string>; resolve: () => void }> = [];
  private whenDelivered: ((emitter: string) => Promise<void>) | undefined;

  constructor(options: InMemoryEmitterOptions = {}) {
    super(options);
  }

  /** The hub tells its emitters how to wait for their queue; `drained()` uses it. */
  init(ctx: ComponentContext): void {
    this.whenDelivered = ctx.whenDelivered;
  }

  /**
   * Resolves once every event the hub accepted for this emitter so far has been delivered here
   * (its queue holds nothing waiting, in flight or to retry); rejects after `timeoutMs` saying how
   * many arrived. Resolves at once before the emitter is in a hub.
   */
  drained(options: WaitOptions = {}): Promise<void> {
    if (!this.whenDelivered) return Promise.resolve();
    return this.within(this.whenDelivered(this.name), options, () => `${this.count} events arrived, the rest still queued`);
  }

  override emit(events: readonly Event[]): Promise<EmitResult> {
    // Only while someone waits for ids: a counting emitter in a benchmark pays one length check.
    if (this.idWaiters.length > 0) {
      for (const w of this.idWaiters) for (const e of events) w.missing.delete(e.id);
      this.idWaiters = this.idWaiters.filter((w) => {
        if (w.missing.size > 0) return true;
        w.resolve(); // runs after super.emit below has kept the events
        return false;
      });
    }
    return super.emit(events);
  }

  /**
   * Resolves once at least `count` events have arrived in all; rejects after `timeoutMs` with
   * how many did, so a test that loses events fails with a reason instead of hanging.
   */
  override waitForCount(count: number, options: WaitOptions = {}): Promise<void> {
    if (this.count >= count) return Promise.resolve();
    return this.within(super.waitForCount(count), options, () => `${this.count} of ${count} events arrived`);
  }

  /**
   * Resolves once every event the Acks accepted (their `eventIds`) has arrived here: what the hub
   * accepted is delivered. For a pipeline whose events are all routed to this emitter; ids that
   * arrived before the wait count only while still kept (`maxRetained`).
   */
  waitForAcked(acks: Pick<Ack, 'eventIds'> | ReadonlyArray<Pick<Ack, 'eventIds'>>, options: WaitOptions = {}): Promise<void> {
    const ids = (Array.isArray(acks) ? acks : [acks]).flatMap((a: Pick<Ack, 'eventIds'>) => a.eventIds);
    const missing = new Set(ids);
    for (const e of this.events) missing.delete(e.id);
    if (missing.size === 0) return Promise.resolve();
    const waiter = { missing, resolve: (): void => undefined };
    const arrived = new Promise<void>((resolve) => {
      waiter.resolve = resolve;
      this.idWaiters.push(waiter);
    });
    return this.within(arrived, options, () => {
      this.idWaiters = this.idWaiters.filter((w) => w !== waiter);
      const total = new Set(ids).size;
      return `${total - missing.size} of ${total} acknowledged events arrived (missing ${[...missing].slice(0, 5).join(', ')})`;
    });
  }

  /** `waiting`, or a rejection naming what is missing once `timeoutMs` passed; ref'd meanwhile. */
  private within(waiting: Promise<void>, options: WaitOptions, missing: () => string): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`emitter "${this.name}": ${missing()} within ${timeoutMs} ms`)), timeoutMs);
      void waiting.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
