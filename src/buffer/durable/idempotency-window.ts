/**
 * The idempotency keys accepted within a time window, at most `maxKeys` of them, oldest out first.
 *
 * A Map alone evicting its first key (`keys().next()`) degrades to a scan per insert once it is
 * full: deleted entries stay at the front of V8's ordered hash table until it rehashes, so each
 * new iterator walks past up to a table's worth of holes. At 1,000,000 keys that collapsed
 * durable intake from 70k to under 10k events/s. Here the insertion order lives in arrays beside
 * the Map, so eviction and expiry are O(1) per key.
 */
export class IdempotencyWindow {
  private readonly acceptedAt = new Map<string, number>();
  /** Keys in the order they were added (a key added again appears again), and when. */
  private order: string[] = [];
  private times: number[] = [];
  private head = 0;

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  get size(): number {
    return this.acceptedAt.size;
  }

  /** Whether `key` was added less than the window ago. */
  has(key: string, nowMs: number): boolean {
    const at = this.acceptedAt.get(key);
    return at !== undefined && nowMs - at < this.windowMs;
  }

  add(key: string, nowMs: number): void {
    this.acceptedAt.set(key, nowMs);
    this.order.push(key);
    this.times.push(nowMs);
    while (this.acceptedAt.size > this.maxKeys) this.dropOldest();
    this.compact();
  }

  /** Forgets the keys added a window or more before `nowMs`. */
  expire(nowMs: number): void {
    const cutoff = nowMs - this.windowMs;
    while (this.head < this.order.length && this.times[this.head]! <= cutoff) this.dropOldest();
    this.compact();
  }

  private dropOldest(): void {
    const key = this.order[this.head]!;
    const at = this.times[this.head]!;
    this.head++;
    // A key added again since has a newer time in the Map: that later entry is the one that counts.
    if (this.acceptedAt.get(key) === at) this.acceptedAt.delete(key);
  }

  /** Drops the consumed front of the arrays once it is most of them. */
  private compact(): void {
    if (this.head < 4096 || this.head * 2 < this.order.length) return;
    this.order = this.order.slice(this.head);
    this.times = this.times.slice(this.head);
    this.head = 0;
  }
}
