import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as HttpLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { ExportLogsServiceRequest } from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { EventJson } from '../../src/emit/event-json.js';
import { sample, scrape, until } from '../helpers/gateway-harness.js';
import { serveOtlp, stdoutEvents, type OtlpGateway, type PolkuProcess } from '../helpers/polku-process.js';

/** The events the stdout emitter wrote, from `source`. */
function eventsOut(gw: PolkuProcess, source: string): EventJson[] {
  return stdoutEvents(gw).filter((e) => e.source === source);
}

/** A series' value in a scrape, 0 when absent. */
const count = (text: string, series: string): number => sample(text, series) ?? 0;

const stop = async (gw: PolkuProcess): Promise<void> => {
  if (gw.child.exitCode === null) gw.child.kill('SIGTERM');
  await gw.exited;
};

describe('OTLP in: the OpenTelemetry JS SDK over gRPC, to polku serve', () => {
  let gw: OtlpGateway;
  before(async () => {
    gw = await serveOtlp([]);
  });
  after(() => stop(gw));

  test('every record arrives once on stdout, mapped as the README table says', async () => {
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'checkout', 'k8s.pod.name': 'checkout-7f9c' }),
      processors: [
        new BatchLogRecordProcessor({
          exporter: new GrpcLogExporter({ url: `http://127.0.0.1:${gw.otlpGrpc}` }),
          scheduledDelayMillis: 50,
        }),
      ],
    });
    const logger = provider.getLogger('payments', '1.2.3');
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const spanId = 'b7ad6b7169203331';
    const ctx = trace.setSpanContext(context.active(), { traceId, spanId, traceFlags: TraceFlags.SAMPLED });
    logger.emit({
      body: 'card declined',
      severityNumber: 17,
      severityText: 'ERROR',
      timestamp: [1_700_000_000, 123_456_789],
      attributes: { 'event.name': 'payment.declined', 'user.id': 'u-1', attempts: 3, retry: true },
      context: ctx,
    });
    logger.emit({ body: { amount: 12.5, items: ['a', 'b'], nested: { ok: false } }, severityNumber: 9, timestamp: [1_700_000_001, 1] });
    for (let i = 0; i < 48; i++) logger.emit({ body: `line ${i}`, severityNumber: 1 + (i % 24) });
    await provider.forceFlush();
    await until(() => eventsOut(gw, 'checkout').length >= 50, '50 events on stdout', 20_000);
    await provider.shutdown();
    const out = eventsOut(gw, 'checkout');
    assert.equal(out.length, 50, 'each record exactly once');
    assert.equal(new Set(out.map((e) => e.id)).size, 50, 'every event has its own id (a ULID)');

    const declined = out.find((e) => e.payload === 'card declined')!;
    assert.equal(declined.event_type, 'payment.declined');
    assert.equal(declined.severity, 'SEVERITY_ERROR');
    assert.equal(declined.timestamp_unix_ns, '1700000000123456789', 'nanoseconds exact');
    assert.match(declined.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.deepEqual(Object.fromEntries(Object.entries(declined.metadata).filter(([k]) => !k.startsWith('telemetry.'))), {
      'service.name': 'checkout',
      'k8s.pod.name': 'checkout-7f9c',
      'otel.scope.name': 'payments',
      'otel.scope.version': '1.2.3',
      'otel.attr.event.name': 'payment.declined',
      'otel.attr.user.id': 'u-1',
      'otel.attr.attempts': '3',
      'otel.attr.retry': 'true',
      trace_id: traceId,
      span_id: spanId,
      severity_text: 'ERROR',
      'polku.payload.format': 'text',
    });

    const map = out.find((e) => e.metadata['polku.payload.format'] === 'json')!;
    assert.deepEqual(JSON.parse(map.payload!), { amount: 12.5, items: ['a', 'b'], nested: { ok: false } });
    assert.equal(map.severity, 'SEVERITY_INFO');
    assert.equal(map.timestamp_unix_ns, '1700000001000000001');
    assert.equal(map.event_type, '');

    // Severity numbers 1..24 → DEBUG (1-8), INFO, WARNING, ERROR, CRITICAL (21-24).
    const expected = ['SEVERITY_DEBUG', 'SEVERITY_INFO', 'SEVERITY_WARNING', 'SEVERITY_ERROR', 'SEVERITY_CRITICAL'];
    for (let i = 0; i < 48; i++) {
      const n = 1 + (i % 24);
      const e = out.find((x) => x.payload === `line ${i}`)!;
      assert.equal(e.severity, expected[n <= 8 ? 0 : Math.floor((n - 1) / 4) - 1], `severity number ${n}`);
    }
    const metrics = await scrape(gw.metricsPort);
    assert.ok(count(metrics, 'polku_otlp_requests_total{transport="grpc",result="accepted"}') >= 1);
  });
});

