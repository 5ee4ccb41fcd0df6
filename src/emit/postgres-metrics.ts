import { Counter, Histogram, type Registry } from 'prom-client';
import type { EmitResult } from './emitter.js';

const OUTCOMES = ['success', 'partial', 'retryable', 'failed'] as const satisfies ReadonlyArray<EmitResult['status']>;
const ROW_RESULTS = ['inserted', 'duplicate', 'rejected'] as const;
/** Why a statement failed: bounded, one label value each. */
export const POSTGRES_FAILURE_KINDS = ['connection', 'timeout', 'busy', 'rejected', 'config', 'other'] as const;
export type PostgresFailureKind = (typeof POSTGRES_FAILURE_KINDS)[number];

/** One emitter's series, created up front so a dashboard sees zeros rather than gaps. */
export interface PostgresSeries {
  batch(outcome: EmitResult['status']): void;
  rows(inserted: number, duplicate: number, rejected: number): void;
  failure(kind: PostgresFailureKind): void;
  statement(seconds: number): void;
}

/** Metrics shared by every PostgresEmitter of one registry (labelled by emitter). */
export class PostgresEmitterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, PostgresEmitterMetrics>();
  readonly batches: Counter<'emitter' | 'outcome'>;
  readonly rows: Counter<'emitter' | 'result'>;
  readonly failures: Counter<'emitter' | 'kind'>;
  readonly seconds: Histogram<'emitter'>;

  static in(registry: Registry): PostgresEmitterMetrics {
    let m = PostgresEmitterMetrics.byRegistry.get(registry);
    if (!m) PostgresEmitterMetrics.byRegistry.set(registry, (m = new PostgresEmitterMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    this.batches = new Counter({
      name: 'polku_postgres_batches_total',
      help: 'Batches written to PostgreSQL, by result (success, partial, retryable, failed)',
      labelNames: ['emitter', 'outcome'],
      registers: [registry],
    });
    this.rows = new Counter({
      name: 'polku_postgres_rows_total',
      help: 'Events sent to PostgreSQL: inserted, duplicate (the id was already there: a resend), rejected by the server',
      labelNames: ['emitter', 'result'],
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'polku_postgres_failures_total',
      help: 'Failed statements, by kind (connection, timeout, busy, rejected, config, other)',
      labelNames: ['emitter', 'kind'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'polku_postgres_statement_seconds',
      help: 'Time from sending an INSERT to its answer',
      labelNames: ['emitter'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }

  series(emitter: string): PostgresSeries {
    const batches = new Map(OUTCOMES.map((o) => [o, this.batches.labels(emitter, o)] as const));
    const [inserted, duplicate, rejected] = ROW_RESULTS.map((r) => this.rows.labels(emitter, r));
    const failures = new Map(POSTGRES_FAILURE_KINDS.map((k) => [k, this.failures.labels(emitter, k)] as const));
    for (const c of [...batches.values(), inserted!, duplicate!, rejected!, ...failures.values()]) c.inc(0);
    this.seconds.zero({ emitter });
    const seconds = this.seconds.labels(emitter);
    return {
      batch: (outcome) => batches.get(outcome)!.inc(),
      rows: (i, d, r) => {
        if (i > 0) inserted!.inc(i);
        if (d > 0) duplicate!.inc(d);
        if (r > 0) rejected!.inc(r);
      },
      failure: (kind) => failures.get(kind)!.inc(),
      statement: (s) => seconds.observe(s),
    };
  }
}
