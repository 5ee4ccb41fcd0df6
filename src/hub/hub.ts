import type { Registry } from 'prom-client';
import type { DurableOptions } from '../buffer/durable/durable-store.js';
import type { EventBufferOptions } from '../buffer/event-buffer.js';
import type { Clock, Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import type {
  Admission,
  ComponentStatus,
  DeliveryBackend,
  DeliveryStats,
  DrainReport,
  RetireReport,
} from '../delivery/delivery-backend.js';
import type { DurableAdmin } from '../delivery/durable-admin.js';
import { DurableBackend } from '../delivery/durable-backend.js';
import type { DeliveryOptions } from '../delivery/emitter-queue.js';
import { isDefaultEmitter, type EmitterRegistration } from '../delivery/emitter-registration.js';
import { MemoryBackend } from '../delivery/memory-backend.js';
import type { Emitter } from '../emit/emitter.js';
import { polkuError, type AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Ack, IngestBatch } from '../gen/polku/v1/gateway.js';
import type { IngestProblem, IngestResult, Ingestor } from '../ingest/ingestor.js';
import { IngestorTable } from '../ingest/ingestor-table.js';
import { admitEvent, type IntakeLimits } from '../ingest/intake-rules.js';
import { createUlidFactory, type UlidFactory } from '../ingest/ulid.js';
import type { WireEvents } from '../ingest/wire-events.js';
import type { Middleware } from '../middleware/middleware.js';
import type { Logger } from '../observability/logger.js';
import { DropCounter } from '../observability/metrics.js';
import { Tenant } from '../tenants/tenant.js';
import { Tenants } from '../tenants/tenants.js';
import { admitTenantEvents } from '../tenants/tenant-admission.js';
import type { UnreadMessage } from '../receive/receiver.js';
import { checkTenants, type CheckedTenant, type TenantSpec } from '../tenants/tenant-spec.js';
import { BatchOutcome } from './batch-outcome.js';
import { HubMetrics } from './hub-metrics.js';
import { MiddlewareChain, type ChainBatch } from './middleware-chain.js';
import { SeenSources } from './seen-sources.js';
import { Taps } from './taps.js';
import type { IntakeRequest, StreamWindow } from './intake-request.js';
import { intakeOfBatch } from './polku-messages.js';

export type { ComponentStatus, DrainReport } from '../delivery/delivery-backend.js';

/** The parts of a pipeline, as the builder collected them. */
export interface PipelineDefinition {
  readonly ingestors: readonly Ingestor[];
  readonly defaultIngestor?: string;
  readonly middleware: readonly Middleware[];
  readonly emitters: ReadonlyArray<{ readonly emitter: Emitter; readonly isDefault: boolean }>;
  /** Durable mode: events are committed to a log on disk before they are acknowledged. */
  readonly durable?: DurableOptions;
  /** Tenants declared in the module (`.tenants([...])`); POLKU_TENANTS_FILE's win over them. */
  readonly tenants?: readonly TenantSpec[];
}

/** Everything a running hub needs besides its pipeline. */
export interface HubOptions {
  limits: IntakeLimits;
  buffer: EventBufferOptions;
  delivery: DeliveryOptions;
  logger: Logger;
  registry: Registry;
  clock: Clock;
  timers: Timers;
  /** Distinct sources with their own metrics series; the rest fold into "other". */
  maxSourceLabels: number;
  /** Tenants from POLKU_TENANTS_FILE, checked; they replace the module's. */
  tenants?: readonly CheckedTenant[] | undefined;
  /** The tap points (`polku tap`); default: new ones on `registry`. Pass one to keep taps across hubs. */
  taps?: Taps;
}

export interface HubHealth {
  readonly healthy: boolean;
  readonly components: Record<string, ComponentStatus>;
  readonly uptimeSeconds: number;
  readonly eventsProcessed: bigint;
}

/** What `hub.stats()` reports: delivery's snapshot, plus what the hub itself counts. */
export interface HubStats extends DeliveryStats {
  /** Events accepted since the hub was built. */
  readonly accepted: bigint;
}

/** One ingestor's work since the hub started (`polku top`); `events` is the pre-parsed polku.v1 path. */
export interface IngestorCounts {
  readonly name: string;
  readonly batches: number;
  readonly events: number;
  readonly problems: number;
}

/** Per-stage counts for `GET /admin/top`, added once per batch. */
export interface StageCounts {
  readonly ingestors: readonly IngestorCounts[];
  readonly middleware: ReadonlyArray<{ readonly name: string; readonly given: number; readonly kept: number }>;
}

/** Batches that came as polku.v1 events, needing no ingestor, are counted under this name. */
export const EVENTS_INGEST = '(polku.v1 events)';

/** One batch on its way through the hub. */
interface Intake extends ChainBatch {
  readonly startedMs: number;
  /** Unary SendEvent never waits for room, whatever the overflow policy. */
  readonly unary: boolean;
  /** The caller's tenant (tenants configured). */
  tenant: Tenant | undefined;
  /** The middleware chain the batch started with: a reload swaps the hub's, never a running batch's. */
  readonly chain: MiddlewareChain;
  /** Whether the batch's wire bytes may be stored as its log records (see `wireBytesKept`). */
  readonly wireBytesKept: boolean;
}

/** What a reload changed, and what retiring the replaced emitters left behind. */
export interface ReloadReport {
  readonly ingestors: readonly string[];
  readonly middleware: readonly string[];
  readonly emitters: readonly string[];
  /** Emitters of the old pipeline absent from the new one. */
  readonly removedEmitters: readonly string[];
  /** Each retired emitter queue (replaced or removed): events given up, or kept in the log. */
  readonly retired: readonly RetireReport[];
}

const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as Promise<T>)?.then === 'function';

