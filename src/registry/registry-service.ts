import {
  status,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
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

export const DEFAULT_REGISTER_RATE = 10;
export const DEFAULT_REGISTER_BURST = 20;

export interface RegistryServiceOptions {
  table: PluginTable;
  /** Addresses the gateway may dial; checked before anything is dialled. */
  allowlist: AddressAllowlist;
  /** When set, every call must carry `authorization: Bearer <token>`. */
  token?: string | undefined;
  /** Register calls per second, sustained. Default 10. */
  registerRatePerSecond?: number;
  /** Register calls at once after a quiet spell. Default 20. */
  registerBurst?: number;
  clock?: Clock;
  logger: Logger;
}

/**
 * `polku.v1.PluginRegistry` on the gateway's port. Register answers, in this order:
 * UNAUTHENTICATED (token missing or wrong), RESOURCE_EXHAUSTED (registering too fast),
 * INVALID_ARGUMENT (bad PluginInfo or address), PERMISSION_DENIED (address outside the
 * allowlist), ALREADY_EXISTS (a static component's or another plugin's name or source),
 * RESOURCE_EXHAUSTED (table full): all before anything is dialled. Then UNAVAILABLE (the plugin
 * did not answer Info/Health in time) or FAILED_PRECONDITION (it answered as something else, or
 * unhealthy). Accepted: `plugin_id`, and `heartbeat_interval_ms=<n>` in `message`.
 */
export class RegistryService {
  private readonly bucket: TokenBucket;
  private readonly tokenDigest: Buffer | null;
  private readonly log: Logger;

  constructor(private readonly o: RegistryServiceOptions) {
    this.bucket = new TokenBucket(
      o.registerRatePerSecond ?? DEFAULT_REGISTER_RATE,
      o.registerBurst ?? DEFAULT_REGISTER_BURST,
      o.clock ?? systemClock,
    );
    this.tokenDigest = o.token ? digest(o.token) : null;
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
    this.authorize(call.metadata);
    const turn = this.bucket.take();
    if (!turn.ok) throw RegistryError.of('POLKU_ERR_REGISTRY_RATE_LIMITED', turn.retryAfterMs);
    const spec = specFromRegistration(call.request.info, call.request.address);
    const target = await this.o.allowlist.check(targetOf(spec.name, spec.address), this.o.table.probeTimeoutMs);
    const { entry } = await this.o.table.admit({
      origin: 'registered',
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
    });
    return { accepted: true, message: `heartbeat_interval_ms=${this.o.table.heartbeatIntervalMs}`, pluginId: entry.id };
  }

  private async heartbeat(call: ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>): Promise<HeartbeatResponse> {
    this.authorize(call.metadata);
    // Unknown id (lease ran out, gateway restarted): not acknowledged, and the plugin registers again.
    return { acknowledged: this.o.table.heartbeat(call.request.pluginId) };
  }

  private async unregister(call: ServerUnaryCall<UnregisterRequest, Empty>): Promise<Empty> {
    this.authorize(call.metadata);
    const entry = this.o.table.get(call.request.pluginId);
    if (!entry || entry.origin !== 'registered') throw RegistryError.of('POLKU_ERR_REGISTRY_NOT_FOUND');
    this.o.table.remove(entry, 'unregistered');
    return {};
  }

  /** Checks `authorization: Bearer <token>` when a token is configured (constant time). */
  private authorize(metadata: Metadata): void {
    if (!this.tokenDigest) return;
    const header = metadata.get('authorization')[0];
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!m)
      throw new RegistryError('POLKU_ERR_REGISTRY_UNAUTHENTICATED', 'a registration token is required: send authorization: Bearer <token>');
    if (!timingSafeEqual(digest(m[1]!), this.tokenDigest))
      throw new RegistryError('POLKU_ERR_REGISTRY_UNAUTHENTICATED', 'the registration token is wrong');
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

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
