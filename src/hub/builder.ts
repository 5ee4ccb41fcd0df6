import type { DeliveryOptions } from '../delivery/emitter-queue.js';
import type { DurableOptions } from '../buffer/durable/durable-store.js';
import { OVERFLOW_POLICIES, type EventBufferOptions } from '../buffer/event-buffer.js';
import { systemClock, systemTimers } from '../clock.js';
import { isDefaultEmitter, type EmitterRegistration } from '../delivery/emitter-registration.js';
import type { Emitter } from '../emit/emitter.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';
import { polkuError } from '../errors.js';
import type { Ingestor } from '../ingest/ingestor.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../ingest/intake-rules.js';
import type { Middleware } from '../middleware/middleware.js';
import { silentLogger } from '../observability/logger.js';
import { checkTenants, type TenantSpec } from '../tenants/tenant-spec.js';
import { createRegistry } from '../observability/metrics.js';
import { Hub, type HubOptions, type PipelineDefinition } from './hub.js';
import { DEFAULT_MAX_SOURCE_LABELS } from './hub-metrics.js';

export type { EmitterRegistration } from '../delivery/emitter-registration.js';

export const DEFAULT_BUFFER: Readonly<EventBufferOptions> = Object.freeze({
  capacity: 10_000,
  maxBytes: 32 * 1024 * 1024,
  overflow: 'reject',
});

export const DEFAULT_DELIVERY: Readonly<DeliveryOptions> = Object.freeze({
  batchSize: 500,
  flushIntervalMs: 100,
  maxAttempts: 5,
});

/** Every key of {@link DurableOptions} (the type is erased at run time; the compiler keeps this complete). */
const DURABLE_OPTION_KEYS = Object.keys({
  dir: true,
  maxBytes: true,
  maxAgeMs: true,
  idempotencyWindowMs: true,
  idempotencyMaxKeys: true,
  maxAttempts: true,
  maxRetryAgeMs: true,
  cacheEvents: true,
  cursorPersistMs: true,
  segmentBytes: true,
  fsync: true,
  streamWindowBatches: true,
  streamWindowBytes: true,
} satisfies Record<keyof DurableOptions, true>);
const EMITTER_REGISTRATION_KEYS = optionKeys<EmitterRegistration>({ default: true });

/** The settings a pipeline module set on its builder (each only what it set). */
export interface PipelineOverrides {
  readonly buffer: Partial<EventBufferOptions>;
  readonly delivery: Partial<DeliveryOptions>;
  readonly limits: Partial<IntakeLimits>;
  readonly durable?: DurableOptions;
}

/**
 * Builds a pipeline in code. A `polku.config.ts` exports one:
 *
 * ```ts
 * import { hub, JsonIngestor, filter, StdoutEmitter } from 'polku';
 * export default hub()
 *   .ingestor(new JsonIngestor())
 *   .middleware(filter((e) => e.eventType.startsWith('user.')))
 *   .emitter(new StdoutEmitter());
 * ```
 *
 * Settings given here win over the environment (POLKU_BUFFER_CAPACITY and friends), which wins
 * over the defaults.
 */
export class HubBuilder {
  private readonly ingestors: Ingestor[] = [];
  private readonly steps: Middleware[] = [];
  private readonly emitters: Array<{ emitter: Emitter; isDefault: boolean }> = [];
  private defaultIngestorName: string | undefined;
  private bufferOptions: Partial<EventBufferOptions> = {};
  private deliveryOptions: Partial<DeliveryOptions> = {};
  private limitOptions: Partial<IntakeLimits> = {};
  private durableOptions: DurableOptions | undefined;
  private tenantSpecs: TenantSpec[] | undefined;

  ingestor(ingestor: Ingestor): this {
    this.ingestors.push(ingestor);
    return this;
  }

  /** The ingestor for raw batches whose source and format no ingestor claims. */
  defaultIngestor(name: string): this {
    this.defaultIngestorName = name;
    return this;
  }

  middleware(step: Middleware): this {
    this.steps.push(step);
    return this;
  }

  emitter(emitter: Emitter, registration: EmitterRegistration = {}): this {
    checkOptionKeys(`hub().emitter(${emitter?.name ? `"${emitter.name}"` : ''})`, registration, EMITTER_REGISTRATION_KEYS);
    this.emitters.push({ emitter, isDefault: isDefaultEmitter(registration) });
    return this;
  }

  buffer(options: Partial<EventBufferOptions>): this {
    checkOptionKeys('hub().buffer()', options, Object.keys(DEFAULT_BUFFER));
    this.bufferOptions = { ...this.bufferOptions, ...options };
    return this;
  }

  delivery(options: Partial<DeliveryOptions>): this {
    checkOptionKeys('hub().delivery()', options, Object.keys(DEFAULT_DELIVERY));
    this.deliveryOptions = { ...this.deliveryOptions, ...options };
    return this;
  }

  /**
   * Durable mode: accepted events are committed to a log in `options.dir` before they are
   * acknowledged, delivered at least once across restarts, and dead-lettered when an emitter
   * keeps refusing them. Overflow policies do not apply; the log's size bound does.
   */
  durable(options: DurableOptions): this {
    checkOptionKeys('hub().durable()', options, DURABLE_OPTION_KEYS);
    this.durableOptions = { ...this.durableOptions, ...options };
    return this;
  }

