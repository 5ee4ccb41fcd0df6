import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { systemClock } from '../../src/clock.js';
import { ExportLogsServiceRequest } from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import { hub as newHub } from '../../src/hub/builder.js';
import type { Hub } from '../../src/hub/hub.js';
import { silentLogger } from '../../src/observability/logger.js';
import { OtlpReceiver } from '../../src/receive/otlp/otlp-receiver.js';
import { InMemoryEmitter } from '../../src/testing/index.js';

const str = (value: string) => ({ value: { $case: 'stringValue' as const, value } });
const body = ExportLogsServiceRequest.encode({
  resourceLogs: [
    {
      resource: undefined,
      scopeLogs: [
        {
          scope: undefined,
          schemaUrl: '',
          logRecords: [
            {
              timeUnixNano: 1n,
              observedTimeUnixNano: 0n,
              severityNumber: 9,
              severityText: '',
              body: str('late'),
              attributes: [],
              droppedAttributesCount: 0,
              flags: 0,
              traceId: new Uint8Array(0),
              spanId: new Uint8Array(0),
              eventName: '',
            },
          ],
        },
      ],
      schemaUrl: '',
    },
  ],
}).finish();

/** The RetryInfo delay (seconds) in a google.rpc.Status, or undefined without one. */
function retrySeconds(status: Buffer): number | undefined {
  const r = new BinaryReader(status);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag !== 26) {
      r.skip(tag & 7);
      continue;
    }
    const any = new BinaryReader(r.bytes());
    any.uint32();
    assert.equal(any.string(), 'type.googleapis.com/google.rpc.RetryInfo');
    any.uint32();
    const info = new BinaryReader(any.bytes());
    info.uint32();
    const duration = new BinaryReader(info.bytes());
    duration.uint32();
    return Number(duration.int64());
  }
  return undefined;
}

describe('OTLP while the gateway shuts down: retryable answers on both transports', () => {
  let hub: Hub;
  let receiver: OtlpReceiver;
  before(async () => {
    hub = newHub()
      .emitter(new InMemoryEmitter({ name: 'memory' }))
      .build({});
    await hub.start();
    receiver = new OtlpReceiver({ grpcAddr: { host: '127.0.0.1', port: 0 }, httpAddr: { host: '127.0.0.1', port: 0 } });
    await receiver.start({ hub, logger: silentLogger(), clock: systemClock, registry: new Registry() });
    await hub.drain(1_000); // intake is closed from here on: the hub answers SHUTTING_DOWN
  });
  after(() => receiver.close());

  test('OTLP/HTTP: 503 with Retry-After: 1 and a google.rpc.Status naming SHUTTING_DOWN', async () => {
    const res = await fetch(`http://127.0.0.1:${receiver.ports.http}/v1/logs`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-protobuf' },
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    const status = Buffer.from(await res.arrayBuffer());
    assert.match(status.toString('latin1'), /SHUTTING_DOWN: gateway is shutting down/);
    assert.equal(retrySeconds(status), 1);
  });

  test('OTLP/gRPC: UNAVAILABLE with RetryInfo in grpc-status-details-bin', async () => {
    const client = new Client(`127.0.0.1:${receiver.ports.grpc}`, credentials.createInsecure());
    const err = await new Promise<ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => b,
        body,
        new Metadata(),
        {},
        (e) => resolve(e),
      ),
    );
    client.close();
    assert.equal(err?.code, 14);
    assert.match(err!.details, /SHUTTING_DOWN/);
    assert.equal(retrySeconds(err!.metadata.get('grpc-status-details-bin')[0] as Buffer), 1);
  });
});
