import type { GrpcStatusName } from './status.js';

/** One row of {@link ErrorCodes}. */
export interface ErrorCodeInfo {
  /**
   * The message template: `%s` stands for the call's arguments in turn (fastify's `createError`
   * style). Most call sites pass one ready-made detail, which the template of `'%s'` codes keeps
   * exactly; the text before it is what the code means in general.
   */
  readonly message: string;
  /** Whether the same operation can succeed later without anything being changed. */
  readonly retryable: boolean;
  /** The gRPC status a caller sees for this error (registry and admin refusals: what clients see today). */
  readonly grpc: GrpcStatusName;
  /** The HTTP status a caller sees for this error. */
  readonly http: number;
}

/**
 * Codes of the gateway's own failures: start-up, configuration, storage, and the refusals of its
 * control-plane services (PluginRegistry, Admin). The gRPC statuses of registry and admin codes
 * are the wire contract of those services; never change one.
 */
export const ErrorCodes = {
  // Start-up and configuration: a person fixes these, nothing retries.
  POLKU_ERR_ENV_INVALID: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },
  POLKU_ERR_CONFIG_NOT_FOUND: { message: '%s', retryable: false, grpc: 'NOT_FOUND', http: 404 },
  POLKU_ERR_CONFIG_INVALID: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },
  POLKU_ERR_PIPELINE_INVALID: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },
  /** An option passed to a component's constructor is out of range or of the wrong type. */
  POLKU_ERR_OPTION_INVALID: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },
  POLKU_ERR_LISTEN: { message: '%s', retryable: true, grpc: 'UNAVAILABLE', http: 503 },
  POLKU_ERR_CLI_USAGE: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },
  /** A CLI command found no gateway where it looked (exit 1: the command line was fine). */
  POLKU_ERR_CLI_UNREACHABLE: { message: '%s', retryable: true, grpc: 'UNAVAILABLE', http: 503 },
  /** A tenant table (pipeline module `.tenants([...])` or POLKU_TENANTS_FILE) names a field wrongly. */
  POLKU_ERR_TENANTS_INVALID: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },

  // The durable log.
  POLKU_ERR_LOG_DAMAGED: { message: '%s', retryable: false, grpc: 'DATA_LOSS', http: 500 },
  /** The disk (or the log's byte budget) is full; room comes back as emitters catch up. */
  POLKU_ERR_STORAGE_FULL: { message: '%s', retryable: true, grpc: 'RESOURCE_EXHAUSTED', http: 503 },
  /** Any other I/O error of the log or the cursor file. */
  POLKU_ERR_STORAGE_IO: { message: '%s', retryable: true, grpc: 'UNAVAILABLE', http: 503 },
  /** The log was used after close (shutdown). */
  POLKU_ERR_STORAGE_CLOSED: { message: 'the log is closed', retryable: false, grpc: 'UNAVAILABLE', http: 503 },

  // polku.v1.PluginRegistry, in the order Register checks them.
  POLKU_ERR_REGISTRY_UNAUTHENTICATED: { message: '%s', retryable: false, grpc: 'UNAUTHENTICATED', http: 401 },
  POLKU_ERR_REGISTRY_RATE_LIMITED: {
    message: 'too many registrations; try again in %s ms',
    retryable: true,
    grpc: 'RESOURCE_EXHAUSTED',
    http: 429,
  },
  POLKU_ERR_REGISTRY_INVALID: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },
  POLKU_ERR_REGISTRY_ADDRESS_DENIED: { message: '%s', retryable: false, grpc: 'PERMISSION_DENIED', http: 403 },
  /** A claim outside the caller's allowance: a name, route name or source its identity may not take, or a source agents send on. */
  POLKU_ERR_REGISTRY_CLAIM_DENIED: { message: '%s', retryable: false, grpc: 'PERMISSION_DENIED', http: 403 },
  POLKU_ERR_REGISTRY_NAME_TAKEN: { message: '%s', retryable: false, grpc: 'ALREADY_EXISTS', http: 409 },
  POLKU_ERR_REGISTRY_FULL: { message: '%s', retryable: true, grpc: 'RESOURCE_EXHAUSTED', http: 503 },
  /** The plugin (or its host name) did not answer in time; it may be starting. */
  POLKU_ERR_PLUGIN_UNREACHABLE: { message: '%s', retryable: true, grpc: 'UNAVAILABLE', http: 503 },
  /** The plugin answered, but as something else than registered, or unhealthy. */
  POLKU_ERR_PLUGIN_MISMATCH: { message: '%s', retryable: false, grpc: 'FAILED_PRECONDITION', http: 400 },
  /** The table is not started yet, or the gateway is shutting down. */
  POLKU_ERR_REGISTRY_UNAVAILABLE: { message: '%s', retryable: true, grpc: 'UNAVAILABLE', http: 503 },
  /** A Kubernetes Service's annotations do not describe a usable plugin (discovery logs it and retries later). */
  POLKU_ERR_DISCOVERY_INVALID: { message: '%s', retryable: false, grpc: 'FAILED_PRECONDITION', http: 400 },
  /** Start-up: an open registry (no token, no identities) would listen beyond loopback. */
  POLKU_ERR_REGISTRY_OPEN: { message: '%s', retryable: false, grpc: 'FAILED_PRECONDITION', http: 400 },
  POLKU_ERR_REGISTRY_NOT_FOUND: { message: 'no registered plugin has this id', retryable: false, grpc: 'NOT_FOUND', http: 404 },

  // polku.v1.Admin and /admin (dead letters and replay).
  POLKU_ERR_ADMIN_NOT_LOOPBACK: { message: '%s', retryable: false, grpc: 'PERMISSION_DENIED', http: 403 },
  POLKU_ERR_ADMIN_UNAUTHENTICATED: { message: '%s', retryable: false, grpc: 'UNAUTHENTICATED', http: 401 },
  POLKU_ERR_ADMIN_NOT_DURABLE: {
    message: 'durable mode is off: there is no log to replay and no dead letters',
    retryable: false,
    grpc: 'FAILED_PRECONDITION',
    http: 404,
  },
  POLKU_ERR_ADMIN_NOT_FOUND: { message: 'no dead letter %s (never was, or purged)', retryable: false, grpc: 'NOT_FOUND', http: 404 },
  POLKU_ERR_ADMIN_INVALID: { message: '%s', retryable: false, grpc: 'INVALID_ARGUMENT', http: 400 },
  /** `GET /admin/tap` beyond the taps allowed open at once. */
  POLKU_ERR_ADMIN_BUSY: { message: '%s', retryable: true, grpc: 'RESOURCE_EXHAUSTED', http: 429 },

  // The HTTP front door (src/receive/http): requests it cannot route; what it routes is answered with Ack codes.
  POLKU_ERR_HTTP_NOT_FOUND: { message: 'not found: %s', retryable: false, grpc: 'NOT_FOUND', http: 404 },
  POLKU_ERR_HTTP_METHOD_NOT_ALLOWED: { message: 'method not allowed: %s', retryable: false, grpc: 'UNIMPLEMENTED', http: 405 },
  POLKU_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    message: 'unsupported media type: %s',
    retryable: false,
    grpc: 'INVALID_ARGUMENT',
    http: 415,
  },
} as const satisfies Record<`POLKU_ERR_${string}`, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error of the gateway itself, with a stable code and, from the catalogue, how callers see it. */
export class PolkuError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolkuError';
    this.code = code;
  }

  /** Whether the operation can succeed later unchanged. */
  get retryable(): boolean {
    return ErrorCodes[this.code].retryable;
  }

  /** The gRPC status callers get, by name. */
  get grpcStatus(): GrpcStatusName {
    return ErrorCodes[this.code].grpc;
  }

  /** The HTTP status callers get. */
  get httpStatus(): number {
    return ErrorCodes[this.code].http;
  }
}

