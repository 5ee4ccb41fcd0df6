import { EmitResults, type EmitResult, type EventFailure } from './emitter.js';

/** A batch divided by an emitter's answer, each item in batch order. */
export interface BatchSplit<T> {
  /** Items the emitter delivered. */
  readonly delivered: readonly T[];
  /** Items that failed retryably: worth sending again. */
  readonly retry: readonly T[];
  /** Items that failed for good. */
  readonly failed: readonly T[];
  /** The error of each `failed` item, same order. */
  readonly failedErrors: readonly string[];
  /**
   * One message for what went wrong: the first retryable failure's error, else the first
   * failure's; '' on success. What is retried is what an operator watches, so its reason wins.
   */
  readonly error: string;
  /** How long the receiver asked to wait before a retry, if it said. */
  readonly retryAfterMs: number | undefined;
}

const NONE: readonly never[] = Object.freeze([]);

/**
 * Splits `batch` (what was passed to `emit`, or anything parallel to it) by the emitter's answer.
 * A `partial` failure naming an index outside the batch is ignored (of two naming one index, the
 * later counts); every index it does not name was delivered. Whole-batch answers share the caller's array: no copy on the common path.
 */
export function splitBatch<T>(batch: readonly T[], result: EmitResult): BatchSplit<T> {
  switch (result.status) {
    case 'success':
      return { delivered: batch, retry: NONE, failed: NONE, failedErrors: NONE, error: '', retryAfterMs: undefined };
    case 'retryable':
      return { delivered: NONE, retry: batch, failed: NONE, failedErrors: NONE, error: result.error, retryAfterMs: result.retryAfterMs };
    case 'failed':
      return {
        delivered: NONE,
        retry: NONE,
        failed: batch,
        failedErrors: batch.map(() => result.error),
        error: result.error,
        retryAfterMs: undefined,
      };
    case 'partial':
      return splitPartial(batch, result.failures, result.retryAfterMs);
  }
}

function splitPartial<T>(batch: readonly T[], failures: readonly EventFailure[], retryAfterMs: number | undefined): BatchSplit<T> {
  const verdict = new Map<number, EventFailure>();
  let retryError: string | undefined;
  let anyError: string | undefined;
  for (const f of failures) {
    if (f.index < 0 || f.index >= batch.length) continue; // an event it was not given
    verdict.set(f.index, f);
    anyError ??= f.error;
    if (f.retryable) retryError ??= f.error;
  }
  const delivered: T[] = [];
  const retry: T[] = [];
  const failed: T[] = [];
  const failedErrors: string[] = [];
  for (let i = 0; i < batch.length; i++) {
    const v = verdict.get(i);
    if (v === undefined) delivered.push(batch[i]!);
    else if (v.retryable) retry.push(batch[i]!);
    else {
      failed.push(batch[i]!);
      failedErrors.push(v.error);
    }
  }
  return { delivered, retry, failed, failedErrors, error: retryError ?? anyError ?? '', retryAfterMs };
}

/**
 * The result for a batch of `size` events of which `failures` (one per index) were not delivered:
 * `success` when none failed, `retryable` or `failed` when all did alike (with the first error),
 * else `partial`.
 */
export function resultOfFailures(size: number, failures: readonly EventFailure[], retryAfterMs?: number): EmitResult {
  if (size > 0 && failures.length === size) {
    if (failures.every((f) => f.retryable)) return EmitResults.retryable(failures[0]!.error, retryAfterMs);
    if (failures.every((f) => !f.retryable)) return EmitResults.failed(failures[0]!.error);
  }
  return EmitResults.partial(failures, retryAfterMs);
}

/**
 * Finds a batch's events by id, for answers that name failed events by id (a downstream Ack, a
 * plugin's EmitResponse). Each call returns the position of the first copy of `id` not taken yet,
 * so a repeated id is matched to its copies in batch order; -1 when none is left. The counts are
 * exact, though which copy an answer meant cannot be known.
 */
export function positionsById(ids: readonly { readonly id: string }[]): (id: string) => number {
  const open = new Map<string, { taken: number; indices: number[] }>();
  for (let i = 0; i < ids.length; i++) {
    const slot = open.get(ids[i]!.id);
    if (slot) slot.indices.push(i);
    else open.set(ids[i]!.id, { taken: 0, indices: [i] });
  }
  return (id) => {
    const slot = open.get(id);
    return slot !== undefined && slot.taken < slot.indices.length ? slot.indices[slot.taken++]! : -1;
  };
}
