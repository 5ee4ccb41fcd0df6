/**
 * Time, injectable. Components take a {@link Clock} and {@link Timers} in their options so tests
 * drive time explicitly instead of sleeping and hoping.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  nowMs(): number;
  /** Wall-clock nanoseconds since the epoch (microsecond resolution is enough for receive times). */
  nowNs(): bigint;
  /** Monotonic milliseconds, for measuring durations. */
  monotonicMs(): number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** What a timer returns; opaque to callers. */
export type TimerHandle = { unref?(): unknown } | number | object;

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  nowNs: () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n,
  monotonicMs: () => performance.now(),
};

/** Real timers, unref'd so a pending flush never keeps the process alive on its own. */
export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
