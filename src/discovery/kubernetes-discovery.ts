import type { Registry } from 'prom-client';
import { systemTimers, type Timers } from '../clock.js';
import type { PluginInfo } from '../gen/polku/v1/plugin.js';
import type { Logger } from '../observability/logger.js';
import type { PluginEntry } from '../registry/plugin-entry.js';
import type { PluginRegistry, PluginSource } from '../registry/plugin-registry.js';
import { nameProblem, RegistryError, sourcesProblem, targetOf, type PluginKind, type PluginSpec } from '../registry/plugin-spec.js';
import type { PluginRow } from '../registry/plugin-view.js';
import type { ClusterAccess } from './kube/cluster-access.js';
import { KubeApi } from './kube/kube-api.js';
import { ResourceWatch } from './resource-watch.js';
import {
  DEFAULT_LABEL_SELECTOR,
  pluginFromService,
  SERVICE_NAME_LABEL,
  serviceKey,
  type DiscoveredPlugin,
  type EndpointSliceObject,
  type ServiceObject,
} from './service-plugin.js';

export { DEFAULT_LABEL_SELECTOR };

export interface KubernetesDiscoveryOptions {
  /** The table to feed (and its allowlist, applied to discovered addresses too). */
  plugins: PluginRegistry;
  /** The API server: `loadClusterAccess()` (in-cluster or kubeconfig) or `accessFromKubeConfig(kc)`. */
  cluster: ClusterAccess;
  /** Namespaces to watch, one informer each; empty: all namespaces, one informer. */
  namespaces?: readonly string[];
  /** Selects plugin Services (POLKU_DISCOVERY_LABEL_SELECTOR). Default `polku.io/plugin`. */
  labelSelector?: string;
  /** This gateway's node (NODE_NAME): an endpoint there is dialled directly. */
  nodeName?: string | undefined;
  /** Read EndpointSlices (same-node preference, headless Services). Default true; a 403 turns it off. */
  endpointSlices?: boolean;
  logger: Logger;
  /** Where `polku_discovery_*` metrics live. */
  registry: Registry;
  timers?: Timers;
  /** Restart and relist backoff. Default 500 ms doubling to 30 s. */
  backoff?: { initialMs: number; maxMs: number };
}

/** What a Service says, and how admitting it went. */
interface Desired {
  plugin?: DiscoveredPlugin | undefined;
  problem?: string | undefined;
  /** The plugin's type when the Service has a problem but a valid type label. */
  kind?: PluginKind | undefined;
  fingerprint: string;
  lastError?: string | undefined;
  running?: Promise<void> | undefined;
  again: boolean;
}

/**
 * Kubernetes Service discovery: informers on Services (and EndpointSlices) with the label
 * selector, per namespace or cluster-wide, feeding the live plugin table. A Service added,
 * changed or deleted reaches the table as soon as its event arrives (plus one Info/Health
 * round trip); one that cannot be admitted yet is retried at every Health sweep. Ready once every
 * informer listed and the plugins found then were admitted or refused.
 */
export class KubernetesDiscovery implements PluginSource {
  private readonly api: KubeApi;
  private readonly services: Array<ResourceWatch<ServiceObject>> = [];
  private readonly slices: Array<ResourceWatch<EndpointSliceObject>> = [];
  private readonly desired = new Map<string, Desired>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly log: Logger;
  private synced = false;
  private scheduled = false;
  private stopped = false;

