import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import type { Registry } from 'prom-client';
import { systemClock, systemTimers } from '../../src/clock.js';
import { externalEmitter, type ExternalEmitterOptions } from '../../src/emit/external.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { freePort, startPlugin, stopAllPlugins, until } from '../fixtures/plugin-process.js';

const dir = mkdtempSync(join(tmpdir(), 'polku-plugin-emitter-'));
let files = 0;
after(stopAllPlugins);

/** A fresh record file for a fixture process. */
const recordFile = () => join(dir, `record-${++files}.txt`);
/** The fixture's record: `<id> ok|failed` lines and `SHUTDOWN`. */
const record = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
const receipts = (file: string, id: string) => record(file).filter((l) => l.startsWith(`${id} `)).length;

const event = (id: string, fail = '') => Event.fromPartial({ id, eventType: 't', metadata: fail ? { fail } : {} });

/** An emitter with its own registry and a logger whose lines the test can read. */
function emitter(address: string, options: ExternalEmitterOptions = {}) {
  const lines: Array<{ msg: string }> = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString('utf8'))), done()) });
  const registry = createRegistry();
  const e = externalEmitter('fixture', address, options);
  e.init({ registry, logger: createLogger('warn', sink), clock: systemClock, timers: systemTimers });
  return { emitter: e, registry, logs: lines };
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

