import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { systemClock, systemTimers } from '../../src/clock.js';
import type { ComponentContext } from '../../src/component-context.js';
import { ExternalEmitter } from '../../src/emit/external.js';
import { GrpcEmitter } from '../../src/emit/grpc.js';
import { WebhookEmitter } from '../../src/emit/webhook.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { setPluginDialTls } from '../../src/plugin-client/client.js';
import { serveEmitter } from '../../src/plugin/index.js';
import { PluginProbe } from '../../src/registry/plugin-probe.js';
import { opensslMissing, TestCa, type LeafFiles } from '../helpers/certs.js';
import { until } from '../helpers/gateway-harness.js';
import { killAll } from '../helpers/line-process.js';
import { servePolku } from '../helpers/polku-process.js';

const skip = opensslMissing();
const batch = (...ids: string[]) => ids.map((id) => Event.fromPartial({ id, eventType: 'tls.test', source: 'dial' }));

function context(): ComponentContext {
  return { registry: createRegistry(), logger: silentLogger(), clock: systemClock, timers: systemTimers } as ComponentContext;
}

describe('every dial against a TLS peer', { skip }, () => {
  let ca: TestCa;
  let server: LeafFiles;
  let client: LeafFiles;
  before(() => {
    ca = new TestCa();
    server = ca.server();
    client = ca.client('gateway-client', 'polku-gateway');
  });
  after(async () => {
    setPluginDialTls(undefined);
    await killAll();
  });

  test('GrpcEmitter forwards to a second gateway serving mTLS; without a client certificate it is refused (retryable)', async () => {
    const sink = join(mkdtempSync(join(tmpdir(), 'polku-tls-sink-')), 'sink.jsonl');
    const downstream = await servePolku(['--config', 'test/fixtures/grpc-downstream.config.ts'], {
      POLKU_TEST_SINK: sink,
      POLKU_TLS_CERT_FILE: server.cert,
      POLKU_TLS_KEY_FILE: server.key,
      POLKU_TLS_CLIENT_CA_FILE: ca.caCert,
    });
    const emitter = new GrpcEmitter({
      name: 'tls-forward',
      endpoints: [`https://localhost:${downstream.grpcPort}`],
      tls: { caFile: ca.caCert, certFile: client.cert, keyFile: client.key },
      timeoutMs: 5_000,
    });
    emitter.init(context());
    assert.deepEqual(await emitter.emit(batch('g1', 'g2', 'g3')), { status: 'success' });
    const ids = readFileSync(sink, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    assert.deepEqual(ids, ['g1', 'g2', 'g3']);
    await emitter.shutdown();

    const noCert = new GrpcEmitter({
      name: 'no-cert',
      endpoints: [`127.0.0.1:${downstream.grpcPort}`],
      tls: { caFile: ca.caCert, serverName: 'localhost' },
      timeoutMs: 2_000,
    });
    noCert.init(context());
    const refused = await noCert.emit(batch('x1'));
    assert.equal(refused.status, 'retryable');
    await noCert.shutdown();
    downstream.child.kill('SIGTERM');
    assert.equal((await downstream.exited).code, 0);
  });

  test('WebhookEmitter posts over https with the CA and presents its client certificate', async (t) => {
    const seen: Array<{ cn: string; ids: string[] }> = [];
    const https: Server = createServer(
      {
        cert: readFileSync(server.cert),
        key: readFileSync(server.key),
        ca: readFileSync(ca.caCert),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const cn = (req.socket as TLSSocket).getPeerCertificate().subject.CN;
          seen.push({ cn: String(cn), ids: (JSON.parse(body) as { events: Array<{ id: string }> }).events.map((e) => e.id) });
          res.writeHead(200).end();
        });
      },
    );
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => https.close(() => r())));
    const port = (https.address() as { port: number }).port;

    const webhook = new WebhookEmitter({
      url: `https://localhost:${port}/events`,
      tls: { caFile: ca.caCert, certFile: client.cert, keyFile: client.key },
    });
    webhook.init(context());
    assert.deepEqual(await webhook.emit(batch('w1', 'w2')), { status: 'success' });
    assert.deepEqual(seen, [{ cn: 'polku-gateway', ids: ['w1', 'w2'] }]);
    await webhook.shutdown();

    // Without the client certificate the server refuses the handshake: retryable, nothing received.
    const anonymous = new WebhookEmitter({ url: `https://localhost:${port}/events`, tls: { caFile: ca.caCert } });
    anonymous.init(context());
    assert.equal((await anonymous.emit(batch('w3'))).status, 'retryable');
    assert.equal(seen.length, 1);
    await anonymous.shutdown();

    assert.throws(
      () => new WebhookEmitter({ url: `http://localhost:${port}/`, tls: { caFile: ca.caCert } }),
      /POLKU_ERR_PIPELINE_INVALID|tls is set but the url is http:/,
    );
    assert.throws(
      () => new WebhookEmitter({ url: `https://localhost:${port}/`, tls: { certFile: client.cert } }),
      /tls.certFile is set but .*tls.keyFile is not/,
    );
  });

  test('an SDK plugin serving mTLS: the external emitter and the registry probe reach it with TLS, plaintext does not', async (t) => {
    const received: string[] = [];
    const plugin = await serveEmitter({
      name: 'tls-plugin',
      host: '127.0.0.1',
      tls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.caCert },
      emit: (events) => {
        received.push(...events.map((e) => e.id));
      },
    });
    t.after(() => plugin.close());

    const tls = { caFile: ca.caCert, certFile: client.cert, keyFile: client.key, serverName: 'localhost' };
    const external = new ExternalEmitter({ name: 'tls-plugin', address: `127.0.0.1:${plugin.port}`, tls, connectTimeoutMs: 3_000 });
    external.init(context());
    assert.deepEqual(await external.emit(batch('p1', 'p2')), { status: 'success' });
    assert.deepEqual(received, ['p1', 'p2']);

    // The registry's probe dials with the process-wide plugin TLS (POLKU_PLUGIN_TLS_* in polku serve).
    const plain = new PluginProbe('emitter', `127.0.0.1:${plugin.port}`);
    await assert.rejects(plain.admit(1_000), /POLKU_ERR_PLUGIN_UNREACHABLE|did not answer Info/);
    plain.close();
    setPluginDialTls({ caFile: ca.caCert, certFile: client.cert, keyFile: client.key });
    const probe = new PluginProbe('emitter', `localhost:${plugin.port}`);
    const admitted = await probe.admit(3_000);
    assert.equal(admitted.info.name, 'tls-plugin');
    probe.close();
    setPluginDialTls(undefined);
    await external.shutdown(); // asks the plugin to shut down too
  });

  test('an SDK plugin registers with a gateway serving mTLS', async (t) => {
    const gw = await servePolku([], {
      POLKU_TLS_CERT_FILE: server.cert,
      POLKU_TLS_KEY_FILE: server.key,
      POLKU_TLS_CLIENT_CA_FILE: ca.caCert,
      POLKU_REGISTRY_ALLOWLIST: '127.0.0.0/8',
      POLKU_PLUGIN_TLS_CA_FILE: ca.caCert,
      POLKU_PLUGIN_TLS_CERT_FILE: client.cert,
      POLKU_PLUGIN_TLS_KEY_FILE: client.key,
    });
    const pluginCert = ca.server('plugin-server', 'tls-plugin');
    const plugin = await serveEmitter({
      name: 'registering-plugin',
      host: '127.0.0.1',
      tls: { certFile: pluginCert.cert, keyFile: pluginCert.key, clientCaFile: ca.caCert },
      register: {
        gateway: `https://127.0.0.1:${gw.grpcPort}`,
        tls: { caFile: ca.caCert, certFile: client.cert, keyFile: client.key, serverName: 'localhost' },
      },
      emit: () => {},
    });
    t.after(() => plugin.close());
    await until(() => plugin.pluginId !== undefined, 'the registration over mTLS', 10_000);
    await plugin.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });
});
