import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../clock.js';
import { formatAddress, type ListenAddress } from '../config/env.js';
import type { DrainReport, Hub } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import { polkuProto, PROTO_DIR } from '../proto-dir.js';
import type { PluginRegistry } from '../registry/plugin-registry.js';
import { ListenerTls, serverCredentials, type ListenerTlsSettings } from '../security/tls.js';
import { builtInReceivers } from '../receive/built-in.js';
import type { GrpcServiceBinding, Receiver, ReceiverContext } from '../receive/receiver.js';
import type { HttpSettings } from '../receive/http/http-settings.js';
import type { OtlpSettings } from '../receive/otlp/otlp-settings.js';
import { polkuError } from '../errors.js';
import { AdminAccess } from './admin-access.js';
import { AdminServiceHandler } from './admin-service.js';
import type { ConnectionLimits } from './connection-guard.js';
import { GrpcServer } from './grpc-server.js';
import { HttpServer } from './http-server.js';
import { pipelineView } from './pipeline-view.js';
import { topSnapshot } from './top-snapshot.js';

export interface GatewayOptions {
  hub: Hub;
  /** The registry the hub's metrics live in; /metrics serves it. */
  registry: Registry;
  logger: Logger;
  grpcAddr: ListenAddress;
  metricsAddr: ListenAddress;
  shutdownTimeoutMs: number;
  clock?: Clock;
  /**
   * The live plugin table: started after the hub, its PluginRegistry service served on the gRPC
   * port, its rows at `GET /admin/plugins`; /readyz waits for its sources' first sync.
   */
  plugins?: PluginRegistry;
  /**
   * Ways in beyond the built-in ones (src/receive/built-in.ts): an embedder's own protocol, or a
   * test's. Their gRPC services share the gRPC port and show in reflection and health.
   */
  receivers?: readonly Receiver[];
  /**
   * With a token, the admin surfaces (`/admin/*`, `polku.v1.Admin`) want
   * `authorization: Bearer <token>` on top of a loopback caller (POLKU_ADMIN_TOKEN).
   */
  adminToken?: string | undefined;
  /**
   * TLS (mTLS with a client CA) on the gRPC port and HTTPS on the metrics port; absent: plaintext.
   * Settings (POLKU_TLS_*) are read when the gateway is built: a bad file throws POLKU_ERR_ENV_INVALID.
   */
  tls?: ListenerTls | ListenerTlsSettings | undefined;
  /** The gRPC port's connection budget (default: DEFAULT_CONNECTION_LIMITS). */
  connections?: ConnectionLimits;
  /** Most connections open at once on the metrics and probes port (default: DEFAULT_METRICS_MAX_CONNECTIONS). */
  metricsMaxConnections?: number;
  /** OpenTelemetry logs in on the OTLP ports (POLKU_OTLP_*; `polku serve` serves 4317 and 4318). Absent: not served. */
  otlp?: OtlpSettings | undefined;
  /** The HTTP front door, POST /v1/events (POLKU_HTTP_*; `polku serve` serves 8080). Absent or `addr` off: not served. */
  http?: HttpSettings | undefined;
}

export interface ListeningPorts {
  grpc: number;
  metrics: number;
}

/**
 * A whole gateway process minus signal handling: the hub behind a gRPC listener and an HTTP
 * listener for metrics and probes. `shutdown` runs once: NOT_SERVING, intake stops, the buffer
 * drains within the deadline, listeners close.
 */
export class Gateway {
  private readonly log: Logger;
  /** Every way in, each with the context it was given once. */
  private readonly receivers: ReadonlyArray<{ readonly receiver: Receiver; readonly ctx: ReceiverContext }>;
  private readonly grpc: GrpcServer;
  private readonly http: HttpServer;
  private readonly tls: ListenerTls | undefined;
  private state: 'new' | 'serving' | 'draining' | 'stopped' = 'new';
  private shutdownRun: Promise<DrainReport> | null = null;
  private receiversClosed = false;

