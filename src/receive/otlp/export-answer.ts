import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { AckCodes, isAckCode, refusalOf, type AckCode } from '../../errors.js';
import { ExportLogsServiceResponse } from '../../gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { Ack } from '../../gen/polku/v1/gateway.js';

/** What a retryable refusal tells the sender to wait (RetryInfo over gRPC, Retry-After over HTTP). */
export const OTLP_RETRY_AFTER_SECONDS = 1;
/** Refusal messages quoted in `partial_success.error_message`, at most. */
const QUOTED_REFUSALS = 3;

/**
 * An Export request's answer, whatever the transport:
 * - `accepted`: the request succeeded; `rejected` records were refused one by one (OTLP's
 *   `partial_success`, which senders must not retry), with the reasons in `message`.
 * - `refused`: nothing was taken and the catalogue says the refusal fails the call (a full buffer,
 *   shutdown, an unreadable body): the gRPC status and HTTP status of its row, and whether the
 *   sender should retry (then with RetryInfo / Retry-After).
 */
export type ExportAnswer =
  | { readonly kind: 'accepted'; readonly rejected: number; readonly message: string }
  | {
      readonly kind: 'refused';
      readonly code: AckCode;
      readonly grpc: GrpcStatus;
      readonly http: number;
      readonly retryable: boolean;
      readonly message: string;
    };

/**
 * Maps the hub's Ack to OTLP's answer through the one status table (`refusalOf`). A record
 * refused with a code whose gRPC status is OK (filtered, sampled out, a duplicate) was taken and
 * decided on, not rejected: it is not counted in `rejected_log_records`.
 */
export function answerOf(ack: Ack): ExportAnswer {
  const refusal = refusalOf(ack);
  if (refusal) {
    return {
      kind: 'refused',
      code: refusal.code,
      grpc: GrpcStatus[refusal.grpc],
      http: refusal.http,
      retryable: refusal.retryable,
      message: ack.errors.map((e) => `${e.code}: ${e.message}`).join('; '),
    };
  }
  let rejected = 0;
  const quoted: string[] = [];
  for (const e of ack.errors) {
    if (isAckCode(e.code) && AckCodes[e.code].grpc === 'OK') continue;
    rejected++;
    if (quoted.length < QUOTED_REFUSALS) quoted.push(`${e.code}: ${e.message}`);
  }
  const more = rejected > quoted.length ? `; and ${rejected - quoted.length} more` : '';
  return { kind: 'accepted', rejected, message: rejected === 0 ? '' : `${rejected} log records refused: ${quoted.join('; ')}${more}` };
}

/**
 * `google.rpc.Status` with a `google.rpc.RetryInfo` detail, as OTLP's "Failures" section asks of a
 * retryable refusal (the grpc-status-details-bin trailer, and the body of an HTTP error). Three
 * small well-known messages written field by field: Status {1 code, 2 message, 3 details: Any},
 * Any {1 type_url, 2 value}, RetryInfo {1 retry_delay: Duration {1 seconds}}.
 */
export function rpcStatus(code: number, message: string, retryAfterSeconds?: number): Uint8Array {
  const w = new BinaryWriter();
  if (code !== 0) w.uint32(8).int32(code);
  if (message !== '') w.uint32(18).string(message);
  if (retryAfterSeconds !== undefined) {
    const retryInfo = new BinaryWriter().uint32(10).fork().uint32(8).int64(retryAfterSeconds).join().finish();
    w.uint32(26).fork().uint32(10).string('type.googleapis.com/google.rpc.RetryInfo').uint32(18).bytes(retryInfo).join();
  }
  return w.finish();
}

/**
 * An `ExportLogsServiceResponse` with its `partial_success` when records were rejected (empty when
 * none were, as OTLP asks).
 */
export function exportResponse(rejected: number, message: string): Uint8Array {
  if (rejected === 0) return new Uint8Array(0);
  return ExportLogsServiceResponse.encode({ partialSuccess: { rejectedLogRecords: BigInt(rejected), errorMessage: message } }).finish();
}
