import type { Registry } from 'prom-client';
import { registerBufferMetrics } from '../buffer/buffer-metrics.js';
import { EmitterQueue, type DeliveryOptions } from '../buffer/emitter-queue.js';
import { EmitterQueueMetrics } from '../buffer/emitter-queue-metrics.js';
import { EventBuffer, type EventBufferOptions } from '../buffer/event-buffer.js';
import type { DeliveryQueue } from '../buffer/delivery-queue.js';
import { DurableEmitterQueue } from '../buffer/durable/durable-emitter-queue.js';
import { DurableMetrics } from '../buffer/durable/durable-metrics.js';
import { DurableStore, type DurableOptions } from '../buffer/durable/durable-store.js';
import type { Clock, Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import type { Emitter, EmitterHealth } from '../emit/emitter.js';
import { AckCodes, polkuError, type AckCode } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Ack, IngestBatch } from '../gen/polku/v1/gateway.js';
import type { IngestResult, Ingestor } from '../ingest/ingestor.js';
import { IngestorTable } from '../ingest/ingestor-table.js';
import { admitEvent, eventBytes, type IntakeLimits } from '../ingest/intake-rules.js';
import { createUlidFactory, type UlidFactory } from '../ingest/ulid.js';
import type { WireEvents } from '../ingest/wire-events.js';
import type { Middleware, MiddlewareContext } from '../middleware/middleware.js';
import { RepeatedFailureLog, type Logger } from '../observability/logger.js';
import { DropCounter } from '../observability/metrics.js';
import { BatchOutcome } from './batch-outcome.js';
import { DurableAdmin } from './durable-admin.js';
import { DurableIntake } from './durable-intake.js';
import { HubMetrics } from './hub-metrics.js';
import type { IntakeRequest } from './intake-request.js';
import { intakeOfBatch } from './polku-messages.js';
import { Router } from './router.js';

/** The parts of a pipeline, as the builder collected them. */
export interface PipelineDefinition {
  readonly ingestors: readonly Ingestor[];
  readonly defaultIngestor?: string;
  readonly middleware: readonly Middleware[];
  readonly emitters: ReadonlyArray<{ readonly emitter: Emitter; readonly isDefault: boolean }>;
  /** Durable mode: events are committed to a log on disk before they are acknowledged. */
  readonly durable?: DurableOptions;
}

/** How often durable mode persists cursors and applies retention. */
const MAINTENANCE_INTERVAL_MS = 1_000;

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
}

export interface ComponentStatus {
  readonly healthy: boolean;
  readonly message: string;
}

export interface HubHealth {
  readonly healthy: boolean;
  readonly components: Record<string, ComponentStatus>;
  readonly uptimeSeconds: number;
  readonly eventsProcessed: bigint;
}

export interface DrainReport {
  /** True when every buffered event reached its emitters before the deadline. */
  readonly drained: boolean;
  /** Events still undelivered at the deadline (0 when drained). */
  readonly undelivered: number;
}

/** How a batch's events enter the buffer. */
interface Intake {
  readonly source: string;
  readonly cluster: string;
  readonly receivedAtNs: bigint;
  readonly startedMs: number;
  /** Unary SendEvent never waits for room, whatever the overflow policy. */
  readonly unary: boolean;
  readonly outcome: BatchOutcome;
  /**
   * Events refused retryably after middleware began, with the stage that refused them (a
   * middleware's index, or the middleware count for the buffer). Kept only when some middleware
   * wants to hear of them (`refusedLater`).
   */
  laterRefusals?: Array<{ event: Event; stage: number }>;
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
  readonly buffer: EventBuffer;
  private ingestors: IngestorTable;
  private readonly middleware: readonly Middleware[];
  /** Indices of middleware with a `refusedLater` hook. */
  private readonly undoers: readonly number[];
  /** Durable, and no middleware changes events: they can be stored as the bytes they came in. */
  private readonly wireBytesKept: boolean;
  /** Routes to the in-memory queues (memory mode). */
  private memoryRouter: Router<EmitterQueue>;
  private memoryQueues: readonly EmitterQueue[];
  private readonly components: ComponentContext;
  /** Routes by name to whichever queues run (memory or durable). */
  private router: Router;
  private deliveryQueues: readonly DeliveryQueue[];
  private readonly definition: PipelineDefinition;
  private readonly queueMetrics: EmitterQueueMetrics;
  /** Durable mode's store, once start() opened it. */
  private store: DurableStore | null = null;
  private durableIntake: DurableIntake | null = null;
  private durableQueues: DurableEmitterQueue[] = [];
  private durableMetrics: DurableMetrics | null = null;
  private maintenance: ReturnType<typeof setInterval> | null = null;
  private durableAdmin: DurableAdmin | null = null;
  private started: Promise<void> | null = null;
  private readonly o: HubOptions;
  private readonly log: Logger;
  private readonly drops: DropCounter;
  private readonly metrics: HubMetrics;
  private readonly newId: UlidFactory;
  private readonly startedAtMs: number;
  private accepted = 0n;
  private closing = false;
  private drainRun: Promise<DrainReport> | null = null;

