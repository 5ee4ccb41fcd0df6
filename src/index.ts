/**
 * POLKU's public API: build a pipeline in TypeScript and run it.
 * The folders follow an event's path: ingest → middleware → buffer → emit, wired by hub and
 * served by server.
 */
export { hub, HubBuilder, DEFAULT_BUFFER, DEFAULT_DELIVERY, type EmitterRegistration } from './hub/builder.js';
export { Hub, type PipelineDefinition, type HubOptions, type HubHealth, type HubStats, type DrainReport } from './hub/hub.js';

export type { Ingestor, IngestContext, IngestResult, IngestProblem } from './ingest/ingestor.js';
export { JsonIngestor, type JsonIngestorOptions } from './ingest/json.js';
export { PassthroughIngestor, type PassthroughIngestorOptions } from './ingest/passthrough.js';
export { externalIngestor, ExternalIngestor, type ExternalIngestorOptions } from './ingest/external.js';
export { DEFAULT_LIMITS, type IntakeLimits } from './ingest/intake-rules.js';

export type { Middleware, MiddlewareContext } from './middleware/middleware.js';
export { filter, type FilterOptions } from './middleware/filter.js';
export { transform, type TransformOptions } from './middleware/transform.js';
export { router, EventRouter, type RouterOptions, type RouteRule } from './middleware/router.js';
export { rateLimiter, RateLimiter, type RateLimiterOptions, type BucketLimit, type KeyedLimit } from './middleware/rate-limiter.js';
export { sampler, Sampler, hash32, type SamplerOptions } from './middleware/sampler.js';
export { deduplicator, Deduplicator, type DeduplicatorOptions } from './middleware/deduplicator.js';
export { enricher, Enricher, type EnrichFn, type EnricherOptions } from './middleware/enricher.js';
export { validator, Validator, type ValidatorOptions, type ValidationRule } from './middleware/validator.js';
export { hasClientId } from './ingest/assigned-ids.js';

export type { OverflowPolicy, EventBufferOptions } from './buffer/event-buffer.js';
export type { DeliveryOptions } from './delivery/emitter-queue.js';

export { EmitResults, type Emitter, type EmitResult, type EventFailure, type EmitterHealth } from './emit/emitter.js';
export { StdoutEmitter, type StdoutEmitterOptions } from './emit/stdout.js';
export { InMemoryEmitter, type InMemoryEmitterOptions } from './emit/in-memory.js';
export { eventToJson, type EventJson } from './emit/event-json.js';
export { WebhookEmitter, type WebhookEmitterOptions } from './emit/webhook.js';
export { FileEmitter, type FileEmitterOptions } from './emit/file.js';
export { GrpcEmitter, ackToEmitResult, type GrpcEmitterOptions } from './emit/grpc.js';
export { externalEmitter, ExternalEmitter, type ExternalEmitterOptions } from './emit/external.js';
export { withRetry, RetryEmitter, type RetryOptions } from './emit/resilience/retry.js';
export {
  withCircuitBreaker,
  CircuitBreakerEmitter,
  type CircuitBreakerOptions,
  type CircuitState,
} from './emit/resilience/circuit-breaker.js';
export { withTimeout, TimeoutEmitter, type TimeoutOptions } from './emit/resilience/timeout.js';
export { EmitterWrapper } from './emit/resilience/wrap.js';

export { Gateway, type GatewayOptions, type ListeningPorts } from './server/gateway.js';
export { PluginRegistry, type PluginRegistryOptions, type PluginSource } from './registry/plugin-registry.js';
export { PluginTable } from './registry/plugin-table.js';
export type { PluginTableOptions } from './registry/table-options.js';
export { AddressAllowlist, DEFAULT_ALLOWLIST, type Resolver } from './registry/allowlist.js';
export type { LivePipeline } from './registry/plugin-component.js';
export type { PluginRow } from './registry/plugin-view.js';
export type { PluginKind, PluginOrigin, PluginSpec } from './registry/plugin-spec.js';
export { kubernetesDiscovery, type KubernetesDiscovery, type KubernetesDiscoveryOptions } from './discovery/index.js';
export { settingsFromEnv, type GatewaySettings } from './config/env.js';
export { AckCodes, type AckCode, PolkuError, isPolkuError, type ErrorCode } from './errors.js';
export type { Clock, Timers } from './clock.js';
export type { ComponentContext } from './component-context.js';

export { Event, Severity, Outcome } from './gen/polku/v1/event.js';
export { Ack, IngestBatch, IngestEvent } from './gen/polku/v1/gateway.js';
