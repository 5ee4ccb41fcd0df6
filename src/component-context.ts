import type { Registry } from 'prom-client';
import type { Clock, Timers } from './clock.js';
import type { Logger } from './observability/logger.js';

/**
 * What the hub gives each pipeline component (ingestor, middleware, emitter) once, when it is
 * built: where to register metrics, a logger to take a child of, and injectable time.
 */
export interface ComponentContext {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  /**
   * Resolves once the queue of the emitter named `emitter` holds nothing waiting, in flight or
   * waiting for a retry: every event accepted so far for it is delivered or given up (counted).
   * Set by the hub; `polku/testing`'s `InMemoryEmitter.drained()` waits on it.
   */
  readonly whenDelivered?: (emitter: string) => Promise<void>;
}
