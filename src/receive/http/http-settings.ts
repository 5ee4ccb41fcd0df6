import type { ListenAddress } from '../../config/env-parsers.js';
import { DEFAULT_LIMITS } from '../../ingest/intake-rules.js';

/** POLKU_HTTP_ADDR: the HTTP front door (`POST /v1/events`). */
export const DEFAULT_HTTP_ADDR: ListenAddress = Object.freeze({ host: '0.0.0.0', port: 8080 });
/** POLKU_HTTP_MAX_BODY_BYTES: the gRPC message limit's default, so one batch fits either way in. */
export const DEFAULT_HTTP_MAX_BODY_BYTES = DEFAULT_LIMITS.maxMessageBytes;
/** POLKU_HTTP_REQUEST_TIMEOUT_MS: the whole request (headers and body) must arrive within this. */
export const DEFAULT_HTTP_REQUEST_TIMEOUT_MS = 30_000;
/** An event's source when neither the event nor the `X-Polku-Source` header names one. */
export const HTTP_DEFAULT_SOURCE = 'http';
/** What a retryable refusal (429, 503) tells the caller to wait, in `Retry-After`. */
export const HTTP_RETRY_AFTER_SECONDS = 1;
/** Idle keep-alive connections are kept this long: past the 60 s idle timeouts of common load balancers. */
export const HTTP_KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Where the HTTP front door listens, and its bounds. `addr` undefined (`off`): not served. */
export interface HttpSettings {
  addr?: ListenAddress | undefined;
  /** Largest request body, as sent and once inflated (default: 4 MiB, the gRPC message limit). */
  maxBodyBytes?: number;
  /** Longest a request may take to arrive (default 30 s). */
  requestTimeoutMs?: number;
}
