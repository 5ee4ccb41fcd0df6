import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { Client, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { Timers } from '../clock.js';
import { polkuError } from '../errors.js';
import { CertificateFiles, dialCredentials, PLAINTEXT_DIAL, type DialTlsOptions } from '../security/tls.js';
import { decodeLogsResponse, decodeLogsResponseJson, decodeRpcStatus, type PartialSuccess } from './otlp-response.js';
import type { ProbeResult } from './emitter.js';
import { grpcProbe, httpStatus, httpVerdict, probeFailure } from './probe.js';

const gzip = promisify(gzipCb);

/** The full method name of OTLP logs export over gRPC. */
export const LOGS_EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
/** A receiver asking for a longer pause than this is capped. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;
/** Response bytes kept (an ExportLogsServiceResponse or a google.rpc.Status is far smaller). */
const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Response bytes quoted in an error. */
const ERROR_BODY_BYTES = 200;

/**
 * How one Export ended:
 * - `ok`: the receiver took it; `partial.rejected` records of it were refused.
 * - `retryable`: nothing was taken; send again (after `retryAfterMs` when the receiver said).
 * - `failed`: nothing was taken and sending again will not help.
 */
export type ExportAnswer =
  | { readonly kind: 'ok'; readonly partial: PartialSuccess }
  | { readonly kind: 'retryable'; readonly error: string; readonly retryAfterMs?: number }
  | { readonly kind: 'failed'; readonly error: string };

export interface OtlpTransport {
  /** Sends one encoded ExportLogsServiceRequest. Never rejects. */
  export(request: Uint8Array): Promise<ExportAnswer>;
  /** For polku validate --probe: the collector is reachable, without exporting anything. */
  probe(signal: AbortSignal): Promise<ProbeResult>;
  close(): void;
}

export interface TransportOptions {
  /** Names the emitter in errors. */
  owner: string;
  endpoint: string;
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  timeoutMs: number;
  tls: DialTlsOptions | undefined;
  timers: () => Timers;
}

/**
 * gRPC status codes the OTLP specification calls retryable. RESOURCE_EXHAUSTED is retryable only
 * when the server sent RetryInfo (it says it can recover).
 */
const RETRYABLE_CODES = new Set<GrpcStatus>([
  GrpcStatus.CANCELLED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.ABORTED,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DATA_LOSS,
]);

const identity = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** OTLP/gRPC: unary `LogsService/Export` calls on one channel; the request bytes go out as they are. */
export class GrpcLogsTransport implements OtlpTransport {
  private readonly client: Client;
  private readonly metadata: Metadata;

  constructor(private readonly o: TransportOptions) {
    const secure = o.tls !== undefined || o.endpoint.startsWith('https://');
    if (o.tls !== undefined && o.endpoint.startsWith('http://')) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${o.owner}: tls is set but the endpoint is http://: use host:port or https://`);
    }
    const dial = secure ? dialCredentials(o.owner, o.tls ?? {}) : PLAINTEXT_DIAL;
    const target = o.endpoint.replace(/^https?:\/\//, '').replace(/\/+$/, '');
    this.client = new Client(target, dial.credentials, {
      ...dial.channelOptions,
      // grpc-js: 2 = gzip for every call of the channel.
      ...(o.compression === 'gzip' ? { 'grpc.default_compression_algorithm': 2 } : {}),
      'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
    });
    this.metadata = new Metadata();
    for (const [k, v] of Object.entries(o.headers)) this.metadata.set(k.toLowerCase(), v);
  }

  export(request: Uint8Array): Promise<ExportAnswer> {
    return new Promise((resolve) => {
      const deadline = Date.now() + this.o.timeoutMs; // grpc-js deadlines are wall-clock dates
      try {
        this.client.makeUnaryRequest<Uint8Array, PartialSuccess>(
          LOGS_EXPORT_PATH,
          identity,
          (b: Buffer) => decodeLogsResponse(b),
          request,
          this.metadata.clone(),
          { deadline },
          (err, response) => resolve(err ? grpcFailure(err) : { kind: 'ok', partial: response ?? { rejected: 0, message: '' } }),
        );
      } catch (err) {
        resolve({ kind: 'retryable', error: `OTLP/gRPC call failed: ${(err as Error).message}` });
      }
    });
  }

  /** The channel connects (OTLP/gRPC has no unary call that exports nothing). */
  probe(signal: AbortSignal): Promise<ProbeResult> {
    return grpcProbe(this.client, `${this.o.endpoint} (OTLP/gRPC)`, signal);
  }

  close(): void {
    this.client.close();
  }
}

/** A failed gRPC Export as the OTLP specification reads it. */
export function grpcFailure(err: ServiceError): ExportAnswer {
  const name = GrpcStatus[err.code] ?? String(err.code);
  const error = `OTLP/gRPC ${name}: ${err.details}`;
  const details = err.metadata?.get('grpc-status-details-bin')[0];
  const retryAfterMs = details instanceof Buffer ? capRetry(decodeRpcStatus(details).retryDelayMs) : undefined;
  if (RETRYABLE_CODES.has(err.code) || (err.code === GrpcStatus.RESOURCE_EXHAUSTED && retryAfterMs !== undefined)) {
    return retryAfterMs === undefined ? { kind: 'retryable', error } : { kind: 'retryable', error, retryAfterMs };
  }
  return { kind: 'failed', error };
}

/** OTLP/HTTP: `POST <endpoint>/v1/logs` with `application/x-protobuf`, keep-alive connections. */
export class HttpLogsTransport implements OtlpTransport {
  private readonly url: URL;
  private readonly transport: typeof http | typeof https;
  private agent: http.Agent;
  private readonly stopWatching: (() => void) | undefined;

  constructor(private readonly o: TransportOptions) {
    this.url = logsUrl(o.owner, o.endpoint);
    for (const [key, value] of Object.entries(o.headers)) {
      try {
        http.validateHeaderName(key);
        http.validateHeaderValue(key, value);
      } catch (err) {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${o.owner}: header ${JSON.stringify(key)}: ${(err as Error).message}`);
      }
    }
    const secure = this.url.protocol === 'https:';
    this.transport = secure ? https : http;
    if (o.tls !== undefined && !secure) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${o.owner}: tls is set but the endpoint is http://: use https://`);
    }
    if (o.tls === undefined) {
      this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 4 });
    } else {
      const tls = o.tls;
      const files = new CertificateFiles(
        tls,
        { cert: `${o.owner}: tls.certFile`, key: `${o.owner}: tls.keyFile`, ca: `${o.owner}: tls.caFile` },
        'POLKU_ERR_PIPELINE_INVALID',
      );
      const agent = (): https.Agent =>
        new https.Agent({
          keepAlive: true,
          maxSockets: 4,
          ...files.secureContextOptions(),
          ...(tls.serverName ? { servername: tls.serverName } : {}),
        });
      this.agent = agent();
      this.stopWatching = files.onChange(() => {
        const old = this.agent;
        this.agent = agent();
        const t = o.timers().setTimeout(() => old.destroy(), o.timeoutMs);
        if (typeof t === 'object' && 'unref' in t) t.unref?.();
      });
    }
  }

  async export(request: Uint8Array): Promise<ExportAnswer> {
    let body: Uint8Array = request;
    const headers: Record<string, string> = { ...this.o.headers, 'Content-Type': 'application/x-protobuf' };
    if (this.o.compression === 'gzip') {
      body = await gzip(request);
      headers['Content-Encoding'] = 'gzip';
    }
    headers['Content-Length'] = String(body.length);
    return new Promise((resolve) => {
      let settled = false;
      const finish = (a: ExportAnswer): void => {
        if (settled) return;
        settled = true;
        this.o.timers().clearTimeout(timer);
        resolve(a);
      };
      let req: http.ClientRequest | undefined;
      const timer = this.o.timers().setTimeout(() => {
        finish({ kind: 'retryable', error: `OTLP/HTTP timed out after ${this.o.timeoutMs} ms` });
        req?.destroy();
      }, this.o.timeoutMs);
      try {
        req = this.transport.request(this.url, { method: 'POST', agent: this.agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept < MAX_RESPONSE_BYTES) chunks.push(c);
            kept += c.length;
          });
          res.on('end', () => finish(judgeHttp(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
          res.on('error', (err) => finish({ kind: 'retryable', error: `OTLP/HTTP response failed: ${err.message}` }));
          res.on('close', () => finish({ kind: 'retryable', error: 'OTLP/HTTP connection closed before the response was complete' }));
        });
        req.on('error', (err) => finish({ kind: 'retryable', error: `OTLP/HTTP connection failed: ${describe(err)}` }));
        req.end(body);
      } catch (err) {
        finish({ kind: 'retryable', error: `OTLP/HTTP request failed: ${describe(err as Error)}` });
      }
    });
  }

  /** One HEAD request with the emitter's headers: any answer is reachable, 401/403 refuse the credentials. */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    const target = `${this.url.origin}${this.url.pathname}`;
    try {
      const status = await httpStatus(this.transport, this.url, { method: 'HEAD', headers: this.o.headers, agent: this.agent, signal });
      return httpVerdict(target, status, 'check the authorization headers (headers) or the client certificate (tls)');
    } catch (err) {
      return probeFailure(target, err, signal);
    }
  }

  close(): void {
    this.stopWatching?.();
    this.agent.destroy();
  }
}

