import * as K from '../../metadata-keys.js';

/**
 * What the pod cache keeps of one pod: what the enricher writes, already turned into metadata
 * pairs, and nothing else (no spec, no managedFields, no annotations). It is also the object the
 * informer caches in place of the pod (`metadata.name`, `namespace` and `resourceVersion` are
 * what the informer itself reads), so one small record per pod is all the memory it takes.
 */
export interface CachedPod {
  readonly metadata: { readonly name: string; readonly namespace: string; readonly resourceVersion?: string | undefined };
  readonly uid: string;
  /** `status.podIP`; empty until the pod has one. */
  readonly ip: string;
  /** A host-network pod shares the node's IP: it is never found by IP (as k8sattributes does). */
  readonly hostNetwork: boolean;
  /** Placement and owner, flat: key, value, key, value… (pod name, uid, IP, namespace, node, owners). */
  readonly pairs: readonly string[];
  /** The chosen labels, flat: `k8s.pod.labels.<key>`, value, … (written after `pairs`, while they fit). */
  readonly labels: readonly string[];
  /** Container ids (runtime prefix removed) and their container names, flat: id, name, id, name… */
  readonly containers: readonly string[];
}

/** The fields of a v1 Pod the cache reads (what the API server sends, as plain JSON or client-node's model). */
export interface PodShape {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ kind?: string; name?: string; controller?: boolean }>;
  };
  spec?: { nodeName?: string; hostNetwork?: boolean };
  status?: {
    podIP?: string;
    containerStatuses?: ContainerStatusShape[];
    initContainerStatuses?: ContainerStatusShape[];
    ephemeralContainerStatuses?: ContainerStatusShape[];
  };
}

interface ContainerStatusShape {
  name?: string;
  containerID?: string;
}

/** Which pod labels to keep: every one, or those named. */
export type LabelChoice = 'all' | ReadonlySet<string>;

/**
 * One copy of each string many pods share (namespaces, the node, owners, label keys and values),
 * so a node's pods cost one string each, not one per pod. Bounded: when full it starts over (the
 * records keep the strings they have; only later pods stop sharing with earlier ones), so pods
 * churning over days never grow it.
 */
export class StringTable {
  private readonly strings = new Map<string, string>();
  private readonly labelKeys = new Map<string, string>();

  constructor(readonly maxEntries = 4096) {}

  /** The shared copy of `s`. */
  get(s: string): string {
    const had = this.strings.get(s);
    if (had !== undefined) return had;
    if (this.strings.size >= this.maxEntries) this.strings.clear();
    this.strings.set(s, s);
    return s;
  }

  /** `k8s.pod.labels.<key>`, built once per key. */
  labelKey(key: string): string {
    let prefixed = this.labelKeys.get(key);
    if (prefixed === undefined) {
      prefixed = K.K8S_POD_LABEL_PREFIX + key;
      if (this.labelKeys.size >= this.maxEntries) this.labelKeys.clear();
      this.labelKeys.set(key, prefixed);
    }
    return prefixed;
  }
}

/**
 * Turns a pod into its cache record. Owner, as the OpenTelemetry Collector's k8sattributes
 * processor derives it without watching ReplicaSets or Jobs:
 * - a ReplicaSet owner gives `k8s.replicaset.name`, and `k8s.deployment.name` when the pod's
 *   `pod-template-hash` label is the ReplicaSet name's suffix (`web-7d4b9c8f6` → `web`): only the
 *   Deployment controller sets that label, so a bare ReplicaSet names no Deployment;
 * - a Job owner gives `k8s.job.name`, and `k8s.cronjob.name` when the Job's name ends in `-<digits>`
 *   (the CronJob controller names Jobs `<cronjob>-<scheduled minute>`);
 * - a DaemonSet or StatefulSet owner gives its name. Other kinds are left out.
 */
export function toCachedPod(pod: PodShape, labels: LabelChoice, shared: StringTable = new StringTable()): CachedPod {
  const md = pod.metadata ?? {};
  const name = md.name ?? '';
  const namespace = shared.get(md.namespace ?? '');
  const uid = md.uid ?? '';
  const ip = pod.status?.podIP ?? '';
  const podLabels = md.labels ?? {};
  const pairs: string[] = [K.K8S_POD_NAME, name, K.K8S_NAMESPACE_NAME, namespace];
  if (uid) pairs.push(K.K8S_POD_UID, uid);
  if (ip) pairs.push(K.K8S_POD_IP, ip);
  if (pod.spec?.nodeName) pairs.push(K.K8S_NODE_NAME, shared.get(pod.spec.nodeName));
  const owners = md.ownerReferences ?? [];
  const owner = owners.find((o) => o.controller === true) ?? owners[0];
  if (owner?.name) ownerPairs(owner.kind ?? '', owner.name, podLabels, pairs, shared);
  const labelPairs: string[] = [];
  for (const key of Object.keys(podLabels)) {
    if (labels !== 'all' && !labels.has(key)) continue;
    labelPairs.push(shared.labelKey(key), shared.get(podLabels[key]!));
  }
  const containers: string[] = [];
  const status = pod.status;
  for (const list of [status?.containerStatuses, status?.initContainerStatuses, status?.ephemeralContainerStatuses]) {
    for (const c of list ?? []) {
      if (c.containerID && c.name) containers.push(bareContainerId(c.containerID), shared.get(c.name));
    }
  }
  return {
    metadata: { name, namespace, resourceVersion: md.resourceVersion },
    uid,
    ip,
    hostNetwork: pod.spec?.hostNetwork === true,
    pairs,
    labels: labelPairs,
    containers,
  };
}

function ownerPairs(kind: string, owner: string, podLabels: Record<string, string>, pairs: string[], shared: StringTable): void {
  const name = shared.get(owner);
  switch (kind) {
    case 'ReplicaSet': {
      pairs.push(K.K8S_REPLICASET_NAME, name);
      const hash = podLabels['pod-template-hash'];
      if (hash && name.length > hash.length + 1 && name.endsWith(`-${hash}`)) {
        pairs.push(K.K8S_DEPLOYMENT_NAME, shared.get(name.slice(0, name.length - hash.length - 1)));
      }
      return;
    }
    case 'Job': {
      pairs.push(K.K8S_JOB_NAME, name);
      const m = /^(.+)-\d+$/.exec(name);
      if (m) pairs.push(K.K8S_CRONJOB_NAME, shared.get(m[1]!));
      return;
    }
    case 'DaemonSet':
      pairs.push(K.K8S_DAEMONSET_NAME, name);
      return;
    case 'StatefulSet':
      pairs.push(K.K8S_STATEFULSET_NAME, name);
      return;
    case 'Deployment': // not made by Kubernetes' own controllers, but unambiguous
      pairs.push(K.K8S_DEPLOYMENT_NAME, name);
      return;
    case 'CronJob':
      pairs.push(K.K8S_CRONJOB_NAME, name);
      return;
  }
}

/**
 * A container id as `status.containerStatuses[].containerID` has it (`containerd://<id>`,
 * `docker://<id>`, `cri-o://<id>`) or bare: the id without its runtime prefix. Allocates only
 * when there is a prefix.
 */
export function bareContainerId(id: string): string {
  const at = id.indexOf('://');
  return at < 0 ? id : id.slice(at + 3);
}
