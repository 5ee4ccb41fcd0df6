import { sumCounter } from './prom.js';

/**
 * Durable mode's group commits over a measured window, from the gateway's own histograms
 * (polku_log_commit_records, polku_log_commit_wait_seconds, polku_log_commit_write_seconds)
 * scraped at the window's start and end: how many events a commit carried, how long groups
 * waited behind the one being written, and how long the durable write took.
 */
export interface CommitFigures {
  commits: number;
  meanRecords: number;
  meanWaitMs: number;
  /** Upper bound of the bucket holding the 99th percentile (the histogram's resolution). */
  p99WaitMs: number;
  meanWriteMs: number;
  p99WriteMs: number;
  /**
   * polku_batch_processing_seconds: from the hub taking a batch to its Ack being made (after the
   * commit covering it), p50 and p99 bucket bounds. The gateway's side of the Ack latency the
   * load generator measures; the rest is the transport and the client.
   */
  p50BatchToAckMs: number | null;
  p99BatchToAckMs: number | null;
  /**
   * The gateway's event-loop delay p99 over the window (prom-client resets it at each scrape),
   * beyond the monitor's own sampling interval: node's histogram records the whole time between
   * its timer's runs, so an idle process reads ~10 ms with prom-client's default 10 ms precision.
   */
  loopDelayP99Ms: number | null;
  /** Garbage collection in the window: pauses per second and milliseconds per second. */
  gcPerSec: number | null;
  gcMsPerSec: number | null;
  /** Pauses longer than 10 ms per second (prom-client's GC histogram buckets, every kind). */
  gcOver10msPerSec: number | null;
  /** Mark-compact (major) pauses: per second, and their mean length in ms. */
  majorGcPerSec: number | null;
  majorGcMeanMs: number | null;
}

interface Histogram {
  sum: number;
  count: number;
  /** Cumulative counts by upper bound, ascending. */
  buckets: Array<[number, number]>;
}

function histogram(exposition: string, name: string): Histogram | null {
  let sum: number | null = null;
  let count: number | null = null;
  const buckets: Array<[number, number]> = [];
  for (const line of exposition.split('\n')) {
    if (line.startsWith(`${name}_sum `)) sum = Number(line.slice(name.length + 5));
    else if (line.startsWith(`${name}_count `)) count = Number(line.slice(name.length + 7));
    else if (line.startsWith(`${name}_bucket{le="`)) {
      const le = line.slice(name.length + 12, line.indexOf('"', name.length + 12));
      buckets.push([le === '+Inf' ? Infinity : Number(le), Number(line.slice(line.lastIndexOf('}') + 1).trim())]);
    }
  }
  return sum === null || count === null ? null : { sum, count, buckets };
}

function delta(start: string, end: string, name: string): Histogram | null {
  const a = histogram(start, name);
  const b = histogram(end, name);
  if (!a || !b) return null;
  return {
    sum: b.sum - a.sum,
    count: b.count - a.count,
    buckets: b.buckets.map(([le, n], i) => [le, n - (a.buckets[i]?.[1] ?? 0)]),
  };
}

function quantile(h: Histogram, q: number): number {
  const rank = q * h.count;
  for (const [le, n] of h.buckets) if (n >= rank) return le;
  return Infinity;
}

/** The window's commits, or null when the gateway exports no commit histograms (memory mode). */
export function commitFigures(start: string, end: string, seconds: number): CommitFigures | null {
  const records = delta(start, end, 'polku_log_commit_records');
  const wait = delta(start, end, 'polku_log_commit_wait_seconds');
  const write = delta(start, end, 'polku_log_commit_write_seconds');
  if (!records || !wait || !write || records.count === 0) return null;
  const batch = delta(start, end, 'polku_batch_processing_seconds');
  const batchQ = (q: number): number | null => (batch && batch.count > 0 ? quantile(batch, q) * 1000 : null);
  return {
    p50BatchToAckMs: batchQ(0.5),
    p99BatchToAckMs: batchQ(0.99),
    commits: records.count,
    meanRecords: records.sum / records.count,
    meanWaitMs: (wait.sum / wait.count) * 1000,
    p99WaitMs: quantile(wait, 0.99) * 1000,
    meanWriteMs: (write.sum / write.count) * 1000,
    p99WriteMs: quantile(write, 0.99) * 1000,
    loopDelayP99Ms: beyondSampling(gaugeOf(end, 'nodejs_eventloop_lag_p99_seconds', 1000)),
    gcPerSec: perSecond(start, end, 'nodejs_gc_duration_seconds_count', seconds, 1),
    gcMsPerSec: perSecond(start, end, 'nodejs_gc_duration_seconds_sum', seconds, 1000),
    ...gcPauses(start, end, seconds),
  };
}

