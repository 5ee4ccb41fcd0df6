import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveEmitter } from '../../src/plugin/index.js';
import { opensslMissing, TestCa, type LeafFiles } from '../helpers/certs.js';
import { until } from '../helpers/gateway-harness.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';

/*
 * Registry identities named by client certificates: with mTLS on the gRPC port, a plugin whose
 * certificate carries a name an identity lists registers as that identity with no token; a
 * plugin with another certificate (verified, but naming no identity) and no token is refused.
 */
const skip = opensslMissing();

/** The metrics port serves HTTPS with the gateway's certificate when TLS is on. */
function scrape(metricsPort: number, caFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', ca: readFileSync(caFile), servername: 'localhost' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

async function counter(metricsPort: number, caFile: string, code: string): Promise<number> {
  const text = await scrape(metricsPort, caFile);
  const line = text.split('\n').find((l) => l.startsWith(`polku_registry_requests_total{method="Register",code="${code}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('registry identities from mTLS client certificates', { skip }, () => {
  let ca: TestCa;
  let server: LeafFiles;
  let gatewayClient: LeafFiles;
  let teamA: LeafFiles;
  let stranger: LeafFiles;
  let gw: PolkuProcess & { grpcPort: number; metricsPort: number };

  before(async () => {
    ca = new TestCa();
    server = ca.server();
    gatewayClient = ca.client('gateway-client', 'polku-gateway');
    teamA = ca.client('team-a', 'plugins.team-a');
    stranger = ca.client('stranger', 'someone-else');
    const dir = mkdtempSync(join(tmpdir(), 'polku-cert-ids-'));
    const identities = join(dir, 'identities.json');
    writeFileSync(
      identities,
      JSON.stringify({ identities: [{ name: 'team-a', certificate: 'plugins.team-a', plugins: ['cert-*'], sources: [] }] }),
    );
    gw = await servePolku([], {
      POLKU_TLS_CERT_FILE: server.cert,
      POLKU_TLS_KEY_FILE: server.key,
      POLKU_TLS_CLIENT_CA_FILE: ca.caCert,
      POLKU_REGISTRY_IDENTITIES_FILE: identities,
      POLKU_REGISTRY_ALLOWLIST: '127.0.0.0/8',
      // The gateway dials plugins with a certificate of its own; the plugins ask for one.
      POLKU_PLUGIN_TLS_CA_FILE: ca.caCert,
      POLKU_PLUGIN_TLS_CERT_FILE: gatewayClient.cert,
      POLKU_PLUGIN_TLS_KEY_FILE: gatewayClient.key,
    });
  });
  after(async () => {
    if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
    await gw.exited;
  });

  function plugin(name: string, cert: LeafFiles) {
    const served = ca.server(`${name}-server`, name);
    return serveEmitter({
      name,
      host: '127.0.0.1',
      tls: { certFile: served.cert, keyFile: served.key, clientCaFile: ca.caCert },
      register: {
        gateway: `https://127.0.0.1:${gw.grpcPort}`,
        tls: { caFile: ca.caCert, certFile: cert.cert, keyFile: cert.key, serverName: 'localhost' },
      },
      emit: () => {},
    });
  }

  test('a certificate naming an identity registers a plugin that identity may claim, with no token', async (t) => {
    const p = await plugin('cert-emitter', teamA);
    t.after(() => p.close());
    await until(() => p.pluginId !== undefined, 'the registration by certificate', 10_000);
    assert.equal(await counter(gw.metricsPort, ca.caCert, 'OK'), 1);
  });

  test('a certificate naming no identity, and no token, is refused UNAUTHENTICATED', async (t) => {
    const before = await counter(gw.metricsPort, ca.caCert, 'UNAUTHENTICATED');
    const p = await plugin('cert-intruder', stranger);
    t.after(() => p.close());
    await until(async () => (await counter(gw.metricsPort, ca.caCert, 'UNAUTHENTICATED')) > before, 'the refusal', 10_000);
    assert.equal(p.pluginId, undefined);
  });
});
