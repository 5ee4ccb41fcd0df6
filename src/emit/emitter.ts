import type { ComponentContext } from '../component-context.js';
import type { Event } from '../gen/polku/v1/event.js';

/** What happened to one event of a batch that did not fully succeed. */
export interface EventFailure {
  /** Index of the event in the batch passed to `emit`. */
  readonly index: number;
  /** True when sending the event again may succeed. */
  readonly retryable: boolean;
  readonly error: string;
}

/**
 * The outcome of one `emit` call, as a value. Emitters should not throw: an exception is treated
 * as `retryable` for the whole batch.
 * - `success`: every event was delivered.
 * - `retryable`: nothing was delivered, try again (after `retryAfterMs` if the receiver said so).
 * - `failed`: nothing was delivered and retrying will not help.
 * - `partial`: the events listed in `failures` were not delivered; every other one was. Only the
 *   retryable failures are sent again.
 */
export type EmitResult =
  | { readonly status: 'success' }
  | { readonly status: 'retryable'; readonly error: string; readonly retryAfterMs?: number }
  | { readonly status: 'failed'; readonly error: string }
  | { readonly status: 'partial'; readonly failures: readonly EventFailure[]; readonly retryAfterMs?: number };

const SUCCESS: EmitResult = Object.freeze({ status: 'success' });

/** Constructors for {@link EmitResult} values. */
export const EmitResults = {
  success: (): EmitResult => SUCCESS,
  retryable: (error: string, retryAfterMs?: number): EmitResult =>
    retryAfterMs === undefined ? { status: 'retryable', error } : { status: 'retryable', error, retryAfterMs },
  failed: (error: string): EmitResult => ({ status: 'failed', error }),
  partial: (failures: readonly EventFailure[], retryAfterMs?: number): EmitResult =>
    failures.length === 0
      ? SUCCESS
      : retryAfterMs === undefined
        ? { status: 'partial', failures }
        : { status: 'partial', failures, retryAfterMs },
} as const;

export interface EmitterHealth {
  readonly healthy: boolean;
  readonly message?: string;
}

/**
 * What `probe` found, as a value: `detail` says what was reached (`127.0.0.1:5432 table
 * polku_events`); `error` what failed, and `hint` what to check. Never holds a password.
 */
export type ProbeResult =
  { readonly ok: true; readonly detail: string } | { readonly ok: false; readonly error: string; readonly hint?: string };

/**
 * The batch size an emitter's queue takes: the pipeline's `delivery.batchSize`, or the emitter's
 * {@link Emitter.preferredBatchSize} when that is a larger whole number.
 */
export function batchSizeOf(emitter: Emitter, pipelineBatchSize: number): number {
  const preferred = emitter.preferredBatchSize;
  return preferred !== undefined && Number.isInteger(preferred) && preferred > pipelineBatchSize ? preferred : pipelineBatchSize;
}

/** Sends batches of events to one destination. */
export interface Emitter {
  /** The name events use in `route_to` to reach this emitter. */
  readonly name: string;
  /**
   * Events per batch this emitter writes best (for example its statements or commands in flight
   * at once). When larger than the pipeline's `delivery.batchSize`, its queue takes batches of this
   * size instead; a partial batch still goes after `flushIntervalMs`. Optional.
   */
  readonly preferredBatchSize?: number;
  /**
   * Delivers a batch. The events are shared with other emitters: treat them as read-only.
   * Called with at most one batch in flight per emitter.
   */
  emit(events: readonly Event[]): Promise<EmitResult>;
  /**
   * Set by an emitter that sends events as protobuf `polku.event.v1.Event`s and reads the bytes
   * each arrived in where it can (src/ingest/event-wire-bytes.ts) instead of encoding it: in
   * memory mode the gateway then keeps those bytes on the events it accepts from polku.v1 batches.
   * Wrappers forward it. Optional: most emitters write another format.
   */
  readonly wantsWireBytes?: boolean;
  /** Reports whether the destination is usable; feeds Health and readiness. */
  health?(): EmitterHealth | Promise<EmitterHealth>;
  /**
   * Dials the destination without sending an event (`polku validate --probe`, as `vector validate`
   * runs healthchecks): connects, checks what a batch will need (the table, the bucket, the
   * stream), and says so. Resolves, never rejects; stops when `signal` aborts (the probe timeout).
   * Called on a built but never started hub: the emitter opens what it needs and closes it again
   * (or `shutdown` does). Optional: an emitter without it is listed as not probed.
   */
  probe?(signal: AbortSignal): Promise<ProbeResult>;
  /** Called once on gateway shutdown, after the last batch. */
  shutdown?(): Promise<void>;
  /**
   * Called once when the hub is built, before any event: register metrics in `ctx.registry`,
   * take `ctx.logger.child(...)`, keep `ctx.clock`. Optional.
   */
  init?(ctx: ComponentContext): void;
}
