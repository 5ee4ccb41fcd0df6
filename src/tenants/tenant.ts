import type { Bucket } from '../middleware/rate-limiter.js';
import type { CheckedTenant } from './tenant-spec.js';
import type { TenantSeries } from './tenant-metrics.js';

/**
 * A tenant's slice of the in-memory buffer. Each buffered event of the tenant points at it, so
 * the event's release gives its room back here too; it outlives a reload that drops the tenant
 * until its last event is delivered.
 */
export interface TenantShare {
  readonly name: string;
  /** The tenant's lane in each emitter queue's fair (deficit round robin) take. */
  readonly lane: number;
  /** Events the lane may take per round, relative to the other lanes (by rate, 1 to 64). */
  quantum: number;
  /** Events and bytes held now. */
  events: number;
  bytes: number;
  maxEvents: number;
  maxBytes: number;
}

/**
 * One tenant at run time: its checked spec, its token bucket, its buffer share and its metrics.
 * The object stays the same across reloads of the table (see `Tenants.replace`), so a reload
 * neither refills a bucket nor forgets the events a tenant holds in the buffer.
 */
export class Tenant {
  spec: CheckedTenant;
  readonly bucket: Bucket;
  readonly share: TenantShare;
  readonly series: TenantSeries;
  /** Set by a reload that no longer lists the tenant: its keys resolve to nothing. */
  retired = false;
  /**
   * Events in the tenant's last message (0 before the first): what a refusal before reading
   * expects its next one to carry (`Tenants.quotaWaitMs`).
   */
  lastMessageEvents = 0;

  constructor(spec: CheckedTenant, lane: number, series: TenantSeries) {
    this.spec = spec;
    // lastMs NaN until the first batch: the bucket starts full (see the rate limiter's refill).
    this.bucket = { tokens: spec.burst, lastMs: Number.NaN };
    this.share = { name: spec.name, lane, quantum: 1, events: 0, bytes: 0, maxEvents: 1, maxBytes: 1 };
    this.series = series;
  }

  get name(): string {
    return this.spec.name;
  }

  /** Whether the tenant may send events of `source`. */
  allows(source: string): boolean {
    const sources = this.spec.sources;
    return sources === null || sources.has(source);
  }

  /** The refusal text for an event over the tenant's quota, `waitMs` before a token is back. */
  overQuota(waitMs: number): string {
    const spec = this.spec;
    return `tenant "${this.name}" is over its quota (${spec.rate}/s, burst ${spec.burst}); retry after ${Math.ceil(waitMs)} ms`;
  }

  /** The refusal text for a source the tenant may not send. */
  forbidden(source: string): string {
    const shown = source.length > 64 ? `${source.slice(0, 64)}…` : source;
    return `tenant "${this.name}" may not send source ${JSON.stringify(shown)} (allowed: ${this.spec.sourceList.join(', ')})`;
  }
}
