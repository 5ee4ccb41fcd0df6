import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { formatAddress, type ListenAddress } from '../../config/env-parsers.js';

export type { OtlpSettings } from './otlp-settings.js';
import { polkuError } from '../../errors.js';
import { LogsServiceService } from '../../gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import { PROTO_DIR } from '../../proto-dir.js';
import { serverCredentials, type ListenerTls } from '../../security/tls.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../../server/connection-guard.js';
import { GrpcServer } from '../../server/grpc-server.js';
import { listenHttp } from '../http-listener.js';
import type { Receiver, ReceiverContext } from '../receiver.js';
import { exportResponse, OTLP_RETRY_AFTER_SECONDS, rpcStatus, type ExportAnswer } from './export-answer.js';

type Accepted = Extract<ExportAnswer, { kind: 'accepted' }>;
import { DEFAULT_EVENT_TYPE_ATTRIBUTE, DEFAULT_ID_ATTRIBUTE, DEFAULT_OTLP_GRPC_SERVER, type OtlpSettings } from './otlp-settings.js';
import { OtlpGrpcH2Server } from './otlp-grpc-h2.js';
import { decodeExportRequest, OtlpIntake, type DecodedExport } from './otlp-intake.js';
import { otlpLogsHandler } from './otlp-http.js';
import { apiKeyOfMetadata } from '../api-key.js';

export interface OtlpReceiverOptions extends OtlpSettings {
  /** The gateway's listener TLS (POLKU_TLS_*): both OTLP ports serve it too. */
  tls?: ListenerTls | undefined;
  /** The gRPC port's connection budget, applied to the OTLP gRPC port on its own. */
  connections?: ConnectionLimits | undefined;
}

/** The ports an OTLP receiver bound (0: that side is off). */
export interface OtlpPorts {
  grpc: number;
  http: number;
}

/** The OTLP proto folder, for reflection (the files as published; see proto/opentelemetry/README.md). */
const OTLP_LOGS_PROTO = join(PROTO_DIR, 'opentelemetry', 'proto', 'collector', 'logs', 'v1', 'logs_service.proto');

/**
 * OpenTelemetry logs in: `opentelemetry.proto.collector.logs.v1.LogsService/Export` on a gRPC port
 * of its own (4317) and `POST /v1/logs` on an HTTP port of its own (4318), each record one event
 * (src/receive/otlp/log-records.ts has the mapping; the README has it as a table). The ports are
 * its own, not the gateway's: OTLP senders expect the standard ports and plain paths.
 */
export class OtlpReceiver implements Receiver {
  readonly name = 'otlp';
  private grpc: Pick<GrpcServer, 'shutdown'> | null = null;
  private http: Server | HttpsServer | null = null;
  private stopWatching: (() => void) | undefined;
  private grpcStopped: Promise<void> | null = null;
  private bound: OtlpPorts = { grpc: 0, http: 0 };

  constructor(private readonly o: OtlpReceiverOptions) {}

  /** The bound ports, once started. */
  get ports(): OtlpPorts {
    return this.bound;
  }

  async start(ctx: ReceiverContext): Promise<void> {
    const intake = new OtlpIntake(ctx, {
      eventTypeAttribute: this.o.eventTypeAttribute ?? DEFAULT_EVENT_TYPE_ATTRIBUTE,
      idAttribute: this.o.idAttribute ?? DEFAULT_ID_ATTRIBUTE,
    });
    try {
      if (this.o.grpcAddr) this.bound.grpc = await this.listenGrpc(ctx, intake, this.o.grpcAddr);
      if (this.o.httpAddr) this.bound.http = await this.listenHttp(intake, this.o.httpAddr);
    } catch (err) {
      await this.close();
      throw err;
    }
    intake.log.info(
      {
        otlpGrpc: this.o.grpcAddr ? formatAddress({ ...this.o.grpcAddr, port: this.bound.grpc }) : 'off',
        otlpHttp: this.o.httpAddr ? formatAddress({ ...this.o.httpAddr, port: this.bound.http }) : 'off',
      },
      'otlp listening',
    );
  }

  stopIntake(): void {
    this.grpcStopped ??= this.grpc?.shutdown(5_000) ?? null;
    this.http?.close();
  }

  async close(): Promise<void> {
    this.stopIntake();
    await this.grpcStopped;
    this.stopWatching?.();
    this.stopWatching = undefined;
    const http = this.http;
    this.http = null;
    if (http) {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    }
  }

