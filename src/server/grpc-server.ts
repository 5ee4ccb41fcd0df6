import { Server, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { dirname } from 'node:path';
import { polkuError } from '../errors.js';
import type { GrpcServiceBinding } from '../receive/receiver.js';

export { PROTO_DIR } from '../proto-dir.js';

const MiB = 1024 * 1024;

/**
 * The transport's own ceiling. Messages up to it reach the receivers' deserializers, which refuse
 * those over POLKU_MAX_MESSAGE_BYTES with an Ack and keep the stream open; beyond it grpc-js itself
 * answers RESOURCE_EXHAUSTED and ends the call (there is no reading past a message that large).
 */
export function transportMessageLimit(maxMessageBytes: number): number {
  return Math.max(maxMessageBytes * 4, 16 * MiB);
}

export interface GrpcServerOptions {
  /**
   * Every service on the port: the receivers' and the control plane's (PluginRegistry, Admin).
   * Reflection and grpc.health.v1 are built from the same list, so a service added here is
   * reflected and (with a `healthServiceName`) reported without anything else changing.
   */
  services: readonly GrpcServiceBinding[];
  maxMessageBytes: number;
}

/**
 * The gRPC listener: the services it is given, plus grpc.health.v1.Health and server reflection,
 * so grpcurl and Kubernetes gRPC probes work without proto files.
 */
export class GrpcServer {
  private readonly server: Server;
  private readonly health: HealthImplementation;
  /** Names grpc.health.v1 reports: '' is the whole server, as Kubernetes probes ask. */
  private readonly healthNames: readonly string[];

  constructor(o: GrpcServerOptions) {
    const limit = transportMessageLimit(o.maxMessageBytes);
    this.server = new Server({
      'grpc.max_receive_message_length': limit,
      // Agents hold streams for hours; keepalive pings find dead peers behind NAT or a crashed node.
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.keepalive_permit_without_calls': 1,
    });
    for (const s of o.services) this.server.addService(s.definition, s.implementation);

    this.healthNames = ['', ...new Set(o.services.flatMap((s) => (s.healthServiceName === undefined ? [] : [s.healthServiceName])))];
    this.health = new HealthImplementation(Object.fromEntries(this.healthNames.map((s) => [s, 'NOT_SERVING' as const])));
    this.health.addToServer(this.server);

    const protoFiles = new Set(o.services.flatMap((s) => s.protoFiles));
    const includeDirs = new Set(o.services.flatMap((s) => s.protoIncludeDirs ?? []));
    const reflected = loadSync([...protoFiles, healthProtoPath], {
      includeDirs: [...includeDirs, dirname(healthProtoPath)],
      longs: String,
      keepCase: true,
    });
    new ReflectionService(reflected).addToServer(this.server);
  }

  /**
   * Binds `address` (port 0 picks a free one) and returns the bound port. `credentials` default to
   * plaintext; `serverCredentials()` in src/security/tls.ts builds TLS ones that follow rotated files.
   */
  listen(address: string, credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, port) => {
        if (err) reject(polkuError('POLKU_ERR_LISTEN', `gRPC server could not listen on ${address}: ${err.message}`, err));
        else resolve(port);
      });
    });
  }

  setServing(serving: boolean): void {
    for (const s of this.healthNames) this.health.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING');
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
