import type { Registry } from 'prom-client';
import type { Clock, Timers } from '../../clock.js';
import type { ClusterAccess } from '../../discovery/kube/cluster-access.js';
import { KubeApi, type KubeObject } from '../../discovery/kube/kube-api.js';
import { ResourceWatch } from '../../discovery/resource-watch.js';
import type { Logger } from '../../observability/logger.js';
import { StringTable, toCachedPod, type CachedPod, type LabelChoice, type PodShape } from './cached-pod.js';
import { PodIndex } from './pod-index.js';

export interface PodCacheOptions {
  cluster: ClusterAccess;
  /** Only this node's pods are listed and watched (`fieldSelector=spec.nodeName=<node>`). */
  nodeName: string;
  labels: LabelChoice;
  maxPods?: number | undefined;
  deleteGraceMs?: number | undefined;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  registry: Registry;
  backoff?: { initialMs: number; maxMs: number } | undefined;
  /** Each change the cache took in (for gauges). */
  onChange?(): void;
  onRestart?(why: 'error' | 'relist'): void;
}

/**
 * The pods of this node, kept current by one informer (the list/watch of
 * {@link ResourceWatch}: restarts with backoff, 410 Gone relists) on
 * `/api/v1/pods?fieldSelector=spec.nodeName=<node>`. Each pod is stripped to a {@link CachedPod}
 * as it arrives, before the informer caches it, and indexed in a {@link PodIndex}.
 */
export class PodCache {
  readonly index: PodIndex;
  private readonly api: KubeApi;
  private readonly watch: ResourceWatch<KubeObject>;

  constructor(o: PodCacheOptions) {
    this.index = new PodIndex({ clock: o.clock, maxPods: o.maxPods, deleteGraceMs: o.deleteGraceMs });
    const api = (this.api = new KubeApi(o.cluster));
    const fieldSelector = `spec.nodeName=${o.nodeName}`;
    const shared = new StringTable();
    this.watch = new ResourceWatch<KubeObject>({
      api,
      resource: 'pods',
      component: 'kubernetes-enricher',
      path: '/api/v1/pods',
      fieldSelector,
      list: () => api.list<KubeObject>('/api/v1/pods', { fieldSelector }),
      strip: (pod) => toCachedPod(pod as PodShape, o.labels, shared),
      timers: o.timers,
      logger: o.logger,
      registry: o.registry,
      onChange: () => undefined, // the listeners below see each object
      ...(o.onRestart ? { onRestart: (why: 'error' | 'relist') => o.onRestart!(why) } : {}),
      ...(o.backoff ? { backoff: o.backoff } : {}),
    });
    const informer = this.watch.informer;
    // The informer caches what `strip` returned: these are CachedPods.
    const upsert = (pod: KubeObject): void => {
      this.index.upsert(pod as unknown as CachedPod);
      o.onChange?.();
    };
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (pod) => {
      this.index.remove(pod as unknown as CachedPod);
      o.onChange?.();
    });
  }

  /** True once the first list went through. */
  get synced(): boolean {
    return this.watch.synced;
  }

  whenSynced(): Promise<void> {
    return this.watch.whenSynced();
  }

  start(): void {
    this.watch.start();
  }

  async stop(): Promise<void> {
    await this.watch.stop();
    this.api.close();
  }
}