  constructor(private readonly o: GatewayOptions) {
    this.log = o.logger.child({ component: 'gateway' });
    this.tls = listenerTls(o.tls, o.logger.child({ component: 'tls' }));
    const names = new Set<string>();
    const otlp = o.otlp && { ...o.otlp, tls: this.tls, connections: o.connections };
    const http = o.http && { ...o.http, tls: this.tls, connections: o.connections };
    this.receivers = [...builtInReceivers({ otlp, http }), ...(o.receivers ?? [])].map((receiver) => {
      if (names.has(receiver.name)) throw polkuError('POLKU_ERR_PIPELINE_INVALID', `two receivers are named "${receiver.name}"`);
      names.add(receiver.name);
      const logger = o.logger.child({ receiver: receiver.name });
      return { receiver, ctx: { hub: o.hub, logger, clock: o.clock ?? systemClock, registry: o.registry } };
    });
    const services: GrpcServiceBinding[] = this.receivers.flatMap(({ receiver, ctx }) => receiver.grpcServices?.(ctx) ?? []);
    // The control plane shares the port but is no way in: it takes no events.
    const registry = o.plugins?.service;
    if (registry) {
      services.push({
        definition: registry.definition(),
        implementation: registry.implementation(),
        protoFiles: [polkuProto('plugin')],
        protoIncludeDirs: [PROTO_DIR],
      });
    }
    const adminAccess = new AdminAccess(o.adminToken);
    const admin = new AdminServiceHandler(() => o.hub.admin, o.logger.child({ component: 'admin' }), adminAccess);
    services.push({
      definition: admin.definition(),
      implementation: admin.implementation(),
      protoFiles: [polkuProto('admin')],
      protoIncludeDirs: [PROTO_DIR],
    });
    this.grpc = new GrpcServer({
      services,
      maxMessageBytes: o.hub.limits.maxMessageBytes,
      ...(o.connections ? { connections: o.connections } : {}),
      registry: o.registry,
      logger: o.logger,
    });
    const clock = o.clock ?? systemClock;
    const startedMs = clock.monotonicMs();
    this.http = new HttpServer({
      ...(o.metricsMaxConnections !== undefined ? { maxConnections: o.metricsMaxConnections } : {}),
      registry: o.registry,
      logger: o.logger,
      tls: this.tls,
      admin: () => o.hub.admin,
      adminAccess,
      tap: { taps: o.hub.taps, emitters: () => o.hub.running.emitters },
      top: () => topSnapshot(o.hub, o.registry, clock.nowMs(), clock.monotonicMs() - startedMs),
      ...(o.plugins ? { plugins: () => o.plugins!.rows() } : {}),
      health: () => o.hub.health(),
      pipeline: () => pipelineView(o.hub),
      readiness: () =>
        this.state !== 'serving'
          ? { ready: false, reason: `not ready: ${this.state}` }
          : (o.plugins?.readiness() ?? { ready: true, reason: 'ready' }),
    });
  }

  async start(): Promise<ListeningPorts> {
    const metrics = await this.http.listen(this.o.metricsAddr.host, this.o.metricsAddr.port);
    try {
      await this.o.hub.start(); // durable mode: recovers the log before taking events; /readyz waits
    } catch (err) {
      await this.http.close();
      throw err;
    }
    this.o.plugins?.start(); // after the hub: durable emitters can be added only once the log is open
    let grpc: number;
    try {
      for (const { receiver, ctx } of this.receivers) await receiver.start?.(ctx);
      grpc = await this.grpc.listen(formatAddress(this.o.grpcAddr), serverCredentials(this.tls));
    } catch (err) {
      await this.closeReceivers();
      await this.o.plugins?.stop();
      await this.http.close();
      throw err;
    }
    this.grpc.setServing(true);
    this.state = 'serving';
    this.log.info(
      {
        grpc: formatAddress({ ...this.o.grpcAddr, port: grpc }),
        metrics: formatAddress({ ...this.o.metricsAddr, port: metrics }),
        tls: this.tls ? (this.tls.mutual ? 'mtls' : 'tls') : 'off',
      },
      'gateway listening',
    );
    return { grpc, metrics };
  }

  shutdown(reason = 'shutdown requested'): Promise<DrainReport> {
    this.shutdownRun ??= this.runShutdown(reason);
    return this.shutdownRun;
  }

  private async runShutdown(reason: string): Promise<DrainReport> {
    this.log.info({ reason, buffered: this.o.hub.stats().buffer.events }, 'shutting down: intake stopped, draining buffer');
    this.state = 'draining';
    this.grpc.setServing(false);
    // Discovery and leases stop first: plugins stay in the pipeline while the buffer drains to them.
    const pluginsStopped = this.o.plugins?.stop();
    const drained = this.o.hub.drain(this.o.shutdownTimeoutMs); // refuses new batches from here on
    for (const { receiver } of this.receivers) receiver.stopIntake?.();
    const grpcClosed = this.grpc.shutdown(Math.min(this.o.shutdownTimeoutMs, 5_000));
    const report = await drained;
    await pluginsStopped;
    await grpcClosed;
    await this.closeReceivers();
    await this.http.close();
    this.state = 'stopped';
    this.log.info({ drained: report.drained, undelivered: report.undelivered }, 'gateway stopped');
    return report;
  }

  /** Closes every receiver, each once; one that fails to close is logged and does not stop the rest. */
  private async closeReceivers(): Promise<void> {
    if (this.receiversClosed) return;
    this.receiversClosed = true;
    for (const { receiver } of this.receivers) {
      try {
        await receiver.close?.();
      } catch (err) {
        this.log.warn({ err, receiver: receiver.name }, 'receiver did not close cleanly');
      }
    }
  }
}

/** The listeners' certificate files, loaded now; a refused reload is logged (a taken one by the HTTP server). */
function listenerTls(tls: ListenerTls | ListenerTlsSettings | undefined, log: Logger): ListenerTls | undefined {
  if (tls === undefined || tls instanceof ListenerTls) return tls;
  return new ListenerTls(tls, (message) => log.warn(message));
}
