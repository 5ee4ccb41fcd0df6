/**
 * The one catalogue of coded errors (the folder src/errors/ holds it; this file is its index, so
 * `../errors.js` imports keep working).
 *
 * Two families, each one table with what callers see for every code:
 * - {@link AckCodes}: what an Ack says about a refused event or message, with its gRPC and HTTP
 *   status. These strings are the public contract (agents branch on them): they never change
 *   meaning. Every receiver answers unary calls through {@link refusalOf}, and drop reasons derive
 *   from these codes ({@link dropReasonOf}).
 * - {@link ErrorCodes}: failures and refusals of the gateway itself (configuration, options,
 *   storage, the PluginRegistry and Admin services), each a `POLKU_ERR_*` code with a message
 *   template, whether it is retryable, and its gRPC and HTTP status; raised as a
 *   {@link PolkuError} through {@link polkuError}.
 */
export {
  ACK_DROP_REASONS,
  AckCodes,
  DELIVERY_DROP_REASONS,
  DropReasons,
  dropReasonOf,
  isAckCode,
  refusalOf,
  type AckCode,
  type AckCodeInfo,
  type AckSummary,
  type DropReason,
} from './errors/ack-codes.js';
export {
  ErrorCodes,
  PolkuError,
  errorInfo,
  fillTemplate,
  isPolkuError,
  polkuError,
  type ErrorCode,
  type ErrorCodeInfo,
} from './errors/error-codes.js';
export type { GrpcStatusName } from './errors/status.js';
export { STORAGE_ERROR_CODES, StorageError, type StorageErrorCode } from './errors/storage-error.js';