/** An OTLP/HTTP answer as the specification reads it: 429, 502, 503, 504 retryable; other non-2xx failed. */
export function judgeHttp(status: number, headers: http.IncomingHttpHeaders, body: Buffer): ExportAnswer {
  const json = String(headers['content-type'] ?? '').startsWith('application/json');
  if (status >= 200 && status < 300) {
    try {
      if (body.length === 0) return { kind: 'ok', partial: { rejected: 0, message: '' } };
      return { kind: 'ok', partial: json ? decodeLogsResponseJson(body.toString('utf8')) : decodeLogsResponse(body) };
    } catch {
      // A 2xx whose body is not a response: the records were taken.
      return { kind: 'ok', partial: { rejected: 0, message: '' } };
    }
  }
  const message = json || body.length === 0 ? '' : (decodeRpcStatus(body).message ?? '');
  const text = message !== '' ? message : body.subarray(0, ERROR_BODY_BYTES).toString('utf8');
  const error = `OTLP/HTTP ${status}: ${text}`;
  if (status === 429 || status === 502 || status === 503 || status === 504) {
    const retryAfterMs = capRetry(parseRetryAfter(headers['retry-after']));
    return retryAfterMs === undefined ? { kind: 'retryable', error } : { kind: 'retryable', error, retryAfterMs };
  }
  return { kind: 'failed', error };
}

/** `<endpoint>/v1/logs`, unless the endpoint already names that path. */
export function logsUrl(owner: string, endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: endpoint ${JSON.stringify(endpoint)} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: an http endpoint must start with http:// or https://, got ${url.protocol}//`);
  }
  if (!url.pathname.endsWith('/v1/logs')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/logs`;
  return url;
}

/** `Retry-After`: delay-seconds or an HTTP date. */
function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function capRetry(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}
