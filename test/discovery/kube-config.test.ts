// Which API server discovery and the enricher talk to, and with which credentials: the kubeconfig
// outside a cluster (KUBECONFIG wins even inside one), read without @kubernetes/client-node; the
// service account inside, its token re-read for rotation; the library only for a kubeconfig whose
// user needs a credential plugin. Requests go to the in-process API server, which records the
// Authorization header each one carried.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { loadClusterAccess } from '../../src/discovery/kube-config.js';
import { accessFromKubeConfig, inClusterAccess, TOKEN_REREAD_MS, type ClusterAccess } from '../../src/discovery/kube/cluster-access.js';
import { KubeApi } from '../../src/discovery/kube/kube-api.js';
import { FakeClock } from '../../src/testing/index.js';
import { FakeApiServer } from './fake-apiserver.js';

describe('the API server and its credentials', () => {
  let api: FakeApiServer;
  const dir = mkdtempSync(join(tmpdir(), 'polku-kubeconfig-'));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  /** The Authorization header of a list made with `access`. */
  async function sent(access: ClusterAccess): Promise<string> {
    const client = new KubeApi(access);
    try {
      const list = await client.list('/api/v1/services', {});
      assert.deepEqual(list.items, []);
      return api.requests.at(-1)!.authorization;
    } finally {
      client.close();
    }
  }

  before(async () => {
    api = await new FakeApiServer().start();
  });
  after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('outside a cluster (or with KUBECONFIG set) the kubeconfig file is read, as kubectl would, without the client library', async () => {
    const path = file(
      'config',
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: {server: "${api.url}"}}]`,
        'users: [{name: u, user: {token: abc}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}, {name: other, context: {cluster: nope, user: u}}]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    for (const env of [{ KUBECONFIG: path }, { KUBECONFIG: path, KUBERNETES_SERVICE_HOST: '10.0.0.1' }]) {
      const access = await loadClusterAccess({ env, tokenPath: join(dir, 'no-token') });
      assert.deepEqual([access.server, access.source, access.user], [api.url, path, 'u']);
      assert.equal(await sent(access), 'Bearer abc');
    }
    // ~/.kube/config when KUBECONFIG is not set.
    const home = mkdtempSync(join(dir, 'home-'));
    await assert.rejects(loadClusterAccess({ env: {}, home }), /no kubeconfig at .*\.kube\/config/);
  });

  test('a tokenFile (relative to the kubeconfig) is read again once its copy is a minute old: a rotated token is used', async () => {
    const token = file('user-token', 'first\n');
    const clock = new FakeClock();
    const path = file('config-token-file', api.kubeconfig({ tokenFile: 'user-token' }));
    const access = await loadClusterAccess({ env: { KUBECONFIG: path }, clock });
    assert.equal(await sent(access), 'Bearer first');
    writeFileSync(token, 'second\n');
    clock.advance(TOKEN_REREAD_MS - 1);
    assert.equal(await sent(access), 'Bearer first', 'not read again before a minute');
    clock.advance(1);
    assert.equal(await sent(access), 'Bearer second');
  });

  test('username and password are sent as Basic; a user without credentials sends no Authorization', async () => {
    const basic = await loadClusterAccess({
      env: { KUBECONFIG: file('config-basic', api.kubeconfig({ username: 'ann', password: 'pw' })) },
    });
    assert.equal(await sent(basic), `Basic ${Buffer.from('ann:pw').toString('base64')}`);
    const anonymous = await loadClusterAccess({ env: { KUBECONFIG: file('config-anon', api.kubeconfig()) } });
    assert.equal(await sent(anonymous), '');
  });

  test('a kubeconfig that is not usable is refused with the reason', async () => {
    const noContext = file('config-bad', 'apiVersion: v1\nkind: Config\nclusters: []\n');
    await assert.rejects(loadClusterAccess({ env: { KUBECONFIG: noContext } }), /config-bad: no current-context/);
    const noCluster = file('config-bad2', 'current-context: x\ncontexts: [{name: x, context: {cluster: gone, user: u}}]\n');
    await assert.rejects(loadClusterAccess({ env: { KUBECONFIG: noCluster } }), /no cluster named "gone" in clusters/);
  });

  test('an exec credential plugin goes through @kubernetes/client-node, which runs it per request', async () => {
    const plugin = file(
      'credential.mjs',
      `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec' } }));`,
    );
    const path = file(
      'config-exec',
      // client-node refuses plain http unless TLS checks are off.
      api.kubeconfig(
        { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin], interactiveMode: 'Never' } },
        { 'insecure-skip-tls-verify': true },
      ),
    );
    const access = await loadClusterAccess({ env: { KUBECONFIG: path } });
    assert.match(access.source, /through @kubernetes\/client-node: the user authenticates with an exec credential plugin/);
    assert.equal(await sent(access), 'Bearer from-exec');
  });

  test("a caller's own client-node KubeConfig is adapted: its server and credentials", async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }], // client-node refuses plain http otherwise
      users: [{ name: 'bot', token: 'kc-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'bot' }],
      currentContext: 'fake',
    });
    const access = await accessFromKubeConfig(kc);
    assert.deepEqual([access.server, access.user, access.tls.rejectUnauthorized], [api.url, 'bot', false]);
    assert.equal(await sent(access), 'Bearer kc-token');
  });

  test('in a pod (KUBERNETES_SERVICE_HOST and a service-account token, no KUBECONFIG) the service account is used, its token re-read for rotation', async () => {
    const tokenPath = file('token', 'sa-1');
    const caPath = file('ca.crt', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    const clock = new FakeClock();
    const access = await loadClusterAccess({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, tokenPath, caPath, clock });
    assert.deepEqual([access.server, access.source, access.user], ['https://10.96.0.1:443', 'in-cluster', 'inClusterUser']);
    assert.deepEqual(
      [String(access.tls.ca), access.tls.rejectUnauthorized],
      [String(Buffer.from('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')), true],
    );
    assert.deepEqual(await access.headers(), { authorization: 'Bearer sa-1' });
    writeFileSync(tokenPath, 'sa-2\n');
    clock.advance(TOKEN_REREAD_MS);
    assert.deepEqual(await access.headers(), { authorization: 'Bearer sa-2' });
    const v6 = inClusterAccess({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, tokenPath, caPath });
    assert.equal(v6.server, 'https://[fd00::1]:6443');
    assert.throws(
      () => inClusterAccess({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, tokenPath: join(dir, 'missing'), caPath }),
      /ENOENT.*missing/,
    );
  });
});
