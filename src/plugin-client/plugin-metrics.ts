import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** How a plugin call ended; a fixed set, so the label stays bounded. */
export type CallOutcome = 'ok' | 'error' | 'timeout' | 'unavailable' | 'circuit_open';
export const CALL_OUTCOMES: readonly CallOutcome[] = ['ok', 'error', 'timeout', 'unavailable', 'circuit_open'];

/** Plugin RPCs, as they appear in the `method` label. */
export type PluginMethod = 'Ingest' | 'Emit' | 'Health' | 'Shutdown';

const SECONDS = 'polku_plugin_call_seconds';
const CALLS = 'polku_plugin_calls_total';
const HEALTHY = 'polku_plugin_healthy';

/**
 * One plugin's series in the metric families every external ingestor and emitter share:
 * `polku_plugin_call_seconds{plugin,method}`, `polku_plugin_calls_total{plugin,method,outcome}`
 * and `polku_plugin_healthy{plugin}`. `plugin` is the name the operator configured, so the label
 * set is bounded by the pipeline. The families are registered once per registry and reused.
 */
export class PluginMetrics {
  private readonly seconds: Histogram<'plugin' | 'method'>;
  private readonly calls: Counter<'plugin' | 'method' | 'outcome'>;
  private readonly healthyGauge: Gauge<'plugin'>;

  constructor(
    registry: Registry,
    readonly plugin: string,
    /** Methods whose call counters start at zero for every outcome (the plugin's main call). */
    methods: readonly PluginMethod[],
  ) {
    this.seconds = family(
      registry,
      SECONDS,
      () =>
        new Histogram({
          name: SECONDS,
          help: 'Time a plugin call took, connecting included',
          labelNames: ['plugin', 'method'],
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers: [registry],
        }),
    );
    this.calls = family(
      registry,
      CALLS,
      () =>
        new Counter({
          name: CALLS,
          help: 'Plugin calls by method and outcome (ok, error, timeout, unavailable, circuit_open)',
          labelNames: ['plugin', 'method', 'outcome'],
          registers: [registry],
        }),
    );
    this.healthyGauge = family(
      registry,
      HEALTHY,
      () =>
        new Gauge({
          name: HEALTHY,
          help: '1 when the plugin answered its last Health or call, 0 when it was unreachable or failing',
          labelNames: ['plugin'],
          registers: [registry],
        }),
    );
    // Zeros rather than gaps for dashboards and rate().
    for (const method of methods) for (const outcome of CALL_OUTCOMES) this.calls.inc({ plugin, method, outcome }, 0);
  }

  /** Counts one call; `seconds` is omitted for calls that never reached the plugin. */
  call(method: PluginMethod, outcome: CallOutcome, seconds?: number): void {
    this.calls.inc({ plugin: this.plugin, method, outcome });
    if (seconds !== undefined) this.seconds.observe({ plugin: this.plugin, method }, seconds);
  }

  healthy(healthy: boolean): void {
    this.healthyGauge.set({ plugin: this.plugin }, healthy ? 1 : 0);
  }
}

function family<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
