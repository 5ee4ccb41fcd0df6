import type { DeliveryQueue } from './delivery-queue.js';
import type { Event } from '../gen/polku/v1/event.js';

/**
 * Decides which emitter queues an event goes to: every default emitter when `route_to` is empty,
 * otherwise the named ones. Returns shared arrays for the common cases so routing allocates
 * nothing per event.
 */
export class Router<Q extends DeliveryQueue = DeliveryQueue> {
  private readonly defaults: readonly Q[];
  private readonly single = new Map<string, readonly Q[]>();

  constructor(queues: readonly Q[]) {
    this.defaults = queues.filter((q) => q.isDefault);
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
