import { InMemoryEmitter as KeepingEmitter, type InMemoryEmitterOptions } from '../emit/in-memory.js';

export type { InMemoryEmitterOptions };

/** How long {@link InMemoryEmitter.waitForCount} waits before it gives up. */
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
 * await h.processBatch(batch);
 * await memory.waitForCount(1); // resolves once the hub delivered it; rejects after 5 s
 * ```
 *
 * The hub's delivery timers are unref'd so a gateway never stays up for a pending flush; a test
 * script awaiting delivery would then end with nothing left to run before the flush fires. While
 * a wait is pending this emitter holds a ref'd timer (its timeout), which keeps the process up.
 */
export class InMemoryEmitter extends KeepingEmitter {
  constructor(options: InMemoryEmitterOptions = {}) {
    super(options);
  }

  /**
   * Resolves once at least `count` events have arrived in all; rejects after `timeoutMs` with
   * how many did, so a test that loses events fails with a reason instead of hanging.
   */
  override waitForCount(count: number, options: WaitOptions = {}): Promise<void> {
    if (this.count >= count) return Promise.resolve();
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    const arrived = super.waitForCount(count);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`emitter "${this.name}": ${this.count} of ${count} events arrived within ${timeoutMs} ms`));
      }, timeoutMs);
      void arrived.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
