import assert from 'node:assert/strict';
import { credentials } from '@grpc/grpc-js';
import { after, before, describe, test } from 'node:test';
import type { Registry } from 'prom-client';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import type { Ack } from '../../src/gen/polku/v1/gateway.js';
import { IngestorPluginClient } from '../../src/gen/polku/v1/plugin.js';
import { hub } from '../../src/hub/builder.js';
import type { Hub } from '../../src/hub/hub.js';
import { externalIngestor, type ExternalIngestorOptions } from '../../src/ingest/external.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { freePort, startPlugin, stopAllPlugins, until, type PluginProcess } from '../fixtures/plugin-process.js';

let plugin: PluginProcess;
before(async () => {
  plugin = await startPlugin('ingestor');
});
after(stopAllPlugins);

/** A hub whose raw `csv` batches go to the plugin at `address`. */
function gateway(address: string, options: ExternalIngestorOptions = {}) {
  const memory = new InMemoryEmitter();
  const registry = createRegistry();
  const ingestor = externalIngestor('csv', address, options);
  const h = hub().ingestor(ingestor).emitter(memory).build({ registry });
  return { hub: h, memory, registry, ingestor };
}

const raw = (h: Hub, text: string, source = 'csv'): Promise<Ack> =>
  Promise.resolve(h.processBatch({ source, cluster: 'c1', payload: { $case: 'raw', value: { data: Buffer.from(text), format: '' } } }));

/** What the fixture says it saw (Info's description). */
async function pluginStats(address: string): Promise<{ calls: number; maxInFlight: number }> {
  const client = new IngestorPluginClient(address, credentials.createInsecure());
  try {
    const info = await new Promise<{ description: string }>((resolve, reject) =>
      client.info({}, (err, r) => (err ? reject(err) : resolve(r))),
    );
    return JSON.parse(info.description) as { calls: number; maxInFlight: number };
  } finally {
    client.close();
  }
}

async function counter(registry: Registry, plugin: string, outcome: string): Promise<number> {
  const metric = await registry.getSingleMetric('polku_plugin_calls_total')!.get();
  return (
    metric.values.find((v) => v.labels['plugin'] === plugin && v.labels['method'] === 'Ingest' && v.labels['outcome'] === outcome)?.value ??
    0
  );
}

