import { Metadata, status, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { Empty } from '../gen/google/protobuf/empty.js';
import {
  PluginRegistryClient,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type PluginInfo,
  type RegisterRequest,
  type RegisterResponse,
  type UnregisterRequest,
} from '../gen/polku/v1/plugin.js';
import type { RegisterOptions } from './options.js';
import { pluginDialCredentials } from './tls.js';
import { Backoff } from '../resilience/backoff.js';
import { messageOf, type PluginLogger, type PluginTimers } from './runtime.js';

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
const DEFAULT_CALL_TIMEOUT_MS = 5_000;
const DEFAULT_RETRY_INITIAL_MS = 500;
const DEFAULT_RETRY_MAX_MS = 30_000;
/** Unregister is best effort on the way out: it must not hold a closing plugin up for long. */
const UNREGISTER_TIMEOUT_MS = 2_000;
/** A gateway may set the heartbeat period in `RegisterResponse.message`, e.g. `heartbeat_interval_ms=5000`. */
const INTERVAL_HINT = /heartbeat_interval_ms\s*[=:]\s*(\d+)/;
/**
 * A private subchannel per client: after a connection failure the client is replaced (see
 * `call`), and a shared subchannel would carry grpc-js's own reconnect backoff (up to 120 s)
 * over to the new one. Our backoff is the only one.
 */
const CHANNEL_OPTIONS = { 'grpc.use_local_subchannel_pool': 1 };
/** The metadata key under which Register carries the plugin's previous id (the gateway's proof of ownership). */
const PLUGIN_ID_METADATA = 'polku-plugin-id';
/** Failures after which the channel may be stuck in reconnect backoff. */
const CONNECTION_FAILURES = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

export interface RegistrationConfig extends RegisterOptions {
  /** What the plugin tells the gateway about itself (the same as its `Info` answer). */
  info: PluginInfo;
  /** The port the plugin listens on, for the default advertised address. */
  port: number;
  logger: PluginLogger;
  timers: PluginTimers;
}

type Unary<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: { deadline: Date },
  cb: (err: ServiceError | null, res: Res) => void,
) => ClientUnaryCall;

/**
 * Keeps a plugin in a gateway's live plugin table: `Register` once listening, `Heartbeat` every
 * interval, `Register` again when the gateway says the lease is gone (`acknowledged: false` or
 * `NOT_FOUND`), and `Unregister` on stop. An unreachable or refusing gateway is retried with
 * exponential backoff; nothing here ever throws into the plugin. One registry call at a time.
 */
export class Registration {
  private readonly connect: () => PluginRegistryClient;
  private client: PluginRegistryClient;
  private readonly metadata = new Metadata();
  private readonly address: string;
  private readonly callTimeoutMs: number;
  /** Registration retries: doubling from retryInitialMs to retryMaxMs, reset once registered. */
  private readonly retryBackoff: Backoff;
  private intervalMs: number;
  private id: string | undefined;
  /**
   * The last id the gateway gave, kept after the lease is lost: sent again as `polku-plugin-id`
   * with each Register, the proof that this plugin owns its name should its old entry still be live.
   */
  private lastId: string | undefined;
  private timer: unknown;
  private running: Promise<void> | null = null;
  private stopped = false;
  private stopRun: Promise<void> | null = null;

