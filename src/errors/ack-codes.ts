import type { GrpcStatusName } from './status.js';

/**
 * Codes carried in `AckError.code`, with what each means to a client.
 *
 * - `retryable`: whether sending the same event later can succeed.
 * - `scope`: whether the code refuses a whole message or one event of it.
 * - `grpc` / `http`: the status a receiver answers with when it reports this refusal as a status.
 * - `failsCall`: when a unary request (SendEvent, one HTTP POST) is refused whole with this code,
 *   the call fails with that status; otherwise it succeeds and the refusal is in the Ack. Problems
 *   with the request or the gateway's capacity fail the call, so plain clients notice and back
 *   off; a decision of the pipeline about an event's content (filtered, rate limited, duplicate,
 *   unparsable) is an answer, listed per event. This is exactly today's SendEvent behaviour.
 *
 * Status choices, where they are not obvious:
 * - BUFFER_FULL and RATE_LIMITED are RESOURCE_EXHAUSTED / 429: "slow down, then send again".
 * - STORAGE_FULL is RESOURCE_EXHAUSTED / 503 rather than 507: OTLP and most HTTP clients retry
 *   429, 502, 503 and 504 only, and a full log drains as emitters catch up.
 * - UNKNOWN_SOURCE and UNROUTABLE are FAILED_PRECONDITION: the request is well formed, but the
 *   ingestor or emitter it needs is not in the live table (a plugin may register it later).
 * - FILTERED, SAMPLED_OUT and DUPLICATE are OK / 200: the pipeline took the event and decided;
 *   nothing is wrong with the request, and sending it again changes nothing.
 * - Size limits map to 413 over HTTP (the body is too large) and INVALID_ARGUMENT over gRPC.
 *
 * The code strings are the wire contract: agents branch on them. Never rename one.
 */
export const AckCodes = {
  /** The message could not be decoded (an IngestBatch, an IngestEvent), or it carried no payload. */
  INVALID_BATCH: { retryable: false, scope: 'batch', grpc: 'INVALID_ARGUMENT', http: 400, failsCall: true },
  /** The message exceeds the message size or event count limit. */
  BATCH_TOO_LARGE: { retryable: false, scope: 'batch', grpc: 'INVALID_ARGUMENT', http: 413, failsCall: true },
  /** Raw bytes arrived for a source and format no ingestor handles. */
  UNKNOWN_SOURCE: { retryable: false, scope: 'batch', grpc: 'FAILED_PRECONDITION', http: 400, failsCall: false },
  /** The ingestor for the batch (an external plugin) is down or timed out; send it again later. */
  INGESTOR_UNAVAILABLE: { retryable: true, scope: 'batch', grpc: 'UNAVAILABLE', http: 503, failsCall: false },
  /** An ingestor could not parse (part of) the raw bytes. */
  PARSE_ERROR: { retryable: false, scope: 'event', grpc: 'INVALID_ARGUMENT', http: 400, failsCall: false },
  /** The event breaks a rule of the envelope (for example an over-long id). */
  INVALID_EVENT: { retryable: false, scope: 'event', grpc: 'INVALID_ARGUMENT', http: 400, failsCall: false },
  /** The event's payload exceeds the payload size limit. */
  PAYLOAD_TOO_LARGE: { retryable: false, scope: 'event', grpc: 'INVALID_ARGUMENT', http: 413, failsCall: false },
  /** The event's metadata exceeds the metadata size limit. */
  METADATA_TOO_LARGE: { retryable: false, scope: 'event', grpc: 'INVALID_ARGUMENT', http: 413, failsCall: false },
  /** The buffer had no room (overflow policy `reject`, or `block` on a unary call). */
  BUFFER_FULL: { retryable: true, scope: 'event', grpc: 'RESOURCE_EXHAUSTED', http: 429, failsCall: true },
  /** A filter in the pipeline dropped the event on purpose. */
  FILTERED: { retryable: false, scope: 'event', grpc: 'OK', http: 200, failsCall: false },
  /** A rate limit was exceeded; send it again later. */
  RATE_LIMITED: { retryable: true, scope: 'event', grpc: 'RESOURCE_EXHAUSTED', http: 429, failsCall: false },
  /** The sampler left the event out (kept only a fraction of its kind). */
  SAMPLED_OUT: { retryable: false, scope: 'event', grpc: 'OK', http: 200, failsCall: false },
  /** The event repeats one accepted within the deduplication window. */
  DUPLICATE: { retryable: false, scope: 'event', grpc: 'OK', http: 200, failsCall: false },
  /** The event failed a validation rule of the pipeline. */
  VALIDATION_FAILED: { retryable: false, scope: 'event', grpc: 'INVALID_ARGUMENT', http: 422, failsCall: false },
  /** An enrichment did not finish in time and the pipeline drops such events. */
  ENRICH_TIMEOUT: { retryable: true, scope: 'event', grpc: 'UNAVAILABLE', http: 503, failsCall: false },
  /** The event names only emitters that do not exist in `route_to`. */
  UNROUTABLE: { retryable: false, scope: 'event', grpc: 'FAILED_PRECONDITION', http: 422, failsCall: false },
  /** A middleware failed while processing the batch. */
  MIDDLEWARE_ERROR: { retryable: true, scope: 'event', grpc: 'INTERNAL', http: 500, failsCall: false },
  /** Durable mode: the log is full of undelivered events (or the disk is); send it again later. */
  STORAGE_FULL: { retryable: true, scope: 'event', grpc: 'RESOURCE_EXHAUSTED', http: 503, failsCall: false },
  /** Durable mode: the log could not be written; nothing of the batch was stored. */
  STORAGE_ERROR: { retryable: true, scope: 'event', grpc: 'UNAVAILABLE', http: 503, failsCall: false },
  /** The gateway is draining for shutdown and takes no new events. */
  SHUTTING_DOWN: { retryable: true, scope: 'batch', grpc: 'UNAVAILABLE', http: 503, failsCall: true },
  /** Tenants are configured and the caller presented no API key, or one no tenant has. */
  UNAUTHENTICATED: { retryable: false, scope: 'batch', grpc: 'UNAUTHENTICATED', http: 401, failsCall: true },
  /** The caller's tenant may not send events of this source. */
  PERMISSION_DENIED: { retryable: false, scope: 'batch', grpc: 'PERMISSION_DENIED', http: 403, failsCall: true },
} as const satisfies Record<string, AckCodeInfo>;

