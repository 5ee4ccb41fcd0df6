import { registerBufferMetrics } from '../buffer/buffer-metrics.js';
import { DurableMetrics } from './durable-metrics.js';
import { DURABLE_DEFAULTS, DurableStore, type DurableOptions } from '../buffer/durable/durable-store.js';
import type { StreamWindow } from '../hub/intake-request.js';
import { EventBuffer } from '../buffer/event-buffer.js';
import { batchSizeOf, type Emitter } from '../emit/emitter.js';
import { polkuError } from '../errors.js';
import { RepeatedFailureLog, type Logger } from '../observability/logger.js';
import type {
  Admission,
  BackendOptions,
  ComponentStatus,
  DeliveryBackend,
  DeliveryStats,
  DrainReport,
  RetireReport,
} from './delivery-backend.js';
import { drainQueues, emitterHealthOf, shutdownEmitters } from './delivery-queue.js';
import { DurableAdmin } from './durable-admin.js';
import { DurableEmitterQueue } from './durable-emitter-queue.js';
import { DurableIntake } from './durable-intake.js';
import { EmitterQueueMetrics } from './emitter-queue-metrics.js';
import { Router } from './router.js';

/** How often durable mode persists cursors and applies retention. */
const MAINTENANCE_INTERVAL_MS = 1_000;

/**
 * The configured in-memory buffer (`buffer`) holds no events in durable mode, but its capacity is
 * the Ack's `buffer_capacity`, and its health line and `polku_buffer_*` series are reported as in
 * memory mode (all at zero), so dashboards read the same in both modes. The emitters' queues are
 * built once the log is open.
 */
export interface DurableBackendOptions extends BackendOptions {
  durable: DurableOptions;
}

/**
 * Durable delivery: an event is acknowledged once it is in the log on disk, and each emitter
 * reads the log from its own persisted cursor ({@link DurableEmitterQueue}), so nothing accepted is
 * lost by a crash or a restart. Owns the store, idempotent admission, the admin operations, the
 * durable metrics and the maintenance timer (cursor flushes, retention).
 */
export class DurableBackend implements DeliveryBackend {
  readonly storesWireBytes = true;
  /** A stream's batches waiting for their group commit at once (the Acks still go out in order). */
  readonly streamWindow: StreamWindow;
  private readonly o: DurableBackendOptions;
  private readonly log: Logger;
  private readonly idleBuffer: EventBuffer;
  private readonly queueMetrics: EmitterQueueMetrics;
  private readonly metrics: DurableMetrics;
  private queues: DurableEmitterQueue[] = [];
  private router = new Router<DurableEmitterQueue>([]);
  /** Set once start() opened the log. */
  private opened: { store: DurableStore; intake: DurableIntake; admin: DurableAdmin } | null = null;
  private maintenance: ReturnType<typeof setInterval> | null = null;
  private closing = false;

  constructor(options: DurableBackendOptions) {
    this.o = options;
    // The hub's own lines (drain), as they were before delivery moved out of it.
    this.log = options.logger.child({ component: 'hub' });
    this.streamWindow = {
      batches: options.durable.streamWindowBatches ?? DURABLE_DEFAULTS.streamWindowBatches,
      bytes: options.durable.streamWindowBytes ?? DURABLE_DEFAULTS.streamWindowBytes,
    };
    this.idleBuffer = new EventBuffer(options.buffer);
    registerBufferMetrics(options.registry, this.idleBuffer);
    this.queueMetrics = new EmitterQueueMetrics(options.registry, () => this.queues);
    this.metrics = new DurableMetrics(
      options.registry,
      () => this.opened?.store ?? null,
      () => this.queues,
    );
  }

  get admin(): DurableAdmin | null {
    return this.opened?.admin ?? null;
  }

  /** Opens the log (recovering from a crash); each emitter resumes from its persisted cursor. */
  async start(): Promise<void> {
    const store = await DurableStore.open(this.o.durable, this.o.clock, this.o.logger);
    store.log.onCommit = this.metrics.commit;
    this.setQueues(this.o.emitters.map(({ emitter, isDefault }) => this.queueFor(store, emitter, isDefault)));
    // A new emitter's starting cursor must be on disk before any event is acknowledged, or a
    // crash before the first timed flush would restart it at the end of the log, past them.
    await store.cursors.flush();
    this.opened = {
      store,
      intake: new DurableIntake(store, this.metrics, this.log),
      admin: new DurableAdmin(store, () => this.queues, this.metrics),
    };
    const failures = new RepeatedFailureLog(this.log, 'durable log maintenance', () => this.o.clock.monotonicMs());
    this.maintenance = setInterval(() => {
      store.maintain(this.queues.map((q) => q.name)).then(
        () => failures.succeeded(),
        (err: unknown) => {
          this.metrics.maintenanceFailures.inc();
          failures.failed(err);
        },
      );
    }, MAINTENANCE_INTERVAL_MS);
    this.maintenance.unref();
    this.kickQueues(); // resume what was undelivered before the restart
  }

