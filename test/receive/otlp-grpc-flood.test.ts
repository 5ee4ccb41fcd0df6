import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { scrape, until } from '../helpers/gateway-harness.js';
import { serveOtlp, stdoutEvents } from '../helpers/polku-process.js';

/**
 * The OpenTelemetry JS gRPC log exporter treats every gRPC error as final (its transport answers
 * `failure`, never `retryable`), so a RESOURCE_EXHAUSTED refusal would lose its records however
 * the gateway phrases it. Under `POLKU_OVERFLOW_POLICY=block` an Export that does not fit waits
 * for room instead: the README recommends it for gRPC senders, and this is what it does with the
 * official exporter when the flood is five times the buffer.
 */
test('OTLP/gRPC flood with the official SDK exporter under overflow block: Exports wait, every record arrives once', async () => {
  const gw = await serveOtlp(['--config', 'test/fixtures/otlp-held-stdout.config.ts'], {
    POLKU_BUFFER_CAPACITY: '200',
    POLKU_OVERFLOW_POLICY: 'block',
    POLKU_OTLP_HTTP_ADDR: 'off',
  });
  try {
    const port = gw.otlpGrpc;
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'grpc-flood' }),
      processors: [
        new BatchLogRecordProcessor({
          exporter: new GrpcLogExporter({ url: `http://127.0.0.1:${port}`, timeoutMillis: 60_000 }),
          maxExportBatchSize: 100,
          maxQueueSize: 2_000,
          scheduledDelayMillis: 10,
          exportTimeoutMillis: 60_000,
        }),
      ],
    });
    const logger = provider.getLogger('flood');
    for (let i = 0; i < 1_000; i++) logger.emit({ body: `record ${i}`, severityNumber: 9 });
    const gauge = (text: string, name: string): number =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${name} `))
          ?.split(' ')[1] ?? 0,
      );
    // The emitter holds every batch: the buffer fills and the next Export waits for room.
    await until(async () => gauge(await scrape(gw.metricsPort), 'polku_buffer_blocked_writers') >= 1, 'an Export waiting for room');
    const full = await scrape(gw.metricsPort);
    assert.equal(gauge(full, 'polku_buffer_events'), 200);
    gw.child.kill('SIGUSR2'); // the emitter lets go
    await provider.forceFlush();
    const bodies = (): string[] => stdoutEvents(gw).flatMap((e) => (e.source === 'grpc-flood' ? [e.payload ?? ''] : []));
    await until(() => bodies().length >= 1_000, '1,000 records on stdout', 60_000);
    await provider.shutdown();
    assert.equal(bodies().length, 1_000, 'none lost, none twice');
    assert.equal(new Set(bodies()).size, 1_000);
    const after = await scrape(gw.metricsPort);
    assert.equal(gauge(after, 'polku_events_dropped_total{reason="buffer_full"}'), 0, 'nothing was refused for room');
  } finally {
    if (gw.child.exitCode === null) gw.child.kill('SIGTERM');
    await gw.exited;
  }
});
