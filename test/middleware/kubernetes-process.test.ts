// End to end: `polku serve` as its own process with POLKU_K8S_ENRICH=true, NODE_NAME and a
// kubeconfig pointing at the in-process API server. Events shaped as TAPIO's are (pod name and
// namespace in metadata) come out of the stdout emitter with the pod's labels and owner.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as K from '../../src/metadata-keys.js';
import { FakeApiServer } from '../discovery/fake-apiserver.js';
import { AckStream, protoOnlyClient, scrape, sample, until } from '../helpers/gateway-harness.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';
import { pod } from './kubernetes-pods.js';

describe('polku serve with POLKU_K8S_ENRICH=true', () => {
  let api: FakeApiServer;
  let kubeconfig = '';

  before(async () => {
    api = await new FakeApiServer().start();
    api.apply(
      'pods',
      pod('shop', 'checkout-6c9f7d8b5-k2m4p', {
        ip: '10.1.0.5',
        labels: { app: 'checkout', 'pod-template-hash': '6c9f7d8b5' },
        owner: { kind: 'ReplicaSet', name: 'checkout-6c9f7d8b5' },
        containers: [{ name: 'checkout', id: `containerd://${'a1'.repeat(32)}` }],
      }),
    );
    api.apply('pods', pod('obs', 'tapio-x7k2q', { ip: '10.1.0.6', labels: { app: 'tapio' }, owner: { kind: 'DaemonSet', name: 'tapio' } }));
    api.apply('pods', pod('shop', 'elsewhere', { node: 'node-2', ip: '10.1.1.5', labels: { app: 'elsewhere' } }));
    const dir = mkdtempSync(join(tmpdir(), 'polku-k8s-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeconfig());
  });
  after(() => api.stop());

  test('events naming a pod leave with its labels and owner; others pass untouched; counted by result', async () => {
    const gw = await servePolku([], { POLKU_K8S_ENRICH: 'true', NODE_NAME: 'node-1', KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: '' });
    try {
      await gw.line(/"pod cache synced"/);
      assert.ok(
        api.requests.filter((r) => r.kind === 'pods').every((r) => r.query['fieldSelector'] === 'spec.nodeName=node-1'),
        'only node-1 is asked for',
      );
      const client = protoOnlyClient(gw.grpcPort);
      const stream = new AckStream(client);
      const tapio = (id: string, metadata: Record<string, string>) => ({ id, event_type: 'tapio.network.connection_reset', metadata });
      const ack = await stream.send({
        source: 'tapio',
        events: {
          events: [
            tapio('t1', { [K.K8S_POD_NAME]: 'checkout-6c9f7d8b5-k2m4p', [K.K8S_NAMESPACE_NAME]: 'shop' }),
            tapio('t2', { [K.CONTAINER_ID]: `containerd://${'a1'.repeat(32)}` }),
            tapio('t3', { [K.K8S_POD_NAME]: 'tapio-x7k2q', [K.K8S_NAMESPACE_NAME]: 'obs' }),
            tapio('t4', { [K.K8S_POD_NAME]: 'elsewhere', [K.K8S_NAMESPACE_NAME]: 'shop' }),
            tapio('t5', { 'net.peer.ip': '10.9.9.9' }),
          ],
        },
      });
      assert.deepEqual(ack.event_ids, ['t1', 't2', 't3', 't4', 't5']);
      assert.deepEqual(ack.errors, []);
      await stream.end();
      client.close();
      await until(() => gw.stdout.filter((l) => l.includes('"event_type":"tapio.')).length === 5, 'five events on stdout');
      const out = new Map(
        gw.stdout
          .filter((l) => l.includes('"event_type":"tapio.'))
          .map((l) => JSON.parse(l) as { id: string; metadata: Record<string, string> })
          .map((e) => [e.id, e.metadata]),
      );
      const t1 = out.get('t1')!;
      assert.equal(t1[K.K8S_DEPLOYMENT_NAME], 'checkout');
      assert.equal(t1[K.K8S_REPLICASET_NAME], 'checkout-6c9f7d8b5');
      assert.equal(t1['k8s.pod.labels.app'], 'checkout');
      assert.equal(t1[K.K8S_NODE_NAME], 'node-1');
      assert.equal(t1[K.K8S_POD_IP], '10.1.0.5');
      const t2 = out.get('t2')!;
      assert.equal(t2[K.K8S_POD_NAME], 'checkout-6c9f7d8b5-k2m4p');
      assert.equal(t2[K.K8S_CONTAINER_NAME], 'checkout');
      assert.equal(out.get('t3')![K.K8S_DAEMONSET_NAME], 'tapio');
      assert.deepEqual(
        out.get('t4'),
        { [K.K8S_POD_NAME]: 'elsewhere', [K.K8S_NAMESPACE_NAME]: 'shop' },
        'a pod on another node is not known',
      );
      assert.deepEqual(out.get('t5'), { 'net.peer.ip': '10.9.9.9' });
      const metrics = await scrape(gw.metricsPort);
      const lookups = (result: string, reason: string) =>
        sample(metrics, `polku_k8s_enrich_lookups_total{middleware="kubernetes",result="${result}",reason="${reason}"}`);
      assert.equal(lookups('hit', 'pod_name'), 2);
      assert.equal(lookups('hit', 'container_id'), 1);
      assert.equal(lookups('miss', 'not_found'), 1);
      assert.equal(lookups('no_key', 'none'), 1);
      assert.equal(sample(metrics, 'polku_k8s_pods_cached{middleware="kubernetes"}'), 2);
    } finally {
      gw.child.kill('SIGTERM');
      assert.equal((await gw.exited).code, 0);
    }
  });

  test('polku validate of a module with kubernetesEnricher reports it and exits (the pod watch it started is stopped)', async () => {
    const p = runPolku(['validate', '--config', 'test/fixtures/kubernetes-enricher.config.ts'], {
      NODE_NAME: 'node-1',
      KUBECONFIG: kubeconfig,
      KUBERNETES_SERVICE_HOST: '',
    });
    const { code } = await p.exited;
    assert.equal(code, 0, p.stderr.join('\n'));
    assert.match(p.stdout.join('\n'), /middleware: kubernetes/);
  });

  test('POLKU_K8S_ENRICH=true without NODE_NAME stops start-up naming the variable', async () => {
    const p = runPolku(['serve'], { POLKU_K8S_ENRICH: 'true', NODE_NAME: '' });
    const { code } = await p.exited;
    assert.equal(code, 1);
    assert.match(p.stderr.join('\n'), /POLKU_ERR_ENV_INVALID.*POLKU_K8S_ENRICH=true needs NODE_NAME/);
  });
});
