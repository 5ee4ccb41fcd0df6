import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  ExportLogsServiceRequest,
  ExportLogsServiceResponse,
  LogsServiceClient,
} from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { LogRecord } from '../../src/gen/opentelemetry/proto/logs/v1/logs.js';
import { scrape } from '../helpers/gateway-harness.js';
import { runPolku, serveOtlp, servePolku, type PolkuProcess } from '../helpers/polku-process.js';

function record(body: string, extra: Partial<LogRecord> = {}): LogRecord {
  return {
    timeUnixNano: 0n,
    observedTimeUnixNano: 0n,
    severityNumber: 9,
    severityText: '',
    body: { value: { $case: 'stringValue', value: body } },
    attributes: [],
    droppedAttributesCount: 0,
    flags: 0,
    traceId: new Uint8Array(0),
    spanId: new Uint8Array(0),
    eventName: '',
    ...extra,
  };
}

function request(records: LogRecord[]): ExportLogsServiceRequest {
  return {
    resourceLogs: [
      {
        resource: {
          attributes: [{ key: 'service.name', value: { value: { $case: 'stringValue', value: 'raw' } } }],
          droppedAttributesCount: 0,
          entityRefs: [],
        },
        scopeLogs: [{ scope: undefined, logRecords: records, schemaUrl: '' }],
        schemaUrl: '',
      },
    ],
  };
}

interface PartialSuccess {
  rejected: bigint;
  message: string;
}
type Answer = { response?: PartialSuccess; error?: ServiceError };

function partialSuccess(bytes: Buffer): PartialSuccess {
  const p = ExportLogsServiceResponse.decode(bytes).partialSuccess;
  return { rejected: p?.rejectedLogRecords ?? 0n, message: p?.errorMessage ?? '' };
}

/** One Export call; bytes go out as given (so a test can send what no encoder would). */
function exportRaw(port: number, body: Uint8Array): Promise<Answer> {
  const client = new LogsServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
      (b: Uint8Array) => Buffer.from(b),
      partialSuccess,
      body,
      new Metadata(),
      {},
      (error, response) => {
        client.close();
        resolve(error ? { error } : { response: response! });
      },
    );
  });
}

function exportRequest(port: number, req: ExportLogsServiceRequest): Promise<Answer> {
  return exportRaw(port, ExportLogsServiceRequest.encode(req).finish());
}

/** google.rpc.Status → the RetryInfo delay in seconds of its details, read field by field. */
function retryDelaySeconds(statusBytes: Buffer): { code: number; message: string; seconds: number | undefined } {
  const r = new BinaryReader(statusBytes);
  let code = 0;
  let message = '';
  let seconds: number | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 8) code = r.int32();
    else if (tag === 18) message = r.string();
    else if (tag === 26) {
      const any = new BinaryReader(r.bytes());
      let typeUrl = '';
      let value: Uint8Array = new Uint8Array(0);
      while (any.pos < any.len) {
        const t = any.uint32();
        if (t === 10) typeUrl = any.string();
        else if (t === 18) value = any.bytes();
        else any.skip(t & 7);
      }
      assert.equal(typeUrl, 'type.googleapis.com/google.rpc.RetryInfo');
      const info = new BinaryReader(value);
      assert.equal(info.uint32(), 10);
      const duration = new BinaryReader(info.bytes());
      assert.equal(duration.uint32(), 8);
      seconds = Number(duration.int64());
    } else r.skip(tag & 7);
  }
  return { code, message, seconds };
}

const stop = async (gw: PolkuProcess): Promise<void> => {
  if (gw.child.exitCode === null) gw.child.kill('SIGTERM');
  await gw.exited;
};

