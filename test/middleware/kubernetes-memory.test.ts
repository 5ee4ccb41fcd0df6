// What the pod cache costs in heap: 500 pods with realistic labels (the Kubernetes recommended
// app.kubernetes.io/* set, pod-template-hash) and two containers each, served whole by the fake
// API server (managedFields, spec, status), measured after a full GC. The cache strips each pod
// as it arrives and shares repeated strings (label keys and values, owners, namespaces), so the
// figure (about 1.8 KiB a pod, informer and indexes included) stays below what whole pods would take.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, test } from 'node:test';
import { FakeApiServer } from '../discovery/fake-apiserver.js';
import { pod, startEnricher, type EnricherRig } from './kubernetes-pods.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const PODS = 500;

const rigs: EnricherRig[] = [];
let api: FakeApiServer;
after(async () => {
  for (const r of rigs) await r.enricher.shutdown();
  await api?.stop();
});

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

test(`the pod cache holds ${PODS} pods in under 3 KiB of heap each`, async () => {
  api = await new FakeApiServer().start();
  for (let i = 0; i < PODS; i++) {
    const app = `service-${i % 40}`;
    api.apply(
      'pods',
      pod(`team-${i % 12}`, `${app}-6c9f7d8b5-${String(i).padStart(5, '0')}`, {
        ip: `10.1.${i >> 8}.${i & 255}`,
        labels: {
          'app.kubernetes.io/name': app,
          'app.kubernetes.io/instance': `${app}-prod`,
          'app.kubernetes.io/version': '1.24.3',
          'app.kubernetes.io/component': 'backend',
          'app.kubernetes.io/part-of': 'shop',
          'app.kubernetes.io/managed-by': 'helm',
          'pod-template-hash': '6c9f7d8b5',
        },
        owner: { kind: 'ReplicaSet', name: `${app}-6c9f7d8b5` },
        containers: [
          { name: app, id: `containerd://${i.toString(16).padStart(64, 'a')}` },
          { name: 'istio-proxy', id: `containerd://${i.toString(16).padStart(64, 'b')}` },
        ],
      }),
    );
  }
  // Warm up: the client library, its HTTP machinery and the informer's code, on a node with no pods.
  const warm = startEnricher(api, { nodeName: 'empty-node', name: 'warm' });
  rigs.push(warm);
  await warm.enricher.whenSynced();
  // What one more enricher costs with no pods (its client, informer, metrics), then with them.
  const before = heapAfterGc();
  const empty = startEnricher(api, { nodeName: 'another-empty-node', name: 'empty' });
  rigs.push(empty);
  await empty.enricher.whenSynced();
  const fixed = heapAfterGc() - before;
  const rig = startEnricher(api);
  rigs.push(rig);
  await rig.enricher.whenSynced();
  assert.equal(rig.enricher.cachedPods, PODS);
  const perPod = (heapAfterGc() - before - 2 * fixed) / PODS;
  console.log(`# fixed cost of one enricher: ${(fixed / 1024).toFixed(0)} KiB`);
  const wholePod = JSON.stringify(pod('team-1', 'service-1-6c9f7d8b5-00001', { ip: '10.1.0.1' })).length;
  console.log(
    `# pod cache: ${Math.round(perPod)} B of heap per pod (${((perPod * PODS) / 1024).toFixed(0)} KiB for ${PODS}); a whole pod is ~${wholePod} B of JSON`,
  );
  assert.ok(perPod < 3072, `${perPod} B per pod`);
});
