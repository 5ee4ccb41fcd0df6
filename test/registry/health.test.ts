// Periodic Health on fake time: a failing plugin leaves routing (it stays in the table) and comes
// back when healthy. And the table as GET /admin/plugins and `polku plugins` show it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { formatPluginTable } from '../../src/cli/plugins.js';
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

describe('periodic Health checks (POLKU_REGISTRY_HEALTH_INTERVAL_MS)', () => {
  let gw: TestGateway;
  let reg: ReturnType<typeof registryClient>;
  let plugin: TestEmitterPlugin;

  before(async () => {
    gw = await startTestGateway({ heartbeatIntervalMs: 1_000, missedBeats: 1_000, healthIntervalMs: 1_000 });
    reg = registryClient(gw.grpcPort);
    plugin = await emitterPlugin('flaky');
  });
  after(async () => {
    reg.close();
    await gw.stop();
    await plugin.server.close();
  });

  test('a plugin failing Health twice in a row leaves routing, stays in the table, and returns once healthy', async () => {
    const { pluginId } = await reg.register({ name: 'flaky', type: EMITTER }, plugin.address);
    const entry = gw.plugins.table.get(pluginId)!;
    plugin.healthy = false;
    gw.timers.advance(1_000);
    await until(() => entry.failures === 1, 'the first failed check');
    assert.equal(entry.routing, true, 'one failed check is not enough');
    gw.timers.advance(1_000);
    await until(() => !entry.routing, 'the plugin out of routing');
    assert.ok(!gw.hub.running.emitters.includes('flaky'));
    assert.equal((await sendRouted(gw.client, 'while-sick', ['flaky'])).errors[0]?.code, 'UNROUTABLE');
    const row = (await gw.plugins.rows()).find((r) => r.name === 'flaky')!;
    assert.deepEqual([row.state, row.health, row.healthMessage], ['unhealthy', 'unhealthy', 'broken on purpose']);
    assert.ok(gw.logs.some((l) => l.msg === 'plugin failed its Health checks; out of routing until healthy'));
    assert.equal(await metricValue(gw.registry, 'polku_registry_health_transitions_total', { origin: 'registered', to: 'unhealthy' }), 1);

    plugin.healthy = true;
    gw.timers.advance(1_000);
    await until(() => entry.routing, 'the plugin back in routing');
    assert.deepEqual((await sendRouted(gw.client, 'healthy-again', ['flaky'])).event_ids, ['healthy-again']);
    await until(() => plugin.received.some((e) => e.id === 'healthy-again'), 'the event at the plugin');
    assert.equal(await metricValue(gw.registry, 'polku_registry_health_transitions_total', { origin: 'registered', to: 'healthy' }), 1);
    assert.equal(gw.plugins.table.get(pluginId), entry, 'the same entry and id throughout');
  });

  test('GET /admin/plugins lists each plugin: name, type, address, origin, health, last heartbeat, lease left', async () => {
    const res = await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/plugins`);
    assert.equal(res.status, 200);
    const { plugins } = (await res.json()) as { plugins: Array<Record<string, unknown>> };
    const memory = plugins.find((p) => p['name'] === 'memory')!;
    assert.deepEqual([memory['type'], memory['origin'], memory['state'], memory['health']], ['emitter', 'static', 'routing', 'healthy']);
    const flaky = plugins.find((p) => p['name'] === 'flaky')!;
    assert.equal(flaky['type'], 'emitter');
    assert.equal(flaky['origin'], 'registered');
    assert.equal(flaky['address'], plugin.address);
    assert.equal(flaky['health'], 'healthy');
    assert.equal(flaky['routeName'], 'flaky');
    assert.match(String(flaky['lastHeartbeat']), /^\d{4}-\d\d-\d\dT/);
    assert.equal(typeof flaky['leaseLeftMs'], 'number');
    assert.equal(typeof flaky['id'], 'string');
    assert.equal((await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/plugins`, { method: 'POST' })).status, 405);
  });

  test('polku plugins prints the rows as a table, with a note under an unhealthy one', async () => {
    const rows = await gw.plugins.rows();
    const now = gw.clock.nowMs() + 1_500;
    const text = formatPluginTable([...rows, { ...rows.at(-1)!, name: 'sick', health: 'unhealthy', healthMessage: 'no answer' }], now);
    const lines = text.split('\n');
    assert.match(lines[0]!, /^NAME\s+TYPE\s+ORIGIN\s+ADDRESS\s+ROUTE\/SOURCES\s+STATE\s+HEALTH\s+LAST HEARTBEAT\s+LEASE LEFT$/);
    assert.match(
      lines.find((l) => l.startsWith('memory'))!,
      /^memory\s+emitter\s+static\s+\(in process\)\s+memory\s+routing\s+healthy\s+-\s+-$/,
    );
    assert.match(
      lines.find((l) => l.startsWith('flaky'))!,
      new RegExp(
        `^flaky\\s+emitter\\s+registered\\s+${plugin.address.replace(/\./g, '\\.')}\\s+flaky\\s+routing\\s+healthy\\s+\\d+\\.\\ds ago\\s+\\d+\\.\\ds$`,
      ),
    );
    assert.equal(lines.at(-1), '  └ no answer');
    // A discovered Service not admitted yet may have no address: not "in process".
    const pending = {
      ...rows.at(-1)!,
      name: 'plugins/audit',
      type: 'unknown' as const,
      origin: 'kubernetes' as const,
      address: '',
      state: 'pending' as const,
      health: 'unknown' as const,
      service: 'plugins/audit',
      healthMessage: 'the Service has 2 ports',
      target: null,
      id: null,
      routeName: null,
      sources: [],
      lastHeartbeat: null,
      leaseLeftMs: null,
    };
    const pendingLines = formatPluginTable([pending], now).split('\n');
    assert.match(pendingLines[1]!, /^plugins\/audit\s+unknown\s+kubernetes\s+-\s/);
    assert.equal(pendingLines[2], '  └ plugins/audit: the Service has 2 ports');
  });
});
