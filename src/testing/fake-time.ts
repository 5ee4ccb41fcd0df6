import type { Clock, TimerHandle, Timers } from '../clock.js';

/**
 * Manual time for tests. Nothing moves until a test calls `advance`.
 *
 * ```ts
 * const clock = new FakeClock();
 * const timers = new FakeTimers(clock); // advancing the timers advances the clock too
 * timers.advance(99);  // callbacks due at or before +99 ms have run, in time order
 * ```
 */

/** Wall clock starts at 2023-11-14T22:13:20Z unless told otherwise; the monotonic clock at 0. */
export const FAKE_EPOCH_MS = 1_700_000_000_000;

/** A manual {@link Clock}: wall and monotonic time move only by `advance` (or with FakeTimers). */
export class FakeClock implements Clock {
  private wallMs: number;
  private monoMs = 0;

  constructor(startMs: number = FAKE_EPOCH_MS) {
    this.wallMs = startMs;
  }

  nowMs(): number {
    return this.wallMs;
  }

  nowNs(): bigint {
    // Microsecond resolution, like systemClock.
    return BigInt(Math.round(this.wallMs * 1000)) * 1000n;
  }

  monotonicMs(): number {
    return this.monoMs;
  }

  /** Moves both clocks forward by `ms` (never backwards). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`FakeClock.advance needs ms >= 0, got ${ms}`);
    this.wallMs += ms;
    this.monoMs += ms;
  }
}

/** The handle FakeTimers gives out; opaque to the code under test. */
export interface FakeTimerHandle {
  readonly id: number;
}

interface Scheduled {
  readonly handle: FakeTimerHandle;
  readonly dueMs: number;
  readonly fn: () => void;
}

/**
 * Manual {@link Timers}: callbacks run only when `advance` or `runAll` passes their due time, so a
 * test decides exactly when a flush, a backoff or a timeout happens.
 */
export class FakeTimers implements Timers {
  private nowMs = 0;
  private nextId = 1;
  private scheduled: Scheduled[] = [];

  /** When given a clock, `advance` moves it in step with the timers. */
  constructor(private readonly clock?: FakeClock) {}

  /** Milliseconds advanced so far. */
  get now(): number {
    return this.nowMs;
  }

  /** Timers set and neither fired nor cleared. */
  get pending(): number {
    return this.scheduled.length;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle: FakeTimerHandle = { id: this.nextId++ };
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.scheduled.push({ handle, dueMs: this.nowMs + delay, fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.scheduled = this.scheduled.filter((s) => s.handle !== handle);
  }

  /**
   * Moves time forward by `ms`, running every callback that falls due on the way in time order
   * (ties in the order they were set). Callbacks may set new timers; those run too if they fall
   * due before the target time.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`FakeTimers.advance needs ms >= 0, got ${ms}`);
    const target = this.nowMs + ms;
    for (;;) {
      const next = this.nextDue();
      if (next === undefined || next.dueMs > target) break;
      this.scheduled = this.scheduled.filter((s) => s !== next);
      this.moveTo(next.dueMs);
      next.fn();
    }
    this.moveTo(target);
  }

  /** Runs timers until none are left (at most `limit`, against timers that re-arm forever). */
  runAll(limit = 1_000): void {
    for (let i = 0; i < limit; i++) {
      const next = this.nextDue();
      if (next === undefined) return;
      this.advance(next.dueMs - this.nowMs);
    }
    throw new Error(`FakeTimers.runAll: still ${this.pending} timers after ${limit} runs`);
  }

  private nextDue(): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const s of this.scheduled) if (best === undefined || s.dueMs < best.dueMs) best = s;
    return best;
  }

  private moveTo(ms: number): void {
    if (ms > this.nowMs) {
      this.clock?.advance(ms - this.nowMs);
      this.nowMs = ms;
    }
  }
}

/**
 * Lets every promise callback that is already queued run (resolved emits, `.then` chains).
 * Not a sleep: it waits for one turn of the event loop, with no time passing on the fake clocks.
 */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
