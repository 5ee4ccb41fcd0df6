// Server reflection over real gRPC on loopback, asked the way grpcurl asks (both protocol versions):
// what list_services names, what each lookup answers (the file and its transitive imports, bytes as
// buf wrote them), and that an unknown name is a NOT_FOUND answer on a stream that stays open.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ServerReflectionRequest, ServerReflectionResponse } from '../../src/gen/grpc/reflection/v1/reflection.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { PROTO_DIR } from '../../src/proto-dir.js';
import { GrpcServer } from '../../src/server/grpc-server.js';
import { answer } from '../../src/server/reflection.js';
import { builtInDescriptorSet, DescriptorIndex, splitFileDescriptorSet } from '../../src/server/reflection-index.js';
import type { GrpcServiceBinding } from '../../src/receive/receiver.js';
import { grpcFrame } from '../helpers/raw-grpc.js';
import { echoDescriptorSet, ECHO_PROTO } from '../receive/test-receiver.js';

const VERSIONS = ['v1', 'v1alpha'] as const;

/** One ServerReflectionInfo stream: `ask` writes a request and resolves with its response. */
class ReflectionStream {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, any>;
  private readonly waiting: Array<(r: any) => void> = [];

  constructor(port: number, version: (typeof VERSIONS)[number]) {
    const proto = join(PROTO_DIR, `grpc/reflection/${version}/reflection.proto`);
    const pkg = grpc.loadPackageDefinition(loadSync(proto, { keepCase: true, oneofs: true })) as any;
    this.client = new pkg.grpc.reflection[version].ServerReflection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    this.call = (this.client as any).ServerReflectionInfo();
    this.call.on('data', (r: unknown) => this.waiting.shift()?.(r));
    this.call.on('error', () => undefined);
  }

  ask(request: object): Promise<any> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.call.write(request);
    });
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

const names = (files: Buffer[]): string[] => files.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);

