import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterAccess } from '../discovery/kube/cluster-access.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import { DEFAULT_LIMITS } from '../ingest/intake-rules.js';
import * as K from '../metadata-keys.js';
import type { Logger } from '../observability/logger.js';
import type { CachedPod, LabelChoice } from './kubernetes/cached-pod.js';
import { KubernetesEnricherMetrics } from './kubernetes/enricher-metrics.js';
import type { PodCache } from './kubernetes/pod-cache.js';
import { writePodContext } from './kubernetes/write-context.js';
import { DEFAULT_DELETE_GRACE_MS, DEFAULT_MAX_PODS, type PodIndex } from './kubernetes/pod-index.js';
import type { Middleware } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export { DEFAULT_DELETE_GRACE_MS, DEFAULT_MAX_PODS };

/** How an event names its pod: by container id, by pod name and namespace, or by pod IP. */
export type KubernetesLookup = 'container.id' | 'k8s.pod.name' | 'k8s.pod.ip';

/** The lookups tried, in order, until one finds a pod: the container id first, since it also names the container. */
export const DEFAULT_LOOKUPS: readonly KubernetesLookup[] = Object.freeze(['container.id', 'k8s.pod.name', 'k8s.pod.ip'] as const);

export interface KubernetesEnricherOptions {
  /** Default `kubernetes`. */
  name?: string;
  /** The node whose pods are watched. Default: the `NODE_NAME` environment variable (the chart sets it from the downward API). */
  nodeName?: string;
  /** The API server. Default: the in-cluster service account in a pod, else the usual kubeconfig. */
  cluster?: ClusterAccess;
  /** Or a @kubernetes/client-node KubeConfig the caller loaded (adapted; `cluster` wins). */
  kubeConfig?: KubeConfig;
  /** Which lookups to try, in order. Default `['container.id', 'k8s.pod.name', 'k8s.pod.ip']`. */
  lookups?: readonly KubernetesLookup[];
  /**
   * The metadata keys the lookups read, if an agent writes others. Defaults: `container.id`,
   * `k8s.pod.name` with `k8s.namespace.name`, `k8s.pod.ip` (src/metadata-keys.ts).
   */
  keys?: { containerId?: string; podName?: string; namespace?: string; podIp?: string };
  /** Pod labels to copy as `k8s.pod.labels.<key>`: `'all'` (default) or the keys to keep. */
  labels?: 'all' | readonly string[];
  /** Most pods held. Default 5,000. */
  maxPods?: number;
  /** How long a deleted pod is still found, ms. Default 120,000 (k8sattributes's `pod_delete_grace_period`). */
  deleteGraceMs?: number;
  /** The metadata limit an event must stay within (key and value lengths summed). Default 16,384, the intake default. */
  maxMetadataBytes?: number;
  /** Pod watch restart backoff. Default 500 ms doubling to 30 s. */
  backoff?: { initialMs: number; maxMs: number };
}

/** Every key of {@link KubernetesEnricherOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const KUBERNETES_ENRICHER_OPTION_KEYS = optionKeys<KubernetesEnricherOptions>({
  name: true,
  nodeName: true,
  cluster: true,
  kubeConfig: true,
  lookups: true,
  keys: true,
  labels: true,
  maxPods: true,
  deleteGraceMs: true,
  maxMetadataBytes: true,
  backoff: true,
});
const KUBERNETES_KEYS_KEYS = optionKeys<NonNullable<KubernetesEnricherOptions['keys']>>({
  containerId: true,
  podName: true,
  namespace: true,
  podIp: true,
});
const KUBERNETES_BACKOFF_KEYS = optionKeys<NonNullable<KubernetesEnricherOptions['backoff']>>({ initialMs: true, maxMs: true });

const enum Via {
  Container,
  PodName,
  PodIp,
}

/**
 * Adds a pod's Kubernetes context to events from the node that name it (what the OpenTelemetry
 * Collector's k8sattributes processor and Fluent Bit's kubernetes filter do): by container id
 * (`container.id`, with or without a `containerd://`, `docker://`, `cri-o://` prefix), by pod
 * name and namespace, or by pod IP. It writes `k8s.pod.name`, `k8s.pod.uid`, `k8s.pod.ip`,
 * `k8s.namespace.name`, `k8s.node.name`, the owner (`k8s.deployment.name`, `k8s.replicaset.name`,
 * `k8s.daemonset.name`, `k8s.statefulset.name`, `k8s.job.name`, `k8s.cronjob.name`),
 * `k8s.container.name` for a container id, then `k8s.pod.labels.<key>`. A key the event already
 * has is never overwritten, and nothing is added past `maxMetadataBytes` (counted).
 *
 * Lookups are Map reads in a cache of this node's pods, kept by a watch
 * (`spec.nodeName=<node>`): no promise and no copy per event. Until the first list arrives,
 * events pass unchanged (counted as `miss`/`not_synced`); the batch never waits for the API server.
 * Its list/watch client (src/discovery/kube/) is loaded only when the middleware is initialised.
 */
