import type { Metadata } from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { polkuError } from '../errors.js';
import { RegistryError } from './plugin-spec.js';

/**
 * Who is calling the PluginRegistry, and what it may claim. `plugins` and `sources` are patterns:
 * an exact name, `prefix-*`, or `*` for anything. A source the gateway protects (one a static
 * ingestor claims or agents have sent on) is allowed only by a pattern other than the bare `*`:
 * an identity has to name it to take it.
 */
export interface RegistryIdentity {
  /** Shown in logs and kept on the plugins it registers (the owner). `anonymous` for no identity. */
  readonly name: string;
  readonly plugins: readonly string[];
  readonly sources: readonly string[];
  /** False only for the anonymous caller of an open registry. */
  readonly authenticated: boolean;
}

/** The caller of an open registry (no token, no identities): any name, any unprotected source. */
export const ANONYMOUS: RegistryIdentity = Object.freeze({ name: 'anonymous', plugins: ['*'], sources: ['*'], authenticated: false });

/** The call as an identity resolver sees it. */
export interface RegistryCaller {
  readonly metadata: Metadata;
  /** grpc-js `getPeer()`: `ip:port` or `[v6]:port`. */
  readonly peer: string;
  /** The transport's auth context (grpc-js `getAuthContext()`): the TLS peer certificate, when there is one. */
  readonly authContext?: unknown;
}

/**
 * Decides who a call is: an identity, the anonymous caller (open registry), or throws a
 * RegistryError (UNAUTHENTICATED). The token resolver is the implementation here; a resolver
 * reading the TLS peer certificate's names can stand in front of it (mTLS identities).
 */
export type IdentityResolver = (caller: RegistryCaller) => RegistryIdentity;

/**
 * One identity as configured: a token (kept as its SHA-256 digest), the names of a client
 * certificate (its subject CN or a DNS subjectAltName, when the gRPC port requires client
 * certificates), or both.
 */
export interface ConfiguredIdentity {
  readonly name: string;
  readonly tokenDigest?: Buffer | undefined;
  readonly certificateNames?: readonly string[] | undefined;
  readonly plugins: readonly string[];
  readonly sources: readonly string[];
}

/** The name POLKU_REGISTRY_TOKEN's identity goes by. */
export const TOKEN_IDENTITY = 'registry-token';

const PATTERN = /^(?:\*|[A-Za-z0-9._-]{1,128}\*?)$/;

/** Whether `value` matches one of `patterns`; with `explicit`, the bare `*` does not count. */
export function allows(patterns: readonly string[], value: string, explicit = false): boolean {
  return patterns.some((p) => {
    if (p === '*') return !explicit;
    return p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : value === p;
  });
}

/** SHA-256 of a token. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Reads POLKU_REGISTRY_IDENTITIES_FILE: `{"identities":[{"name":"team-a","token":"sha256:<hex>",
 * "plugins":["slack","audit-*"],"sources":["csv-*"]}]}`. Tokens are stored as digests only, so the
 * file reveals none of them. Throws POLKU_ERR_ENV_INVALID naming the file and the entry.
 */
export function loadIdentities(path: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): ConfiguredIdentity[] {
  const bad = (why: string) => polkuError('POLKU_ERR_ENV_INVALID', `POLKU_REGISTRY_IDENTITIES_FILE=${JSON.stringify(path)}: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(read(path));
  } catch (err) {
    throw bad((err as Error).message);
  }
  const list = (doc as { identities?: unknown } | null)?.identities;
  if (!Array.isArray(list) || list.length === 0) throw bad('expected {"identities": [ ... ]} with at least one entry');
  const names = new Set<string>();
  return list.map((raw: unknown, i) => {
    const e = (raw ?? {}) as Record<string, unknown>;
    const at = `identities[${i}]`;
    if (typeof e['name'] !== 'string' || !/^[A-Za-z0-9._-]{1,63}$/.test(e['name']))
      throw bad(`${at}.name must be 1-63 letters, digits, . _ -`);
    if (names.has(e['name'])) throw bad(`${at}.name "${e['name']}" repeats`);
    names.add(e['name']);
    const token = e['token'];
    const m = typeof token === 'string' ? /^sha256:([0-9a-fA-F]{64})$/.exec(token) : null;
    if (token !== undefined && !m) throw bad(`${at}.token must be "sha256:<64 hex digits>" (the digest of the token, never the token)`);
    const certificate = e['certificate'];
    const certificateNames = typeof certificate === 'string' ? [certificate] : certificate;
    if (
      certificateNames !== undefined &&
      (!Array.isArray(certificateNames) ||
        certificateNames.length === 0 ||
        !certificateNames.every((n): n is string => typeof n === 'string' && n.length > 0 && n.length <= 253))
    )
      throw bad(`${at}.certificate must be a client certificate's name (subject CN or DNS subjectAltName), or a list of them`);
    if (!m && certificateNames === undefined) throw bad(`${at} needs a token, a certificate, or both`);
    const patterns = (key: 'plugins' | 'sources'): string[] => {
      const v = e[key] ?? [];
      if (!Array.isArray(v) || !v.every((p): p is string => typeof p === 'string' && PATTERN.test(p)))
        throw bad(`${at}.${key} must be a list of names, "prefix-*" or "*"`);
      return v;
    };
    return {
      name: e['name'],
      tokenDigest: m ? Buffer.from(m[1]!, 'hex') : undefined,
      certificateNames: certificateNames as string[] | undefined,
      plugins: patterns('plugins'),
      sources: patterns('sources'),
    };
  });
}