/**
 * The pipeline at run time: ingest → middleware → buffer → emitter queues.
 *
 * It knows no transport: the gRPC server hands it decoded batches and writes back the Ack it
 * returns. Work is synchronous unless an ingestor or middleware returns a promise, so the common
 * batch costs no promise at all; callers must handle both `Ack` and `Promise<Ack>`.
 */
export class Hub {
  private ingestors: IngestorTable;
  private middleware: MiddlewareChain;
  /** The backend stores bytes, and no middleware changes events: store them as they came in. */
  private wireBytesKept = false;
  private readonly components: ComponentContext;
  /** Where accepted events go: memory or durable, picked once here. */
  private readonly delivery: DeliveryBackend;
  private definition: PipelineDefinition;
  private started: Promise<void> | null = null;
  private readonly o: HubOptions;
  private readonly log: Logger;
  private readonly drops: DropCounter;
  private readonly metrics: HubMetrics;
  private readonly newId: UlidFactory;
  private readonly startedAtMs: number;
  private accepted = 0n;
  private closing = false;
  /** Sources agents sent on lately (bounded); the plugin registry refuses claims of them. */
  readonly seenSources = new SeenSources();
  private drainRun: Promise<DrainReport> | null = null;
  /** The tenant table; null: no tenants, one implicit tenant, no key needed. */
  readonly tenants: Tenants | null;
  /** Per-ingestor batches, events and problems (names are the pipeline's and its plugins'). */
  private readonly ingestCounts = new Map<string, { batches: number; events: number; problems: number }>();
  /** Live samples of events after ingest, after middleware and as delivered (`GET /admin/tap`). */
  readonly taps: Taps;

