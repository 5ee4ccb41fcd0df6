import {
  constants as h2,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { inflate, gunzip } from 'node:zlib';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Registry } from 'prom-client';
import type { ListenAddress } from '../../config/env-parsers.js';
import type { Logger } from '../../observability/logger.js';
import type { ListenerTls } from '../../security/tls.js';
import { ConnectionGuard, type ConnectionLimits } from '../../server/connection-guard.js';
import { apiKeyOfHeaders } from '../api-key.js';
import { exportResponse, OTLP_RETRY_AFTER_SECONDS, rpcStatus, type ExportAnswer } from './export-answer.js';
import { decodeExportRequest, type DecodedExport, type OtlpIntake } from './otlp-intake.js';

/** The one method this server exists for. */
export const EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
/** grpc.health.v1.Health/Check, for probes pointed at the OTLP port ('' is the whole server). */
const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
/** Health requests are a service name: anything larger is not one. */
const HEALTH_MAX_BYTES = 1024;
/** The message encodings a request may use, as grpc-js's own server accepts them. */
const ACCEPT_ENCODING = 'identity,deflate,gzip';
/** gRPC's 5-byte message prefix: a compressed flag and a big-endian length. */
const PREFIX_BYTES = 5;

/** The gRPC status codes this server answers with (grpc/status.proto). */
const Status = {
  OK: 0,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

export interface OtlpGrpcH2Options {
  intake: OtlpIntake;
  connections: ConnectionLimits;
  logger: Logger;
  /** The gateway's listener TLS: served with ALPN h2, client certificates required when it has a client CA. */
  tls?: ListenerTls | undefined;
}

/**
 * OTLP/gRPC `LogsService/Export` on `node:http2` instead of grpc-js: the OTLP port serves one unary
 * method, and grpc-js's general call machinery (filters, metadata objects, a call stack per
 * request) costs about twice as much CPU per call as HTTP/2 itself (docs/benchmarks.md, "OTLP/gRPC
 * ingest"). It speaks gRPC's unary framing over HTTP/2 as the gRPC spec (PROTOCOL-HTTP2.md) writes
 * it: one length-prefixed message per request, `grpc-encoding` gzip or deflate, `grpc-timeout`,
 * the status in trailers (refusals as Trailers-Only, with `grpc-status-details-bin`); a message
 * over `POLKU_MAX_MESSAGE_BYTES` is refused from its prefix, before its bytes are buffered. The
 * connection budget is the same {@link ConnectionGuard} the grpc-js ports use. Besides Export it
 * answers `grpc.health.v1.Health/Check`; anything else (reflection included) is UNIMPLEMENTED.
 */
export class OtlpGrpcH2Server {
  private readonly server: Http2Server | Http2SecureServer;
  private readonly guard: ConnectionGuard;
  private readonly sessions = new Set<Http2Session>();
  private readonly intake: OtlpIntake;
  private stopWatching: (() => void) | undefined;
  private serving = false;

  constructor(o: OtlpGrpcH2Options) {
    this.intake = o.intake;
    const settings = { maxConcurrentStreams: o.connections.maxStreamsPerConnection };
    // grpc-js's server does the same: the session's memory is bounded by the streams and the message limit, not by nghttp2's default of 10 MB.
    const common = { settings, maxSessionMemory: Number.MAX_SAFE_INTEGER };
    const tls = o.tls;
    if (tls) {
      const options = (): object => ({
        ...tls.files.secureContextOptions(),
        ...(tls.mutual ? { requestCert: true, rejectUnauthorized: true } : {}),
      });
      const secure = createSecureServer({ ...common, ...options(), allowHTTP1: false });
      this.stopWatching = tls.files.onChange(() => secure.setSecureContext(options()));
      this.server = secure;
    } else {
      this.server = createServer(common);
    }
    this.server.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      // As grpc-js's grpc.max_connection_idle_ms does: an idle connection gets a GOAWAY (the guard closes it outright later).
      if (o.connections.idleTimeoutMs > 0) session.setTimeout(o.connections.idleTimeoutMs, () => session.close());
      // A peer's protocol error ends its session; nothing to answer.
      session.on('error', () => undefined);
    });
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.onStream(stream, headers));
    this.guard = new ConnectionGuard({
      limits: o.connections,
      // The guard's metrics carry no port label: the OTLP port's stay off /metrics rather than clash with the gateway port's.
      registry: new Registry(),
      logger: o.logger,
      onConnection: (socket: Socket) => this.server.emit('connection', socket),
    });
  }

  /** Binds `addr` (port 0: a free one) and returns the bound port. */
  listen(addr: ListenAddress): Promise<number> {
    return this.guard.listen(addr.host, addr.port);
  }

  setServing(serving: boolean): void {
    this.serving = serving;
  }

  /**
   * Stops taking connections, sends every session a GOAWAY and lets its open calls finish; what is
   * still open after `graceMs` is closed.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.serving = false;
    this.stopWatching?.();
    this.stopWatching = undefined;
    const stopped = this.guard.stopAccepting();
    const closed = [...this.sessions].map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.close(() => resolve()))));
    let force: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((resolve) => (force = setTimeout(resolve, graceMs)))]);
    clearTimeout(force);
    for (const s of this.sessions) s.destroy();
    this.guard.destroyAll();
    await stopped;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // A reset or a write after the peer left: the call is over, nothing to answer.
    stream.on('error', () => undefined);
    const contentType = headers['content-type'];
    if (headers[':method'] !== 'POST' || typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      // Not gRPC: PROTOCOL-HTTP2.md asks for 415 (and 405 for a method other than POST).
      stream.respond({ ':status': headers[':method'] !== 'POST' ? 405 : 415 }, { endStream: true });
      return;
    }
    const path = headers[':path'];
    if (path === EXPORT_PATH) new UnaryCall(stream, headers, this.intake.maxMessageBytes, (call, bytes) => this.export(call, bytes));
    else if (path === HEALTH_CHECK_PATH) new UnaryCall(stream, headers, HEALTH_MAX_BYTES, (call, bytes) => this.health(call, bytes));
    else trailersOnly(stream, Status.UNIMPLEMENTED, `${String(path)} is not served on the OTLP port (only LogsService/Export)`);
  }

  private export(call: UnaryCall, read: ReadMessage): void {
    const intake = this.intake;
    let decoded: DecodedExport;
    if (read.kind === 'message') decoded = decodeExportRequest(intake, read.bytes);
    else if (read.kind === 'too-large') {
      decoded = intake.unreadable(
        'BATCH_TOO_LARGE',
        `message is ${read.size} bytes, limit ${intake.maxMessageBytes} (POLKU_MAX_MESSAGE_BYTES)`,
      );
    } else {
      intake.countRequest('grpc', 'invalid');
      call.fail(read.status, read.message);
      return;
    }
    let answer: ExportAnswer | Promise<ExportAnswer>;
    try {
      answer = intake.submit(decoded, 'grpc', call.apiKey);
    } catch (err) {
      intake.log.error({ err }, 'OTLP Export processing threw');
      call.fail(Status.INTERNAL, 'internal error while processing the request');
      return;
    }
    if (answer instanceof Promise) {
      answer.then(
        (a) => answerExport(call, a),
        (err: unknown) => {
          intake.log.error({ err }, 'OTLP Export processing failed');
          call.fail(Status.INTERNAL, 'internal error while processing the request');
        },
      );
    } else answerExport(call, answer);
  }

  private health(call: UnaryCall, read: ReadMessage): void {
    if (read.kind !== 'message') {
      call.fail(read.kind === 'too-large' ? 8 : read.status, read.kind === 'too-large' ? 'health request too large' : read.message);
      return;
    }
    let service = '';
    try {
      const r = new BinaryReader(read.bytes);
      while (r.pos < r.len) {
        const [field, wireType] = r.tag();
        if (field === 1) service = r.string();
        else r.skip(wireType);
      }
    } catch {
      call.fail(Status.INTERNAL, 'not a grpc.health.v1.HealthCheckRequest');
      return;
    }
    if (service !== '') call.fail(Status.NOT_FOUND, `Health status unknown for service ${service}`);
    // HealthCheckResponse { status (1): SERVING = 1, NOT_SERVING = 2 }
    else call.succeed(Buffer.from([8, this.serving ? 1 : 2]));
  }
}

/** A refused Export fails with its status; a retryable one carries RetryInfo in grpc-status-details-bin. */
function answerExport(call: UnaryCall, answer: ExportAnswer): void {
  if (answer.kind === 'accepted') call.succeed(exportResponse(answer.rejected, answer.message));
  else {
    const details = answer.retryable ? rpcStatus(answer.grpc, answer.message, OTLP_RETRY_AFTER_SECONDS) : undefined;
    call.fail(answer.grpc, answer.message, details);
  }
}

