import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterAccess } from './kube/cluster-access.js';
import type { KubernetesDiscovery, KubernetesDiscoveryOptions } from './kubernetes-discovery.js';

export type { KubernetesDiscovery, KubernetesDiscoveryOptions } from './kubernetes-discovery.js';
export type { ClusterAccess, ClusterTls } from './kube/cluster-access.js';

/** Where discovery and the Kubernetes enricher find the API server, when the caller says. */
export interface ClusterChoice {
  /** The API server, as `loadClusterAccess()` or the caller built it. */
  cluster?: ClusterAccess | undefined;
  /** Or a @kubernetes/client-node KubeConfig the caller loaded (its credential plugins run per request). */
  kubeConfig?: KubeConfig | undefined;
}

/**
 * The API server: `cluster`, else `kubeConfig` (client-node's, adapted), else the in-cluster
 * service account in a pod or the usual kubeconfig (src/discovery/kube-config.ts).
 */
export async function resolveCluster(choice: ClusterChoice): Promise<ClusterAccess> {
  if (choice.cluster) return choice.cluster;
  if (choice.kubeConfig) return (await import('./kube/cluster-access.js')).accessFromKubeConfig(choice.kubeConfig);
  return (await import('./kube-config.js')).loadClusterAccess();
}

/**
 * Builds Kubernetes discovery, loading its modules only now. Discovery speaks to the API server
 * with its own small list/watch client (src/discovery/kube/): @kubernetes/client-node, which
 * costs about 60 MB of memory to load, is loaded only for a kubeconfig that needs its credential
 * plugins.
 */
export async function kubernetesDiscovery(
  options: Omit<KubernetesDiscoveryOptions, 'cluster'> & ClusterChoice,
): Promise<KubernetesDiscovery> {
  const { cluster, kubeConfig, ...rest } = options;
  const [{ KubernetesDiscovery: Discovery }, access] = await Promise.all([
    import('./kubernetes-discovery.js'),
    resolveCluster({ cluster, kubeConfig }),
  ]);
  return new Discovery({ ...rest, cluster: access });
}
