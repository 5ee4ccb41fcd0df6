/**
 * The one catalogue of coded errors.
 *
 * Two families live here:
 * - {@link AckCode}: what an Ack says about a refused event or batch. These strings are part of
 *   the public contract (agents branch on them), so they never change meaning.
 * - {@link PolkuError}: failures of the gateway itself (bad configuration, a pipeline module that
 *   does not load), each with a stable `code`, raised through {@link polkuError}.
 */

/** Codes carried in `AckError.code`. `retryable` says whether sending the same event later can succeed. */
export const AckCodes = {
  /** The gRPC message could not be decoded as an IngestBatch, or it carried no payload. */
  INVALID_BATCH: { retryable: false, scope: 'batch' },
  /** The batch exceeds the message size or event count limit. */
  BATCH_TOO_LARGE: { retryable: false, scope: 'batch' },
  /** Raw bytes arrived for a source and format no ingestor handles. */
  UNKNOWN_SOURCE: { retryable: false, scope: 'batch' },
  /** The ingestor for the batch (an external plugin) is down or timed out; send it again later. */
  INGESTOR_UNAVAILABLE: { retryable: true, scope: 'batch' },
  /** An ingestor could not parse (part of) the raw bytes. */
  PARSE_ERROR: { retryable: false, scope: 'event' },
  /** The event breaks a rule of the envelope (for example an over-long id). */
  INVALID_EVENT: { retryable: false, scope: 'event' },
  /** The event's payload exceeds the payload size limit. */
  PAYLOAD_TOO_LARGE: { retryable: false, scope: 'event' },
  /** The event's metadata exceeds the metadata size limit. */
  METADATA_TOO_LARGE: { retryable: false, scope: 'event' },
  /** The buffer had no room (overflow policy `reject`, or `block` on a unary call). */
  BUFFER_FULL: { retryable: true, scope: 'event' },
  /** A filter in the pipeline dropped the event on purpose. */
  FILTERED: { retryable: false, scope: 'event' },
  /** A rate limit was exceeded; send it again later. */
  RATE_LIMITED: { retryable: true, scope: 'event' },
  /** The sampler left the event out (kept only a fraction of its kind). */
  SAMPLED_OUT: { retryable: false, scope: 'event' },
  /** The event repeats one accepted within the deduplication window. */
  DUPLICATE: { retryable: false, scope: 'event' },
  /** The event failed a validation rule of the pipeline. */
  VALIDATION_FAILED: { retryable: false, scope: 'event' },
  /** An enrichment did not finish in time and the pipeline drops such events. */
  ENRICH_TIMEOUT: { retryable: true, scope: 'event' },
  /** The event names only emitters that do not exist in `route_to`. */
  UNROUTABLE: { retryable: false, scope: 'event' },
  /** A middleware failed while processing the batch. */
  MIDDLEWARE_ERROR: { retryable: true, scope: 'event' },
  /** Durable mode: the log is full of undelivered events (or the disk is); send it again later. */
  STORAGE_FULL: { retryable: true, scope: 'event' },
  /** Durable mode: the log could not be written; nothing of the batch was stored. */
  STORAGE_ERROR: { retryable: true, scope: 'event' },
  /** The gateway is draining for shutdown and takes no new events. */
  SHUTTING_DOWN: { retryable: true, scope: 'batch' },
} as const satisfies Record<string, { retryable: boolean; scope: 'batch' | 'event' }>;

export type AckCode = keyof typeof AckCodes;

/**
 * Reasons an accepted-or-offered event can be dropped, as used in the `reason` label of
 * `polku_events_dropped_total`. A fixed set keeps the label's cardinality bounded.
 */
export const DropReasons = [
  'invalid_batch',
  'batch_too_large',
  'unknown_source',
  'ingestor_unavailable',
  'parse_error',
  'invalid_event',
  'payload_too_large',
  'metadata_too_large',
  'buffer_full',
  'buffer_overflow_evicted',
  'filtered',
  'rate_limited',
  'sampled_out',
  'duplicate',
  'validation_failed',
  'enrich_timeout',
  'unroutable',
  'middleware_error',
  'storage_full',
  'storage_error',
  'shutting_down',
  'emit_failed',
  'emit_retries_exhausted',
  'emitter_removed',
  'undelivered_at_shutdown',
] as const;

export type DropReason = (typeof DropReasons)[number];

/** The drop reason that counts an event refused with `code`. */
export function dropReasonOf(code: AckCode): DropReason {
  return code.toLowerCase() as DropReason;
}

/** Codes of the gateway's own failures. */
export const ErrorCodes = {
  POLKU_ERR_ENV_INVALID: 'invalid environment variable',
  POLKU_ERR_CONFIG_NOT_FOUND: 'pipeline module not found',
  POLKU_ERR_CONFIG_INVALID: 'pipeline module is invalid',
  POLKU_ERR_PIPELINE_INVALID: 'pipeline definition is invalid',
  POLKU_ERR_LISTEN: 'could not listen',
  POLKU_ERR_CLI_USAGE: 'bad command line',
  POLKU_ERR_LOG_DAMAGED: 'the durable log has corrupt records or unreadable bytes',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error of the gateway itself, with a stable code. */
export class PolkuError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolkuError';
    this.code = code;
  }
}

/** Builds a {@link PolkuError}: `polkuError('POLKU_ERR_ENV_INVALID', 'POLKU_BATCH_SIZE must be …')`. */
export function polkuError(code: ErrorCode, message: string, cause?: unknown): PolkuError {
  return new PolkuError(code, message, cause === undefined ? undefined : { cause });
}

/**
 * True for a {@link PolkuError} from any copy of this module: a pipeline module loaded through
 * tsx gets its own copy, so `instanceof` alone would miss its errors.
 */
export function isPolkuError(err: unknown): err is PolkuError {
  return (
    err instanceof PolkuError ||
    (err instanceof Error &&
      err.name === 'PolkuError' &&
      typeof (err as PolkuError).code === 'string' &&
      (err as PolkuError).code in ErrorCodes)
  );
}
