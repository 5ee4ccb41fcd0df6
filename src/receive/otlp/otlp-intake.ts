import { Counter } from 'prom-client';
import type { AckCode } from '../../errors.js';
import type { ExportLogsServiceRequest } from '../../gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { Event } from '../../gen/polku/v1/event.js';
import type { Ack } from '../../gen/polku/v1/gateway.js';
import type { Logger } from '../../observability/logger.js';
import type { ReceiverContext } from '../receiver.js';
import { answerOf, type ExportAnswer } from './export-answer.js';
import { decodeExportLogs, type ExportLimits } from './export-decoder.js';
import { eventsOfRequest, idProblem, OTLP_DEFAULT_SOURCE, type LogMapping } from './log-records.js';

/** An Export request as read off the wire, or why it could not be read. */
export type DecodedExport =
  | { readonly kind: 'request'; readonly request: ExportLogsServiceRequest }
  | { readonly kind: 'events'; readonly events: Event[] }
  | { readonly kind: 'unreadable'; readonly code: AckCode; readonly message: string };

export type OtlpTransport = 'grpc' | 'http';
type Result = 'accepted' | 'partial' | 'refused' | 'invalid' | 'not_found';

/**
 * What both OTLP transports share: decoding, the hand-over to the hub (one `submit` per Export
 * request, the request's records as that many events), the answer, and the counter
 * `polku_otlp_requests_total{transport, result}`.
 */
export class OtlpIntake {
  readonly log: Logger;
  private readonly requests: Counter<'transport' | 'result'>;
  private mappingWithBound: LogMapping | undefined;

  constructor(
    private readonly ctx: ReceiverContext,
    private readonly mapping: Omit<LogMapping, 'maxMetadataBytes'>,
  ) {
    this.log = ctx.logger.child({ component: 'otlp' });
    this.requests = new Counter({
      name: 'polku_otlp_requests_total',
      help: 'OTLP Export requests by transport (grpc, http) and result (accepted, partial, refused, invalid, not_found)',
      labelNames: ['transport', 'result'],
      registers: [ctx.registry],
    });
  }

  get maxMessageBytes(): number {
    return this.ctx.hub.limits.maxMessageBytes;
  }

  /** How records become events, with the hub's metadata bound (made again only when the bound changes: read per request). */
  get logMapping(): LogMapping {
    const maxMetadataBytes = this.ctx.hub.limits.maxMetadataBytes;
    if (this.mappingWithBound?.maxMetadataBytes !== maxMetadataBytes) this.mappingWithBound = { ...this.mapping, maxMetadataBytes };
    return this.mappingWithBound;
  }

  get limits(): ExportLimits {
    return this.ctx.hub.limits;
  }

  decoded(request: ExportLogsServiceRequest): DecodedExport {
    return { kind: 'request', request };
  }

  unreadable(code: AckCode, message: string): DecodedExport {
    return { kind: 'unreadable', code, message };
  }

  countRequest(transport: OtlpTransport, result: Result): void {
    this.requests.inc({ transport, result });
  }

  /**
   * Hands the request's records to the hub and answers. An unreadable request is handed over too,
   * so the hub counts and refuses it like any unreadable message. Not a unary submission: under
   * the overflow policy `block` an Export waits for room (the sender's deadline bounds the wait).
   */
  submit(decoded: DecodedExport, transport: OtlpTransport, apiKey?: string): ExportAnswer | Promise<ExportAnswer> {
    let ack: Ack | Promise<Ack>;
    const problem = decoded.kind === 'request' ? idProblem(decoded.request) : undefined;
    if (problem !== undefined) decoded = this.unreadable('INVALID_BATCH', `not a valid ExportLogsServiceRequest: ${problem}`);
    if (decoded.kind === 'unreadable') {
      ack = this.ctx.hub.submit({
        source: OTLP_DEFAULT_SOURCE,
        cluster: '',
        unary: true,
        payload: { kind: 'unreadable', code: decoded.code, message: decoded.message },
        apiKey,
      });
    } else {
      const events = decoded.kind === 'events' ? decoded.events : eventsOfRequest(decoded.request, this.logMapping);
      if (events.length === 0) {
        this.countRequest(transport, 'accepted');
        return { kind: 'accepted', rejected: 0, message: '' };
      }
      ack = this.ctx.hub.submit({
        source: OTLP_DEFAULT_SOURCE,
        cluster: '',
        payload: { kind: 'events', events },
        receivedAtNs: this.ctx.clock.nowNs(),
        apiKey,
      });
    }
    const invalid = decoded.kind === 'unreadable';
    return ack instanceof Promise ? ack.then((a) => this.answer(a, transport, invalid)) : this.answer(ack, transport, invalid);
  }

  private answer(ack: Ack, transport: OtlpTransport, invalid: boolean): ExportAnswer {
    const answer = answerOf(ack);
    this.countRequest(
      transport,
      invalid ? 'invalid' : answer.kind === 'refused' ? 'refused' : answer.rejected > 0 ? 'partial' : 'accepted',
    );
    return answer;
  }
}

/**
 * Decodes a protobuf `ExportLogsServiceRequest` straight into events (export-decoder.ts): strictly
 * (invalid UTF-8 in any string is refused, not replaced, and so is anything that is not the
 * message) and within the hub's limits; over `maxMessageBytes` is refused before a byte is read.
 * Never throws.
 */
export function decodeExportRequest(intake: OtlpIntake, bytes: Uint8Array): DecodedExport {
  if (bytes.length > intake.maxMessageBytes) {
    return intake.unreadable(
      'BATCH_TOO_LARGE',
      `message is ${bytes.length} bytes, limit ${intake.maxMessageBytes} (POLKU_MAX_MESSAGE_BYTES)`,
    );
  }
  return decodeExportLogs(bytes, intake.logMapping, intake.limits);
}
