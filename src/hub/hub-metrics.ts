import { Counter, Histogram, type Registry } from 'prom-client';
import { BoundedLabel } from '../observability/metrics.js';

/** Distinct sources with their own metric series when neither POLKU_METRICS_MAX_SOURCES nor the runtime says. */
export const DEFAULT_MAX_SOURCE_LABELS = 50;

/** Intake metrics: what arrived and what was accepted, by (bounded) source. */
export class HubMetrics {
  private readonly received: Counter<'source'>;
  private readonly accepted: Counter<'source'>;
  readonly processing: Histogram;
  private readonly dropped: Counter<'middleware' | 'code'>;
  private readonly droppedChildren = new Map<string, Counter.Internal>();
  private readonly sources: BoundedLabel;
  private readonly children = new Map<string, { received: Counter.Internal; accepted: Counter.Internal }>();

  constructor(registry: Registry, maxSourceLabels: number) {
    this.sources = new BoundedLabel(maxSourceLabels);
    this.received = new Counter({
      name: 'polku_events_received_total',
      help: 'Events received from agents, by source (sources past the label limit count as "other")',
      labelNames: ['source'],
      registers: [registry],
    });
    this.accepted = new Counter({
      name: 'polku_events_accepted_total',
      help: 'Events accepted into the buffer, by source',
      labelNames: ['source'],
      registers: [registry],
    });
    this.dropped = new Counter({
      name: 'polku_middleware_dropped_total',
      help: 'Events a middleware dropped, by middleware name and Ack code',
      labelNames: ['middleware', 'code'],
      registers: [registry],
    });
    this.processing = new Histogram({
      name: 'polku_batch_processing_seconds',
      help: 'Time from receiving a batch to its Ack (ingest, middleware, buffer admission)',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    });
  }

  /** Counts events a middleware dropped (names are the operator's, codes a fixed set). */
  middlewareDropped(middleware: string, code: string, n = 1): void {
    const key = `${middleware}\u0000${code}`;
    let child = this.droppedChildren.get(key);
    if (!child) {
      child = this.dropped.labels(middleware, code);
      this.droppedChildren.set(key, child);
    }
    child.inc(n);
  }

  /** Counts one batch's events; one label lookup per batch, not per event. */
  recordBatch(source: string, received: number, accepted: number, seconds: number): void {
    let child = this.children.get(source);
    if (!child) {
      const label = this.sources.of(source || 'unknown');
      child = { received: this.received.labels(label), accepted: this.accepted.labels(label) };
      // Folded sources share the "other" children; remember only a bounded number of keys.
      if (this.children.size < 4096) this.children.set(source, child);
    }
    if (received > 0) child.received.inc(received);
    if (accepted > 0) child.accepted.inc(accepted);
    this.processing.observe(seconds);
  }
}
