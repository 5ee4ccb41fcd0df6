import type { Clock } from '../../clock.js';
import { bareContainerId, type CachedPod } from './cached-pod.js';

export const DEFAULT_MAX_PODS = 5_000;
/** How long a deleted pod is still found (k8sattributes's `pod_delete_grace_period`). */
export const DEFAULT_DELETE_GRACE_MS = 120_000;

export interface PodIndexOptions {
  /** Most pods held, deleted ones in their grace period included. Default 5,000 (a node runs ≤ 110 by default). */
  maxPods?: number | undefined;
  /** How long a deleted pod is still found, so late events from a dying pod get context. Default 2 min. */
  deleteGraceMs?: number | undefined;
  clock: Clock;
}

/** A container found by its id: the pod and the container's name. */
export interface ContainerMatch {
  pod: CachedPod;
  container: string;
}

interface Deleted {
  pod: CachedPod;
  atMs: number;
}

/**
 * The pods of one node, found by namespace and name, by IP and by container id: lookups are Map
 * reads with no allocation. A deleted pod stays findable for `deleteGraceMs` (the clock decides;
 * expired ones are swept by `sweep`, which costs one comparison when none is due). The table holds
 * at most `maxPods`; a pod beyond that is not indexed and `overLimit` counts it.
 */
export class PodIndex {
  readonly maxPods: number;
  readonly deleteGraceMs: number;
  /** namespace → name → pod. */
  private readonly byName = new Map<string, Map<string, CachedPod>>();
  private readonly byIp = new Map<string, CachedPod>();
  private readonly byContainer = new Map<string, CachedPod>();
  /** Pods held (live and deleted): the bound counts these. */
  private count = 0;
  /** Deleted pods in deletion order, so the oldest is first. */
  private readonly deleted: Deleted[] = [];
  private readonly clock: Clock;
  /** Pods not indexed because the table was full. */
  overLimit = 0;

  constructor(o: PodIndexOptions) {
    this.maxPods = o.maxPods ?? DEFAULT_MAX_PODS;
    this.deleteGraceMs = o.deleteGraceMs ?? DEFAULT_DELETE_GRACE_MS;
    this.clock = o.clock;
  }

  /** Pods held, deleted ones in their grace period included. */
  get size(): number {
    return this.count;
  }

  /** Deleted pods still found, in their grace period. */
  get deletedPods(): number {
    return this.deleted.filter((d) => this.holds(d.pod)).length;
  }

  /** Adds a pod, or replaces the one of the same namespace and name (an update, or a new pod reusing the name). */
  upsert(pod: CachedPod): void {
    const { namespace, name } = pod.metadata;
    const old = this.byName.get(namespace)?.get(name);
    if (old) this.unindex(old);
    else if (this.count >= this.maxPods) {
      this.sweep();
      if (this.count >= this.maxPods) {
        this.overLimit++;
        return;
      }
    }
    this.count++;
    let names = this.byName.get(namespace);
    if (!names) this.byName.set(namespace, (names = new Map()));
    names.set(name, pod);
    if (pod.ip && !pod.hostNetwork) this.byIp.set(pod.ip, pod);
    const c = pod.containers;
    for (let i = 0; i < c.length; i += 2) this.byContainer.set(c[i]!, pod);
  }

  /** The pod is gone from the API server: still found until the grace period ends. */
  remove(pod: Pick<CachedPod, 'metadata'>): void {
    const held = this.byName.get(pod.metadata.namespace)?.get(pod.metadata.name);
    if (!held) return;
    if (this.deleteGraceMs <= 0) {
      this.unindex(held);
      return;
    }
    this.deleted.push({ pod: held, atMs: this.clock.nowMs() });
  }

  /** Drops deleted pods whose grace period is over (a pod re-added since under the same name stays). */
  sweep(): void {
    const d = this.deleted;
    if (d.length === 0 || d[0]!.atMs + this.deleteGraceMs > this.clock.nowMs()) return;
    const now = this.clock.nowMs();
    let n = 0;
    while (n < d.length && d[n]!.atMs + this.deleteGraceMs <= now) {
      const { pod } = d[n]!;
      if (this.holds(pod)) this.unindex(pod);
      n++;
    }
    d.splice(0, n);
  }

  byNamespaceAndName(namespace: string, name: string): CachedPod | undefined {
    return this.byName.get(namespace)?.get(name);
  }

  byPodIp(ip: string): CachedPod | undefined {
    return this.byIp.get(ip);
  }

  /** By container id, with or without its runtime prefix: the pod and the container's name. */
  byContainerId(id: string): ContainerMatch | undefined {
    const bare = bareContainerId(id);
    const pod = this.byContainer.get(bare);
    if (pod === undefined) return undefined;
    const c = pod.containers;
    for (let i = 0; i < c.length; i += 2) if (c[i] === bare) return { pod, container: c[i + 1]! };
    return undefined;
  }

  /** Whether `pod` (this very record) is the one indexed under its namespace and name. */
  private holds(pod: CachedPod): boolean {
    return this.byName.get(pod.metadata.namespace)?.get(pod.metadata.name) === pod;
  }

  /** Removes every trace of `pod` (only entries that still point at it: a newer pod may own a name, IP or id now). */
  private unindex(pod: CachedPod): void {
    const names = this.byName.get(pod.metadata.namespace);
    if (names?.get(pod.metadata.name) !== pod) return; // already replaced or removed
    this.count--;
    names.delete(pod.metadata.name);
    if (names.size === 0) this.byName.delete(pod.metadata.namespace);
    if (pod.ip && this.byIp.get(pod.ip) === pod) this.byIp.delete(pod.ip);
    const c = pod.containers;
    for (let i = 0; i < c.length; i += 2) if (this.byContainer.get(c[i]!) === pod) this.byContainer.delete(c[i]!);
  }
}
