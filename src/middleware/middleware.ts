import type { ComponentContext } from '../component-context.js';
import type { AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';

/** What a middleware can tell the gateway about the batch it is processing. */
export interface MiddlewareContext {
  /** The batch's source (as sent by the agent). */
  readonly source: string;
  readonly cluster: string;
  /** Receive time of the batch, nanoseconds since the epoch. */
  readonly receivedAtNs: bigint;
  /**
   * Records that `event` is dropped on purpose, with the Ack code the caller will see and a short
   * message. The middleware must also leave the event out of the array it returns.
   */
  drop(event: Event, code: AckCode, message: string): void;
}

/**
 * One step of the pipeline. It receives the batch's surviving events and returns the events that
 * go on (changed or not, in order). Working on whole batches keeps the hot path to one call (and
 * at most one promise) per batch rather than per event.
 */
export interface Middleware {
  /** A stable name, used in logs and metrics. */
  readonly name: string;
  /**
   * True when `process` only ever drops events: what it returns is some of the very objects it
   * was given, in order, none changed (filters, samplers, rate limiters, deduplicators). Durable
   * mode then still stores events as the protobuf bytes they arrived in instead of encoding them
   * again. Leave it unset for a step that edits or replaces events: such an event would be stored
   * as it arrived, not as the step left it.
   */
  readonly keepsEventsUnchanged?: boolean;
  process(events: Event[], ctx: MiddlewareContext): Event[] | Promise<Event[]>;
  /**
   * Events this step let through that a later step or the buffer then refused with a retryable
   * code (RATE_LIMITED, BUFFER_FULL, SHUTTING_DOWN, …): the client will send them again, so state
   * kept for them (a deduplicator's key) should be undone. Optional.
   */
  refusedLater?(events: readonly Event[]): void;
  /**
   * Called once when the hub is built, before any event: register metrics in `ctx.registry`,
   * take `ctx.logger.child(...)`, keep `ctx.clock`. Optional.
   */
  init?(ctx: ComponentContext): void;
  /** Called once while the hub drains, after delivery: stop watches, close connections. Optional. */
  shutdown?(): void | Promise<void>;
}
