/**
 * The benchmark's baseline: a grpc-js server that serves only
 * polku.v1.Gateway/StreamEvents and does the minimum any gateway must do per
 * batch: decode the IngestBatch (the generated requestDeserialize does that)
 * and answer an Ack listing the batch's event ids. No pipeline, no buffer, no
 * emitters: its throughput is Node + grpc-js's ceiling for this traffic on
 * this machine, and the gateway is measured against it.
 *
 *   node --import tsx bench/bare-server.ts [--addr 127.0.0.1:0]   (or BARE_ADDR)
 *
 * Prints `READY <port>` on stdout once bound; stops cleanly on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import {
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { type Ack, GatewayService, type IngestBatch } from '../src/gen/polku/v1/gateway.js';

const SHUTDOWN_GRACE_MS = 5_000;

function ackFor(batch: IngestBatch): Ack {
  const events = batch.payload?.$case === 'events' ? batch.payload.value.events : [];
  return {
    eventIds: events.map((e) => e.id),
    errors: [],
    bufferSize: 0n,
    bufferCapacity: 0n,
    middlewareStats: undefined,
  };
}

function streamEvents(call: ServerDuplexStream<IngestBatch, Ack>): void {
  call.on('data', (batch: IngestBatch) => call.write(ackFor(batch)));
  call.on('end', () => call.end());
  // A client that goes away mid-stream is not an error for a benchmark baseline.
  call.on('error', () => {});
}

function bind(server: Server, addr: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function shutdownOn(server: Server): void {
  const stop = (): void => {
    // Give open streams a moment to finish, then cut them.
    const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS).unref();
    server.tryShutdown(() => clearTimeout(force));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { addr: { type: 'string', default: process.env['BARE_ADDR'] ?? '127.0.0.1:0' } },
    strict: true,
  });
  const server = new Server();
  // Only StreamEvents is implemented; grpc-js answers the other methods with UNIMPLEMENTED.
  const implementation: UntypedServiceImplementation = { streamEvents };
  server.addService(GatewayService as unknown as ServiceDefinition, implementation);
  const port = await bind(server, values.addr);
  shutdownOn(server);
  process.stdout.write(`READY ${port}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bare-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
