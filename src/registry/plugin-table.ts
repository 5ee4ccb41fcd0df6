import { randomBytes, timingSafeEqual } from 'node:crypto';
import { systemClock, systemTimers, type TimerHandle } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import { forgetPluginSeries } from './plugin-component.js';
import { PluginEntry } from './plugin-entry.js';
import { PluginProbe } from './plugin-probe.js';
import { RegistryError, sameComponent, type PluginKind, type PluginSpec } from './plugin-spec.js';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_PLUGINS,
  DEFAULT_MISSED_BEATS,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_UNHEALTHY_AFTER,
  type AdmitRequest,
  type PluginTableOptions,
} from './table-options.js';
import { RegistryMetrics, type RemovalReason } from './registry-metrics.js';
import { allows, type RegistryIdentity } from './registry-identity.js';
import { staticRows, tableRows, type PluginRow } from './plugin-view.js';

/**
 * The live plugin table: registered and discovered plugins, each admitted only after its Info and
 * Health answered, kept while its lease (registered) or Service (discovered) lasts, and in
 * routing while its Health answers. Every change goes straight into the pipeline's own emitter
 * and ingestor tables, which routing reads per batch.
 *
 * Admission dials outside any lock; what it found is then applied in one synchronous step that
 * re-checks names, so concurrent registrations cannot interleave half-way.
 */
export class PluginTable {
  readonly metrics: RegistryMetrics;
  readonly heartbeatIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly probeTimeoutMs: number;
  private readonly byId = new Map<string, PluginEntry>();
  private readonly byName = new Map<string, PluginEntry>();
  private readonly o: Required<Omit<PluginTableOptions, 'pipeline' | 'logger' | 'registry'>>;
  private readonly log: Logger;
  private statics = { names: new Set<string>(), emitters: new Set<string>(), rows: [] as PluginRow[] };
  /** Sources the pipeline's own ingestors claim: never a registered plugin's. */
  private staticSources = new Set<string>();
  private readonly sweepHooks: Array<() => Promise<void>> = [];
  private sweepTimer: TimerHandle | null = null;
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(private readonly opts: PluginTableOptions) {
    const heartbeatIntervalMs = opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.o = {
      clock: opts.clock ?? systemClock,
      timers: opts.timers ?? systemTimers,
      heartbeatIntervalMs,
      missedBeats: opts.missedBeats ?? DEFAULT_MISSED_BEATS,
      healthIntervalMs: opts.healthIntervalMs ?? heartbeatIntervalMs,
      maxPlugins: opts.maxPlugins ?? DEFAULT_MAX_PLUGINS,
      probeTimeoutMs: opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
      unhealthyAfter: opts.unhealthyAfter ?? DEFAULT_UNHEALTHY_AFTER,
    };
    this.heartbeatIntervalMs = heartbeatIntervalMs;
    this.leaseTtlMs = heartbeatIntervalMs * this.o.missedBeats;
    this.probeTimeoutMs = this.o.probeTimeoutMs;
    this.log = opts.logger.child({ component: 'plugin-table' });
    this.metrics = new RegistryMetrics(opts.registry, () => ({
      rows: [
        ...this.statics.rows.map((r) => ({ origin: r.origin, kind: r.type as PluginKind, routing: true })),
        ...[...this.byId.values()].map((e) => ({ origin: e.origin, kind: e.spec.kind, routing: e.routing })),
      ],
    }));
  }

