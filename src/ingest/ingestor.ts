import type { ComponentContext } from '../component-context.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { IntakeLimits } from './intake-rules.js';

/** What an ingestor knows about the bytes it is asked to parse. */
export interface IngestContext {
  /** The batch's `source` (the agent's name for itself). */
  readonly source: string;
  /** The batch's `cluster`. */
  readonly cluster: string;
  /** The format hint sent with the raw bytes (may be empty). */
  readonly format: string;
  /**
   * The gateway's intake limits. A decoder checks them as it goes (events per message, bytes per
   * event, nesting depth) and stops before materialising more than they allow; the hub checks
   * them again on what it returns. Absent when an ingestor is called outside a hub (tests).
   */
  readonly limits?: IntakeLimits;
}

/** One part of the input an ingestor could not turn into an event. Becomes a `PARSE_ERROR` in the Ack. */
export interface IngestProblem {
  readonly message: string;
  /** Byte offset into the raw data where the problem starts, when known. */
  readonly offset?: number;
  /**
   * Which element of the input it was (0-based: an array's element, NDJSON's n-th non-blank line),
   * when the problem is one element's; absent when the input as a whole could not be read. With
   * it a caller can place each event and each problem back in the order they were sent.
   */
  readonly index?: number;
}

/**
 * The result of parsing: the events that could be made, and a problem for each part that could
 * not. Partial success is normal: one bad line in NDJSON does not cost the good ones.
 */
export interface IngestResult {
  readonly events: Event[];
  readonly problems: IngestProblem[];
  /**
   * Set when the ingestor could not run at all (a plugin that is down, timed out, or whose
   * circuit is open): the whole batch is refused `INGESTOR_UNAVAILABLE`, which agents may retry.
   */
  readonly unavailable?: string;
  /**
   * Set when the input holds more events than `limits.maxBatchEvents`: the ingestor stopped
   * counting there rather than build them, and the whole batch is refused `BATCH_TOO_LARGE` with
   * this message (which names the limit). `events` and `problems` are then ignored.
   */
  readonly tooLarge?: string;
}

/** Turns raw bytes from an agent into events. */
export interface Ingestor {
  /** A stable name, used in logs and metrics. */
  readonly name: string;
  /** Batch sources this ingestor claims. A source match wins over a format match. */
  readonly sources?: readonly string[];
  /** Format hints (`RawPayload.format`) this ingestor understands, compared case-insensitively. */
  readonly formats?: readonly string[];
  /**
   * Parses `data`. Synchronous ingestors keep the hot path free of promises; an ingestor that
   * must call out (a plugin) returns a promise.
   */
  ingest(ctx: IngestContext, data: Uint8Array): IngestResult | Promise<IngestResult>;
  /** Whether the ingestor can work (a plugin that answers); feeds Health and readiness. Optional. */
  health?(): { healthy: boolean; message?: string } | Promise<{ healthy: boolean; message?: string }>;
  /** Called once on gateway shutdown (close connections). Optional. */
  shutdown?(): void | Promise<void>;
  /**
   * Called once when the hub is built, before any event: register metrics in `ctx.registry`,
   * take `ctx.logger.child(...)`, keep `ctx.clock`. Optional.
   */
  init?(ctx: ComponentContext): void;
}
