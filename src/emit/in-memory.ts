import type { Event } from '../gen/polku/v1/event.js';
import { EmitResults, type EmitResult, type Emitter } from './emitter.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface InMemoryEmitterOptions {
  name?: string;
  /**
   * Most events kept in `events` (oldest dropped first). 0 keeps none and only counts, which is
   * what a benchmark wants. Default: unbounded.
   */
  maxRetained?: number;
}

/** Every key of {@link InMemoryEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const IN_MEMORY_EMITTER_OPTION_KEYS = optionKeys<InMemoryEmitterOptions>({ name: true, maxRetained: true });

/**
 * Keeps what it receives in memory, for testing pipelines:
 *
 * ```ts
 * const memory = new InMemoryEmitter();
 * const gateway = hub().emitter(memory).build();
 * // ... send events ...
 * await memory.waitForCount(3);
 * assert.deepEqual(memory.events.map((e) => e.eventType), ['a', 'b', 'c']);
 * ```
 */
export class InMemoryEmitter implements Emitter {
  readonly name: string;
  /** Events received, oldest first (bounded by `maxRetained`). */
  readonly events: Event[] = [];
  /** Batches as they arrived, by size. */
  readonly batchSizes: number[] = [];
  private total = 0;
  private readonly maxRetained: number;
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor(options: InMemoryEmitterOptions = {}) {
    this.name = options.name ?? 'memory';
    checkOptionKeys(`InMemoryEmitter "${this.name}"`, options, IN_MEMORY_EMITTER_OPTION_KEYS);
    this.maxRetained = options.maxRetained ?? Number.POSITIVE_INFINITY;
  }

  /** Events received in all. */
  get count(): number {
    return this.total;
  }

  emit(events: readonly Event[]): Promise<EmitResult> {
    this.total += events.length;
    if (this.maxRetained > 0) {
      for (const e of events) this.events.push(e);
      if (this.events.length > this.maxRetained) this.events.splice(0, this.events.length - this.maxRetained);
      this.batchSizes.push(events.length);
    }
    if (this.waiters.length > 0) {
      this.waiters = this.waiters.filter((w) => {
        if (this.total < w.count) return true;
        w.resolve();
        return false;
      });
    }
    return Promise.resolve(EmitResults.success());
  }

  /** Resolves once at least `count` events have arrived in all. */
  waitForCount(count: number): Promise<void> {
    if (this.total >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Forgets what was received. */
  clear(): void {
    this.events.length = 0;
    this.batchSizes.length = 0;
    this.total = 0;
  }
}
