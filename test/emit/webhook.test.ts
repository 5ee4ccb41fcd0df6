import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock, systemTimers, type Clock } from '../../src/clock.js';
import { WebhookEmitter, type WebhookEmitterOptions } from '../../src/emit/webhook.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { FAKE_EPOCH_MS, FakeClock } from '../../src/testing/index.js';
import { refusingUrl, ScriptedServer, until } from './helpers/scripted-server.js';

const events = (...ids: string[]) => ids.map((id) => Event.fromPartial({ id, eventType: 'user.login' }));
const idsOf = (body: unknown) => (body as { events: Array<{ id: string }> }).events.map((e) => e.id);

/** A scripted server and an emitter pointed at it; both closed when the test ends. */
async function setup(t: TestContext, options: Omit<Partial<WebhookEmitterOptions>, 'url'> = {}) {
  const server = await ScriptedServer.start();
  const webhook = new WebhookEmitter({ url: server.url(), ...options });
  t.after(async () => {
    await webhook.shutdown();
    await server.close();
  });
  return { server, webhook };
}

function init(webhook: WebhookEmitter, clock: Clock = systemClock) {
  const registry = createRegistry();
  webhook.init({ registry, logger: silentLogger(), clock, timers: systemTimers });
  return registry;
}

test('a batch is POSTed as {"events":[...]} JSON with Polku-Batch-Size and the extra headers; 200 is success', async (t) => {
  const { server, webhook } = await setup(t, { headers: { Authorization: 'Bearer k' } });
  const batch = [
    Event.fromPartial({
      id: 'e1',
      eventType: 'user.login',
      source: 'api',
      timestampUnixNs: 1_700_000_000_123_456_789n,
      payload: Buffer.from('hello'),
      metadata: { k: 'v' },
    }),
    Event.fromPartial({ id: 'e2', eventType: 'blob', payload: new Uint8Array([0xff, 0x00]) }),
  ];
  assert.deepEqual(await webhook.emit(batch), { status: 'success' });
  const [req] = server.requests;
  assert.equal(req!.method, 'POST');
  assert.equal(req!.url, '/hook');
  assert.equal(req!.headers['content-type'], 'application/json');
  assert.equal(req!.headers['polku-batch-size'], '2');
  assert.equal(req!.headers['authorization'], 'Bearer k');
  assert.deepEqual(req!.body, {
    events: [
      {
        id: 'e1',
        timestamp_unix_ns: '1700000000123456789',
        source: 'api',
        event_type: 'user.login',
        metadata: { k: 'v' },
        payload: 'hello',
        route_to: [],
        severity: 'SEVERITY_UNSPECIFIED',
        outcome: 'OUTCOME_UNSPECIFIED',
      },
      {
        id: 'e2',
        timestamp_unix_ns: '0',
        source: '',
        event_type: 'blob',
        metadata: {},
        payload_base64: '/wA=',
        route_to: [],
        severity: 'SEVERITY_UNSPECIFIED',
        outcome: 'OUTCOME_UNSPECIFIED',
      },
    ],
  });
});

test('503 is retryable, quoting the status and body', async (t) => {
  const { server, webhook } = await setup(t);
  server.reply({ status: 503, body: 'down for maintenance' });
  assert.deepEqual(await webhook.emit(events('a')), { status: 'retryable', error: 'webhook answered HTTP 503: down for maintenance' });
  assert.deepEqual(idsOf(server.requests[0]!.body), ['a']);
});

test('429 with Retry-After: 2 is retryable after 2000 ms', async (t) => {
  const { server, webhook } = await setup(t);
  server.reply({ status: 429, headers: { 'Retry-After': '2' }, body: 'slow down' });
  assert.deepEqual(await webhook.emit(events('a')), {
    status: 'retryable',
    error: 'webhook answered HTTP 429: slow down',
    retryAfterMs: 2000,
  });
});

test('429 with Retry-After as an HTTP date is retryable until that date', async (t) => {
  const { server, webhook } = await setup(t);
  init(webhook, new FakeClock(FAKE_EPOCH_MS));
  server.reply(
    { status: 429, headers: { 'Retry-After': new Date(FAKE_EPOCH_MS + 30_000).toUTCString() } },
    { status: 429, headers: { 'Retry-After': new Date(FAKE_EPOCH_MS - 60_000).toUTCString() } },
  );
  assert.deepEqual(await webhook.emit(events('a')), { status: 'retryable', error: 'webhook answered HTTP 429: ', retryAfterMs: 30_000 });
  // A date already past means now.
  assert.deepEqual(await webhook.emit(events('a')), { status: 'retryable', error: 'webhook answered HTTP 429: ', retryAfterMs: 0 });
});

