// Kubernetes discovery through its own list/watch client against an in-process API server: the
// first sync gates readiness; Services added, changed and deleted reach the table within 2 s;
// discovered plugins pass Info+Health first; namespaces get one informer each.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { until } from '../helpers/gateway-harness.js';
import { emitterPlugin, ingestorPlugin, metricValue, sendRouted, type TestEmitterPlugin } from '../registry/helpers.js';
import { FakeApiServer } from './fake-apiserver.js';
import { BACKOFF, readyz, service, startDiscoveryGateway, type DiscoveryGateway } from './helpers.js';

const WITHIN_MS = 2_000; // the bound for a Service change to reach the table

describe('Kubernetes discovery: sync and changes', () => {
  let api: FakeApiServer;
  let gw: DiscoveryGateway | undefined;
  const closers: Array<() => Promise<void>> = [];
  const plugin = async (name: string, emitterName = name) => {
    const p = await emitterPlugin(name, emitterName);
    closers.push(() => p.server.close());
    return p;
  };

  before(async () => {
    api = await new FakeApiServer().start();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    for (const ns of ['plugins', 'team-a', 'team-b', 'team-c'])
      for (const name of ['audit', 'csv', 'other', 'late', 'unused', 'a', 'b', 'c']) api.delete('services', ns, name);
  });
  after(async () => {
    await api.stop();
    for (const c of closers) await c();
  });

  test('readiness waits for the first list; a failed list is retried after the backoff, then the plugins are in the table', async () => {
    const audit = await plugin('audit-emitter', 'audit');
    api.apply(
      'services',
      service('plugins', 'audit', {
        port: audit.server.port,
        annotations: { 'polku.io/name': 'audit-emitter', 'polku.io/emitter-name': 'audit', 'polku.io/port': 'grpc' },
      }),
    );
    api.apply('services', service('plugins', 'unused', { port: 1, labels: { app: 'not-a-plugin' } }));
    api.fail('services', 500, 1, false);
    gw = await startDiscoveryGateway(api, { namespaces: ['plugins'], endpointSlices: false });
    await until(() => api.requests.some((r) => !r.watch), 'the first (failing) list');
    const notYet = await readyz(gw);
    assert.deepEqual(notYet, { status: 503, body: 'not ready: waiting for the first Kubernetes discovery sync' });
    gw.timers.advance(BACKOFF.initialMs);
    await until(() => gw!.plugins.table.named('audit-emitter') !== undefined, 'the plugin in the table');
    await until(() => gw!.discovery.notReady === null, 'the first sync');
    assert.equal((await readyz(gw)).status, 200);
    const row = (await gw.plugins.rows()).find((r) => r.name === 'audit-emitter')!;
    assert.deepEqual(
      [row.origin, row.address, row.routeName, row.service],
      ['kubernetes', `127.0.0.1:${audit.server.port}`, 'audit', 'plugins/audit'],
    );
    assert.equal(gw.plugins.table.named('unused'), undefined, 'the label selector keeps other Services out');
    const lists = api.requests.filter((r) => !r.watch);
    assert.ok(lists.every((r) => r.query['labelSelector'] === 'polku.io/plugin' && r.namespace === 'plugins'));
    const watch = api.requests.find((r) => r.watch)!;
    assert.equal(watch.query['allowWatchBookmarks'], 'true');
    assert.match(watch.query['resourceVersion']!, /^\d+$/);
    await sendRouted(gw.client, 'found', ['audit']);
    await until(() => audit.received.some((e) => e.id === 'found'), 'the event at the discovered plugin');
  });

  test('a Service added, changed and deleted reaches the table within 2 s each time', async () => {
    gw = await startDiscoveryGateway(api, { namespaces: ['plugins'], endpointSlices: false });
    await until(() => gw!.discovery.notReady === null, 'the first sync');
    const first = await plugin('late');
    api.apply('services', service('plugins', 'late', { port: first.server.port }));
    await until(() => gw!.plugins.table.named('late')?.routing === true, 'the added Service in the table', WITHIN_MS);

    api.apply('services', service('plugins', 'late', { port: first.server.port, annotations: { 'polku.io/emitter-name': 'late-route' } }));
    await until(() => gw!.plugins.table.named('late')?.spec.emitterName === 'late-route', 'the changed route name', WITHIN_MS);
    assert.ok(gw.hub.running.emitters.includes('late-route') && !gw.hub.running.emitters.includes('late'));

    const moved = await plugin('late');
    api.apply('services', service('plugins', 'late', { port: moved.server.port, annotations: { 'polku.io/emitter-name': 'late-route' } }));
    await until(() => gw!.plugins.table.named('late')?.target === `127.0.0.1:${moved.server.port}`, 'the new port', WITHIN_MS);
    await sendRouted(gw.client, 'after-change', ['late-route']);
    await until(() => moved.received.some((e) => e.id === 'after-change'), 'the event at the new address');

    api.delete('services', 'plugins', 'late');
    await until(() => gw!.plugins.table.named('late') === undefined, 'the deleted Service out of the table', WITHIN_MS);
    assert.equal((await sendRouted(gw.client, 'after-delete', ['late-route'])).errors[0]?.code, 'UNROUTABLE');
    assert.equal(
      await metricValue(gw.registry, 'polku_registry_plugins_removed_total', { origin: 'kubernetes', reason: 'service_deleted' }),
      1,
    );
  });

  test('an ingestor Service takes its sources from the annotation and parses raw batches of them', async () => {
    const csv = await ingestorPlugin('csv-ingestor', ['ignored-by-annotation']);
    closers.push(() => csv.server.close());
    gw = await startDiscoveryGateway(api, { namespaces: ['plugins'], endpointSlices: false });
    api.apply(
      'services',
      service('plugins', 'csv', {
        type: 'ingestor',
        port: csv.server.port,
        annotations: { 'polku.io/name': 'csv-ingestor', 'polku.io/sources': 'csv, tsv' },
      }),
    );
    await until(() => gw!.plugins.table.named('csv-ingestor') !== undefined, 'the ingestor in the table', WITHIN_MS);
    assert.deepEqual(gw.plugins.table.named('csv-ingestor')!.spec.sources, ['csv', 'tsv']);
    const ack = await new Promise<{ event_ids: string[] }>((resolve, reject) =>
      gw!.client['SendEvent']({ source: 'tsv', raw: Buffer.from('x\ny\n') }, (err: Error | null, a: never) =>
        err ? reject(err) : resolve(a),
      ),
    );
    assert.equal(ack.event_ids.length, 2);
  });

  test('a discovered plugin enters only after answering Info and Health, is retried at each Health sweep, and leaves routing while unhealthy', async () => {
    const sick: TestEmitterPlugin = await plugin('other');
    sick.healthy = false;
    api.apply('services', service('plugins', 'other', { port: sick.server.port }));
    api.apply('services', service('plugins', 'c', { port: sick.server.port, annotations: { 'polku.io/name': 'memory' } }));
    gw = await startDiscoveryGateway(api, { namespaces: ['plugins'], endpointSlices: false }, { healthIntervalMs: 1_000 });
    await until(() => gw!.discovery.notReady === null, 'the first sync (with refusals)');
    assert.equal(gw.plugins.table.named('other'), undefined);
    const pending = (await gw.plugins.rows()).filter((r) => r.state === 'pending');
    assert.match(pending.find((r) => r.name === 'other')!.healthMessage, /reports unhealthy: broken on purpose/);
    assert.match(pending.find((r) => r.name === 'memory')!.healthMessage, /configured statically/);
    sick.healthy = true;
    gw.timers.advance(1_000);
    await until(() => gw!.plugins.table.named('other')?.routing === true, 'admitted at the next sweep');
    assert.equal(gw.plugins.table.named('memory'), undefined, 'a static name stays static');
    // Once in, it is checked like a registered plugin: two failed checks take it out of routing.
    const entry = gw.plugins.table.named('other')!;
    sick.healthy = false;
    gw.timers.advance(1_000);
    await until(() => entry.failures === 1, 'one failed check');
    gw.timers.advance(1_000);
    await until(() => !entry.routing, 'out of routing');
    assert.equal((await sendRouted(gw.client, 'to-sick', ['other'])).errors[0]?.code, 'UNROUTABLE');
    sick.healthy = true;
    gw.timers.advance(1_000);
    await until(() => entry.routing, 'back in routing');
  });

  test('listed namespaces get one informer each; Services elsewhere are not seen', async () => {
    const [a, b, c] = [await plugin('a'), await plugin('b'), await plugin('c')];
    api.apply('services', service('team-a', 'a', { port: a.server.port }));
    api.apply('services', service('team-b', 'b', { port: b.server.port }));
    api.apply('services', service('team-c', 'c', { port: c.server.port }));
    const before = api.requests.length;
    gw = await startDiscoveryGateway(api, { namespaces: ['team-a', 'team-b'], endpointSlices: false });
    await until(() => gw!.discovery.notReady === null, 'the first sync');
    assert.deepEqual(
      gw.plugins.table
        .entries()
        .map((e) => e.service)
        .sort(),
      ['team-a/a', 'team-b/b'],
    );
    const spoken = api.requests.slice(before);
    assert.deepEqual([...new Set(spoken.filter((r) => !r.watch).map((r) => r.namespace))].sort(), ['team-a', 'team-b']);
  });
});
