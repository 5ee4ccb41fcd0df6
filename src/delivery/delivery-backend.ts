import type { Registry } from 'prom-client';
import type { BufferSnapshot, EventBufferOptions } from '../buffer/event-buffer.js';
import type { Clock, Timers } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { DeliveryOptions } from './emitter-queue.js';
import type { Emitter } from '../emit/emitter.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { BatchOutcome } from '../hub/batch-outcome.js';
import type { StreamWindow } from '../hub/intake-request.js';
import type { WireEvents } from '../ingest/wire-events.js';
import type { TenantShare } from '../tenants/tenant.js';
import type { DurableAdmin } from './durable-admin.js';
import type { Taps } from '../hub/taps.js';

/** What both backends are built from: the pipeline's emitters and the process's services. */
export interface BackendOptions {
  /** The configured in-memory buffer (durable mode keeps its figures for the Ack and dashboards). */
  buffer: EventBufferOptions;
  delivery: DeliveryOptions;
  /** The pipeline's emitters, in order. */
  emitters: ReadonlyArray<{ readonly emitter: Emitter; readonly isDefault: boolean }>;
  registry: Registry;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** Events the hub accepted so far, for the shutdown log line. */
  eventsProcessed: () => bigint;
  /** Where delivered batches are offered to `polku tap` readers (emitter tap points). */
  taps?: Taps | undefined;
}

/** One component's line in the hub's health. */
export interface ComponentStatus {
  readonly healthy: boolean;
  readonly message: string;
}

export interface DrainReport {
  /** True when every buffered event reached its emitters before the deadline. */
  readonly drained: boolean;
  /** Events still undelivered at the deadline (0 when drained). */
  readonly undelivered: number;
}

/** The events of one batch that got through ingest, limits and middleware. */
export interface Admission {
  readonly events: readonly Event[];
  /** Where each event's fate is recorded; the hub turns it into the Ack. */
  readonly outcome: BatchOutcome;
  /** Unary SendEvent never waits for room, whatever the overflow policy. */
  readonly unary: boolean;
  /** Called for each event refused with a retryable code after middleware had let it through. */
  readonly refusedLater: (event: Event) => void;
  /** The batch as it came in, when the backend may store its bytes (see `storesWireBytes`). */
  readonly wire?: WireEvents | undefined;
  /** Each event's position in `wire`'s batch (-1: its wire bytes are not usable). */
  readonly wireAt?: readonly number[] | undefined;
  /** The caller's tenant's slice of the buffer (tenants configured; memory mode enforces it). */
  readonly share?: TenantShare | undefined;
}

/** One emitter's delivery, as `stats()` reports it. */
export interface EmitterStats {
  readonly name: string;
  /** Whether events with an empty `route_to` go to this emitter. */
  readonly isDefault: boolean;
  /** Events waiting for, in or retrying delivery (durable: log records past its cursor). */
  readonly depth: number;
  /** Events of the batch being sent now (0 when none is). */
  readonly inFlight: number;
}

/** The in-memory buffer's figures (configured but idle in durable mode). */
export type BufferStats = BufferSnapshot;

/** The durable log's figures. */
export interface DurableLogStats {
  /** Sequence number the next stored event gets. */
  readonly nextSeq: number;
  /** Oldest sequence number still in the log. */
  readonly firstSeq: number;
  readonly bytes: number;
  readonly maxBytes: number;
  /** True while the log refuses new events (STORAGE_FULL). */
  readonly full: boolean;
  readonly corruptRecords: number;
}

/** What retiring an emitter left behind. */
export interface RetireReport {
  readonly name: string;
  /** Events given up (memory mode, still held at the deadline). */
  readonly abandoned: number;
  /** Events left in the durable log behind the emitter's cursor. */
  readonly keptInLog: number;
}

