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

/**
 * A queue's health: its last send's failure if the last send failed, else what the emitter says
 * of itself (healthy when it has no health check; a check that throws is an unhealthy answer).
 */
export async function queueHealth(lastError: string | null, emitter: Emitter): Promise<EmitterHealth> {
  if (lastError !== null) return { healthy: false, message: lastError };
  if (!emitter.health) return { healthy: true, message: 'ok' };
  try {
    return await emitter.health();
  } catch (err) {
    return { healthy: false, message: `health check threw: ${(err as Error).message}` };
  }
}
