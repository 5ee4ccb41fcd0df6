/**
 * The idempotency keys accepted within a time window, at most `maxKeys` of them, oldest out first,
 * each with the log seq of the event that carried it.
 *
 * Every durable event is looked up here and most are added, so this is on the hot path. It keeps
 * no strings: a key is remembered as a 64-bit hash in an open-addressing table of typed arrays,
 * with a ring of the same hashes in the order they were added for eviction and expiry. A Map of
 * string keys cost about a fifth of a durable gateway's main thread at 200,000 keys (hashing, its
 * ordered hash table, and the garbage collector tracing every retained key), and a Map evicting
 * its first key degrades to a scan per insert once full.
 *
 * Both grow with use, doubling, up to what `maxKeys` needs: memory follows the keys held, not
 * the bound.
 *
 * A hash match is not proof: `candidate` returns the seq of the event that carried a key with the
 * same hash, and the caller compares that event's stored key before treating a new event as a
 * resend (DurableStore.lookup). A collision therefore costs one comparison, never an event.
 */
export class IdempotencyWindow {
  private mask: number;
  // The table: slot i holds hash (hi[i], lo[i]), the seq that carried it (0 = empty; log seqs
  // start at 1) and when it was added.
  private hi: Int32Array;
  private lo: Int32Array;
  private seqs: Float64Array;
  private times: Float64Array;
  // The ring, in the order keys were added (a key added again appears again).
  private ringHi: Int32Array;
  private ringLo: Int32Array;
  private ringSeq: Float64Array;
  private ringTime: Float64Array;
  private ringHead = 0;
  private ringCount = 0;
  private live = 0;
  private readonly seedHi: number;
  private readonly seedLo: number;
  // hashOf's result, as two fields rather than an allocated pair.
  private h1 = 0;
  private h2 = 0;

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    seed = (Math.random() * 0x100000000) >>> 0,
  ) {
    const capacity = Math.min(INITIAL_SLOTS, tableSlotsFor(maxKeys));
    this.mask = capacity - 1;
    this.hi = new Int32Array(capacity);
    this.lo = new Int32Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
    const ring = Math.max(1, Math.min(maxKeys, INITIAL_SLOTS));
    this.ringHi = new Int32Array(ring);
    this.ringLo = new Int32Array(ring);
    this.ringSeq = new Float64Array(ring);
    this.ringTime = new Float64Array(ring);
    // Per-process seeds: which keys collide cannot be worked out from outside.
    this.seedHi = seed | 0;
    this.seedLo = Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) | 0;
  }

  /** Distinct key hashes remembered. */
  get size(): number {
    return this.live;
  }

  /**
   * The seq of the last event added with a key hashing as `key` does, if it was added less than
   * the window before `nowMs`; else -1. The caller checks that event's key really is `key`.
   */
  candidate(key: string, nowMs: number): number {
    this.hashOf(key);
    const slot = this.find(this.h1, this.h2);
    if (slot < 0 || nowMs - this.times[slot]! >= this.windowMs) return -1;
    return this.seqs[slot]!;
  }

  /** Remembers `key` as carried by the event at `seq`, accepted at `nowMs`. */
  add(key: string, seq: number, nowMs: number): void {
    if (this.ringCount === this.ringSeq.length) {
      if (this.ringCount < this.maxKeys) this.growRing();
      else this.dropOldest();
    }
    if ((this.live + 1) * 2 > this.seqs.length) this.growTable();
    const h1 = this.hashOf(key);
    const h2 = this.h2;
    let i = h1 & this.mask;
    while (this.seqs[i] !== 0 && (this.hi[i] !== h1 || this.lo[i] !== h2)) i = (i + 1) & this.mask;
    if (this.seqs[i] === 0) {
      this.hi[i] = h1;
      this.lo[i] = h2;
      this.live++;
    }
    this.seqs[i] = seq;
    this.times[i] = nowMs;
    const r = (this.ringHead + this.ringCount) % this.ringSeq.length;
    this.ringHi[r] = h1;
    this.ringLo[r] = h2;
    this.ringSeq[r] = seq;
    this.ringTime[r] = nowMs;
    this.ringCount++;
  }

  /** Forgets the keys added a window or more before `nowMs`. */
  expire(nowMs: number): void {
    const cutoff = nowMs - this.windowMs;
    while (this.ringCount > 0 && this.ringTime[this.ringHead]! <= cutoff) this.dropOldest();
  }

  /** Twice the slots (never past what maxKeys needs), every entry placed again. */
  private growTable(): void {
    const { hi, lo, seqs, times } = this;
    const capacity = seqs.length * 2;
    this.mask = capacity - 1;
    this.hi = new Int32Array(capacity);
    this.lo = new Int32Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
    for (let j = 0; j < seqs.length; j++) {
      if (seqs[j] === 0) continue;
      let i = hi[j]! & this.mask;
      while (this.seqs[i] !== 0) i = (i + 1) & this.mask;
      this.hi[i] = hi[j]!;
      this.lo[i] = lo[j]!;
      this.seqs[i] = seqs[j]!;
      this.times[i] = times[j]!;
    }
  }

  /** Twice the ring (at most maxKeys), its entries moved to the front in order. */
  private growRing(): void {
    const was = this.ringSeq.length;
    const size = Math.min(this.maxKeys, was * 2);
    const grown = <T extends Int32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      for (let r = 0; r < this.ringCount; r++) next[r] = old[(this.ringHead + r) % was]!;
      return next;
    };
    this.ringHi = grown(this.ringHi, (n) => new Int32Array(n));
    this.ringLo = grown(this.ringLo, (n) => new Int32Array(n));
    this.ringSeq = grown(this.ringSeq, (n) => new Float64Array(n));
    this.ringTime = grown(this.ringTime, (n) => new Float64Array(n));
    this.ringHead = 0;
  }

  private dropOldest(): void {
    const r = this.ringHead;
    this.ringHead = (r + 1) % this.ringSeq.length;
    this.ringCount--;
    const slot = this.find(this.ringHi[r]!, this.ringLo[r]!);
    // A key added again since has a newer seq in the table: that later entry is the one that counts.
    if (slot >= 0 && this.seqs[slot] === this.ringSeq[r]) this.remove(slot);
  }

  private find(h1: number, h2: number): number {
    for (let i = h1 & this.mask; this.seqs[i] !== 0; i = (i + 1) & this.mask) {
      if (this.hi[i] === h1 && this.lo[i] === h2) return i;
    }
    return -1;
  }

  /** Empties `slot`, moving later entries of its probe run back so every lookup still finds them. */
  private remove(slot: number): void {
    const mask = this.mask;
    let gap = slot;
    for (let j = (slot + 1) & mask; this.seqs[j] !== 0; j = (j + 1) & mask) {
      const home = this.hi[j]! & mask;
      // Entry j may fill the gap unless its home lies cyclically in (gap, j].
      const stays = gap <= j ? gap < home && home <= j : gap < home || home <= j;
      if (stays) continue;
      this.hi[gap] = this.hi[j]!;
      this.lo[gap] = this.lo[j]!;
      this.seqs[gap] = this.seqs[j]!;
      this.times[gap] = this.times[j]!;
      gap = j;
    }
    this.seqs[gap] = 0;
    this.live--;
  }

  /**
   * Two 32-bit murmur3-style hashes of the key's UTF-16 units, two units per round, with
   * different seeds: together a 64-bit hash. Sets h1/h2; returns h1.
   */
  private hashOf(key: string): number {
    let a = this.seedHi;
    let b = this.seedLo;
    const n = key.length;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      const k = mixK(key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16));
      a ^= k;
      a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
      b ^= Math.imul(k, 0x85ebca6b);
      b = (Math.imul((b << 15) | (b >>> 17), 5) + 0x561ccd1b) | 0;
    }
    if (i < n) {
      const k = mixK(key.charCodeAt(i));
      a ^= k;
      b ^= Math.imul(k, 0x85ebca6b);
    }
    this.h1 = fmix(a ^ n);
    this.h2 = fmix(b ^ Math.imul(n, 0x9e3779b1));
    return this.h1;
  }
}

const INITIAL_SLOTS = 1024;

/** Table slots for `maxKeys` keys: a power of two, half full at most so linear probing stays short. */
function tableSlotsFor(maxKeys: number): number {
  let slots = 16;
  while (slots < maxKeys * 2) slots *= 2;
  return slots;
}

function mixK(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}

/** murmur3's finaliser: every input bit affects every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