/** prom-client's default `eventLoopMonitoringPrecision` (src/cli/serve.ts keeps the default). */
const LOOP_SAMPLING_MS = 10;

function beyondSampling(ms: number | null): number | null {
  return ms === null ? null : Math.max(0, ms - LOOP_SAMPLING_MS);
}

/** Sums `nodejs_gc_duration_seconds` lines matching `pick` (label text), over every kind. */
function gcLines(exposition: string, series: string, pick: string): number | null {
  let total: number | null = null;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`nodejs_gc_duration_seconds_${series}{`) || !line.includes(pick)) continue;
    total = (total ?? 0) + Number(line.slice(line.lastIndexOf('}') + 1).trim());
  }
  return total;
}

function gcPauses(
  start: string,
  end: string,
  seconds: number,
): Pick<CommitFigures, 'gcOver10msPerSec' | 'majorGcPerSec' | 'majorGcMeanMs'> {
  const d = (series: string, pick: string): number | null => {
    const a = gcLines(start, series, pick);
    const b = gcLines(end, series, pick);
    return a === null || b === null ? null : b - a;
  };
  const all = d('count', '');
  const within10 = d('bucket', 'le="0.01"');
  const majors = d('count', 'kind="major"');
  const majorSum = d('sum', 'kind="major"');
  return {
    gcOver10msPerSec: all === null || within10 === null ? null : (all - within10) / seconds,
    majorGcPerSec: majors === null ? null : majors / seconds,
    majorGcMeanMs: majors === null || majorSum === null || majors === 0 ? null : (majorSum / majors) * 1000,
  };
}

function gaugeOf(exposition: string, name: string, scale: number): number | null {
  const s = sumCounter(exposition, name);
  return s.series === 0 ? null : s.value * scale;
}

function perSecond(start: string, end: string, name: string, seconds: number, scale: number): number | null {
  const a = sumCounter(start, name);
  const b = sumCounter(end, name);
  return a.series === 0 || b.series === 0 ? null : ((b.value - a.value) * scale) / seconds;
}

export function fmtCommits(c: CommitFigures | null | undefined): string {
  if (!c) return 'n/a';
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '>100');
  const q = (v: number | null) => (v === null ? '?' : ms(v));
  return (
    `${c.meanRecords.toFixed(0)} events (${c.commits} commits); wait ${ms(c.meanWaitMs)} / p99 ≤${ms(c.p99WaitMs)} ms; write ${ms(c.meanWriteMs)} / p99 ≤${ms(c.p99WriteMs)} ms; ` +
    `batch in the gateway → Ack p50 ≤${q(c.p50BatchToAckMs)} / p99 ≤${q(c.p99BatchToAckMs)} ms`
  );
}

/** Event-loop delay and GC over the window: what stretches every Ack waiting meanwhile. */
export function fmtLoop(c: CommitFigures | null | undefined): string {
  if (!c) return 'n/a';
  const f = (v: number | null, digits: number) => (v === null ? '?' : v.toFixed(digits));
  return `event-loop delay p99 ${f(c.loopDelayP99Ms, 1)} ms beyond the 10 ms sampling; GC ${f(c.gcPerSec, 1)} pauses/s, ${f(c.gcMsPerSec, 1)} ms/s, ${f(c.gcOver10msPerSec, 2)}/s over 10 ms, major ${f(c.majorGcPerSec, 2)}/s of ${f(c.majorGcMeanMs, 1)} ms`;
}
