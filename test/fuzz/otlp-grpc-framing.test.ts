// The OTLP/gRPC server on node:http2 (src/receive/otlp/otlp-grpc-h2.ts) reads gRPC's unary framing
// from whatever DATA frames a client cuts: any split of a request (the 5-byte prefix included),
// compressed or not, is the same request; any bytes at all get an answer with a grpc-status and
// leave the connection serving.
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { systemClock } from '../../src/clock.js';
import { ExportLogsServiceRequest } from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import { hub as newHub } from '../../src/hub/builder.js';
import type { Hub } from '../../src/hub/hub.js';
import { silentLogger } from '../../src/observability/logger.js';
import { OtlpReceiver } from '../../src/receive/otlp/otlp-receiver.js';
import { InMemoryEmitter } from '../../src/testing/index.js';
import { fuzzRuns } from './runs.js';

const EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

function request(service: string, bodies: string[]): Buffer {
  return Buffer.from(
    ExportLogsServiceRequest.encode({
      resourceLogs: [
        {
          resource: {
            attributes: [{ key: 'service.name', value: { value: { $case: 'stringValue', value: service } } }],
            droppedAttributesCount: 0,
            entityRefs: [],
          },
          scopeLogs: [
            {
              scope: undefined,
              schemaUrl: '',
              logRecords: bodies.map((body) => ({
                timeUnixNano: 1n,
                observedTimeUnixNano: 0n,
                severityNumber: 9,
                severityText: '',
                body: { value: { $case: 'stringValue' as const, value: body } },
                attributes: [],
                droppedAttributesCount: 0,
                flags: 0,
                traceId: new Uint8Array(0),
                spanId: new Uint8Array(0),
                eventName: '',
              })),
            },
          ],
          schemaUrl: '',
        },
      ],
    }).finish(),
  );
}

function framed(message: Buffer, compressed: boolean): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** `bytes` cut at `cuts` (offsets, in any order), each piece written as its own DATA frame. */
function call(
  session: ClientHttp2Session,
  bytes: Buffer,
  cuts: number[],
  headers: Record<string, string> = {},
): Promise<string | undefined> {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', ...headers });
    let status: string | undefined;
    req.on('response', (h) => (status = h['grpc-status'] as string | undefined));
    req.on('trailers', (t) => (status = t['grpc-status'] as string | undefined));
    req.on('error', reject);
    req.resume();
    req.on('close', () => resolve(status));
    let from = 0;
    for (const cut of [...at, bytes.length]) {
      if (cut > from) req.write(bytes.subarray(from, cut));
      from = cut;
    }
    req.end();
  });
}

describe('OTLP/gRPC on node:http2, framing (property)', () => {
  let hub: Hub;
  let memory: InMemoryEmitter;
  let receiver: OtlpReceiver;
  let session: ClientHttp2Session;
  let n = 0;
  before(async () => {
    memory = new InMemoryEmitter({ name: 'memory' });
    hub = newHub().emitter(memory).delivery({ flushIntervalMs: 1 }).build({});
    await hub.start();
    receiver = new OtlpReceiver({ grpcAddr: { host: '127.0.0.1', port: 0 }, grpcServer: 'http2' });
    await receiver.start({ hub, logger: silentLogger(), clock: systemClock, registry: new Registry() });
    // No Nagle: a request cut into small frames would otherwise wait for delayed ACKs.
    const port = receiver.ports.grpc;
    session = connect(`http://127.0.0.1:${port}`, { createConnection: () => netConnect({ port, host: '127.0.0.1', noDelay: true }) });
  });
  after(async () => {
    session.close();
    await receiver.close();
    await hub.drain(1_000);
  });

  test('any split of a request, gzip or not, is that request: status 0 and its records, in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        async (bodies, cuts, gzip) => {
          const service = `fz-${n++}`;
          const message = request(service, bodies);
          const status = await call(
            session,
            framed(gzip ? gzipSync(message) : message, gzip),
            cuts,
            gzip ? { 'grpc-encoding': 'gzip' } : {},
          );
          assert.equal(status, '0');
          const got = (): string[] => memory.events.filter((e) => e.source === service).map((e) => Buffer.from(e.payload).toString());
          await memory.drained(); // what the hub accepted before answering has arrived
          assert.deepEqual(got(), bodies);
        },
      ),
      { numRuns: fuzzRuns(150) },
    );
  });

  test('any bytes get an answer with a grpc-status, and the connection keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat(), { maxLength: 6 }), async (bytes, cuts) => {
        const status = await call(session, Buffer.from(bytes), cuts);
        assert.match(status ?? 'none', /^\d+$/);
      }),
      { numRuns: fuzzRuns(150) },
    );
    assert.equal(await call(session, framed(request('after-garbage', ['ok']), false), []), '0');
  });
});
