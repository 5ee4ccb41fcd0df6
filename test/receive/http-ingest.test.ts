// The HTTP front door through a real `polku serve` process (the default pipeline: its stdout
// emitter prints every delivered event), with node's own fetch and http client.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { serveHttp, stdoutEvents, type HttpGateway } from '../helpers/polku-process.js';
import { sample, until } from '../helpers/gateway-harness.js';
import { post } from './http-clients.js';

const eventsWithIds = (gw: HttpGateway, ids: readonly string[]) => stdoutEvents(gw).filter((e) => ids.includes(e.id));

describe('POST /v1/events', () => {
  let gw: HttpGateway;
  before(async () => {
    gw = await serveHttp([], { POLKU_MAX_BATCH_EVENTS: '5', POLKU_HTTP_MAX_BODY_BYTES: '4096' });
  });
  after(async () => {
    gw.child.kill('SIGTERM');
    await gw.exited;
  });

  test('one event: 202 with its id; source from the event, else X-Polku-Source, else http', async () => {
    const a = await post(gw, '{"id":"s-1","event_type":"order.created","payload":{"total":42}}');
    assert.equal(a.status, 202);
    assert.deepEqual(a.body, { accepted: ['s-1'], errors: [] });
    const b = await post(gw, '{"id":"s-2"}', { 'X-Polku-Source': 'web' });
    const c = await post(gw, '{"id":"s-3","source":"own"}', { 'X-Polku-Source': 'web' });
    assert.deepEqual([b.status, c.status], [202, 202]);
    await until(() => eventsWithIds(gw, ['s-1', 's-2', 's-3']).length === 3, 'three events on stdout');
    const printed = eventsWithIds(gw, ['s-1', 's-2', 's-3']);
    assert.deepEqual(
      printed.map((e) => [e.id, e.source, e.event_type]),
      [
        ['s-1', 'http', 'order.created'],
        ['s-2', 'web', ''],
        ['s-3', 'own', ''],
      ],
    );
    assert.equal(printed[0]!.payload, '{"total":42}');
  });

  test('a mixed array: 400, the valid neighbours accepted, each error with its index in the body', async () => {
    const long = 'x'.repeat(300);
    const body = `[{"id":"m-0"},{"id":5},{"id":"m-2"},7,{"id":"${long}"},{"id":"m-5","severity":"LOUD"}]`;
    // Six elements over a limit of five: the whole request is refused first.
    const tooMany = await post(gw, body);
    assert.equal(tooMany.status, 413);
    assert.equal(tooMany.body.errors[0]!.code, 'BATCH_TOO_LARGE');
    assert.match(tooMany.body.errors[0]!.message, /more than 5 events in one message \(limit POLKU_MAX_BATCH_EVENTS=5\)/);

    const a = await post(gw, `[{"id":"m-0"},{"id":5},{"id":"m-2"},7,{"id":"${long}"}]`);
    assert.equal(a.status, 400);
    assert.deepEqual(a.body, {
      accepted: ['m-0', 'm-2'],
      errors: [
        { index: 1, code: 'PARSE_ERROR', message: 'element 1: "id" must be a string (at byte 14)' },
        { index: 3, code: 'PARSE_ERROR', message: 'element 3: an event must be a JSON object (at byte 36)' },
        { index: 4, id: long, code: 'INVALID_EVENT', message: 'id is 300 characters, limit 256' },
      ],
    });
    await until(() => eventsWithIds(gw, ['m-0', 'm-2']).length === 2, 'the two valid events on stdout');
    assert.deepEqual(
      stdoutEvents(gw)
        .filter((e) => e.id.startsWith('m-') || e.id === long)
        .map((e) => e.id),
      ['m-0', 'm-2'],
    );
  });

  test('NDJSON with a broken line: PARSE_ERROR naming the line, the other lines accepted', async () => {
    const a = await post(gw, '{"id":"n-1"}\n{"id":"n-2",\n\n{"id":"n-3"}\n', { 'Content-Type': 'application/x-ndjson' });
    assert.equal(a.status, 400);
    assert.deepEqual(a.body.accepted, ['n-1', 'n-3']);
    assert.equal(a.body.errors.length, 1);
    assert.equal(a.body.errors[0]!.index, 1);
    assert.equal(a.body.errors[0]!.code, 'PARSE_ERROR');
    assert.match(a.body.errors[0]!.message, /^line 2: invalid JSON: .* \(at byte 13\)$/);
  });

  test('gzip: inflated and read; a bomb is refused 413 at the limit; a corrupt one 400', async () => {
    const ok = await post(gw, gzipSync('[{"id":"g-1"},{"id":"g-2"}]'), { 'Content-Encoding': 'gzip' });
    assert.equal(ok.status, 202);
    assert.deepEqual(ok.body.accepted, ['g-1', 'g-2']);

    // 1 MiB of spaces inside a string: ~1 KiB gzipped, far past the 4096-byte limit once inflated.
    const bomb = gzipSync(`{"id":"bomb","payload":"${' '.repeat(1 << 20)}"}`);
    assert.ok(bomb.length < 4096);
    const refused = await post(gw, bomb, { 'Content-Encoding': 'gzip' });
    assert.equal(refused.status, 413);
    assert.deepEqual(refused.body, {
      accepted: [],
      errors: [{ code: 'BATCH_TOO_LARGE', message: 'gzip body inflates past 4096 bytes (POLKU_HTTP_MAX_BODY_BYTES)' }],
    });

    const big = await post(gw, `{"id":"big","payload":"${'y'.repeat(5000)}"}`);
    assert.equal(big.status, 413);
    assert.deepEqual(big.body.errors, [{ code: 'BATCH_TOO_LARGE', message: 'body is over 4096 bytes (POLKU_HTTP_MAX_BODY_BYTES)' }]);

    const corrupt = await post(gw, Buffer.from('not gzip at all'), { 'Content-Encoding': 'gzip' });
    assert.equal(corrupt.status, 400);
    assert.equal(corrupt.body.errors[0]!.code, 'INVALID_BATCH');
    assert.match(corrupt.body.errors[0]!.message, /^gzip body is corrupt: /);
  });

  test('415 for other media types and encodings, 405 with Allow, 404 elsewhere, /healthz', async () => {
    const type = await post(gw, 'x', { 'Content-Type': 'text/plain' });
    assert.equal(type.status, 415);
    assert.deepEqual(type.body.errors, [
      {
        code: 'POLKU_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
        message: 'unsupported media type: Content-Type "text/plain": send application/json or application/x-ndjson',
      },
    ]);
    const enc = await post(gw, '{}', { 'Content-Encoding': 'br' });
    assert.equal(enc.status, 415);
    assert.equal(enc.body.errors[0]!.message, 'unsupported media type: Content-Encoding "br": send gzip or none');

    const get = await fetch(`${gw.httpUrl}/v1/events`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.deepEqual(await get.json(), {
      accepted: [],
      errors: [{ code: 'POLKU_ERR_HTTP_METHOD_NOT_ALLOWED', message: 'method not allowed: GET (POST /v1/events)' }],
    });

    const missing = await fetch(`${gw.httpUrl}/v2/things`, { method: 'POST' });
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      accepted: [],
      errors: [{ code: 'POLKU_ERR_HTTP_NOT_FOUND', message: 'not found: /v2/things (events are POSTed to /v1/events)' }],
    });

    const health = await fetch(`${gw.httpUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'serving' });
  });

  test('Idempotency-Key and traceparent land in metadata; a body never names its tenant', async () => {
    const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const one = await post(gw, '{"id":"i-1","metadata":{"polku.tenant":"forged"}}', { 'Idempotency-Key': 'order-7', traceparent: trace });
    const many = await post(gw, '[{"id":"i-2"},{"id":3},{"id":"i-4","metadata":{"trace_id":"own"}}]', {
      'Idempotency-Key': 'batch-9',
      traceparent: trace,
    });
    assert.equal(one.status, 202);
    assert.equal(many.status, 400);
    const bad = await post(gw, '{"id":"i-5"}', { traceparent: '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01' });
    assert.equal(bad.status, 202);
    await until(() => eventsWithIds(gw, ['i-1', 'i-2', 'i-4', 'i-5']).length === 4, 'four events on stdout');
    const md = Object.fromEntries(eventsWithIds(gw, ['i-1', 'i-2', 'i-4', 'i-5']).map((e) => [e.id, e.metadata]));
    assert.deepEqual(md, {
      'i-1': { idempotency_key: 'order-7', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7' },
      'i-2': { idempotency_key: 'batch-9:0', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7' },
      'i-4': { idempotency_key: 'batch-9:2', trace_id: 'own' },
      'i-5': {},
    });
    const metrics = await (await fetch(`http://127.0.0.1:${gw.metricsPort}/metrics`)).text();
    assert.equal(sample(metrics, 'polku_http_invalid_traceparent_total'), 1);
  });

  test('a keep-alive connection carries many requests', async () => {
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    for (let i = 0; i < 5; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          `${gw.httpUrl}/v1/events`,
          { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } },
          (res) => {
            sockets.add(res.socket);
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        req.end(`{"id":"k-${i}"}`);
      });
      assert.equal(status, 202);
    }
    agent.destroy();
    assert.equal(sockets.size, 1);
  });
});

