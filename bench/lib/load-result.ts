/**
 * The one JSON line bench/loadgen.ts prints on stdout, shared with bench/run.ts
 * so both sides agree on the shape.
 */
export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  /** Batches written during the measured window (warmup excluded). */
  batchesSent: number;
  eventsSent: number;
  /** Sum of ack.eventIds.length over the acks of the measured batches. */
  eventsAccepted: number;
  /** Sum of ack.errors.length over the acks of the measured batches. */
  ackErrors: number;
  errorCodes: Record<string, number>;
  /** Mean encoded size of one IngestBatch from the pool, in bytes. */
  batchBytes: number;
  /** Length of the measured window in seconds. */
  durationS: number;
  acceptedPerSec: number;
  /** Time from write() of a batch to the arrival of its Ack. */
  ackLatencyMs: LatencySummary;
  /** Measured batches still unacked when the generator gave up waiting. */
  unackedBatches: number;
  /** Share of one core the generator itself used during the window (it competes with the server). */
  loadgenCpuCores: number;
  /** Streams that ended with an error status; a healthy run has none. */
  streamErrors: string[];
}

/** Progress notes the generator sends to its parent over the IPC channel. */
export type LoadgenMessage = { phase: 'measure-start' } | { phase: 'measure-end' };