describe('OTLP in: the SDK over HTTP (JSON, gzip), a flood beyond the buffer', () => {
  test('the exporter is answered 429 with Retry-After, retries, and every record arrives exactly once', async () => {
    const gw = await serveOtlp(['--config', 'test/fixtures/otlp-held-stdout.config.ts'], { POLKU_BUFFER_CAPACITY: '200' });
    try {
      const provider = new LoggerProvider({
        resource: resourceFromAttributes({ 'service.name': 'flood' }),
        processors: [
          new BatchLogRecordProcessor({
            exporter: new HttpLogExporter({
              url: `http://127.0.0.1:${gw.otlpHttp}/v1/logs`,
              compression: 'gzip' as never,
              timeoutMillis: 30_000,
            }),
            maxExportBatchSize: 100,
            maxQueueSize: 2_000,
            scheduledDelayMillis: 10,
            exportTimeoutMillis: 30_000,
          }),
        ],
      });
      const logger = provider.getLogger('flood');
      for (let i = 0; i < 1_000; i++) logger.emit({ body: `record ${i}`, severityNumber: 9 });
      // The buffer holds 200 and the emitter holds everything: the third batch is refused whole.
      await until(
        async () => {
          const m = await scrape(gw.metricsPort);
          return count(m, 'polku_otlp_requests_total{transport="http",result="refused"}') >= 1;
        },
        'a refused export',
        20_000,
      );
      gw.child.kill('SIGUSR2'); // the emitter lets go: the buffer drains, the exporter's retries get in
      await provider.forceFlush();
      await until(() => eventsOut(gw, 'flood').length >= 1_000, '1000 events on stdout', 60_000);
      await provider.shutdown();
      const bodies = eventsOut(gw, 'flood').map((e) => e.payload);
      assert.equal(bodies.length, 1_000, 'none lost, none twice');
      assert.equal(new Set(bodies).size, 1_000);
      const m = await scrape(gw.metricsPort);
      assert.ok(count(m, 'polku_otlp_requests_total{transport="http",result="refused"}') >= 1);
      assert.equal(count(m, 'polku_otlp_requests_total{transport="http",result="partial"}'), 0, 'no batch was split');
      assert.ok(count(m, 'polku_events_dropped_total{reason="buffer_full"}') >= 100, 'the refusals were counted');
    } finally {
      await stop(gw);
    }
  });
});

