import type { KubeConfig } from '@kubernetes/client-node';
import type { KubernetesDiscovery, KubernetesDiscoveryOptions } from './kubernetes-discovery.js';

export type { KubernetesDiscovery, KubernetesDiscoveryOptions } from './kubernetes-discovery.js';

/**
 * Builds Kubernetes discovery, loading @kubernetes/client-node only now: the library costs about
 * half a second and 70 MiB of memory to load, which a gateway without discovery should not pay.
 * Without `kubeConfig`, the in-cluster service account (in a pod) or the usual kubeconfig.
 */
export async function kubernetesDiscovery(
  options: Omit<KubernetesDiscoveryOptions, 'kubeConfig'> & { kubeConfig?: KubeConfig },
): Promise<KubernetesDiscovery> {
  const [{ KubernetesDiscovery: Discovery }, { loadKubeConfig }] = await Promise.all([
    import('./kubernetes-discovery.js'),
    import('./kube-config.js'),
  ]);
  return new Discovery({ ...options, kubeConfig: options.kubeConfig ?? loadKubeConfig() });
}