test('a server that does not answer within timeoutMs gives retryable "timed out after 200 ms"', async (t) => {
  const { server, webhook } = await setup(t, { timeoutMs: 200 });
  server.reply('hang');
  assert.deepEqual(await webhook.emit(events('a')), { status: 'retryable', error: 'webhook timed out after 200 ms' });
  assert.equal(server.requests.length, 1, 'the request reached the server');
});

test('a connection reset by the server is retryable', async (t) => {
  const { server, webhook } = await setup(t);
  server.reply('reset');
  const result = await webhook.emit(events('a'));
  assert.equal(result.status, 'retryable');
  assert.match((result as { error: string }).error, /^webhook connection failed: .*ECONNRESET/);
  assert.equal(server.requests.length, 1);
});

test('a refused connection is retryable', async () => {
  const webhook = new WebhookEmitter({ url: await refusingUrl() });
  const result = await webhook.emit(events('a'));
  await webhook.shutdown();
  assert.equal(result.status, 'retryable');
  assert.match((result as { error: string }).error, /^webhook connection failed: .*ECONNREFUSED/);
});

test('400 is failed, quoting the status and the first 200 bytes of the body', async (t) => {
  const { server, webhook } = await setup(t);
  server.reply({ status: 400, body: 'x'.repeat(150) + 'y'.repeat(150) });
  assert.deepEqual(await webhook.emit(events('a')), {
    status: 'failed',
    error: `webhook answered HTTP 400: ${'x'.repeat(150)}${'y'.repeat(50)}`,
  });
});

test('a failure list in a 207 or 200 body makes the result partial; in a 202 it is ignored', async (t) => {
  const { server, webhook } = await setup(t);
  const body = JSON.stringify({
    failed: [
      { index: 0, retryable: true, error: 'busy' },
      { index: 2, retryable: false, error: 'bad schema' },
      { index: 7, retryable: true, error: 'no such event' }, // outside the batch: ignored
    ],
  });
  server.reply(
    { status: 207, body },
    { status: 200, body, headers: { 'Retry-After': '1' } },
    { status: 202, body },
    { status: 200, body: '{"ok":true}' },
  );
  const failures = [
    { index: 0, retryable: true, error: 'busy' },
    { index: 2, retryable: false, error: 'bad schema' },
  ];
  assert.deepEqual(await webhook.emit(events('a', 'b', 'c')), { status: 'partial', failures });
  assert.deepEqual(await webhook.emit(events('a', 'b', 'c')), { status: 'partial', failures, retryAfterMs: 1000 });
  assert.deepEqual(await webhook.emit(events('a', 'b', 'c')), { status: 'success' });
  assert.deepEqual(await webhook.emit(events('a', 'b', 'c')), { status: 'success' });
});

test('health is unhealthy with the reason after a failed batch, healthy again after a success', async (t) => {
  const { server, webhook } = await setup(t);
  assert.deepEqual(webhook.health(), { healthy: true, message: 'ok' });
  server.reply({ status: 500, body: 'boom' });
  await webhook.emit(events('a'));
  assert.deepEqual(webhook.health(), { healthy: false, message: 'webhook answered HTTP 500: boom' });
  await webhook.emit(events('a'));
  assert.deepEqual(webhook.health(), { healthy: true, message: 'ok' });
});

test('requests are counted by outcome and timed per emitter', async (t) => {
  const { server, webhook } = await setup(t, { name: 'hook', timeoutMs: 200 });
  const registry = init(webhook);
  server.reply({ status: 500 }, { status: 404 }, { status: 200, body: '{"failed":[{"index":0}]}' }, 'hang', 'reset');
  for (let i = 0; i < 6; i++) await webhook.emit(events('a'));
  const counts = (await registry.getSingleMetric('polku_webhook_requests_total')!.get()).values;
  const byOutcome = Object.fromEntries(counts.map((v) => [`${v.labels['emitter']}/${v.labels['outcome']}`, v.value]));
  assert.deepEqual(byOutcome, {
    'hook/success': 1,
    'hook/partial': 1,
    'hook/retryable': 1,
    'hook/failed': 1,
    'hook/timeout': 1,
    'hook/network_error': 1,
  });
  const seconds = (await registry.getSingleMetric('polku_webhook_request_seconds')!.get()).values;
  assert.equal(seconds.find((v) => (v as { metricName?: string }).metricName === 'polku_webhook_request_seconds_count')?.value, 6);
});