  private async listenGrpc(ctx: ReceiverContext, intake: OtlpIntake, addr: ListenAddress): Promise<number> {
    if ((this.o.grpcServer ?? DEFAULT_OTLP_GRPC_SERVER) === 'http2') return this.listenGrpcH2(ctx, intake, addr);
    return this.listenGrpcJs(ctx, intake, addr);
  }

  /** LogsService/Export on node:http2 (POLKU_OTLP_GRPC_SERVER=http2, the default). */
  private async listenGrpcH2(ctx: ReceiverContext, intake: OtlpIntake, addr: ListenAddress): Promise<number> {
    const server = new OtlpGrpcH2Server({
      intake,
      connections: this.o.connections ?? DEFAULT_CONNECTION_LIMITS,
      logger: ctx.logger.child({ component: 'otlp-grpc' }),
      tls: this.o.tls,
    });
    this.grpc = server;
    let port: number;
    try {
      port = await server.listen(addr);
    } catch (err) {
      throw listenError(addr, err);
    }
    server.setServing(true);
    return port;
  }

  /** LogsService/Export on grpc-js, with reflection (POLKU_OTLP_GRPC_SERVER=grpc-js). */
  private async listenGrpcJs(ctx: ReceiverContext, intake: OtlpIntake, addr: ListenAddress): Promise<number> {
    const maxBytes = ctx.hub.limits.maxMessageBytes;
    const definition = {
      export: {
        ...LogsServiceService.export,
        requestDeserialize: (bytes: Buffer): DecodedExport => decodeExportRequest(intake, bytes),
        responseSerialize: (answer: Accepted): Buffer => Buffer.from(exportResponse(answer.rejected, answer.message)),
      },
    } as unknown as ServiceDefinition;
    const implementation = {
      export: (call: ServerUnaryCall<DecodedExport, Accepted>, cb: sendUnaryData<Accepted>) => {
        let answer: ExportAnswer | Promise<ExportAnswer>;
        try {
          answer = intake.submit(call.request, 'grpc', apiKeyOfMetadata(call.metadata));
        } catch (err) {
          intake.log.error({ err }, 'OTLP Export processing threw');
          cb({ code: 13, details: 'internal error while processing the request' });
          return;
        }
        if (answer instanceof Promise) {
          answer.then(
            (a) => answerGrpc(a, cb),
            (err: unknown) => {
              intake.log.error({ err }, 'OTLP Export processing failed');
              cb({ code: 13, details: 'internal error while processing the request' });
            },
          );
        } else answerGrpc(answer, cb);
      },
    };
    const grpc = new GrpcServer({
      services: [{ definition, implementation, protoFiles: [OTLP_LOGS_PROTO], protoIncludeDirs: [PROTO_DIR] }],
      maxMessageBytes: maxBytes,
      connections: this.o.connections ?? DEFAULT_CONNECTION_LIMITS,
      // The guard's metrics carry no port label: the OTLP port's stay off /metrics rather than clash with the gateway port's.
      registry: new Registry(),
      logger: ctx.logger.child({ component: 'otlp-grpc' }),
    });
    this.grpc = grpc;
    let port: number;
    try {
      port = await grpc.listen(formatAddress(addr), serverCredentials(this.o.tls));
    } catch (err) {
      throw listenError(addr, err);
    }
    grpc.setServing(true);
    return port;
  }

  private async listenHttp(intake: OtlpIntake, addr: ListenAddress): Promise<number> {
    const listener = await listenHttp({
      addr,
      handler: otlpLogsHandler(intake),
      tls: this.o.tls,
      maxConnections: (this.o.connections ?? DEFAULT_CONNECTION_LIMITS).maxConnections,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
      addrVariable: 'POLKU_OTLP_HTTP_ADDR',
      what: 'OTLP/HTTP server',
    });
    this.http = listener.server;
    this.stopWatching = listener.stopWatching;
    return listener.port;
  }
}

function listenError(addr: ListenAddress, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  return polkuError(
    'POLKU_ERR_LISTEN',
    `OTLP/gRPC server could not listen on ${formatAddress(addr)} (POLKU_OTLP_GRPC_ADDR): ${message}`,
    err,
  );
}

/** A refused request fails with its status; a retryable one carries RetryInfo in grpc-status-details-bin. */
function answerGrpc(answer: ExportAnswer, cb: sendUnaryData<Accepted>): void {
  if (answer.kind === 'accepted') {
    cb(null, answer);
    return;
  }
  const metadata = new Metadata();
  if (answer.retryable) {
    metadata.set('grpc-status-details-bin', Buffer.from(rpcStatus(answer.grpc, answer.message, OTLP_RETRY_AFTER_SECONDS)));
  }
  cb({ code: answer.grpc, details: answer.message, metadata });
}
