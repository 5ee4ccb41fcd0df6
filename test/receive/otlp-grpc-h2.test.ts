// OTLP/gRPC served on node:http2 (src/receive/otlp/otlp-grpc-h2.ts, POLKU_OTLP_GRPC_SERVER=http2):
// what grpc-js's server did for the port, from real clients: grpc-js with compression and deadlines,
// raw HTTP/2 streams for what no client library sends, TLS and mTLS, the health check, and shutdown.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { systemClock } from '../../src/clock.js';
import { ExportLogsServiceRequest } from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { LogRecord } from '../../src/gen/opentelemetry/proto/logs/v1/logs.js';
import { hub as newHub } from '../../src/hub/builder.js';
import type { Hub } from '../../src/hub/hub.js';
import { silentLogger } from '../../src/observability/logger.js';
import { timeoutMs } from '../../src/receive/otlp/otlp-grpc-h2.js';
import { OtlpReceiver } from '../../src/receive/otlp/otlp-receiver.js';
import type { OtlpGrpcServerKind } from '../../src/receive/otlp/otlp-settings.js';
import { ListenerTls } from '../../src/security/tls.js';
import { DEFAULT_CONNECTION_LIMITS } from '../../src/server/connection-guard.js';
import { InMemoryEmitter } from '../../src/testing/index.js';
import { opensslMissing, TestCa } from '../helpers/certs.js';
import { until } from '../helpers/gateway-harness.js';

const EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
const MAX_MESSAGE_BYTES = 64 * 1024;

function record(body: string): LogRecord {
  return {
    timeUnixNano: 1n,
    observedTimeUnixNano: 0n,
    severityNumber: 9,
    severityText: '',
    body: { value: { $case: 'stringValue', value: body } },
    attributes: [],
    droppedAttributesCount: 0,
    flags: 0,
    traceId: new Uint8Array(0),
    spanId: new Uint8Array(0),
    eventName: '',
  };
}

function requestBytes(bodies: string[], service = 'h2-test'): Buffer {
  return Buffer.from(
    ExportLogsServiceRequest.encode({
      resourceLogs: [
        {
          resource: {
            attributes: [{ key: 'service.name', value: { value: { $case: 'stringValue', value: service } } }],
            droppedAttributesCount: 0,
            entityRefs: [],
          },
          scopeLogs: [{ scope: undefined, logRecords: bodies.map(record), schemaUrl: '' }],
          schemaUrl: '',
        },
      ],
    }).finish(),
  );
}

/** gRPC's length prefix: the compressed flag and the big-endian length. */
function framed(message: Buffer, compressed = false, announced = message.length): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(announced, 1);
  return Buffer.concat([prefix, message]);
}

interface Running {
  hub: Hub;
  memory: InMemoryEmitter;
  receiver: OtlpReceiver;
  port: number;
}

async function start(
  server: OtlpGrpcServerKind,
  o: { tls?: ListenerTls; overflow?: 'reject' | 'block'; capacity?: number } = {},
): Promise<Running> {
  const memory = new InMemoryEmitter({ name: 'memory' });
  const hub = newHub()
    .emitter(memory)
    .limits({ maxMessageBytes: MAX_MESSAGE_BYTES })
    .buffer({ capacity: o.capacity ?? 10_000, overflow: o.overflow ?? 'reject' })
    .build({});
  await hub.start();
  const receiver = new OtlpReceiver({ grpcAddr: { host: '127.0.0.1', port: 0 }, grpcServer: server, tls: o.tls });
  await receiver.start({ hub, logger: silentLogger(), clock: systemClock, registry: new Registry() });
  return { hub, memory, receiver, port: receiver.ports.grpc };
}

async function stop(r: Running): Promise<void> {
  await r.receiver.close();
  await r.hub.drain(1_000);
}