test('two webhook emitters share one registry, each with every outcome at zero from the start', async () => {
  const registry = createRegistry();
  const ctx = { registry, logger: silentLogger(), clock: systemClock, timers: systemTimers };
  new WebhookEmitter({ name: 'a', url: 'http://127.0.0.1:1/' }).init(ctx);
  new WebhookEmitter({ name: 'b', url: 'http://127.0.0.1:1/' }).init(ctx);
  const counts = (await registry.getSingleMetric('polku_webhook_requests_total')!.get()).values;
  assert.deepEqual(
    counts.map((v) => `${v.labels['emitter']}/${v.labels['outcome']}=${v.value}`).sort(),
    ['a', 'b'].flatMap((e) => ['failed', 'network_error', 'partial', 'retryable', 'success', 'timeout'].map((o) => `${e}/${o}=0`)),
  );
});

test('batches reuse one keep-alive connection', async (t) => {
  const { server, webhook } = await setup(t);
  for (let i = 0; i < 5; i++) assert.deepEqual(await webhook.emit(events(`e${i}`)), { status: 'success' });
  assert.equal(server.requests.length, 5);
  assert.equal(server.connections, 1);
});

test('shutdown closes pooled connections and later batches are refused as retryable', async (t) => {
  const { server, webhook } = await setup(t);
  await webhook.emit(events('a'));
  assert.equal(server.openConnections, 1, 'the connection stays open between batches');
  await webhook.shutdown();
  await server.whenNoConnections();
  assert.deepEqual(await webhook.emit(events('b')), { status: 'retryable', error: 'webhook "webhook" is shut down' });
  assert.equal(server.requests.length, 1);
});

test('the URL must be a valid http or https URL', () => {
  const invalid = (pattern: RegExp) => (err: unknown) =>
    err instanceof PolkuError && err.code === 'POLKU_ERR_PIPELINE_INVALID' && pattern.test(err.message);
  assert.throws(
    () => new WebhookEmitter({ url: 'ftp://example.com/x' }),
    invalid(/webhook "webhook": url must start with http:\/\/ or https:\/\/, got ftp:\/\//),
  );
  assert.throws(() => new WebhookEmitter({ name: 'w', url: 'not a url' }), invalid(/webhook "w": url "not a url" is not a valid URL/));
  assert.doesNotThrow(() => new WebhookEmitter({ url: 'https://example.com/hook' }));
});

test('through a hub, events that were delivered are never sent again', async (t) => {
  const { server, webhook } = await setup(t);
  server.reply({
    status: 207,
    headers: { 'Retry-After': '0' }, // retry at once rather than after the queue's backoff
    body: JSON.stringify({
      failed: [
        { index: 2, retryable: true, error: 'busy' },
        { index: 5, retryable: true, error: 'busy' },
        { index: 8, retryable: false, error: 'rejected' },
      ],
    }),
  });
  const registry = createRegistry();
  const h = hub().emitter(webhook).delivery({ batchSize: 10, flushIntervalMs: 1, maxAttempts: 5 }).build({ registry });
  const ids = Array.from({ length: 10 }, (_, i) => `e${i}`);
  await h.processBatch({ source: 's', cluster: '', payload: { $case: 'events', value: { events: events(...ids) } } });
  await until(() => h.stats().buffer.events === 0 && server.requests.length >= 2, 'the buffer to empty');
  assert.deepEqual(
    server.requests.map((r) => idsOf(r.body)),
    [ids, ['e2', 'e5']],
  );
  const dropped = (await registry.getSingleMetric('polku_events_dropped_total')!.get()).values;
  assert.equal(dropped.find((v) => v.labels['reason'] === 'emit_failed')?.value, 1);
  assert.equal(dropped.find((v) => v.labels['reason'] === 'emit_retries_exhausted')?.value ?? 0, 0);
  await h.drain(1_000);
});
