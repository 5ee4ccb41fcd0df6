import type { Registry } from 'prom-client';
import type { Clock, Timers } from '../clock.js';
import type { PluginInfo } from '../gen/polku/v1/plugin.js';
import type { Logger } from '../observability/logger.js';
import type { LivePipeline } from './plugin-component.js';
import type { PluginKind, PluginSpec } from './plugin-spec.js';
import type { RegistryIdentity } from './registry-identity.js';

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
export const DEFAULT_MISSED_BEATS = 3;
export const DEFAULT_MAX_PLUGINS = 64;
export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;
/** Failed Health checks in a row that take a plugin out of routing (one blip does not). */
export const DEFAULT_UNHEALTHY_AFTER = 2;

export interface PluginTableOptions {
  pipeline: LivePipeline;
  logger: Logger;
  /** Where the table's metrics live (`polku_registry_*`). */
  registry: Registry;
  clock?: Clock;
  timers?: Timers;
  /** The heartbeat period plugins are told to keep. Default 5000 ms. */
  heartbeatIntervalMs?: number;
  /** Heartbeats a plugin may miss in a row; its lease is interval × this. Default 3. */
  missedBeats?: number;
  /** How often every plugin's Health is asked. Default: the heartbeat interval. */
  healthIntervalMs?: number;
  /** Dynamic plugins (registered + discovered) at most. Default 64. */
  maxPlugins?: number;
  /** Deadline of each Info/Health call. Default 2000 ms. */
  probeTimeoutMs?: number;
  /** Failed Health checks in a row before a plugin leaves routing. Default 2. */
  unhealthyAfter?: number;
}

/** A plugin asking to enter the table. */
export interface AdmitRequest {
  readonly origin: 'registered' | 'kubernetes';
  readonly kind: PluginKind;
  /** The target to dial, already allowed by the allowlist. */
  readonly target: string;
  /** Kubernetes: `namespace/name` of the Service. */
  readonly service?: string;
  /** Checked before anything is dialled, when the spec is known up front (registrations). */
  readonly known?: PluginSpec;
  /** Registrations: who asks. Its allowance bounds the name, route name and sources it may claim. */
  readonly identity?: RegistryIdentity;
  /** Registrations: the plugin_id the caller says it holds (metadata `polku-plugin-id`), proof of owning the name. */
  readonly proof?: string;
  /** The spec once the plugin's own Info is known; throws a RegistryError to refuse. */
  complete(info: PluginInfo): PluginSpec;
}
