import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { systemClock, systemTimers } from '../../src/clock.js';
import { splitBatch } from '../../src/emit/batch-split.js';
import { OtlpEmitter, type OtlpEmitterOptions } from '../../src/emit/otlp.js';
import { Event, Outcome, Severity } from '../../src/gen/polku/v1/event.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { startGrpcReceiver, startHttpReceiver, type Receiver } from './otlp-receiver.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers) await c();
});

async function receiver(protocol: 'grpc' | 'http'): Promise<Receiver> {
  const r = protocol === 'grpc' ? await startGrpcReceiver() : await startHttpReceiver();
  closers.push(() => r.close());
  return r;
}

function emitter(options: OtlpEmitterOptions): { e: OtlpEmitter; registry: ReturnType<typeof createRegistry> } {
  const e = new OtlpEmitter(options);
  const registry = createRegistry();
  e.init({ registry, logger: silentLogger(), clock: systemClock, timers: systemTimers });
  closers.push(() => e.shutdown());
  return { e, registry };
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

/** One event with every field set, resource and record metadata, trace ids and a binary payload. */
function rich(): Event {
  return Event.fromPartial({
    id: 'evt-rich',
    timestampUnixNs: 1_764_560_000_123_456_789n,
    source: 'tapio',
    eventType: 'tapio.network.connection',
    metadata: {
      'k8s.namespace.name': 'shop',
      'k8s.pod.name': 'cart-7d9',
      'k8s.pod.labels.app': 'cart',
      'service.name': 'cart',
      'http.method': 'GET',
      'k8s.object.kind': 'Pod',
      'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent',
      trace_id: TRACE,
      span_id: SPAN,
    },
    payload: new Uint8Array([0x0a, 0x02, 0xff, 0xfe]),
    severity: Severity.SEVERITY_WARNING,
    outcome: Outcome.OUTCOME_FAILURE,
  });
}

/** A JSON event with no resource metadata (its source becomes service.name), as the OTLP receiver writes them. */
function plain(): Event {
  return Event.fromPartial({
    id: 'evt-json',
    timestampUnixNs: 1_764_560_000_000_000_001n,
    source: 'checkout',
    eventType: 'order.placed',
    metadata: {
      'polku.payload.format': 'json',
      trace_id: 'not-hex',
      severity_text: 'Critical',
      'otel.scope.name': 'orders-logger',
      'otel.scope.version': '1.2.0',
      'otel.attr.user.id': 'u-7',
      'otel.attr.event.name': 'order.placed',
    },
    payload: Buffer.from('{"order":42,"price":9.5,"ok":true,"tags":["a",null],"note":"über"}'),
    severity: Severity.SEVERITY_CRITICAL,
  });
}

/** A text event as the OTLP receiver writes a string body. */
function text(): Event {
  return Event.fromPartial({
    id: 'evt-text',
    source: 'checkout',
    metadata: { 'polku.payload.format': 'text' },
    payload: Buffer.from('plain words'),
  });
}

function batch(tag: string, n: number): Event[] {
  return Array.from({ length: n }, (_, i) =>
    Event.fromPartial({ id: `${tag}-${i}`, source: 'bench', eventType: 't', payload: Buffer.from(`${tag} ${i}`) }),
  );
}

const uids = (r: Receiver) => r.records.map((x) => x.attributes['log.record.uid']);

for (const protocol of ['grpc', 'http'] as const) {
  describe(`OtlpEmitter over ${protocol}`, () => {
    test('maps every field as the README table says, decoded with the official generated code', async () => {
      const r = await receiver(protocol);
      const { e } = emitter({ protocol, endpoint: r.address, headers: { authorization: 'Bearer s3cret' } });
      assert.deepEqual(await e.emit([rich(), plain(), text()]), { status: 'success' });
      assert.equal(r.requests.length, 1, 'one Export per batch');
      assert.equal(r.lastHeaders['authorization'], 'Bearer s3cret');
      const [a, b, c] = r.records;
      assert.ok(a && b && c);
      assert.deepEqual(a.resource, {
        'k8s.namespace.name': 'shop',
        'k8s.pod.name': 'cart-7d9',
        'k8s.pod.labels.app': 'cart',
        'service.name': 'cart',
      });
      assert.equal(a.scope, 'polku');
      assert.equal(a.timeUnixNano, '1764560000123456789');
      assert.equal(a.observedTimeUnixNano, '1764560000123456789');
      assert.equal(a.severityNumber, 13);
      assert.equal(a.severityText, 'WARN');
      assert.deepEqual(a.body, { bytesValue: '0a02fffe' });
      assert.deepEqual(a.attributes, {
        'event.name': 'tapio.network.connection',
        'log.record.uid': 'evt-rich',
        'polku.source': 'tapio',
        'polku.outcome': 'failure',
        'http.method': 'GET',
        'k8s.object.kind': 'Pod',
        'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent',
      });
      assert.equal(a.traceId, TRACE);
      assert.equal(a.spanId, SPAN);

      assert.deepEqual(b.resource, { 'service.name': 'checkout' });
      assert.equal(b.scope, 'orders-logger');
      assert.equal(b.scopeVersion, '1.2.0');
      assert.equal(b.severityNumber, 21);
      assert.equal(b.severityText, 'Critical', 'the severity text the record came with');
      assert.deepEqual(b.body, { structured: { order: 42, price: 9.5, ok: true, tags: ['a', null], note: 'über' } });
      assert.deepEqual(b.attributes, {
        'event.name': 'order.placed',
        'log.record.uid': 'evt-json',
        'user.id': 'u-7',
        trace_id: 'not-hex', // not a trace id: kept as it came
      });
      assert.equal(b.traceId, '');
      assert.equal(b.spanId, '');

      assert.equal(c.scope, 'polku');
      assert.deepEqual(c.body, { stringValue: 'plain words' });
      assert.deepEqual(c.attributes, { 'log.record.uid': 'evt-text' });
      assert.equal(c.timeUnixNano, '0');
      assert.equal(c.severityNumber, 0);
    });

    test('a batch larger than maxExportRecords goes as several Exports; every event arrives once', async () => {
      const r = await receiver(protocol);
      const { e } = emitter({ protocol, endpoint: r.address, maxExportRecords: 400, compression: 'gzip' });
      const events = batch('big', 1000);
      assert.deepEqual(await e.emit(events), { status: 'success' });
      assert.deepEqual(r.requests, [400, 400, 200]);
      assert.deepEqual(
        uids(r),
        events.map((x) => x.id),
      );
      if (protocol === 'http') assert.equal(r.lastEncoding, 'gzip');
    });

    test('partial success: the last N records fail, not retryable, with the receiver message', async () => {
      const r = await receiver(protocol);
      const { e, registry } = emitter({ protocol, endpoint: r.address });
      r.script.push({ kind: 'partial', rejected: 2, message: 'attributes too long' });
      const events = batch('part', 5);
      const result = await e.emit(events);
      const error = 'OTLP partial success: 2 of 5 log records rejected: attributes too long';
      assert.deepEqual(result, {
        status: 'partial',
        failures: [
          { index: 3, retryable: false, error },
          { index: 4, retryable: false, error },
        ],
      });
      const split = splitBatch(events, result);
      assert.equal(split.delivered.length, 3);
      assert.equal(split.retry.length, 0);
      const metrics = await registry.metrics();
      assert.match(metrics, /polku_otlp_emitter_rejected_records_total\{emitter="otlp"\} 2/);
      assert.match(metrics, /polku_otlp_emitter_exports_total\{emitter="otlp",outcome="partial"\} 1/);
    });
  });
}

describe('OtlpEmitter retryable and failed answers', () => {
  test('gRPC UNAVAILABLE with RetryInfo: retryable after its delay, then retried and delivered once', async () => {
    const r = await receiver('grpc');
    const { e } = emitter({ endpoint: r.address });
    r.script.push({ kind: 'grpc-error', code: status.UNAVAILABLE, message: 'queue full', retryDelayMs: 1250 });
    const events = batch('retry', 7);
    const first = await e.emit(events);
    assert.deepEqual(first, { status: 'retryable', error: 'OTLP/gRPC UNAVAILABLE: queue full', retryAfterMs: 1250 });
    assert.equal(e.health().healthy, false);
    const again = splitBatch(events, first).retry;
    assert.equal(again.length, 7);
    assert.deepEqual(await e.emit(again), { status: 'success' });
    assert.deepEqual(
      uids(r),
      events.map((x) => x.id),
    );
    assert.deepEqual(r.requests, [7, 7]);
    assert.equal(e.health().healthy, true);
  });

  test('gRPC RESOURCE_EXHAUSTED is retryable only with RetryInfo; INVALID_ARGUMENT fails', async () => {
    const r = await receiver('grpc');
    const { e } = emitter({ endpoint: r.address });
    r.script.push(
      { kind: 'grpc-error', code: status.RESOURCE_EXHAUSTED, message: 'slow down', retryDelayMs: 500 },
      { kind: 'grpc-error', code: status.RESOURCE_EXHAUSTED, message: 'quota gone' },
      { kind: 'grpc-error', code: status.INVALID_ARGUMENT, message: 'bad record' },
    );
    assert.deepEqual(await e.emit(batch('a', 2)), {
      status: 'retryable',
      error: 'OTLP/gRPC RESOURCE_EXHAUSTED: slow down',
      retryAfterMs: 500,
    });
    assert.deepEqual(await e.emit(batch('b', 2)), { status: 'failed', error: 'OTLP/gRPC RESOURCE_EXHAUSTED: quota gone' });
    assert.deepEqual(await e.emit(batch('c', 2)), { status: 'failed', error: 'OTLP/gRPC INVALID_ARGUMENT: bad record' });
    assert.equal(r.records.length, 0);
  });

  test('a retryable answer mid-batch: later requests are not sent and are retryable too', async () => {
    const r = await receiver('grpc');
    const { e } = emitter({ endpoint: r.address, maxExportRecords: 3 });
    r.script.push({ kind: 'ok' }, { kind: 'grpc-error', code: status.UNAVAILABLE, message: 'down' });
    const events = batch('mid', 8);
    const result = await e.emit(events);
    assert.equal(result.status, 'partial');
    const split = splitBatch(events, result);
    assert.deepEqual(
      split.delivered.map((x) => x.id),
      ['mid-0', 'mid-1', 'mid-2'],
    );
    assert.equal(split.retry.length, 5);
    assert.deepEqual(r.requests, [3, 3], 'the third request was not sent');
  });

  test('HTTP 503 with Retry-After is retryable after it; 400 fails with the body', async () => {
    const r = await receiver('http');
    const { e } = emitter({ protocol: 'http', endpoint: r.address });
    r.script.push({ kind: 'http-status', status: 503, retryAfter: '2' }, { kind: 'http-status', status: 400, body: 'malformed' });
    const events = batch('h', 3);
    const first = await e.emit(events);
    assert.deepEqual(first, { status: 'retryable', error: 'OTLP/HTTP 503: ', retryAfterMs: 2000 });
    assert.deepEqual(await e.emit(batch('x', 1)), { status: 'failed', error: 'OTLP/HTTP 400: malformed' });
    assert.deepEqual(await e.emit(splitBatch(events, first).retry), { status: 'success' });
    assert.deepEqual(uids(r), ['h-0', 'h-1', 'h-2']);
  });

  test('a batch encoding past maxExportBytes goes in halves; an event alone past it fails, not retryable', async () => {
    const r = await receiver('grpc');
    const { e } = emitter({ endpoint: r.address, maxExportBytes: 2_000 });
    const events = Array.from({ length: 8 }, (_, i) => Event.fromPartial({ id: `s-${i}`, payload: Buffer.alloc(400, 97) }));
    events[5] = Event.fromPartial({ id: 's-5', payload: Buffer.alloc(3_000, 97) });
    const result = await e.emit(events);
    assert.equal(result.status, 'partial');
    assert.ok(result.status === 'partial');
    const failures = result.failures;
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.index, 5);
    assert.equal(failures[0]!.retryable, false);
    assert.match(failures[0]!.error, /^the event encodes to \d+ bytes, over maxExportBytes \(2000\)$/);
    assert.deepEqual(uids(r), ['s-0', 's-1', 's-2', 's-3', 's-4', 's-6', 's-7']);
    assert.ok(r.requests.length > 1 && r.requests.every((k) => k <= 4));
  });

  test('no receiver listening: retryable, for both protocols', async () => {
    const g = emitter({ endpoint: '127.0.0.1:1', timeoutMs: 2000 }).e;
    const gr = await g.emit(batch('n', 1));
    assert.equal(gr.status, 'retryable');
    const h = emitter({ protocol: 'http', endpoint: 'http://127.0.0.1:1', timeoutMs: 2000 }).e;
    const hr = await h.emit(batch('n', 1));
    assert.equal(hr.status, 'retryable');
    assert.match((hr as { error: string }).error, /ECONNREFUSED/);
  });

  test('bad options throw naming the option', () => {
    assert.throws(() => new OtlpEmitter({ endpoint: 'nohost' }), /otlp emitter "otlp": endpoint "nohost" is not host:port/);
    assert.throws(
      () => new OtlpEmitter({ protocol: 'http', endpoint: 'ftp://x' }),
      /endpoint "ftp:\/\/x" must start with http:\/\/ or https:\/\//,
    );
    assert.throws(() => new OtlpEmitter({ endpoint: 'h:1', protocol: 'udp' as 'grpc' }), /protocol must be grpc or http, got udp/);
    assert.throws(() => new OtlpEmitter({ endpoint: 'h:1', maxExportRecords: 0 }), /maxExportRecords must be a positive integer/);
  });
});
