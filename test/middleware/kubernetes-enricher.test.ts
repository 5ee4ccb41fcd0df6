// The Kubernetes enricher against the protocol-faithful in-process API server, through its
// list/watch informer (src/discovery/kube/): only this node's pods (field selector), lookups by name,
// IP and container id, owners, updates, deletes with a grace period on fake time, 410 relists,
// and the metadata limit.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import * as K from '../../src/metadata-keys.js';
import { Registry } from 'prom-client';
import { hub } from '../../src/hub/builder.js';
import { KubernetesEnricher, kubernetesEnricher } from '../../src/middleware/kubernetes-enricher.js';
import { createLogger } from '../../src/observability/logger.js';
import { InMemoryEmitter } from '../../src/testing/index.js';
import { PolkuError } from '../../src/errors.js';
import { flushPromises } from '../../src/testing/index.js';
import { FakeApiServer } from '../discovery/fake-apiserver.js';
import { until } from '../helpers/gateway-harness.js';
import { metricValue } from '../registry/helpers.js';
import { BACKOFF, enrich, event, pod, startEnricher, type EnricherRig } from './kubernetes-pods.js';

const CID = 'f'.repeat(64);

describe('kubernetesEnricher', () => {
  let api: FakeApiServer;
  let rig: EnricherRig;
  const lookups = async (result: string, reason: string) =>
    (await metricValue(rig.registry, 'polku_k8s_enrich_lookups_total', { middleware: 'kubernetes', result, reason })) ?? 0;

  beforeEach(async () => {
    api = await new FakeApiServer().start();
    api.apply(
      'pods',
      pod('shop', 'web-7d4b9c8f6-x2x9q', {
        ip: '10.1.0.5',
        labels: { app: 'web', tier: 'frontend', 'pod-template-hash': '7d4b9c8f6' },
        owner: { kind: 'ReplicaSet', name: 'web-7d4b9c8f6' },
        containers: [
          { name: 'web', id: `containerd://${CID}` },
          { name: 'envoy', id: `containerd://${'e'.repeat(64)}` },
        ],
      }),
    );
    api.apply('pods', pod('shop', 'web-on-node-2', { node: 'node-2', ip: '10.1.1.9', labels: { app: 'web' } }));
  });
  afterEach(async () => {
    await rig?.enricher.shutdown();
    await api.stop();
  });

  async function started(options: Parameters<typeof startEnricher>[1] = {}): Promise<EnricherRig> {
    rig = startEnricher(api, options);
    await rig.enricher.whenSynced();
    await until(() => api.watching('pods') === 1, 'the pod watch open');
    return rig;
  }

  test('lists and watches only its own node: fieldSelector=spec.nodeName=node-1, and a pod on node-2 is never cached', async () => {
    await started();
    const podRequests = api.requests.filter((r) => r.kind === 'pods');
    assert.ok(podRequests.some((r) => !r.watch) && podRequests.some((r) => r.watch));
    for (const r of podRequests) assert.equal(r.query['fieldSelector'], 'spec.nodeName=node-1', `${r.watch ? 'watch' : 'list'}`);
    assert.equal(rig.enricher.cachedPods, 1);
    // A pod created on node-2 after the list is not sent on the watch either.
    api.apply('pods', pod('shop', 'late-on-node-2', { node: 'node-2', ip: '10.1.1.10' }));
    api.apply('pods', pod('shop', 'late-on-node-1', { ip: '10.1.0.6' }));
    await until(() => rig.enricher.cachedPods === 2, 'the node-1 pod from the watch');
    assert.deepEqual(enrich(rig, { [K.K8S_POD_NAME]: 'web-on-node-2', [K.K8S_NAMESPACE_NAME]: 'shop' }), {
      [K.K8S_POD_NAME]: 'web-on-node-2',
      [K.K8S_NAMESPACE_NAME]: 'shop',
    });
    assert.equal(enrich(rig, { [K.K8S_POD_IP]: '10.1.1.10' })[K.K8S_POD_NAME], undefined);
    assert.equal(await lookups('miss', 'not_found'), 2);
  });

  test('by pod name and namespace: placement, labels and the Deployment behind the ReplicaSet', async () => {
    await started();
    const md = enrich(rig, { [K.K8S_POD_NAME]: 'web-7d4b9c8f6-x2x9q', [K.K8S_NAMESPACE_NAME]: 'shop', other: 'kept' });
    assert.deepEqual(md, {
      other: 'kept',
      [K.K8S_POD_NAME]: 'web-7d4b9c8f6-x2x9q',
      [K.K8S_NAMESPACE_NAME]: 'shop',
      [K.K8S_POD_UID]: md[K.K8S_POD_UID],
      [K.K8S_POD_IP]: '10.1.0.5',
      [K.K8S_NODE_NAME]: 'node-1',
      [K.K8S_REPLICASET_NAME]: 'web-7d4b9c8f6',
      [K.K8S_DEPLOYMENT_NAME]: 'web',
      'k8s.pod.labels.app': 'web',
      'k8s.pod.labels.tier': 'frontend',
      'k8s.pod.labels.pod-template-hash': '7d4b9c8f6',
    });
    assert.match(md[K.K8S_POD_UID]!, /^uid-\d+$/);
    assert.equal(await lookups('hit', 'pod_name'), 1);
  });

  test('by pod IP; a host-network pod (the node IP) is never matched by IP', async () => {
    api.apply(
      'pods',
      pod('kube-system', 'kube-proxy-abcde', { ip: '10.0.0.1', hostNetwork: true, owner: { kind: 'DaemonSet', name: 'kube-proxy' } }),
    );
    await started();
    const md = enrich(rig, { [K.K8S_POD_IP]: '10.1.0.5' });
    assert.equal(md[K.K8S_POD_NAME], 'web-7d4b9c8f6-x2x9q');
    assert.equal(md[K.K8S_DEPLOYMENT_NAME], 'web');
    assert.equal(md[K.K8S_CONTAINER_NAME], undefined, 'an IP names no container');
    assert.deepEqual(enrich(rig, { [K.K8S_POD_IP]: '10.0.0.1' }), { [K.K8S_POD_IP]: '10.0.0.1' });
    // By name it is found, with its DaemonSet.
    assert.equal(
      enrich(rig, { [K.K8S_POD_NAME]: 'kube-proxy-abcde', [K.K8S_NAMESPACE_NAME]: 'kube-system' })[K.K8S_DAEMONSET_NAME],
      'kube-proxy',
    );
    assert.equal(await lookups('hit', 'pod_ip'), 1);
    assert.equal(await lookups('miss', 'not_found'), 1);
  });

  test('by container id, bare or with the containerd://, docker:// or cri-o:// prefix: the container name too', async () => {
    api.apply('pods', pod('shop', 'docker-pod', { ip: '10.1.0.7', containers: [{ name: 'legacy', id: `docker://${'d'.repeat(64)}` }] }));
    api.apply('pods', pod('shop', 'crio-pod', { ip: '10.1.0.8', containers: [{ name: 'app', id: `cri-o://${'c'.repeat(64)}` }] }));
    await started();
    const cases: Array<[string, string, string]> = [
      [CID, 'web-7d4b9c8f6-x2x9q', 'web'],
      [`containerd://${CID}`, 'web-7d4b9c8f6-x2x9q', 'web'],
      [`containerd://${'e'.repeat(64)}`, 'web-7d4b9c8f6-x2x9q', 'envoy'],
      [`docker://${'d'.repeat(64)}`, 'docker-pod', 'legacy'],
      ['d'.repeat(64), 'docker-pod', 'legacy'],
      [`cri-o://${'c'.repeat(64)}`, 'crio-pod', 'app'],
    ];
    for (const [id, podName, container] of cases) {
      const md = enrich(rig, { [K.CONTAINER_ID]: id });
      assert.equal(md[K.K8S_POD_NAME], podName, id);
      assert.equal(md[K.K8S_CONTAINER_NAME], container, id);
      assert.equal(md[K.CONTAINER_ID], id, 'the id is left as sent');
    }
    assert.equal(await lookups('hit', 'container_id'), cases.length);
    // An unknown container id falls back to the next lookup (the pod name).
    const md = enrich(rig, { [K.CONTAINER_ID]: 'containerd://unknown', [K.K8S_POD_NAME]: 'crio-pod', [K.K8S_NAMESPACE_NAME]: 'shop' });
    assert.equal(md[K.K8S_POD_IP], '10.1.0.8');
    assert.equal(md[K.K8S_CONTAINER_NAME], undefined);
  });

  test('owners: DaemonSet, StatefulSet, a CronJob through its Job, a bare Job, a bare ReplicaSet', async () => {
    api.apply('pods', pod('obs', 'tapio-abcde', { owner: { kind: 'DaemonSet', name: 'tapio' } }));
    api.apply('pods', pod('db', 'pg-0', { owner: { kind: 'StatefulSet', name: 'pg' } }));
    api.apply('pods', pod('ops', 'backup-29012345-q8r7t', { owner: { kind: 'Job', name: 'backup-29012345' } }));
    api.apply('pods', pod('ops', 'migrate-abc12', { owner: { kind: 'Job', name: 'migrate' } }));
    api.apply('pods', pod('ops', 'rs-only-x1y2z', { owner: { kind: 'ReplicaSet', name: 'rs-only' }, labels: { app: 'rs-only' } }));
    await started();
    const owners = (ns: string, name: string) => {
      const md = enrich(rig, { [K.K8S_POD_NAME]: name, [K.K8S_NAMESPACE_NAME]: ns });
      return Object.fromEntries(
        [K.K8S_DEPLOYMENT_NAME, K.K8S_REPLICASET_NAME, K.K8S_DAEMONSET_NAME, K.K8S_STATEFULSET_NAME, K.K8S_JOB_NAME, K.K8S_CRONJOB_NAME]
          .filter((k) => md[k] !== undefined)
          .map((k) => [k, md[k]]),
      );
    };
    assert.deepEqual(owners('obs', 'tapio-abcde'), { [K.K8S_DAEMONSET_NAME]: 'tapio' });
    assert.deepEqual(owners('db', 'pg-0'), { [K.K8S_STATEFULSET_NAME]: 'pg' });
    assert.deepEqual(owners('ops', 'backup-29012345-q8r7t'), { [K.K8S_JOB_NAME]: 'backup-29012345', [K.K8S_CRONJOB_NAME]: 'backup' });
    assert.deepEqual(owners('ops', 'migrate-abc12'), { [K.K8S_JOB_NAME]: 'migrate' });
    assert.deepEqual(owners('ops', 'rs-only-x1y2z'), { [K.K8S_REPLICASET_NAME]: 'rs-only' }, 'no pod-template-hash: no Deployment');
  });

  test('a pod updated (labels changed) is seen by the next event', async () => {
    await started();
    const name = { [K.K8S_POD_NAME]: 'web-7d4b9c8f6-x2x9q', [K.K8S_NAMESPACE_NAME]: 'shop' };
    assert.equal(enrich(rig, name)['k8s.pod.labels.tier'], 'frontend');
    api.apply(
      'pods',
      pod('shop', 'web-7d4b9c8f6-x2x9q', {
        ip: '10.1.0.5',
        labels: { app: 'web', tier: 'edge', 'pod-template-hash': '7d4b9c8f6' },
        owner: { kind: 'ReplicaSet', name: 'web-7d4b9c8f6' },
      }),
    );
    await until(() => enrich(rig, name)['k8s.pod.labels.tier'] === 'edge', 'the new label');
    assert.equal(rig.enricher.cachedPods, 1);
  });

  test('a deleted pod is still found for the grace period (fake clock), then not', async () => {
    await started({ deleteGraceMs: 60_000 });
    const byIp = { [K.K8S_POD_IP]: '10.1.0.5' };
    api.delete('pods', 'shop', 'web-7d4b9c8f6-x2x9q');
    await until(() => rig.enricher.deletedPods === 1, 'the delete from the watch');
    assert.equal(rig.enricher.cachedPods, 1);
    rig.clock.advance(59_999);
    assert.equal(enrich(rig, byIp)[K.K8S_POD_NAME], 'web-7d4b9c8f6-x2x9q', 'late events from the dying pod still get context');
    rig.clock.advance(1);
    assert.equal(enrich(rig, byIp)[K.K8S_POD_NAME], undefined);
    assert.equal(rig.enricher.cachedPods, 0);
  });

  test('events with no key pass untouched and count as no_key; events before the first list pass and count as not_synced', async () => {
    api.fail('pods', 500, 1, false); // the first list fails: not synced until the backoff passes
    rig = startEnricher(api);
    await until(
      async () => (await metricValue(rig.registry, 'polku_discovery_watch_errors_total', { resource: 'pods' })) === 1,
      'the failed list',
    );
    const before = enrich(rig, { [K.K8S_POD_NAME]: 'web-7d4b9c8f6-x2x9q', [K.K8S_NAMESPACE_NAME]: 'shop' });
    assert.deepEqual(before, { [K.K8S_POD_NAME]: 'web-7d4b9c8f6-x2x9q', [K.K8S_NAMESPACE_NAME]: 'shop' });
    assert.equal(await lookups('miss', 'not_synced'), 1);
    const untouched = [event({}, 'a'), event({ [K.K8S_POD_NAME]: 'no-namespace' }, 'b'), event({ team: 'x' }, 'c')];
    const copies = untouched.map((e) => structuredClone(e));
    assert.deepEqual(rig.enricher.process(untouched), copies);
    assert.equal(await lookups('no_key', 'none'), 3);
    rig.timers.advance(BACKOFF.initialMs);
    await rig.enricher.whenSynced();
    assert.equal(enrich(rig, { [K.K8S_POD_NAME]: 'web-7d4b9c8f6-x2x9q', [K.K8S_NAMESPACE_NAME]: 'shop' })[K.K8S_POD_IP], '10.1.0.5');
    assert.equal(await metricValue(rig.registry, 'polku_k8s_pod_watch_restarts_total', { middleware: 'kubernetes', why: 'error' }), 1);
  });

  test('a key the event already has is never overwritten', async () => {
    await started();
    const md = enrich(rig, {
      [K.K8S_POD_IP]: '10.1.0.5',
      [K.K8S_NODE_NAME]: 'as-the-agent-saw-it',
      'k8s.pod.labels.app': 'agent-value',
    });
    assert.equal(md[K.K8S_NODE_NAME], 'as-the-agent-saw-it');
    assert.equal(md['k8s.pod.labels.app'], 'agent-value');
    assert.equal(md['k8s.pod.labels.tier'], 'frontend');
  });

  test('labels: an allow-list keeps only those named', async () => {
    await started({ labels: ['app'] });
    const md = enrich(rig, { [K.K8S_POD_IP]: '10.1.0.5' });
    assert.deepEqual(
      Object.keys(md).filter((k) => k.startsWith(K.K8S_POD_LABEL_PREFIX)),
      ['k8s.pod.labels.app'],
    );
  });

  test('the metadata limit: labels stop before the event would pass it, and the truncation is counted', async () => {
    const size = (md: Record<string, string>) => Object.entries(md).reduce((n, [k, v]) => n + k.length + v.length, 0);
    await started();
    const full = enrich(rig, { [K.K8S_POD_IP]: '10.1.0.5' });
    const withoutLast = size(full) - 'k8s.pod.labels.pod-template-hash'.length - '7d4b9c8f6'.length;
    await rig.enricher.shutdown();
    rig = startEnricher(api, { maxMetadataBytes: withoutLast + 5 });
    await rig.enricher.whenSynced();
    const md = enrich(rig, { [K.K8S_POD_IP]: '10.1.0.5' });
    assert.ok(size(md) <= withoutLast + 5, `${size(md)} bytes`);
    assert.equal(md['k8s.pod.labels.tier'], 'frontend');
    assert.equal(md['k8s.pod.labels.pod-template-hash'], undefined);
    assert.equal(await metricValue(rig.registry, 'polku_k8s_enrich_truncated_total', { middleware: 'kubernetes' }), 1);
    // An event already at the limit gets nothing and stays within it.
    const big = { [K.K8S_POD_IP]: '10.1.0.5', pad: 'x'.repeat(withoutLast + 5 - 'pad'.length - K.K8S_POD_IP.length - 8) };
    assert.deepEqual(enrich(rig, big), big);
    assert.equal(await metricValue(rig.registry, 'polku_k8s_enrich_truncated_total', { middleware: 'kubernetes' }), 2);
  });

  test('maxPods bounds the cache; pods past it are counted, not cached', async () => {
    api.apply('pods', pod('shop', 'a', { ip: '10.1.0.20' }));
    api.apply('pods', pod('shop', 'b', { ip: '10.1.0.21' }));
    await started({ maxPods: 2 });
    assert.equal(rig.enricher.cachedPods, 2);
    rig.enricher.process([]);
    assert.equal(await metricValue(rig.registry, 'polku_k8s_pods_over_limit_total', { middleware: 'kubernetes' }), 1);
    assert.equal(await metricValue(rig.registry, 'polku_k8s_pods_cached', { middleware: 'kubernetes' }), 2);
  });

  for (const goneAs of ['event', 'http'] as const) {
    test(`watch dropped, history compacted (410 Gone as ${goneAs === 'event' ? 'an ERROR event' : 'HTTP 410'}): relists and the cache is right`, async () => {
      api.goneAs = goneAs;
      await started({ deleteGraceMs: 1_000 });
      const errors = async () => (await metricValue(rig.registry, 'polku_discovery_watch_errors_total', { resource: 'pods' })) ?? 0;
      api.fail('pods', 500, 1, true);
      api.dropWatches();
      await until(async () => (await errors()) === 1, 'the failed watch');
      // Missed while not watching, and the history that had it is gone.
      api.apply('pods', pod('shop', 'new-pod', { ip: '10.1.0.30', labels: { app: 'new' } }));
      api.delete('pods', 'shop', 'web-7d4b9c8f6-x2x9q');
      api.compact();
      rig.timers.advance(BACKOFF.initialMs); // the restart: a watch from the stale version, refused 410
      const relists = async () =>
        (await metricValue(rig.registry, 'polku_k8s_pod_watch_restarts_total', { middleware: 'kubernetes', why: 'relist' })) ?? 0;
      await until(async () => (await relists()) === 1, 'the relist to begin');
      await flushPromises();
      rig.timers.advance(BACKOFF.maxMs);
      await until(() => enrich(rig, { [K.K8S_POD_IP]: '10.1.0.30' })['k8s.pod.labels.app'] === 'new', 'the missed pod');
      await until(() => api.watching('pods') === 1, 'a new watch');
      // The pod deleted in the gap went out with the relist: in its grace period, then gone.
      assert.equal(rig.enricher.cachedPods, 2);
      assert.equal(rig.enricher.deletedPods, 1);
      rig.clock.advance(1_000);
      assert.equal(enrich(rig, { [K.CONTAINER_ID]: CID })[K.K8S_POD_NAME], undefined);
      assert.equal(rig.enricher.cachedPods, 1);
    });
  }

  test('the hub draining stops the pod watch (Middleware.shutdown)', async () => {
    const enricher = kubernetesEnricher({ nodeName: 'node-1', cluster: api.cluster() });
    const h = hub()
      .middleware(enricher)
      .emitter(new InMemoryEmitter())
      .build({ registry: new Registry(), logger: createLogger('silent') });
    await enricher.whenSynced();
    await until(() => api.watching('pods') === 1, 'the pod watch open');
    await h.drain(1_000);
    await until(() => api.watching('pods') === 0, 'the pod watch closed');
  });

  test('options are checked: no node name, unknown lookup, bad numbers', () => {
    const saved = process.env['NODE_NAME'];
    delete process.env['NODE_NAME'];
    try {
      assert.throws(
        () => new KubernetesEnricher(),
        (e: unknown) => e instanceof PolkuError && /NODE_NAME/.test(e.message),
      );
    } finally {
      if (saved !== undefined) process.env['NODE_NAME'] = saved;
    }
    assert.throws(() => new KubernetesEnricher({ nodeName: 'n', lookups: ['k8s.pod.uid' as never] }), /unknown lookup "k8s.pod.uid"/);
    assert.throws(() => new KubernetesEnricher({ nodeName: 'n', maxPods: 0 }), /maxPods must be a positive whole number/);
    assert.throws(() => new KubernetesEnricher({ nodeName: 'n', deleteGraceMs: -1 }), /deleteGraceMs/);
  });
});
