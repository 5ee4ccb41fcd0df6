import {
  Metadata,
  status as GrpcStatus,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Clock } from '../clock.js';
import { GatewayService, type HealthRequest, type HealthResponse, type Ack, type IngestEvent } from '../gen/polku/v1/gateway.js';
import { intakeOfEvent } from '../hub/polku-messages.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import { batchDeserializer, eventDeserializer, serializeAck, UnreadableMessage, type ReceivedBatch } from './message-codec.js';
import type { ServerMetrics } from './server-metrics.js';
import { StreamSession } from './stream-session.js';

export interface GatewayServiceOptions {
  hub: Hub;
  clock: Clock;
  logger: Logger;
  metrics: ServerMetrics;
}

/**
 * `polku.v1.Gateway` over grpc-js: the generated service definition with our own
 * deserializers (so bad messages become Acks, not dead streams) and handlers that hand batches to
 * the hub.
 */
export class GatewayServiceHandler {
  private readonly sessions = new Set<StreamSession>();
  private readonly log: Logger;

  constructor(private readonly o: GatewayServiceOptions) {
    this.log = o.logger.child({ component: 'grpc-gateway' });
  }

  definition(): ServiceDefinition {
    const maxBytes = this.o.hub.limits.maxMessageBytes;
    return {
      streamEvents: { ...GatewayService.streamEvents, requestDeserialize: batchDeserializer(maxBytes), responseSerialize: serializeAck },
      sendEvent: { ...GatewayService.sendEvent, requestDeserialize: eventDeserializer(maxBytes), responseSerialize: serializeAck },
      health: GatewayService.health,
    } as unknown as ServiceDefinition;
  }

  implementation(): UntypedServiceImplementation {
    return {
      streamEvents: (call: ServerDuplexStream<ReceivedBatch | UnreadableMessage, Ack>) => this.streamEvents(call),
      sendEvent: (call: ServerUnaryCall<IngestEvent | UnreadableMessage, Ack>, cb: sendUnaryData<Ack>) => this.sendEvent(call, cb),
      health: (_call: ServerUnaryCall<HealthRequest, HealthResponse>, cb: sendUnaryData<HealthResponse>) => this.health(cb),
    };
  }

  /** Ends every open stream with UNAVAILABLE once its current batch is answered (shutdown). */
  closeStreams(): void {
    for (const s of this.sessions) s.close(GrpcStatus.UNAVAILABLE, 'gateway is shutting down; reconnect');
  }

  private streamEvents(call: ServerDuplexStream<ReceivedBatch | UnreadableMessage, Ack>): void {
    this.o.metrics.activeStreams.inc();
    const session = new StreamSession(call, this.o.hub, this.o.clock, this.log, (s) => {
      if (this.sessions.delete(s)) this.o.metrics.activeStreams.dec();
    });
    this.sessions.add(session);
    if (this.o.hub.isClosing) session.close(GrpcStatus.UNAVAILABLE, 'gateway is shutting down');
  }

  private sendEvent(call: ServerUnaryCall<IngestEvent | UnreadableMessage, Ack>, cb: sendUnaryData<Ack>): void {
    const request = call.request;
    let result: Ack | Promise<Ack>;
    try {
      result =
        request instanceof UnreadableMessage
          ? this.o.hub.submit({
              source: '',
              cluster: '',
              unary: true,
              payload: { kind: 'unreadable', code: request.code, message: request.message },
            })
          : this.o.hub.submit(intakeOfEvent(request));
    } catch (err) {
      this.log.error({ err }, 'SendEvent processing threw');
      cb({ code: GrpcStatus.INTERNAL, details: 'internal error while processing the event' });
      return;
    }
    const answer = (ack: Ack): void => {
      const failure = unaryStatusOf(ack);
      if (!failure) {
        cb(null, ack);
        return;
      }
      // The Ack still travels, in trailing metadata, so clients can read codes and buffer fill.
      const metadata = new Metadata();
      metadata.set('polku-ack-bin', serializeAck(ack));
      metadata.set('polku-buffer-size', String(ack.bufferSize));
      metadata.set('polku-buffer-capacity', String(ack.bufferCapacity));
      cb({ code: failure, details: ack.errors.map((e) => `${e.code}: ${e.message}`).join('; '), metadata });
    };
    if (result instanceof Promise) {
      result.then(answer, (err: unknown) => {
        this.log.error({ err }, 'SendEvent processing failed');
        cb({ code: GrpcStatus.INTERNAL, details: 'internal error while processing the event' });
      });
    } else answer(result);
  }

  private health(cb: sendUnaryData<HealthResponse>): void {
    this.o.hub.health().then(
      (h) =>
        cb(null, {
          healthy: h.healthy,
          components: h.components,
          uptimeSeconds: BigInt(h.uptimeSeconds),
          eventsProcessed: h.eventsProcessed,
        }),
      (err: unknown) => cb({ code: GrpcStatus.INTERNAL, details: `health check failed: ${String(err)}` }),
    );
  }
}

/**
 * A unary call whose event was not accepted fails with a gRPC status where one fits, so plain
 * clients notice: a full buffer is RESOURCE_EXHAUSTED, draining is UNAVAILABLE, an unreadable
 * request is INVALID_ARGUMENT. Other refusals (a filter, a parse error) are answers, in the Ack.
 */
function unaryStatusOf(ack: Ack): GrpcStatus | undefined {
  if (ack.eventIds.length > 0 || ack.errors.length === 0) return undefined;
  switch (ack.errors[0]!.code) {
    case 'BUFFER_FULL':
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 'SHUTTING_DOWN':
      return GrpcStatus.UNAVAILABLE;
    case 'INVALID_BATCH':
    case 'BATCH_TOO_LARGE':
      return GrpcStatus.INVALID_ARGUMENT;
    default:
      return undefined;
  }
}
