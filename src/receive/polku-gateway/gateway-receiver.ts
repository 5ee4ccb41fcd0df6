import {
  status as GrpcStatus,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { GatewayService, type HealthRequest, type HealthResponse, type Ack, type IngestEvent } from '../../gen/polku/v1/gateway.js';
import { intakeOfEvent, intakeOfUnreadable } from '../../hub/polku-messages.js';
import type { Logger } from '../../observability/logger.js';
import { PROTO_DIR, polkuProto } from '../../proto-dir.js';
import type { GrpcServiceBinding, Receiver, ReceiverContext } from '../receiver.js';
import { unaryRefusal } from '../unary-refusal.js';
import { apiKeyOfMetadata, withApiKey } from '../api-key.js';
import { GatewayReceiverMetrics } from './gateway-metrics.js';
import { batchDeserializer, eventDeserializer, serializeAck, UnreadableMessage, type ReceivedBatch } from './message-codec.js';
import { StreamSession } from './stream-session.js';

/** The receiver's context with what it derives from it once. */
interface Bound extends ReceiverContext {
  readonly log: Logger;
  readonly metrics: GatewayReceiverMetrics;
}

/**
 * `polku.v1.Gateway` over grpc-js, the agents' way in: the generated service definition with our
 * own deserializers (so bad messages become Acks, not dead streams) and handlers that hand batches
 * to the hub. StreamEvents answers one Ack per batch; SendEvent fails with a gRPC status where the
 * error catalogue says a refusal fails the call (`refusalOf`).
 */
export class PolkuGatewayReceiver implements Receiver {
  readonly name = 'polku-gateway';
  private readonly sessions = new Set<StreamSession>();

  grpcServices(receiverCtx: ReceiverContext): readonly GrpcServiceBinding[] {
    const ctx: Bound = {
      ...receiverCtx,
      log: receiverCtx.logger.child({ component: 'grpc-gateway' }),
      metrics: new GatewayReceiverMetrics(receiverCtx.registry),
    };
    const maxBytes = ctx.hub.limits.maxMessageBytes;
    const definition = {
      streamEvents: {
        ...GatewayService.streamEvents,
        requestDeserialize: batchDeserializer(maxBytes, ctx.hub.limits),
        responseSerialize: serializeAck,
      },
      sendEvent: {
        ...GatewayService.sendEvent,
        requestDeserialize: eventDeserializer(maxBytes, ctx.hub.limits),
        responseSerialize: serializeAck,
      },
      health: GatewayService.health,
    } as unknown as ServiceDefinition;
    const implementation = {
      streamEvents: (call: ServerDuplexStream<ReceivedBatch | UnreadableMessage, Ack>) => this.streamEvents(ctx, call),
      sendEvent: (call: ServerUnaryCall<IngestEvent | UnreadableMessage, Ack>, cb: sendUnaryData<Ack>) => this.sendEvent(ctx, call, cb),
      health: (_call: ServerUnaryCall<HealthRequest, HealthResponse>, cb: sendUnaryData<HealthResponse>) => this.health(ctx, cb),
    };
    return [
      {
        definition,
        implementation,
        protoFiles: [polkuProto('gateway')],
        protoIncludeDirs: [PROTO_DIR],
        healthServiceName: 'polku.v1.Gateway',
      },
    ];
  }

  /** Ends every open stream with UNAVAILABLE once its current batch is answered (shutdown). */
  stopIntake(): void {
    for (const s of this.sessions) s.close(GrpcStatus.UNAVAILABLE, 'gateway is shutting down; reconnect');
  }

  private streamEvents(ctx: Bound, call: ServerDuplexStream<ReceivedBatch | UnreadableMessage, Ack>): void {
    ctx.metrics.activeStreams.inc();
    const paused = ctx.metrics.pausedStreams;
    const unanswered = ctx.metrics.unansweredBatches;
    const session = new StreamSession(
      call,
      ctx.hub,
      ctx.clock,
      ctx.log,
      (s) => {
        if (this.sessions.delete(s)) ctx.metrics.activeStreams.dec();
      },
      { paused: (delta) => paused.inc(delta), unanswered: (batches) => unanswered.inc(batches) },
    );
    this.sessions.add(session);
    if (ctx.hub.isClosing) session.close(GrpcStatus.UNAVAILABLE, 'gateway is shutting down');
  }

  private sendEvent(ctx: Bound, call: ServerUnaryCall<IngestEvent | UnreadableMessage, Ack>, cb: sendUnaryData<Ack>): void {
    const request = call.request;
    const apiKey = apiKeyOfMetadata(call.metadata);
    let result: Ack | Promise<Ack>;
    try {
      result = ctx.hub.submit(
        withApiKey(request instanceof UnreadableMessage ? intakeOfUnreadable(request, { unary: true }) : intakeOfEvent(request), apiKey),
      );
    } catch (err) {
      ctx.log.error({ err }, 'SendEvent processing threw');
      cb({ code: GrpcStatus.INTERNAL, details: 'internal error while processing the event' });
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (ack) => answerUnary(ack, cb),
        (err: unknown) => {
          ctx.log.error({ err }, 'SendEvent processing failed');
          cb({ code: GrpcStatus.INTERNAL, details: 'internal error while processing the event' });
        },
      );
    } else answerUnary(result, cb);
  }

  private health(ctx: Bound, cb: sendUnaryData<HealthResponse>): void {
    ctx.hub.health().then(
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
 * A unary call whose event was not accepted fails with the catalogue's gRPC status where the
 * refusal fails the call (a full buffer, draining, an unreadable request), so plain clients
 * notice. Other refusals (a filter, a parse error) are answers, in the Ack.
 */
function answerUnary(ack: Ack, cb: sendUnaryData<Ack>): void {
  const refusal = unaryRefusal(ack);
  if (refusal) cb(refusal);
  else cb(null, ack);
}