  constructor(private readonly config: RegistrationConfig) {
    const { gateway, token } = config;
    if (typeof gateway !== 'string' || gateway.trim() === '') throw new TypeError('register.gateway must be host:port');
    const tls = /^https:\/\//i.test(gateway);
    const target = gateway.replace(/^https?:\/\//i, '').replace(/\/$/, '');
    const dial = pluginDialCredentials(config.tls, tls);
    this.connect = () => new PluginRegistryClient(target, dial.credentials, { ...CHANNEL_OPTIONS, ...dial.options });
    this.client = this.connect();
    if (token) this.metadata.set('authorization', `Bearer ${token}`);
    this.address = config.advertise ?? `127.0.0.1:${config.port}`;
    this.intervalMs = positive('register.heartbeatIntervalMs', config.heartbeatIntervalMs, DEFAULT_HEARTBEAT_INTERVAL_MS);
    this.callTimeoutMs = positive('register.callTimeoutMs', config.callTimeoutMs, DEFAULT_CALL_TIMEOUT_MS);
    this.retryBackoff = new Backoff({
      initialMs: positive('register.retryInitialMs', config.retryInitialMs, DEFAULT_RETRY_INITIAL_MS),
      maxMs: positive('register.retryMaxMs', config.retryMaxMs, DEFAULT_RETRY_MAX_MS),
    });
  }

  /** The id from the last accepted registration; undefined while not registered. */
  get pluginId(): string | undefined {
    return this.id;
  }

  /** Registers now (in the background). */
  start(): void {
    this.run(() => this.register());
  }

  /** Stops heartbeats, waits for a registry call in flight, then unregisters. Runs once. */
  stop(): Promise<void> {
    this.stopRun ??= this.doStop();
    return this.stopRun;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.config.timers.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    const id = this.id;
    this.id = undefined;
    if (id !== undefined) {
      try {
        await this.call<UnregisterRequest, Empty>(
          (r, m, o, cb) => this.client.unregister(r, m, o, cb),
          { pluginId: id },
          UNREGISTER_TIMEOUT_MS,
        );
        this.config.logger.info('unregistered from gateway', { gateway: this.config.gateway, pluginId: id });
      } catch (err) {
        this.config.logger.warn('unregister failed; the gateway will drop the plugin when its lease runs out', {
          gateway: this.config.gateway,
          error: messageOf(err),
        });
      }
    }
    this.client.close();
  }

  private run(step: () => Promise<void>): void {
    if (this.stopped) return;
    this.running = step().finally(() => (this.running = null));
  }

  private schedule(ms: number, step: () => Promise<void>): void {
    if (this.stopped) return;
    this.timer = this.config.timers.setTimeout(() => {
      this.timer = undefined;
      this.run(step);
    }, ms);
  }

  private async register(): Promise<void> {
    const { gateway, info, logger } = this.config;
    try {
      const metadata = this.metadata.clone();
      if (this.lastId !== undefined) metadata.set(PLUGIN_ID_METADATA, this.lastId);
      const res = await this.call<RegisterRequest, RegisterResponse>(
        (r, m, o, cb) => this.client.register(r, m, o, cb),
        { info, address: this.address },
        this.callTimeoutMs,
        metadata,
      );
      if (!res.accepted) throw new Error(`gateway refused the registration: ${res.message || 'no reason given'}`);
      this.id = res.pluginId;
      this.lastId = res.pluginId;
      this.retryBackoff.reset();
      const hint = INTERVAL_HINT.exec(res.message);
      if (hint && Number(hint[1]) > 0) this.intervalMs = Number(hint[1]);
      logger.info('registered with gateway', { gateway, pluginId: this.id, address: this.address, heartbeatIntervalMs: this.intervalMs });
      this.schedule(this.intervalMs, () => this.heartbeat());
    } catch (err) {
      if (this.stopped) return;
      const retryInMs = this.retryBackoff.next();
      logger.warn('registration failed; retrying', { gateway, error: messageOf(err), retryInMs });
      this.schedule(retryInMs, () => this.register());
    }
  }

  private async heartbeat(): Promise<void> {
    const { gateway, logger } = this.config;
    let leaseLost: boolean;
    try {
      const res = await this.call<HeartbeatRequest, HeartbeatResponse>((r, m, o, cb) => this.client.heartbeat(r, m, o, cb), {
        pluginId: this.id ?? '',
      });
      leaseLost = !res.acknowledged;
    } catch (err) {
      leaseLost = (err as Partial<ServiceError>).code === status.NOT_FOUND;
      // The gateway may be restarting: keep beating; once it is back it says whether it knows us.
      if (!leaseLost && !this.stopped) logger.warn('heartbeat failed', { gateway, error: messageOf(err) });
    }
    if (this.stopped) return;
    if (!leaseLost) return this.schedule(this.intervalMs, () => this.heartbeat());
    logger.warn('gateway no longer knows this plugin; registering again', { gateway, pluginId: this.id });
    this.id = undefined;
    await this.register();
  }

  private call<Req, Res>(method: Unary<Req, Res>, req: Req, timeoutMs = this.callTimeoutMs, metadata = this.metadata): Promise<Res> {
    return new Promise((resolve, reject) => {
      method(req, metadata, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => {
        if (!err) return resolve(res);
        // A fresh channel connects at the next attempt instead of failing fast until grpc-js's
        // reconnect backoff ends.
        if (CONNECTION_FAILURES.has(err.code) && !this.stopped) {
          this.client.close();
          this.client = this.connect();
        }
        reject(err);
      });
    });
  }
}

function positive(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${option} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}
