import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { Ack } from '../gen/polku/v1/gateway.js';
import type { HubHealth } from '../hub/hub.js';
import type { IntakeRequest, StreamWindow } from '../hub/intake-request.js';
import type { IntakeLimits } from '../ingest/intake-rules.js';
import type { Logger } from '../observability/logger.js';

export type { StreamWindow } from '../hub/intake-request.js';

/**
 * One way into the gateway (the OpenTelemetry Collector's word). A receiver owns a protocol: its
 * gRPC services on the shared gRPC port, or (later) HTTP routes or a listener of its own. It turns
 * what arrives into {@link IntakeRequest}s, hands each to the hub with one call
 * (`ctx.hub.submit`), and maps the Ack back to its protocol's answer through the one status table
 * in the error catalogue (`refusalOf` in src/errors.ts).
 *
 * Adding a way in is one file implementing this, listed once in `built-in.ts` (or passed in
 * `GatewayOptions.receivers`). The gateway serves its services, reflects its proto files, reports
 * its health name, and calls the lifecycle hooks below in this order:
 * `grpcServices` (once, while the gateway is built) → `start` → `stopIntake` → `close`.
 */
export interface Receiver {
  /** Unique among the gateway's receivers; the `receiver` field of its log lines. */
  readonly name: string;

  /**
   * The gRPC services this receiver serves on the gateway's gRPC port. Called once, while the
   * gateway is built, before the port is bound; `ctx` is the receiver's for its whole life.
   * Receivers with no gRPC side leave it out.
   */
  grpcServices?(ctx: ReceiverContext): readonly GrpcServiceBinding[];

  /**
   * Starts what the receiver owns beyond the shared gRPC port (its own listener, a subscription).
   * Called after the hub has started and before the gRPC port opens; a rejection stops start-up.
   */
  start?(ctx: ReceiverContext): Promise<void>;

  /**
   * Shutdown has begun and the hub refuses new events with SHUTTING_DOWN: end open streams once the
   * message in hand is answered, stop accepting connections. Must not wait; called once.
   */
  stopIntake?(): void;

  /** Releases what `start` opened. Called once, after the gRPC port has closed and the hub drained. */
  close?(): Promise<void>;
}

/** What the gateway gives a receiver: the hub's intake port, and the process's logger, clock and metrics. */
export interface ReceiverContext {
  readonly hub: IntakePort;
  /** The gateway's logger, already a child bound to `{ receiver: name }`; add your own `component`. */
  readonly logger: Logger;
  /** Receive times come from here, so tests can drive them. */
  readonly clock: Clock;
  /** Where the receiver registers its own metrics (served at /metrics). */
  readonly registry: Registry;
}

/**
 * The part of the hub a receiver sees. The hub decides everything about an event (ingest, limits,
 * middleware, buffer room); the receiver only translates.
 */
export interface IntakePort {
  /**
   * Hands one message's events (or raw bytes, or a refusal of an unreadable message) to the
   * pipeline. Answers synchronously when it can; a Promise when an async ingestor or middleware,
   * or `block` waiting for room, is involved. It rejects or throws only on a bug, never on input.
   */
  submit(request: IntakeRequest): Ack | Promise<Ack>;
  /**
   * Asked before a message's bytes are read: the Ack refusing it whole when the caller's key
   * alone decides it (no key or an unknown one while tenants are configured; a tenant whose token
   * bucket holds not one whole token, so every event would be RATE_LIMITED), counted as one
   * refused message; undefined to read the message and `submit` it. A receiver that can answer
   * before reading (the HTTP front door) asks, so a caller flooding past its quota costs no body
   * read or parse. Optional: a port without it never refuses early.
   */
  refuseBeforeReading?(caller: UnreadMessage): Ack | undefined;
  /** Size limits of a message, batch and event: deserializers refuse over-large messages early. */
  readonly limits: IntakeLimits;
  /** True once shutdown has begun: new streams should be ended at once. */
  readonly isClosing: boolean;
  /**
   * How many of one stream's messages may wait for their answers at once, when the pipeline lets a
   * later message in before an earlier one is answered (durable mode: each waits for its group
   * commit). Read when a stream opens. Undefined: one at a time, the stream not read meanwhile.
   */
  readonly streamWindow?: StreamWindow | undefined;
  /** The pipeline's health, for protocols that have a health call of their own. */
  health(): Promise<HubHealth>;
}

/** What is known of a message before its bytes are read. */
export interface UnreadMessage {
  readonly source: string;
  readonly apiKey: string | undefined;
  /** True for a one-shot call (HTTP request, unary RPC). */
  readonly unary: boolean;
}

/** One gRPC service served on the gateway's port, as the gRPC server takes it. */
export interface GrpcServiceBinding {
  /** grpc-js service definition: method paths, (de)serializers. */
  readonly definition: ServiceDefinition;
  /** The handlers, keyed as in `definition`. */
  readonly implementation: UntypedServiceImplementation;
  /**
   * Absolute paths of the .proto files that declare the service. Server reflection finds the
   * service by name in the descriptors buf built from POLKU's proto/ (`npm run gen`); a service
   * whose proto is elsewhere needs `descriptorSet` to be reflected.
   */
  readonly protoFiles: readonly string[];
  /** Directories imports in `protoFiles` are resolved against. Default: none beyond the files' own. */
  readonly protoIncludeDirs?: readonly string[];
  /**
   * For a service whose proto is not in POLKU's proto/: a serialized google.protobuf.FileDescriptorSet
   * holding its file and everything it imports (`buf build --as-file-descriptor-set -o set.binpb`,
   * or `protoc --include_imports --descriptor_set_out`). Server reflection serves these bytes, so
   * grpcurl and other strict clients can describe and call the service. Without it (and outside
   * proto/) the service is served but not reflected, and the gateway logs a warning naming it.
   */
  readonly descriptorSet?: Uint8Array;
  /**
   * The name grpc.health.v1 reports for this service (SERVING while the gateway serves), e.g.
   * `polku.v1.Gateway`. Left out: the service is served but not reported on its own.
   */
  readonly healthServiceName?: string;
}