// The answer of an Export that took every record (most of them), made once: node:http2 copies
// header objects before using them, and never writes into a buffer it sends.
const OK_HEADERS: OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': ACCEPT_ENCODING };
const OK_TRAILERS: OutgoingHttpHeaders = { 'grpc-status': '0' };
const RESPOND_OPTIONS = { waitForTrailers: true };
/** An empty response message (ExportLogsServiceResponse without partial_success), framed. */
const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

/** What a unary request's body turned out to be. */
type ReadMessage =
  | { readonly kind: 'message'; readonly bytes: Uint8Array }
  /** The prefix announced more than the limit (or inflating went past it): refused unread. */
  | { readonly kind: 'too-large'; readonly size: number }
  /** Not one well-formed gRPC message: the status to fail the call with. */
  | { readonly kind: 'malformed'; readonly status: number; readonly message: string };

/**
 * One unary call: reads exactly one length-prefixed message (refusing it from its prefix when over
 * `limit`, so an over-large request is never buffered), inflates it when compressed, hands it to
 * `handle` once, and answers once: a deadline (`grpc-timeout`) or the peer's reset ends it first.
 */
class UnaryCall {
  readonly apiKey: string | undefined;
  private prefix: Buffer | null = null;
  private message: Buffer | null = null;
  private filled = 0;
  private extra = false;
  private handed = false;
  private answered = false;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly limit: number,
    private readonly handle: (call: UnaryCall, read: ReadMessage) => void,
  ) {
    this.apiKey = apiKeyOfHeaders(headers);
    const timeout = headers['grpc-timeout'];
    if (typeof timeout === 'string') {
      const ms = timeoutMs(timeout);
      if (ms === undefined) {
        this.fail(Status.INTERNAL, `grpc-timeout ${timeout} is not a gRPC timeout`);
        return;
      }
      this.deadline = setTimeout(() => this.fail(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'), ms);
    }
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.onEnd());
    stream.on('close', () => {
      this.answered = true;
      clearTimeout(this.deadline);
    });
  }

  /** The request's one message, or what went wrong, is handed over exactly once. */
  private hand(read: ReadMessage): void {
    if (this.handed || this.answered) return;
    this.handed = true;
    if (read.kind !== 'message' || this.prefix?.[0] !== 1) {
      this.handle(this, read);
      return;
    }
    this.inflate(read.bytes);
  }

  private onData(chunk: Buffer): void {
    if (this.handed) return;
    let at = 0;
    if (this.message === null) {
      // Usually the prefix arrives whole at the start of the first chunk.
      const need = PREFIX_BYTES - (this.prefix?.length ?? 0);
      const head = chunk.subarray(0, need);
      this.prefix = this.prefix === null ? Buffer.from(head) : Buffer.concat([this.prefix, head]);
      at = head.length;
      if (this.prefix.length < PREFIX_BYTES) return;
      const flag = this.prefix[0]!;
      const size = this.prefix.readUInt32BE(1);
      if (flag > 1) {
        this.hand({ kind: 'malformed', status: Status.INTERNAL, message: `message prefix has compressed flag ${flag}` });
        return;
      }
      if (size > this.limit) {
        this.hand({ kind: 'too-large', size });
        return;
      }
      if (chunk.length - at >= size) {
        // The whole message in this chunk (small requests): a view, no copy.
        this.message = chunk.subarray(at, at + size);
        this.filled = size;
        if (chunk.length > at + size) this.extra = true;
        return;
      }
      this.message = Buffer.allocUnsafe(size);
    }
    const message = this.message;
    const take = Math.min(chunk.length - at, message.length - this.filled);
    chunk.copy(message, this.filled, at, at + take);
    this.filled += take;
    if (at + take < chunk.length) this.extra = true;
  }

  private onEnd(): void {
    if (this.handed) return;
    if (this.prefix === null || this.prefix.length < PREFIX_BYTES) {
      this.hand({ kind: 'malformed', status: Status.INTERNAL, message: 'a unary call carries one message; the request had none' });
    } else if (this.extra) {
      this.hand({ kind: 'malformed', status: Status.INTERNAL, message: 'a unary call carries one message; the request had more' });
    } else if (this.filled < this.message!.length) {
      this.hand({
        kind: 'malformed',
        status: Status.INTERNAL,
        message: `the request ended inside its message: ${this.filled} of ${this.message!.length} bytes`,
      });
    } else this.hand({ kind: 'message', bytes: this.message! });
  }

  /** A compressed message, inflated by its `grpc-encoding` within the limit. */
  private inflate(bytes: Uint8Array): void {
    const encoding = this.headers['grpc-encoding'];
    const method = encoding === 'gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
    if (method === undefined) {
      const message =
        encoding === undefined || encoding === 'identity'
          ? 'message is flagged compressed but grpc-encoding names no compression'
          : `grpc-encoding ${String(encoding)} is not supported (${ACCEPT_ENCODING})`;
      this.handle(this, {
        kind: 'malformed',
        status: encoding === undefined || encoding === 'identity' ? Status.INTERNAL : Status.UNIMPLEMENTED,
        message,
      });
      return;
    }
    method(bytes, { maxOutputLength: this.limit }, (err, inflated) => {
      if (this.answered) return;
      if (!err) this.handle(this, { kind: 'message', bytes: inflated });
      else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        this.handle(this, { kind: 'too-large', size: this.limit + 1 });
      else
        this.handle(this, {
          kind: 'malformed',
          status: Status.INTERNAL,
          message: `the message did not inflate (${String(encoding)}): ${err.message}`,
        });
    });
  }

  /** Status OK with one response message. */
  succeed(response: Uint8Array): void {
    if (!this.begin()) return;
    const stream = this.stream;
    let framed = EMPTY_MESSAGE;
    if (response.length !== 0) {
      framed = Buffer.allocUnsafe(PREFIX_BYTES + response.length);
      framed[0] = 0;
      framed.writeUInt32BE(response.length, 1);
      framed.set(response, PREFIX_BYTES);
    }
    stream.respond(OK_HEADERS, RESPOND_OPTIONS);
    stream.once('wantTrailers', sendOkTrailers);
    stream.end(framed);
  }

  /** A failed call: Trailers-Only, the status in the one HEADERS frame. */
  fail(status: number, message: string, details?: Uint8Array): void {
    if (!this.begin()) return;
    trailersOnly(this.stream, status, message, details);
  }

  /** Claims the one answer; false when the call was answered, timed out or reset already. */
  private begin(): boolean {
    if (this.answered || this.stream.destroyed || this.stream.headersSent) return false;
    this.answered = true;
    clearTimeout(this.deadline);
    return true;
  }
}

/**
 * A Trailers-Only answer. When the request is still being sent (refused from its prefix, or past
 * its deadline), the stream is then reset with NO_ERROR, as the gRPC spec says a server that has
 * its answer may do, so the peer stops sending what will not be read.
 */
function trailersOnly(stream: ServerHttp2Stream, status: number, message: string, details?: Uint8Array): void {
  const headers: OutgoingHttpHeaders = {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(status),
    'grpc-message': percentEncode(message),
  };
  if (details) headers['grpc-status-details-bin'] = Buffer.from(details).toString('base64');
  stream.respond(headers, { endStream: true });
  if (!stream.readableEnded) {
    stream.resume();
    stream.close(h2.NGHTTP2_NO_ERROR);
  }
}

/** `grpc-message` is percent-encoded UTF-8: bytes outside printable ASCII, and `%`. */
function percentEncode(message: string): string {
  if (!/[^\x20-\x24\x26-\x7e]/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/** `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n); undefined when it is not one. */
export function timeoutMs(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  // setTimeout's ceiling (about 24.8 days) is far beyond any export timeout.
  return Math.min(Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!, 2 ** 31 - 1);
}
