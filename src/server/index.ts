/**
 * `polku/server`: running the gateway inside your own program instead of `polku serve`.
 *
 * ```ts
 * import { hub, JsonIngestor, StdoutEmitter } from 'polku';
 * import { Gateway, PluginRegistry, createLogger, createRegistry, settingsFromEnv } from 'polku/server';
 *
 * const settings = settingsFromEnv();
 * const logger = createLogger(settings.logLevel);
 * const registry = createRegistry();
 * const pipeline = hub().ingestor(new JsonIngestor()).emitter(new StdoutEmitter());
 * const { buffer, delivery, limits, maxSourceLabels, durable } = settings; // .buffer() etc. on the builder win
 * const h = pipeline.build({ buffer, delivery, limits, maxSourceLabels, logger, registry, ...(durable ? { durable } : {}) });
 * const plugins = new PluginRegistry({ ...settings.registry, pipeline: h, logger, registry });
 * const gateway = new Gateway({ ...settings, hub: h, registry, logger, plugins });
 * const ports = await gateway.start(); // then, on SIGTERM: await gateway.shutdown('SIGTERM')
 * ```
 *
 * The hub is made by `hub().build(...)` from `polku`; `Hub` is exported here as a type.
 */

// The gateway process and the running pipeline.
export { Gateway, type GatewayOptions, type ListeningPorts } from './gateway.js';
export type { Hub, PipelineDefinition, HubOptions, HubHealth, DrainReport, HubStats } from '../hub/hub.js';
export { DEFAULT_BUFFER, DEFAULT_DELIVERY } from '../hub/builder.js';
export { DEFAULT_LIMITS } from '../ingest/intake-rules.js';

// Settings, logs and metrics.
export {
  settingsFromEnv,
  ENV_VARIABLES,
  type GatewaySettings,
  type RegistrySettings,
  type DiscoverySettings,
  type ListenAddress,
  type EnvVariable,
} from '../config/env.js';
export { createLogger, type Logger } from '../observability/logger.js';
export { createRegistry } from '../observability/metrics.js';

// The live plugin table and what feeds it.
export { PluginRegistry, type PluginRegistryOptions, type PluginSource } from '../registry/plugin-registry.js';
export type { PluginTable } from '../registry/plugin-table.js';
export type { PluginTableOptions } from '../registry/table-options.js';
export { DEFAULT_ALLOWLIST, type AddressAllowlist, type Resolver } from '../registry/allowlist.js';
export type { LivePipeline } from '../registry/plugin-component.js';
export type { PluginRow } from '../registry/plugin-view.js';
export type { PluginKind, PluginOrigin, PluginSpec } from '../registry/plugin-spec.js';
export {
  kubernetesDiscovery,
  type ClusterAccess,
  type ClusterTls,
  type KubernetesDiscovery,
  type KubernetesDiscoveryOptions,
} from '../discovery/index.js';

// Errors and the wire.
export { PolkuError, isPolkuError, type ErrorCode } from '../errors.js';
export { Ack, IngestBatch, IngestEvent } from '../gen/polku/v1/gateway.js';

// Ways in: write a receiver of your own and pass it in GatewayOptions.receivers.
export type { Receiver, ReceiverContext, IntakePort, GrpcServiceBinding } from '../receive/receiver.js';
export type { IntakeRequest, IntakePayload } from '../hub/intake-request.js';
export { refusalOf, AckCodes, type AckCode } from '../errors.js';
