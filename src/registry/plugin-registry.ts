import { AddressAllowlist, DEFAULT_ALLOWLIST, type Resolver } from './allowlist.js';
import { PluginTable } from './plugin-table.js';
import type { PluginTableOptions } from './table-options.js';
import type { PluginRow } from './plugin-view.js';
import { RegistryService } from './registry-service.js';
import { certificateResolver, tokenIdentity, tokenResolver, type ConfiguredIdentity, type IdentityResolver } from './registry-identity.js';

/**
 * Something else that feeds the table (Kubernetes discovery). The gateway starts it after the
 * table, stops it before draining, and is not ready until it says so.
 */
export interface PluginSource {
  /** Starts in the background. */
  start(): void;
  stop(): Promise<void>;
  /** Why the gateway should not take traffic yet (the first sync is not done), or null. */
  readonly notReady: string | null;
  /** Plugins it knows of that are not in the table yet (not answering, refused), as rows. */
  pendingRows(): PluginRow[];
}

export interface PluginRegistryOptions extends PluginTableOptions {
  /** Serve `polku.v1.PluginRegistry` on the gateway's port (POLKU_REGISTRY). Default true. */
  serve?: boolean;
  /** Registration token (POLKU_REGISTRY_TOKEN): one identity allowed every name and unprotected source. */
  token?: string | undefined;
  /** Identities with their tokens' digests and allowances (POLKU_REGISTRY_IDENTITIES_FILE). */
  identities?: readonly ConfiguredIdentity[];
  /**
   * Who a call is; default: a verified client certificate naming an identity, else a token
   * (`token` or an identity's). Replace it for identities of another kind.
   */
  resolveIdentity?: IdentityResolver;
  /** Allowed plugin addresses (POLKU_REGISTRY_ALLOWLIST). Default {@link DEFAULT_ALLOWLIST}. */
  allowlist?: readonly string[];
  /** Host name resolution for the allowlist (tests). Default the system's. */
  resolver?: Resolver;
  /** Register calls per second, sustained (POLKU_REGISTRY_REGISTER_RATE). Default 10. */
  registerRatePerSecond?: number;
  /** Register calls at once (POLKU_REGISTRY_REGISTER_BURST). Default 20. */
  registerBurst?: number;
}

/**
 * The live plugin table with what feeds it: the PluginRegistry gRPC service (registration with
 * heartbeats) and any {@link PluginSource} (Kubernetes discovery). The Gateway starts it after the
 * hub, serves `service` on its gRPC port, asks `readiness()` for /readyz and `rows()` for
 * `GET /admin/plugins`.
 */
export class PluginRegistry {
  readonly table: PluginTable;
  readonly allowlist: AddressAllowlist;
  /** The gRPC service, or null when registration is off. */
  readonly service: RegistryService | null;
  private readonly sources: PluginSource[] = [];
  private stopRun: Promise<void> | null = null;

  constructor(o: PluginRegistryOptions) {
    this.table = new PluginTable(o);
    this.allowlist = new AddressAllowlist(o.allowlist ?? DEFAULT_ALLOWLIST, o.resolver);
    this.service =
      o.serve === false
        ? null
        : new RegistryService({
            table: this.table,
            allowlist: this.allowlist,
            resolveIdentity: o.resolveIdentity ?? defaultResolver(o.token, o.identities ?? []),
            ...(o.registerRatePerSecond === undefined ? {} : { registerRatePerSecond: o.registerRatePerSecond }),
            ...(o.registerBurst === undefined ? {} : { registerBurst: o.registerBurst }),
            ...(o.clock ? { clock: o.clock } : {}),
            logger: o.logger,
          });
  }

  /** Adds a source; call before `start`. */
  addSource(source: PluginSource): void {
    this.sources.push(source);
  }

  /** Starts the table (after the hub started: static names are read now), then the sources. */
  start(): void {
    this.table.start();
    for (const s of this.sources) s.start();
  }

  /** Stops the sources, then leases and Health checks. Runs once. */
  stop(): Promise<void> {
    this.stopRun ??= Promise.all(this.sources.map((s) => s.stop())).then(() => this.table.stop());
    return this.stopRun;
  }

  /** Ready once every source finished its first sync. */
  readiness(): { ready: boolean; reason: string } {
    const waiting = this.sources.map((s) => s.notReady).filter((r): r is string => r !== null);
    return waiting.length === 0 ? { ready: true, reason: 'ready' } : { ready: false, reason: `not ready: ${waiting.join('; ')}` };
  }

  /** The table as rows: static components, dynamic plugins, then plugins waiting to be admitted. */
  async rows(): Promise<PluginRow[]> {
    return [...(await this.table.rows()), ...this.sources.flatMap((s) => s.pendingRows())];
  }
}

/** A client certificate naming an identity first, then a token (POLKU_REGISTRY_TOKEN or an identity's). */
function defaultResolver(token: string | undefined, identities: readonly ConfiguredIdentity[]): IdentityResolver {
  const all = [...(token ? [tokenIdentity(token)] : []), ...identities];
  return certificateResolver(all, tokenResolver(all));
}
