// The gateway embedded in a program, using nothing but the `polku` and `polku/server` entry
// points, the way src/server/index.ts shows it; and the testing entry point's waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hub, JsonIngestor } from '../../src/index.js';
import { Gateway, PluginRegistry, createLogger, createRegistry, settingsFromEnv } from '../../src/server/index.js';
import { InMemoryEmitter } from '../../src/testing/index.js';

test('a program embeds the gateway with polku and polku/server alone', async () => {
  // Every port on a free one: the defaults (4317, 4318, 8080) may be taken on a developer's machine.
  const settings = settingsFromEnv({
    POLKU_GRPC_ADDR: '127.0.0.1:0',
    POLKU_METRICS_ADDR: '127.0.0.1:0',
    POLKU_OTLP_GRPC_ADDR: '127.0.0.1:0',
    POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0',
    POLKU_HTTP_ADDR: '127.0.0.1:0',
    POLKU_LOG_LEVEL: 'silent',
  });
  const logger = createLogger(settings.logLevel);
  const registry = createRegistry();
  const memory = new InMemoryEmitter();
  const pipeline = hub().ingestor(new JsonIngestor()).emitter(memory);
  const { buffer, delivery, limits, maxSourceLabels, durable } = settings;
  const h = pipeline.build({ buffer, delivery, limits, maxSourceLabels, logger, registry, ...(durable ? { durable } : {}) });
  const plugins = new PluginRegistry({ ...settings.registry, pipeline: h, logger, registry });
  const gateway = new Gateway({ ...settings, hub: h, registry, logger, plugins });
  const ports = await gateway.start();
  try {
    const ready = await fetch(`http://127.0.0.1:${ports.metrics}/readyz`);
    assert.equal(ready.status, 200);
    assert.ok(ports.grpc > 0);
  } finally {
    const report = await gateway.shutdown('test over');
    assert.equal(report.drained, true);
  }
});

test('InMemoryEmitter.waitForAcked resolves once every accepted event arrived, and names the missing ones', async () => {
  const memory = new InMemoryEmitter({ name: 'sink' });
  const h = hub().ingestor(new JsonIngestor()).emitter(memory).delivery({ flushIntervalMs: 20 }).build();
  const ack = await h.processBatch({
    source: 'test',
    cluster: '',
    payload: { $case: 'raw', value: { data: Buffer.from('{"id":"a"}\n{"id":"b"}'), format: 'ndjson' } },
  });
  assert.deepEqual(ack.eventIds, ['a', 'b']);
  await memory.waitForAcked(ack);
  assert.deepEqual(
    memory.events.map((e) => e.id),
    ['a', 'b'],
  );
  await memory.waitForAcked([ack, { eventIds: ['a'] }], { timeoutMs: 1 }); // already here: at once
  await assert.rejects(
    memory.waitForAcked({ eventIds: ['a', 'c'] }, { timeoutMs: 20 }),
    /emitter "sink": 1 of 2 acknowledged events arrived \(missing c\) within 20 ms/,
  );
  await h.drain(1_000);
});

test('InMemoryEmitter.waitForCount gives up after its timeout, saying how many events arrived', async () => {
  const memory = new InMemoryEmitter({ name: 'sink' });
  await assert.rejects(memory.waitForCount(2, { timeoutMs: 20 }), /emitter "sink": 0 of 2 events arrived within 20 ms/);
  await memory.emit([]);
  await memory.waitForCount(0);
});
