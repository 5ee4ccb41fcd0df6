import {
  status as GrpcStatus,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { refusalOf } from '../../errors.js';
import type { Ack as PolkuAck } from '../../gen/polku/v1/gateway.js';
import { Ack, PorttiServiceService, type HealthRequest, type HealthResponse } from '../../gen/portti/v1/raw.js';
import type { HubHealth } from '../../hub/hub.js';
import type { IntakeRequest } from '../../hub/intake-request.js';
import { intakeOfUnreadable } from '../../hub/polku-messages.js';
import { agentProto, PROTO_DIR } from '../../proto-dir.js';
import { guarded, UnreadableMessage } from '../message-framing.js';
import type { GrpcServiceBinding, Receiver, ReceiverContext } from '../receiver.js';
import { StreamEnd, StreamSession, type StreamProtocol } from '../stream-session.js';
import { ackErrorText } from '../unary-refusal.js';
import { PORTTI_SOURCE } from './k8s-event.js';
import { readPorttiBatch, type ReceivedPorttiBatch } from './portti-batch.js';
import { PorttiReceiverMetrics, RefusalRecorder } from './portti-metrics.js';

type Incoming = ReceivedPorttiBatch | UnreadableMessage;

const SERVICE = 'portti.v1.PorttiService';

/** The format raw PORTTI batches are handed to the hub with; the portti ingestor claims the source. */
export const PORTTI_BATCH_FORMAT = 'protobuf';

/**
 * `portti.v1.PorttiService`, PORTTI's own service, as a receiver.
 *
 * StreamK8sEvents: each `portti.v1.EventBatch` goes to the hub as the bytes received (source
 * `portti`, format `protobuf`, cluster = the batch's `cluster_id`), so the portti ingestor makes
 * the one strict decode; each is answered by a `portti.v1.Ack` listing exactly the accepted ids,
 * in order. That Ack has no error list: a refused event is an id missing from it (counted in
 * `polku_portti_refused_events_total`, logged). A refusal that fails a call in the catalogue
 * (`refusalOf`: BUFFER_FULL with nothing accepted, SHUTTING_DOWN, an unreadable or oversized
 * message) ends the stream with that gRPC status and the Ack's error text as details, so PORTTI
 * sees it and reconnects. Backpressure is StreamEvents' (the shared StreamSession).
 *
 * Health: the hub's health as `HealthResponse{healthy, message}`; `watchers` is empty, because the
 * gateway watches nothing itself (the message says so).
 */
export class PorttiReceiver implements Receiver {
  readonly name = 'portti';
  private readonly sessions = new Set<StreamSession<Incoming, Ack>>();

  grpcServices(ctx: ReceiverContext): readonly GrpcServiceBinding[] {
    const log = ctx.logger.child({ component: 'grpc-portti' });
    const metrics = PorttiReceiverMetrics.of(ctx.registry);
    const refusals = new RefusalRecorder(SERVICE, metrics, log, ctx.clock);
    const protocol: StreamProtocol<Incoming, Ack> = {
      intake: (message, receivedAtNs) =>
        message instanceof UnreadableMessage
          ? intakeOfUnreadable(message, { unary: false, receivedAtNs })
          : intakeOfPorttiBatch(message, receivedAtNs),
      answer: (ack) => {
        refusals.record(ack);
        const refusal = refusalOf(ack);
        if (refusal) return new StreamEnd(GrpcStatus[refusal.grpc], ackErrorText(ack));
        return porttiAck(ack);
      },
      // Durable mode's per-stream window counts the bytes each batch arrived in.
      sizeOf: (message) => (message instanceof UnreadableMessage ? 0 : message.data.byteLength),
    };
    const definition = {
      streamK8SEvents: {
        ...PorttiServiceService.streamK8SEvents,
        requestDeserialize: guarded((b) => readPorttiBatch(b, ctx.hub.limits), 'portti.v1.EventBatch', ctx.hub.limits.maxMessageBytes),
        responseSerialize: serializePorttiAck,
      },
      health: PorttiServiceService.health,
    } as unknown as ServiceDefinition;
    const paused = metrics.pausedStreams.labels(SERVICE);
    const active = metrics.activeStreams.labels(SERVICE);
    const implementation = {
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
      health: (_call: ServerUnaryCall<HealthRequest, HealthResponse>, cb: sendUnaryData<HealthResponse>) => {
        ctx.hub.health().then(
          (h) => cb(null, { healthy: h.healthy, message: healthMessage(h), watchers: {} }),
          (err: unknown) => cb({ code: GrpcStatus.INTERNAL, details: `health check failed: ${String(err)}` }),
        );
      },
    };
    return [
      {
        definition,
        implementation,
        protoFiles: [agentProto('portti')],
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

/** A portti.v1.EventBatch as the hub takes it: the bytes as received, for the ingestor claiming `portti`. */
export function intakeOfPorttiBatch(batch: ReceivedPorttiBatch, receivedAtNs?: bigint): IntakeRequest {
  return {
    source: PORTTI_SOURCE,
    cluster: batch.cluster,
    ...(receivedAtNs === undefined ? {} : { receivedAtNs }),
    payload: { kind: 'raw', data: batch.data, format: PORTTI_BATCH_FORMAT },
  };
}

/** The portti.v1.Ack for the hub's Ack: the accepted ids, in order, and the buffer's fill. */
function porttiAck(ack: PolkuAck): Ack {
  return { eventIds: ack.eventIds, bufferSize: ack.bufferSize };
}

/**
 * The Health message: the gateway's verdict, the components that are not healthy, and that
 * `watchers` is empty because the gateway runs none (PORTTI's own watchers are PORTTI's).
 */
function healthMessage(h: HubHealth): string {
  const unhealthy = Object.entries(h.components)
    .filter(([, c]) => !c.healthy)
    .map(([name, c]) => `${name}: ${c.message}`);
  const verdict = h.healthy ? 'polku gateway healthy' : `polku gateway unhealthy (${unhealthy.join('; ')})`;
  return `${verdict}; no watchers (the gateway receives PORTTI's events, it watches nothing itself)`;
}

/** Encodes a portti.v1.Ack without the extra copy `Buffer.from(Uint8Array)` would make. */
export function serializePorttiAck(ack: Ack): Buffer {
  const bytes = Ack.encode(ack).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
