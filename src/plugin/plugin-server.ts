import {
  Server,
  type ServerCredentials,
  status,
  type handleUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Empty } from '../gen/google/protobuf/empty.js';
import type { PluginHealthResponse, PluginInfo } from '../gen/polku/v1/plugin.js';
import type { PluginOptions, PluginServer } from './options.js';
import { Registration } from './registration.js';
import { pluginServerCredentials } from './tls.js';
import { messageOf, silentLogger, systemTimers, type PluginLogger } from './runtime.js';

const DEFAULT_HOST = '0.0.0.0';
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** What a plugin kind's handlers may use of the running server. */
export interface PluginLifecycle {
  readonly logger: PluginLogger;
  /** True once the plugin has begun to stop. */
  readonly closing: boolean;
  /** Runs the author's `onShutdown` (once; later calls get the same promise). */
  runOnShutdown(): Promise<void>;
  /** The handle's `close()`. */
  close(): Promise<void>;
}

/**
 * A unary handler from an async function. The kind-specific handlers already turn the author's
 * throws into answers; this is the net under them, so no call is ever left unanswered.
 */
export function unary<Req, Res>(logger: PluginLogger, method: string, fn: (req: Req) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => {
        logger.error(`${method} failed`, { error: messageOf(err) });
        callback({ code: status.INTERNAL, details: messageOf(err) });
      },
    );
  };
}

/**
 * Listens, serves `Info`, `Health` and the kind's own RPCs, registers with the gateway when asked,
 * and hands back the {@link PluginServer}. Shared by `serveEmitter` and `serveIngestor`.
 */
export async function startPlugin(
  options: PluginOptions,
  info: PluginInfo,
  service: ServiceDefinition,
  kindHandlers: (life: PluginLifecycle) => UntypedServiceImplementation,
): Promise<PluginServer> {
  checkCommon(options);
  const logger = options.logger ?? silentLogger;
  const timers = options.timers ?? systemTimers;
  const host = options.host ?? DEFAULT_HOST;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const server = new Server(options.grpcOptions);
  let registration: Registration | undefined;
  let closing = false;
  let shutdownRun: Promise<void> | null = null;
  let closeRun: Promise<void> | null = null;
  let markClosed = (): void => {};
  const closed = new Promise<void>((resolve) => (markClosed = resolve));

  const runOnShutdown = (): Promise<void> => {
    shutdownRun ??= Promise.resolve().then(() => options.onShutdown?.());
    return shutdownRun;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info('signal received; closing', { signal });
    void close();
  };
  const doClose = async (): Promise<void> => {
    closing = true;
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    // Leave the gateway's table first, so it stops sending before we stop answering.
    await registration?.stop();
    await drain(server, timers, shutdownTimeoutMs, logger);
    try {
      await runOnShutdown();
    } catch (err) {
      logger.error('onShutdown failed', { error: messageOf(err) });
    }
    logger.info('plugin stopped', { name: info.name });
    markClosed();
  };
  const close = (): Promise<void> => {
    closeRun ??= doClose();
    return closeRun;
  };
  const life: PluginLifecycle = {
    logger,
    get closing() {
      return closing;
    },
    runOnShutdown,
    close,
  };

  server.addService(service, {
    info: unary<Empty, PluginInfo>(logger, 'Info', async () => info),
    health: unary<Empty, PluginHealthResponse>(logger, 'Health', () => askHealth(options, closing)),
    ...kindHandlers(life),
  });
  // IPv6 hosts go in brackets: `[::]:9001`.
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const port = await bind(server, hostPart, options.port ?? 0, pluginServerCredentials(options.tls));
  const address = `${hostPart}:${port}`;
  logger.info('plugin listening', { name: info.name, address });

  if (options.register) {
    registration = new Registration({ ...options.register, info, port, logger, timers });
    registration.start();
  }
  if (options.handleSignals) for (const s of SIGNALS) process.once(s, onSignal);

  return {
    port,
    address,
    get pluginId() {
      return registration?.pluginId;
    },
    closed,
    close,
  };
}

async function askHealth(options: PluginOptions, closing: boolean): Promise<PluginHealthResponse> {
  if (closing) return { healthy: false, message: 'shutting down', components: {} };
  if (!options.health) return { healthy: true, message: 'ok', components: {} };
  try {
    const h = await options.health();
    if (typeof h === 'boolean') return { healthy: h, message: h ? 'ok' : 'unhealthy', components: {} };
    return { healthy: h.healthy === true, message: h.message ?? '', components: { ...h.components } };
  } catch (err) {
    return { healthy: false, message: `health check threw: ${messageOf(err)}`, components: {} };
  }
}

function bind(server: Server, hostPart: string, port: number, credentials: ServerCredentials): Promise<number> {
  const target = `${hostPart}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(target, credentials, (err, bound) =>
      err ? reject(new Error(`plugin could not listen on ${target}: ${err.message}`, { cause: err })) : resolve(bound),
    );
  });
}

/** Stops taking calls and waits for those in flight; past the deadline, cuts them off. */
function drain(server: Server, timers: NonNullable<PluginOptions['timers']>, ms: number, logger: PluginLogger): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      timers.clearTimeout(deadline);
      resolve();
    };
    const deadline = timers.setTimeout(() => {
      if (done) return;
      logger.warn('calls still running at the shutdown deadline; cancelling them', { shutdownTimeoutMs: ms });
      server.forceShutdown();
      finish();
    }, ms);
    server.tryShutdown(() => finish());
  });
}

function checkCommon(options: PluginOptions): void {
  if (typeof options?.name !== 'string' || options.name.trim() === '') throw new TypeError('a plugin needs a non-empty name');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`port must be an integer in 0-65535, got ${String(port)}`);
  const t = options.shutdownTimeoutMs;
  if (t !== undefined && !(typeof t === 'number' && t > 0)) throw new RangeError(`shutdownTimeoutMs must be positive, got ${String(t)}`);
}
