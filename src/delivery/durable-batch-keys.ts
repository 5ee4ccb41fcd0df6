import type { EventRecordInput } from '../buffer/durable/event-record.js';

/**
 * The idempotency keys met so far in one batch, by the window's 52-bit hash of each (already
 * computed for the window lookup), each with the entry that carries it, or null once the key was
 * acknowledged as a resend. A batch repeating a key of its own is rare; what this replaces, a
 * Map of string keys built per batch, cost about 200 ns an event (hashing each fresh string
 * again, a Map and its nodes per batch), for the common answer "not met".
 *
 * One instance serves every batch in turn (admission's loop over a batch is synchronous): an
 * open-addressing table whose slots are valid only when stamped with the current batch, so
 * starting the next batch clears nothing.
 */
export class DurableBatchKeys {
  private mask = 0;
  private hashes = new Float64Array(0);
  private stamps = new Uint32Array(0);
  private at = new Int32Array(0);
  private stamp = 0;
  private readonly keys: string[] = [];
  private readonly values: Array<EventRecordInput | null> = [];

  /** Forgets the previous batch; room for `events` keys. */
  start(events: number): void {
    const slots = slotsFor(events);
    if (slots > this.hashes.length) {
      this.hashes = new Float64Array(slots);
      this.stamps = new Uint32Array(slots);
      this.at = new Int32Array(slots);
      this.mask = slots - 1;
      this.stamp = 0;
    }
    if (++this.stamp === 0x100000000) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
    this.keys.length = 0;
    this.values.length = 0;
  }

  /** The entry carrying `key` in this batch, null when it was acknowledged as a resend, undefined when not met. */
  get(key: string, h: number): EventRecordInput | null | undefined {
    const i = this.find(key, h);
    return i < 0 ? undefined : this.values[this.at[i]!];
  }

  /**
   * Notes `key` (hash `h`), not met yet in this batch ({@link get} said undefined), as carried by
   * `value` (null: acknowledged as a resend). No second probe for it: admission asks `get` first.
   */
  set(key: string, h: number, value: EventRecordInput | null): void {
    let i = h & this.mask;
    while (this.stamps[i] === this.stamp) i = (i + 1) & this.mask;
    this.stamps[i] = this.stamp;
    this.hashes[i] = h;
    this.at[i] = this.keys.length;
    this.keys.push(key);
    this.values.push(value);
  }

  private find(key: string, h: number): number {
    const stamps = this.stamps;
    for (let i = h & this.mask; stamps[i] === this.stamp; i = (i + 1) & this.mask) {
      // Equal hashes are confirmed on the key: two keys of a batch may hash alike.
      if (this.hashes[i] === h && this.keys[this.at[i]!] === key) return i;
    }
    return -1;
  }
}

/** A power of two, at least twice `events`, so probing stays short. */
function slotsFor(events: number): number {
  let slots = 16;
  while (slots < events * 2) slots *= 2;
  return slots;
}
