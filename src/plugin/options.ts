import type { ServerOptions } from '@grpc/grpc-js';
import type { PluginLogger, PluginTimers } from './runtime.js';
import type { PluginDialTls, PluginServeTls } from './tls.js';

/** What a plugin reports about itself; `true`/`false` alone is fine too. */
export interface PluginHealth {
  healthy: boolean;
  /** Why, in a few words ("queue 80% full"); shown by the gateway's health endpoints. */
  message?: string;
  /** Health of the plugin's own dependencies by name (`{ slack: true, cache: false }`). */
  components?: Record<string, boolean>;
}

/** How a plugin announces itself to a gateway's `PluginRegistry` (self-registration). */
export interface RegisterOptions {
  /** The gateway's gRPC address, `host:port` or `http://host:port`, e.g. `localhost:50051`. */
  gateway: string;
  /**
   * The address the gateway should dial to reach this plugin. Default `127.0.0.1:<port>`, right
   * when both run on one host; in Kubernetes give the pod IP or a Service name.
   */
  advertise?: string;
  /** Registration token; sent on every registry call as `authorization: Bearer <token>`. */
  token?: string;
  /**
   * TLS to a gateway serving TLS: `caFile` verifies it, `certFile` + `keyFile` answer its mTLS.
   * An `https://` gateway address without this uses TLS with the system's roots.
   */
  tls?: PluginDialTls;
  /**
   * Heartbeat period. Default 5000 ms. A gateway may ask for another period by putting
   * `heartbeat_interval_ms=<n>` in its `RegisterResponse.message`; that wins.
   */
  heartbeatIntervalMs?: number;
  /** Deadline of each registry call. Default 5000 ms. */
  callTimeoutMs?: number;
  /** First wait before retrying a failed registration; doubles each time. Default 500 ms. */
  retryInitialMs?: number;
  /** Longest wait between registration attempts. Default 30 000 ms. */
  retryMaxMs?: number;
}

/** Options every plugin takes, emitter or ingestor. */
export interface PluginOptions {
  /** The plugin's name (`PluginInfo.name`), e.g. `slack-emitter`. */
  name: string;
  /** `PluginInfo.version`. Default empty. */
  version?: string;
  /** `PluginInfo.description`. Default empty. */
  description?: string;
  /** `PluginInfo.capabilities`: free-form feature names the gateway may show. Default none. */
  capabilities?: string[];
  /** Answers the `Health` RPC. Default: always healthy. A throw reports unhealthy with its message. */
  health?: () => PluginHealth | boolean | Promise<PluginHealth | boolean>;
  /**
   * Called once when the plugin stops: on the gateway's `Shutdown` RPC (before it is answered; a
   * throw answers `success: false`), or on `close()`/a signal after in-flight calls finished.
   * Flush buffers and close connections here.
   */
  onShutdown?: () => void | Promise<void>;
  /** Interface to listen on. Default `0.0.0.0`. */
  host?: string;
  /** Port to listen on; 0 (the default) picks a free one, see {@link PluginServer.port}. */
  port?: number;
  /**
   * Serve TLS (`certFile` + `keyFile`; with `clientCaFile`, the gateway must present a certificate:
   * mTLS). The files are re-read every `refreshIntervalMs`; rotated ones serve new connections.
   * Default: plaintext.
   */
  tls?: PluginServeTls;
  /** Register with a gateway after listening, heartbeat, and unregister on close. Default: don't. */
  register?: RegisterOptions;
  /** Close gracefully on SIGTERM/SIGINT (a second signal kills as usual). Default false. */
  handleSignals?: boolean;
  /** How long `close()` lets in-flight calls finish before cutting them off. Default 10 000 ms. */
  shutdownTimeoutMs?: number;
  /** Logger (`console` works). Default silent. */
  logger?: PluginLogger;
  /** Timers for backoff, heartbeats and the close deadline. Default real, unref'd timers. */
  timers?: PluginTimers;
  /** Passed to the grpc-js `Server` (message size limits, keepalive). */
  grpcOptions?: ServerOptions;
}

/** A running plugin. */
export interface PluginServer {
  /** The port it listens on (the chosen one when `port` was 0). */
  readonly port: number;
  /** `host:port` it listens on. */
  readonly address: string;
  /** The id the gateway gave on registration; undefined when not (or not yet) registered. */
  readonly pluginId: string | undefined;
  /** Resolves once the server has stopped, whoever stopped it (close, Shutdown RPC, signal). */
  readonly closed: Promise<void>;
  /**
   * Stops gracefully, once however often called: unregisters from the gateway, stops taking
   * calls, lets in-flight calls finish (up to `shutdownTimeoutMs`, then cuts them off), runs
   * `onShutdown`.
   */
  close(): Promise<void>;
}
