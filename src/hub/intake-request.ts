import type { AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { IngestProblem } from '../ingest/ingestor.js';
import type { WireEvents } from '../ingest/wire-events.js';

/**
 * What a receiver hands the hub, in its one call (`hub.submit`): the events of one message from
 * one source, or the raw bytes an ingestor is to parse, or the refusal of a message the receiver
 * could not read. The hub answers with the Ack; the receiver maps it to its protocol's answer.
 */
export interface IntakeRequest {
  readonly source: string;
  readonly cluster: string;
  readonly payload: IntakePayload;
  /** A unary call: it never waits for room in the buffer, whatever the overflow policy. */
  readonly unary?: boolean;
  /** When the message arrived; default: the hub's clock, now. */
  readonly receivedAtNs?: bigint;
  /**
   * The API key the caller presented (HTTP `X-API-Key`, gRPC metadata `x-api-key`), as sent.
   * When tenants are configured the hub resolves it to a tenant (or refuses the message with
   * UNAUTHENTICATED / PERMISSION_DENIED); without tenants it is ignored.
   */
  readonly apiKey?: string | undefined;
}

export type IntakePayload =
  /** Ready events. `wire`, from the gRPC batch decoder, lets durable mode store them as the bytes they came in. */
  | {
      readonly kind: 'events';
      readonly events: Event[];
      readonly wire?: WireEvents | undefined;
      /**
       * Parts of the message the receiver parsed itself and could not turn into events (the HTTP
       * receiver runs the JSON ingestor so it can stamp per-event metadata): each is counted and
       * answered as a PARSE_ERROR, before the events' own refusals, exactly as raw bytes' would be.
       */
      readonly problems?: readonly IngestProblem[] | undefined;
    }
  /** Bytes for the ingestor claiming the source, else the one for `format`, else the default ingestor. */
  | { readonly kind: 'raw'; readonly data: Uint8Array; readonly format: string }
  /** A message the receiver could not decode or size-check: counted and refused as one. */
  | { readonly kind: 'unreadable'; readonly code: AckCode; readonly message: string };

/**
 * The bound on one stream's messages waiting for their answers: reading stops once `batches` wait,
 * or once those waiting hold `bytes` or more (at least one message always fits).
 */
export interface StreamWindow {
  readonly batches: number;
  readonly bytes: number;
}
