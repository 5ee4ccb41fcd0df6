import type { Emitter, EmitterHealth } from '../emit/emitter.js';
import type { QueueGaugeSource } from './emitter-queue-metrics.js';

/**
 * What the hub needs of one emitter's queue, in memory or durable: routing reads `name` and
 * `isDefault`; admission `kick`s it; shutdown drains it.
 */
export interface DeliveryQueue extends QueueGaugeSource {
  readonly name: string;
  readonly emitter: Emitter;
  /** Whether events with an empty `route_to` go to this emitter. */
  readonly isDefault: boolean;
  /** New events were admitted: start sending if idle. */
  kick(): void;
  /** Send whatever is pending without waiting for a full batch. */
  startDraining(): void;
  /** Resolves when nothing is pending, in flight or waiting for a retry. */
  whenIdle(): Promise<void>;
  /** Stops at the drain deadline; returns how many events this queue had not delivered. */
  abandon(): number;
  health(): Promise<EmitterHealth>;
}