  /** Durable admission ({@link DurableIntake}): an event is acknowledged once it is in the log. */
  admit(admission: Admission): void | Promise<void> {
    const { events, outcome: out } = admission;
    if (!this.opened || this.closing) {
      out.refuseMany(events.length, 'SHUTTING_DOWN', this.opened ? 'gateway is shutting down' : 'gateway is still opening its log');
      return;
    }
    const stored = this.opened.intake.admit({
      events,
      out,
      targetsOf: (e) => this.router.targetsOf(e),
      refusedLater: admission.refusedLater,
      wire: admission.wire,
      wireAt: admission.wireAt,
    });
    if (typeof stored === 'boolean') {
      if (stored) this.kickQueues();
      return;
    }
    return stored.then((any) => {
      if (any) this.kickQueues();
    });
  }

  addEmitter(emitter: Emitter, isDefault: boolean): void {
    const store = this.opened?.store;
    if (!store) throw polkuError('POLKU_ERR_PIPELINE_INVALID', 'emitters can be added to a durable hub only after start()');
    const queue = this.queueFor(store, emitter, isDefault);
    this.setQueues([...this.queues, queue]);
    store.cursors.flush().catch((err: unknown) => this.log.error({ err }, 'cursor flush failed'));
    queue.kick();
  }

  /** The emitter's events stay in the log; it resumes from its cursor if it comes back. */
  removeEmitter(name: string): boolean {
    const queue = this.queues.find((q) => q.name === name);
    if (!queue) return false;
    this.setQueues(this.queues.filter((q) => q !== queue));
    queue.abandon();
    return true;
  }

  retireEmitter(name: string, timeoutMs: number): Promise<RetireReport> | undefined {
    const queue = this.queues.find((q) => q.name === name);
    if (!queue) return undefined;
    this.setQueues(this.queues.filter((q) => q !== queue));
    // The backlog stays behind the cursor; a queue of the same name added now resumes there. A
    // batch in flight may be sent again by it (at least once, as after a crash).
    const keptInLog = queue.abandon();
    return queue.stopped(timeoutMs).then(async () => {
      await shutdownEmitters([queue], this.log);
      return { name, abandoned: 0, keptInLog };
    });
  }

  get emitterNames(): readonly string[] {
    return this.queues.map((q) => q.name);
  }

  emitter(name: string): Emitter | undefined {
    return this.queues.find((q) => q.name === name)?.emitter;
  }

  storageHealth(): Record<string, ComponentStatus> {
    const b = this.idleBuffer;
    const components: Record<string, ComponentStatus> = {
      buffer: b.status(),
    };
    const s = this.opened?.store;
    if (s) {
      components['log'] = {
        healthy: !s.full,
        message: `${s.nextSeq - s.log.firstSeq} events, ${s.log.bytes}/${s.o.maxBytes} bytes, ${s.corruptRecords} corrupt records skipped`,
      };
    }
    return components;
  }

  emitterHealth(): Promise<Record<string, ComponentStatus>> {
    return emitterHealthOf(this.queues);
  }

  /** Nothing is lost by stopping: what is undelivered waits in the log for the next start. */
  async drain(timeoutMs: number): Promise<DrainReport> {
    this.closing = true;
    this.idleBuffer.close();
    const queues = this.queues;
    const result = await drainQueues(queues, timeoutMs);
    const store = this.opened?.store;
    if (store) {
      const left = result === 'timeout' ? Math.max(0, ...queues.map((q) => q.abandon())) : 0;
      if (this.maintenance) clearInterval(this.maintenance);
      await store.close();
      this.log.info({ eventsProcessed: this.o.eventsProcessed().toString(), keptInLog: left }, 'durable log closed');
    }
    await shutdownEmitters(queues, this.log);
    return { drained: result === 'idle', undelivered: 0 };
  }

  whenIdle(emitter: string): Promise<void> {
    return this.queues.find((q) => q.name === emitter)?.whenIdle() ?? Promise.resolve();
  }

  stats(): DeliveryStats {
    const b = this.idleBuffer;
    const s = this.opened?.store;
    return {
      buffer: b.snapshot(), // holds no events in durable mode: all zero but the configuration
      emitters: this.queues.map((q) => ({ name: q.name, isDefault: q.isDefault, depth: q.depth, inFlight: q.inFlightCount })),
      durable: s
        ? {
            nextSeq: s.nextSeq,
            firstSeq: s.log.firstSeq,
            bytes: s.log.bytes,
            maxBytes: s.o.maxBytes,
            full: s.full,
            corruptRecords: s.corruptRecords,
          }
        : null,
    };
  }

  /** Log records the slowest emitter has not reached. */
  get bufferSize(): number {
    let most = 0;
    for (const q of this.queues) if (q.depth > most) most = q.depth;
    return most;
  }

  get bufferCapacity(): number {
    return this.idleBuffer.capacity;
  }

  private queueFor(store: DurableStore, emitter: Emitter, isDefault: boolean): DurableEmitterQueue {
    return new DurableEmitterQueue({
      emitter,
      isDefault,
      store,
      batchSize: batchSizeOf(emitter, this.o.delivery.batchSize),
      clock: this.o.clock,
      timers: this.o.timers,
      metrics: this.queueMetrics,
      deadLettered: this.metrics.deadLettered,
      logger: this.o.logger,
      taps: this.o.taps,
    });
  }

  private setQueues(queues: DurableEmitterQueue[]): void {
    this.queues = queues;
    this.router = new Router(queues);
  }

  private kickQueues(): void {
    const queues = this.queues;
    for (let i = 0; i < queues.length; i++) queues[i]!.kick();
  }
}