/** One Export through grpc-js's client: raw bytes out, the status and response bytes back. */
function exportCall(
  port: number,
  body: Buffer,
  o: { options?: grpc.ChannelOptions; deadlineMs?: number; creds?: grpc.ChannelCredentials } = {},
): Promise<{ error: grpc.ServiceError | null; response: Buffer | undefined }> {
  const client = new grpc.Client(`127.0.0.1:${port}`, o.creds ?? grpc.credentials.createInsecure(), o.options ?? {});
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      EXPORT,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      new grpc.Metadata(),
      o.deadlineMs === undefined ? {} : { deadline: Date.now() + o.deadlineMs },
      (error, response) => {
        client.close();
        resolve({ error, response });
      },
    );
  });
}

interface RawAnswer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
  /** The status wherever it came (Trailers-Only: in the headers). */
  status: string | undefined;
  message: string | undefined;
}

/** One raw HTTP/2 request: every chunk of `chunks` its own DATA frame, END_STREAM after the last. */
function rawCall(session: ClientHttp2Session, headers: Record<string, string>, chunks: Buffer[]): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let answerHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const body: Buffer[] = [];
    req.on('response', (h) => (answerHeaders = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => body.push(c));
    req.on('error', reject);
    req.on('close', () => {
      const pick = (k: string): string | undefined => (trailers[k] ?? answerHeaders[k]) as string | undefined;
      resolve({ headers: answerHeaders, trailers, body: Buffer.concat(body), status: pick('grpc-status'), message: pick('grpc-message') });
    });
    for (const c of chunks) req.write(c);
    req.end();
  });
}

for (const server of ['http2', 'grpc-js'] as const) {
  describe(`OTLP/gRPC on ${server}: what both servers answer alike`, () => {
    let r: Running;
    before(async () => (r = await start(server)));
    after(() => stop(r));

    test('a gzip-compressed Export (grpc-js client, grpc.default_compression_algorithm) is inflated and every record taken', async () => {
      const before = r.memory.count;
      const bodies = Array.from({ length: 50 }, (_, i) => `gzip ${i} ${'x'.repeat(100)}`);
      const { error, response } = await exportCall(r.port, requestBytes(bodies, `gz-${server}`), {
        options: { 'grpc.default_compression_algorithm': 2 },
      });
      assert.equal(error, null);
      assert.equal(response!.length, 0, 'no partial_success: everything taken');
      await r.memory.waitForCount(before + 50);
      const got = r.memory.events.filter((e) => e.source === `gz-${server}`).map((e) => Buffer.from(e.payload).toString());
      assert.deepEqual(got, bodies);
    });

    test('a message over POLKU_MAX_MESSAGE_BYTES: INVALID_ARGUMENT naming the size and the limit; the next call is served', async () => {
      const big = requestBytes([`big ${'y'.repeat(MAX_MESSAGE_BYTES)}`]);
      const { error } = await exportCall(r.port, big);
      assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(
        error!.details,
        new RegExp(`BATCH_TOO_LARGE: message is ${big.length} bytes, limit ${MAX_MESSAGE_BYTES} \\(POLKU_MAX_MESSAGE_BYTES\\)`),
      );
      const next = await exportCall(r.port, requestBytes(['after the big one']));
      assert.equal(next.error, null);
    });

    test('grpc.health.v1.Health/Check: the server SERVING; an unknown service NOT_FOUND', async () => {
      const client = new grpc.Client(`127.0.0.1:${r.port}`, grpc.credentials.createInsecure());
      const check = (service: string) =>
        new Promise<{ error: grpc.ServiceError | null; response: Buffer | undefined }>((resolve) =>
          client.makeUnaryRequest(
            '/grpc.health.v1.Health/Check',
            (s: string) => (s === '' ? Buffer.alloc(0) : Buffer.concat([Buffer.from([10, s.length]), Buffer.from(s)])),
            (b: Buffer) => b,
            service,
            new grpc.Metadata(),
            {},
            (error, response) => resolve({ error, response }),
          ),
        );
      const whole = await check('');
      assert.equal(whole.error, null);
      assert.deepEqual([...whole.response!], [8, 1], 'status SERVING');
      const unknown = await check('no.such.Service');
      assert.equal(unknown.error?.code, grpc.status.NOT_FOUND);
      client.close();
    });
  });
}

