import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { Clock, Timers } from '../../clock.js';
import type { Ack } from '../../gen/polku/v1/gateway.js';
import { intakeOfBatch, intakeOfUnreadable } from '../../hub/polku-messages.js';
import type { Logger } from '../../observability/logger.js';
import type { IntakePort } from '../receiver.js';
import { StreamSession as Session, type StreamProtocol, type StreamSessionMetrics } from '../stream-session.js';
import { UnreadableMessage, type ReceivedBatch } from './message-codec.js';

export { REFUSAL_PAUSE_FIRST_MS, REFUSAL_PAUSE_MAX_MS, STREAM_READ_AHEAD_MESSAGES, type StreamSessionMetrics } from '../stream-session.js';

type Incoming = ReceivedBatch | UnreadableMessage;

/** StreamEvents: an IngestBatch in, the hub's Ack out as it is (it carries every refusal). */
const streamEvents: StreamProtocol<Incoming, Ack> = {
  intake: (message, receivedAtNs) =>
    message instanceof UnreadableMessage
      ? intakeOfUnreadable(message, { unary: false, receivedAtNs })
      : intakeOfBatch(message.batch, receivedAtNs, message.wire),
  answer: (ack) => ack,
  // The bytes the batch arrived in: its events' payloads point into them until it is answered.
  sizeOf: (message) => (message instanceof UnreadableMessage ? 0 : sizeOfBatch(message)),
};

function sizeOfBatch(message: ReceivedBatch): number {
  if (message.wire !== undefined) return message.wire.bytes.byteLength;
  const p = message.batch.payload;
  return p?.$case === 'raw' ? p.value.data.byteLength : 0;
}

/**
 * One agent's StreamEvents call: the shared session (src/receive/stream-session.ts) with the
 * polku.v1.Gateway protocol, one Ack per batch, in order.
 */
export class StreamSession extends Session<Incoming, Ack> {
  constructor(
    call: ServerDuplexStream<Incoming, Ack>,
    hub: IntakePort,
    clock: Clock,
    log: Logger,
    onDone: (session: StreamSession) => void,
    metrics?: StreamSessionMetrics,
    timers?: Timers,
  ) {
    super(call, hub, clock, log, (s) => onDone(s as StreamSession), streamEvents, metrics, timers);
  }
}
