import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Clock } from '../clock.js';
import {
  accessFromKubeConfig,
  inClusterAccess,
  SERVICE_ACCOUNT_CA,
  SERVICE_ACCOUNT_TOKEN,
  type ClusterAccess,
} from './kube/cluster-access.js';
import { readKubeconfig } from './kube/kubeconfig-file.js';

export { SERVICE_ACCOUNT_TOKEN };

export interface LoadClusterOptions {
  env?: Readonly<Record<string, string | undefined>>;
  tokenPath?: string;
  caPath?: string;
  /** `~`, where `.kube/config` is looked for. Default: the user's home. */
  home?: string;
  clock?: Clock;
}

/**
 * The API server to discover plugins and watch pods with: in a pod (KUBERNETES_SERVICE_HOST set,
 * a service-account token mounted, no KUBECONFIG), the in-cluster service account; elsewhere the
 * usual kubeconfig (`KUBECONFIG`, then `~/.kube/config`), as kubectl would.
 *
 * Read without @kubernetes/client-node (its KubeConfig loads the whole generated API, about
 * 60 MB). The library is loaded only for what this module does not implement: a user with an
 * `exec` or `auth-provider` credential plugin, a cluster behind `proxy-url`, or a KUBECONFIG
 * listing several files to merge.
 */
export async function loadClusterAccess(o: LoadClusterOptions = {}): Promise<ClusterAccess> {
  const env = o.env ?? process.env;
  const tokenPath = o.tokenPath ?? SERVICE_ACCOUNT_TOKEN;
  if (env['KUBERNETES_SERVICE_HOST'] && !env['KUBECONFIG'] && existsSync(tokenPath)) {
    return inClusterAccess({ env, tokenPath, caPath: o.caPath ?? SERVICE_ACCOUNT_CA, ...(o.clock ? { clock: o.clock } : {}) });
  }
  const files = (env['KUBECONFIG'] ?? '').split(delimiter).filter((f) => f !== '');
  if (files.length > 1) return viaLibrary(files, 'KUBECONFIG lists several files to merge');
  const file = files[0] ?? join(o.home ?? homedir(), '.kube', 'config');
  if (!existsSync(file)) {
    throw new Error(`no Kubernetes API server: not in a pod (KUBERNETES_SERVICE_HOST and ${tokenPath}) and no kubeconfig at ${file}`);
  }
  const read = readKubeconfig(file, o.clock);
  return 'access' in read ? read.access : viaLibrary([file], read.needsLibrary);
}

async function viaLibrary(files: string[], why: string): Promise<ClusterAccess> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(files[0]!);
  for (const f of files.slice(1)) {
    const more = new KubeConfig();
    more.loadFromFile(f);
    kc.mergeConfig(more);
  }
  return accessFromKubeConfig(kc, `${files.join(delimiter)} (through @kubernetes/client-node: ${why})`);
}