export class KubernetesEnricher implements Middleware {
  readonly name: string;
  private readonly nodeName: string;
  private readonly lookups: Via[];
  private readonly containerKey: string;
  private readonly podNameKey: string;
  private readonly namespaceKey: string;
  private readonly podIpKey: string;
  private readonly labels: LabelChoice;
  private readonly maxMetadataBytes: number;
  private cache: PodCache | undefined;
  private index: PodIndex | undefined;
  private metrics: KubernetesEnricherMetrics | undefined;
  private log: Logger | undefined;
  private loading: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: KubernetesEnricherOptions = {}) {
    this.name = o.name ?? 'kubernetes';
    checkOptionKeys(`kubernetesEnricher "${this.name}"`, o, KUBERNETES_ENRICHER_OPTION_KEYS);
    checkOptionKeys(`kubernetesEnricher "${this.name}"`, o.keys, KUBERNETES_KEYS_KEYS, 'keys.');
    checkOptionKeys(`kubernetesEnricher "${this.name}"`, o.backoff, KUBERNETES_BACKOFF_KEYS, 'backoff.');
    const nodeName = o.nodeName ?? process.env['NODE_NAME'];
    if (!nodeName) {
      this.invalid('needs the node whose pods to watch: set NODE_NAME (the chart sets it from spec.nodeName) or the nodeName option');
    }
    this.nodeName = nodeName;
    const lookups = o.lookups ?? DEFAULT_LOOKUPS;
    if (!Array.isArray(lookups) || lookups.length === 0)
      this.invalid('lookups must name at least one of container.id, k8s.pod.name, k8s.pod.ip');
    this.lookups = lookups.map((l) => {
      if (l === 'container.id') return Via.Container;
      if (l === 'k8s.pod.name') return Via.PodName;
      if (l === 'k8s.pod.ip') return Via.PodIp;
      return this.invalid(`lookups: unknown lookup "${String(l)}" (container.id, k8s.pod.name, k8s.pod.ip)`);
    });
    this.containerKey = o.keys?.containerId ?? K.CONTAINER_ID;
    this.podNameKey = o.keys?.podName ?? K.K8S_POD_NAME;
    this.namespaceKey = o.keys?.namespace ?? K.K8S_NAMESPACE_NAME;
    this.podIpKey = o.keys?.podIp ?? K.K8S_POD_IP;
    const labels = o.labels ?? 'all';
    if (labels !== 'all' && !Array.isArray(labels)) this.invalid(`labels must be "all" or a list of label keys`);
    this.labels = labels === 'all' ? 'all' : new Set(labels);
    this.maxMetadataBytes = o.maxMetadataBytes ?? DEFAULT_LIMITS.maxMetadataBytes;
    this.positive('maxMetadataBytes', this.maxMetadataBytes);
    this.positive('maxPods', o.maxPods ?? DEFAULT_MAX_PODS);
    const grace = o.deleteGraceMs ?? DEFAULT_DELETE_GRACE_MS;
    if (!Number.isSafeInteger(grace) || grace < 0) this.invalid(`deleteGraceMs must be a whole number of ms (0 or more), got ${grace}`);
  }

  /** Loads the client library and starts the pod watch; events pass unenriched until it has listed. */
  init(ctx: ComponentContext): void {
    if (this.loading) return;
    this.metrics = new KubernetesEnricherMetrics(ctx.registry, this.name);
    this.log = ctx.logger.child({ component: 'middleware', middleware: this.name });
    this.loading = this.load(ctx).catch((err: unknown) => {
      this.log?.error({ err }, 'the Kubernetes enricher could not start: events pass without pod context');
    });
  }

  /** Resolves once the pod cache has listed this node's pods (for tests and embedders; the pipeline never waits). */
  async whenSynced(): Promise<void> {
    if (!this.loading)
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `kubernetesEnricher "${this.name}": not initialised (build the hub first)`);
    await this.loading;
    await this.cache?.whenSynced();
  }

  /** Pods held now, deleted ones in their grace period included. */
  get cachedPods(): number {
    return this.index?.size ?? 0;
  }

  /** Of those, pods deleted from the API server and still found for their grace period. */
  get deletedPods(): number {
    return this.index?.deletedPods ?? 0;
  }

  /** Stops the pod watch. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    await this.loading;
    await this.cache?.stop();
  }

  process(events: Event[]): Event[] {
    const index = this.index;
    const synced = this.cache?.synced === true;
    index?.sweep();
    let byContainer = 0;
    let byName = 0;
    let byIp = 0;
    let notFound = 0;
    let notSynced = 0;
    let noKey = 0;
    let truncated = 0;
    for (let e = 0; e < events.length; e++) {
      const md = events[e]!.metadata;
      let pod: CachedPod | undefined;
      let container: string | undefined;
      let via = Via.Container;
      let sawKey = false;
      for (let l = 0; l < this.lookups.length && pod === undefined; l++) {
        via = this.lookups[l]!;
        if (via === Via.Container) {
          const id = md[this.containerKey];
          if (!id) continue;
          sawKey = true;
          const match = index?.byContainerId(id);
          if (match) {
            pod = match.pod;
            container = match.container;
          }
        } else if (via === Via.PodName) {
          const name = md[this.podNameKey];
          const namespace = md[this.namespaceKey];
          if (!name || !namespace) continue;
          sawKey = true;
          pod = index?.byNamespaceAndName(namespace, name);
        } else {
          const ip = md[this.podIpKey];
          if (!ip) continue;
          sawKey = true;
          pod = index?.byPodIp(ip);
        }
      }
      if (pod !== undefined) {
        if (via === Via.Container) byContainer++;
        else if (via === Via.PodName) byName++;
        else byIp++;
        if (!writePodContext(md, pod, container, this.maxMetadataBytes)) truncated++;
      } else if (!sawKey) noKey++;
      else if (synced) notFound++;
      else notSynced++;
    }
    const m = this.metrics;
    if (m) {
      m.lookup('hit_container_id', byContainer);
      m.lookup('hit_pod_name', byName);
      m.lookup('hit_pod_ip', byIp);
      m.lookup('miss_not_found', notFound);
      m.lookup('miss_not_synced', notSynced);
      m.lookup('no_key', noKey);
      m.truncatedEvents(truncated);
      if (index) m.cache(index.size, index.overLimit);
    }
    return events;
  }

  private async load(ctx: ComponentContext): Promise<void> {
    const [{ PodCache: Cache }, cluster] = await Promise.all([
      import('./kubernetes/pod-cache.js'),
      import('../discovery/index.js').then((m) => m.resolveCluster({ cluster: this.o.cluster, kubeConfig: this.o.kubeConfig })),
    ]);
    if (this.stopped) return;
    const metrics = this.metrics!;
    const cache = new Cache({
      cluster,
      nodeName: this.nodeName,
      labels: this.labels,
      maxPods: this.o.maxPods,
      deleteGraceMs: this.o.deleteGraceMs,
      clock: ctx.clock,
      timers: ctx.timers,
      logger: ctx.logger,
      registry: ctx.registry,
      backoff: this.o.backoff,
      onChange: () => metrics.cache(cache.index.size, cache.index.overLimit),
      onRestart: (why) => metrics.restart(why),
    });
    this.cache = cache;
    this.index = cache.index;
    cache.start();
    void cache.whenSynced().then(() => this.log?.info({ node: this.nodeName, pods: cache.index.size }, 'pod cache synced'));
  }

  private positive(what: string, value: number): void {
    if (!Number.isSafeInteger(value) || value <= 0) this.invalid(`${what} must be a positive whole number, got ${value}`);
  }

  private invalid(message: string): never {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `kubernetesEnricher "${this.name}": ${message}`);
  }
}

/** Builds a {@link KubernetesEnricher}. */
export function kubernetesEnricher(options: KubernetesEnricherOptions = {}): KubernetesEnricher {
  return new KubernetesEnricher(options);
}