/** One row of {@link AckCodes}. */
export interface AckCodeInfo {
  readonly retryable: boolean;
  readonly scope: 'batch' | 'event';
  readonly grpc: GrpcStatusName;
  readonly http: number;
  readonly failsCall: boolean;
}

export type AckCode = keyof typeof AckCodes;

/** True when `code` (read off the wire, say) is one of the {@link AckCodes}. */
export function isAckCode(code: string): code is AckCode {
  return Object.hasOwn(AckCodes, code);
}

/**
 * Reasons of the `reason` label of `polku_events_dropped_total` for events refused at intake: one
 * per Ack code, its lower-case form. The `satisfies` makes a new Ack code without its reason (or a
 * misspelt one) a compile error.
 */
export const ACK_DROP_REASONS = {
  INVALID_BATCH: 'invalid_batch',
  BATCH_TOO_LARGE: 'batch_too_large',
  UNKNOWN_SOURCE: 'unknown_source',
  INGESTOR_UNAVAILABLE: 'ingestor_unavailable',
  PARSE_ERROR: 'parse_error',
  INVALID_EVENT: 'invalid_event',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  METADATA_TOO_LARGE: 'metadata_too_large',
  BUFFER_FULL: 'buffer_full',
  FILTERED: 'filtered',
  RATE_LIMITED: 'rate_limited',
  SAMPLED_OUT: 'sampled_out',
  DUPLICATE: 'duplicate',
  VALIDATION_FAILED: 'validation_failed',
  ENRICH_TIMEOUT: 'enrich_timeout',
  UNROUTABLE: 'unroutable',
  MIDDLEWARE_ERROR: 'middleware_error',
  STORAGE_FULL: 'storage_full',
  STORAGE_ERROR: 'storage_error',
  SHUTTING_DOWN: 'shutting_down',
  UNAUTHENTICATED: 'unauthenticated',
  PERMISSION_DENIED: 'permission_denied',
} as const satisfies { readonly [K in AckCode]: Lowercase<K> };

/** Reasons for events lost after they were accepted, on the delivery side. */
export const DELIVERY_DROP_REASONS = [
  /** `drop_oldest`: evicted from a full buffer to make room for newer events. */
  'buffer_overflow_evicted',
  /** An emitter reported the event failed and not retryable. */
  'emit_failed',
  /** Retries ran out. */
  'emit_retries_exhausted',
  /** The event's only emitter left the pipeline (a plugin unregistered) before delivery. */
  'emitter_removed',
  /** The shutdown deadline passed with the event still queued. */
  'undelivered_at_shutdown',
] as const;

/**
 * Every reason an accepted-or-offered event can be dropped. A fixed set keeps the label's
 * cardinality bounded.
 */
export type DropReason = (typeof ACK_DROP_REASONS)[AckCode] | (typeof DELIVERY_DROP_REASONS)[number];

export const DropReasons: readonly DropReason[] = [...Object.values(ACK_DROP_REASONS), ...DELIVERY_DROP_REASONS];

/** The drop reason that counts an event refused with `code`. */
export function dropReasonOf(code: AckCode): DropReason {
  return ACK_DROP_REASONS[code];
}

/** What a receiver needs of an Ack to answer a unary call: what was accepted and what refused. */
export interface AckSummary {
  readonly eventIds: readonly string[];
  readonly errors: ReadonlyArray<{ readonly code: string }>;
}

/**
 * How a receiver answers a unary request whose Ack is `ack`: `undefined` when the call succeeds
 * (something was accepted, or the refusal is an answer — see `failsCall`), else the row of the code
 * that refused it, whose `grpc` / `http` status the call fails with. Every receiver answers
 * through this, so one request gets the same verdict over every protocol.
 */
export function refusalOf(ack: AckSummary): (AckCodeInfo & { readonly code: AckCode }) | undefined {
  if (ack.eventIds.length > 0) return undefined;
  const code = ack.errors[0]?.code;
  if (code === undefined || !isAckCode(code)) return undefined;
  const info = AckCodes[code];
  return info.failsCall ? { code, ...info } : undefined;
}