  constructor(private readonly o: KubernetesDiscoveryOptions) {
    this.log = o.logger.child({ component: 'discovery' });
    const api = (this.api = new KubeApi(o.cluster));
    const labelSelector = o.labelSelector || DEFAULT_LABEL_SELECTOR;
    const common = {
      api,
      labelSelector,
      timers: o.timers ?? systemTimers,
      logger: o.logger,
      registry: o.registry,
      onChange: () => this.resync(),
      ...(o.backoff ? { backoff: o.backoff } : {}),
    };
    for (const namespace of o.namespaces?.length ? o.namespaces : ['']) {
      const servicesPath = namespace ? `/api/v1/namespaces/${namespace}/services` : '/api/v1/services';
      this.services.push(
        new ResourceWatch<ServiceObject>({
          ...common,
          resource: 'services',
          path: servicesPath,
          list: () => api.list<ServiceObject>(servicesPath, { labelSelector }),
        }),
      );
      if (o.endpointSlices === false) continue;
      // The EndpointSlice controller copies a Service's labels onto its slices: the same selector fits.
      const slicesPath = namespace
        ? `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`
        : '/apis/discovery.k8s.io/v1/endpointslices';
      this.slices.push(
        new ResourceWatch<EndpointSliceObject>({
          ...common,
          resource: 'endpointslices',
          optional: true,
          path: slicesPath,
          list: () => api.list<EndpointSliceObject>(slicesPath, { labelSelector }),
        }),
      );
    }
    o.plugins.table.onSweep(() => this.retry());
  }

  get notReady(): string | null {
    return this.synced ? null : 'waiting for the first Kubernetes discovery sync';
  }

  start(): void {
    const watches = [...this.services, ...this.slices];
    for (const w of watches) w.start();
    void Promise.all(watches.map((w) => w.whenSynced())).then(async () => {
      this.reconcile();
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      if (this.stopped) return;
      this.synced = true;
      this.log.info({ services: this.desired.size, admitted: this.entries().length }, 'Kubernetes discovery synced');
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.services, ...this.slices].map((w) => w.stop()));
    this.api.close();
  }

  /** Services whose plugin is not (or not yet) in the table. */
  pendingRows(): PluginRow[] {
    const rows: PluginRow[] = [];
    for (const [service, d] of this.desired) {
      if (d.plugin && this.matches(this.entryOf(service), d.plugin)) continue;
      rows.push({
        name: d.plugin?.name ?? service,
        type: d.plugin?.kind ?? d.kind ?? 'unknown',
        origin: 'kubernetes',
        address: d.plugin?.address ?? '',
        target: null,
        id: null,
        routeName: d.plugin?.emitterName ?? null,
        sources: d.plugin?.sources ?? [],
        state: 'pending',
        health: 'unknown',
        healthMessage: d.problem ?? d.lastError ?? 'being admitted',
        lastHeartbeat: null,
        leaseLeftMs: null,
        service,
        version: '',
      });
    }
    return rows;
  }