describe('OTLP/HTTP: bodies that are refused, precisely', () => {
  let gw: OtlpGateway;
  before(async () => {
    gw = await serveOtlp([], { POLKU_MAX_MESSAGE_BYTES: String(64 * 1024), POLKU_MAX_METADATA_BYTES: '256' });
  });
  after(() => stop(gw));
  const post = (body: Uint8Array | string, headers: Record<string, string>) =>
    fetch(`http://127.0.0.1:${gw.otlpHttp}/v1/logs`, { method: 'POST', body, headers });

  test('malformed protobuf → 400 with a google.rpc.Status naming the problem', async () => {
    const res = await post(new Uint8Array([0x0a, 0xff, 0xff, 0x01]), { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 400);
    assert.match(Buffer.from(await res.arrayBuffer()).toString('latin1'), /INVALID_BATCH: not an ExportLogsServiceRequest/);
  });

  test('invalid UTF-8 in a string field → 400, named', async () => {
    const good = ExportLogsServiceRequest.encode({
      resourceLogs: [
        {
          resource: undefined,
          scopeLogs: [{ scope: undefined, schemaUrl: '', logRecords: [] }],
          schemaUrl: 'ab',
        },
      ],
    }).finish();
    const bad = Buffer.from(good);
    bad[bad.length - 1] = 0xff; // the schema_url's last byte
    const res = await post(bad, { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 400);
    assert.match(Buffer.from(await res.arrayBuffer()).toString('latin1'), /a string field is not valid UTF-8/);
  });

  test('JSON that is not OTLP → 400 naming the field; invalid JSON → 400', async () => {
    const wrong = await post(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ traceId: 'xyz' }] }] }] }), {
      'content-type': 'application/json',
    });
    assert.equal(wrong.status, 400);
    assert.match(
      ((await wrong.json()) as { message: string }).message,
      /resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[0\]\.traceId: expected hex/,
    );
    const notJson = await post('{"resourceLogs": [', { 'content-type': 'application/json' });
    assert.equal(notJson.status, 400);
    assert.match(((await notJson.json()) as { message: string }).message, /body is not JSON/);
  });

  test('a gzip bomb → 413 without inflating it whole', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024)); // 64 MiB of zeros, ~64 KiB compressed
    assert.ok(bomb.length < 64 * 1024);
    const res = await post(bomb, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
    assert.equal(res.status, 413);
    assert.match(
      Buffer.from(await res.arrayBuffer()).toString('latin1'),
      /gzip body inflates past 65536 bytes \(POLKU_MAX_MESSAGE_BYTES\)/,
    );
  });

  test('protobuf, gzip: partial_success in the ExportLogsServiceResponse bytes', async () => {
    const str = (value: string) => ({ value: { $case: 'stringValue' as const, value } });
    const rec = (body: string, attributes: { key: string; value: ReturnType<typeof str> }[] = []) => ({
      timeUnixNano: 0n,
      observedTimeUnixNano: 5n,
      severityNumber: 21,
      severityText: '',
      body: str(body),
      attributes,
      droppedAttributesCount: 0,
      flags: 0,
      traceId: new Uint8Array(0),
      spanId: new Uint8Array(0),
      eventName: '',
    });
    const bytes = ExportLogsServiceRequest.encode({
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: str('proto-gzip') }], droppedAttributesCount: 0, entityRefs: [] },
          scopeLogs: [
            { scope: undefined, logRecords: [rec('kept'), rec('dropped', [{ key: 'big', value: str('y'.repeat(400)) }])], schemaUrl: '' },
          ],
          schemaUrl: '',
        },
      ],
    }).finish();
    const res = await post(gzipSync(bytes), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
    const answer = Buffer.from(await res.arrayBuffer());
    // ExportLogsServiceResponse { 1: ExportLogsPartialSuccess { 1: rejected_log_records = 1, 2: error_message } }
    assert.equal(answer[0], 0x0a);
    assert.deepEqual([...answer.subarray(2, 4)], [0x08, 0x01]);
    assert.match(answer.toString('latin1'), /1 log records refused: METADATA_TOO_LARGE/);
    await until(() => eventsOut(gw, 'proto-gzip').length >= 1, 'the kept record');
    const [kept] = eventsOut(gw, 'proto-gzip');
    assert.equal(kept!.payload, 'kept');
    assert.equal(kept!.timestamp_unix_ns, '5', 'observed time when the record has none');
    assert.equal(kept!.severity, 'SEVERITY_CRITICAL');
  });

  test('a record with too much metadata is refused in partial_success; the rest of the request is taken', async () => {
    const body = {
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'partial' } }] },
          scopeLogs: [
            {
              logRecords: [
                { body: { stringValue: 'fine' }, timeUnixNano: '1700000000000000001' },
                { body: { stringValue: 'too much' }, attributes: [{ key: 'big', value: { stringValue: 'x'.repeat(400) } }] },
                { body: { intValue: '9007199254740993' }, severityNumber: 13, traceId: '0AF7651916CD43DD8448EB211C80319C' },
              ],
            },
          ],
        },
      ],
    };
    const res = await post(JSON.stringify(body), { 'content-type': 'application/json' });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as { partialSuccess: { rejectedLogRecords: string; errorMessage: string } };
    assert.equal(answer.partialSuccess.rejectedLogRecords, '1');
    assert.match(answer.partialSuccess.errorMessage, /METADATA_TOO_LARGE: events\[1\]: metadata is \d+ bytes, limit 256/);
    await until(() => eventsOut(gw, 'partial').length >= 2, '2 events');
    const out = eventsOut(gw, 'partial');
    assert.equal(out.length, 2);
    assert.equal(out[0]!.timestamp_unix_ns, '1700000000000000001');
    assert.equal(out[1]!.payload, '9007199254740993', 'ints exactly, past 2^53');
    assert.equal(out[1]!.metadata['trace_id'], '0af7651916cd43dd8448eb211c80319c');
    assert.equal(out[1]!.severity, 'SEVERITY_WARNING');
  });
});
