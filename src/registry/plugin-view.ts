import type { LivePipeline } from './plugin-component.js';
import type { PluginEntry } from './plugin-entry.js';
import type { PluginKind, PluginOrigin } from './plugin-spec.js';

/** One row of `GET /admin/plugins` and `polku plugins`. */
export interface PluginRow {
  readonly name: string;
  /** `unknown` only for a Service whose type label is wrong (shown so it can be fixed). */
  readonly type: PluginKind | 'unknown';
  readonly origin: PluginOrigin;
  /** The address as given (by the plugin, the Service or the pipeline); '' for in-process components. */
  readonly address: string;
  /** What the gateway dials when it differs from `address` (a resolved name, a same-node endpoint). */
  readonly target: string | null;
  /**
   * The first 8 characters of the id Register returned (the id is the owner's secret: whoever
   * holds it can unregister the plugin, so the table never shows it whole); null for static and
   * discovered plugins.
   */
  readonly id: string | null;
  /** Emitters: the name events use in `route_to`. */
  readonly routeName: string | null;
  readonly sources: readonly string[];
  /** `routing`: takes traffic. `unhealthy`: out of routing until Health answers. `pending`: not admitted yet. */
  readonly state: 'routing' | 'unhealthy' | 'pending';
  readonly health: 'healthy' | 'unhealthy' | 'unknown';
  readonly healthMessage: string;
  /** Registered plugins: the last Register or Heartbeat (RFC 3339). */
  readonly lastHeartbeat: string | null;
  /** Registered plugins: milliseconds until the lease runs out. */
  readonly leaseLeftMs: number | null;
  /** Discovered plugins: the Service, `namespace/name`. */
  readonly service: string | null;
  readonly version: string;
}

/** The pipeline's own components as rows, and the names they reserve. */
export function staticRows(pipeline: LivePipeline): { names: Set<string>; emitters: Set<string>; rows: PluginRow[] } {
  const { emitters, ingestors } = pipeline.running;
  const addressOf = (name: string): string => {
    const emitter = pipeline.emitter?.(name) as { address?: unknown } | undefined;
    return typeof emitter?.address === 'string' ? emitter.address : '';
  };
  const row = (name: string, type: PluginKind, address: string): PluginRow => ({
    name,
    type,
    origin: 'static',
    address,
    target: null,
    id: null,
    routeName: type === 'emitter' ? name : null,
    sources: [],
    state: 'routing',
    health: 'unknown',
    healthMessage: '',
    lastHeartbeat: null,
    leaseLeftMs: null,
    service: null,
    version: '',
  });
  return {
    names: new Set([...emitters, ...ingestors]),
    emitters: new Set(emitters),
    rows: [...emitters.map((n) => row(n, 'emitter', addressOf(n))), ...ingestors.map((n) => row(n, 'ingestor', ''))],
  };
}

/** Static rows (with their health now), then the dynamic entries by name. */
export function tableRows(
  statics: readonly PluginRow[],
  entries: readonly PluginEntry[],
  health: Record<string, { healthy: boolean; message: string }>,
  nowMs: number,
): PluginRow[] {
  const fixed = statics.map((r) => {
    const h = health[`${r.type}:${r.name}`];
    return h ? { ...r, health: h.healthy ? ('healthy' as const) : ('unhealthy' as const), healthMessage: h.message } : r;
  });
  const dynamic = [...entries]
    .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
    .map((e): PluginRow => ({
      name: e.spec.name,
      type: e.spec.kind,
      origin: e.origin,
      address: e.spec.address,
      target: e.target === e.spec.address ? null : e.target,
      id: e.origin === 'registered' ? `${e.id.slice(0, 8)}…` : null,
      routeName: e.spec.kind === 'emitter' ? e.spec.emitterName : null,
      sources: e.spec.sources,
      state: e.state,
      health: e.health.healthy ? 'healthy' : 'unhealthy',
      healthMessage: e.health.message,
      lastHeartbeat: e.lastHeartbeatMs === null ? null : new Date(e.lastHeartbeatMs).toISOString(),
      leaseLeftMs: e.leaseExpiresMs === null ? null : Math.max(0, e.leaseExpiresMs - nowMs),
      service: e.service ?? null,
      version: e.spec.version,
    }));
  return [...fixed, ...dynamic];
}
