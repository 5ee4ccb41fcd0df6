import type { Event } from '../gen/polku/v1/event.js';
import type { TenantShare } from '../tenants/tenant.js';
import type { BufferedEvent } from './buffered-event.js';

/** What happens when an event arrives and the buffer is full. */
export type OverflowPolicy = 'reject' | 'drop_oldest' | 'block';
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['reject', 'drop_oldest', 'block'];

export interface EventBufferOptions {
  /** Most events held at once. */
  capacity: number;
  /** Most bytes (approximate event sizes) held at once. */
  maxBytes: number;
  overflow: OverflowPolicy;
}

/** The part of an emitter queue the buffer needs: its pending (not in flight) events, oldest first. */
export interface EvictionSource {
  /** The oldest event waiting in this queue, if any. */
  oldestPending(): BufferedEvent | undefined;
  /** Removes that event from this queue: the queue gives up on it (drop_oldest). */
  dropOldestPending(): void;
}

/** What `evictFor` did. */
export interface Eviction {
  /** Queue entries given up on (an event waiting in two queues can count twice). */
  readonly evicted: number;
  /** Whether the event now fits. */
  readonly fits: boolean;
}

/** Receives events as they are admitted; implemented by emitter queues. */
export interface AdmissionTarget extends EvictionSource {
  enqueue(buffered: BufferedEvent): void;
}

/**
 * The bounded store between intake and the emitter queues.
 *
 * One {@link BufferedEvent} per accepted event is shared by every queue the event was routed to,
 * so memory is counted once however many emitters there are. An event leaves the buffer when all
 * of its queues have settled it, or when `drop_oldest` evicts it. `size` and `bytes` are therefore
 * exactly what the Ack reports as `buffer_size`: events accepted and not yet done with.
 */
/** The buffer's figures at one moment. */
export interface BufferSnapshot {
  readonly events: number;
  readonly bytes: number;
  readonly capacity: number;
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;
  /** Batches waiting for room under the `block` policy. */
  readonly blockedWriters: number;
}

export class EventBuffer {
  readonly capacity: number;
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;
  private count = 0;
  private byteCount = 0;
  private nextSeq = 0;
  private sources: EvictionSource[] = [];
  private waiters: Array<{ bytes: number; resolve: (room: boolean) => void }> = [];
  private closed = false;

  constructor(options: EventBufferOptions) {
    this.capacity = options.capacity;
    this.maxBytes = options.maxBytes;
    this.overflow = options.overflow;
  }

  /** Events held. */
  get size(): number {
    return this.count;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.byteCount;
  }

  /** Batches waiting for room under the `block` policy (each has stopped reading its stream). */
  get blockedWriters(): number {
    return this.waiters.length;
  }

  /** The buffer's line in the hub's health: full is unhealthy. */
  status(): { healthy: boolean; message: string } {
    return {
      healthy: this.count < this.capacity,
      message: `${this.count}/${this.capacity} events, ${this.byteCount}/${this.maxBytes} bytes, overflow ${this.overflow}`,
    };
  }

  /** A snapshot of the buffer's figures (`hub.stats().buffer`). */
  snapshot(): BufferSnapshot {
    return {
      events: this.count,
      bytes: this.byteCount,
      capacity: this.capacity,
      maxBytes: this.maxBytes,
      overflow: this.overflow,
      blockedWriters: this.waiters.length,
    };
  }

  /** Queues whose pending events `drop_oldest` may evict. */
  setEvictionSources(sources: readonly EvictionSource[]): void {
    this.sources = [...sources];
  }

  hasRoomFor(bytes: number): boolean {
    return this.count < this.capacity && this.byteCount + bytes <= this.maxBytes;
  }

  /**
   * Evicts the oldest waiting events until an event of `bytes` fits. Eviction takes an event out
   * of a queue that has not started sending it; its room frees once no queue holds it any more,
   * so an event another emitter has in flight keeps counting until that emitter is done. When
   * nothing is left to evict and there is still no room, `fits` is false.
   */
  evictFor(bytes: number): Eviction {
    let evicted = 0;
    while (!this.hasRoomFor(bytes)) {
      const source = this.sourceWithOldest();
      if (!source) return { evicted, fits: false };
      const victim = source.oldestPending()!;
      source.dropOldestPending();
      this.settle(victim);
      evicted++;
    }
    return { evicted, fits: true };
  }

  /**
   * Takes an event in and hands it to each of its target queues. With a tenant's `share`, the
   * event counts against that share too until it is released.
   */
  admit(event: Event, bytes: number, targets: readonly AdmissionTarget[], share?: TenantShare, atMs = 0): BufferedEvent {
    const buffered: BufferedEvent = { event, bytes, seq: this.nextSeq++, refs: targets.length, released: false, share, atMs };
    this.count++;
    this.byteCount += bytes;
    if (share !== undefined) {
      share.events++;
      share.bytes += bytes;
    }
    for (let i = 0; i < targets.length; i++) targets[i]!.enqueue(buffered);
    return buffered;
  }

  /** A queue is done with the event (delivered, or given up on). The last one frees its room. */
  settle(buffered: BufferedEvent): void {
    if (--buffered.refs === 0) this.release(buffered);
  }

  /**
   * Resolves once an event of `bytes` would fit (true), or once the buffer closes (false).
   * Waiters are served in arrival order so a stream that blocked first is admitted first.
   */
  waitForRoom(bytes: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.waiters.length === 0 && this.hasRoomFor(bytes)) return Promise.resolve(true);
    return new Promise((resolve) => this.waiters.push({ bytes, resolve }));
  }

  /** Stops admitting waiters: every pending `waitForRoom` resolves false. */
  close(): void {
    this.closed = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(false);
  }

  private release(buffered: BufferedEvent): void {
    buffered.released = true;
    this.count--;
    this.byteCount -= buffered.bytes;
    const share = buffered.share;
    if (share !== undefined) {
      share.events--;
      share.bytes -= buffered.bytes;
    }
    if (this.waiters.length > 0) this.wakeWaiters();
  }

  private wakeWaiters(): void {
    while (this.waiters.length > 0 && this.hasRoomFor(this.waiters[0]!.bytes)) {
      this.waiters.shift()!.resolve(true);
    }
  }

  private sourceWithOldest(): EvictionSource | undefined {
    let oldest: BufferedEvent | undefined;
    let from: EvictionSource | undefined;
    for (const source of this.sources) {
      const head = source.oldestPending();
      if (head && (!oldest || head.seq < oldest.seq)) {
        oldest = head;
        from = source;
      }
    }
    return from;
  }
}
