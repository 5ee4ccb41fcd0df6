import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportResponse, OTLP_RETRY_AFTER_SECONDS, rpcStatus, type ExportAnswer } from './export-answer.js';
import type { DecodedExport, OtlpIntake } from './otlp-intake.js';
import { requestOfJson, OtlpBodyError } from './otlp-json.js';
import { decodeExportRequest } from './otlp-intake.js';
import { inflate, mediaType, readBody } from '../http-body.js';
import { apiKeyOfHeaders } from '../api-key.js';

/** The OTLP/HTTP logs path. */
export const OTLP_LOGS_PATH = '/v1/logs';

type Encoding = 'protobuf' | 'json';

/**
 * `POST /v1/logs` (OTLP/HTTP): bodies `application/x-protobuf` or `application/json`, optionally
 * `Content-Encoding: gzip`. A plain request handler, so any node:http (or https) server, or a
 * framework's raw route, can serve it. Bodies are bounded by `maxMessageBytes` as they arrive,
 * and a gzip body while it inflates (zlib stops at the bound: a bomb is refused 413 without its
 * output ever existing). Answers as the OTLP specification's HTTP section says: 200 with an
 * `ExportLogsServiceResponse` (partial success) in the request's encoding; 400/413 with a
 * `google.rpc.Status` for a body that cannot be read; 429/503 with `Retry-After` when the gateway
 * has no room or is shutting down, so exporters retry.
 */
export function otlpLogsHandler(intake: OtlpIntake): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    serve(intake, req, res).catch((err: unknown) => {
      intake.log.error({ err }, 'OTLP/HTTP request failed');
      if (!res.headersSent) plain(res, 500, 'internal error\n');
    });
  };
}

async function serve(intake: OtlpIntake, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== OTLP_LOGS_PATH) {
    req.resume();
    intake.countRequest('http', 'not_found');
    plain(res, 404, `not found: OTLP logs are POSTed to ${OTLP_LOGS_PATH}\n`);
    return;
  }
  if (req.method !== 'POST') {
    req.resume();
    intake.countRequest('http', 'invalid');
    res.setHeader('Allow', 'POST');
    plain(res, 405, 'method not allowed: POST\n');
    return;
  }
  const type = mediaType(req.headers['content-type']);
  const encoding: Encoding | undefined =
    type === 'application/x-protobuf' || type === 'application/protobuf' ? 'protobuf' : type === 'application/json' ? 'json' : undefined;
  if (encoding === undefined) {
    req.resume();
    intake.countRequest('http', 'invalid');
    plain(res, 415, `unsupported Content-Type "${type}": send application/x-protobuf or application/json\n`);
    return;
  }
  const contentEncoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (contentEncoding !== 'gzip' && contentEncoding !== 'identity') {
    req.resume();
    intake.countRequest('http', 'invalid');
    fail(res, encoding, 415, 3, `unsupported Content-Encoding "${contentEncoding}": send gzip or none`);
    return;
  }
  const max = intake.maxMessageBytes;
  const body = await readBody(req, max);
  let decoded: DecodedExport;
  if (body === 'too-large') {
    decoded = intake.unreadable('BATCH_TOO_LARGE', `body is over ${max} bytes (POLKU_MAX_MESSAGE_BYTES)`);
  } else if (contentEncoding === 'gzip') {
    const inflated = await inflate(body, max);
    if (inflated === 'too-large')
      decoded = intake.unreadable('BATCH_TOO_LARGE', `gzip body inflates past ${max} bytes (POLKU_MAX_MESSAGE_BYTES)`);
    else if (inflated instanceof Error) decoded = intake.unreadable('INVALID_BATCH', `gzip body is corrupt: ${inflated.message}`);
    else decoded = decodeBody(intake, inflated, encoding);
  } else {
    decoded = decodeBody(intake, body, encoding);
  }
  const answer = await intake.submit(decoded, 'http', apiKeyOfHeaders(req.headers));
  respond(res, encoding, answer);
}

function decodeBody(intake: OtlpIntake, body: Uint8Array, encoding: Encoding): DecodedExport {
  if (encoding === 'protobuf') return decodeExportRequest(intake, body);
  try {
    return intake.decoded(requestOfJson(body));
  } catch (err) {
    if (err instanceof OtlpBodyError)
      return intake.unreadable('INVALID_BATCH', `not an OTLP/JSON ExportLogsServiceRequest: ${err.message}`);
    throw err;
  }
}

function respond(res: ServerResponse, encoding: Encoding, answer: ExportAnswer): void {
  if (answer.kind === 'refused') {
    if (answer.retryable) res.setHeader('Retry-After', String(OTLP_RETRY_AFTER_SECONDS));
    fail(res, encoding, answer.http, answer.grpc, answer.message, answer.retryable ? OTLP_RETRY_AFTER_SECONDS : undefined);
    return;
  }
  if (encoding === 'json') {
    const json =
      answer.rejected > 0 ? { partialSuccess: { rejectedLogRecords: String(answer.rejected), errorMessage: answer.message } } : {};
    send(res, 200, 'application/json', JSON.stringify(json));
  } else {
    send(res, 200, 'application/x-protobuf', exportResponse(answer.rejected, answer.message));
  }
}

/** An error answer: a google.rpc.Status in the request's encoding, as OTLP/HTTP wants. */
function fail(res: ServerResponse, encoding: Encoding, http: number, code: number, message: string, retryAfter?: number): void {
  if (encoding === 'json') {
    send(res, http, 'application/json', JSON.stringify({ code, message }));
  } else {
    send(res, http, 'application/x-protobuf', rpcStatus(code, message, retryAfter));
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string | Uint8Array): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function plain(res: ServerResponse, status: number, text: string): void {
  send(res, status, 'text/plain', text);
}
