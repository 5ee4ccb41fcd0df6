/**
 * What one OTLP/gRPC unary Export call costs a server in transport alone, grpc-js against a bare
 * `node:http2` handler (docs/benchmarks.md, "OTLP/gRPC ingest"). Each server reads the request,
 * decodes nothing and answers an empty ExportLogsServiceResponse with grpc-status 0.
 *
 *   node --import tsx bench/otlp-unary-transport.ts --server grpc-js|http2 --port N
 *
 * prints `READY <port>`; load it with bench/otlp-loadgen.ts and read its CPU time over the window
 * (bench/otlp-transport.sh does both, alternately).
 */
import { createServer, constants as h2 } from 'node:http2';
import { parseArgs } from 'node:util';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';

const EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
const EMPTY = Buffer.alloc(0);
/** An empty gRPC message: uncompressed flag, length 0. */
const EMPTY_FRAME = Buffer.alloc(5);

const { values } = parseArgs({ options: { server: { type: 'string' }, port: { type: 'string', default: '0' } }, strict: true });
let bytesSeen = 0;

if (values.server === 'grpc-js') {
  const server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  const definition = {
    export: {
      path: EXPORT,
      requestStream: false,
      responseStream: false,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
    },
  } as unknown as ServiceDefinition;
  server.addService(definition, {
    export: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
      bytesSeen += call.request.length;
      cb(null, EMPTY);
    },
  });
  server.bindAsync(`127.0.0.1:${values.port}`, ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.stdout.write(`READY ${port}\n`);
  });
} else if (values.server === 'http2') {
  const server = createServer({ settings: { maxFrameSize: 16384 } });
  server.on('stream', (stream, headers) => {
    if (headers[h2.HTTP2_HEADER_PATH] !== EXPORT) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
      return;
    }
    stream.on('data', (chunk: Buffer) => void (bytesSeen += chunk.length));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(EMPTY_FRAME);
    });
  });
  server.listen(Number(values.port), '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`READY ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
} else throw new Error('--server must be grpc-js or http2');

process.on('SIGINT', () => {
  process.stderr.write(`bytes seen: ${bytesSeen}\n`);
  process.exit(0);
});
