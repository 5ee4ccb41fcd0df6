import { Counter, Gauge, type Registry } from 'prom-client';
import type { DropReason } from '../errors.js';

/** The label of requests whose key resolved to no tenant (no key, an unknown key). */
export const OTHER_TENANT = '_other';

/** One tenant's children, looked up once per batch. */
export interface TenantSeries {
  readonly requests: Counter.Internal;
  readonly accepted: Counter.Internal;
  readonly bytes: Counter.Internal;
  readonly quotaRefusals: Counter.Internal;
  /** Refused events by drop reason (a fixed set). */
  refused(reason: DropReason, n: number): void;
}

/** What the gauges read at scrape time. */
export interface TenantGaugeSource {
  /** The tenants configured now, with their buffer share. */
  shares(): ReadonlyArray<{ readonly name: string; readonly events: number; readonly maxEvents: number; readonly bytes: number }>;
  /** Seconds since the oldest undelivered event of each tenant was accepted (memory mode). */
  lagSeconds(): ReadonlyMap<string, number>;
}

/**
 * Per-tenant metrics. Labels are the configured tenants' names plus `_other`: a caller's key can
 * only pick a configured tenant, so callers cannot grow the label set.
 */
export class TenantMetrics {
  private readonly requests: Counter<'tenant'>;
  private readonly events: Counter<'tenant' | 'outcome'>;
  private readonly bytes: Counter<'tenant'>;
  private readonly quota: Counter<'tenant'>;
  private readonly seriesByName = new Map<string, TenantSeries>();
  private source: TenantGaugeSource | undefined;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'polku_tenant_requests_total',
      help: 'Messages (batches, unary calls, Export requests) by tenant; _other: no key or an unknown key',
      labelNames: ['tenant'],
      registers: [registry],
    });
    this.events = new Counter({
      name: 'polku_tenant_events_total',
      help: 'Events by tenant and outcome: accepted, or the drop reason they were refused with',
      labelNames: ['tenant', 'outcome'],
      registers: [registry],
    });
    this.bytes = new Counter({
      name: 'polku_tenant_received_bytes_total',
      help: "Bytes of the tenant's events that passed authentication (approximate event sizes, as the buffer counts them)",
      labelNames: ['tenant'],
      registers: [registry],
    });
    this.quota = new Counter({
      name: 'polku_tenant_quota_refusals_total',
      help: "Events refused RATE_LIMITED by the tenant's own token bucket (rate, burst)",
      labelNames: ['tenant'],
      registers: [registry],
    });
    // collect() runs with the gauge as `this`; the table is reached through this closure.
    const current = (): TenantGaugeSource | undefined => this.source;
    new Gauge({
      name: 'polku_tenant_buffer_events',
      help: "Undelivered events of the tenant in the in-memory buffer (its share's use)",
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        for (const s of current()?.shares() ?? []) this.set({ tenant: s.name }, s.events);
      },
    });
    new Gauge({
      name: 'polku_tenant_buffer_share_events',
      help: "The tenant's share of the buffer, in events (bufferShare × POLKU_BUFFER_CAPACITY)",
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        for (const s of current()?.shares() ?? []) this.set({ tenant: s.name }, s.maxEvents);
      },
    });
    new Gauge({
      name: 'polku_tenant_delivery_lag_seconds',
      help: "Age of the tenant's oldest accepted event not yet delivered to every emitter (0: none waiting; memory mode)",
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        const source = current();
        if (!source) return;
        const lag = source.lagSeconds();
        for (const s of source.shares()) this.set({ tenant: s.name }, lag.get(s.name) ?? 0);
      },
    });
  }

  /** Where the gauges read from (the tenant table and the delivery backend). */
  setGaugeSource(source: TenantGaugeSource): void {
    this.source = source;
  }

  /** The series of `tenant` (a configured name or {@link OTHER_TENANT}); created with zeros. */
  seriesOf(tenant: string): TenantSeries {
    let s = this.seriesByName.get(tenant);
    if (s) return s;
    const refusedChildren = new Map<DropReason, Counter.Internal>();
    const events = this.events;
    s = {
      requests: this.requests.labels(tenant),
      accepted: events.labels(tenant, 'accepted'),
      bytes: this.bytes.labels(tenant),
      quotaRefusals: this.quota.labels(tenant),
      refused(reason, n) {
        let child = refusedChildren.get(reason);
        if (!child) {
          child = events.labels(tenant, reason);
          refusedChildren.set(reason, child);
        }
        child.inc(n);
      },
    };
    s.requests.inc(0);
    s.accepted.inc(0);
    s.bytes.inc(0);
    s.quotaRefusals.inc(0);
    this.seriesByName.set(tenant, s);
    return s;
  }
}
