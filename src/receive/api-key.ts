import type { Metadata } from '@grpc/grpc-js';
import type { IncomingHttpHeaders } from 'node:http';
import type { IntakeRequest } from '../hub/intake-request.js';

/** The gRPC metadata entry (and, in any case, the HTTP header) a caller's API key travels in. */
export const API_KEY_METADATA = 'x-api-key';

/** The API key of a gRPC call, as sent (the first `x-api-key` entry); undefined without one. */
export function apiKeyOfMetadata(metadata: Metadata | undefined): string | undefined {
  const value = metadata?.get(API_KEY_METADATA)[0];
  return typeof value === 'string' ? value : undefined;
}

/** The API key of an HTTP request (`X-API-Key`); undefined without one. */
export function apiKeyOfHeaders(headers: IncomingHttpHeaders): string | undefined {
  const value = headers[API_KEY_METADATA];
  return typeof value === 'string' ? value : Array.isArray(value) ? value[0] : undefined;
}

/** `request` with the caller's key attached (unchanged when there is none). */
export function withApiKey(request: IntakeRequest, apiKey: string | undefined): IntakeRequest {
  return apiKey === undefined ? request : { ...request, apiKey };
}
