import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';

/** Where Kubernetes mounts a pod's service-account token. */
export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The API server to discover plugins with: in a pod (KUBERNETES_SERVICE_HOST set, a
 * service-account token mounted, no KUBECONFIG), the in-cluster service account; elsewhere the
 * usual kubeconfig (`KUBECONFIG`, then `~/.kube/config`), as kubectl would.
 */
export function loadKubeConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  tokenPath = SERVICE_ACCOUNT_TOKEN,
): KubeConfig {
  const kc = new KubeConfig();
  if (env['KUBERNETES_SERVICE_HOST'] && !env['KUBECONFIG'] && existsSync(tokenPath)) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}
