import { load } from 'js-yaml';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Clock } from '../../clock.js';
import { TokenFile, type ClusterAccess } from './cluster-access.js';

/**
 * A kubeconfig's current context as this module reads it, or why it cannot: `needsLibrary` when
 * the user authenticates through a credential plugin (`exec`, `auth-provider`) or the cluster
 * through a proxy, which only @kubernetes/client-node implements.
 */
export type KubeconfigResult = { access: ClusterAccess } | { needsLibrary: string };

interface Named<T> {
  name?: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}
type Fields = Record<string, unknown>;

/**
 * Reads the current context of one kubeconfig file (YAML or JSON) without
 * @kubernetes/client-node, whose KubeConfig loads the whole generated API (about 60 MB):
 * server, `certificate-authority(-data)`, `insecure-skip-tls-verify`, `tls-server-name`; the user's
 * `token`, `tokenFile` (re-read for rotation), `client-certificate(-data)`/`client-key(-data)`,
 * `username`/`password`. File paths are relative to the kubeconfig's folder, as kubectl reads them.
 */
export function readKubeconfig(path: string, clock?: Clock): KubeconfigResult {
  const doc = load(readFileSync(path, 'utf8')) as Fields | null;
  if (!doc || typeof doc !== 'object') throw new Error(`kubeconfig ${path}: not a YAML mapping`);
  const contextName = str(doc['current-context']);
  if (!contextName) throw new Error(`kubeconfig ${path}: no current-context`);
  const context = pick(doc, 'contexts', 'context', contextName, path);
  const clusterName = str(context['cluster']);
  const cluster = pick(doc, 'clusters', 'cluster', clusterName, path);
  const userName = str(context['user']);
  const user = userName ? pick(doc, 'users', 'user', userName, path) : {};
  if (user['exec'] !== undefined) return { needsLibrary: 'the user authenticates with an exec credential plugin' };
  if (user['auth-provider'] !== undefined) return { needsLibrary: 'the user authenticates with an auth-provider' };
  if (cluster['proxy-url'] !== undefined) return { needsLibrary: 'the cluster is reached through proxy-url' };
  const server = str(cluster['server']);
  if (!server) throw new Error(`kubeconfig ${path}: cluster "${clusterName}" has no server`);
  const base = dirname(path);
  const file = (p: unknown): Buffer | undefined =>
    typeof p === 'string' && p !== '' ? readFileSync(isAbsolute(p) ? p : resolve(base, p)) : undefined;
  const data = (d: unknown): Buffer | undefined => (typeof d === 'string' && d !== '' ? Buffer.from(d, 'base64') : undefined);
  const token = str(user['token']);
  const tokenPath = str(user['tokenFile']);
  const tokenFile = !token && tokenPath ? new TokenFile(isAbsolute(tokenPath) ? tokenPath : resolve(base, tokenPath), clock) : undefined;
  tokenFile?.current();
  const username = str(user['username']);
  const basic = username ? `Basic ${Buffer.from(`${username}:${str(user['password'])}`).toString('base64')}` : '';
  return {
    access: {
      server,
      source: path,
      user: userName,
      tls: {
        ca: data(cluster['certificate-authority-data']) ?? file(cluster['certificate-authority']),
        cert: data(user['client-certificate-data']) ?? file(user['client-certificate']),
        key: data(user['client-key-data']) ?? file(user['client-key']),
        rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
        servername: str(cluster['tls-server-name']) || undefined,
      },
      headers: () => {
        const bearer = token || tokenFile?.current();
        if (bearer) return { authorization: `Bearer ${bearer}` };
        return basic ? { authorization: basic } : {};
      },
    },
  };
}

function pick(doc: Fields, list: string, field: 'cluster' | 'user' | 'context', name: string, path: string): Fields {
  const entries = Array.isArray(doc[list]) ? (doc[list] as Array<Named<Fields>>) : [];
  const entry = entries.find((e) => e && e.name === name);
  const found = entry?.[field];
  if (found && typeof found === 'object') return found;
  if (entry && field === 'user') return {}; // a user with no credentials: anonymous
  throw new Error(`kubeconfig ${path}: no ${field} named "${name}" in ${list}`);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