describe('OTLP/gRPC on node:http2: framing no client library sends', () => {
  let r: Running;
  let session: ClientHttp2Session;
  before(async () => {
    r = await start('http2');
    session = connect(`http://127.0.0.1:${r.port}`);
  });
  after(async () => {
    session.close();
    await stop(r);
  });

  test('a message split across many DATA frames, the prefix itself split, is read whole', async () => {
    const message = framed(requestBytes(['split one', 'split two'], 'split'));
    const chunks = [message.subarray(0, 2), message.subarray(2, 4), message.subarray(4, 7)];
    for (let at = 7; at < message.length; at += 13) chunks.push(message.subarray(at, Math.min(message.length, at + 13)));
    const answer = await rawCall(session, {}, chunks);
    assert.equal(answer.status, '0');
    assert.equal(answer.headers['content-type'], 'application/grpc');
    assert.deepEqual([...answer.body], [0, 0, 0, 0, 0], 'one empty ExportLogsServiceResponse');
    await r.memory.waitForCount(2);
    assert.deepEqual(
      r.memory.events.filter((e) => e.source === 'split').map((e) => Buffer.from(e.payload).toString()),
      ['split one', 'split two'],
    );
  });

  test('no message, two messages, a truncated message, a bad flag: INTERNAL, each saying which; nothing taken', async () => {
    const taken = r.memory.count;
    const one = framed(requestBytes(['never taken'], 'malformed'));
    const none = await rawCall(session, {}, []);
    assert.equal(none.status, '13');
    assert.equal(none.message, 'a unary call carries one message; the request had none');
    const two = await rawCall(session, {}, [one, one]);
    assert.equal(two.status, '13');
    assert.equal(two.message, 'a unary call carries one message; the request had more');
    const truncated = await rawCall(session, {}, [one.subarray(0, one.length - 3)]);
    assert.equal(truncated.status, '13');
    assert.equal(truncated.message, `the request ended inside its message: ${one.length - 8} of ${one.length - 5} bytes`);
    const flag = Buffer.from(one);
    flag[0] = 7;
    const badFlag = await rawCall(session, {}, [flag]);
    assert.equal(badFlag.status, '13');
    assert.equal(badFlag.message, 'message prefix has compressed flag 7');
    assert.equal(r.memory.count, taken);
    assert.equal(r.memory.events.filter((e) => e.source === 'malformed').length, 0);
  });

  test('compression: an unknown grpc-encoding is UNIMPLEMENTED; a flagged message without one INTERNAL; corrupt gzip INTERNAL; a gzip bomb is refused at the limit', async () => {
    const gz = gzipSync(requestBytes(['compressed']));
    const snappy = await rawCall(session, { 'grpc-encoding': 'snappy' }, [framed(gz, true)]);
    assert.equal(snappy.status, '12');
    assert.equal(snappy.message, 'grpc-encoding snappy is not supported (identity,deflate,gzip)');
    const unnamed = await rawCall(session, {}, [framed(gz, true)]);
    assert.equal(unnamed.status, '13');
    assert.equal(unnamed.message, 'message is flagged compressed but grpc-encoding names no compression');
    const corrupt = await rawCall(session, { 'grpc-encoding': 'gzip' }, [framed(Buffer.from('not gzip at all'), true)]);
    assert.equal(corrupt.status, '13');
    assert.match(corrupt.message ?? '', /^the message did not inflate \(gzip\): /);
    // 1 MiB of zeros inflates far past the 64 KiB limit from a ~1 KiB message.
    const bomb = gzipSync(Buffer.alloc(1024 * 1024));
    assert.ok(bomb.length < MAX_MESSAGE_BYTES);
    const refused = await rawCall(session, { 'grpc-encoding': 'gzip' }, [framed(bomb, true)]);
    assert.equal(refused.status, '3', 'INVALID_ARGUMENT');
    assert.equal(
      decodeURIComponent(refused.message ?? ''),
      `BATCH_TOO_LARGE: message is ${MAX_MESSAGE_BYTES + 1} bytes, limit ${MAX_MESSAGE_BYTES} (POLKU_MAX_MESSAGE_BYTES)`,
    );
  });

  test('an over-large message is refused from its prefix while it is still being sent; the session stays usable', async () => {
    const req = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
    const headers = new Promise<IncomingHttpHeaders>((resolve) => req.on('response', resolve));
    const closed = new Promise<number>((resolve) => req.on('close', () => resolve(req.rstCode ?? -1)));
    req.on('error', () => undefined);
    // Announce 10 MiB, send only the prefix and 1 KiB, and never end the request.
    req.write(framed(Buffer.alloc(1024), false, 10 * 1024 * 1024));
    const h = await headers;
    assert.equal(h['grpc-status'], '3');
    assert.match(decodeURIComponent(String(h['grpc-message'])), /BATCH_TOO_LARGE: message is 10485760 bytes, limit 65536/);
    assert.equal(await closed, 0, 'RST_STREAM NO_ERROR: stop sending');
    const next = await rawCall(session, {}, [framed(requestBytes(['after the refusal']))]);
    assert.equal(next.status, '0');
  });

  test('not gRPC: 415 for another content-type, 405 for GET; another method UNIMPLEMENTED', async () => {
    const status = (headers: Record<string, string>) =>
      new Promise<IncomingHttpHeaders>((resolve, reject) => {
        const req = session.request({ ':path': EXPORT, ...headers });
        req.on('response', resolve);
        req.on('error', reject);
        req.resume();
        req.end();
      });
    assert.equal((await status({ ':method': 'POST', 'content-type': 'application/json' }))[':status'], 415);
    assert.equal((await status({ ':method': 'GET', 'content-type': 'application/grpc' }))[':status'], 405);
    const other = await status({ ':method': 'POST', 'content-type': 'application/grpc', ':path': '/polku.v1.Gateway/SendEvent' });
    assert.equal(other['grpc-status'], '12');
  });

  test('grpc-timeout parses as the gRPC spec writes it; a malformed one is refused', async () => {
    assert.equal(timeoutMs('250m'), 250);
    assert.equal(timeoutMs('3S'), 3_000);
    assert.equal(timeoutMs('2M'), 120_000);
    assert.equal(timeoutMs('1H'), 3_600_000);
    assert.equal(timeoutMs('5000u'), 5);
    assert.equal(timeoutMs('123456789m'), undefined, 'at most 8 digits');
    assert.equal(timeoutMs('10s'), undefined, 'units are case-sensitive');
    const bad = await rawCall(session, { 'grpc-timeout': 'soon' }, [framed(requestBytes(['late']))]);
    assert.equal(bad.status, '13');
    assert.equal(bad.message, 'grpc-timeout soon is not a gRPC timeout');
  });
});

