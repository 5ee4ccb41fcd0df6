import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { polkuError } from '../errors.js';
import type { GatewayServiceHandler } from './gateway-service.js';
import { transportMessageLimit } from './message-codec.js';

/** The proto files shipped with the package (proto/ beside src/ and dist/). */
export const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));

/** Services reported by grpc.health.v1 ('' is the whole server, as Kubernetes probes ask). */
const HEALTH_SERVICES = ['', 'polku.v1.Gateway'];

export interface GrpcServerOptions {
  gateway: GatewayServiceHandler;
  maxMessageBytes: number;
  /** polku.v1.PluginRegistry (plugins register themselves), when registration is on. */
  pluginRegistry?: { definition(): ServiceDefinition; implementation(): UntypedServiceImplementation } | null;
  /** polku.v1.Admin (dead letters and replay; loopback callers only). */
  admin?: { definition(): ServiceDefinition; implementation(): UntypedServiceImplementation } | null;
}

/**
 * The gRPC listener: polku.v1.Gateway, polku.v1.PluginRegistry (when on), polku.v1.Admin,
 * grpc.health.v1.Health and server reflection, so grpcurl and Kubernetes gRPC probes work without proto files.
 */
export class GrpcServer {
  private readonly server: Server;
  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, 'NOT_SERVING' as const])));

  constructor(o: GrpcServerOptions) {
    const limit = transportMessageLimit(o.maxMessageBytes);
    this.server = new Server({
      'grpc.max_receive_message_length': limit,
      // Agents hold streams for hours; keepalive pings find dead peers behind NAT or a crashed node.
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.keepalive_permit_without_calls': 1,
    });
    this.server.addService(o.gateway.definition(), o.gateway.implementation());
    if (o.pluginRegistry) this.server.addService(o.pluginRegistry.definition(), o.pluginRegistry.implementation());
    if (o.admin) this.server.addService(o.admin.definition(), o.admin.implementation());
    this.health.addToServer(this.server);
    const protos = ['gateway', 'plugin', 'admin'].map((p) => `${PROTO_DIR}/polku/v1/${p}.proto`);
    const reflected = loadSync([...protos, healthProtoPath], {
      includeDirs: [PROTO_DIR, dirname(healthProtoPath)],
      longs: String,
      keepCase: true,
    });
    new ReflectionService(reflected).addToServer(this.server);
  }

  /** Binds `address` (port 0 picks a free one) and returns the bound port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => {
        if (err) reject(polkuError('POLKU_ERR_LISTEN', `gRPC server could not listen on ${address}: ${err.message}`, err));
        else resolve(port);
      });
    });
  }

  setServing(serving: boolean): void {
    for (const s of HEALTH_SERVICES) this.health.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING');
  }

  /** Stops taking calls; calls still open after `graceMs` are cancelled. */
  shutdown(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
