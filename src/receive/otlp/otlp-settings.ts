import type { ListenAddress } from '../../config/env-parsers.js';

/** The OTLP standard ports: POLKU_OTLP_GRPC_ADDR and POLKU_OTLP_HTTP_ADDR. */
export const DEFAULT_OTLP_GRPC_ADDR: ListenAddress = Object.freeze({ host: '0.0.0.0', port: 4317 });
export const DEFAULT_OTLP_HTTP_ADDR: ListenAddress = Object.freeze({ host: '0.0.0.0', port: 4318 });
/** The record attribute whose string value becomes the event's `event_type` (POLKU_OTLP_EVENT_TYPE_ATTRIBUTE). */
export const DEFAULT_EVENT_TYPE_ATTRIBUTE = 'event.name';
/** The record attribute whose string value becomes the event's id (POLKU_OTLP_ID_ATTRIBUTE); none: intake assigns a ULID. */
export const DEFAULT_ID_ATTRIBUTE = 'log.record.uid';

/**
 * What serves OTLP/gRPC (POLKU_OTLP_GRPC_SERVER): `http2`, LogsService/Export on node:http2
 * (src/receive/otlp/otlp-grpc-h2.ts), or `grpc-js`, the library the gateway's own port uses (with
 * server reflection). http2 is the default: it costs the gateway about half the CPU per call
 * (docs/benchmarks.md, "OTLP/gRPC ingest").
 */
export const OTLP_GRPC_SERVERS = ['http2', 'grpc-js'] as const;
export type OtlpGrpcServerKind = (typeof OTLP_GRPC_SERVERS)[number];
export const DEFAULT_OTLP_GRPC_SERVER: OtlpGrpcServerKind = 'http2';

/** Where OTLP is served and how records are mapped. A side left out (`off`) is not served. */
export interface OtlpSettings {
  grpcAddr?: ListenAddress | undefined;
  httpAddr?: ListenAddress | undefined;
  /** What serves the gRPC side (default http2). */
  grpcServer?: OtlpGrpcServerKind | undefined;
  /** The record attribute whose string value is the event type (default `event.name`). */
  eventTypeAttribute?: string;
  /** The record attribute whose string value is the event id (default `log.record.uid`). */
  idAttribute?: string;
}
