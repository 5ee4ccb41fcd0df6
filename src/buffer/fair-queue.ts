import type { BufferedEvent } from './buffered-event.js';
import { Deque } from './deque.js';

/** One tenant's events in a queue (lane 0: events of no tenant). */
interface Lane {
  readonly items: Deque<BufferedEvent>;
  /** Events the lane may still take this round (deficit round robin). */
  deficit: number;
  /** Whether the lane is in the active ring. */
  active: boolean;
  /** Read live from the tenant's share, so a reload's new rate applies at the next round. */
  quantum(): number;
}

/**
 * An emitter queue's pending events, one FIFO lane per tenant, taken by deficit round robin.
 *
 * Each round a lane with events earns its quantum (proportional to the tenant's rate) and hands
 * over that many, oldest first; an emptied lane leaves the ring and forfeits its deficit. So a
 * tenant with a backlog (it filled its buffer share while the emitter was slow) cannot keep a
 * quiet tenant's events waiting behind it: the quiet tenant's next event goes out within one
 * round. Each lane keeps its own order; across tenants order is the take's.
 *
 * Without tenants every event is in lane 0 and `take` is a plain FIFO, as before.
 */
export class FairQueue {
  private readonly lanes: Array<Lane | undefined> = [];
  /** Lanes with events, in round order; `cursor` is the lane whose turn it is. */
  private ring: Lane[] = [];
  private cursor = 0;
  private count = 0;

  constructor(private readonly initialCapacity = 256) {}

  get length(): number {
    return this.count;
  }

  push(b: BufferedEvent): void {
    const share = b.share;
    const index = share === undefined ? 0 : share.lane;
    let lane = this.lanes[index];
    if (lane === undefined) {
      lane = {
        items: new Deque<BufferedEvent>(index === 0 ? this.initialCapacity : 64),
        deficit: 0,
        active: false,
        quantum: share === undefined ? () => 1 : () => share.quantum,
      };
      this.lanes[index] = lane;
    }
    lane.items.push(b);
    this.count++;
    if (!lane.active) {
      lane.active = true;
      this.ring.push(lane);
    }
  }

  /** The oldest pending event over all lanes (smallest admission sequence), for drop_oldest. */
  peekOldest(): BufferedEvent | undefined {
    return this.oldestLane()?.items.peek();
  }

  /** Removes the event `peekOldest` returned. */
  shiftOldest(): BufferedEvent | undefined {
    const lane = this.oldestLane();
    if (lane === undefined) return undefined;
    return this.shiftFrom(lane);
  }

  /** Removes one event in no particular fairness (abandon at shutdown); undefined when empty. */
  shift(): BufferedEvent | undefined {
    const lane = this.ring[0];
    return lane === undefined ? undefined : this.shiftFrom(lane);
  }

  /** Takes up to `max` events for one emitter batch, by deficit round robin over the lanes. */
  take(max: number): BufferedEvent[] {
    const batch: BufferedEvent[] = [];
    if (this.ring.length === 1) {
      // One lane (no tenants, or one busy tenant): a plain FIFO take.
      const lane = this.ring[0]!;
      while (batch.length < max && lane.items.length > 0) batch.push(this.shiftFrom(lane));
      return batch;
    }
    while (batch.length < max && this.ring.length > 0) {
      if (this.cursor >= this.ring.length) this.cursor = 0;
      const lane = this.ring[this.cursor]!;
      if (lane.deficit < 1) lane.deficit += lane.quantum();
      while (lane.deficit >= 1 && batch.length < max && lane.items.length > 0) {
        batch.push(lane.items.shift()!);
        this.count--;
        lane.deficit -= 1;
      }
      if (lane.items.length === 0) {
        // An emptied lane forfeits what it had left and leaves the ring; the cursor now points at
        // the next lane already.
        lane.deficit = 0;
        lane.active = false;
        this.ring.splice(this.cursor, 1);
      } else if (lane.deficit < 1) {
        this.cursor++;
      }
      // Otherwise the batch is full mid-turn: the lane continues first in the next take.
    }
    return batch;
  }

  /** Each tenant lane's oldest admission time, kept where earlier than what `into` holds. */
  oldestByTenant(into: Map<string, number>): void {
    for (const lane of this.ring) {
      const head = lane.items.peek()!;
      const share = head.share;
      if (share === undefined) continue;
      const seen = into.get(share.name);
      if (seen === undefined || head.atMs < seen) into.set(share.name, head.atMs);
    }
  }

  private shiftFrom(lane: Lane): BufferedEvent {
    const b = lane.items.shift()!;
    this.count--;
    if (lane.items.length === 0) {
      lane.deficit = 0;
      lane.active = false;
      const at = this.ring.indexOf(lane);
      this.ring.splice(at, 1);
      if (at < this.cursor) this.cursor--;
    }
    return b;
  }

  private oldestLane(): Lane | undefined {
    let best: Lane | undefined;
    for (const lane of this.ring) {
      const head = lane.items.peek()!;
      if (best === undefined || head.seq < best.items.peek()!.seq) best = lane;
    }
    return best;
  }
}
