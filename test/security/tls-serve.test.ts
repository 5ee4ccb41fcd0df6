import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { AckStream, events, protoOnlyClient, until, type WireAck } from '../helpers/gateway-harness.js';
import { opensslMissing, TestCa, type LeafFiles } from '../helpers/certs.js';
import { killAll } from '../helpers/line-process.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';

const skip = opensslMissing();

type GatewayClient = grpc.Client & Record<string, any>;

function gatewayClient(port: number, creds: grpc.ChannelCredentials): GatewayClient {
  return protoOnlyClient(port, creds, { 'grpc.ssl_target_name_override': 'localhost' });
}

function sendEvent(client: GatewayClient, id: string): Promise<WireAck> {
  return new Promise((resolve, reject) =>
    client['SendEvent'](
      { source: 'tls-test', event: { id, event_type: 'x' } },
      { deadline: Date.now() + 5_000 },
      (err: Error | null, ack: WireAck) => (err ? reject(err) : resolve(ack)),
    ),
  );
}

/** The subject CN of the certificate a NEW TLS connection to `port` is served. */
function servedCommonName(port: number, ca: string, client: LeafFiles): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(ca),
        cert: readFileSync(client.cert),
        key: readFileSync(client.key),
        ALPNProtocols: ['h2'],
      },
      () => {
        const cn = socket.getPeerCertificate().subject.CN;
        socket.destroy();
        resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
      },
    );
    socket.once('error', reject);
  });
}