  constructor(definition: PipelineDefinition, options: HubOptions) {
    this.o = options;
    this.log = options.logger.child({ component: 'hub' });
    this.taps = options.taps ?? new Taps({ registry: options.registry });
    this.ingestors = new IngestorTable(definition.ingestors, definition.defaultIngestor);
    this.drops = new DropCounter(options.registry);
    this.metrics = new HubMetrics(options.registry, options.maxSourceLabels);
    this.middleware = new MiddlewareChain({ middleware: definition.middleware, metrics: this.metrics, logger: this.log });
    this.definition = definition;
    const shared = {
      buffer: options.buffer,
      delivery: options.delivery,
      emitters: definition.emitters,
      registry: options.registry,
      clock: options.clock,
      timers: options.timers,
      logger: options.logger,
      eventsProcessed: () => this.accepted,
      taps: this.taps,
    };
    // Built before the components' init: wrappers look up the queue metrics it registers.
    this.delivery = definition.durable
      ? new DurableBackend({ ...shared, durable: definition.durable })
      : new MemoryBackend({ ...shared, drops: this.drops });
    const tenantTable =
      options.tenants ?? (definition.tenants ? checkTenants(definition.tenants, 'pipeline module .tenants()') : undefined);
    this.tenants = tenantTable
      ? new Tenants(tenantTable, { buffer: options.buffer, registry: options.registry, logger: options.logger })
      : null;
    this.keepWireBytes(this.middleware);
    const tenantLag = this.delivery.tenantLag;
    if (this.tenants && tenantLag) this.tenants.setLagSource(() => tenantLag(options.clock.nowMs()));
    const components: ComponentContext = {
      registry: options.registry,
      logger: options.logger,
      clock: options.clock,
      timers: options.timers,
      whenDelivered: (emitter) => this.delivery.whenIdle(emitter),
    };
    this.components = components;
    for (const i of definition.ingestors) i.init?.(components);
    for (const m of definition.middleware) m.init?.(components);
    for (const { emitter } of definition.emitters) emitter.init?.(components);
    this.newId = createUlidFactory({ now: () => options.clock.nowMs() });
    this.startedAtMs = options.clock.nowMs();
  }

  /** Replay and dead-letter operations (durable mode, once started; null otherwise). */
  get admin(): DurableAdmin | null {
    return this.delivery.admin;
  }

  /** A snapshot of the buffer, each emitter's queue, the durable log, and the accepted count. */
  stats(): HubStats {
    return { ...this.delivery.stats(), accepted: this.accepted };
  }

  /** Per-ingestor and per-middleware counts since the hub started (`GET /admin/top`). */
  stageCounts(): StageCounts {
    return {
      ingestors: [...this.ingestCounts].map(([name, c]) => ({ name, ...c })),
      middleware: this.middleware.counts(),
    };
  }

  /** The running emitter of that name (the plugin table shows configured emitters' addresses). */
  emitter(name: string): Emitter | undefined {
    return this.delivery.emitter(name);
  }

  /**
   * Gets the hub ready before events arrive. In durable mode it opens the log (recovering from a
   * crash), and each emitter resumes from its persisted cursor. Runs once.
   */
  start(): Promise<void> {
    this.started ??= this.delivery.start();
    return this.started;
  }