describe('OTLP/gRPC on node:http2: deadlines and shutdown with an Export waiting for room', () => {
  test('an Export blocked on a full buffer ends DEADLINE_EXCEEDED at its grpc-timeout; shutdown waits for open calls, then refuses new ones', async () => {
    // The emitter never finishes: capacity 2 fills with the first request, the second waits (block).
    const memory = new InMemoryEmitter({ name: 'memory' });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    memory.emit = async function (this: InMemoryEmitter, events) {
      await held;
      return InMemoryEmitter.prototype.emit.call(this, events);
    };
    const registry = new Registry();
    const hub = newHub().emitter(memory).buffer({ capacity: 2, overflow: 'block' }).build({ registry });
    const blockedWriters = async (): Promise<number> =>
      (await registry.getSingleMetric('polku_buffer_blocked_writers')!.get()).values[0]?.value ?? 0;
    await hub.start();
    const receiver = new OtlpReceiver({ grpcAddr: { host: '127.0.0.1', port: 0 } });
    await receiver.start({ hub, logger: silentLogger(), clock: systemClock, registry: new Registry() });
    const session = connect(`http://127.0.0.1:${receiver.ports.grpc}`);
    try {
      const first = await rawCall(session, {}, [framed(requestBytes(['a', 'b']))]);
      assert.equal(first.status, '0');
      const started = Date.now();
      const late = await rawCall(session, { 'grpc-timeout': '300m' }, [framed(requestBytes(['c']))]);
      assert.equal(late.status, '4');
      assert.equal(late.message, 'Deadline exceeded');
      assert.ok(Date.now() - started >= 290, 'not before its deadline');
      // A waiting call is let finish by shutdown: release the emitter while close() waits.
      const waiting = rawCall(session, {}, [framed(requestBytes(['d']))]);
      // The timed-out Export still waits for room (its records go in when there is: at least once), and this one too.
      await until(async () => (await blockedWriters()) === 2, 'the second Export waiting for room');
      const closing = receiver.close();
      release();
      assert.equal((await waiting).status, '0');
      await closing;
      await assert.rejects(exportCall(receiver.ports.grpc, requestBytes(['refused'])).then((a) => (a.error ? Promise.reject(a.error) : a)));
    } finally {
      release();
      session.destroy();
      await receiver.close();
      await hub.drain(1_000);
    }
  });
});

