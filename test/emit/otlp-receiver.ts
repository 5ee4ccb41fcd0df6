/**
 * An OTLP logs receiver for the OtlpEmitter tests, decoding with the OpenTelemetry JS exporter's
 * own generated code (protobufjs, compiled from opentelemetry-proto by the OpenTelemetry project
 * and shipped in @opentelemetry/otlp-grpc-exporter-base), not with ours: the emitter's hand-written
 * encoder is checked against the published definitions.
 */
import { createRequire } from 'node:module';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { Metadata, Server, ServerCredentials, type status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

const root: any = require('@opentelemetry/otlp-grpc-exporter-base/build/src/generated/root.js');
const v1 = root.opentelemetry.proto.collector.logs.v1;

/** A decoded LogRecord with plain values (int64 as strings, bytes as hex). */
export interface Record_ {
  resource: Record<string, unknown>;
  scope: string;
  scopeVersion: string;
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: { stringValue?: string; bytesValue?: string; structured?: unknown } | undefined;
  attributes: Record<string, string>;
  traceId: string;
  spanId: string;
}

/** What the receiver answers to the next request; once the script is used up, plain success. */
export type Answer =
  | { kind: 'ok' }
  | { kind: 'partial'; rejected: number; message: string }
  | { kind: 'grpc-error'; code: status; message: string; retryDelayMs?: number }
  | { kind: 'http-status'; status: number; retryAfter?: string; body?: string };

export interface Receiver {
  address: string;
  /** Records taken (answers other than errors), in arrival order. */
  records: Record_[];
  /** Requests seen (all answers), with their record counts. */
  requests: number[];
  /** Headers of the last request (gRPC metadata or HTTP headers). */
  lastHeaders: Record<string, string>;
  /** Content-Encoding of the last HTTP request. */
  lastEncoding: string;
  script: Answer[];
  close(): Promise<void>;
}

export function decodeRecords(bytes: Uint8Array): Record_[] {
  const msg = v1.ExportLogsServiceRequest.decode(bytes);
  const obj = v1.ExportLogsServiceRequest.toObject(msg, { longs: String, bytes: String, defaults: true, oneofs: true });
  const out: Record_[] = [];
  for (const rl of obj.resourceLogs) {
    const resource = kv(rl.resource?.attributes ?? []);
    for (const sl of rl.scopeLogs) {
      for (const r of sl.logRecords) {
        out.push({
          resource,
          scope: sl.scope?.name ?? '',
          scopeVersion: sl.scope?.version ?? '',
          timeUnixNano: r.timeUnixNano,
          observedTimeUnixNano: r.observedTimeUnixNano,
          severityNumber: r.severityNumber,
          severityText: r.severityText,
          body: r.body
            ? r.body.value === 'stringValue'
              ? { stringValue: r.body.stringValue }
              : r.body.value === 'bytesValue'
                ? { bytesValue: Buffer.from(r.body.bytesValue, 'base64').toString('hex') }
                : { structured: plainOf(r.body) }
            : undefined,
          attributes: kv(r.attributes),
          traceId: Buffer.from(r.traceId, 'base64').toString('hex'),
          spanId: Buffer.from(r.spanId, 'base64').toString('hex'),
        });
      }
    }
  }
  return out;
}

/** An AnyValue (toObject form) as a plain value: ints as numbers, kvlists as objects. */

function plainOf(v: any): unknown {
  switch (v?.value) {
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'intValue':
      return Number(v.intValue);
    case 'doubleValue':
      return v.doubleValue;
    case 'arrayValue':
      return v.arrayValue.values.map(plainOf);
    case 'kvlistValue':
      return Object.fromEntries(v.kvlistValue.values.map((e: any) => [e.key, plainOf(e.value)]));
    default:
      return null;
  }
}

function kv(list: Array<{ key: string; value: { stringValue?: string } }>): Record<string, string> {
  const o: Record<string, string> = {};
  for (const a of list) o[a.key] = a.value.stringValue ?? '';
  return o;
}

function responseBytes(rejected: number, message: string): Buffer {
  const r = v1.ExportLogsServiceResponse.create(
    rejected > 0 || message ? { partialSuccess: { rejectedLogRecords: rejected, errorMessage: message } } : {},
  );
  return Buffer.from(v1.ExportLogsServiceResponse.encode(r).finish());
}

/** google.rpc.Status{code, message, details: [RetryInfo]} written with protobufjs' writer. */
function statusDetails(code: number, message: string, retryDelayMs: number): Buffer {
  const duration = protobuf.Writer.create()
    .uint32(8)
    .int64(Math.floor(retryDelayMs / 1000))
    .uint32(16)
    .int32((retryDelayMs % 1000) * 1e6)
    .finish();
  const retryInfo = protobuf.Writer.create().uint32(10).bytes(duration).finish();
  const any = protobuf.Writer.create().uint32(10).string('type.googleapis.com/google.rpc.RetryInfo').uint32(18).bytes(retryInfo).finish();
  return Buffer.from(protobuf.Writer.create().uint32(8).int32(code).uint32(18).string(message).uint32(26).bytes(any).finish());
}

function base(): Omit<Receiver, 'address' | 'close'> {
  return { records: [], requests: [], lastHeaders: {}, lastEncoding: '', script: [] };
}

export async function startGrpcReceiver(): Promise<Receiver> {
  const server = new Server();
  const r = base() as Receiver;
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      Export: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
        const records = decodeRecords(call.request);
        r.requests.push(records.length);
        r.lastHeaders = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
        const answer = r.script.shift() ?? { kind: 'ok' };
        if (answer.kind === 'grpc-error') {
          const trailer = new Metadata();
          if (answer.retryDelayMs !== undefined) {
            trailer.set('grpc-status-details-bin', statusDetails(answer.code, answer.message, answer.retryDelayMs));
          }
          callback({ code: answer.code, details: answer.message, metadata: trailer });
          return;
        }
        r.records.push(...records);
        callback(null, answer.kind === 'partial' ? responseBytes(answer.rejected, answer.message) : responseBytes(0, ''));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  r.address = `127.0.0.1:${port}`;
  r.close = () => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  return r;
}

export async function startHttpReceiver(): Promise<Receiver> {
  const r = base() as Receiver;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/logs' || req.headers['content-type'] !== 'application/x-protobuf') {
        res.writeHead(404).end(`unexpected ${req.method} ${req.url} ${req.headers['content-type']}`);
        return;
      }
      r.lastEncoding = String(req.headers['content-encoding'] ?? '');
      r.lastHeaders = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      let body = Buffer.concat(chunks);
      if (r.lastEncoding === 'gzip') body = gunzipSync(body);
      const records = decodeRecords(body);
      r.requests.push(records.length);
      const answer = r.script.shift() ?? { kind: 'ok' };
      if (answer.kind === 'http-status') {
        res.writeHead(answer.status, answer.retryAfter ? { 'Retry-After': answer.retryAfter } : {}).end(answer.body ?? '');
        return;
      }
      r.records.push(...records);
      const bytes = answer.kind === 'partial' ? responseBytes(answer.rejected, answer.message) : responseBytes(0, '');
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf' }).end(bytes);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}
