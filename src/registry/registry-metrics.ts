import { Counter, Gauge, type Registry } from 'prom-client';
import type { PluginKind, PluginOrigin } from './plugin-spec.js';

/** Why a plugin left the table; a fixed set (a label). */
export type RemovalReason = 'unregistered' | 'lease_expired' | 'replaced' | 'service_deleted' | 'service_changed';

/** The PluginRegistry RPCs, as the `method` label. */
export type RegistryMethod = 'Register' | 'Heartbeat' | 'Unregister';

export interface TableCounts {
  readonly rows: ReadonlyArray<{ origin: PluginOrigin; kind: PluginKind; routing: boolean }>;
}

/**
 * The live table's metrics. No series is labelled by a plugin's name: names are chosen by
 * plugins (or Service annotations), so they appear in logs and `/admin/plugins`, not here.
 *
 * - `polku_registry_plugins{origin,type,routing}`: rows in the table now
 * - `polku_registry_requests_total{method,code}`: PluginRegistry calls by gRPC status name
 * - `polku_registry_plugins_removed_total{origin,reason}`: departures (lease_expired, unregistered, …)
 * - `polku_registry_health_transitions_total{origin,to}`: plugins leaving (`unhealthy`) and
 *   rejoining (`healthy`) routing after periodic Health checks
 */
export class RegistryMetrics {
  readonly requests: Counter<'method' | 'code'>;
  readonly removed: Counter<'origin' | 'reason'>;
  readonly transitions: Counter<'origin' | 'to'>;

  constructor(registry: Registry, counts: () => TableCounts) {
    new Gauge({
      name: 'polku_registry_plugins',
      help: 'Plugins in the live table by origin (registered, kubernetes, static), type and whether they take traffic',
      labelNames: ['origin', 'type', 'routing'],
      registers: [registry],
      collect() {
        this.reset();
        for (const origin of ['registered', 'kubernetes', 'static'] as const) {
          for (const type of ['emitter', 'ingestor'] as const) {
            for (const routing of ['true', 'false']) this.set({ origin, type, routing }, 0);
          }
        }
        for (const r of counts().rows) this.inc({ origin: r.origin, type: r.kind, routing: String(r.routing) });
      },
    });
    this.requests = new Counter({
      name: 'polku_registry_requests_total',
      help: 'PluginRegistry calls by method and gRPC status (OK, UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, …)',
      labelNames: ['method', 'code'],
      registers: [registry],
    });
    this.removed = new Counter({
      name: 'polku_registry_plugins_removed_total',
      help: 'Plugins that left the live table, by origin and reason (lease_expired, unregistered, replaced, service_deleted, service_changed)',
      labelNames: ['origin', 'reason'],
      registers: [registry],
    });
    this.transitions = new Counter({
      name: 'polku_registry_health_transitions_total',
      help: 'Plugins taken out of routing by failed Health checks (to="unhealthy") and put back (to="healthy")',
      labelNames: ['origin', 'to'],
      registers: [registry],
    });
    for (const method of ['Register', 'Heartbeat', 'Unregister']) this.requests.inc({ method, code: 'OK' }, 0);
    for (const origin of ['registered', 'kubernetes']) {
      this.removed.inc({ origin, reason: origin === 'registered' ? 'lease_expired' : 'service_deleted' }, 0);
    }
  }
}