  /** Recomputes what every Service asks for, once per burst of events. */
  private resync(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.reconcile();
    });
  }

  private reconcile(): void {
    if (this.stopped) return;
    const slicesByService = new Map<string, EndpointSliceObject[]>();
    for (const slice of this.slices.flatMap((w) => [...w.informer.list()])) {
      const key = `${slice.metadata?.namespace ?? ''}/${slice.metadata?.labels?.[SERVICE_NAME_LABEL] ?? ''}`;
      slicesByService.set(key, [...(slicesByService.get(key) ?? []), slice]);
    }
    // Only while every slice watch works does "no slice" mean "no ready endpoint".
    const endpointsKnown = this.slices.length > 0 && this.slices.every((w) => !w.disabled);
    const seen = new Set<string>();
    for (const svc of this.services.flatMap((w) => [...w.informer.list()])) {
      const key = serviceKey(svc.metadata);
      seen.add(key);
      const found = pluginFromService(svc, slicesByService.get(key) ?? [], this.o.nodeName, endpointsKnown);
      const fingerprint = JSON.stringify(found);
      const d = this.desired.get(key);
      if (d?.fingerprint === fingerprint) continue;
      const next = 'problem' in found ? { problem: found.problem, kind: found.kind } : { plugin: found };
      if (d) Object.assign(d, { plugin: undefined, problem: undefined, kind: undefined, lastError: undefined, fingerprint }, next);
      else this.desired.set(key, { ...next, fingerprint, again: false });
      if ('waiting' in found) this.log.info({ service: key }, 'plugin Service has no ready endpoint yet; waiting for one');
      else if ('problem' in found) this.log.warn({ service: key, problem: found.problem }, 'plugin Service cannot be used');
      void this.admit(key);
    }
    for (const key of [...this.desired.keys()]) {
      if (seen.has(key)) continue;
      this.desired.delete(key);
      const entry = this.entryOf(key);
      if (entry) this.o.plugins.table.remove(entry, 'service_deleted');
    }
  }

  /** Admits (or re-admits) one Service's plugin; one attempt per Service at a time. */
  private admit(key: string): Promise<void> {
    const d = this.desired.get(key);
    if (!d) return Promise.resolve();
    if (d.running) {
      d.again = true;
      return d.running;
    }
    const run = this.admitOnce(key, d).finally(() => {
      d.running = undefined;
      this.inFlight.delete(run);
      if (d.again && this.desired.get(key) === d) {
        d.again = false;
        void this.admit(key);
      }
    });
    d.running = run;
    this.inFlight.add(run);
    return run;
  }

  private async admitOnce(key: string, d: Desired): Promise<void> {
    const table = this.o.plugins.table;
    const current = this.entryOf(key);
    const plugin = d.plugin;
    if (!plugin) {
      if (current) table.remove(current, 'service_changed');
      return;
    }
    if (this.matches(current, plugin)) return;
    if (current && current.spec.name !== plugin.name) table.remove(current, 'service_changed');
    try {
      const target = await this.o.plugins.allowlist.check(targetOf(plugin.name, plugin.address), table.probeTimeoutMs);
      // What the annotations already say is checked before dialling (a static name, a full table).
      const known = {
        name: plugin.name,
        kind: plugin.kind,
        address: plugin.address,
        emitterName: plugin.emitterName ?? '',
        sources: plugin.sources ?? [],
        version: '',
        description: '',
      };
      await table.admit({
        origin: 'kubernetes',
        kind: plugin.kind,
        target,
        service: key,
        known,
        complete: (info) => completeSpec(plugin, info),
      });
      d.lastError = undefined;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message !== d.lastError) {
        this.log.warn(
          { service: key, plugin: { name: plugin.name, address: plugin.address }, reason: message },
          'discovered plugin not admitted; retrying at each health sweep',
        );
      }
      d.lastError = message;
    }
  }

  /** The sweep hook: tries again every Service whose plugin is not in the table as it asks. */
  private async retry(): Promise<void> {
    const waiting = [...this.desired]
      .filter(([key, d]) => d.plugin && !this.matches(this.entryOf(key), d.plugin))
      .map(([key]) => this.admit(key));
    await Promise.allSettled(waiting);
  }

  private entries(): PluginEntry[] {
    return this.o.plugins.table.entries().filter((e) => e.origin === 'kubernetes');
  }

  private entryOf(service: string): PluginEntry | undefined {
    return this.entries().find((e) => e.service === service);
  }

  /** Whether the table's entry is what the Service asks for now. */
  private matches(entry: PluginEntry | undefined, p: DiscoveredPlugin): boolean {
    if (!entry) return false;
    const s = entry.spec;
    return (
      s.name === p.name &&
      s.kind === p.kind &&
      s.address === p.address &&
      (p.emitterName === undefined || s.emitterName === p.emitterName) &&
      (p.sources === undefined || (s.sources.length === p.sources.length && s.sources.every((x, i) => x === p.sources![i])))
    );
  }
}

/** Fills what the annotations left out from the plugin's own Info, then checks it. */
function completeSpec(p: DiscoveredPlugin, info: PluginInfo): PluginSpec {
  const emitterName = p.kind === 'emitter' ? (p.emitterName ?? (info.emitterName || p.name)) : '';
  const sources = p.kind === 'ingestor' ? [...(p.sources ?? info.sources)] : [];
  const problem = p.kind === 'emitter' ? nameProblem('emitter name', emitterName) : sourcesProblem(sources);
  if (problem) throw new RegistryError('POLKU_ERR_DISCOVERY_INVALID', `plugin "${p.name}" (Service ${p.service}): ${problem}`);
  return {
    name: p.name,
    kind: p.kind,
    address: p.address,
    emitterName,
    sources,
    version: info.version.slice(0, 256),
    description: info.description.slice(0, 256),
  };
}
