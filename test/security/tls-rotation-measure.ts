// Run: node --import tsx test/security/tls-rotation-measure.ts [reloadIntervalMs]  (not part of npm test)
// Rotation latency: how long after the files are rewritten a NEW connection is served the new certificate.
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { TestCa } from '../helpers/certs.js';
import { servePolku } from '../helpers/polku-process.js';

const interval = process.argv[2] ?? '5000';
const ca = new TestCa();
const server = ca.server('srv', 'gen-0');
const client = ca.client();
const gw = await servePolku([], {
  POLKU_TLS_CERT_FILE: server.cert,
  POLKU_TLS_KEY_FILE: server.key,
  POLKU_TLS_CLIENT_CA_FILE: ca.caCert,
  POLKU_TLS_RELOAD_INTERVAL_MS: interval,
});
const cn = () =>
  new Promise<string>((resolve, reject) => {
    const s = connect(
      {
        host: '127.0.0.1',
        port: gw.grpcPort,
        servername: 'localhost',
        ca: readFileSync(ca.caCert),
        cert: readFileSync(client.cert),
        key: readFileSync(client.key),
        ALPNProtocols: ['h2'],
      },
      () => {
        const n = String(s.getPeerCertificate().subject.CN);
        s.destroy();
        resolve(n);
      },
    );
    s.once('error', reject);
  });
const results: number[] = [];
for (let i = 1; i <= 5; i++) {
  const t0 = performance.now();
  ca.rotateServer(server, `gen-${i}`);
  while ((await cn()) !== `gen-${i}`) await new Promise((r) => setTimeout(r, 20));
  results.push(Math.round(performance.now() - t0));
}
console.log(JSON.stringify({ intervalMs: Number(interval), msToNewCert: results, max: Math.max(...results) }));
gw.child.kill('SIGTERM');
await gw.exited;
process.exit(0);
