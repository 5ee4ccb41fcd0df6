import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the scrape-time gauges read from each queue. */
export interface QueueGaugeSource {
  readonly name: string;
  readonly depth: number;
  readonly lastBatchSucceeded: boolean;
}

/** One emitter's series, bound once so a batch's delivery does no label lookups. */
export interface EmitterSeries {
  readonly forwarded: { inc(n: number): void };
  readonly retried: { inc(n: number): void };
  readonly batchSize: { observe(v: number): void };
  readonly emitDuration: { observe(seconds: number): void };
}

/** Per-emitter delivery metrics, labelled by emitter name (a bounded, operator-chosen set). */
export class EmitterQueueMetrics {
  readonly forwarded: Counter<'emitter'>;
  readonly retried: Counter<'emitter'>;
  readonly batchSize: Histogram<'emitter'>;
  readonly emitDuration: Histogram<'emitter'>;
  readonly healthy: Gauge<'emitter'>;
  readonly queued: Gauge<'emitter'>;

  /** `queues` is read at scrape time for the health and depth gauges. */
  constructor(registry: Registry, queues: () => Iterable<QueueGaugeSource>) {
    this.forwarded = new Counter({
      name: 'polku_events_forwarded_total',
      help: 'Events delivered to an emitter',
      labelNames: ['emitter'],
      registers: [registry],
    });
    this.retried = new Counter({
      name: 'polku_emit_retries_total',
      help: 'Events sent again after a retryable emit failure',
      labelNames: ['emitter'],
      registers: [registry],
    });
    this.batchSize = new Histogram({
      name: 'polku_emit_batch_size',
      help: 'Events per batch handed to an emitter',
      labelNames: ['emitter'],
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    });
    this.emitDuration = new Histogram({
      name: 'polku_emit_duration_seconds',
      help: 'Time an emitter took to answer one batch (flush duration)',
      labelNames: ['emitter'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.healthy = new Gauge({
      name: 'polku_emitter_healthy',
      help: '1 when the emitter is healthy (its last batch succeeded and it reports healthy)',
      labelNames: ['emitter'],
      registers: [registry],
      collect() {
        for (const q of queues()) this.set({ emitter: q.name }, q.lastBatchSucceeded ? 1 : 0);
      },
    });
    this.queued = new Gauge({
      name: 'polku_emitter_queue_events',
      help: 'Events waiting for or in delivery to an emitter',
      labelNames: ['emitter'],
      registers: [registry],
      collect() {
        for (const q of queues()) this.set({ emitter: q.name }, q.depth);
      },
    });
  }

  /** The series of the emitter `name`, for its queue (memory or durable). */
  seriesOf(name: string): EmitterSeries {
    return {
      forwarded: this.forwarded.labels(name),
      retried: this.retried.labels(name),
      batchSize: this.batchSize.labels(name),
      emitDuration: this.emitDuration.labels(name),
    };
  }
}