describe('ExternalIngestor against a real plugin process', () => {
  test('CSV bytes become events through a real hub', async () => {
    const g = gateway(plugin.address);
    const ack = await raw(g.hub, 'r1,user.signup,alice\nr2,user.login,bob\n');
    assert.deepEqual(ack.errors, []);
    assert.deepEqual(ack.eventIds, ['r1', 'r2']);
    await g.memory.waitForCount(2);
    assert.deepEqual(
      g.memory.events.map((e) => [e.id, e.eventType, Buffer.from(e.payload).toString(), e.source, e.metadata['cluster']]),
      [
        ['r1', 'user.signup', 'alice', 'csv', 'c1'],
        ['r2', 'user.login', 'bob', 'csv', 'c1'],
      ],
    );
    assert.equal(await counter(g.registry, 'external:csv', 'ok'), 1);
    assert.deepEqual(g.ingestor.status(), { healthy: true, message: `${plugin.address}: ok` });
    await g.hub.drain(1_000);
    g.ingestor.close();
  });

  test('rows the plugin cannot parse are PARSE_ERRORs with their byte offsets; good rows are accepted', async () => {
    const g = gateway(plugin.address);
    const ack = await raw(g.hub, 'ok1,t,x\nbroken\nok2,t,y\na,b,c,d\n');
    assert.deepEqual(ack.eventIds, ['ok1', 'ok2']);
    assert.deepEqual(
      ack.errors.map((e) => [e.code, e.message]),
      [
        ['PARSE_ERROR', 'expected 3 fields (got 1) (at byte 8)'],
        ['PARSE_ERROR', 'expected 3 fields (got 4) (at byte 23)'],
      ],
    );
    await g.memory.waitForCount(2);
    await g.hub.drain(1_000);
    g.ingestor.close();
  });

  test('a plugin slower than callTimeoutMs: INGESTOR_UNAVAILABLE, and the next batch goes through', async () => {
    const g = gateway(plugin.address, { callTimeoutMs: 200 });
    const started = performance.now();
    const slow = await raw(g.hub, '#slow 3000\nlate,t,x\n');
    assert.ok(performance.now() - started < 2_000, 'the batch waited no longer than the deadline');
    assert.deepEqual(slow.eventIds, []);
    assert.equal(slow.errors.length, 1);
    assert.equal(slow.errors[0]!.code, 'INGESTOR_UNAVAILABLE');
    assert.match(slow.errors[0]!.message, /ingestor "external:csv": plugin at .*: no answer within 200 ms/);
    assert.equal(await counter(g.registry, 'external:csv', 'timeout'), 1);
    const next = await raw(g.hub, 'fast,t,x\n');
    assert.deepEqual(next.eventIds, ['fast']);
    await g.hub.drain(1_000);
    g.ingestor.close();
  });

  test('garbage from the plugin: INGESTOR_UNAVAILABLE with the reason, and the gateway goes on', async () => {
    const g = gateway(plugin.address);
    const ack = await raw(g.hub, '#garbage\n');
    assert.equal(ack.errors[0]?.code, 'INGESTOR_UNAVAILABLE');
    assert.match(ack.errors[0]!.message, /INTERNAL: Response message parsing error/);
    assert.equal(await counter(g.registry, 'external:csv', 'error'), 1);
    assert.equal(g.ingestor.status().healthy, false);
    assert.deepEqual((await raw(g.hub, 'after,t,x\n')).eventIds, ['after']);
    assert.equal(g.ingestor.status().healthy, true);
    await g.hub.drain(1_000);
    g.ingestor.close();
  });

  test('calls in flight stay within maxConcurrency; the rest wait their turn', async () => {
    const own = await startPlugin('ingestor');
    const g = gateway(own.address, { maxConcurrency: 2, callTimeoutMs: 5_000 });
    const acks = await Promise.all(Array.from({ length: 6 }, (_, i) => raw(g.hub, `#slow 150\nc${i},t,x\n`)));
    assert.deepEqual(
      acks.map((a) => a.eventIds),
      [['c0'], ['c1'], ['c2'], ['c3'], ['c4'], ['c5']],
    );
    assert.deepEqual(await pluginStats(own.address), { calls: 6, inFlight: 0, maxInFlight: 2 });
    await g.hub.drain(1_000);
    g.ingestor.close();
    await own.stop();
  });

  test('after repeated failures the circuit opens and batches are refused without calling the plugin', async () => {
    const own = await startPlugin('ingestor');
    const g = gateway(own.address, { breaker: { failureThreshold: 2, resetTimeoutMs: 300 } });
    for (let i = 0; i < 2; i++) assert.equal((await raw(g.hub, '#fail 13\n')).errors[0]?.code, 'INGESTOR_UNAVAILABLE');
    const refused = await raw(g.hub, 'x,t,y\n');
    assert.match(refused.errors[0]!.message, /circuit open after 2 consecutive failures; last failure: INTERNAL: told to fail/);
    assert.equal((await pluginStats(own.address)).calls, 2, 'the open circuit kept the batch from the plugin');
    assert.equal(await counter(g.registry, 'external:csv', 'circuit_open'), 1);
    let ack: Ack | undefined;
    await until(async () => (ack = await raw(g.hub, 'back,t,y\n')).eventIds.length === 1, 'the circuit to close again');
    assert.deepEqual(ack!.eventIds, ['back']);
    await g.hub.drain(1_000);
    g.ingestor.close();
    await own.stop();
  });

  test('a plugin unreachable at start: INGESTOR_UNAVAILABLE, the hub keeps working, and the plugin is used once it listens', async () => {
    const port = await freePort();
    const g = gateway(`http://127.0.0.1:${port}`, { connectTimeoutMs: 1_500 });
    const refused = await raw(g.hub, 'early,t,x\n');
    assert.deepEqual(refused.eventIds, []);
    assert.equal(refused.errors[0]?.code, 'INGESTOR_UNAVAILABLE');
    assert.match(refused.errors[0]!.message, /could not connect within 1500 ms/);
    assert.equal(g.ingestor.status().healthy, false);
    // Other batches are untouched by the missing plugin.
    const events = await Promise.resolve(
      g.hub.processBatch({
        source: 'agent',
        cluster: '',
        payload: { $case: 'events', value: { events: [Event.fromPartial({ id: 'direct' })] } },
      }),
    );
    assert.deepEqual(events.eventIds, ['direct']);
    await g.memory.waitForCount(1);

    const late = await startPlugin('ingestor', port);
    assert.equal(late.port, port);
    const ack = await raw(g.hub, 'recovered,t,x\n');
    assert.deepEqual(ack.eventIds, ['recovered']);
    await g.memory.waitForCount(2);
    assert.equal(g.ingestor.status().healthy, true);
    assert.equal(await counter(g.registry, 'external:csv', 'unavailable'), 1);
    const healthy = await g.registry.getSingleMetric('polku_plugin_healthy')!.get();
    assert.equal(healthy.values.find((v) => v.labels['plugin'] === 'external:csv')?.value, 1);
    await g.hub.drain(1_000);
    g.ingestor.close();
  });
});
