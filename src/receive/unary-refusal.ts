import { Metadata, status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { refusalOf } from '../errors.js';
import type { Ack } from '../gen/polku/v1/gateway.js';
import { serializeAck } from './polku-gateway/message-codec.js';

/**
 * The status a unary call fails with when its Ack is a refusal the catalogue says fails the call
 * (a full buffer, draining, an unreadable request: `refusalOf`), so plain clients notice; else
 * `undefined` and the call answers. Details are the Ack's errors as `CODE: message`; the Ack itself
 * travels in trailing metadata (`polku-ack-bin`, `polku-buffer-size`, `polku-buffer-capacity`) so
 * clients can still read codes and buffer fill.
 */
export function unaryRefusal(ack: Ack): Partial<StatusObject> | undefined {
  const refusal = refusalOf(ack);
  if (!refusal) return undefined;
  const metadata = new Metadata();
  metadata.set('polku-ack-bin', serializeAck(ack));
  metadata.set('polku-buffer-size', String(ack.bufferSize));
  metadata.set('polku-buffer-capacity', String(ack.bufferCapacity));
  return { code: GrpcStatus[refusal.grpc], details: ackErrorText(ack), metadata };
}

/** An Ack's errors as one line: `CODE: message; CODE: message`. */
export function ackErrorText(ack: Ack): string {
  return ack.errors.map((e) => `${e.code}: ${e.message}`).join('; ');
}
