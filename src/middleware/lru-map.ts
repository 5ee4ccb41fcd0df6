import { polkuError } from '../errors.js';

/**
 * A Map with a hard size cap that evicts the least recently used entry first.
 *
 * A JavaScript Map iterates in insertion order, so re-inserting an entry on each touch (delete +
 * set) keeps the least recently used one at the front, and eviction is "delete the first key".
 * Every operation is O(1); no linked list of our own to keep in step.
 *
 * Used by the rate limiter (buckets per key) and the deduplicator (seen keys): both are keyed by
 * client-chosen values, so without the cap a client could grow the gateway's memory at will.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  private evictions = 0;

  /** `maxSize` must be a positive integer: the table never holds more entries than that. */
  constructor(readonly maxSize: number) {
    if (!Number.isSafeInteger(maxSize) || maxSize <= 0) {
      throw polkuError('POLKU_ERR_OPTION_INVALID', `LruMap maxSize must be a positive integer, got ${String(maxSize)}`);
    }
  }

  /** Entries held now (always ≤ maxSize). */
  get size(): number {
    return this.map.size;
  }

  /** Entries evicted to make room since the map was created. */
  get evicted(): number {
    return this.evictions;
  }

  /** The value for `key`, marking it most recently used. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  /** The value for `key` without changing its place in the eviction order. */
  peek(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used if full. */
  set(key: K, value: V): void {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.maxSize) this.evictOldest();
    this.map.set(key, value);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  /** The least recently used entry, or undefined when empty. */
  oldest(): [K, V] | undefined {
    const first = this.map.entries().next();
    return first.done ? undefined : first.value;
  }

  /**
   * Deletes entries from the least recently used end while `expired(value)` holds; stops at the
   * first entry that has not expired. Returns how many were deleted. When entries are never
   * touched after insertion (the deduplicator), the front is also the oldest by time, so this
   * removes exactly the expired entries in O(expired).
   */
  pruneOldest(expired: (value: V) => boolean): number {
    let n = 0;
    for (const [key, value] of this.map) {
      if (!expired(value)) break;
      this.map.delete(key);
      n++;
    }
    return n;
  }

  clear(): void {
    this.map.clear();
  }

  private evictOldest(): void {
    const first = this.map.keys().next();
    if (!first.done) {
      this.map.delete(first.value);
      this.evictions++;
    }
  }
}