describe('server reflection', () => {
  const logged = new PassThrough();
  const lines: string[] = [];
  logged.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  const echoPkg = grpc.loadPackageDefinition(loadSync(ECHO_PROTO, { keepCase: true })) as any;
  const echo: GrpcServiceBinding = {
    definition: echoPkg.polku.test.echo.Echo.service,
    implementation: { Say: () => undefined },
    protoFiles: [ECHO_PROTO],
    descriptorSet: echoDescriptorSet(),
  };
  // The same service under another name, with no descriptor anywhere: served, not reflected.
  const hidden: GrpcServiceBinding = {
    definition: { Say: { ...echoPkg.polku.test.echo.Echo.service.Say, path: '/polku.test.hidden.Hidden/Say' } },
    implementation: { Say: () => undefined },
    protoFiles: ['/nowhere/hidden.proto'],
  };
  let server: GrpcServer;
  let port: number;

  before(async () => {
    server = new GrpcServer({
      services: [echo, hidden],
      maxMessageBytes: 1024 * 1024,
      registry: createRegistry(),
      logger: createLogger('warn', logged),
    });
    port = await server.listen('127.0.0.1:0');
  });
  after(() => server.shutdown(1_000));

  for (const version of VERSIONS) {
    describe(`grpc.reflection.${version}`, () => {
      let stream: ReflectionStream;
      before(() => (stream = new ReflectionStream(port, version)));
      after(() => stream.close());

      test('list_services: exactly the served services it can describe, grpc.health.v1.Health and both reflection services', async () => {
        const r = await stream.ask({ list_services: '' });
        assert.deepEqual(
          r.list_services_response.service.map((s: { name: string }) => s.name),
          [
            'grpc.health.v1.Health',
            'grpc.reflection.v1.ServerReflection',
            'grpc.reflection.v1alpha.ServerReflection',
            'polku.test.echo.Echo',
          ],
        );
      });

      test('file_containing_symbol: the file first, then its imports, bytes exactly as buf built them', async () => {
        const built = new Map(
          splitFileDescriptorSet(builtInDescriptorSet()).map((b) => [fromBinary(FileDescriptorProtoSchema, b).name, Buffer.from(b)]),
        );
        for (const [symbol, files] of [
          ['polku.v1.Gateway', ['polku/v1/gateway.proto', 'polku/v1/event.proto']],
          ['polku.v1.Gateway.SendEvent', ['polku/v1/gateway.proto', 'polku/v1/event.proto']],
          ['polku.v1.HealthResponse.ComponentsEntry', ['polku/v1/gateway.proto', 'polku/v1/event.proto']],
          ['polku.event.v1.Event.MetadataEntry', ['polku/v1/event.proto']],
          ['polku.event.v1.Event.metadata', ['polku/v1/event.proto']],
          ['polku.event.v1.Severity', ['polku/v1/event.proto']],
          ['polku.event.v1.SEVERITY_ERROR', ['polku/v1/event.proto']],
          ['polku.v1.PluginRegistry', ['polku/v1/plugin.proto', 'google/protobuf/empty.proto', 'polku/v1/event.proto']],
          ['grpc.health.v1.Health', ['grpc/health/v1/health.proto']],
          [`grpc.reflection.${version}.ServerReflection`, [`grpc/reflection/${version}/reflection.proto`]],
        ] as const) {
          const r = await stream.ask({ file_containing_symbol: symbol });
          const got: Buffer[] = r.file_descriptor_response?.file_descriptor_proto ?? [];
          assert.deepEqual(names(got), files, symbol);
          for (const b of got) assert.ok(b.equals(built.get(names([b])[0]!)!), `${symbol}: bytes of ${names([b])[0]}`);
        }
      });

      test("a receiver's own descriptor set is served for its service", async () => {
        const r = await stream.ask({ file_containing_symbol: 'polku.test.echo.SayRequest' });
        const got: Buffer[] = r.file_descriptor_response.file_descriptor_proto;
        assert.deepEqual(names(got), ['echo.proto']);
        assert.ok(got[0]!.equals(Buffer.from(splitFileDescriptorSet(echoDescriptorSet())[0]!)));
      });

      test('file_by_filename: a file and its transitive imports', async () => {
        const r = await stream.ask({ file_by_filename: 'ahti/v1/events.proto' });
        assert.deepEqual(names(r.file_descriptor_response.file_descriptor_proto), [
          'ahti/v1/events.proto',
          'google/protobuf/duration.proto',
          'google/protobuf/timestamp.proto',
        ]);
      });

      test('unknown names are NOT_FOUND error_responses, and the stream goes on answering', async () => {
        const asked = [
          { file_containing_symbol: 'polku.v1.NoSuchThing' },
          { file_containing_symbol: 'polku.test.hidden.Hidden' },
          { file_by_filename: 'polku/v1/nope.proto' },
          { file_containing_extension: { containing_type: 'polku.event.v1.Event', extension_number: 100 } },
          { all_extension_numbers_of_type: 'polku.v1.NoSuchMessage' },
        ];
        for (const request of asked) {
          const r = await stream.ask(request);
          assert.equal(r.message_response, 'error_response', JSON.stringify(request));
          assert.equal(r.error_response.error_code, grpc.status.NOT_FOUND, JSON.stringify(request));
          assert.deepEqual(r.original_request[r.original_request.message_request], Object.values(request)[0]);
        }
        const known = await stream.ask({ all_extension_numbers_of_type: 'polku.event.v1.Event' });
        assert.equal(known.message_response, 'all_extension_numbers_response');
        assert.equal(known.all_extension_numbers_response.base_type_name, 'polku.event.v1.Event');
        assert.deepEqual(known.all_extension_numbers_response.extension_number ?? [], []);
        const again = await stream.ask({ list_services: '*' });
        assert.equal(again.list_services_response.service.length, 4);
      });
    });
  }

  test('a burst of requests read late is answered in full and in order (the server holds back, nothing is lost)', async () => {
    // A raw HTTP/2 client that reads nothing until it has queued every request: the answers
    // (~11 KB each, 33 MB in all) overrun its 64 KB stream window at once, so the server's writes
    // back up and it stops reading requests until the client drains them (the memory bound).
    const n = 3_000;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.pause();
      for (let i = 0; i < n; i++) {
        const request = ServerReflectionRequest.encode({
          host: String(i),
          messageRequest: { $case: 'fileContainingSymbol', value: 'polku.v1.PluginRegistry' },
        });
        stream.write(grpcFrame(request.finish()));
      }
      stream.end();
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const hosts: string[] = [];
      let files = 0;
      for (let at = 0; at < body.length;) {
        const length = body.readUInt32BE(at + 1);
        const response = ServerReflectionResponse.decode(body.subarray(at + 5, at + 5 + length));
        hosts.push(response.validHost);
        if (response.messageResponse?.$case === 'fileDescriptorResponse')
          files += response.messageResponse.value.fileDescriptorProto.length;
        at += 5 + length;
      }
      assert.equal(hosts.length, n);
      assert.ok(
        hosts.every((h, i) => h === String(i)),
        'answers in request order',
      );
      assert.equal(files, 3 * n);
    } finally {
      session.close();
    }
  });

  test('a served service with no descriptor is logged once, by name', () => {
    const warnings = lines.filter((l) => l.includes('server reflection: no descriptor'));
    assert.equal(warnings.length, 1, lines.join('\n'));
    assert.match(warnings[0]!, /polku\.test\.hidden\.Hidden/);
  });
});

