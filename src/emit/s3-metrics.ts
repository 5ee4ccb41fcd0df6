import { Counter, Histogram, type Registry } from 'prom-client';

const OUTCOMES = ['success', 'retryable', 'failed'] as const;
export type S3Outcome = (typeof OUTCOMES)[number];

/** One emitter's series, created up front so a dashboard sees zeros rather than gaps. */
export interface S3Series {
  /** One PutObject: its outcome, how many events it held, bytes stored (0 unless stored), seconds. */
  object(outcome: S3Outcome, events: number, bytes: number, seconds: number): void;
}

/** Metrics shared by every S3Emitter of one registry (labelled by emitter). */
export class S3EmitterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, S3EmitterMetrics>();
  readonly objects: Counter<'emitter' | 'outcome'>;
  readonly events: Counter<'emitter' | 'outcome'>;
  readonly bytes: Counter<'emitter'>;
  readonly seconds: Histogram<'emitter'>;

  static in(registry: Registry): S3EmitterMetrics {
    let m = S3EmitterMetrics.byRegistry.get(registry);
    if (!m) S3EmitterMetrics.byRegistry.set(registry, (m = new S3EmitterMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    this.objects = new Counter({
      name: 'polku_s3_objects_total',
      help: 'PutObject requests, by outcome (success, retryable, failed)',
      labelNames: ['emitter', 'outcome'],
      registers: [registry],
    });
    this.events = new Counter({
      name: 'polku_s3_events_total',
      help: 'Events in PutObject requests, by the outcome of their object',
      labelNames: ['emitter', 'outcome'],
      registers: [registry],
    });
    this.bytes = new Counter({
      name: 'polku_s3_bytes_total',
      help: 'Bytes stored (after gzip when on)',
      labelNames: ['emitter'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'polku_s3_put_seconds',
      help: 'Time from sending a PutObject to its answer',
      labelNames: ['emitter'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }

  series(emitter: string): S3Series {
    const objects = new Map(OUTCOMES.map((o) => [o, this.objects.labels(emitter, o)] as const));
    const events = new Map(OUTCOMES.map((o) => [o, this.events.labels(emitter, o)] as const));
    for (const c of [...objects.values(), ...events.values()]) c.inc(0);
    const bytes = this.bytes.labels(emitter);
    bytes.inc(0);
    this.seconds.zero({ emitter });
    const seconds = this.seconds.labels(emitter);
    return {
      object(outcome, n, b, s) {
        objects.get(outcome)!.inc();
        events.get(outcome)!.inc(n);
        if (b > 0) bytes.inc(b);
        seconds.observe(s);
      },
    };
  }
}
