// Which API server discovery talks to: the kubeconfig outside a cluster (KUBECONFIG wins even
// inside one), the service account inside.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadKubeConfig } from '../../src/discovery/kube-config.js';

test('outside a cluster (or with KUBECONFIG set) the kubeconfig file is used, as kubectl would', () => {
  const dir = mkdtempSync(join(tmpdir(), 'polku-kubeconfig-'));
  const file = join(dir, 'config');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "http://127.0.0.1:6443"}}]',
      'users: [{name: u, user: {}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n'),
  );
  const saved = process.env['KUBECONFIG'];
  process.env['KUBECONFIG'] = file;
  try {
    for (const env of [{ KUBECONFIG: file }, { KUBECONFIG: file, KUBERNETES_SERVICE_HOST: '10.0.0.1' }]) {
      assert.equal(loadKubeConfig(env, join(dir, 'no-token')).getCurrentCluster()?.server, 'http://127.0.0.1:6443');
    }
  } finally {
    if (saved === undefined) delete process.env['KUBECONFIG'];
    else process.env['KUBECONFIG'] = saved;
  }
});

test('in a pod (KUBERNETES_SERVICE_HOST and a service-account token, no KUBECONFIG) the in-cluster config is used', () => {
  const dir = mkdtempSync(join(tmpdir(), 'polku-sa-'));
  writeFileSync(join(dir, 'token'), 'not-a-real-token');
  const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
  process.env['KUBERNETES_SERVICE_HOST'] = '10.96.0.1';
  process.env['KUBERNETES_SERVICE_PORT'] = '443';
  try {
    const kc = loadKubeConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, join(dir, 'token'));
    assert.equal(kc.getCurrentCluster()?.server, 'https://10.96.0.1:443');
    assert.equal(kc.getCurrentUser()?.name, 'inClusterUser');
  } finally {
    for (const [k, v] of [
      ['KUBERNETES_SERVICE_HOST', saved.host],
      ['KUBERNETES_SERVICE_PORT', saved.port],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
