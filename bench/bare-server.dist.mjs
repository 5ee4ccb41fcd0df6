// bench/bare-server.ts without a TypeScript loader, for bench/footprint.ts --only compiled: the
// same grpc-js server (StreamEvents only: decode the IngestBatch with the generated codec, Ack its
// event ids), its codec from dist/gen. Prints `READY <port>`; stops on SIGTERM.
import grpc from '@grpc/grpc-js';
import { GatewayService } from '../dist/gen/polku/v1/gateway.js';

const server = new grpc.Server();
server.addService(GatewayService, {
  streamEvents(call) {
    call.on('data', (batch) => {
      const events = batch.payload?.$case === 'events' ? batch.payload.value.events : [];
      call.write({ eventIds: events.map((e) => e.id), errors: [], bufferSize: 0n, bufferCapacity: 0n, middlewareStats: undefined });
    });
    call.on('end', () => call.end());
    call.on('error', () => {});
  },
});
server.bindAsync(process.env.BARE_ADDR ?? '127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`READY ${port}\n`);
});
process.once('SIGTERM', () => server.forceShutdown());
