import { registerBufferMetrics } from '../buffer/buffer-metrics.js';
import { EventBuffer } from '../buffer/event-buffer.js';
import type { Emitter } from '../emit/emitter.js';
import type { Event } from '../gen/polku/v1/event.js';
import { attachWireBytes } from '../ingest/event-wire-bytes.js';
import { eventBytes } from '../ingest/intake-rules.js';
import type { Logger } from '../observability/logger.js';
import type { DropCounter } from '../observability/metrics.js';
import type {
  Admission,
  BackendOptions,
  ComponentStatus,
  DeliveryBackend,
  DeliveryStats,
  DrainReport,
  RetireReport,
} from './delivery-backend.js';
import { drainQueues, emitterHealthOf, retireQueue, shutdownEmitters } from './delivery-queue.js';
import { EmitterQueue } from './emitter-queue.js';
import { EmitterQueueMetrics } from './emitter-queue-metrics.js';
import { Router } from './router.js';

export interface MemoryBackendOptions extends BackendOptions {
  /** The hub's drop counter: evictions, removed emitters and shutdown losses are counted there. */
  drops: DropCounter;
}

/**
 * In-memory delivery: a bounded {@link EventBuffer} shared by one {@link EmitterQueue} per emitter.
 * When the buffer is full the overflow policy decides: `reject` refuses the event BUFFER_FULL,
 * `drop_oldest` evicts the oldest events no queue has in flight, `block` makes a streamed batch wait
 * for room (so HTTP/2 flow control pushes back on the agent). Events still held at the shutdown
 * deadline are lost, and counted.
 */
export class MemoryBackend implements DeliveryBackend {
  readonly admin = null;
  /** Some emitter sends events as protobuf (`Emitter.wantsWireBytes`): see {@link storesWireBytes}. */
  private wireWanted = false;
  private readonly buffer: EventBuffer;
  private readonly o: MemoryBackendOptions;
  private readonly log: Logger;
  private readonly queueMetrics: EmitterQueueMetrics;
  private queues: readonly EmitterQueue[];
  private router: Router<EmitterQueue>;
  private closing = false;

