import type { KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';

/** Where Kubernetes mounts a pod's service account: token, cluster CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const SERVICE_ACCOUNT_TOKEN = `${SERVICE_ACCOUNT_DIR}/token`;
export const SERVICE_ACCOUNT_CA = `${SERVICE_ACCOUNT_DIR}/ca.crt`;
/**
 * A token file is read again when its copy is older than this. The kubelet rewrites a projected
 * service-account token at 80 % of its lifetime (an hour by default); client-go re-reads every
 * minute, and so do we.
 */
export const TOKEN_REREAD_MS = 60_000;

/** How to reach one API server: its URL, the TLS to speak, and the headers each request carries. */
export interface ClusterAccess {
  /** `https://10.96.0.1:443`, or `http://…` (tests, `kubectl proxy`). */
  readonly server: string;
  /** Where this came from, for logs: `in-cluster`, a kubeconfig path, `client-node KubeConfig`. */
  readonly source: string;
  /** The user name the kubeconfig context names (`inClusterUser` in a pod), for logs. */
  readonly user: string;
  /** TLS: the cluster CA (default: Node's), a client certificate, whether to check the server. */
  readonly tls: ClusterTls;
  /**
   * Headers for one request (Authorization): called before every list and watch, so a token
   * file that rotates or a credential plugin that refreshes is current.
   */
  headers(): Promise<Record<string, string>> | Record<string, string>;
}

export interface ClusterTls {
  ca?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  /** False only with `insecure-skip-tls-verify: true`. */
  rejectUnauthorized: boolean;
  /** `tls-server-name`: the name the certificate is checked against, when not the URL's host. */
  servername?: string | undefined;
}

/** A bearer token read from a file, read again once its copy is {@link TOKEN_REREAD_MS} old. */
export class TokenFile {
  private token = '';
  private readAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly path: string,
    private readonly clock: Clock = systemClock,
    private readonly maxAgeMs = TOKEN_REREAD_MS,
  ) {}

  /** The token (trimmed). A file that cannot be read now keeps the last token it had. */
  current(): string {
    const now = this.clock.monotonicMs();
    if (now - this.readAt < this.maxAgeMs) return this.token;
    try {
      this.token = readFileSync(this.path, 'utf8').trim();
      this.readAt = now;
    } catch (err) {
      if (this.token === '') throw err; // nothing to fall back on: say why at start
    }
    return this.token;
  }
}

export interface InClusterOptions {
  env?: Readonly<Record<string, string | undefined>>;
  tokenPath?: string;
  caPath?: string;
  clock?: Clock;
}

/**
 * The pod's own service account, as client-go's `rest.InClusterConfig`: the API server at
 * `KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT` over https, checked against the mounted CA,
 * with the mounted token (re-read for rotation).
 */
export function inClusterAccess(o: InClusterOptions = {}): ClusterAccess {
  const env = o.env ?? process.env;
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] || '443';
  if (!host) throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST is not set');
  const token = new TokenFile(o.tokenPath ?? SERVICE_ACCOUNT_TOKEN, o.clock);
  token.current(); // a missing token is an error at start, not at the first list
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    source: 'in-cluster',
    user: 'inClusterUser',
    tls: { ca: readFileSync(o.caPath ?? SERVICE_ACCOUNT_CA), rejectUnauthorized: true },
    headers: () => ({ authorization: `Bearer ${token.current()}` }),
  };
}

/**
 * A @kubernetes/client-node `KubeConfig` the caller built (or that a kubeconfig needing the
 * library's credential plugins was loaded into): its current cluster, with TLS and headers from
 * the library's own `applyToHTTPSOptions`, called per request so exec and OIDC tokens refresh.
 */
export async function accessFromKubeConfig(kc: KubeConfig, source = 'client-node KubeConfig'): Promise<ClusterAccess> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${source}: no current cluster`);
  const opts: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string } =
    {};
  await kc.applyToHTTPSOptions(opts);
  return {
    server: cluster.server,
    source,
    user: kc.getCurrentUser()?.name ?? '',
    tls: {
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: opts.rejectUnauthorized !== false,
      servername: cluster.tlsServerName,
    },
    headers: async () => {
      const each: { headers?: Record<string, unknown>; auth?: string } = {};
      await kc.applyToHTTPSOptions(each);
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(each.headers ?? {})) if (typeof v === 'string') out[k.toLowerCase()] = v;
      // username/password users come back as `auth`, which a request would send as Basic.
      if (each.auth && !out['authorization']) out['authorization'] = `Basic ${Buffer.from(each.auth).toString('base64')}`;
      return out;
    },
  };
}
