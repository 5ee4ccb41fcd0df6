import { status, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { systemClock, type Clock } from '../clock.js';
import type { Empty } from '../gen/google/protobuf/empty.js';
import {
  PluginRegistryService,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type RegisterRequest,
  type RegisterResponse,
  type UnregisterRequest,
} from '../gen/polku/v1/plugin.js';
import type { GrpcStatusName } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { AddressAllowlist } from './allowlist.js';
import { RegistryError, specFromRegistration, targetOf } from './plugin-spec.js';
import type { PluginTable } from './plugin-table.js';
import type { RegistryMethod } from './registry-metrics.js';
import { TokenBucket } from './token-bucket.js';
import { LruMap } from '../middleware/lru-map.js';
import {
  ANONYMOUS,
  peerHost,
  tokenResolver,
  type IdentityResolver,
  type RegistryCaller,
  type RegistryIdentity,
} from './registry-identity.js';

export const DEFAULT_REGISTER_RATE = 10;
export const DEFAULT_REGISTER_BURST = 20;
/** Peers with a Register bucket of their own; the least recently seen is forgotten first. */
export const MAX_RATE_PEERS = 4_096;
/**
 * The one answer to a Register whose dial failed, whatever the dial found (nothing listening, no
 * answer, not a plugin, another name or type, unhealthy): the details go to the gateway's log
 * only, so Register cannot be used to probe what answers where.
 */
export const DIAL_REFUSAL = 'plugin did not answer as a polku plugin (Info and Health); the gateway log has the details';
/** The metadata key a plugin re-registering its live name sends its previous plugin_id under. */
export const PLUGIN_ID_METADATA = 'polku-plugin-id';

export interface RegistryServiceOptions {
  table: PluginTable;
  /** Addresses the gateway may dial; checked before anything is dialled. */
  allowlist: AddressAllowlist;
  /**
   * Who a call is (the token resolver by default: POLKU_REGISTRY_TOKEN and the identities file).
   * Without any identity the registry is open and every caller is anonymous.
   */
  resolveIdentity?: IdentityResolver;
  /** Register calls per second, sustained, for each identity and each unauthenticated peer. Default 10. */
  registerRatePerSecond?: number;
  /** Register calls at once after a quiet spell, for each identity and each peer. Default 20. */
  registerBurst?: number;
  clock?: Clock;
  logger: Logger;
}

/**
 * `polku.v1.PluginRegistry` on the gateway's port. Register answers, in this order:
 * UNAUTHENTICATED (token missing or wrong), RESOURCE_EXHAUSTED (too fast for this identity, or for
 * this peer when unauthenticated), INVALID_ARGUMENT (bad PluginInfo or address), PERMISSION_DENIED
 * (a name, route name or source outside the caller's allowance, or a source agents send on),
 * ALREADY_EXISTS (a static component's name or source, another plugin's, or a live name the
 * caller does not own), RESOURCE_EXHAUSTED (table full), PERMISSION_DENIED (address outside the
 * allowlist): all before anything is dialled. Then UNAVAILABLE with one text whatever the dial
 * found. Accepted: `plugin_id` (128 random bits, the owner's secret), and
 * `heartbeat_interval_ms=<n>` in `message`.
 */
export class RegistryService {
  /** A bucket per authenticated identity (a handful, from the configuration) and per other peer (bounded). */
  private readonly identityBuckets = new Map<string, TokenBucket>();
  private readonly peerBuckets = new LruMap<string, TokenBucket>(MAX_RATE_PEERS);
  private readonly resolve: IdentityResolver;
  private readonly log: Logger;

  constructor(private readonly o: RegistryServiceOptions) {
    this.resolve = o.resolveIdentity ?? tokenResolver([]);
    this.log = o.logger.child({ component: 'plugin-registry' });
  }

  definition(): ServiceDefinition {
    return PluginRegistryService as unknown as ServiceDefinition;
  }

  implementation(): UntypedServiceImplementation {
    return {
      register: this.unary('Register', (call: ServerUnaryCall<RegisterRequest, RegisterResponse>) => this.register(call)),
      heartbeat: this.unary('Heartbeat', (call: ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>) => this.heartbeat(call)),
      unregister: this.unary('Unregister', (call: ServerUnaryCall<UnregisterRequest, Empty>) => this.unregister(call)),
    };
  }

  private async register(call: ServerUnaryCall<RegisterRequest, RegisterResponse>): Promise<RegisterResponse> {
    const caller = callerOf(call);
    let identity: RegistryIdentity;
    try {
      identity = this.resolve(caller);
    } catch (err) {
      this.take(this.peerBucket(caller.peer)); // failed attempts spend their peer's turns too
      throw err;
    }
    this.take(identity.authenticated ? this.identityBucket(identity.name) : this.peerBucket(caller.peer));
    const spec = specFromRegistration(call.request.info, call.request.address);
    const proof = call.metadata.get(PLUGIN_ID_METADATA)[0];
    const request = { origin: 'registered' as const, identity, ...(typeof proof === 'string' ? { proof } : {}) };
    // Decided before anything is dialled: allowance, names, owners, table size.
    this.o.table.admissible(request, spec);
    const target = await this.dialled(spec.name, () =>
      this.o.allowlist.check(targetOf(spec.name, spec.address), this.o.table.probeTimeoutMs),
    );
    const { entry } = await this.dialled(spec.name, () =>
      this.o.table.admit({
        ...request,
        kind: spec.kind,
        target,
        known: spec,
        complete: (info) => {
          if (info.name !== spec.name) {
            throw new RegistryError(
              'POLKU_ERR_PLUGIN_MISMATCH',
              `the plugin at ${spec.address} calls itself "${info.name}", not "${spec.name}"`,
            );
          }
          return spec;
        },
      }),
    );
    return { accepted: true, message: `heartbeat_interval_ms=${this.o.table.heartbeatIntervalMs}`, pluginId: entry.id };
  }

  private async heartbeat(call: ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>): Promise<HeartbeatResponse> {
    this.resolve(callerOf(call));
    // Unknown id (lease ran out, gateway restarted): not acknowledged, and the plugin registers again.
    return { acknowledged: this.o.table.heartbeat(call.request.pluginId) };
  }

  /**
   * Idempotent, as upstream POLKU's: the id is the proof, and an id the table does not hold is a
   * success too, whether it is gone already (a second Unregister) or never was (a 128-bit secret:
   * telling the two apart would only help someone guessing ids). One refusal: a live plugin that an
   * authenticated identity registered is not unregistered by another identity, even with its id
   * (PERMISSION_DENIED; it stays in the table).
   */
  private async unregister(call: ServerUnaryCall<UnregisterRequest, Empty>): Promise<Empty> {
    const identity = this.resolve(callerOf(call));
    const entry = this.o.table.get(call.request.pluginId);
    if (!entry || entry.origin !== 'registered') return {};
    if (identity.authenticated && entry.owner !== '' && entry.owner !== ANONYMOUS.name && entry.owner !== identity.name) {
      throw new RegistryError(
        'POLKU_ERR_REGISTRY_CLAIM_DENIED',
        `plugin "${entry.spec.name}" was registered by another identity; only its owner unregisters it (identity "${identity.name}")`,
      );
    }
    this.o.table.remove(entry, 'unregistered');
    return {};
  }

  /**
   * Runs a step that looks at the address (resolution, Info, Health). Whatever it found, the caller
   * hears {@link DIAL_REFUSAL} (UNAVAILABLE) or, for an address outside the allowlist, that it is
   * not allowed; the gateway's log gets the details.
   */
  private async dialled<T>(plugin: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      if (err.code === 'POLKU_ERR_PLUGIN_UNREACHABLE' || err.code === 'POLKU_ERR_PLUGIN_MISMATCH') {
        this.log.info({ plugin: { name: plugin }, reason: err.message }, 'registration refused: the plugin did not answer as one');
        throw new RegistryError('POLKU_ERR_PLUGIN_UNREACHABLE', DIAL_REFUSAL);
      }
      if (err.code === 'POLKU_ERR_REGISTRY_ADDRESS_DENIED') {
        this.log.info({ plugin: { name: plugin }, reason: err.message }, 'registration refused: address not allowed');
        throw new RegistryError('POLKU_ERR_REGISTRY_ADDRESS_DENIED', 'the address is not allowed (POLKU_REGISTRY_ALLOWLIST)');
      }
      throw err;
    }
  }

  private take(bucket: TokenBucket): void {
    const turn = bucket.take();
    if (!turn.ok) throw RegistryError.of('POLKU_ERR_REGISTRY_RATE_LIMITED', turn.retryAfterMs);
  }

  private identityBucket(name: string): TokenBucket {
    let bucket = this.identityBuckets.get(name);
    if (!bucket) this.identityBuckets.set(name, (bucket = this.newBucket()));
    return bucket;
  }

  private peerBucket(peer: string): TokenBucket {
    const host = peerHost(peer);
    let bucket = this.peerBuckets.get(host);
    if (!bucket) this.peerBuckets.set(host, (bucket = this.newBucket()));
    return bucket;
  }

  private newBucket(): TokenBucket {
    return new TokenBucket(
      this.o.registerRatePerSecond ?? DEFAULT_REGISTER_RATE,
      this.o.registerBurst ?? DEFAULT_REGISTER_BURST,
      this.o.clock ?? systemClock,
    );
  }

  private unary<Req, Res>(method: RegistryMethod, handle: (call: ServerUnaryCall<Req, Res>) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      handle(call).then(
        (res) => {
          this.o.table.metrics.requests.inc({ method, code: 'OK' });
          callback(null, res);
        },
        (err: unknown) => {
          const known = err instanceof RegistryError;
          const name: GrpcStatusName = known ? err.grpcStatus : 'INTERNAL';
          if (!known) this.log.error({ err, method }, 'registry call failed');
          else this.log.debug({ method, code: name, reason: err.message, peer: call.getPeer() }, 'registry call refused');
          this.o.table.metrics.requests.inc({ method, code: name });
          callback({
            code: status[name],
            details: known ? err.message : 'internal error',
            name,
            message: known ? err.message : 'internal error',
          });
        },
      );
    };
  }
}

function callerOf(call: ServerUnaryCall<unknown, unknown>): RegistryCaller {
  return { metadata: call.metadata, peer: call.getPeer(), authContext: call.getAuthContext() };
}
