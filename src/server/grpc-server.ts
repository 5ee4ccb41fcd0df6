import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { parseAddress } from '../config/env-parsers.js';
import { polkuError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { GrpcServiceBinding } from '../receive/receiver.js';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './connection-guard.js';
import { HealthService } from './health-service.js';
import { addReflection, reflectedServices } from './reflection.js';

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
  /**
   * The port's credentials, handed to grpc-js as they are (default: insecure). TLS is one
   * argument here: the listener in front of grpc-js only counts and times TCP connections.
   */
  credentials?: ServerCredentials;
  /** The connection budget (POLKU_MAX_CONNECTIONS...); defaults sized for the chart. */
  connections?: ConnectionLimits;
  /** Where the connection metrics go, and its logger: without both, grpc-js listens on its own. */
  registry?: Registry;
  logger?: Logger;
}

/**
 * The gRPC listener: the services it is given, plus grpc.health.v1.Health and server reflection,
 * so grpcurl and Kubernetes gRPC probes work without proto files.
 */
export class GrpcServer {
  private readonly server: Server;
  private readonly health: HealthService;
  /** Names grpc.health.v1 reports: '' is the whole server, as Kubernetes probes ask. */
  private readonly healthNames: readonly string[];
  private readonly credentials: ServerCredentials;
  private readonly limits: ConnectionLimits;
  private guard: ConnectionGuard | null = null;
  private injector: ReturnType<Server['createConnectionInjector']> | null = null;

  constructor(private readonly o: GrpcServerOptions) {
    const limit = transportMessageLimit(o.maxMessageBytes);
    this.credentials = o.credentials ?? ServerCredentials.createInsecure();
    this.limits = o.connections ?? DEFAULT_CONNECTION_LIMITS;
    this.server = new Server({
      'grpc.max_receive_message_length': limit,
      // Agents hold streams for hours; keepalive pings find dead peers behind NAT or a crashed node.
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.keepalive_permit_without_calls': 1,
      // Calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
      'grpc.max_concurrent_streams': this.limits.maxStreamsPerConnection,
      // A connection with no call open for the idle timeout gets a GOAWAY (agents hold a stream).
      ...(this.limits.idleTimeoutMs > 0 ? { 'grpc.max_connection_idle_ms': this.limits.idleTimeoutMs } : {}),
    });
    for (const s of o.services) this.server.addService(s.definition, s.implementation);

    this.healthNames = ['', ...new Set(o.services.flatMap((s) => (s.healthServiceName === undefined ? [] : [s.healthServiceName])))];
    this.health = new HealthService(Object.fromEntries(this.healthNames.map((s) => [s, 'NOT_SERVING' as const])));
    this.server.addService(this.health.definition, this.health.implementation());

    const reflected = reflectedServices(o.services);
    for (const missing of reflected.missing) {
      o.logger?.warn(
        { service: missing },
        `server reflection: no descriptor for ${missing} (its proto is not in POLKU's proto/ and its GrpcServiceBinding has no descriptorSet); it is served but not reflected`,
      );
    }
    addReflection(this.server, reflected.index, reflected.listed);
  }

  /**
   * Binds `address` (`host:port`; port 0 picks a free one) and returns the bound port. With a
   * registry and logger, the {@link ConnectionGuard} owns the listener and injects each accepted
   * connection into grpc-js; otherwise grpc-js binds it itself. `credentials` default to the
   * constructor's (plaintext unless given); `serverCredentials()` in src/security/tls.ts builds
   * TLS ones that follow rotated files.
   */
  async listen(address: string, credentials: ServerCredentials = this.credentials): Promise<number> {
    const parsed = parseAddress(address);
    if (!this.o.registry || !this.o.logger || !parsed) return this.bind(address, credentials);
    const injector = this.server.createConnectionInjector(credentials);
    const guard = new ConnectionGuard({
      limits: this.limits,
      registry: this.o.registry,
      logger: this.o.logger,
      onConnection: (socket) => injector.injectConnection(socket),
    });
    const port = await guard.listen(parsed.host, parsed.port);
    this.injector = injector;
    this.guard = guard;
    return port;
  }

  private bind(address: string, credentials: ServerCredentials): Promise<number> {
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
  async shutdown(graceMs: number): Promise<void> {
    const stopped = this.guard?.stopAccepting();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.injector?.destroy();
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    // Connections that never became HTTP/2 sessions are not grpc-js's to close.
    this.guard?.destroyAll();
    await stopped;
  }
}