  constructor(definition: PipelineDefinition, options: HubOptions) {
    this.o = options;
    this.log = options.logger.child({ component: 'hub' });
    this.ingestors = new IngestorTable(definition.ingestors, definition.defaultIngestor);
    this.middleware = definition.middleware;
    this.undoers = definition.middleware.flatMap((m, i) => (m.refusedLater ? [i] : []));
    this.wireBytesKept = definition.durable !== undefined && definition.middleware.every((m) => m.keepsEventsUnchanged === true);
    this.drops = new DropCounter(options.registry);
    this.metrics = new HubMetrics(options.registry, options.maxSourceLabels);
    this.buffer = new EventBuffer(options.buffer);
    registerBufferMetrics(options.registry, this.buffer);
    this.definition = definition;
    const queueMetrics = new EmitterQueueMetrics(options.registry, () => this.deliveryQueues);
    this.queueMetrics = queueMetrics;
    const memoryQueues = definition.durable
      ? [] // durable queues need the opened log: start() builds them
      : definition.emitters.map(
          ({ emitter, isDefault }) =>
            new EmitterQueue({
              ...options.delivery,
              emitter,
              isDefault,
              buffer: this.buffer,
              clock: options.clock,
              timers: options.timers,
              metrics: queueMetrics,
              drops: this.drops,
              logger: options.logger,
            }),
        );
    this.memoryQueues = memoryQueues;
    this.deliveryQueues = memoryQueues;
    this.buffer.setEvictionSources(memoryQueues);
    const components: ComponentContext = {
      registry: options.registry,
      logger: options.logger,
      clock: options.clock,
      timers: options.timers,
    };
    this.components = components;
    for (const i of definition.ingestors) i.init?.(components);
    for (const m of definition.middleware) m.init?.(components);
    for (const { emitter } of definition.emitters) emitter.init?.(components);
    this.memoryRouter = new Router(memoryQueues);
    this.router = this.memoryRouter;
    if (definition.durable) {
      this.durableMetrics = new DurableMetrics(
        options.registry,
        () => this.store,
        () => this.durableQueues,
      );
    }
    this.newId = createUlidFactory({ now: () => options.clock.nowMs() });
    this.startedAtMs = options.clock.nowMs();
  }

  /** Each emitter's queue. */
  get queues(): readonly DeliveryQueue[] {
    return this.deliveryQueues;
  }

  /** Durable mode's store (null in memory mode, or before start). */
  get durableStore(): DurableStore | null {
    return this.store;
  }

  /** Replay and dead-letter operations (durable mode, once started; null otherwise). */
  get admin(): DurableAdmin | null {
    return this.durableAdmin;
  }

  /**
   * Gets the hub ready before events arrive. In durable mode it opens the log (recovering from a
   * crash), and each emitter resumes from its persisted cursor. Runs once.
   */
  start(): Promise<void> {
    this.started ??= this.definition.durable ? this.openDurable(this.definition.durable) : Promise.resolve();
    return this.started;
  }

  private async openDurable(options: DurableOptions): Promise<void> {
    const store = await DurableStore.open(options, this.o.clock, this.o.logger);
    this.store = store;
    this.setDurableQueues(this.definition.emitters.map(({ emitter, isDefault }) => this.durableQueue(store, emitter, isDefault)));
    // A new emitter's starting cursor must be on disk before any event is acknowledged, or a
    // crash before the first timed flush would restart it at the end of the log, past them.
    await store.cursors.flush();
    this.durableAdmin = new DurableAdmin(store, () => this.durableQueues, this.durableMetrics!);
    this.durableIntake = new DurableIntake(store, this.durableMetrics!, this.log);
    const failures = new RepeatedFailureLog(this.log, 'durable log maintenance', () => this.o.clock.monotonicMs());
    this.maintenance = setInterval(() => {
      store.maintain(this.durableQueues.map((q) => q.name)).then(
        () => failures.succeeded(),
        (err: unknown) => {
          this.durableMetrics!.maintenanceFailures.inc();
          failures.failed(err);
        },
      );
    }, MAINTENANCE_INTERVAL_MS);
    this.maintenance.unref();
    this.kickQueues(); // resume what was undelivered before the restart
  }