describe('DescriptorIndex: extensions (none in proto/, so a proto2 set built here)', () => {
  const ext = (name: string, number: number) => ({
    name,
    number,
    label: FieldDescriptorProto_Label.OPTIONAL,
    type: FieldDescriptorProto_Type.STRING,
    extendee: '.polku.test.ext.Base',
  });
  const base = create(FileDescriptorProtoSchema, {
    name: 'ext/base.proto',
    package: 'polku.test.ext',
    syntax: 'proto2',
    messageType: [{ name: 'Base', extensionRange: [{ start: 100, end: 200 }] }],
    extension: [ext('note', 100)],
  });
  const more = create(FileDescriptorProtoSchema, {
    name: 'ext/more.proto',
    package: 'polku.test.ext',
    syntax: 'proto2',
    dependency: ['ext/base.proto'],
    messageType: [{ name: 'Holder', extension: [ext('tag', 150)] }],
  });
  const index = new DescriptorIndex();
  index.addSet(toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [base, more] })));
  const ask = (request: Parameters<typeof answer>[2]['messageRequest']) => answer(index, [], { host: '', messageRequest: request });
  const fileNames = (r: ReturnType<typeof ask>) =>
    r?.$case === 'fileDescriptorResponse' ? r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name) : r;

  test('all_extension_numbers_of_type lists every extension of the type, from every file, sorted', () => {
    assert.deepEqual(ask({ $case: 'allExtensionNumbersOfType', value: 'polku.test.ext.Base' }), {
      $case: 'allExtensionNumbersResponse',
      value: { baseTypeName: 'polku.test.ext.Base', extensionNumber: [100, 150] },
    });
  });

  test('file_containing_extension answers the declaring file with its imports; an unknown number is NOT_FOUND', () => {
    const of = (extensionNumber: number) =>
      ask({ $case: 'fileContainingExtension', value: { containingType: 'polku.test.ext.Base', extensionNumber } });
    assert.deepEqual(fileNames(of(100)), ['ext/base.proto']);
    assert.deepEqual(fileNames(of(150)), ['ext/more.proto', 'ext/base.proto']);
    assert.deepEqual(of(101), {
      $case: 'errorResponse',
      value: { errorCode: grpc.status.NOT_FOUND, errorMessage: 'extension not found: polku.test.ext.Base field 101' },
    });
  });

  test('extensions are symbols too, scoped where they are declared', () => {
    assert.deepEqual(fileNames(ask({ $case: 'fileContainingSymbol', value: 'polku.test.ext.Holder.tag' })), [
      'ext/more.proto',
      'ext/base.proto',
    ]);
    assert.deepEqual(fileNames(ask({ $case: 'fileContainingSymbol', value: 'polku.test.ext.note' })), ['ext/base.proto']);
  });

  test('a request with no message_request is INVALID_ARGUMENT', () => {
    assert.deepEqual(ask(undefined), {
      $case: 'errorResponse',
      value: { errorCode: grpc.status.INVALID_ARGUMENT, errorMessage: 'the request names no message_request' },
    });
  });
});
