import { Counter, Registry } from 'prom-client';
import { DropReasons, type DropReason } from '../errors.js';

/** A fresh registry for one gateway (tests run several in one process). */
export function createRegistry(): Registry {
  return new Registry();
}

/**
 * Bounds a label fed by client-chosen values (sources): the first `max` distinct values keep their
 * own series, later ones fold into `other`. Upstream POLKU labelled by raw client values and could
 * be made to grow without limit.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(value);
    return value;
  }
}

/**
 * `polku_events_dropped_total{reason}`: every event the gateway lets go of without delivering it,
 * from a fixed set of reasons. Shared by intake, buffer and emitter queues.
 */
export class DropCounter {
  private readonly counter: Counter<'reason'>;
  private readonly children = new Map<DropReason, Counter.Internal>();

  constructor(registry: Registry) {
    this.counter = new Counter({
      name: 'polku_events_dropped_total',
      help: 'Events dropped, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    // Start every series at zero so dashboards and rate() see zeros rather than gaps
    // (prom-client exports a labelled child only once it has been incremented).
    for (const reason of DropReasons) {
      const child = this.counter.labels(reason);
      child.inc(0);
      this.children.set(reason, child);
    }
  }

  count(reason: DropReason, n = 1): void {
    if (n > 0) this.children.get(reason)!.inc(n);
  }
}
