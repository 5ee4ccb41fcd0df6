// Leases on fake time: interval × missed beats, renewed by each Heartbeat; a plugin whose lease
// runs out leaves the table and the routes (with a log line and a metric) and comes back by
// registering again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PluginType } from '../../src/gen/polku/v1/plugin.js';
import { until } from '../helpers/gateway-harness.js';
import {
  emitterPlugin,
  metricValue,
  registryClient,
  sendRouted,
  startTestGateway,
  type TestEmitterPlugin,
  type TestGateway,
} from './helpers.js';

const EMITTER = PluginType.PLUGIN_TYPE_EMITTER;

describe('leases (POLKU_REGISTRY_HEARTBEAT_MS × POLKU_REGISTRY_MISSED_BEATS)', () => {
  let gw: TestGateway;
  let reg: ReturnType<typeof registryClient>;
  let plugin: TestEmitterPlugin;

  before(async () => {
    // Health sweeps far apart: this file is about leases alone.
    gw = await startTestGateway({ heartbeatIntervalMs: 1_000, missedBeats: 3, healthIntervalMs: 3_600_000, registerBurst: 100 });
    reg = registryClient(gw.grpcPort);
    plugin = await emitterPlugin('beater', 'beats');
  });
  after(async () => {
    reg.close();
    await gw.stop();
    await plugin.server.close();
  });

  const register = () => reg.register({ name: 'beater', type: EMITTER, emitterName: 'beats' }, plugin.address);

  test('the plugin is told the interval, and its lease is interval × missed beats', async () => {
    const res = await register();
    assert.equal(res.message, 'heartbeat_interval_ms=1000');
    const row = (await gw.plugins.rows()).find((r) => r.name === 'beater')!;
    assert.equal(row.leaseLeftMs, 3_000);
    assert.equal(row.lastHeartbeat, new Date(gw.clock.nowMs()).toISOString());
    await reg.unregister(res.pluginId);
  });

  test('a plugin that stops beating stays until its lease runs out, then leaves with a log line and a metric', async () => {
    const { pluginId } = await register();
    gw.timers.advance(2_999);
    assert.ok(gw.plugins.table.get(pluginId), 'still there 1 ms before the lease ends');
    assert.deepEqual((await sendRouted(gw.client, 'in-time', ['beats'])).event_ids, ['in-time']);
    gw.timers.advance(1);
    assert.equal(gw.plugins.table.get(pluginId), undefined);
    assert.ok(!gw.hub.running.emitters.includes('beats'));
    const line = gw.logs.find((l) => l.msg === 'plugin missed its heartbeats; removed from the table');
    assert.ok(line, 'a log line says so');
    assert.equal(line.level, 40, 'at warn');
    assert.deepEqual((line['plugin'] as { name: string }).name, 'beater');
    assert.equal(line['leaseTtlMs'], 3_000);
    assert.equal(
      await metricValue(gw.registry, 'polku_registry_plugins_removed_total', { origin: 'registered', reason: 'lease_expired' }),
      1,
    );
    const ack = await sendRouted(gw.client, 'too-late', ['beats']);
    assert.equal(ack.errors[0]?.code, 'UNROUTABLE', 'events for it are refused and counted');
    assert.deepEqual(await reg.heartbeat(pluginId), { acknowledged: false });
  });

  test('each Heartbeat renews the lease from that moment', async () => {
    const { pluginId } = await register();
    gw.timers.advance(2_000);
    assert.deepEqual(await reg.heartbeat(pluginId), { acknowledged: true });
    gw.timers.advance(2_000);
    assert.deepEqual(await reg.heartbeat(pluginId), { acknowledged: true });
    gw.timers.advance(2_999);
    assert.ok(gw.plugins.table.get(pluginId), '6999 ms after registering, 2999 ms after the last beat');
    gw.timers.advance(1);
    assert.equal(gw.plugins.table.get(pluginId), undefined);
  });

  test('after losing its lease the plugin registers again and events named for it flow again', async () => {
    const { pluginId } = await register();
    gw.timers.advance(3_000);
    assert.equal((await sendRouted(gw.client, 'lost', ['beats'])).errors[0]?.code, 'UNROUTABLE');
    const again = await register();
    assert.notEqual(again.pluginId, pluginId);
    assert.deepEqual((await sendRouted(gw.client, 'back', ['beats'])).event_ids, ['back']);
    await until(() => plugin.received.some((e) => e.id === 'back'), 'the event at the plugin');
    await reg.unregister(again.pluginId);
  });
});
