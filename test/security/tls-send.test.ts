import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { opensslMissing, TestCa, type LeafFiles } from '../helpers/certs.js';
import { runPolku, servePolku, type PolkuProcess } from '../helpers/polku-process.js';

/* `polku send` against a gateway that requires client certificates, as an operator would use it. */
const skip = opensslMissing();

async function send(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = runPolku(['send', ...args]);
  const { code } = await p.exited;
  return { code, out: [...p.stdout, ...p.stderr].join('\n') };
}

describe('polku send over TLS', { skip }, () => {
  let ca: TestCa;
  let client: LeafFiles;
  let gw: PolkuProcess & { grpcPort: number };

  before(async () => {
    ca = new TestCa();
    const server = ca.server();
    client = ca.client('operator', 'polku-operator');
    gw = await servePolku([], {
      POLKU_TLS_CERT_FILE: server.cert,
      POLKU_TLS_KEY_FILE: server.key,
      POLKU_TLS_CLIENT_CA_FILE: ca.caCert,
    });
  });
  after(async () => {
    if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
    await gw.exited;
  });

  test('with --ca, --cert and --key the event is accepted; the Ack is printed and the exit is 0', async () => {
    const addr = ['--addr', `127.0.0.1:${gw.grpcPort}`, '--server-name', 'localhost'];
    const r = await send([...addr, '--ca', ca.caCert, '--cert', client.cert, '--key', client.key, '--payload', 'over mTLS']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /"eventIds": \[\s*"[0-9A-HJKMNP-TV-Z]{26}"\s*\]/);
  });

  test('without a client certificate, or in plaintext, the gateway refuses and the exit is 1', async () => {
    const addr = ['--addr', `127.0.0.1:${gw.grpcPort}`, '--server-name', 'localhost', '--timeout-ms', '3000'];
    const noCert = await send([...addr, '--ca', ca.caCert]);
    assert.equal(noCert.code, 1, noCert.out);
    assert.match(noCert.out, /gRPC error 14/);
    const plain = await send(addr);
    assert.equal(plain.code, 1, plain.out);
    assert.match(plain.out, /gRPC error 14/);
  });

  test('--cert without --key is a usage mistake, refused before dialling, naming both (exit 2)', async () => {
    const r = await send(['--addr', `127.0.0.1:${gw.grpcPort}`, '--ca', ca.caCert, '--cert', client.cert]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /--cert and --key together/);
  });
});