  /** Takes note of the pipeline's static components (their names stay theirs) and starts Health checks. */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'open';
    this.statics = staticRows(this.opts.pipeline);
    const pipeline = this.opts.pipeline;
    this.staticSources = new Set(pipeline.running.ingestors.flatMap((n) => pipeline.ingestorSources?.(n) ?? []));
    this.armSweep();
  }

  /** Stops leases and Health checks. Components stay in the pipeline: the hub drains and closes them. */
  stop(): void {
    this.state = 'closed';
    if (this.sweepTimer !== null) this.o.timers.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    for (const e of this.byId.values()) {
      if (e.leaseTimer !== null) this.o.timers.clearTimeout(e.leaseTimer);
      e.probe.close();
    }
  }

  /** Runs after each Health sweep (discovery retries the Services it could not admit yet). */
  onSweep(hook: () => Promise<void>): void {
    this.sweepHooks.push(hook);
  }

  /**
   * Dials the plugin (Info, then Health, within the probe deadline) and puts it into the table and
   * the pipeline. The same name at the same target keeps its entry and id; a new target for a
   * known name replaces the old entry once the new one answered healthy.
   */
  async admit(req: AdmitRequest): Promise<{ entry: PluginEntry; created: boolean }> {
    this.assertOpen();
    if (req.known) this.admissible(req, req.known);
    const probe = new PluginProbe(req.kind, req.target);
    try {
      const result = await probe.admit(this.o.probeTimeoutMs);
      const spec = req.complete(result.info);
      return this.install(req, spec, probe, result.healthMessage);
    } catch (err) {
      probe.close();
      throw err;
    }
  }

  /** Renews a registered plugin's lease; false when the id is unknown (the plugin registers again). */
  heartbeat(id: string): boolean {
    const entry = this.byId.get(id);
    if (!entry || entry.origin !== 'registered' || this.state !== 'open') return false;
    this.renewLease(entry);
    return true;
  }

  /** The entry with this id, if any. */
  get(id: string): PluginEntry | undefined {
    return this.byId.get(id);
  }

  /** The entry named `name`, if any. */
  named(name: string): PluginEntry | undefined {
    return this.byName.get(name);
  }

  /** Dynamic entries (registered and discovered). */
  entries(): PluginEntry[] {
    return [...this.byId.values()];
  }

  /** Takes an entry out of the table and the pipeline; false when it was no longer there. */
  remove(entry: PluginEntry, reason: RemovalReason): boolean {
    if (this.byId.get(entry.id) !== entry) return false;
    this.byId.delete(entry.id);
    if (this.byName.get(entry.spec.name) === entry) this.byName.delete(entry.spec.name);
    if (entry.leaseTimer !== null) this.o.timers.clearTimeout(entry.leaseTimer);
    entry.leaveRouting(this.opts.pipeline);
    entry.probe.close();
    this.metrics.removed.inc({ origin: entry.origin, reason });
    const fields = { plugin: describe(entry), reason };
    if (reason === 'lease_expired')
      this.log.warn(
        { ...fields, lastHeartbeat: iso(entry.lastHeartbeatMs), leaseTtlMs: this.leaseTtlMs },
        'plugin missed its heartbeats; removed from the table',
      );
    else this.log.info(fields, 'plugin removed from the table');
    if (reason !== 'replaced') {
      const series = seriesName(entry.spec);
      void forgetPluginSeries(this.opts.registry, series, () => !this.entries().some((e) => seriesName(e.spec) === series)).catch(
        (err: unknown) => this.log.warn({ err }, "could not drop a departed plugin's metric series"),
      );
    }
    return true;
  }

  /** Asks every plugin's Health now (the sweep's work); resolves when all answered. */
  async sweep(): Promise<void> {
    await Promise.all(
      this.entries()
        .filter((e) => !e.checking)
        .map((e) => this.check(e)),
    );
    for (const hook of this.sweepHooks) await hook();
  }

  /** Every row: static components, then dynamic plugins by name. */
  async rows(): Promise<PluginRow[]> {
    const health = this.opts.pipeline.health ? (await this.opts.pipeline.health()).components : {};
    return tableRows(this.statics.rows, this.entries(), health, this.o.clock.nowMs());
  }

  /**
   * Refuses (RegistryError) what may not enter, in this order: a claim outside the caller's
   * allowance or of a protected source (PERMISSION_DENIED); a static component's name, a name held
   * by a plugin of another origin or Service, or by a live registration the caller does not own
   * (ALREADY_EXISTS); an emitter name or source another plugin holds; a full table. Returns the
   * entry that holds `spec.name` already and that the caller may replace, if any.
   */
  admissible(req: Pick<AdmitRequest, 'origin' | 'service' | 'identity' | 'proof'>, spec: PluginSpec): PluginEntry | undefined {
    const { origin, service } = req;
    const taken = (why: string) => new RegistryError('POLKU_ERR_REGISTRY_NAME_TAKEN', `plugin "${spec.name}": ${why}`);
    if (req.identity) this.claimable(req.identity, spec);
    for (const name of new Set([spec.name, spec.emitterName])) {
      if (name !== '' && (this.statics.names.has(name) || (spec.kind === 'emitter' && this.statics.emitters.has(name)))) {
        throw taken(`"${name}" is configured statically in the pipeline; a plugin never replaces it`);
      }
    }
    const shadowed = spec.sources.find((s) => this.staticSources.has(s));
    if (shadowed !== undefined) throw taken(`source "${shadowed}" is parsed by an ingestor configured statically in the pipeline`);
    const existing = this.byName.get(spec.name);
    if (existing && (existing.origin !== origin || existing.service !== service)) {
      throw taken(`the name is held by ${existing.origin === 'kubernetes' ? `the Service ${existing.service}` : 'a registered plugin'}`);
    }
    if (existing && origin === 'registered' && !this.owns(req, existing)) {
      const left = Math.max(0, (existing.leaseExpiresMs ?? 0) - this.o.clock.nowMs());
      throw taken(
        `the name belongs to a live registration until its owner unregisters or its lease runs out (in ${Math.ceil(left / 1000)} s); ` +
          'the owner re-registers with its plugin_id in the metadata polku-plugin-id',
      );
    }
    for (const other of this.byId.values()) {
      if (other === existing || other.spec.kind !== spec.kind) continue;
      if (spec.kind === 'emitter' && other.spec.emitterName === spec.emitterName)
        throw taken(`emitter name "${spec.emitterName}" is held by plugin "${other.spec.name}"`);
      const shared = spec.sources.find((s) => other.spec.sources.includes(s));
      if (shared !== undefined) throw taken(`source "${shared}" is parsed by plugin "${other.spec.name}"`);
    }
    if (!existing && this.byId.size >= this.o.maxPlugins) {
      throw new RegistryError(
        'POLKU_ERR_REGISTRY_FULL',
        `the plugin table is full (${this.o.maxPlugins} plugins, POLKU_REGISTRY_MAX_PLUGINS)`,
      );
    }
    return existing;
  }

  /**
   * Whether the caller owns a live registration: it presents the entry's plugin_id, or it is the
   * same authenticated identity that registered it. The anonymous caller proves nothing by itself.
   */
  private owns(req: Pick<AdmitRequest, 'identity' | 'proof'>, entry: PluginEntry): boolean {
    if (req.identity?.authenticated && req.identity.name === entry.owner) return true;
    if (req.proof === undefined) return false;
    const a = Buffer.from(req.proof);
    const b = Buffer.from(entry.id);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * The identity's allowance: its plugin patterns must allow the name and the route name, its
   * source patterns every source. A protected source (agents sent on it lately, and not to this
   * very plugin) needs a pattern naming it, never the bare `*`.
   */
  private claimable(identity: RegistryIdentity, spec: PluginSpec): void {
    const denied = (why: string) =>
      new RegistryError('POLKU_ERR_REGISTRY_CLAIM_DENIED', `plugin "${spec.name}": ${why} (identity "${identity.name}")`);
    for (const name of new Set([spec.name, spec.emitterName])) {
      if (name !== '' && !allows(identity.plugins, name))
        throw denied(`the name "${name}" is not among the plugins this identity may register`);
    }
    for (const source of spec.sources) {
      if (!allows(identity.sources, source)) throw denied(`source "${source}" is not among the sources this identity may claim`);
      const seen = this.opts.pipeline.seenSources?.lookup(source);
      if (seen && seen.parsedBy !== spec.name && !allows(identity.sources, source, true)) {
        throw denied(`agents send on source "${source}": claiming it takes an identity that lists it by name`);
      }
    }
  }

  private install(
    req: AdmitRequest,
    spec: PluginSpec,
    probe: PluginProbe,
    healthMessage: string,
  ): { entry: PluginEntry; created: boolean } {
    this.assertOpen();
    const existing = this.admissible(req, spec);
    const health = { healthy: true, message: healthMessage, atMs: this.o.clock.nowMs() };
    const pipeline = this.opts.pipeline;
    if (existing && existing.target === probe.target) {
      probe.close(); // the entry keeps its own line
      if (!sameComponent(existing.spec, spec)) existing.leaveRouting(pipeline);
      existing.spec = spec;
      existing.health = health;
      existing.failures = 0;
      if (req.identity) existing.owner = req.identity.name;
      existing.enterRouting(pipeline);
      if (req.origin === 'registered') this.renewLease(existing);
      return { entry: existing, created: false };
    }
    // The plugin_id is the owner's secret (Heartbeat, Unregister, re-Register): 128 random bits.
    const entry = new PluginEntry(randomBytes(16).toString('hex'), req.origin, spec, probe, req.service, health);
    entry.owner = req.identity?.name ?? '';
    if (existing) this.remove(existing, 'replaced');
    this.byId.set(entry.id, entry);
    this.byName.set(spec.name, entry);
    try {
      entry.enterRouting(pipeline);
    } catch (err) {
      this.byId.delete(entry.id);
      this.byName.delete(spec.name);
      throw err;
    }
    if (req.origin === 'registered') this.renewLease(entry);
    this.log.info(
      { plugin: describe(entry), origin: entry.origin, replaced: existing ? existing.target : undefined },
      'plugin added to the table',
    );
    return { entry, created: true };
  }

  private renewLease(entry: PluginEntry): void {
    if (entry.leaseTimer !== null) this.o.timers.clearTimeout(entry.leaseTimer);
    entry.lastHeartbeatMs = this.o.clock.nowMs();
    entry.leaseExpiresMs = entry.lastHeartbeatMs + this.leaseTtlMs;
    entry.leaseTimer = this.o.timers.setTimeout(() => {
      entry.leaseTimer = null;
      this.remove(entry, 'lease_expired');
    }, this.leaseTtlMs);
  }

  private async check(entry: PluginEntry): Promise<void> {
    entry.checking = true;
    const h = await entry.probe.health(this.o.probeTimeoutMs).finally(() => (entry.checking = false));
    if (this.byId.get(entry.id) !== entry || this.state !== 'open') return;
    entry.health = { ...h, atMs: this.o.clock.nowMs() };
    if (h.healthy) {
      entry.failures = 0;
      if (entry.routing) return;
      try {
        entry.enterRouting(this.opts.pipeline);
        this.metrics.transitions.inc({ origin: entry.origin, to: 'healthy' });
        this.log.info({ plugin: describe(entry) }, 'plugin healthy again; back in routing');
      } catch (err) {
        this.log.warn({ plugin: describe(entry), err }, 'plugin healthy but could not rejoin routing');
      }
      return;
    }
    entry.failures++;
    if (entry.routing && entry.failures >= this.o.unhealthyAfter) {
      entry.leaveRouting(this.opts.pipeline);
      this.metrics.transitions.inc({ origin: entry.origin, to: 'unhealthy' });
      this.log.warn(
        { plugin: describe(entry), health: { message: h.message }, failures: entry.failures },
        'plugin failed its Health checks; out of routing until healthy',
      );
    }
  }

  private armSweep(): void {
    if (this.state !== 'open') return;
    this.sweepTimer = this.o.timers.setTimeout(() => {
      this.sweepTimer = null;
      this.armSweep();
      this.sweep().catch((err: unknown) => this.log.error({ err }, 'plugin health sweep failed'));
    }, this.o.healthIntervalMs);
  }

  private assertOpen(): void {
    if (this.state !== 'open')
      throw new RegistryError(
        'POLKU_ERR_REGISTRY_UNAVAILABLE',
        this.state === 'new' ? 'the plugin table is not started yet' : 'the gateway is shutting down',
      );
  }
}

/** A plugin's log fields: untrusted values, so nested under one key. */
function describe(e: PluginEntry): Record<string, unknown> {
  return {
    name: e.spec.name,
    id: e.id,
    type: e.spec.kind,
    address: e.spec.address,
    target: e.target,
    ...(e.service ? { service: e.service } : {}),
  };
}

/** The `plugin` label value of the component's own metrics. */
function seriesName(spec: PluginSpec): string {
  return spec.kind === 'emitter' ? spec.emitterName : spec.name;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
