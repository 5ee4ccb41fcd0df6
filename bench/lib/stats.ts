import type { LatencySummary } from './load-result.js';

/** Nearest-rank percentile of an ascending-sorted array; 0 when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarizeLatency(samplesMs: readonly number[]): LatencySummary {
  // A typed array sorts numerically (a plain array would sort as strings).
  const sorted = Float64Array.from(samplesMs).sort();
  return {
    p50: round3(percentile(sorted, 50)),
    p99: round3(percentile(sorted, 99)),
    max: round3(sorted.length > 0 ? sorted[sorted.length - 1]! : 0),
  };
}

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