describe('OTLP/gRPC answers, from a raw client', () => {
  let gw: Awaited<ReturnType<typeof serveOtlp>>;
  before(async () => {
    gw = await serveOtlp(['--config', 'test/fixtures/otlp-held-stdout.config.ts'], {
      POLKU_BUFFER_CAPACITY: '10',
      POLKU_MAX_METADATA_BYTES: '200',
    });
  });
  after(() => stop(gw));

  test('records refused one by one are counted in partial_success; the others are taken', async () => {
    const big = { key: 'big', value: { value: { $case: 'stringValue' as const, value: 'x'.repeat(300) } } };
    const { response, error } = await exportRequest(gw.otlpGrpc, request([record('a'), record('b', { attributes: [big] })]));
    assert.equal(error, undefined);
    assert.equal(response!.rejected, 1n);
    assert.match(response!.message, /^1 log records refused: METADATA_TOO_LARGE: events\[1\]: metadata is 352 bytes, limit 200$/);
  });

  test('invalid UTF-8 → INVALID_ARGUMENT naming it; garbage → INVALID_ARGUMENT; the port keeps serving', async () => {
    const good = Buffer.from(ExportLogsServiceRequest.encode(request([record('ok')])).finish());
    const at = good.indexOf(Buffer.from('ok'));
    const bad = Buffer.from(good);
    bad[at] = 0xc3; // a lead byte followed by 'k': not UTF-8
    const utf8 = await exportRaw(gw.otlpGrpc, bad);
    assert.equal(utf8.error?.code, 3);
    assert.match(utf8.error!.details, /INVALID_BATCH: not an ExportLogsServiceRequest: a string field is not valid UTF-8/);
    const shortId = await exportRequest(gw.otlpGrpc, request([record('x'), record('y', { traceId: new Uint8Array(5) })]));
    assert.equal(shortId.error?.code, 3);
    assert.match(shortId.error!.details, /resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[1\]\.traceId is 5 bytes; OTLP wants 16 or none/);
    const garbage = await exportRaw(gw.otlpGrpc, new Uint8Array([0x0a, 0x05, 0x01]));
    assert.equal(garbage.error?.code, 3);
    assert.match(garbage.error!.details, /not an ExportLogsServiceRequest/);
  });

  test('a full buffer: RESOURCE_EXHAUSTED with google.rpc.RetryInfo in grpc-status-details-bin', async () => {
    // The emitter holds everything: fill the buffer of 10 (one taken above), then one more request.
    const fill = await exportRequest(gw.otlpGrpc, request(Array.from({ length: 9 }, (_, i) => record(`fill ${i}`))));
    assert.equal(fill.error, undefined);
    const full = await exportRequest(gw.otlpGrpc, request([record('one too many'), record('two too many')]));
    assert.equal(full.error?.code, 8, 'RESOURCE_EXHAUSTED');
    assert.match(full.error!.details, /BUFFER_FULL: buffer full \(10\/10 events\)/);
    const details = full.error!.metadata.get('grpc-status-details-bin')[0] as Buffer;
    const status = retryDelaySeconds(details);
    assert.equal(status.code, 8);
    assert.equal(status.seconds, 1);
    const m = await scrape(gw.metricsPort);
    assert.match(m, /polku_otlp_requests_total\{transport="grpc",result="refused"\} 1\n/);
    assert.match(m, /polku_otlp_requests_total\{transport="grpc",result="partial"\} 1\n/);
    assert.match(m, /polku_otlp_requests_total\{transport="grpc",result="invalid"\} 3\n/);
  });
});

describe('OTLP ports at start-up', () => {
  test('a port already taken stops start-up with an error naming the variable; off serves nothing', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const p = runPolku(['serve'], {
        POLKU_GRPC_ADDR: '127.0.0.1:0',
        POLKU_METRICS_ADDR: '127.0.0.1:0',
        POLKU_OTLP_GRPC_ADDR: `127.0.0.1:${port}`,
        POLKU_OTLP_HTTP_ADDR: 'off',
        POLKU_HTTP_ADDR: 'off',
      });
      const { code } = await p.exited;
      assert.equal(code, 1);
      assert.match(p.stderr.join('\n'), new RegExp(`POLKU_ERR_LISTEN.*127\\.0\\.0\\.1:${port} \\(POLKU_OTLP_GRPC_ADDR\\)`));
    } finally {
      taken.close();
    }
    const off = await servePolku([], { POLKU_OTLP_GRPC_ADDR: 'off', POLKU_OTLP_HTTP_ADDR: 'off' });
    try {
      assert.ok(!off.stderr.some((l) => l.includes('"otlp listening"')), 'no OTLP receiver when both sides are off');
    } finally {
      await stop(off);
    }
  });
});