describe('OTLP/gRPC on node:http2: idle connections', () => {
  test('a connection idle for the idle timeout gets a GOAWAY after its last call', async () => {
    const hub = newHub()
      .emitter(new InMemoryEmitter({ name: 'memory' }))
      .build({});
    await hub.start();
    const connections = { ...DEFAULT_CONNECTION_LIMITS, idleTimeoutMs: 300 };
    const receiver = new OtlpReceiver({ grpcAddr: { host: '127.0.0.1', port: 0 }, connections });
    await receiver.start({ hub, logger: silentLogger(), clock: systemClock, registry: new Registry() });
    const session = connect(`http://127.0.0.1:${receiver.ports.grpc}`);
    try {
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      const answer = await rawCall(session, {}, [framed(requestBytes(['before idling']))]);
      assert.equal(answer.status, '0');
      const lastCallAt = Date.now();
      assert.equal(await goaway, 0, 'GOAWAY NO_ERROR');
      assert.ok(Date.now() - lastCallAt >= 250, 'not before the idle timeout');
    } finally {
      session.destroy();
      await receiver.close();
      await hub.drain(1_000);
    }
  });
});

const skip = opensslMissing();
describe('OTLP/gRPC on node:http2 over TLS', { skip }, () => {
  test('mTLS: a client with a certificate is served; one without is refused', async () => {
    const ca = new TestCa();
    const server = ca.server();
    const client = ca.client();
    const tls = new ListenerTls({ certFile: server.cert, keyFile: server.key, clientCaFile: ca.caCert, reloadIntervalMs: 60_000 });
    const r = await start('http2', { tls });
    try {
      const mtls = grpc.credentials.createSsl(readFileSync(ca.caCert), readFileSync(client.key), readFileSync(client.cert));
      const ok = await exportCall(r.port, requestBytes(['over tls'], 'tls'), { creds: mtls });
      assert.equal(ok.error, null);
      await r.memory.waitForCount(1);
      assert.equal(Buffer.from(r.memory.events.find((e) => e.source === 'tls')!.payload).toString(), 'over tls');
      const noCert = await exportCall(r.port, requestBytes(['refused']), { creds: grpc.credentials.createSsl(readFileSync(ca.caCert)) });
      assert.equal(noCert.error?.code, grpc.status.UNAVAILABLE);
      const plain = await exportCall(r.port, requestBytes(['refused']));
      assert.equal(plain.error?.code, grpc.status.UNAVAILABLE);
    } finally {
      await stop(r);
    }
  });
});
