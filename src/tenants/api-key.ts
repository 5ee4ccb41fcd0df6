import { createHash, timingSafeEqual } from 'node:crypto';

/** How a key is written in a tenant table: `sha256:` and the 64 hex digits of its digest. */
export const KEY_DIGEST_PREFIX = 'sha256:';
const DIGEST_HEX = /^[0-9a-f]{64}$/;

/** A configured key: its SHA-256 digest, and whether it was written in plain text. */
export interface KeyDigest {
  readonly digest: Buffer;
  /** The digest in lower-case hex: the lookup key of the tenant table. */
  readonly hex: string;
  /** True when the table held the key itself (accepted, with a warning at load). */
  readonly plain: boolean;
}

/** The SHA-256 digest of a key as presented. */
export function digestOfKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** What `polku tenants hash-key` prints: the line to put in a tenant's `apiKeys`. */
export function hashKey(key: string): string {
  return `${KEY_DIGEST_PREFIX}${digestOfKey(key).toString('hex')}`;
}

/** A table entry as a digest, or why it is not a usable key (a message naming no secret). */
export function parseKeySpec(spec: string): KeyDigest | string {
  if (spec.startsWith(KEY_DIGEST_PREFIX)) {
    const hex = spec.slice(KEY_DIGEST_PREFIX.length).toLowerCase();
    if (!DIGEST_HEX.test(hex))
      return `must be "sha256:" and 64 hex digits (polku tenants hash-key prints one); got ${hex.length} characters after "sha256:"`;
    return { digest: Buffer.from(hex, 'hex'), hex, plain: false };
  }
  if (spec.trim() !== spec) return 'has leading or trailing spaces';
  const digest = digestOfKey(spec);
  return { digest, hex: digest.toString('hex'), plain: true };
}

/**
 * Whether two digests are equal, in time independent of where they differ. The presented key is
 * hashed before anything looks at it, so a lookup by digest reveals nothing of the secret; this
 * compare is the final check on the entry found.
 */
export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