  /**
   * Adds an emitter while running (a plugin that registered or was discovered). Events routed to
   * its name reach it from the next batch on; with `default`, so do events with no route_to.
   */
  addEmitter(emitter: Emitter, registration: { default?: boolean } = {}): void {
    if (this.deliveryQueues.some((q) => q.name === emitter.name)) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `an emitter named "${emitter.name}" is already in the pipeline`);
    }
    emitter.init?.(this.components);
    const isDefault = registration.default ?? false;
    if (this.definition.durable) {
      if (!this.store) throw polkuError('POLKU_ERR_PIPELINE_INVALID', 'emitters can be added to a durable hub only after start()');
      const queue = this.durableQueue(this.store, emitter, isDefault);
      this.setDurableQueues([...this.durableQueues, queue]);
      this.store.cursors.flush().catch((err: unknown) => this.log.error({ err }, 'cursor flush failed'));
      queue.kick();
      return;
    }
    const queue = new EmitterQueue({
      ...this.o.delivery,
      emitter,
      isDefault,
      buffer: this.buffer,
      clock: this.o.clock,
      timers: this.o.timers,
      metrics: this.queueMetrics,
      drops: this.drops,
      logger: this.o.logger,
    });
    this.setMemoryQueues([...this.memoryQueues, queue]);
  }

  /**
   * Takes an emitter out of routing at once (a plugin unregistered, its lease ran out, or its
   * Service went away). In memory mode the events still queued for it are given up and counted
   * `emitter_removed` (a batch in flight finishes); in durable mode they stay in the log, and the
   * emitter resumes from its cursor if it comes back. Returns false when no such emitter runs.
   */
  removeEmitter(name: string): boolean {
    const queue = this.deliveryQueues.find((q) => q.name === name);
    if (!queue) return false;
    if (this.definition.durable) {
      this.setDurableQueues(this.durableQueues.filter((q) => q !== queue));
      queue.abandon();
    } else {
      this.setMemoryQueues(this.memoryQueues.filter((q) => q !== queue));
      this.drops.count('emitter_removed', queue.abandon());
    }
    return true;
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
    return { emitters: this.deliveryQueues.map((q) => q.name), ingestors: this.ingestors.all.map((i) => i.name) };
  }

  private setMemoryQueues(queues: readonly EmitterQueue[]): void {
    this.memoryQueues = queues;
    this.deliveryQueues = queues;
    this.buffer.setEvictionSources(queues);
    this.memoryRouter = new Router(queues);
    this.router = this.memoryRouter;
  }

  private setDurableQueues(queues: DurableEmitterQueue[]): void {
    this.durableQueues = queues;
    this.deliveryQueues = queues;
    this.router = new Router(queues);
  }

  private durableQueue(store: DurableStore, emitter: Emitter, isDefault: boolean): DurableEmitterQueue {
    return new DurableEmitterQueue({
      emitter,
      isDefault,
      store,
      batchSize: this.o.delivery.batchSize,
      clock: this.o.clock,
      timers: this.o.timers,
      metrics: this.queueMetrics,
      deadLettered: this.durableMetrics!.deadLettered,
      logger: this.o.logger,
    });
  }

  /** True once shutdown began; new batches are refused with SHUTTING_DOWN. */
  get isClosing(): boolean {
    return this.closing;
  }

  get limits(): IntakeLimits {
    return this.o.limits;
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
    if (payload.kind === 'unreadable') return this.refuseAll(intake, 1, payload.code, payload.message);
    if (this.closing) return this.refuseAll(intake, 1, 'SHUTTING_DOWN', 'gateway is shutting down');
    if (payload.kind === 'events') return this.afterIngest(intake, payload.events, payload.wire);
    return this.ingestRaw(intake, payload.data, payload.format);
  }

  /** Runs one polku.v1 IngestBatch through the pipeline (embedding and tests; receivers call `submit`). */
  processBatch(batch: IngestBatch, receivedAtNs?: bigint): Ack | Promise<Ack> {
    return this.submit(intakeOfBatch(batch, receivedAtNs));
  }

  async health(): Promise<HubHealth> {
    const components: Record<string, ComponentStatus> = {};
    const b = this.buffer;
    components['buffer'] = {
      healthy: b.size < b.capacity,
      message: `${b.size}/${b.capacity} events, ${b.bytes}/${b.maxBytes} bytes, overflow ${b.overflow}`,
    };
    if (this.store) {
      const s = this.store;
      components['log'] = {
        healthy: !s.full,
        message: `${s.nextSeq - s.log.firstSeq} events, ${s.log.bytes}/${s.o.maxBytes} bytes, ${s.corruptRecords} corrupt records skipped`,
      };
    }
    for (const ingestor of this.ingestors.all) {
      if (!ingestor.health) continue;
      try {
        const h = await ingestor.health();
        components[`ingestor:${ingestor.name}`] = { healthy: h.healthy, message: h.message ?? (h.healthy ? 'ok' : 'unhealthy') };
      } catch (err) {
        components[`ingestor:${ingestor.name}`] = { healthy: false, message: `health check threw: ${String(err)}` };
      }
    }
    const emitterHealth = await Promise.all(this.queues.map((q) => q.health()));
    this.queues.forEach((q, i) => {
      const h: EmitterHealth = emitterHealth[i]!;
      components[`emitter:${q.name}`] = { healthy: h.healthy, message: h.message ?? (h.healthy ? 'ok' : 'unhealthy') };
    });
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
    this.buffer.close();
    for (const q of this.queues) q.startDraining();
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      // A real (ref'd) timer: the drain deadline must hold the process open until it passes.
      deadline = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const idle = Promise.all(this.queues.map((q) => q.whenIdle())).then(() => 'idle' as const);
    const result = await Promise.race([idle, timedOut]);
    clearTimeout(deadline);
    let undelivered = 0;
    if (this.store) {
      // Durable: nothing is lost by stopping; what is undelivered waits in the log for the next start.
      const left = result === 'timeout' ? Math.max(0, ...this.queues.map((q) => q.abandon())) : 0;
      if (this.maintenance) clearInterval(this.maintenance);
      await this.store.close();
      this.log.info({ eventsProcessed: this.accepted.toString(), keptInLog: left }, 'durable log closed');
    } else if (result === 'timeout') {
      undelivered = this.buffer.size;
      for (const q of this.queues) q.abandon();
      this.drops.count('undelivered_at_shutdown', undelivered);
      this.log.error({ undelivered, timeoutMs }, 'shutdown deadline passed with events undelivered');
    } else {
      this.log.info({ eventsProcessed: this.accepted.toString() }, 'buffer drained');
    }
    await Promise.all([
      ...this.queues.map(async (q) => {
        try {
          await q.emitter.shutdown?.();
        } catch (err) {
          this.log.warn({ emitter: q.name, err }, 'emitter shutdown failed');
        }
      }),
      ...this.ingestors.all.map(async (i) => {
        try {
          await i.shutdown?.();
        } catch (err) {
          this.log.warn({ ingestor: i.name, err }, 'ingestor shutdown failed');
        }
      }),
    ]);
    return { drained: result === 'idle', undelivered };
  }

  private startIntake(source: string, cluster: string, receivedAtNs: bigint, unary: boolean): Intake {
    return {
      source,
      cluster,
      receivedAtNs,
      unary,
      startedMs: this.o.clock.monotonicMs(),
      outcome: new BatchOutcome(this.drops),
    };
  }

  private ingestRaw(intake: Intake, data: Uint8Array, format: string): Ack | Promise<Ack> {
    const ingestor = this.ingestors.select(intake.source, format);
    if (!ingestor) {
      return this.refuseAll(
        intake,
        1,
        'UNKNOWN_SOURCE',
        `no ingestor for source "${intake.source}"${format ? ` or format "${format}"` : ' (and no format hint)'}`,
      );
    }
    let result: IngestResult | Promise<IngestResult>;
    try {
      result = ingestor.ingest({ source: intake.source, cluster: intake.cluster, format }, data);
    } catch (err) {
      return this.refuseAll(intake, 1, 'PARSE_ERROR', `ingestor "${ingestor.name}" failed: ${(err as Error).message}`);
    }
    const afterParse = (r: IngestResult): Ack | Promise<Ack> => {
      if (r.unavailable !== undefined) {
        return this.refuseAll(intake, 1, 'INGESTOR_UNAVAILABLE', `ingestor "${ingestor.name}": ${r.unavailable}`);
      }
      for (const p of r.problems) {
        intake.outcome.received++;
        intake.outcome.refuse('', 'PARSE_ERROR', p.offset === undefined ? p.message : `${p.message} (at byte ${p.offset})`);
      }
      return this.afterIngest(intake, r.events);
    };
    if (!isPromise(result)) return afterParse(result);
    return result.then(afterParse, (err: unknown) =>
      this.refuseAll(intake, 1, 'PARSE_ERROR', `ingestor "${ingestor.name}" failed: ${String(err)}`),
    );
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
    const valid: Event[] = [];
    // Which batch position each valid event came from, when its wire bytes can become its log
    // record: durable mode with middleware that at most drop events, so intake's fill-ins are the
    // only changes.
    const wireAt: number[] | undefined = wire && this.wireBytesKept ? [] : undefined;
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
    if (wireAt && this.middleware.length === 0) return this.admitDurable(intake, valid, wire, wireAt);
    const kept = this.runMiddleware(intake, valid);
    if (wireAt) {
      // The middleware returned some of these very objects: find each survivor's batch position.
      const position = new Map<Event, number>();
      for (let j = 0; j < valid.length; j++) position.set(valid[j]!, wireAt[j]!);
      const admitKept = (k: Event[]) =>
        this.admitDurable(
          intake,
          k,
          wire,
          k.map((e) => position.get(e) ?? -1),
        );
      return isPromise(kept) ? kept.then(admitKept) : admitKept(kept);
    }
    if (!isPromise(kept)) return this.admit(intake, kept, 0);
    return kept.then((k) => this.admit(intake, k, 0));
  }

  private runMiddleware(intake: Intake, events: Event[], from = 0): Event[] | Promise<Event[]> {
    const ctx = this.middlewareContext(intake);
    let current = events;
    for (let i = from; i < this.middleware.length && current.length > 0; i++) {
      const step = this.middleware[i]!;
      ctx.step = step.name;
      ctx.stage = i;
      let result: Event[] | Promise<Event[]>;
      try {
        result = step.process(current, ctx);
      } catch (err) {
        return this.middlewareFailed(intake, step, current, err);
      }
      if (isPromise(result)) {
        const pending = current;
        return result.then(
          (next) => this.runMiddleware(intake, next, i + 1),
          (err: unknown) => this.middlewareFailed(intake, step, pending, err),
        );
      }
      current = result;
    }
    return current;
  }

  private middlewareFailed(intake: Intake, step: Middleware, events: Event[], err: unknown): Event[] {
    this.log.error({ middleware: step.name, err }, 'middleware failed; batch refused');
    const message = `middleware "${step.name}" failed: ${err instanceof Error ? err.message : String(err)}`;
    for (const e of events) intake.outcome.refuse(e.id, 'MIDDLEWARE_ERROR', message);
    this.metrics.middlewareDropped(step.name, 'MIDDLEWARE_ERROR', events.length);
    return [];
  }

  private middlewareContext(intake: Intake): MiddlewareContext & { step: string; stage: number } {
    const ctx = {
      source: intake.source,
      cluster: intake.cluster,
      receivedAtNs: intake.receivedAtNs,
      step: '',
      stage: 0,
      drop: (event: Event, code: AckCode, message: string) => {
        intake.outcome.refuse(event.id, code, message);
        this.metrics.middlewareDropped(ctx.step, code);
        if (AckCodes[code].retryable) this.noteLaterRefusal(intake, event, ctx.stage);
      },
    };
    return ctx;
  }

  /** Remembers a retryable refusal for the middleware before `stage` that keep per-event state. */
  private noteLaterRefusal(intake: Intake, event: Event, stage: number): void {
    if (this.undoers.length === 0 || stage <= this.undoers[0]!) return;
    (intake.laterRefusals ??= []).push({ event, stage });
  }

  /**
   * Puts events into the buffer from index `from` on, applying the overflow policy. Under `block`
   * it returns a promise that resumes once room frees up; the caller stops reading the stream
   * meanwhile, so HTTP/2 flow control pushes back on the agent.
   */
  private admit(intake: Intake, events: Event[], from: number): Ack | Promise<Ack> {
    if (this.definition.durable) return this.admitDurable(intake, events);
    const out = intake.outcome;
    const buffer = this.buffer;
    if (this.closing && events.length > from) {
      // Only an asynchronous batch can get here; the caller may resend it elsewhere.
      out.refuseMany(events.length - from, 'SHUTTING_DOWN', 'gateway began shutting down before the batch was buffered');
      for (let j = from; j < events.length; j++) this.noteLaterRefusal(intake, events[j]!, this.middleware.length);
      return this.finish(intake);
    }
    for (let i = from; i < events.length; i++) {
      const event = events[i]!;
      const targets = this.memoryRouter.targetsOf(event);
      if (targets.length === 0) {
        out.refuse(event.id, 'UNROUTABLE', `no emitter named ${JSON.stringify(event.routeTo)}`);
        continue;
      }
      const bytes = eventBytes(event);
      if (!buffer.hasRoomFor(bytes)) {
        if (buffer.overflow === 'block' && !intake.unary) {
          this.kickQueues();
          return buffer.waitForRoom(bytes).then((room) => {
            if (room) return this.admit(intake, events, i);
            out.refuseMany(events.length - i, 'SHUTTING_DOWN', 'gateway is shutting down; events not buffered');
            for (let j = i; j < events.length; j++) this.noteLaterRefusal(intake, events[j]!, this.middleware.length);
            return this.finish(intake);
          });
        }
        if (buffer.overflow === 'drop_oldest') {
          const { evicted, fits } = buffer.evictFor(bytes);
          out.overflowEvicted += evicted;
          this.drops.count('buffer_overflow_evicted', evicted);
          if (!fits) {
            out.refuse(event.id, 'BUFFER_FULL', 'buffer full and every buffered event is in flight');
            this.noteLaterRefusal(intake, event, this.middleware.length);
            continue;
          }
        } else {
          out.refuse(event.id, 'BUFFER_FULL', `buffer full (${buffer.size}/${buffer.capacity} events)`);
          this.noteLaterRefusal(intake, event, this.middleware.length);
          continue;
        }
      }
      buffer.admit(event, bytes, targets);
      out.accept(event.id);
    }
    this.kickQueues();
    return this.finish(intake);
  }

  /** Durable admission (DurableIntake): an event is acknowledged once it is in the log. */
  private admitDurable(intake: Intake, events: Event[], wire?: WireEvents, wireAt?: readonly number[]): Ack | Promise<Ack> {
    const out = intake.outcome;
    if (!this.durableIntake || this.closing) {
      out.refuseMany(events.length, 'SHUTTING_DOWN', this.durableIntake ? 'gateway is shutting down' : 'gateway is still opening its log');
      return this.finish(intake);
    }
    const stored = this.durableIntake.admit({
      events,
      out,
      targetsOf: (e) => this.router.targetsOf(e),
      refusedLater: (e) => this.noteLaterRefusal(intake, e, this.middleware.length),
      wire,
      wireAt,
    });
    const settle = (any: boolean): Ack => {
      if (any) this.kickQueues();
      return this.finish(intake);
    };
    return isPromise(stored) ? stored.then(settle) : settle(stored);
  }

  private finish(intake: Intake): Ack {
    const out = intake.outcome;
    if (intake.laterRefusals) this.undoForLaterRefusals(intake.laterRefusals);
    this.accepted += BigInt(out.eventIds.length);
    this.metrics.recordBatch(intake.source, out.received, out.eventIds.length, (this.o.clock.monotonicMs() - intake.startedMs) / 1000);
    if (this.store) return out.toAck(this.durableBacklog(), this.buffer.capacity);
    return out.toAck(this.buffer.size, this.buffer.capacity);
  }

  /** Durable mode's buffer_size: log records the slowest emitter has not reached. */
  private durableBacklog(): number {
    let most = 0;
    for (const q of this.durableQueues) if (q.depth > most) most = q.depth;
    return most;
  }

  private undoForLaterRefusals(refusals: ReadonlyArray<{ event: Event; stage: number }>): void {
    for (const index of this.undoers) {
      const later = refusals.filter((r) => r.stage > index).map((r) => r.event);
      if (later.length === 0) continue;
      try {
        this.middleware[index]!.refusedLater!(later);
      } catch (err) {
        this.log.error({ middleware: this.middleware[index]!.name, err }, 'refusedLater hook failed');
      }
    }
  }

  private refuseAll(intake: Intake, count: number, code: AckCode, message: string): Ack {
    intake.outcome.received += count;
    intake.outcome.refuseMany(count, code, message);
    return this.finish(intake);
  }

  private kickQueues(): void {
    for (let i = 0; i < this.queues.length; i++) this.queues[i]!.kick();
  }
}
