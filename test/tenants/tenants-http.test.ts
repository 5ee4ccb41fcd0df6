// Tenants at the HTTP front door, through a real `polku serve` with POLKU_TENANTS_FILE: the key in
// X-API-Key decides the tenant, its sources and its quota; the Ack codes come back as 401, 403 and
// 429 with Retry-After, and a body's own `polku.tenant` never overrides the key's tenant.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { TENANT } from '../../src/metadata-keys.js';
import { hashKey } from '../../src/tenants/api-key.js';
import { sample, scrape, until } from '../helpers/gateway-harness.js';
import { serveHttp, stdoutEvents, type HttpGateway } from '../helpers/polku-process.js';
import { post } from '../receive/http-clients.js';

const WEB_KEY = 'web-http-key';
const TINY_KEY = 'tiny-http-key';
const DRAINED_KEY = 'drained-http-key';

describe('tenants over HTTP POST /v1/events', () => {
  let dir: string;
  let gw: HttpGateway;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'polku-tenants-http-'));
    const file = join(dir, 'tenants.json');
    writeFileSync(
      file,
      JSON.stringify({
        tenants: [
          { name: 'web', apiKeys: [hashKey(WEB_KEY)], sources: ['web'], rate: 10_000, burst: 10_000 },
          { name: 'tiny', apiKeys: [hashKey(TINY_KEY)], sources: ['tiny'], rate: 1, burst: 5 },
          // One token, refilled after 1,000 s: once taken, the bucket stays empty for the test.
          { name: 'drained', apiKeys: [hashKey(DRAINED_KEY)], sources: ['drained'], rate: 0.001, burst: 1 },
        ],
      }),
    );
    gw = await serveHttp([], { POLKU_TENANTS_FILE: file });
  });

  after(async () => {
    if (gw.child.exitCode === null) gw.child.kill('SIGTERM');
    await gw.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  const event = (id: string, source: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id,
    source,
    event_type: 'page.view',
    payload: 'hello',
    ...extra,
  });

  test('no key is 401 and an unknown key is 401; nothing is emitted', async () => {
    const none = await post(gw, JSON.stringify(event('h-none', 'web')));
    assert.equal(none.status, 401);
    assert.equal(none.body.errors[0]?.code, 'UNAUTHENTICATED');
    assert.deepEqual(none.body.accepted, []);
    const wrong = await post(gw, JSON.stringify(event('h-wrong', 'web')), { 'X-API-Key': 'not-a-key' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.errors[0]?.code, 'UNAUTHENTICATED');
  });

  test('a source the tenant may not send is 403', async () => {
    const denied = await post(gw, JSON.stringify(event('h-denied', 'tiny')), { 'X-API-Key': WEB_KEY });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.errors[0]?.code, 'PERMISSION_DENIED');
    assert.match(denied.body.errors[0]!.message, /tiny/);
  });

  test("a valid key is 202, and the event carries the key's tenant, not the body's", async () => {
    const ok = await post(gw, JSON.stringify([event('h-ok-1', 'web'), event('h-ok-2', 'web', { metadata: { [TENANT]: 'tiny' } })]), {
      'X-API-Key': WEB_KEY,
    });
    assert.equal(ok.status, 202);
    assert.deepEqual(ok.body.accepted, ['h-ok-1', 'h-ok-2']);
    await until(() => stdoutEvents(gw).filter((e) => e.id.startsWith('h-ok-')).length === 2, 'both events on stdout');
    for (const e of stdoutEvents(gw).filter((e) => e.id.startsWith('h-ok-'))) assert.equal(e.metadata[TENANT], 'web');
    assert.equal(
      stdoutEvents(gw).some((e) => e.id === 'h-none' || e.id === 'h-wrong' || e.id === 'h-denied'),
      false,
      'refused events never reach the emitter',
    );
  });

  test("over the tenant's quota: 429 with Retry-After, the events within the burst accepted", async () => {
    const batch = Array.from({ length: 8 }, (_, i) => event(`h-tiny-${i}`, 'tiny'));
    const answer = await post(gw, JSON.stringify(batch), { 'X-API-Key': TINY_KEY });
    assert.equal(answer.status, 429);
    assert.ok(Number(answer.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
    const limited = answer.body.errors.filter((e) => e.code === 'RATE_LIMITED');
    assert.equal(answer.body.accepted.length + limited.length, 8, 'every event accepted or RATE_LIMITED');
    assert.equal(answer.body.accepted.length, 5, 'the burst of 5 got in');
    const metrics = await scrape(gw.metricsPort);
    assert.match(metrics, /polku_events_dropped_total\{[^}]*reason="rate_limited"[^}]*\} 3/);
  });

  test('an empty bucket or a missing key is refused before the body is read: 429/401 for a body that is not even JSON, the connection kept', async () => {
    const first = await post(gw, JSON.stringify(event('h-drained-1', 'drained')), { 'X-API-Key': DRAINED_KEY });
    assert.equal(first.status, 202, 'the one token taken');
    const before = await scrape(gw.metricsPort);
    // Read, this body would be a 400 (PARSE_ERROR): a 429 shows it never was.
    const refused = await post(gw, '{this is not json', { 'X-API-Key': DRAINED_KEY });
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
    assert.deepEqual(refused.body.accepted, []);
    assert.equal(refused.body.errors.length, 1);
    assert.equal(refused.body.errors[0]!.code, 'RATE_LIMITED');
    assert.match(refused.body.errors[0]!.message, /^tenant "drained" is over its quota \(0\.001\/s, burst 1\); retry after \d+ ms$/);
    const keyless = await post(gw, '{this is not json either');
    assert.equal(keyless.status, 401, 'no key: 401 whatever the body holds');
    assert.equal(keyless.body.errors[0]!.code, 'UNAUTHENTICATED');
    const after = await scrape(gw.metricsPort);
    const moved = (series: string): number => (sample(after, series) ?? 0) - (sample(before, series) ?? 0);
    assert.equal(moved('polku_tenant_quota_refusals_total{tenant="drained"}'), 1, 'the refused request counted against the quota');
    assert.equal(moved('polku_tenant_requests_total{tenant="drained"}'), 1);
    assert.equal(moved('polku_tenant_events_total{tenant="drained",outcome="rate_limited"}'), 1);
    assert.equal(moved('polku_tenant_requests_total{tenant="_other"}'), 1);
    assert.equal(moved('polku_http_requests_total{route="events",status_class="4xx"}'), 2, 'both answered and counted');

    // A large unread body on a keep-alive connection: the answer comes, and the same socket then
    // carries the next request (node discarded the body instead of closing the connection).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = Buffer.alloc(256 * 1024, 0x20);
      const one = await rawPost(agent, gw.httpPort, big, { 'X-API-Key': DRAINED_KEY });
      assert.equal(one.status, 429);
      const two = await rawPost(agent, gw.httpPort, Buffer.from(JSON.stringify(event('h-web-after', 'web'))), { 'X-API-Key': WEB_KEY });
      assert.equal(two.status, 202);
      assert.equal(two.reusedSocket, true, 'the connection was kept');
    } finally {
      agent.destroy();
    }
  });
});

/** A POST through node's own client on `agent`, reporting whether the socket was reused. */
function rawPost(
  agent: Agent,
  port: number,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; reusedSocket: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: '127.0.0.1', port, path: '/v1/events', method: 'POST', headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, reusedSocket: req.reusedSocket, text: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
