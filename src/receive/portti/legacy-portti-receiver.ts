import {
  status as GrpcStatus,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import type { Event } from '../../gen/polku/v1/event.js';
import { PorttiServiceService, type Ack, type SendResponse } from '../../gen/polku/v1/gateway.js';
import type { IntakeRequest } from '../../hub/intake-request.js';
import { intakeOfUnreadable } from '../../hub/polku-messages.js';
import { PROTO_DIR, polkuProto } from '../../proto-dir.js';
import { guarded, UnreadableMessage } from '../message-framing.js';
import { serializeAck } from '../polku-gateway/message-codec.js';
import type { GrpcServiceBinding, Receiver, ReceiverContext } from '../receiver.js';
import { StreamSession, type StreamProtocol } from '../stream-session.js';
import { ackErrorText, unaryRefusal } from '../unary-refusal.js';
import { apiKeyOfMetadata, withApiKey } from '../api-key.js';
import { PORTTI_SOURCE, readK8sEvent, readK8sEventBatch, type ReceivedK8sEvents } from './k8s-event.js';
import { PorttiReceiverMetrics, RefusalRecorder } from './portti-metrics.js';

type Incoming = ReceivedK8sEvents | UnreadableMessage;

const SERVICE = 'polku.v1.PorttiService';

/**
 * `polku.v1.PorttiService`, the older PORTTI service beside Gateway, as a receiver. Each
 * polku.v1.K8sEvent becomes one POLKU event (src/receive/portti/k8s-event.ts: the portti
 * ingestor's event type and metadata, the K8sEvent's bytes as payload), submitted as ready events
 * from source `portti`.
 *
 * - StreamK8sEvents: one polku.v1.Ack per K8sEventBatch, the Gateway's full Ack (accepted ids,
 *   an error per refused event, buffer fill). An unreadable or oversized message is answered with
 *   its refusal and the stream stays open, exactly as StreamEvents does.
 * - SendK8sEvent: `SendResponse{success: true}` when the event was accepted; otherwise
 *   `success: false` with `error` = the Ack's `CODE: message`, except where the catalogue says the
 *   refusal fails the call (BUFFER_FULL, SHUTTING_DOWN, an unreadable message): then the call
 *   fails with that gRPC status, as Gateway.SendEvent does.
 */
export class LegacyPorttiReceiver implements Receiver {
  readonly name = 'portti-polku-v1';
  private readonly sessions = new Set<StreamSession<Incoming, Ack>>();

  grpcServices(ctx: ReceiverContext): readonly GrpcServiceBinding[] {
    const log = ctx.logger.child({ component: 'grpc-portti-polku-v1' });
    const metrics = PorttiReceiverMetrics.of(ctx.registry);
    const refusals = new RefusalRecorder(SERVICE, metrics, log, ctx.clock);
    const limits = ctx.hub.limits;
    const protocol: StreamProtocol<Incoming, Ack> = {
      intake: (message, receivedAtNs) =>
        message instanceof UnreadableMessage
          ? intakeOfUnreadable(message, { unary: false, receivedAtNs })
          : intakeOfK8sEvents(message.cluster, message.events, false, receivedAtNs),
      answer: (ack) => {
        refusals.record(ack);
        return ack;
      },
    };
    const definition = {
      sendK8SEvent: {
        ...PorttiServiceService.sendK8SEvent,
        requestDeserialize: guarded((b) => readK8sEvent(b), 'K8sEvent', limits.maxMessageBytes),
      },
      streamK8SEvents: {
        ...PorttiServiceService.streamK8SEvents,
        requestDeserialize: guarded((b) => readK8sEventBatch(b, limits), 'K8sEventBatch', limits.maxMessageBytes),
        responseSerialize: serializeAck,
      },
    } as unknown as ServiceDefinition;
    const paused = metrics.pausedStreams.labels(SERVICE);
    const active = metrics.activeStreams.labels(SERVICE);
    const implementation = {
      sendK8SEvent: (call: ServerUnaryCall<Event | UnreadableMessage, SendResponse>, cb: sendUnaryData<SendResponse>) => {
        const request = call.request;
        const answer = (ack: Ack): void => {
          refusals.record(ack);
          const failed = unaryRefusal(ack);
          if (failed) cb(failed);
          else cb(null, ack.eventIds.length > 0 ? { success: true, error: '' } : { success: false, error: ackErrorText(ack) });
        };
        let result: Ack | Promise<Ack>;
        try {
          result = ctx.hub.submit(
            withApiKey(
              request instanceof UnreadableMessage ? intakeOfUnreadable(request, { unary: true }) : intakeOfK8sEvents('', [request], true),
              apiKeyOfMetadata(call.metadata),
            ),
          );
        } catch (err) {
          log.error({ err }, 'SendK8sEvent processing threw');
          cb({ code: GrpcStatus.INTERNAL, details: 'internal error while processing the event' });
          return;
        }
        if (!(result instanceof Promise)) {
          answer(result);
          return;
        }
        result.then(answer, (err: unknown) => {
          log.error({ err }, 'SendK8sEvent processing failed');
          cb({ code: GrpcStatus.INTERNAL, details: 'internal error while processing the event' });
        });
      },
      streamK8SEvents: (call: ServerDuplexStream<Incoming, Ack>) => {
        active.inc();
        const session = new StreamSession<Incoming, Ack>(
          call,
          ctx.hub,
          ctx.clock,
          log,
          (s) => {
            if (this.sessions.delete(s)) active.dec();
          },
          protocol,
          { paused: (delta) => paused.inc(delta) },
        );
        this.sessions.add(session);
        if (ctx.hub.isClosing) session.close(GrpcStatus.UNAVAILABLE, 'gateway is shutting down');
      },
    };
    return [
      {
        definition,
        implementation,
        protoFiles: [polkuProto('gateway')],
        protoIncludeDirs: [PROTO_DIR],
        healthServiceName: SERVICE,
      },
    ];
  }

  /** Ends every open stream with UNAVAILABLE once its current batch is answered (shutdown). */
  stopIntake(): void {
    for (const s of this.sessions) s.close(GrpcStatus.UNAVAILABLE, 'gateway is shutting down; reconnect');
  }
}

/** Events made from K8sEvents, as the hub takes them: ready events from source `portti`. */
function intakeOfK8sEvents(cluster: string, events: Event[], unary: boolean, receivedAtNs?: bigint): IntakeRequest {
  return {
    source: PORTTI_SOURCE,
    cluster,
    unary,
    ...(receivedAtNs === undefined ? {} : { receivedAtNs }),
    payload: { kind: 'events', events },
  };
}
