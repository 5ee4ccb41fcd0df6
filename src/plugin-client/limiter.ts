import type { TimerHandle, Timers } from '../clock.js';
import { Deque } from '../buffer/deque.js';
import { polkuError } from '../errors.js';

interface Waiter {
  resolve(granted: boolean): void;
  timer: TimerHandle | null;
  /** Granted a slot or gave up; a settled waiter is skipped when it reaches the front. */
  settled: boolean;
}

/**
 * Bounds the calls in flight to one plugin. A caller over the limit waits, first come first
 * served, until a slot frees up or its time runs out (then it is told `false` and must not call
 * `release`). Each granted `acquire` is paired with exactly one `release`.
 */
export class ConcurrencyLimiter {
  readonly max: number;
  private active = 0;
  private waitingCount = 0;
  private readonly waiting = new Deque<Waiter>(16);

  /** `timers` is read on each wait, so the hub's injected timers apply once it calls `init`. */
  constructor(
    max: number,
    private readonly timers: () => Timers,
  ) {
    if (!Number.isSafeInteger(max) || max < 1) throw polkuError('POLKU_ERR_OPTION_INVALID', `max must be a positive integer, got ${max}`);
    this.max = max;
  }

  /** Calls holding a slot. */
  get inFlight(): number {
    return this.active;
  }

  /** Callers waiting for a slot. */
  get queued(): number {
    return this.waitingCount;
  }

  /** Resolves `true` with a slot held, or `false` when none freed up within `timeoutMs`. */
  acquire(timeoutMs: number): Promise<boolean> {
    if (this.active < this.max && this.waitingCount === 0) {
      this.active++;
      return Promise.resolve(true);
    }
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { resolve, timer: null, settled: false };
      waiter.timer = this.timers().setTimeout(() => {
        if (waiter.settled) return;
        waiter.settled = true;
        this.waitingCount--;
        resolve(false);
      }, timeoutMs);
      this.waiting.push(waiter);
      this.waitingCount++;
    });
  }

  /** Gives a slot back; the longest waiter still waiting takes it over. */
  release(): void {
    for (let w = this.waiting.shift(); w; w = this.waiting.shift()) {
      if (w.settled) continue; // timed out earlier
      w.settled = true;
      this.waitingCount--;
      if (w.timer !== null) this.timers().clearTimeout(w.timer);
      w.resolve(true); // the slot passes straight to it: `active` is unchanged
      return;
    }
    if (this.active > 0) this.active--;
  }
}