  constructor(options: MemoryBackendOptions) {
    this.o = options;
    // The hub's own lines (drain), as they were before delivery moved out of it.
    this.log = options.logger.child({ component: 'hub' });
    this.buffer = new EventBuffer(options.buffer);
    registerBufferMetrics(options.registry, this.buffer);
    this.queueMetrics = new EmitterQueueMetrics(options.registry, () => this.queues);
    this.queues = options.emitters.map(({ emitter, isDefault }) => this.queueFor(emitter, isDefault));
    this.wireWanted = this.queues.some((q) => q.emitter.wantsWireBytes === true);
    this.router = new Router(this.queues);
    this.buffer.setEvictionSources(this.queues);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * True while an emitter wants the bytes events arrived in (the plugin emitter): the hub then
   * passes a batch's WireEvents with it when nothing changes its events, and each accepted event
   * keeps its own bytes (src/ingest/event-wire-bytes.ts), copied into EmitRequests instead of
   * encoded. False otherwise, so a pipeline without such an emitter pays nothing for it.
   */
  get storesWireBytes(): boolean {
    return this.wireWanted;
  }

  /**
   * Puts events into the buffer from index `from` on, applying the overflow policy. Under `block`
   * it returns a promise that resumes once room frees up.
   */
  admit(admission: Admission, from = 0): void | Promise<void> {
    const { events, outcome: out, share } = admission;
    const buffer = this.buffer;
    const wire = admission.wire;
    const wireAt = wire === undefined ? undefined : admission.wireAt;
    // One clock read per batch: the admission time tenants' delivery lag is measured from.
    const atMs = share === undefined ? 0 : this.o.clock.nowMs();
    if (this.closing && events.length > from) {
      // Only an asynchronous batch can get here; the caller may resend it elsewhere.
      out.refuseMany(events.length - from, 'SHUTTING_DOWN', 'gateway began shutting down before the batch was buffered');
      for (let j = from; j < events.length; j++) admission.refusedLater(events[j]!);
      return;
    }
    for (let i = from; i < events.length; i++) {
      const event = events[i]!;
      const targets = this.router.targetsOf(event);
      if (targets.length === 0) {
        out.refuse(event.id, 'UNROUTABLE', `no emitter named ${JSON.stringify(event.routeTo)}`);
        continue;
      }
      const bytes = eventBytes(event);
      if (share !== undefined && (share.events >= share.maxEvents || share.bytes + bytes > share.maxBytes)) {
        // The tenant's own share is full: refused whatever the overflow policy, so that neither
        // waiting nor evicting lets one tenant take room from the others.
        out.refuse(
          event.id,
          'BUFFER_FULL',
          `tenant "${share.name}" buffer share full (${share.events}/${share.maxEvents} events, ${share.bytes}/${share.maxBytes} bytes)`,
        );
        admission.refusedLater(event);
        continue;
      }
      if (!buffer.hasRoomFor(bytes)) {
        if (buffer.overflow === 'block' && !admission.unary) {
          this.kickQueues();
          return buffer.waitForRoom(bytes).then((room) => {
            if (room) return this.admit(admission, i);
            out.refuseMany(events.length - i, 'SHUTTING_DOWN', 'gateway is shutting down; events not buffered');
            for (let j = i; j < events.length; j++) admission.refusedLater(events[j]!);
          });
        }
        if (!this.overflowed(admission, event, bytes)) continue;
      }
      if (wireAt !== undefined && wireAt[i]! >= 0) attachWireBytes(event, wire!, wireAt[i]!);
      buffer.admit(event, bytes, targets, share, atMs);
      out.accept(event.id);
    }
    this.kickQueues();
  }

  /** Applies `reject` or `drop_oldest` to an event that does not fit; true when it fits now. */
  private overflowed(admission: Admission, event: Event, bytes: number): boolean {
    const out = admission.outcome;
    const buffer = this.buffer;
    if (buffer.overflow === 'drop_oldest') {
      const { evicted, fits } = buffer.evictFor(bytes);
      out.overflowEvicted += evicted;
      this.o.drops.count('buffer_overflow_evicted', evicted);
      if (fits) return true;
      out.refuse(event.id, 'BUFFER_FULL', 'buffer full and every buffered event is in flight');
    } else {
      out.refuse(event.id, 'BUFFER_FULL', `buffer full (${buffer.size}/${buffer.capacity} events)`);
    }
    admission.refusedLater(event);
    return false;
  }

  addEmitter(emitter: Emitter, isDefault: boolean): void {
    this.setQueues([...this.queues, this.queueFor(emitter, isDefault)]);
  }

  removeEmitter(name: string): boolean {
    const queue = this.queues.find((q) => q.name === name);
    if (!queue) return false;
    this.setQueues(this.queues.filter((q) => q !== queue));
    this.o.drops.count('emitter_removed', queue.abandon());
    return true;
  }

  retireEmitter(name: string, timeoutMs: number): Promise<RetireReport> | undefined {
    const queue = this.queues.find((q) => q.name === name);
    if (!queue) return undefined;
    this.setQueues(this.queues.filter((q) => q !== queue));
    return retireQueue(queue, timeoutMs, this.log).then((abandoned) => {
      if (abandoned > 0) {
        this.o.drops.count('emitter_removed', abandoned);
        this.log.warn({ emitter: name, abandoned, timeoutMs }, 'reload: a retired emitter still held events at the deadline; given up');
      }
      return { name, abandoned, keptInLog: 0 };
    });
  }

  get emitterNames(): readonly string[] {
    return this.queues.map((q) => q.name);
  }

  emitter(name: string): Emitter | undefined {
    return this.queues.find((q) => q.name === name)?.emitter;
  }

  storageHealth(): Record<string, ComponentStatus> {
    const b = this.buffer;
    return {
      buffer: b.status(),
    };
  }

  emitterHealth(): Promise<Record<string, ComponentStatus>> {
    return emitterHealthOf(this.queues);
  }

  async drain(timeoutMs: number): Promise<DrainReport> {
    this.closing = true;
    this.buffer.close();
    const queues = this.queues;
    const result = await drainQueues(queues, timeoutMs);
    let undelivered = 0;
    if (result === 'timeout') {
      undelivered = this.buffer.size;
      for (const q of queues) q.abandon();
      this.o.drops.count('undelivered_at_shutdown', undelivered);
      this.log.error({ undelivered, timeoutMs }, 'shutdown deadline passed with events undelivered');
    } else {
      this.log.info({ eventsProcessed: this.o.eventsProcessed().toString() }, 'buffer drained');
    }
    await shutdownEmitters(queues, this.log);
    return { drained: result === 'idle', undelivered };
  }

  whenIdle(emitter: string): Promise<void> {
    return this.queues.find((q) => q.name === emitter)?.whenIdle() ?? Promise.resolve();
  }

  stats(): DeliveryStats {
    const b = this.buffer;
    return {
      buffer: b.snapshot(),
      emitters: this.queues.map((q) => ({ name: q.name, isDefault: q.isDefault, depth: q.depth, inFlight: q.inFlightCount })),
      durable: null,
    };
  }

  /** Seconds since each tenant's oldest undelivered event was admitted, over all queues. */
  readonly tenantLag = (nowMs: number): ReadonlyMap<string, number> => {
    const oldest = new Map<string, number>();
    for (const q of this.queues) q.oldestByTenant(oldest);
    const lag = new Map<string, number>();
    for (const [name, atMs] of oldest) lag.set(name, Math.max(0, (nowMs - atMs) / 1000));
    return lag;
  };

  get bufferSize(): number {
    return this.buffer.size;
  }

  get bufferCapacity(): number {
    return this.buffer.capacity;
  }

  private queueFor(emitter: Emitter, isDefault: boolean): EmitterQueue {
    return new EmitterQueue({
      ...this.o.delivery,
      emitter,
      isDefault,
      buffer: this.buffer,
      clock: this.o.clock,
      timers: this.o.timers,
      metrics: this.queueMetrics,
      drops: this.o.drops,
      logger: this.o.logger,
      taps: this.o.taps,
    });
  }

  private setQueues(queues: readonly EmitterQueue[]): void {
    this.queues = queues;
    this.wireWanted = queues.some((q) => q.emitter.wantsWireBytes === true);
    this.buffer.setEvictionSources(queues);
    this.router = new Router(queues);
  }

  private kickQueues(): void {
    const queues = this.queues;
    for (let i = 0; i < queues.length; i++) queues[i]!.kick();
  }
}