/**
 * Builds a {@link PolkuError} from the code's template: `polkuError('POLKU_ERR_ENV_INVALID', 'POLKU_BATCH_SIZE must be …')`.
 * Each `%s` of the template takes the next argument; an argument that is an Error (or any value
 * after the template's placeholders run out) is the `cause`, as `polkuError(code, message, cause)`
 * always allowed. A code whose template has no `%s` needs no arguments.
 */
export function polkuError(code: ErrorCode, ...args: unknown[]): PolkuError {
  const { message, used } = fillTemplate(code, args);
  const cause = args[used];
  return new PolkuError(code, message, cause === undefined ? undefined : { cause });
}

/**
 * The message of `code` with its `%s` placeholders filled from `args` in turn, and how many
 * arguments that took (a placeholder with no argument left stays as it is).
 */
export function fillTemplate(code: ErrorCode, args: readonly unknown[]): { message: string; used: number } {
  let used = 0;
  const message = ErrorCodes[code].message.replace(/%s/g, () => (used < args.length ? String(args[used++]) : '%s'));
  return { message, used };
}

/**
 * True for a {@link PolkuError} from any copy of this module: a pipeline module loaded through
 * tsx gets its own copy, so `instanceof` alone would miss its errors.
 */
export function isPolkuError(err: unknown): err is PolkuError {
  return (
    err instanceof PolkuError ||
    (err instanceof Error &&
      err.name === 'PolkuError' &&
      typeof (err as Error & { code?: unknown }).code === 'string' &&
      Object.hasOwn(ErrorCodes, (err as Error & { code: string }).code))
  );
}

/** The row of `code`, for transports mapping a {@link PolkuError} to their status. */
export function errorInfo(code: ErrorCode): ErrorCodeInfo {
  return ErrorCodes[code];
}
