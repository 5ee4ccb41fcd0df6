import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Registry } from 'prom-client';
import { fileURLToPath } from 'node:url';
import type { HubBuilder } from '../../src/hub/builder.js';
import type { HubOptions } from '../../src/hub/hub.js';
import { type Hub } from '../../src/hub/hub.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { Gateway, type GatewayOptions } from '../../src/server/gateway.js';

export const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));

/**
 * A client made the way an agent written for upstream POLKU would: from the .proto files alone,
 * through proto-loader, with none of this project's generated code.
 */
export function protoOnlyClient(
  port: number,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): grpc.Client & Record<string, any> {
  const definition = loadSync('polku/v1/gateway.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  return new pkg.polku.v1.Gateway(`127.0.0.1:${port}`, credentials, options);
}

/** Ack as proto-loader decodes it (int64 as strings). */
export interface WireAck {
  event_ids: string[];
  errors: Array<{ event_id: string; code: string; message: string }>;
  buffer_size: string;
  buffer_capacity: string;
  middleware_stats: Record<string, string>;
}

export interface RunningGateway {
  gateway: Gateway;
  hub: Hub;
  registry: Registry;
  grpcPort: number;
  metricsPort: number;
  client: grpc.Client & Record<string, any>;
  stop(): Promise<void>;
}

/**
 * Starts a gateway on loopback (free ports) around `builder`, with a proto-only client.
 * `extra` adds gateway options such as more receivers.
 */
export async function startGateway(
  builder: HubBuilder,
  runtime: Partial<HubOptions> = {},
  shutdownTimeoutMs = 5_000,
  extra: Pick<GatewayOptions, 'receivers'> = {},
): Promise<RunningGateway> {
  const registry = runtime.registry ?? createRegistry();
  const logger = runtime.logger ?? silentLogger();
  const hub = builder.build({ ...runtime, registry, logger });
  const gateway = new Gateway({
    hub,
    registry,
    logger,
    grpcAddr: { host: '127.0.0.1', port: 0 },
    metricsAddr: { host: '127.0.0.1', port: 0 },
    shutdownTimeoutMs,
    ...extra,
  });
  const ports = await gateway.start();
  const client = protoOnlyClient(ports.grpc);
  return {
    gateway,
    hub,
    registry,
    grpcPort: ports.grpc,
    metricsPort: ports.metrics,
    client,
    async stop() {
      client.close();
      await gateway.shutdown('test done');
    },
  };
}

/**
 * A StreamEvents call driven batch by batch: `send` writes one IngestBatch (proto-loader JSON
 * shape) and resolves with its Ack.
 */
export class AckStream {
  private readonly call: grpc.ClientDuplexStream<unknown, WireAck>;
  private readonly waiting: Array<{ resolve: (a: WireAck) => void; reject: (e: Error) => void }> = [];
  readonly acks: WireAck[] = [];
  readonly status: Promise<grpc.StatusObject>;

  constructor(client: grpc.Client & Record<string, any>) {
    this.call = client['StreamEvents']();
    this.call.on('data', (ack: WireAck) => {
      this.acks.push(ack);
      this.waiting.shift()?.resolve(ack);
    });
    this.status = new Promise((resolve) => this.call.on('status', resolve));
    this.call.on('error', (err: Error) => {
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  /** Writes a batch; resolves with the Ack that answers it (Acks come in order). */
  send(batch: Record<string, unknown>): Promise<WireAck> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write(batch);
    });
  }

  end(): Promise<grpc.StatusObject> {
    this.call.end();
    return this.status;
  }
}

/** Events in proto-loader's JSON shape. */
export function events(n: number, make: (i: number) => Record<string, unknown> = (i) => ({ id: `e${i}` })) {
  return Array.from({ length: n }, (_, i) => ({ event_type: 'test.event', payload: Buffer.from(`payload ${i}`), ...make(i) }));
}

/** Resolves once `condition()` holds, checking after each turn of the event loop (no fixed sleeps). */
export async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Reads one sample from the text exposition at /metrics. */
export async function scrape(metricsPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
