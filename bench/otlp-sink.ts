// An OTLP logs receiver for `npm run bench:otlp`: answers every Export with an empty
// ExportLogsServiceResponse and counts requests and bytes, decoding nothing, so the figure is the
// emitter's cost (encode + send), not a destination's. Prints `READY <grpcPort> <httpPort>`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';

let requests = 0;
let bytes = 0;
const EMPTY = Buffer.alloc(0);
const server = new Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
server.addService(
  {
    Export: {
      path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  {
    Export: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      requests++;
      bytes += call.request.length;
      callback(null, EMPTY);
    },
  },
);
const grpcPort = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
const httpServer = http.createServer((req, res) => {
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    requests++;
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf', 'Content-Length': '0' }).end();
  });
});
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
console.log(`READY ${grpcPort} ${(httpServer.address() as AddressInfo).port}`);
process.on('SIGTERM', () => {
  console.log(`RECEIVED ${requests} requests, ${bytes} bytes`);
  process.exit(0);
});
