// The HTTP front door's retryable refusals through a real `polku serve` process whose emitter
// holds every batch until SIGUSR2 (test/fixtures/otlp-held-stdout.config.ts): 429 when the buffer
// is full, 503 while the gateway drains; and Idempotency-Key retries in durable mode.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { serveHttp, stdoutEvents } from '../helpers/polku-process.js';
import { sample, until } from '../helpers/gateway-harness.js';
import { post } from './http-clients.js';

const HELD = 'test/fixtures/otlp-held-stdout.config.ts';

test('a full buffer: 429 with Retry-After and BUFFER_FULL per event; the events taken are delivered', async () => {
  const gw = await serveHttp(['--config', HELD], { POLKU_BUFFER_CAPACITY: '3' });
  try {
    const first = await post(gw, '[{"id":"b-0"},{"id":"b-1"},{"id":"b-2"}]');
    assert.equal(first.status, 202);
    const full = await post(gw, '[{"id":"b-3"},{"id":"b-4"}]');
    assert.equal(full.status, 429);
    assert.equal(full.headers.get('retry-after'), '1');
    assert.deepEqual(full.body, {
      accepted: [],
      errors: [
        { index: 0, id: 'b-3', code: 'BUFFER_FULL', message: 'buffer full (3/3 events)' },
        { index: 1, id: 'b-4', code: 'BUFFER_FULL', message: 'buffer full (3/3 events)' },
      ],
    });
    // The metrics say so too: two events dropped for want of room, the request a 4xx.
    const metrics = await (await fetch(`http://127.0.0.1:${gw.metricsPort}/metrics`)).text();
    assert.equal(sample(metrics, 'polku_events_dropped_total{reason="buffer_full"}'), 2);
    assert.equal(sample(metrics, 'polku_http_requests_total{route="events",status_class="4xx"}'), 1);
    gw.child.kill('SIGUSR2');
    await until(() => stdoutEvents(gw).length === 3, 'the three accepted events on stdout');
    assert.deepEqual(
      stdoutEvents(gw).map((e) => e.id),
      ['b-0', 'b-1', 'b-2'],
    );
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
});

test('while draining: 503 with Retry-After and Connection: close; /healthz 503; what was taken is delivered', async () => {
  const gw = await serveHttp(['--config', HELD], { POLKU_SHUTDOWN_TIMEOUT_MS: '30000' });
  const taken = await post(gw, '{"id":"d-0"}');
  assert.equal(taken.status, 202);
  gw.child.kill('SIGTERM');
  await gw.line(/shutting down: intake stopped/);
  const refused = await post(gw, '{"id":"d-1"}');
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal(refused.headers.get('connection'), 'close');
  assert.deepEqual(refused.body, { accepted: [], errors: [{ code: 'SHUTTING_DOWN', message: 'gateway is shutting down' }] });
  const health = await fetch(`${gw.httpUrl}/healthz`);
  assert.equal(health.status, 503);
  assert.deepEqual(await health.json(), { status: 'draining' });
  gw.child.kill('SIGUSR2');
  const exit = await gw.exited;
  assert.equal(exit.code, 0);
  assert.deepEqual(
    stdoutEvents(gw).map((e) => e.id),
    ['d-0'],
  );
});

test('durable mode: a request retried with its Idempotency-Key is acknowledged again and delivered once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'polku-http-durable-'));
  const gw = await serveHttp([], { POLKU_DURABLE: 'true', POLKU_DATA_DIR: dir });
  try {
    // No ids: each send gets fresh ULIDs, so only the key can tell a retry.
    const body = '[{"event_type":"order.created"},{"event_type":"order.paid"}]';
    const a = await post(gw, body, { 'Idempotency-Key': 'checkout-42' });
    const b = await post(gw, body, { 'Idempotency-Key': 'checkout-42' });
    assert.deepEqual([a.status, b.status], [202, 202]);
    assert.equal(a.body.accepted.length, 2);
    assert.equal(b.body.accepted.length, 2);
    const single = '{"event_type":"refund"}';
    assert.equal((await post(gw, single, { 'Idempotency-Key': 'refund-1' })).status, 202);
    assert.equal((await post(gw, single, { 'Idempotency-Key': 'refund-1' })).status, 202);
    // A marker sent last: delivery is in order, so once it is out, any duplicate would be too.
    assert.equal((await post(gw, '{"id":"marker"}')).status, 202);
    await until(() => stdoutEvents(gw).some((e) => e.id === 'marker'), 'the marker on stdout');
    assert.deepEqual(
      stdoutEvents(gw).map((e) => [e.event_type, e.metadata['idempotency_key'] ?? '']),
      [
        ['order.created', 'checkout-42:0'],
        ['order.paid', 'checkout-42:1'],
        ['refund', 'refund-1'],
        ['', ''],
      ],
    );
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