/**
 * The token resolver. With no identity configured the registry is open: every caller is
 * {@link ANONYMOUS}. Otherwise the call must carry `authorization: Bearer <token>` whose digest
 * matches an identity's; every digest is compared, in constant time, whichever matches.
 */
export function tokenResolver(identities: readonly ConfiguredIdentity[]): IdentityResolver {
  if (identities.length === 0) return () => ANONYMOUS;
  const resolved = identities.map((i): RegistryIdentity =>
    Object.freeze({ name: i.name, plugins: i.plugins, sources: i.sources, authenticated: true }),
  );
  return ({ metadata }) => {
    const header = metadata.get('authorization')[0];
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!m)
      throw new RegistryError('POLKU_ERR_REGISTRY_UNAUTHENTICATED', 'a registration token is required: send authorization: Bearer <token>');
    const presented = tokenDigest(m[1]!);
    let found = -1;
    for (let i = 0; i < identities.length; i++) {
      const digest = identities[i]!.tokenDigest;
      if (digest !== undefined && timingSafeEqual(presented, digest) && found < 0) found = i;
    }
    if (found < 0) throw new RegistryError('POLKU_ERR_REGISTRY_UNAUTHENTICATED', 'the registration token is wrong');
    return resolved[found]!;
  };
}

/**
 * The certificate resolver, in front of `fallback`: a caller whose client certificate (verified
 * against POLKU_TLS_CLIENT_CA_FILE by the TLS handshake) carries a name an identity lists is that
 * identity; any other caller is left to `fallback` (the token resolver).
 */
export function certificateResolver(identities: readonly ConfiguredIdentity[], fallback: IdentityResolver): IdentityResolver {
  const byName = new Map<string, RegistryIdentity>();
  for (const i of identities) {
    const resolved: RegistryIdentity = Object.freeze({ name: i.name, plugins: i.plugins, sources: i.sources, authenticated: true });
    for (const n of i.certificateNames ?? []) if (!byName.has(n)) byName.set(n, resolved);
  }
  if (byName.size === 0) return fallback;
  return (caller) => {
    for (const n of certificateNamesOf(caller.authContext)) {
      const identity = byName.get(n);
      if (identity) return identity;
    }
    return fallback(caller);
  };
}

/** The subject CN and DNS subjectAltNames of the peer certificate in a grpc-js auth context. */
export function certificateNamesOf(authContext: unknown): string[] {
  const cert = (authContext as { sslPeerCertificate?: { subject?: { CN?: unknown }; subjectaltname?: unknown } } | undefined)
    ?.sslPeerCertificate;
  if (!cert) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  if (typeof cert.subjectaltname === 'string') {
    for (const part of cert.subjectaltname.split(', ')) if (part.startsWith('DNS:')) names.push(part.slice(4));
  }
  return names;
}

/** POLKU_REGISTRY_TOKEN as an identity: every plugin name and source, but protected sources only when listed (never). */
export function tokenIdentity(token: string): ConfiguredIdentity {
  return { name: TOKEN_IDENTITY, tokenDigest: tokenDigest(token), plugins: ['*'], sources: ['*'] };
}

/** The peer's address without its port (`[::1]:5000` → `::1`), the key of its rate bucket. */
export function peerHost(peer: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(peer) ?? /^([^:]+):\d+$/.exec(peer);
  return m ? m[1]! : peer;
}
