import { ErrorCodes, type ErrorCode } from './error-codes.js';
import type { GrpcStatusName } from './status.js';

/**
 * The durable log's short codes and their rows in the catalogue. The short codes stay because
 * intake branches on them (`STORAGE_FULL` becomes the Ack code of the same name).
 */
export const STORAGE_ERROR_CODES = {
  /** The disk (or quota) is full. */
  STORAGE_FULL: 'POLKU_ERR_STORAGE_FULL',
  /** Any other I/O error. */
  STORAGE_IO: 'POLKU_ERR_STORAGE_IO',
  /** The log was closed. */
  STORAGE_CLOSED: 'POLKU_ERR_STORAGE_CLOSED',
} as const satisfies Record<string, ErrorCode>;

export type StorageErrorCode = keyof typeof STORAGE_ERROR_CODES;

/** A failure of the durable log (segments or the cursor file), with its row in the error catalogue. */
export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }

  /** The catalogue's code (`POLKU_ERR_STORAGE_*`). */
  get errorCode(): ErrorCode {
    return STORAGE_ERROR_CODES[this.code];
  }

  /** Whether the write can succeed later (a full disk frees up as emitters catch up). */
  get retryable(): boolean {
    return ErrorCodes[this.errorCode].retryable;
  }

  get grpcStatus(): GrpcStatusName {
    return ErrorCodes[this.errorCode].grpc;
  }

  get httpStatus(): number {
    return ErrorCodes[this.errorCode].http;
  }
}