  /**
   * Adds an emitter while running (a plugin that registered or was discovered). Events routed to
   * its name reach it from the next batch on; with `default`, so do events with no route_to.
   */
  addEmitter(emitter: Emitter, registration: EmitterRegistration = {}): void {
    if (this.delivery.emitterNames.includes(emitter.name)) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `an emitter named "${emitter.name}" is already in the pipeline`);
    }
    emitter.init?.(this.components);
    this.delivery.addEmitter(emitter, isDefaultEmitter(registration));
    this.keepWireBytes(this.middleware);
  }

  /**
   * Takes an emitter out of routing at once (a plugin unregistered, its lease ran out, or its
   * Service went away). In memory mode the events still queued for it are given up and counted
   * `emitter_removed` (a batch in flight finishes); in durable mode they stay in the log, and the
   * emitter resumes from its cursor if it comes back. Returns false when no such emitter runs.
   */
  removeEmitter(name: string): boolean {
    const removed = this.delivery.removeEmitter(name);
    this.keepWireBytes(this.middleware);
    return removed;
  }

  /** Whether batches pass their wire bytes to delivery (it may start or stop wanting them as emitters change). */
  private keepWireBytes(chain: MiddlewareChain): void {
    // A tenant's events get metadata polku.tenant: their wire bytes are no longer the event.
    this.wireBytesKept = this.delivery.storesWireBytes && chain.keepsEventsUnchanged && this.tenants === null;
  }

  /**
   * Swaps in a new pipeline's ingestors, middleware and emitters (SIGHUP with a changed pipeline
   * module) without stopping intake: batches that began keep the middleware they began with; the
   * next batch runs the new ones. Emitters of the old pipeline are retired (their queues finish,
   * see {@link DeliveryBackend.retireEmitter}); the new pipeline's are added, an emitter of the
   * same name taking over the name's routes (durable: its cursor). Plugins added at run time stay.
   * Buffer, limits, delivery options and durable mode stay as built: they need a restart.
   *
   * Checks before changing anything: a new emitter whose name a plugin holds, or components
   * whose init() throws, leave the running pipeline untouched (throws). Returns once the swap is
   * done (synchronously); `retired` resolves when the old emitters have finished and shut down.
   */
  reload(next: PipelineDefinition, timeoutMs: number): { report: Omit<ReloadReport, 'retired'>; retired: Promise<ReloadReport> } {
    if (this.closing) throw polkuError('POLKU_ERR_PIPELINE_INVALID', 'the gateway is shutting down; not reloading');
    const old = this.definition;
    const oldEmitters = new Set(old.emitters.map((e) => e.emitter.name));
    const plugins = this.delivery.emitterNames.filter((n) => !oldEmitters.has(n));
    for (const { emitter } of next.emitters) {
      if (plugins.includes(emitter.name)) {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `the new pipeline's emitter "${emitter.name}" has the name of a running plugin`);
      }
    }
    // Components are initialised before the swap: one that throws leaves the running pipeline be.
    for (const i of next.ingestors) i.init?.(this.components);
    for (const m of next.middleware) m.init?.(this.components);
    for (const { emitter } of next.emitters) emitter.init?.(this.components);
    const chain = new MiddlewareChain({ middleware: next.middleware, metrics: this.metrics, logger: this.log });

    // The swap, in one synchronous stretch: no batch sees half of it.
    const staticIngestors = new Set<Ingestor>(old.ingestors);
    const pluginIngestors = this.ingestors.all.filter((i) => !staticIngestors.has(i));
    this.ingestors = new IngestorTable([...next.ingestors, ...pluginIngestors], next.defaultIngestor);
    this.middleware = chain;
    const retiring = [...oldEmitters].flatMap((name) => this.delivery.retireEmitter(name, timeoutMs) ?? []);
    for (const { emitter, isDefault } of next.emitters) this.delivery.addEmitter(emitter, isDefault);
    this.keepWireBytes(chain);
    this.definition = { ...next, ...(old.durable ? { durable: old.durable } : {}) };

    const newEmitters = new Set(next.emitters.map((e) => e.emitter.name));
    const report = {
      ingestors: next.ingestors.map((i) => i.name),
      middleware: next.middleware.map((m) => m.name),
      emitters: next.emitters.map((e) => e.emitter.name),
      removedEmitters: [...oldEmitters].filter((n) => !newEmitters.has(n)),
    };
    const keptIngestors = new Set<Ingestor>(next.ingestors);
    const keptMiddleware = new Set<Middleware>(next.middleware);
    const retired = Promise.all(retiring).then(async (reports) => {
      // After the old emitters finished: batches that began with the old middleware are done.
      await this.shutdownParts(
        old.ingestors.filter((i) => !keptIngestors.has(i)),
        old.middleware.filter((m) => !keptMiddleware.has(m)),
      );
      return { ...report, retired: reports };
    });
    return { report, retired };
  }

  /** Adds an ingestor while running; its sources and formats take effect from the next batch. */
  addIngestor(ingestor: Ingestor): void {
    ingestor.init?.(this.components);
    this.ingestors = new IngestorTable([...this.ingestors.all, ingestor], this.definition.defaultIngestor);
  }

  /** Removes an ingestor by name; its sources become unknown. Returns false when none has that name. */
  removeIngestor(name: string): boolean {
    const rest = this.ingestors.all.filter((i) => i.name !== name);
    if (rest.length === this.ingestors.all.length) return false;
    this.ingestors = new IngestorTable(rest, this.definition.defaultIngestor === name ? undefined : this.definition.defaultIngestor);
    return true;
  }

  /** The emitters and ingestors running now. */
  get running(): { emitters: readonly string[]; ingestors: readonly string[] } {
    return { emitters: this.delivery.emitterNames, ingestors: this.ingestors.all.map((i) => i.name) };
  }

  /** The running ingestors (static and plugin) and the middleware chain, in order: what GET /pipeline shows. */
  get parts(): { readonly ingestors: readonly Ingestor[]; readonly middleware: readonly Middleware[] } {
    return { ingestors: this.ingestors.all, middleware: this.definition.middleware };
  }

  /** The sources each running ingestor claims (static ingestors' sources are never a plugin's). */
  ingestorSources(name: string): readonly string[] {
    return this.ingestors.all.find((i) => i.name === name)?.sources ?? [];
  }

  /** True once shutdown began; new batches are refused with SHUTTING_DOWN. */
  get isClosing(): boolean {
    return this.closing;
  }

  get limits(): IntakeLimits {
    return this.o.limits;
  }

  /** Durable mode lets a stream's next batches in while earlier ones wait for their commit. */
  get streamWindow(): StreamWindow | undefined {
    return this.delivery.streamWindow;
  }

  /**
   * The one call every receiver makes: runs a message's events (or raw bytes) through the
   * pipeline and returns its Ack, synchronously unless an ingestor, a middleware, the overflow
   * policy `block` or durable mode makes it wait.
   */
  submit(request: IntakeRequest): Ack | Promise<Ack> {
    const unary = request.unary ?? false;
    const intake = this.startIntake(request.source, request.cluster, request.receivedAtNs ?? this.o.clock.nowNs(), unary);
    const payload = request.payload;
    if (this.tenants !== null) {
      // The key first: a caller without one learns nothing else about its message.
      const tenant = this.authenticate(this.tenants, intake, request.apiKey);
      if (!(tenant instanceof Tenant)) return tenant;
      // Raw bytes: the batch's source picks the ingestor, so it is checked before one runs; each
      // event's own source is checked after ingest (afterIngest).
      if (payload.kind === 'raw' && !tenant.allows(request.source)) {
        return this.refuseAll(intake, 1, 'PERMISSION_DENIED', tenant.forbidden(request.source));
      }
    }
    // Raw bytes are noted once, in ingestRaw, with the ingestor that parsed them.
    if (payload.kind === 'events') this.seenSources.note(request.source);
    if (payload.kind === 'unreadable') return this.refuseAll(intake, 1, payload.code, payload.message);
    if (this.closing) return this.refuseAll(intake, 1, 'SHUTTING_DOWN', 'gateway is shutting down');
    if (payload.kind === 'events') {
      if (payload.problems) this.refuseProblems(intake, payload.problems);
      this.countIngest(EVENTS_INGEST, payload.events.length, payload.problems?.length ?? 0);
      return this.afterIngest(intake, payload.events, payload.wire);
    }
    return this.ingestRaw(intake, payload.data, payload.format);
  }

  /** Runs one polku.v1 IngestBatch through the pipeline (embedding and tests; receivers call `submit`). */
  processBatch(batch: IngestBatch, receivedAtNs?: bigint): Ack | Promise<Ack> {
    return this.submit(intakeOfBatch(batch, receivedAtNs));
  }

  async health(): Promise<HubHealth> {
    const components: Record<string, ComponentStatus> = this.delivery.storageHealth();
    for (const ingestor of this.ingestors.all) {
      if (!ingestor.health) continue;
      try {
        const h = await ingestor.health();
        components[`ingestor:${ingestor.name}`] = { healthy: h.healthy, message: h.message ?? (h.healthy ? 'ok' : 'unhealthy') };
      } catch (err) {
        components[`ingestor:${ingestor.name}`] = { healthy: false, message: `health check threw: ${String(err)}` };
      }
    }
    Object.assign(components, await this.delivery.emitterHealth());
    components['intake'] = { healthy: !this.closing, message: this.closing ? 'shutting down' : 'accepting' };
    return {
      healthy: Object.values(components).every((c) => c.healthy),
      components,
      uptimeSeconds: Math.floor((this.o.clock.nowMs() - this.startedAtMs) / 1000),
      eventsProcessed: this.accepted,
    };
  }

  /**
   * Stops intake and delivers what the buffer holds, within `timeoutMs`. Runs once; later calls
   * get the same report. Events still undelivered at the deadline are counted
   * (`undelivered_at_shutdown`) and logged with their number; then emitters are shut down.
   */
  drain(timeoutMs: number): Promise<DrainReport> {
    this.drainRun ??= this.runDrain(timeoutMs);
    return this.drainRun;
  }

  private async runDrain(timeoutMs: number): Promise<DrainReport> {
    this.closing = true;
    const report = await this.delivery.drain(timeoutMs);
    await this.shutdownParts(this.ingestors.all, this.definition.middleware);
    return report;
  }

  /** Shuts ingestors and middleware down; a failure is logged, never thrown. */
  private async shutdownParts(ingestors: readonly Ingestor[], middleware: readonly Middleware[]): Promise<void> {
    await Promise.all(
      ingestors.map(async (i) => {
        try {
          await i.shutdown?.();
        } catch (err) {
          this.log.warn({ ingestor: i.name, err }, 'ingestor shutdown failed');
        }
      }),
    );
    await Promise.all(
      middleware.map(async (m) => {
        try {
          await m.shutdown?.();
        } catch (err) {
          this.log.warn({ middleware: m.name, err }, 'middleware shutdown failed');
        }
      }),
    );
  }

  private countIngest(name: string, events: number, problems: number): void {
    let c = this.ingestCounts.get(name);
    if (!c) {
      c = { batches: 0, events: 0, problems: 0 };
      // Plugin ingestors come and go; keep a bounded number of rows.
      if (this.ingestCounts.size < 256) this.ingestCounts.set(name, c);
    }
    c.batches++;
    c.events += events;
    c.problems += problems;
  }

  private startIntake(source: string, cluster: string, receivedAtNs: bigint, unary: boolean): Intake {
    return {
      source,
      cluster,
      receivedAtNs,
      unary,
      chain: this.middleware,
      wireBytesKept: this.wireBytesKept,
      startedMs: this.o.clock.monotonicMs(),
      outcome: new BatchOutcome(this.drops),
      tenant: undefined,
    };
  }

  private ingestRaw(intake: Intake, data: Uint8Array, format: string): Ack | Promise<Ack> {
    const ingestor = this.ingestors.select(intake.source, format);
    this.seenSources.note(intake.source, ingestor?.name);
    if (!ingestor) {
      return this.refuseAll(intake, 1, 'UNKNOWN_SOURCE', this.ingestors.unknownSourceMessage(intake.source, format));
    }
    let result: IngestResult | Promise<IngestResult>;
    try {
      result = ingestor.ingest({ source: intake.source, cluster: intake.cluster, format, limits: this.o.limits }, data);
    } catch (err) {
      return this.refuseAll(intake, 1, 'PARSE_ERROR', `ingestor "${ingestor.name}" failed: ${(err as Error).message}`);
    }
    const afterParse = (r: IngestResult): Ack | Promise<Ack> => {
      if (r.unavailable !== undefined) {
        return this.refuseAll(intake, 1, 'INGESTOR_UNAVAILABLE', `ingestor "${ingestor.name}": ${r.unavailable}`);
      }
      if (r.tooLarge !== undefined) {
        // The ingestor stopped at the first element past the limit: that many were counted.
        return this.refuseAll(intake, this.o.limits.maxBatchEvents + 1, 'BATCH_TOO_LARGE', `ingestor "${ingestor.name}": ${r.tooLarge}`);
      }
      this.countIngest(ingestor.name, r.events.length, r.problems.length);
      this.refuseProblems(intake, r.problems);
      return this.afterIngest(intake, r.events);
    };
    if (!isPromise(result)) return afterParse(result);
    return result.then(afterParse, (err: unknown) =>
      this.refuseAll(intake, 1, 'PARSE_ERROR', `ingestor "${ingestor.name}" failed: ${String(err)}`),
    );
  }

  /** Each part of the input an ingestor could not read: one PARSE_ERROR, where in the bytes it was. */
  private refuseProblems(intake: Intake, problems: readonly IngestProblem[]): void {
    for (const p of problems) {
      intake.outcome.received++;
      intake.outcome.refuse('', 'PARSE_ERROR', p.offset === undefined ? p.message : `${p.message} (at byte ${p.offset})`);
    }
  }

  private afterIngest(intake: Intake, events: Event[], wire?: WireEvents): Ack | Promise<Ack> {
    const out = intake.outcome;
    if (events.length > this.o.limits.maxBatchEvents) {
      return this.refuseAll(
        intake,
        events.length,
        'BATCH_TOO_LARGE',
        `batch has ${events.length} events, limit ${this.o.limits.maxBatchEvents}`,
      );
    }
    out.received += events.length;
    if (intake.tenant !== undefined) return this.afterTenantIntake(intake, intake.tenant, events);
    const valid: Event[] = [];
    // Which batch position each valid event came from, when its wire bytes can become its log
    // record: durable mode with middleware that at most drop events, so intake's fill-ins are the
    // only changes.
    const chain = intake.chain;
    const wireAt: number[] | undefined = wire && intake.wireBytesKept ? [] : undefined;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const refusal = admitEvent(event, this.o.limits, intake.source, intake.receivedAtNs, this.newId);
      if (refusal !== undefined) {
        out.refuse(event.id, refusal.code, `events[${i}]: ${refusal.message}`);
        continue;
      }
      valid.push(event);
      wireAt?.push(i);
    }
    if (this.taps.active && valid.length > 0) this.taps.offer('ingest', valid);
    if (wireAt && chain.length === 0) return this.admit(intake, valid, wire, wireAt);
    const kept = chain.run(intake, valid);
    if (wireAt) {
      // The middleware returned some of these very objects: find each survivor's batch position.
      const position = new Map<Event, number>();
      for (let j = 0; j < valid.length; j++) position.set(valid[j]!, wireAt[j]!);
      const admitKept = (k: Event[]) =>
        this.admit(
          intake,
          k,
          wire,
          k.map((e) => position.get(e) ?? -1),
        );
      return isPromise(kept) ? kept.then(admitKept) : admitKept(kept);
    }
    if (!isPromise(kept)) return this.admit(intake, kept);
    return kept.then((k) => this.admit(intake, k));
  }

  /** IntakePort.refuseBeforeReading (src/receive/receiver.ts): the key alone, or the tenant's bucket, decides. */
  refuseBeforeReading(caller: UnreadMessage): Ack | undefined {
    const tenants = this.tenants;
    if (tenants === null) return undefined;
    const authenticated = tenants.authenticate(caller.apiKey);
    const tenant = 'tenant' in authenticated ? authenticated.tenant : undefined;
    // The common case, a tenant with the tokens, costs one key hash and creates no Ack.
    const wait = tenant === undefined ? 0 : tenants.quotaWaitMs(tenant, this.o.clock.monotonicMs());
    if (tenant !== undefined && wait === 0) return undefined;
    const intake = this.startIntake(caller.source, '', this.o.clock.nowNs(), caller.unary);
    const known = this.authenticate(tenants, intake, caller.apiKey);
    if (!(known instanceof Tenant)) return known;
    known.series.quotaRefusals.inc();
    return this.refuseAll(intake, 1, 'RATE_LIMITED', known.overQuota(wait));
  }

  /** The caller's tenant, counted; or the UNAUTHENTICATED Ack refusing its message whole. */
  private authenticate(tenants: Tenants, intake: Intake, apiKey: string | undefined): Tenant | Ack {
    const auth = tenants.authenticate(apiKey);
    if ('refusal' in auth) {
      const other = tenants.otherSeries;
      other.requests.inc();
      intake.outcome.tenantSeries = other;
      return this.refuseAll(intake, 1, 'UNAUTHENTICATED', auth.refusal);
    }
    const tenant = auth.tenant;
    intake.tenant = tenant;
    intake.outcome.tenantSeries = tenant.series;
    tenant.series.requests.inc();
    return tenant;
  }

  /** The tenant's admission (src/tenants/tenant-admission.ts), then the middleware. */
  private afterTenantIntake(intake: Intake, tenant: Tenant, events: Event[]): Ack | Promise<Ack> {
    const now = this.o.clock.monotonicMs();
    const valid = admitTenantEvents(tenant, events, intake, this.o.limits, this.newId, now, intake.outcome);
    if (this.taps.active && valid.length > 0) this.taps.offer('ingest', valid);
    const kept = intake.chain.run(intake, valid);
    if (!isPromise(kept)) return this.admit(intake, kept);
    return kept.then((k) => this.admit(intake, k));
  }

  /**
   * Hands the surviving events to delivery, then answers. Under the overflow policy `block` or in
   * durable mode that takes a promise; the caller stops reading the stream meanwhile, so HTTP/2
   * flow control pushes back on the agent.
   */
  private admit(intake: Intake, events: Event[], wire?: WireEvents, wireAt?: readonly number[]): Ack | Promise<Ack> {
    if (this.taps.active && events.length > 0) this.taps.offer('middleware', events);
    const admission: Admission = {
      events,
      outcome: intake.outcome,
      unary: intake.unary,
      refusedLater: (e) => intake.chain.noteLaterRefusal(intake, e, intake.chain.length),
      wire,
      wireAt,
      share: intake.tenant?.share,
    };
    const admitted = this.delivery.admit(admission);
    return isPromise(admitted) ? admitted.then(() => this.finish(intake)) : this.finish(intake);
  }

  private finish(intake: Intake): Ack {
    const out = intake.outcome;
    if (intake.laterRefusals) intake.chain.undoForLaterRefusals(intake.laterRefusals);
    this.accepted += BigInt(out.eventIds.length);
    if (intake.tenant !== undefined && out.eventIds.length > 0) intake.tenant.series.accepted.inc(out.eventIds.length);
    this.metrics.recordBatch(intake.source, out.received, out.eventIds.length, (this.o.clock.monotonicMs() - intake.startedMs) / 1000);
    return out.toAck(this.delivery.bufferSize, this.delivery.bufferCapacity);
  }

  private refuseAll(intake: Intake, count: number, code: AckCode, message: string): Ack {
    intake.outcome.received += count;
    intake.outcome.refuseMany(count, code, message);
    return this.finish(intake);
  }
}
