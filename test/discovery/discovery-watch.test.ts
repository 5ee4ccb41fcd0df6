// The watch through discovery's own list/watch client against the in-process API server: dropped
// connections resume from the last resourceVersion (bookmarks included), 410 Gone relists after
// a backoff (as an ERROR event and as HTTP 410), and other watch errors restart the informer
// with a doubling backoff, all on fake time.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { flushPromises } from '../../src/testing/index.js';
import { until } from '../fixtures/plugin-process.js';
import { emitterPlugin, metricValue, type TestEmitterPlugin } from '../registry/helpers.js';
import { FakeApiServer } from './fake-apiserver.js';
import { BACKOFF, service, startDiscoveryGateway, type DiscoveryGateway } from './helpers.js';

describe('Kubernetes discovery: the watch', () => {
  let api: FakeApiServer;
  let gw: DiscoveryGateway;
  let audit: TestEmitterPlugin;
  let late: TestEmitterPlugin;
  const lists = () => api.requests.filter((r) => r.kind === 'services' && !r.watch).length;
  const watches = () => api.requests.filter((r) => r.kind === 'services' && r.watch);
  const count = async (name: string) => (await metricValue(gw.registry, name, { resource: 'services' })) ?? 0;

  before(async () => {
    audit = await emitterPlugin('audit');
    late = await emitterPlugin('late');
  });
  beforeEach(async () => {
    api = await new FakeApiServer().start();
    api.apply('services', service('w', 'audit', { port: audit.server.port }));
    gw = await startDiscoveryGateway(api, { namespaces: ['w'], endpointSlices: false });
    await until(() => gw.discovery.notReady === null && api.watching('services') === 1, 'the first sync and an open watch');
  });
  afterEach(async () => {
    await gw.stop();
    await api.stop();
  });
  after(async () => {
    await audit.server.close();
    await late.server.close();
  });

  /** Breaks the open watch and holds the informer in its restart backoff (one failed watch). */
  async function breakWatch(): Promise<void> {
    const errors = await count('polku_discovery_watch_errors_total');
    api.fail('services', 500, 1, true);
    api.dropWatches();
    await until(async () => (await count('polku_discovery_watch_errors_total')) === errors + 1, 'the failed watch');
  }

  for (const goneAs of ['event', 'http'] as const) {
    test(`410 Gone (${goneAs === 'event' ? 'an ERROR event with a Status, code 410, reason Expired' : 'HTTP 410 on the watch request'}) relists after a backoff and catches up`, async () => {
      api.goneAs = goneAs;
      await breakWatch();
      api.apply('services', service('w', 'late', { port: late.server.port })); // missed while not watching
      api.compact(); // …and the history that had it is gone
      const before = lists();
      const staleRv = watches().at(-1)!.query['resourceVersion'];
      const relists = await count('polku_discovery_relists_total');
      gw.timers.advance(BACKOFF.initialMs); // the restart: a watch from the stale version, refused 410
      await until(async () => (await count('polku_discovery_relists_total')) === relists + 1, 'the relist to begin');
      assert.equal(watches().at(-1)!.query['resourceVersion'], staleRv);
      await flushPromises();
      assert.equal(lists(), before, 'the relist waits for its backoff');
      assert.equal(gw.plugins.table.named('late'), undefined);
      gw.timers.advance(BACKOFF.maxMs);
      await until(() => gw.plugins.table.named('late')?.routing === true, 'the missed Service in the table');
      assert.equal(lists(), before + 1);
      await until(() => api.watching('services') === 1, 'a new watch');
      assert.equal(watches().at(-1)!.query['resourceVersion'], api.resourceVersion, 'watching from the relist');
    });
  }

  test('a watch the server ends (or resets) is resumed from the last version seen, a bookmark included, without relisting', async () => {
    const before = lists();
    api.apply('services', service('w', 'not-a-plugin', { port: 1, labels: { app: 'x' } })); // moves the version, not sent to us
    api.bookmark();
    const bookmarked = api.resourceVersion;
    api.dropWatches(); // graceful: the bookmark is read first
    await until(() => watches().at(-1)!.query['resourceVersion'] === bookmarked, 'a watch from the bookmark');
    const errors = await count('polku_discovery_watch_errors_total');
    api.dropWatches(true); // abrupt: the socket is destroyed, which the library reports as an error…
    await until(async () => (await count('polku_discovery_watch_errors_total')) === errors + 1, 'the reset reported');
    gw.timers.advance(BACKOFF.initialMs); // …so the informer restarts after the backoff, from where it was
    await until(
      () => watches().filter((w) => w.query['resourceVersion'] === bookmarked).length === 2 && api.watching('services') === 1,
      'resumed again',
    );
    assert.equal(lists(), before, 'no relist');
    api.apply('services', service('w', 'late', { port: late.server.port }));
    await until(() => gw.plugins.table.named('late') !== undefined, 'a change after the resumed watch');
    assert.ok(
      watches().every((w) => w.query['allowWatchBookmarks'] === 'true'),
      'every watch asks for bookmarks',
    );
  });

  test('other watch errors restart the informer after a backoff that doubles (100, 200, 400 ms here)', async () => {
    api.fail('services', 500, 3, true);
    api.dropWatches();
    for (const [i, delay] of [100, 200, 400].entries()) {
      await until(async () => (await count('polku_discovery_watch_errors_total')) === i + 1, `failure ${i + 1}`);
      const asked = watches().length;
      gw.timers.advance(delay - 1);
      await flushPromises();
      assert.equal(watches().length, asked, `no retry before ${delay} ms`);
      gw.timers.advance(1);
      await until(() => watches().length === asked + 1, `the retry after ${delay} ms`);
    }
    await until(() => api.watching('services') === 1, 'the watch open again');
    api.apply('services', service('w', 'late', { port: late.server.port }));
    await until(() => gw.plugins.table.named('late') !== undefined, 'events flow after the restarts');
    assert.equal(gw.discovery.notReady, null, 'readiness is kept through watch errors after the first sync');
  });
});