  /**
   * Tenants: every caller then needs an API key (gRPC metadata `x-api-key`, HTTP `X-API-Key`),
   * and each tenant gets its own quota, buffer share and fair turn in delivery. A
   * POLKU_TENANTS_FILE, when set, replaces this table. Checked here: a mistake throws
   * POLKU_ERR_TENANTS_INVALID naming the tenant and field.
   */
  tenants(specs: readonly TenantSpec[]): this {
    checkTenants(specs, 'pipeline module .tenants()');
    this.tenantSpecs = [...specs];
    return this;
  }

  limits(options: Partial<IntakeLimits>): this {
    checkOptionKeys('hub().limits()', options, Object.keys(DEFAULT_LIMITS));
    this.limitOptions = { ...this.limitOptions, ...options };
    return this;
  }

  /**
   * The settings this module gives itself, which win over the environment's: what `polku
   * validate` warns about, and what a reload compares (they need a restart to change).
   */
  overrides(): PipelineOverrides {
    return {
      buffer: { ...this.bufferOptions },
      delivery: { ...this.deliveryOptions },
      limits: { ...this.limitOptions },
      ...(this.durableOptions ? { durable: { ...this.durableOptions } } : {}),
    };
  }

  /** The pipeline's parts, checked. Throws POLKU_ERR_PIPELINE_INVALID on a mistake. */
  definition(): PipelineDefinition {
    if (this.emitters.length === 0) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', 'the pipeline has no emitter: add one with .emitter(...)');
    }
    const names = new Set<string>();
    for (const { emitter } of this.emitters) {
      if (!emitter.name) throw polkuError('POLKU_ERR_PIPELINE_INVALID', 'an emitter has an empty name');
      if (names.has(emitter.name)) {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `two emitters are named "${emitter.name}"`);
      }
      names.add(emitter.name);
    }
    const stepNames = new Set<string>();
    for (const step of this.steps) {
      if (typeof step?.process !== 'function') {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `middleware "${step?.name}" has no process() function`);
      }
      // Names label the middleware's metrics; two alike would share series.
      if (stepNames.has(step.name)) {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `two middleware are named "${step.name}": give one a name option`);
      }
      stepNames.add(step.name);
    }
    return {
      ingestors: [...this.ingestors],
      ...(this.defaultIngestorName === undefined ? {} : { defaultIngestor: this.defaultIngestorName }),
      middleware: [...this.steps],
      emitters: [...this.emitters],
      ...(this.durableOptions ? { durable: { ...this.durableOptions } } : {}),
      ...(this.tenantSpecs ? { tenants: [...this.tenantSpecs] } : {}),
    };
  }

  /** Creates the running hub. `runtime` carries settings from the environment and shared services. */
  build(runtime: Partial<HubOptions> & { durable?: DurableOptions } = {}): Hub {
    const base = this.definition();
    // The module's durable settings win over the environment's; either one turns durable mode on.
    const durable = runtime.durable || base.durable ? ({ ...runtime.durable, ...base.durable } as DurableOptions) : undefined;
    if (durable && !durable.dir)
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', 'durable mode needs a directory (durable({ dir }) or POLKU_DATA_DIR)');
    const definition = durable ? { ...base, durable } : base;
    const options: HubOptions = {
      limits: { ...DEFAULT_LIMITS, ...runtime.limits, ...this.limitOptions },
      buffer: { ...DEFAULT_BUFFER, ...runtime.buffer, ...this.bufferOptions },
      delivery: { ...DEFAULT_DELIVERY, ...runtime.delivery, ...this.deliveryOptions },
      logger: runtime.logger ?? silentLogger(),
      registry: runtime.registry ?? createRegistry(),
      clock: runtime.clock ?? systemClock,
      timers: runtime.timers ?? systemTimers,
      maxSourceLabels: runtime.maxSourceLabels ?? DEFAULT_MAX_SOURCE_LABELS,
      tenants: runtime.tenants,
    };
    checkOptions(options);
    return new Hub(definition, options);
  }
}

/** Starts a pipeline definition. */
export function hub(): HubBuilder {
  return new HubBuilder();
}

function checkOptions(o: HubOptions): void {
  const positive: Array<[string, number]> = [
    ['buffer.capacity', o.buffer.capacity],
    ['buffer.maxBytes', o.buffer.maxBytes],
    ['delivery.batchSize', o.delivery.batchSize],
    ['delivery.maxAttempts', o.delivery.maxAttempts],
    ['limits.maxMessageBytes', o.limits.maxMessageBytes],
    ['limits.maxBatchEvents', o.limits.maxBatchEvents],
    ['limits.maxPayloadBytes', o.limits.maxPayloadBytes],
    ['limits.maxMetadataBytes', o.limits.maxMetadataBytes],
    ['limits.maxIdLength', o.limits.maxIdLength],
  ];
  for (const [name, value] of positive) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (!Number.isFinite(o.delivery.flushIntervalMs) || o.delivery.flushIntervalMs < 0) {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `delivery.flushIntervalMs must be 0 or more, got ${o.delivery.flushIntervalMs}`);
  }
  if (!OVERFLOW_POLICIES.includes(o.buffer.overflow)) {
    throw polkuError(
      'POLKU_ERR_PIPELINE_INVALID',
      `buffer.overflow must be one of ${OVERFLOW_POLICIES.join(', ')}, got "${String(o.buffer.overflow)}"`,
    );
  }
}
