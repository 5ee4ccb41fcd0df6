import { createHash, timingSafeEqual } from 'node:crypto';
import { polkuError, type PolkuError } from '../errors.js';
import { isLoopbackAddress } from './loopback.js';

/**
 * Who may use the admin surfaces (HTTP `/admin/*`, `polku.v1.Admin`): callers on this host's
 * loopback, and, when `POLKU_ADMIN_TOKEN` is set, only those that also send
 * `authorization: Bearer <token>`.
 *
 * Loopback alone is not enough where a service-mesh sidecar forwards outside traffic to the
 * application from 127.0.0.1 or 127.0.0.6 (Istio, Linkerd): every caller then looks local.
 * A token closes that gap; docs/security.md says what else to configure.
 */
export class AdminAccess {
  private readonly tokenDigest: Buffer | undefined;

  constructor(token: string | undefined) {
    this.tokenDigest = token === undefined || token === '' ? undefined : digest(token);
  }

  /** Whether a token is required on top of loopback. */
  get tokenRequired(): boolean {
    return this.tokenDigest !== undefined;
  }

  /** Why a caller is refused, or undefined when it may go on. */
  check(remoteAddress: string | undefined, authorization: string | undefined, surface: string): PolkuError | undefined {
    if (!isLoopbackAddress(remoteAddress))
      return polkuError('POLKU_ERR_ADMIN_NOT_LOOPBACK', `${surface} answers only callers on the same host (loopback)`);
    if (this.tokenDigest === undefined) return undefined;
    const m = /^Bearer (.+)$/.exec(authorization ?? '');
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    if (m && timingSafeEqual(digest(m[1]!), this.tokenDigest)) return undefined;
    return polkuError('POLKU_ERR_ADMIN_UNAUTHENTICATED', `${surface} needs authorization: Bearer <POLKU_ADMIN_TOKEN>`);
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
