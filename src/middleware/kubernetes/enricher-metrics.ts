import { Counter, Gauge, type Registry } from 'prom-client';

/** How a lookup ended: `result` and `reason` are fixed sets. */
export type LookupOutcome = 'hit_container_id' | 'hit_pod_name' | 'hit_pod_ip' | 'miss_not_found' | 'miss_not_synced' | 'no_key';

const LABELS: Record<LookupOutcome, { result: string; reason: string }> = {
  hit_container_id: { result: 'hit', reason: 'container_id' },
  hit_pod_name: { result: 'hit', reason: 'pod_name' },
  hit_pod_ip: { result: 'hit', reason: 'pod_ip' },
  miss_not_found: { result: 'miss', reason: 'not_found' },
  miss_not_synced: { result: 'miss', reason: 'not_synced' },
  no_key: { result: 'no_key', reason: 'none' },
};

/**
 * The Kubernetes enricher's metrics, labelled by middleware name; counted once per batch.
 * - `polku_k8s_enrich_lookups_total{middleware,result,reason}`: `hit` (by `container_id`,
 *   `pod_name`, `pod_ip`), `miss` (`not_found`, or `not_synced` before the first list), `no_key`;
 * - `polku_k8s_enrich_truncated_total{middleware}`: events that got less than their pod's context
 *   because the metadata limit would have been passed;
 * - `polku_k8s_pods_cached{middleware}`: pods held (deleted ones in their grace period included);
 * - `polku_k8s_pods_over_limit_total{middleware}`: pods not cached because `maxPods` was reached;
 * - `polku_k8s_pod_watch_restarts_total{middleware,why}`: the pod watch restarted after an
 *   `error`, or listed again (`relist`: 410 Gone or a restart).
 */
export class KubernetesEnricherMetrics {
  private readonly lookups: Record<LookupOutcome, Counter.Internal>;
  private readonly truncated: Counter.Internal;
  private readonly pods: Gauge.Internal<string>;
  private readonly overLimit: Counter.Internal;
  private readonly restarts: Counter<'middleware' | 'why'>;
  private overLimitSeen = 0;

  constructor(
    registry: Registry,
    private readonly middleware: string,
  ) {
    const lookups = family(
      registry,
      'polku_k8s_enrich_lookups_total',
      'Kubernetes enricher lookups, by result (hit, miss, no_key) and reason',
      ['middleware', 'result', 'reason'],
      Counter,
    );
    this.lookups = Object.fromEntries(
      (Object.keys(LABELS) as LookupOutcome[]).map((k) => {
        const series = lookups.labels({ middleware, ...LABELS[k] });
        series.inc(0); // zeros rather than gaps
        return [k, series];
      }),
    ) as Record<LookupOutcome, Counter.Internal>;
    this.truncated = family(
      registry,
      'polku_k8s_enrich_truncated_total',
      'Events that got less than their pod context: the metadata limit would have been passed',
      ['middleware'],
      Counter,
    ).labels(middleware);
    this.truncated.inc(0);
    this.pods = family(
      registry,
      'polku_k8s_pods_cached',
      'Pods the Kubernetes enricher holds (deleted ones in their grace period included)',
      ['middleware'],
      Gauge,
    ).labels(middleware);
    this.overLimit = family(
      registry,
      'polku_k8s_pods_over_limit_total',
      'Pods the Kubernetes enricher did not cache: maxPods reached',
      ['middleware'],
      Counter,
    ).labels(middleware);
    this.overLimit.inc(0);
    this.restarts = family(
      registry,
      'polku_k8s_pod_watch_restarts_total',
      'Pod watch restarts after an error, and lists after the first (relist)',
      ['middleware', 'why'],
      Counter,
    );
    this.restarts.labels(middleware, 'error').inc(0);
    this.restarts.labels(middleware, 'relist').inc(0);
  }

  lookup(outcome: LookupOutcome, n: number): void {
    if (n > 0) this.lookups[outcome].inc(n);
  }

  truncatedEvents(n: number): void {
    if (n > 0) this.truncated.inc(n);
  }

  /** The index's size and its over-limit count (a running total, turned into increments here). */
  cache(size: number, overLimit: number): void {
    this.pods.set(size);
    if (overLimit > this.overLimitSeen) {
      this.overLimit.inc(overLimit - this.overLimitSeen);
      this.overLimitSeen = overLimit;
    }
  }

  restart(why: 'error' | 'relist'): void {
    this.restarts.labels(this.middleware, why).inc();
  }
}

function family<L extends string, M extends Counter<L> | Gauge<L>>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
  Kind: new (c: { name: string; help: string; labelNames: L[]; registers: Registry[] }) => M,
): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? new Kind({ name, help, labelNames, registers: [registry] });
}
