/**
 * What an embedder needs to write a receiver of its own: the interface, its context, the binding
 * of a gRPC service, and the one table that maps an Ack to a call's status.
 */
export type { GrpcServiceBinding, IntakePort, Receiver, ReceiverContext } from './receiver.js';
export type { IntakePayload, IntakeRequest } from '../hub/intake-request.js';
export { refusalOf, AckCodes, type AckCode, type AckCodeInfo } from '../errors.js';
export { builtInReceivers } from './built-in.js';
export { PolkuGatewayReceiver } from './polku-gateway/gateway-receiver.js';
