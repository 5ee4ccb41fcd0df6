// Same-node preference from EndpointSlices, through the real client against the in-process API
// server: a ready endpoint on NODE_NAME is dialled directly; without one, the Service's cluster
// IP; slices RBAC does not allow are skipped.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { until } from '../helpers/gateway-harness.js';
import { emitterPlugin, sendRouted, type TestEmitterPlugin } from '../registry/helpers.js';
import { FakeApiServer } from './fake-apiserver.js';
import { endpointSlice, readyz, service, startDiscoveryGateway, type DiscoveryGateway } from './helpers.js';

describe('Kubernetes discovery: EndpointSlices and the same node', () => {
  let api: FakeApiServer;
  let gw: DiscoveryGateway | undefined;
  /** Behind the cluster IP (127.0.0.1) and on this node's endpoint (127.0.0.2): one plugin each. */
  let remote: TestEmitterPlugin;
  let local: TestEmitterPlugin;

  before(async () => {
    api = await new FakeApiServer().start();
    remote = await emitterPlugin('audit', 'audit', '127.0.0.1');
    local = await emitterPlugin('audit', 'audit', '127.0.0.2');
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    api.delete('services', 'p', 'audit');
    api.delete('endpointslices', 'p', 'audit-abcde');
  });
  after(async () => {
    await api.stop();
    await remote.server.close();
    await local.server.close();
  });

  const applyService = () => api.apply('services', service('p', 'audit', { port: remote.server.port, portName: 'grpc' }));
  const applySlice = (localReady: boolean) =>
    api.apply(
      'endpointslices',
      endpointSlice('p', 'audit', { name: 'grpc', port: local.server.port }, [
        { ip: '127.0.0.3', node: 'node-b' },
        { ip: '127.0.0.2', node: 'node-a', ready: localReady },
      ]),
    );
  const target = () => gw!.plugins.table.named('audit')?.target;

  test('a ready endpoint on this node is dialled directly, on the target port the slice names', async () => {
    applyService();
    applySlice(true);
    gw = await startDiscoveryGateway(api, { namespaces: ['p'], nodeName: 'node-a' });
    await until(() => gw!.discovery.notReady === null, 'the first sync');
    assert.equal(target(), `127.0.0.2:${local.server.port}`);
    const row = (await gw.plugins.rows()).find((r) => r.name === 'audit')!;
    assert.equal(row.address, `127.0.0.2:${local.server.port}`);
    await sendRouted(gw.client, 'node-local', ['audit']);
    await until(() => local.received.some((e) => e.id === 'node-local'), 'the event at the same-node endpoint');
    assert.equal(remote.received.length, 0);
    const sliceWatch = api.requests.find((r) => r.kind === 'endpointslices' && r.watch)!;
    assert.equal(sliceWatch.query['labelSelector'], 'polku.io/plugin');
  });

  test('when this node has no ready endpoint the cluster IP is dialled, and the endpoint is preferred again once ready', async () => {
    applyService();
    applySlice(false);
    gw = await startDiscoveryGateway(api, { namespaces: ['p'], nodeName: 'node-a' });
    await until(() => target() === `127.0.0.1:${remote.server.port}`, 'the cluster IP');
    await sendRouted(gw.client, 'via-cluster-ip', ['audit']);
    await until(() => remote.received.some((e) => e.id === 'via-cluster-ip'), 'the event through the cluster IP');
    applySlice(true);
    await until(() => target() === `127.0.0.2:${local.server.port}`, 'the same-node endpoint once ready', 2_000);
    applySlice(false);
    await until(() => target() === `127.0.0.1:${remote.server.port}`, 'back to the cluster IP when it is not', 2_000);
  });

  test('without NODE_NAME there is no same-node preference', async () => {
    applyService();
    applySlice(true);
    gw = await startDiscoveryGateway(api, { namespaces: ['p'] });
    await until(() => gw!.discovery.notReady === null, 'the first sync');
    assert.equal(target(), `127.0.0.1:${remote.server.port}`);
  });

  test('EndpointSlices the service account may not read (403) are skipped: cluster IPs, and readiness does not wait for them', async () => {
    applyService();
    applySlice(true);
    api.fail('endpointslices', 403, 1); // once: a retry would get through, and is counted below
    const asked = api.requests.length;
    gw = await startDiscoveryGateway(api, { namespaces: ['p'], nodeName: 'node-a' });
    await until(() => gw!.discovery.notReady === null, 'the first sync');
    assert.equal((await readyz(gw)).status, 200);
    assert.equal(target(), `127.0.0.1:${remote.server.port}`);
    assert.ok(gw.logs.some((l) => l.msg === 'cannot read endpointslices (RBAC?); going on without them'));
    assert.equal(api.requests.slice(asked).filter((r) => r.kind === 'endpointslices').length, 1, 'not retried');
  });

  test('a new Service seen before its first EndpointSlice waits for a ready pod instead of dialling its cluster IP', async () => {
    gw = await startDiscoveryGateway(api, { namespaces: ['p'], nodeName: 'node-a' });
    await until(() => gw!.discovery.notReady === null, 'the first sync');
    const remoteChecks = remote.healthChecks;
    api.apply('services', service('p', 'audit', { port: remote.server.port, portName: 'grpc', selector: { app: 'audit' } }));
    await until(() => gw!.logs.some((l) => l.msg === 'plugin Service has no ready endpoint yet; waiting for one'), 'the Service seen');
    const row = (await gw.plugins.rows()).find((r) => r.service === 'p/audit');
    assert.equal(row?.state, 'pending');
    assert.equal(row?.healthMessage, 'no ready endpoint yet: waiting for a ready pod of the Service');
    applySlice(true); // the pod on this node is ready
    await until(() => target() === `127.0.0.2:${local.server.port}`, 'the same-node endpoint');
    // Admissions of one Service run one after another: a dial of the cluster IP would have finished.
    assert.equal(remote.healthChecks, remoteChecks, 'the cluster IP was never dialled');
    assert.ok(
      !gw.logs.some(
        (l) => l.msg === 'discovered plugin not admitted; retrying at each health sweep' || l.msg === 'plugin Service cannot be used',
      ),
      'no warning on the way',
    );
  });
});
