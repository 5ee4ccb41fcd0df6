// deploy/: the plain manifests (the chart's defaults, rendered), the example plugins discovered by
// annotation, and the sidecar example, each validated like the chart's output.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ensureHelm, get, ofKind, one, parseManifests, renderDeployManifest, ROOT, template } from './helm.js';
import type { K8sObject } from './helm.js';
import { isKnownKind, schemaProblems, unknownFieldProblems } from './k8s-validate.js';

const read = (file: string) => readFileSync(join(ROOT, 'deploy', file), 'utf8');
const FILES = ['polku.yaml', 'example-plugin.yaml', 'example-sidecar.yaml'];

before(() => {
  ensureHelm();
});

test('deploy/polku.yaml equals a fresh helm template of the chart defaults, header included', async () => {
  const committed = read('polku.yaml');
  const fresh = await renderDeployManifest();
  assert.ok(
    committed === fresh,
    'deploy/polku.yaml differs from the chart: run `node --import tsx test/chart/render-deploy.ts` and commit the result',
  );
  assert.match(committed, /^# POLKU as plain manifests: the Helm chart charts\/polku rendered with its default values\./);
});

test("deploy/polku.yaml holds the same objects as the chart's default render", async () => {
  assert.deepEqual(parseManifests(read('polku.yaml')), await template());
});

test('every object in deploy/ is valid against the Kubernetes schemas, with no unknown field', () => {
  const all: K8sObject[] = [];
  for (const file of FILES) {
    const objects = parseManifests(read(file));
    assert.ok(objects.length > 0, `${file} has objects`);
    for (const o of objects) {
      assert.ok(isKnownKind(o), `${file}: ${o.apiVersion}/${o.kind} has a schema`);
      assert.deepEqual(schemaProblems(o), [], file);
    }
    all.push(...objects);
  }
  assert.deepEqual(unknownFieldProblems(all), []);
});

test('the example plugin Services carry the discovery label and annotations, and polku.io/port names their port', () => {
  const objects = parseManifests(read('example-plugin.yaml'));
  const services = ofKind(objects, 'Service');
  assert.equal(services.length, 2);
  const byType = new Map(services.map((s) => [s.metadata.labels?.['polku.io/plugin'], s]));
  const emitter = byType.get('emitter');
  const ingestor = byType.get('ingestor');
  assert.ok(emitter && ingestor, 'one emitter and one ingestor, by the polku.io/plugin label (which the default selector selects)');
  for (const svc of services) {
    const a = svc.metadata.annotations ?? {};
    assert.ok(a['polku.io/name'], `${svc.metadata.name}: polku.io/name`);
    const port = a['polku.io/port'] ?? '';
    const ports = get<{ name: string; port: number }[]>(svc, 'spec', 'ports');
    const named = ports.some((p) => p.name === port);
    const numbered = /^\d+$/.test(port) && ports.some((p) => p.port === Number(port));
    assert.ok(named || numbered, `${svc.metadata.name}: polku.io/port ${port} is a port of the Service`);
    // The Service selects its Deployment's pods.
    const deployment = ofKind(objects, 'Deployment').find((d) => d.metadata.name === svc.metadata.name);
    assert.ok(deployment, `${svc.metadata.name} has a Deployment`);
    const podLabels = get<Record<string, string>>(deployment, 'spec', 'template', 'metadata', 'labels');
    for (const [k, v] of Object.entries(get<Record<string, string>>(svc, 'spec', 'selector'))) assert.equal(podLabels[k], v);
  }
  assert.equal(emitter.metadata.annotations?.['polku.io/emitter-name'], 'audit');
  assert.equal(emitter.metadata.annotations?.['polku.io/port'], 'plugin-grpc', 'a named port');
  assert.equal(ingestor.metadata.annotations?.['polku.io/port'], '9200', 'a number');
  assert.deepEqual(ingestor.metadata.annotations?.['polku.io/sources']?.split(','), ['syslog', 'journald']);
});

test('the sidecar example runs POLKU beside the app: a native sidecar on loopback, probes on /readyz and /healthz, locked down', () => {
  const objects = parseManifests(read('example-sidecar.yaml'));
  const d = one(objects, 'Deployment');
  const pod = get<Record<string, unknown>>(d, 'spec', 'template', 'spec');
  const sidecar = get<Record<string, unknown>>(pod, 'initContainers', 0);
  assert.equal(sidecar['name'], 'polku');
  assert.equal(sidecar['restartPolicy'], 'Always');
  const env = new Map(get<{ name: string; value: string }[]>(sidecar, 'env').map((e) => [e.name, e.value]));
  assert.equal(env.get('POLKU_GRPC_ADDR'), '127.0.0.1:50051');
  assert.equal(env.get('POLKU_CONFIG'), '/etc/polku/polku.config.ts');
  assert.ok(Number(get(pod, 'terminationGracePeriodSeconds')) * 1000 > Number(env.get('POLKU_SHUTDOWN_TIMEOUT_MS')));
  assert.equal(get(sidecar, 'readinessProbe', 'httpGet', 'path'), '/readyz');
  assert.equal(get(sidecar, 'livenessProbe', 'httpGet', 'path'), '/healthz');
  assert.equal(get(sidecar, 'securityContext', 'readOnlyRootFilesystem'), true);
  assert.deepEqual(get(sidecar, 'securityContext', 'capabilities'), { drop: ['ALL'] });
  assert.equal(get(pod, 'securityContext', 'runAsNonRoot'), true);
  const app = get<{ env: { name: string; value: string }[] }>(pod, 'containers', 0);
  assert.ok(
    app.env.some((e) => e.value === 'localhost:50051'),
    'the app sends to localhost:50051',
  );
  const cm = one(objects, 'ConfigMap');
  assert.match(get<string>(cm, 'data', 'polku.config.ts'), /from 'polku'/);
  assert.equal(get(pod, 'volumes', 0, 'configMap', 'name'), cm.metadata.name);
});