/** A snapshot of delivery, taken when asked (nothing here is kept up to date on the hot path). */
export interface DeliveryStats {
  readonly buffer: BufferStats;
  /** Running emitters, in registration order. */
  readonly emitters: readonly EmitterStats[];
  /** The log's figures in durable mode, else null. */
  readonly durable: DurableLogStats | null;
}

/**
 * Where accepted events go: the hub's one dependency for delivery, in memory or durable. The hub
 * picks one when it is built and never asks which it has; everything that differs between the
 * modes (routing, room, overflow, the log, retries, shutdown) lives behind this.
 */
export interface DeliveryBackend {
  /**
   * Gets ready before the first event (the durable backend opens its log, recovering from a crash,
   * and resumes each emitter from its cursor). Called once.
   */
  start(): Promise<void>;
  /**
   * True when the backend uses a batch's wire bytes (durable: as its log records; memory: kept on
   * the events for an emitter that sends them as protobuf, while one runs), so the hub should pass
   * them along when no middleware changes events. The hub reads it again when emitters come and go.
   */
  readonly storesWireBytes: boolean;
  /** Seconds since each tenant's oldest undelivered event was accepted (memory mode; durable has none). */
  readonly tenantLag?: (nowMs: number) => ReadonlyMap<string, number>;
  /**
   * How many of one stream's batches may wait for their admission at once (durable: their group
   * commit), so a stream's next batches can join the next commit. Undefined: one at a time.
   */
  readonly streamWindow?: StreamWindow | undefined;
  /**
   * Routes each event and accepts or refuses it in `admission.outcome`, then starts delivery.
   * Synchronous in memory unless the `block` policy must wait for room; a promise in durable mode
   * (the Ack waits for the log). The common in-memory batch costs no promise.
   */
  admit(admission: Admission): void | Promise<void>;
  /**
   * Adds an emitter while running; events routed to it reach it from the next batch on. Throws
   * when the backend is not ready for it (durable, before start()).
   */
  addEmitter(emitter: Emitter, isDefault: boolean): void;
  /**
   * Takes an emitter out of routing at once. In memory the events still queued for it are given
   * up (counted `emitter_removed`); in durable mode they stay in the log. False when none runs.
   */
  removeEmitter(name: string): boolean;
  /**
   * Takes an emitter out of routing at once (a reload replaced or removed it) and lets its queue
   * finish: in memory it sends what it holds to this emitter within `timeoutMs` (what is left then
   * is given up, counted `emitter_removed`); durable, it stops after the batch in flight and its
   * backlog stays in the log behind its cursor, for an emitter of the same name added next. Then
   * the emitter shuts down. Undefined when no such emitter runs.
   */
  retireEmitter(name: string, timeoutMs: number): Promise<RetireReport> | undefined;
  /** Names of the running emitters, in registration order. */
  readonly emitterNames: readonly string[];
  /** The running emitter of that name, if any. */
  emitter(name: string): Emitter | undefined;
  /** Health of what holds events: `buffer`, and `log` when durable. Cheap and synchronous. */
  storageHealth(): Record<string, ComponentStatus>;
  /** Each running emitter's health, keyed `emitter:<name>`. */
  emitterHealth(): Promise<Record<string, ComponentStatus>>;
  /**
   * Stops taking events, delivers what is held within `timeoutMs`, then shuts the emitters down.
   * Events undelivered at the deadline are given up in memory (and counted), kept in the log when
   * durable. Called once.
   */
  drain(timeoutMs: number): Promise<DrainReport>;
  /** A snapshot of buffer, emitter queues and log. */
  stats(): DeliveryStats;
  /** Resolves once that emitter's queue is idle (at once when no such emitter runs). */
  whenIdle(emitter: string): Promise<void>;
  /** The Ack's `buffer_size`: events held in memory, or the slowest emitter's log backlog. */
  readonly bufferSize: number;
  /** The Ack's `buffer_capacity`. */
  readonly bufferCapacity: number;
  /** Replay and dead-letter operations: durable mode once started, else null. */
  readonly admin: DurableAdmin | null;
}
