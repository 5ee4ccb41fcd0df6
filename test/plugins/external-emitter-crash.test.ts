import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Registry } from 'prom-client';
import type { Emitter } from '../../src/emit/emitter.js';
import { externalEmitter } from '../../src/emit/external.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { freePort, startPlugin, stopAllPlugins, until } from '../fixtures/plugin-process.js';

after(stopAllPlugins);

const file = join(mkdtempSync(join(tmpdir(), 'polku-plugin-crash-')), 'record.txt');
/** Ids the plugin processes recorded as delivered, before answering. */
const deliveredByPlugin = (): string[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.endsWith(' ok'))
        .map((l) => l.slice(0, -3))
    : [];

async function total(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((s, v) => s + v.value, 0);
}

test('a plugin killed mid-stream and restarted: every accepted event is delivered or counted dropped, none acked and lost', async () => {
  const port = await freePort();
  let plugin = await startPlugin('emitter', port, [file]);
  const external = externalEmitter('fixture', plugin.address, {
    connectTimeoutMs: 300,
    callTimeoutMs: 2_000,
    breaker: { failureThreshold: 3, resetTimeoutMs: 100 },
  });
  // What the emitter told the queue was delivered: each of these must be in the plugin's record.
  const reported = new Set<string>();
  const watched: Emitter = {
    name: external.name,
    init: (ctx) => external.init(ctx),
    health: () => external.health(),
    shutdown: () => external.shutdown(),
    async emit(events) {
      const r = await external.emit(events);
      const failed = new Set(r.status === 'partial' ? r.failures.map((f) => f.index) : []);
      if (r.status === 'success' || r.status === 'partial') events.forEach((e, i) => failed.has(i) || reported.add(e.id));
      return r;
    },
  };
  const registry = createRegistry();
  const h = hub().emitter(watched).delivery({ batchSize: 25, flushIntervalMs: 2, maxAttempts: 3 }).build({ registry });

  const accepted = new Set<string>();
  let sending = true;
  let batches = 0;
  const sender = (async () => {
    while (sending) {
      const b = batches++;
      const events = Array.from({ length: 10 }, (_, i) => Event.fromPartial({ id: `e${b}-${i}`, eventType: 't' }));
      const ack = await Promise.resolve(h.processBatch({ source: 'agent', cluster: '', payload: { $case: 'events', value: { events } } }));
      for (const id of ack.eventIds) accepted.add(id);
      await new Promise((r) => setTimeout(r, 1)); // pacing, so batches keep flowing through the outage
    }
  })();

  await until(() => deliveredByPlugin().length >= 200, 'events to flow to the plugin');
  await plugin.stop('SIGKILL');
  const outcomes = () => total(registry, 'polku_plugin_calls_total', { plugin: 'fixture', method: 'Emit' });
  const okCalls = () => total(registry, 'polku_plugin_calls_total', { plugin: 'fixture', method: 'Emit', outcome: 'ok' });
  await until(async () => (await outcomes()) > (await okCalls()), 'the gateway to notice the dead plugin');
  plugin = await startPlugin('emitter', port, [file]);
  const atRestart = deliveredByPlugin().length;
  await until(() => deliveredByPlugin().length >= atRestart + 200, 'delivery to resume after the restart', 20_000);
  sending = false;
  await sender;
  const report = await h.drain(20_000);
  assert.equal(report.drained, true);

  const delivered = new Set(deliveredByPlugin());
  for (const id of reported) assert.ok(delivered.has(id), `${id} was reported delivered but the plugin never recorded it`);
  const dropped =
    (await total(registry, 'polku_events_dropped_total', { reason: 'emit_failed' })) +
    (await total(registry, 'polku_events_dropped_total', { reason: 'emit_retries_exhausted' })) +
    (await total(registry, 'polku_events_dropped_total', { reason: 'undelivered_at_shutdown' }));
  const missing = [...accepted].filter((id) => !delivered.has(id));
  assert.ok(missing.length <= dropped, `${missing.length} accepted events neither delivered nor counted dropped (${dropped} dropped)`);
  // The gateway's books balance too: each accepted event was forwarded or dropped, once.
  const forwarded = await total(registry, 'polku_events_forwarded_total', { emitter: 'fixture' });
  assert.equal(forwarded + dropped, accepted.size);
  assert.ok(accepted.size >= 400, `only ${accepted.size} events accepted`);
  assert.ok((await outcomes()) - (await okCalls()) >= 1, 'the outage was seen');
});
