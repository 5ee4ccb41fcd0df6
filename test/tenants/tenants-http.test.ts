// Tenants at the HTTP front door, through a real `polku serve` with POLKU_TENANTS_FILE: the key in
// X-API-Key decides the tenant, its sources and its quota; the Ack codes come back as 401, 403 and
// 429 with Retry-After, and a body's own `polku.tenant` never overrides the key's tenant.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TENANT } from '../../src/metadata-keys.js';
import { hashKey } from '../../src/tenants/api-key.js';
import { scrape, until } from '../helpers/gateway-harness.js';
import { serveHttp, stdoutEvents, type HttpGateway } from '../helpers/polku-process.js';
import { post } from '../receive/http-clients.js';

const WEB_KEY = 'web-http-key';
const TINY_KEY = 'tiny-http-key';

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
});
