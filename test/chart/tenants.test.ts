// The chart's tenants block, rendered by the real helm: unset (the default) mounts nothing and sets
// no POLKU_TENANTS_FILE; with existingSecret the Secret's key is mounted as a directory (no
// subPath, so an updated Secret reaches the pod and is reloaded) and POLKU_TENANTS_FILE names it.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ensureHelm, get, template, templateRaw, type K8sObject } from './helm.js';

interface Container {
  name: string;
  env: Array<{ name: string; value?: string }>;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
}
interface PodSpec {
  containers: Container[];
  volumes: Array<{ name: string; secret?: { secretName: string; items: Array<{ key: string; path: string }> } }>;
}

const pod = (objects: K8sObject[]): PodSpec => {
  const w = objects.filter((o) => o.kind === 'DaemonSet' || o.kind === 'Deployment');
  assert.equal(w.length, 1);
  return get<PodSpec>(w[0], 'spec', 'template', 'spec');
};
const polku = (spec: PodSpec): Container => spec.containers.find((c) => c.name === 'polku')!;

describe('chart: tenants', () => {
  before(() => {
    ensureHelm();
  });

  test('unset (the default): no tenants volume, no POLKU_TENANTS_FILE', async () => {
    const spec = pod(await template());
    assert.equal(
      polku(spec).env.some((e) => e.name === 'POLKU_TENANTS_FILE'),
      false,
    );
    assert.equal(
      spec.volumes.some((v) => v.name === 'tenants'),
      false,
    );
  });

  test('existingSecret: the file mounted whole, read-only, and POLKU_TENANTS_FILE pointing at it', async () => {
    const spec = pod(await template({ valuesFiles: ['ci/tenants-values.yaml'] }));
    const c = polku(spec);
    assert.equal(c.env.find((e) => e.name === 'POLKU_TENANTS_FILE')?.value, '/var/run/polku/tenants/tenants.json');
    assert.deepEqual(
      c.volumeMounts.find((m) => m.name === 'tenants'),
      { name: 'tenants', mountPath: '/var/run/polku/tenants', readOnly: true },
    );
    assert.deepEqual(spec.volumes.find((v) => v.name === 'tenants')?.secret, {
      secretName: 'polku-tenants',
      items: [{ key: 'tenants.json', path: 'tenants.json' }],
    });
  });

  test('the schema refuses an unknown tenants field', async () => {
    const r = await templateRaw({ set: ['tenants.apiKeys=x'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /apiKeys/);
  });
});
