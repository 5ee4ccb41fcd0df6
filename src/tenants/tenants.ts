import type { Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { refill } from '../middleware/rate-limiter.js';
import { digestOfKey, sameDigest } from './api-key.js';
import { Tenant } from './tenant.js';
import { OTHER_TENANT, TenantMetrics, type TenantSeries } from './tenant-metrics.js';
import type { CheckedTenant } from './tenant-spec.js';

/** The DRR quantum of the fastest tenant relative to the slowest (bounds one lane's run per round). */
const MAX_QUANTUM = 64;

export interface TenantsOptions {
  /** The buffer the shares are fractions of. */
  buffer: { readonly capacity: number; readonly maxBytes: number };
  registry: Registry;
  logger: Logger;
}

/** What `authenticate` answers: the caller's tenant, or why it has none. */
export type Authentication = { readonly tenant: Tenant } | { readonly refusal: string };

/**
 * The tenant table at run time: resolves a presented API key to its tenant, and holds each
 * tenant's bucket, buffer share and metrics. `replace` swaps the table (a reloaded
 * POLKU_TENANTS_FILE) in one assignment; a tenant keeping its name keeps its state.
 */
export class Tenants {
  private byDigest = new Map<string, { tenant: Tenant; digest: Buffer }>();
  private current: Tenant[] = [];
  private readonly byName = new Map<string, Tenant>();
  private readonly metrics: TenantMetrics;
  private readonly other: TenantSeries;
  private readonly log: Logger;
  private readonly o: TenantsOptions;
  private lagSource: (() => ReadonlyMap<string, number>) | undefined;

  constructor(tenants: readonly CheckedTenant[], options: TenantsOptions) {
    this.o = options;
    this.log = options.logger.child({ component: 'tenants' });
    this.metrics = new TenantMetrics(options.registry);
    this.other = this.metrics.seriesOf(OTHER_TENANT);
    this.metrics.setGaugeSource({
      shares: () => this.current.map((t) => t.share),
      lagSeconds: () => this.lagSource?.() ?? new Map(),
    });
    this.replace(tenants);
  }

  /** The tenants configured now, in table order. */
  get all(): readonly Tenant[] {
    return this.current;
  }

  /** The series requests without a tenant count under. */
  get otherSeries(): TenantSeries {
    return this.other;
  }

  /** Where the delivery lag gauge reads from: seconds by tenant name (memory mode sets it). */
  setLagSource(source: () => ReadonlyMap<string, number>): void {
    this.lagSource = source;
  }

  /**
   * The tenant of a presented key. The key is hashed first, so the map lookup works on a digest
   * and learns nothing of the secret; the entry found is then compared in constant time.
   */
  authenticate(apiKey: string | undefined): Authentication {
    if (apiKey === undefined || apiKey === '') {
      return { refusal: 'an API key is required (gRPC metadata x-api-key, HTTP header X-API-Key): tenants are configured' };
    }
    const digest = digestOfKey(apiKey);
    const entry = this.byDigest.get(digest.toString('hex'));
    if (entry === undefined || !sameDigest(entry.digest, digest) || entry.tenant.retired) {
      return { refusal: 'unknown API key' };
    }
    return { tenant: entry.tenant };
  }

  /**
   * Asked before a message is read: milliseconds until the tenant's bucket holds the tokens its
   * next message is expected to need (0: it holds them now), the bucket refilled to `nowMs`
   * (monotonic) first. Takes nothing. The need is the size of the tenant's last message, capped at
   * its burst, and at least one token: a tenant sending faster than its rate then gets whole
   * messages in as the bucket fills, and the others refused unread, instead of every message
   * read and parsed for the few events a trickle of tokens admits. Its accepted rate is the same.
   */
  quotaWaitMs(tenant: Tenant, nowMs: number): number {
    const spec = tenant.spec;
    const limit = { rate: spec.rate, burst: spec.burst };
    refill(tenant.bucket, nowMs, limit);
    const need = Math.max(1, Math.min(tenant.lastMessageEvents, spec.burst));
    const missing = need - tenant.bucket.tokens;
    return missing <= 1e-9 ? 0 : (missing * 1000) / spec.rate;
  }

  /** Installs a new table. Tenants keep bucket, share use and lane by name; dropped ones retire. */
  replace(tenants: readonly CheckedTenant[]): void {
    const byDigest = new Map<string, { tenant: Tenant; digest: Buffer }>();
    const next: Tenant[] = [];
    const minRate = Math.min(...tenants.map((t) => t.rate));
    for (const spec of tenants) {
      let tenant = this.byName.get(spec.name);
      if (tenant === undefined) {
        tenant = new Tenant(spec, this.byName.size + 1, this.metrics.seriesOf(spec.name));
        this.byName.set(spec.name, tenant);
      } else {
        tenant.spec = spec;
        // A lower burst takes effect now; a higher one fills as the rate allows.
        tenant.bucket.tokens = Math.min(tenant.bucket.tokens, spec.burst);
      }
      tenant.retired = false;
      const share = tenant.share;
      share.maxEvents = Math.max(1, Math.floor(spec.bufferShare * this.o.buffer.capacity));
      share.maxBytes = Math.max(1, Math.floor(spec.bufferShare * this.o.buffer.maxBytes));
      share.quantum = Math.min(MAX_QUANTUM, Math.max(1, Math.round(spec.rate / minRate)));
      for (const key of spec.keys) byDigest.set(key.hex, { tenant, digest: key.digest });
      next.push(tenant);
    }
    const kept = new Set(next);
    for (const old of this.current) if (!kept.has(old)) old.retired = true;
    this.byDigest = byDigest;
    this.current = next;
    const plain = tenants.filter((t) => t.keys.some((k) => k.plain)).map((t) => t.name);
    if (plain.length > 0) {
      this.log.warn(
        { tenants: plain },
        'API keys written in plain text in the tenant table: write them as sha256: digests (polku tenants hash-key)',
      );
    }
  }
}
