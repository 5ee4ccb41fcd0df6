import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_DIR } from '../helpers/gateway-harness.js';
import { runPolku, servePolku, type PolkuProcess } from '../helpers/polku-process.js';

const TOKEN = 'admin-token-for-the-test';
const running: PolkuProcess[] = [];
after(async () => {
  for (const p of running) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});

function adminClient(port: number): grpc.Client & Record<string, any> {
  const definition = loadSync('polku/v1/admin.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  return new pkg.polku.v1.Admin(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function listDeadLetters(client: grpc.Client & Record<string, any>, metadata: grpc.Metadata): Promise<{ code: number; details: string }> {
  return new Promise((resolve) =>
    client['listDeadLetters']({ limit: 10 }, metadata, (err: grpc.ServiceError | null) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' }),
    ),
  );
}

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const p = runPolku(args, env);
  const { code } = await p.exited;
  return { code, out: p.stdout.join('\n') + p.stderr.join('\n') };
}

describe('POLKU_ADMIN_TOKEN: the admin surfaces want a token besides a loopback caller', () => {
  test('HTTP /admin, polku.v1.Admin and the CLI: refused without the token, served with it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-admin-token-'));
    const gw = await servePolku([], { POLKU_DURABLE: 'true', POLKU_DATA_DIR: dir, POLKU_ADMIN_TOKEN: TOKEN });
    running.push(gw);
    const base = `http://127.0.0.1:${gw.metricsPort}`;

    const bare = await fetch(`${base}/admin/dead-letters`);
    assert.equal(bare.status, 401);
    assert.match(((await bare.json()) as { error: string }).error, /authorization: Bearer <POLKU_ADMIN_TOKEN>/);
    const wrong = await fetch(`${base}/admin/dead-letters`, { headers: { authorization: 'Bearer not-it' } });
    assert.equal(wrong.status, 401);
    const right = await fetch(`${base}/admin/dead-letters`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(right.status, 200);
    assert.deepEqual(await right.json(), { deadLetters: [] });
    // Probes and metrics stay open: only /admin is guarded.
    assert.equal((await fetch(`${base}/healthz`)).status, 200);

    const client = adminClient(gw.grpcPort);
    try {
      const without = await listDeadLetters(client, new grpc.Metadata());
      assert.equal(without.code, grpc.status.UNAUTHENTICATED);
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${TOKEN}`);
      assert.equal((await listDeadLetters(client, md)).code, grpc.status.OK);
    } finally {
      client.close();
    }

    const admin = ['--admin', `127.0.0.1:${gw.metricsPort}`];
    const refused = await cli(['dlq', 'list', ...admin], {});
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, /POLKU_ADMIN_TOKEN/);
    const served = await cli(['dlq', 'list', ...admin], { POLKU_ADMIN_TOKEN: TOKEN });
    assert.equal(served.code, 0, served.out);
    assert.match(served.out, /"deadLetters": \[\]/);
  });

  test('without a token set, loopback callers are served as before', async () => {
    const gw = await servePolku([]);
    running.push(gw);
    const res = await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/plugins`);
    assert.equal(res.status, 200);
  });
});
