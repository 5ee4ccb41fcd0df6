/**
 * `polku`: writing a pipeline. Everything a `polku.config.ts` needs, and nothing else:
 * embedding the gateway in a program is `polku/server`, testing a pipeline is `polku/testing`,
 * writing a plugin process is `polku/plugin`.
 *
 * One way to make each part, so there is one name to remember per part:
 * - the pipeline: `hub()`, then its builder methods;
 * - middleware and emitter wrappers: factory functions (`filter(...)`, `rateLimiter(...)`,
 *   `withRetry(emitter, ...)`), because they configure a step rather than name a thing;
 * - ingestors and emitters: classes, with `new` and one options object
 *   (`new JsonIngestor()`, `new WebhookEmitter({ url })`, `new ExternalEmitter({ name, address })`).
 * The classes behind the factories are exported as types only, for annotations.
 *
 * The folders follow an event's path: ingest → middleware → buffer → emit, wired by hub.
 */

// The pipeline.
export { hub, type HubBuilder, type EmitterRegistration } from './hub/builder.js';
export type { OverflowPolicy, EventBufferOptions } from './buffer/event-buffer.js';
export type { DeliveryOptions } from './delivery/emitter-queue.js';
export type { DurableOptions } from './buffer/durable/durable-store.js';
export type { IntakeLimits } from './ingest/intake-rules.js';

// Ingestors: bytes to events.
export type { Ingestor, IngestContext, IngestResult, IngestProblem } from './ingest/ingestor.js';
export { JsonIngestor, type JsonIngestorOptions } from './ingest/json.js';
export { PassthroughIngestor, type PassthroughIngestorOptions } from './ingest/passthrough.js';
export { ExternalIngestor, type ExternalIngestorConfig, type ExternalIngestorOptions } from './ingest/external.js';
export { TapioIngestor } from './ingest/agents/tapio.js';
export { ElavaIngestor } from './ingest/agents/elava.js';
export { PorttiIngestor } from './ingest/agents/portti.js';
export type { AgentIngestorOptions } from './ingest/agents/agent-batch.js';

// Middleware: factories.
export type { Middleware, MiddlewareContext } from './middleware/middleware.js';
export { filter, type FilterOptions } from './middleware/filter.js';
export { transform, type TransformOptions } from './middleware/transform.js';
export { router, type EventRouter, type RouterOptions, type RouteRule } from './middleware/router.js';
export { rateLimiter, type RateLimiter, type RateLimiterOptions, type BucketLimit, type KeyedLimit } from './middleware/rate-limiter.js';
export { sampler, type Sampler, type SamplerOptions } from './middleware/sampler.js';
export { deduplicator, type Deduplicator, type DeduplicatorOptions } from './middleware/deduplicator.js';
export { enricher, type Enricher, type EnrichFn, type EnricherOptions } from './middleware/enricher.js';
export { validator, type Validator, type ValidatorOptions, type ValidationRule } from './middleware/validator.js';
export {
  kubernetesEnricher,
  type KubernetesEnricher,
  type KubernetesEnricherOptions,
  type KubernetesLookup,
} from './middleware/kubernetes-enricher.js';
export type { ClusterAccess, ClusterTls } from './discovery/kube/cluster-access.js';
export { hasClientId } from './ingest/assigned-ids.js';

// Emitters: classes.
export { EmitResults, type Emitter, type EmitResult, type EventFailure, type EmitterHealth, type ProbeResult } from './emit/emitter.js';
export { StdoutEmitter, type StdoutEmitterOptions } from './emit/stdout.js';
export { WebhookEmitter, type WebhookEmitterOptions } from './emit/webhook.js';
export { FileEmitter, type FileEmitterOptions } from './emit/file.js';
export { GrpcEmitter, type GrpcEmitterOptions } from './emit/grpc.js';
export { ExternalEmitter, type ExternalEmitterConfig, type ExternalEmitterOptions } from './emit/external.js';
export { OtlpEmitter, type OtlpEmitterOptions } from './emit/otlp.js';
export { AhtiEmitter, type AhtiEmitterOptions } from './emit/ahti.js';
export { PostgresEmitter, type PostgresEmitterOptions } from './emit/postgres.js';
export { type PostgresColumns, type PostgresField } from './emit/postgres-sql.js';
export { S3Emitter, type S3EmitterOptions } from './emit/s3.js';
export { RedisStreamEmitter, type RedisBatchCommand, type RedisStreamEmitterOptions } from './emit/redis-stream.js';
export { NatsEmitter, type NatsEmitterOptions } from './emit/nats.js';
export { eventToJson, type EventJson } from './emit/event-json.js';

// Emitter wrappers: factories; EmitterWrapper is the base class for writing one of your own.
export { withRetry, type RetryEmitter, type RetryOptions } from './emit/resilience/retry.js';
export {
  withCircuitBreaker,
  type CircuitBreakerEmitter,
  type CircuitBreakerOptions,
  type CircuitState,
} from './emit/resilience/circuit-breaker.js';
export { withTimeout, type TimeoutEmitter, type TimeoutOptions } from './emit/resilience/timeout.js';
export { EmitterWrapper } from './emit/resilience/wrap.js';

// What every component sees.
export { AckCodes, type AckCode } from './errors.js';
export type { Clock, Timers, TimerHandle } from './clock.js';
export type { ComponentContext } from './component-context.js';
export { Event, Severity, Outcome } from './gen/polku/v1/event.js';