describe('ExternalEmitter against a real plugin process', () => {
  test('failed ids and errors fail exactly those events, retryable as the plugin says; odd answers are logged', async () => {
    const file = recordFile();
    const plugin = await startPlugin('emitter', 0, [file]);
    const { emitter: e, logs, registry } = emitter(plugin.address);
    const batch = [
      event('a'),
      event('b', 'retryable'),
      event('c', 'permanent'),
      event('d', 'silent'),
      event('e', 'error-only'),
      event('f', 'phantom'),
    ];
    assert.deepEqual(await e.emit(batch), {
      status: 'partial',
      failures: [
        { index: 1, retryable: true, error: 'try later' },
        { index: 2, retryable: false, error: 'rejected for good' },
        { index: 3, retryable: true, error: 'no reason given' },
        { index: 4, retryable: false, error: 'no room for it' },
      ],
    });
    assert.ok(logs.some((l) => l.msg === 'plugin named events not in the batch; ignored'));
    assert.deepEqual(await e.emit([event('g', 'miscount')]), { status: 'success' });
    assert.ok(logs.some((l) => l.msg === 'plugin success_count disagrees with its failure list; trusting the list'));
    assert.equal(await metric(registry, 'polku_plugin_calls_total', { plugin: 'fixture', method: 'Emit', outcome: 'ok' }), 2);
    await e.shutdown();
  });

  test('a batch split into concurrent calls: each call answered on its own, every failure at its event', async () => {
    const file = recordFile();
    const plugin = await startPlugin('emitter', 0, [file]);
    const { emitter: e, registry } = emitter(plugin.address, { maxCallsInFlight: 4, minEventsPerCall: 3 });
    const modes = [
      ...['delay', 'retryable', ''], // call 1 answers last (its event 0 holds the answer 400 ms)
      ...['', 'permanent', 'retryable'], // call 2; its 'dup' is the first copy of the id
      ...['', 'invalid', ''], // call 3 is refused as a whole (INVALID_ARGUMENT)
      ...['', '', 'once'], // call 4; 'once' fails the first time the plugin sees the id
    ];
    const ids = modes.map((_, i) => (i === 5 || i === 6 ? 'dup' : `e${i}`));
    const batch = modes.map((mode, i) =>
      mode === 'delay' ? Event.fromPartial({ id: ids[i]!, metadata: { delay_ms: '400' } }) : event(ids[i]!, mode),
    );
    const refused = `plugin at ${plugin.address}: INVALID_ARGUMENT: an event says invalid`;
    assert.deepEqual(await e.emit(batch), {
      status: 'partial',
      failures: [
        { index: 1, retryable: true, error: 'try later' },
        { index: 4, retryable: false, error: 'rejected for good' },
        { index: 5, retryable: true, error: 'try later' },
        { index: 6, retryable: false, error: refused },
        { index: 7, retryable: false, error: refused },
        { index: 8, retryable: false, error: refused },
        { index: 11, retryable: true, error: 'try later' },
      ],
    });
    // The plugin records a call's events when it answers: calls 2 and 4 were answered while call 1
    // was still waiting, so they were in flight together (call 3 was refused, nothing recorded).
    const order = record(file).map((l) => l.split(' ')[0]);
    assert.deepEqual(order.slice(0, 6).sort(), ['dup', 'e10', 'e11', 'e3', 'e4', 'e9']);
    assert.deepEqual(order.slice(6), ['e0', 'e1', 'e2']);
    assert.equal(await metric(registry, 'polku_plugin_calls_total', { plugin: 'fixture', method: 'Emit', outcome: 'ok' }), 3);
    assert.equal(await metric(registry, 'polku_plugin_calls_total', { plugin: 'fixture', method: 'Emit', outcome: 'error' }), 1);
    await e.shutdown();
  });

  test('a batch over maxCallBytes goes in several calls, each under the limit; an event over it goes alone', async () => {
    const file = recordFile();
    const plugin = await startPlugin('emitter', 0, [file]);
    const { emitter: e, registry } = emitter(plugin.address, { maxCallBytes: 2_500 });
    const big = (id: string, bytes: number) => Event.fromPartial({ id, payload: Buffer.alloc(bytes, 1) });
    // ~1 kB each: two fit in a call; the 3 kB one is over the limit alone.
    const batch = [big('a', 1_000), big('b', 1_000), big('c', 1_000), big('d', 3_000), big('e', 1_000)];
    assert.deepEqual(await e.emit(batch), { status: 'success' });
    assert.deepEqual(
      record(file).map((l) => l.split(' ')[0]),
      ['a', 'b', 'c', 'd', 'e'],
    );
    // a+b, c, d, e: one call in flight at a time (the default), in batch order.
    assert.equal(await metric(registry, 'polku_plugin_calls_total', { plugin: 'fixture', method: 'Emit', outcome: 'ok' }), 4);
    await e.shutdown();
  });

  test('a refused call is failed, a dead plugin retryable, and neither throws', async () => {
    const file = recordFile();
    const plugin = await startPlugin('emitter', 0, [file]);
    const { emitter: e } = emitter(plugin.address, { connectTimeoutMs: 200 });
    const refused = await e.emit([event('x', 'invalid')]);
    assert.equal(refused.status, 'failed');
    assert.match((refused as { error: string }).error, /INVALID_ARGUMENT: an event says invalid/);
    await plugin.stop();
    const down = await e.emit([event('y')]);
    assert.equal(down.status, 'retryable');
    assert.match((down as { error: string }).error, /UNAVAILABLE|could not connect within 200 ms/);
    await e.shutdown();
  });

  test('through a hub: only the retryable failures are sent again, and drain calls Shutdown', async () => {
    const file = recordFile();
    const plugin = await startPlugin('emitter', 0, [file]);
    const registry = createRegistry();
    const h = hub()
      .emitter(externalEmitter('fixture', plugin.address))
      .delivery({ maxAttempts: 3, flushIntervalMs: 5, batchSize: 100 })
      .build({ registry });
    const ids = ['ok1', 'once1', 'retry1', 'perm1', 'ok2'];
    const modes = ['', 'once', 'retryable', 'permanent', ''];
    const ack = await Promise.resolve(
      h.processBatch({
        source: 'agent',
        cluster: '',
        payload: { $case: 'events', value: { events: ids.map((id, i) => event(id, modes[i])) } },
      }),
    );
    assert.deepEqual(ack.eventIds, ids);
    const report = await h.drain(10_000);
    assert.equal(report.drained, true);
    assert.deepEqual(
      ids.map((id) => receipts(file, id)),
      [1, 2, 3, 1, 1], // once1 succeeds on its 2nd attempt; retry1 runs out of its 3 attempts
    );
    assert.equal(await metric(registry, 'polku_events_dropped_total', { reason: 'emit_failed' }), 1);
    assert.equal(await metric(registry, 'polku_events_dropped_total', { reason: 'emit_retries_exhausted' }), 1);
    assert.equal(await metric(registry, 'polku_events_forwarded_total', { emitter: 'fixture' }), 3);
    assert.equal(record(file).at(-1), 'SHUTDOWN');
  });

  test('health: the plugin’s own verdict and message; a dead plugin is unhealthy until it is back', async () => {
    const sick = await startPlugin('emitter', 0, [recordFile(), '--unhealthy', 'disk full']);
    const s = emitter(sick.address);
    assert.deepEqual(await s.emitter.health(), { healthy: false, message: 'disk full' });
    assert.equal(await metric(s.registry, 'polku_plugin_healthy', { plugin: 'fixture' }), 0);
    await s.emitter.shutdown();

    const port = await freePort();
    const file = recordFile();
    let plugin = await startPlugin('emitter', port, [file]);
    const { emitter: e, registry } = emitter(`http://127.0.0.1:${port}`);
    assert.deepEqual(await e.health(), { healthy: true, message: 'all good' });
    assert.equal(await metric(registry, 'polku_plugin_healthy', { plugin: 'fixture' }), 1);
    await plugin.stop();
    await until(async () => !(await e.health()).healthy, 'health to see the dead plugin');
    assert.match((await e.health()).message!, /health check failed: (UNAVAILABLE|no answer)/);
    assert.equal(await metric(registry, 'polku_plugin_healthy', { plugin: 'fixture' }), 0);
    plugin = await startPlugin('emitter', port, [file]);
    await until(async () => (await e.health()).healthy, 'health to see the plugin back');
    assert.equal(await metric(registry, 'polku_plugin_healthy', { plugin: 'fixture' }), 1);
    assert.deepEqual(await e.emit([event('back')]), { status: 'success' });
    await e.shutdown();
    assert.equal((await e.health()).healthy, false, 'shut down');
  });

  test('close() ends the connection without the Shutdown RPC (a plugin the gateway does not own)', async () => {
    const file = recordFile();
    const plugin = await startPlugin('emitter', 0, [file]);
    const { emitter: e } = emitter(plugin.address);
    assert.deepEqual(await e.emit([event('before-close')]), { status: 'success' });
    e.close();
    e.close(); // once
    const after = await e.emit([event('after-close')]);
    assert.equal(after.status, 'retryable');
    assert.match((after as { error: string }).error, /plugin "fixture" is closed/);
    assert.deepEqual(await e.health(), { healthy: false, message: 'closed' });
    await e.shutdown(); // a no-op now
    assert.deepEqual(record(file), ['before-close ok'], 'no SHUTDOWN reached the plugin, and nothing after close');
    assert.equal(plugin.child.exitCode, null, 'the plugin still runs');
  });
});