describe('metrics', () => {
  test('requests by route and status class, body bytes, dropped events by reason', async () => {
    const gw = await serveHttp([]);
    try {
      const body = '[{"id":"c-1"},{"id":2}]';
      assert.equal((await post(gw, '{"id":"c-0"}')).status, 202);
      assert.equal((await post(gw, body)).status, 400);
      assert.equal((await post(gw, 'x', { 'Content-Type': 'text/plain' })).status, 415);
      assert.equal((await fetch(`${gw.httpUrl}/nowhere`)).status, 404);
      const text = await (await fetch(`http://127.0.0.1:${gw.metricsPort}/metrics`)).text();
      assert.deepEqual(
        text.split('\n').filter((l) => l.startsWith('polku_http_requests_total{')),
        [
          'polku_http_requests_total{route="events",status_class="2xx"} 1',
          'polku_http_requests_total{route="events",status_class="4xx"} 2',
          'polku_http_requests_total{route="other",status_class="4xx"} 1',
        ],
      );
      // The 415 is refused before its body is read: only the two bodies read count.
      assert.equal(sample(text, 'polku_http_request_body_bytes_total{route="events"}'), '{"id":"c-0"}'.length + body.length);
      assert.equal(sample(text, 'polku_http_request_duration_seconds_count{route="events"}'), 3);
      assert.equal(sample(text, 'polku_http_request_duration_seconds_count{route="other"}'), 1);
      assert.equal(sample(text, 'polku_events_dropped_total{reason="parse_error"}'), 1);
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  });
});