function httpsGet(port: number, path: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, servername: 'localhost', ca: readFileSync(ca) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('polku serve with mTLS', { skip }, () => {
  let ca: TestCa;
  let server: LeafFiles;
  let client: LeafFiles;
  let mtls: grpc.ChannelCredentials;
  before(() => {
    ca = new TestCa();
    server = ca.server();
    client = ca.client();
    mtls = grpc.credentials.createSsl(readFileSync(ca.caCert), readFileSync(client.key), readFileSync(client.cert));
  });
  after(() => killAll());

  const tlsEnv = (reloadMs = 5_000): Record<string, string> => ({
    POLKU_TLS_CERT_FILE: server.cert,
    POLKU_TLS_KEY_FILE: server.key,
    POLKU_TLS_CLIENT_CA_FILE: ca.caCert,
    POLKU_TLS_RELOAD_INTERVAL_MS: String(reloadMs),
  });

  test('a client with a certificate is served; one without, or in plaintext, is refused; /healthz is HTTPS', async () => {
    const gw = await servePolku([], tlsEnv());
    assert.ok(gw.stderr.some((l) => l.includes('"tls":"mtls"')));

    const good = gatewayClient(gw.grpcPort, mtls);
    const stream = new AckStream(good);
    const ack = await stream.send({ source: 'tls-test', events: { events: events(3) } });
    assert.deepEqual(ack.event_ids, ['e0', 'e1', 'e2']);
    const single = await sendEvent(good, 'one');
    assert.deepEqual(single.event_ids, ['one']);

    const noCert = gatewayClient(gw.grpcPort, grpc.credentials.createSsl(readFileSync(ca.caCert)));
    await assert.rejects(sendEvent(noCert, 'refused'), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
    const plain = gatewayClient(gw.grpcPort, grpc.credentials.createInsecure());
    await assert.rejects(sendEvent(plain, 'refused'), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
    // A certificate from another CA is refused too.
    const other = new TestCa('other-ca');
    const stranger = other.client();
    const strangerCreds = grpc.credentials.createSsl(readFileSync(ca.caCert), readFileSync(stranger.key), readFileSync(stranger.cert));
    await assert.rejects(
      sendEvent(gatewayClient(gw.grpcPort, strangerCreds), 'refused'),
      (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE,
    );

    // The open stream was not disturbed by the refusals.
    const again = await stream.send({ source: 'tls-test', events: { events: events(2, (i) => ({ id: `after-${i}` })) } });
    assert.deepEqual(again.event_ids, ['after-0', 'after-1']);

    const health = await httpsGet(gw.metricsPort, '/healthz', ca.caCert);
    assert.deepEqual(health, { status: 200, body: 'ok\n' });
    const metrics = await httpsGet(gw.metricsPort, '/metrics', ca.caCert);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /polku_events_received_total\{source="tls-test"\} 6/);
    await stream.end();
    for (const c of [good, noCert, plain]) c.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('a rotated server certificate serves new connections within one reload interval; an open stream keeps working', async () => {
    const rotating = ca.server('rotating', 'before-rotation');
    const gw = await servePolku([], {
      ...tlsEnv(1_000),
      POLKU_TLS_CERT_FILE: rotating.cert,
      POLKU_TLS_KEY_FILE: rotating.key,
    });
    const good = gatewayClient(gw.grpcPort, mtls);
    const stream = new AckStream(good);
    assert.deepEqual((await stream.send({ source: 'rot', events: { events: events(1, () => ({ id: 'before' })) } })).event_ids, ['before']);
    assert.equal(await servedCommonName(gw.grpcPort, ca.caCert, client), 'before-rotation');

    const rotatedAt = Date.now();
    ca.rotateServer(rotating, 'after-rotation');
    await until(
      async () => (await servedCommonName(gw.grpcPort, ca.caCert, client)) === 'after-rotation',
      'the rotated certificate',
      10_000,
    );
    const tookMs = Date.now() - rotatedAt;
    console.log(`rotation: new connections got the new certificate after ${tookMs} ms (reload interval 1000 ms)`);
    assert.ok(tookMs <= 3_000, `took ${tookMs} ms`);
    await gw.line(/certificate files changed/);

    // The stream opened before the rotation is still the same call, still answered.
    const later = await stream.send({ source: 'rot', events: { events: events(2, (i) => ({ id: `after-${i}` })) } });
    assert.deepEqual(later.event_ids, ['after-0', 'after-1']);
    // A new client is served with the new certificate.
    const fresh = gatewayClient(gw.grpcPort, mtls);
    assert.deepEqual((await sendEvent(fresh, 'fresh')).event_ids, ['fresh']);
    // The metrics port took the new certificate too.
    const https = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: gw.metricsPort, servername: 'localhost', ca: readFileSync(ca.caCert) }, () => {
        const name = s.getPeerCertificate().subject.CN;
        s.destroy();
        resolve(Array.isArray(name) ? name.join(',') : (name ?? ''));
      });
      s.once('error', reject);
    });
    assert.equal(https, 'after-rotation');
    const status = await stream.end();
    assert.equal(status.code, grpc.status.OK, 'the stream ended normally: it was never dropped');
    good.close();
    fresh.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('a certificate without its key, or an unreadable file, stops start-up naming the variable', async () => {
    const half = runPolku(['serve'], {
      POLKU_TLS_CERT_FILE: server.cert,
      POLKU_GRPC_ADDR: '127.0.0.1:0',
      POLKU_METRICS_ADDR: '127.0.0.1:0',
    });
    assert.equal((await half.exited).code, 1);
    assert.match(half.stderr.join('\n'), /POLKU_ERR_ENV_INVALID.*POLKU_TLS_CERT_FILE is set without POLKU_TLS_KEY_FILE/);

    const missing = runPolku(['serve'], {
      POLKU_TLS_CERT_FILE: '/nonexistent/tls.crt',
      POLKU_TLS_KEY_FILE: server.key,
      POLKU_GRPC_ADDR: '127.0.0.1:0',
      POLKU_METRICS_ADDR: '127.0.0.1:0',
    });
    assert.equal((await missing.exited).code, 1);
    assert.match(missing.stderr.join('\n'), /POLKU_ERR_ENV_INVALID.*POLKU_TLS_CERT_FILE=\/nonexistent\/tls.crt cannot be read/);

    const mismatched = runPolku(['serve'], {
      POLKU_TLS_CERT_FILE: server.cert,
      POLKU_TLS_KEY_FILE: client.key,
      POLKU_GRPC_ADDR: '127.0.0.1:0',
      POLKU_METRICS_ADDR: '127.0.0.1:0',
    });
    assert.equal((await mismatched.exited).code, 1);
    assert.match(mismatched.stderr.join('\n'), /POLKU_TLS_KEY_FILE=.* is not the key of POLKU_TLS_CERT_FILE/);
  });
});
