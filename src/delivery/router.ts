import type { DeliveryQueue } from './delivery-queue.js';
import type { Event } from '../gen/polku/v1/event.js';

/**
 * Upstream POLKU's prefix for a plugin emitter in `route_to`: `external:<name>` reaches the
 * emitter `<name>`. Plugin emitters (registered, discovered, or an ExternalEmitter in the
 * pipeline) share one name space with the built-in ones here, so the prefix is an alias, never
 * a second emitter; an emitter whose own name starts with it keeps that exact name.
 */
export const EXTERNAL_ROUTE_PREFIX = 'external:';

/**
 * Decides which emitter queues an event goes to: every default emitter when `route_to` is empty,
 * otherwise the named ones (by name, or as `external:<name>`). Returns shared arrays for the
 * common cases so routing allocates nothing per event.
 */
export class Router<Q extends DeliveryQueue = DeliveryQueue> {
  private readonly defaults: readonly Q[];
  private readonly single = new Map<string, readonly Q[]>();

  constructor(queues: readonly Q[]) {
    this.defaults = queues.filter((q) => q.isDefault);
    for (const q of queues) this.single.set(EXTERNAL_ROUTE_PREFIX + q.name, [q]);
    // Exact names last: they win over an alias spelled the same.
    for (const q of queues) this.single.set(q.name, [q]);
  }

  /** The queues for this event; empty when nothing it names exists (the event is unroutable). */
  targetsOf(event: Event): readonly Q[] {
    const names = event.routeTo;
    if (names.length === 0) return this.defaults;
    if (names.length === 1) return this.single.get(names[0]!) ?? (NONE as readonly Q[]);
    const targets: Q[] = [];
    for (const name of names) {
      const q = this.single.get(name)?.[0];
      if (q && !targets.includes(q)) targets.push(q);
    }
    return targets;
  }
}

const NONE: readonly DeliveryQueue[] = Object.freeze([]);
