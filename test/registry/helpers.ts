// An in-process gateway with a live plugin table on fake time, a PluginRegistry client as a plugin
// would use it, and in-process plugins (the SDK's serveEmitter/serveIngestor) to register.
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { Writable } from 'node:stream';
import { createServer, type Server } from 'node:net';
import type { Registry } from 'prom-client';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { PluginRegistryClient, PluginType, type PluginInfo, type RegisterResponse } from '../../src/gen/polku/v1/plugin.js';
import { hub, type HubBuilder } from '../../src/hub/builder.js';
import type { Hub } from '../../src/hub/hub.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { serveEmitter, serveIngestor, type PluginServer } from '../../src/plugin/index.js';
import { PluginRegistry, type PluginRegistryOptions } from '../../src/registry/plugin-registry.js';
import { Gateway } from '../../src/server/gateway.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';
import { protoOnlyClient } from '../helpers/gateway-harness.js';

export interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

export interface TestGateway {
  gateway: Gateway;
  hub: Hub;
  plugins: PluginRegistry;
  registry: Registry;
  clock: FakeClock;
  timers: FakeTimers;
  grpcPort: number;
  metricsPort: number;
  logs: LogLine[];
  client: ReturnType<typeof protoOnlyClient>;
  stop(): Promise<void>;
}

/**
 * A gateway on loopback whose plugin table runs on fake time (leases, Health sweeps, the Register
 * token bucket); the pipeline itself keeps real timers so events flow. The static pipeline has
 * an in-memory emitter named `memory` (a reserved name).
 */
export async function startTestGateway(
  options: Partial<Omit<PluginRegistryOptions, 'pipeline' | 'logger' | 'registry'>> = {},
  builder: HubBuilder = hub().emitter(new InMemoryEmitter({ name: 'memory' })),
  /** Adds sources (discovery) to the table before the gateway starts. */
  setup?: (
    plugins: PluginRegistry,
    env: { timers: FakeTimers; registry: Registry; logger: ReturnType<typeof createLogger> },
  ) => void | Promise<void>,
): Promise<TestGateway> {
  const registry = createRegistry();
  const logs: LogLine[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString('utf8'))), done()) });
  const logger = createLogger('debug', sink);
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const h = builder.build({ registry, logger });
  const plugins = new PluginRegistry({ pipeline: h, logger, registry, clock, timers, ...options });
  await setup?.(plugins, { timers, registry, logger });
  const gateway = new Gateway({
    hub: h,
    registry,
    logger,
    grpcAddr: { host: '127.0.0.1', port: 0 },
    metricsAddr: { host: '127.0.0.1', port: 0 },
    shutdownTimeoutMs: 2_000,
    plugins,
  });
  const ports = await gateway.start();
  const client = protoOnlyClient(ports.grpc);
  return {
    gateway,
    hub: h,
    plugins,
    registry,
    clock,
    timers,
    logs,
    client,
    grpcPort: ports.grpc,
    metricsPort: ports.metrics,
    async stop() {
      client.close();
      await gateway.shutdown('test done');
    },
  };
}

/**
 * PluginRegistry calls as a plugin makes them, with `authorization: Bearer <token>` when given;
 * `register` sends a previous plugin_id as `polku-plugin-id` when given. `host` picks the local
 * address the calls come from (another peer: `127.0.0.2`).
 */
export function registryClient(port: number, token?: string, host = '127.0.0.1') {
  const client = new PluginRegistryClient(`${host}:${port}`, credentials.createInsecure());
  const md = (previousId?: string) => {
    const m = new Metadata();
    if (token) m.set('authorization', `Bearer ${token}`);
    if (previousId !== undefined) m.set('polku-plugin-id', previousId);
    return m;
  };
  const call = <Res>(
    invoke: (md: Metadata, cb: (err: ServiceError | null, res: Res) => void) => unknown,
    previousId?: string,
  ): Promise<Res> => new Promise((resolve, reject) => invoke(md(previousId), (err, res) => (err ? reject(err) : resolve(res))));
  return {
    register: (info: Partial<PluginInfo>, address: string, previousId?: string) =>
      call<RegisterResponse>((m, cb) => client.register({ info: pluginInfo(info), address }, m, cb), previousId),
    heartbeat: (pluginId: string) => call<{ acknowledged: boolean }>((m, cb) => client.heartbeat({ pluginId }, m, cb)),
    unregister: (pluginId: string) => call<object>((m, cb) => client.unregister({ pluginId }, m, cb)),
    close: () => client.close(),
  };
}

export function pluginInfo(info: Partial<PluginInfo>): PluginInfo {
  return {
    name: '',
    version: '',
    type: PluginType.PLUGIN_TYPE_EMITTER,
    description: '',
    sources: [],
    emitterName: '',
    capabilities: [],
    ...info,
  };
}

/** The gRPC status name a call failed with (or OK). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return status[(err as ServiceError).code] ?? String((err as ServiceError).code);
  }
}

/** The message a call failed with. */
export async function detailsOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return '';
  } catch (err) {
    return (err as ServiceError).details;
  }
}

export interface TestEmitterPlugin {
  server: PluginServer;
  address: string;
  received: Event[];
  healthy: boolean;
  /** Health calls answered: admission probes and health sweeps. */
  healthChecks: number;
}

/** An emitter plugin (the SDK) on loopback; flip `healthy` to change its Health answer. */
export async function emitterPlugin(name: string, emitterName = name, host = '127.0.0.1'): Promise<TestEmitterPlugin> {
  const p = { received: [] as Event[], healthy: true, healthChecks: 0 } as TestEmitterPlugin;
  p.server = await serveEmitter({
    name,
    emitterName,
    host,
    port: 0,
    health: () => {
      p.healthChecks++;
      return { healthy: p.healthy, message: p.healthy ? 'fine' : 'broken on purpose' };
    },
    emit: (events) => void p.received.push(...events),
  });
  p.address = `${host}:${p.server.port}`;
  return p;
}

/** An ingestor plugin (the SDK) on loopback that turns each line into an event of type `line`. */
export async function ingestorPlugin(name: string, sources: string[]): Promise<{ server: PluginServer; address: string }> {
  const server = await serveIngestor({
    name,
    sources,
    host: '127.0.0.1',
    port: 0,
    ingest: (data, ctx) =>
      Buffer.from(data)
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => ({ eventType: 'line', payload: Buffer.from(l), source: ctx.source })),
  });
  return { server, address: `127.0.0.1:${server.port}` };
}

/** A TCP listener that counts connections: proof that nothing was dialled. */
export async function connectionCounter(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server: Server = createServer((s) => {
    count++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => count,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** One sample of a metric family, by labels. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

/** Sends one event routed to `routeTo` over StreamEvents; resolves with the Ack. */
export function sendRouted(
  client: ReturnType<typeof protoOnlyClient>,
  id: string,
  routeTo: string[],
): Promise<{ event_ids: string[]; errors: Array<{ code: string; message: string }> }> {
  return new Promise((resolve, reject) => {
    client['SendEvent'](
      { source: 'test', event: { id, event_type: 'test.event', payload: Buffer.from(id), route_to: routeTo } },
      (err: Error | null, ack: never) => (err ? reject(err) : resolve(ack)),
    );
  });
}
