// PluginRegistry.Register/Heartbeat/Unregister on a real gateway, with real (SDK) plugins.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PluginType } from '../../src/gen/polku/v1/plugin.js';
const UNSPECIFIED = PluginType.PLUGIN_TYPE_UNSPECIFIED;
import { until } from '../fixtures/plugin-process.js';
import { DIAL_REFUSAL } from '../../src/registry/registry-service.js';
import {
  codeOf,
  connectionCounter,
  detailsOf,
  emitterPlugin,
  ingestorPlugin,
  metricValue,
  registryClient,
  sendRouted,
  startTestGateway,
  type TestEmitterPlugin,
  type TestGateway,
} from './helpers.js';

const EMITTER = PluginType.PLUGIN_TYPE_EMITTER;
const INGESTOR = PluginType.PLUGIN_TYPE_INGESTOR;

describe('PluginRegistry: Register, Heartbeat, Unregister', () => {
  let gw: TestGateway;
  let reg: ReturnType<typeof registryClient>;
  const plugins: TestEmitterPlugin[] = [];
  const plugin = async (name: string, emitterName = name) => {
    const p = await emitterPlugin(name, emitterName);
    plugins.push(p);
    return p;
  };

  before(async () => {
    gw = await startTestGateway({ registerBurst: 1_000 }); // the Register rate limit is tested on its own
    reg = registryClient(gw.grpcPort);
  });
  after(async () => {
    reg.close();
    await gw.stop();
    await Promise.all(plugins.map((p) => p.server.close()));
  });

  test('a healthy plugin is accepted with an id and the heartbeat interval, and events routed to it arrive at once', async () => {
    const slack = await plugin('slack-emitter', 'slack');
    const res = await reg.register({ name: 'slack-emitter', type: EMITTER, emitterName: 'slack' }, slack.address);
    assert.equal(res.accepted, true);
    assert.match(res.pluginId, /^[0-9a-f]{32}$/, '128 random bits');
    assert.equal(res.message, 'heartbeat_interval_ms=5000');
    const ack = await sendRouted(gw.client, 'to-slack-1', ['slack']);
    assert.deepEqual(ack.event_ids, ['to-slack-1']);
    await until(() => slack.received.some((e) => e.id === 'to-slack-1'), 'the event at the plugin');
    assert.ok(gw.hub.running.emitters.includes('slack'));
  });

  test('the owner re-registering the same name and address with its plugin_id keeps that id, and the table holds one row', async () => {
    const p = await plugin('twice');
    const first = await reg.register({ name: 'twice', type: EMITTER }, p.address);
    assert.equal(
      await codeOf(reg.register({ name: 'twice', type: EMITTER }, p.address)),
      'ALREADY_EXISTS',
      'without the id: not the owner',
    );
    const second = await reg.register({ name: 'twice', type: EMITTER }, p.address, first.pluginId);
    assert.equal(second.pluginId, first.pluginId);
    const rows = (await gw.plugins.rows()).filter((r) => r.name === 'twice');
    assert.equal(rows.length, 1);
    assert.equal(gw.hub.running.emitters.filter((n) => n === 'twice').length, 1);
  });

  test('the owner moving to a new address replaces the old entry once it answers healthy; an unhealthy one is refused and the old one stays', async () => {
    const old = await plugin('mover');
    const first = await reg.register({ name: 'mover', type: EMITTER }, old.address);
    const sick = await plugin('mover');
    sick.healthy = false;
    assert.equal(await codeOf(reg.register({ name: 'mover', type: EMITTER }, sick.address, first.pluginId)), 'UNAVAILABLE');
    assert.equal(gw.plugins.table.named('mover')!.target, old.address, 'the old address is kept');
    const fresh = await plugin('mover');
    assert.equal(await codeOf(reg.register({ name: 'mover', type: EMITTER }, fresh.address)), 'ALREADY_EXISTS', 'not without the id');
    const moved = await reg.register({ name: 'mover', type: EMITTER }, fresh.address, first.pluginId);
    assert.notEqual(moved.pluginId, first.pluginId);
    assert.equal(gw.plugins.table.named('mover')!.target, fresh.address);
    assert.equal((await reg.heartbeat(first.pluginId)).acknowledged, false, 'the replaced id is gone');
    await sendRouted(gw.client, 'after-move', ['mover']);
    await until(() => fresh.received.some((e) => e.id === 'after-move'), 'the event at the new address');
    assert.equal(old.received.length, 0);
    assert.equal(await metricValue(gw.registry, 'polku_registry_plugins_removed_total', { origin: 'registered', reason: 'replaced' }), 1);
  });

  test('malformed registrations are refused INVALID_ARGUMENT before anything is dialled', async () => {
    const counter = await connectionCounter();
    const at = `127.0.0.1:${counter.port}`;
    const cases: Array<[string, Parameters<typeof reg.register>[0], string, RegExp]> = [
      ['no name', { type: EMITTER }, at, /PluginInfo.name is empty/],
      ['no type', { name: 'typeless', type: UNSPECIFIED }, at, /PLUGIN_TYPE_EMITTER or PLUGIN_TYPE_INGESTOR/],
      ['bad address', { name: 'nowhere', type: EMITTER }, 'not an address', /is not host:port/],
      ['https address', { name: 'tls', type: EMITTER }, `https://${at}`, /https/],
      ['ingestor without sources', { name: 'sourceless', type: INGESTOR }, at, /at least one source/],
      ['emitter name with spaces', { name: 'spaced', type: EMITTER, emitterName: 'a b' }, at, /emitter_name/],
    ];
    for (const [what, info, address, why] of cases) {
      const call = reg.register(info, address);
      assert.equal(await codeOf(call), 'INVALID_ARGUMENT', what);
      assert.match(await detailsOf(reg.register(info, address)), why, what);
    }
    assert.equal(counter.connections(), 0);
    await counter.close();
  });

  test('a plugin that does not answer, or answers as something else, is refused UNAVAILABLE with one text, and not added', async () => {
    const counter = await connectionCounter(); // accepts TCP, speaks no gRPC
    assert.equal(await codeOf(reg.register({ name: 'mute', type: EMITTER }, `127.0.0.1:${counter.port}`)), 'UNAVAILABLE');
    const emitter = await plugin('shape-shifter');
    assert.equal(await codeOf(reg.register({ name: 'shape-shifter', type: INGESTOR, sources: ['x'] }, emitter.address)), 'UNAVAILABLE');
    assert.equal(await detailsOf(reg.register({ name: 'impostor', type: EMITTER }, emitter.address)), DIAL_REFUSAL);
    assert.ok(
      gw.logs.some(
        (l) =>
          l.msg === 'registration refused: the plugin did not answer as one' &&
          /calls itself "shape-shifter", not "impostor"/.test(String(l['reason'])),
      ),
      'the details are in the log',
    );
    assert.equal(gw.plugins.table.named('mute'), undefined);
    assert.equal(gw.plugins.table.named('impostor'), undefined);
    await counter.close();
  });

  test('a static emitter keeps its name: a plugin claiming it is refused ALREADY_EXISTS; so is a taken emitter name', async () => {
    const p = await plugin('memory');
    assert.equal(await codeOf(reg.register({ name: 'memory', type: EMITTER }, p.address)), 'ALREADY_EXISTS');
    const q = await plugin('sneaky', 'memory');
    assert.match(
      await detailsOf(reg.register({ name: 'sneaky', type: EMITTER, emitterName: 'memory' }, q.address)),
      /configured statically/,
    );
    const r = await plugin('slack-copy', 'slack');
    assert.match(
      await detailsOf(reg.register({ name: 'slack-copy', type: EMITTER, emitterName: 'slack' }, r.address)),
      /emitter name "slack" is held by plugin "slack-emitter"/,
    );
    assert.ok(gw.hub.running.emitters.includes('memory'));
  });

  test('an ingestor plugin parses raw batches of its sources; after Unregister they are UNKNOWN_SOURCE again', async () => {
    const csv = await ingestorPlugin('lines', ['lines-src']);
    const res = await reg.register({ name: 'lines', type: INGESTOR, sources: ['lines-src'] }, csv.address);
    const ingest = (): Promise<{ event_ids: string[]; errors: Array<{ code: string }> }> =>
      new Promise((resolve, reject) =>
        gw.client['SendEvent']({ source: 'lines-src', raw: Buffer.from('a\nb\n'), format: '' }, (err: Error | null, ack: never) =>
          err ? reject(err) : resolve(ack),
        ),
      );
    assert.equal((await ingest()).event_ids.length, 2);
    await reg.unregister(res.pluginId);
    assert.equal((await ingest()).errors[0]?.code, 'UNKNOWN_SOURCE');
    await csv.server.close();
  });

  test('Unregister removes the plugin and its route: events named for it are refused UNROUTABLE and counted', async () => {
    const p = await plugin('leaver');
    const { pluginId } = await reg.register({ name: 'leaver', type: EMITTER }, p.address);
    const before = (await metricValue(gw.registry, 'polku_events_dropped_total', { reason: 'unroutable' })) ?? 0;
    const removedBefore =
      (await metricValue(gw.registry, 'polku_registry_plugins_removed_total', { origin: 'registered', reason: 'unregistered' })) ?? 0;
    await reg.unregister(pluginId);
    assert.equal(gw.plugins.table.get(pluginId), undefined);
    const ack = await sendRouted(gw.client, 'to-leaver', ['leaver']);
    assert.deepEqual(ack.event_ids, []);
    assert.equal(ack.errors[0]?.code, 'UNROUTABLE');
    assert.equal(await metricValue(gw.registry, 'polku_events_dropped_total', { reason: 'unroutable' }), before + 1);
    assert.equal(await codeOf(reg.unregister(pluginId)), 'OK', 'a second Unregister is a success too');
    assert.equal(
      await metricValue(gw.registry, 'polku_registry_plugins_removed_total', { origin: 'registered', reason: 'unregistered' }),
      removedBefore + 1,
    );
  });

  test("a departed plugin's own metric series leave with it: the plugin label holds only what is in the table", async () => {
    const p = await plugin('counted');
    const { pluginId } = await reg.register({ name: 'counted', type: EMITTER }, p.address);
    await sendRouted(gw.client, 'counted-1', ['counted']);
    await until(() => p.received.length === 1, 'the event at the plugin');
    const series = async (family: string) =>
      (await gw.registry.getSingleMetric(family)!.get()).values.filter((v) => v.labels['plugin'] === 'counted').length;
    await until(async () => (await series('polku_plugin_call_seconds')) > 0, 'the Emit call measured');
    assert.ok((await series('polku_plugin_calls_total')) > 0);
    await reg.unregister(pluginId);
    await until(
      async () =>
        (await series('polku_plugin_calls_total')) +
          (await series('polku_plugin_call_seconds')) +
          (await series('polku_plugin_healthy')) ===
        0,
      'the series gone',
    );
  });

  test('a Heartbeat with an id the table does not know is not acknowledged (the plugin registers again)', async () => {
    assert.deepEqual(await reg.heartbeat('no-such-id'), { acknowledged: false });
  });
});
