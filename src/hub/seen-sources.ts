/** Distinct intake sources the hub remembers when nothing says otherwise. */
export const DEFAULT_SEEN_SOURCES = 10_000;

/**
 * The sources agents have sent on lately, each with the ingestor that last parsed its raw bytes
 * ('' when none did: ready events, or a refusal). The plugin registry reads it to refuse a plugin
 * claiming a source agents send on, which would hand it their raw bytes.
 *
 * Bounded: at most `maxSources`, the least recently refreshed forgotten first. A hit costs one Map
 * read; an entry is moved to the back only once it has aged past half the table, so a source in
 * steady use stays while a spray of new ones pushes out only stale ones.
 */
export class SeenSources {
  private readonly map = new Map<string, { seq: number; parsedBy: string }>();
  /**
   * The source noted at each sequence number, modulo the size: evicting is one slot read, where a
   * Map's first key after many deletions can take a scan of the holes (20 µs measured).
   */
  private readonly ring: Array<string | undefined>;
  private seq = 0;

  constructor(readonly maxSources: number = DEFAULT_SEEN_SOURCES) {
    this.ring = new Array<string | undefined>(maxSources);
  }

  /** Notes a batch on `source`; `parsedBy` names the ingestor of a raw batch. Per batch, never per event. */
  note(source: string, parsedBy?: string): void {
    const hit = this.map.get(source);
    if (hit !== undefined && this.seq - hit.seq < this.maxSources / 2) {
      if (parsedBy !== undefined) hit.parsedBy = parsedBy;
      return;
    }
    const seq = ++this.seq;
    const slot = seq % this.maxSources;
    const old = this.ring[slot];
    // The slot's source leaves unless it was noted again since (its entry carries a newer seq).
    if (old !== undefined && this.map.get(old)?.seq === seq - this.maxSources) this.map.delete(old);
    this.ring[slot] = source;
    if (hit !== undefined) {
      hit.seq = seq;
      if (parsedBy !== undefined) hit.parsedBy = parsedBy;
    } else {
      this.map.set(source, { seq, parsedBy: parsedBy ?? '' });
    }
  }

  /** Whether agents sent on `source` lately, and which ingestor last parsed its raw bytes. */
  lookup(source: string): { parsedBy: string } | undefined {
    const hit = this.map.get(source);
    return hit && { parsedBy: hit.parsedBy };
  }

  get size(): number {
    return this.map.size;
  }
}
