/**
 * The idempotency keys accepted within a time window, at most `maxKeys` of them, oldest out first,
 * each with the log seq of the event that carried it.
 *
 * Every durable event is looked up here and most are added, so this is on the hot path. It keeps
 * no strings: a key is remembered as a 52-bit hash in an open-addressing table (one Float64Array,
 * each slot's fields side by side), with a ring of the same hashes in the order they were added for eviction and expiry. A Map of
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
  // The table, one slot per SLOT doubles side by side: the key's hash (52 bits), the seq that
  // carried it (0 = empty; log seqs start at 1) and when it was added. A probe touches one cache
  // line, where four parallel arrays (as before) cost four misses per probe in a table of 12 MB.
  private table: Float64Array;
  // The ring, in the order keys were added (a key added again appears again): hash, seq, time.
  private ring: Float64Array;
  private ringSize: number;
  private ringHead = 0;
  private ringCount = 0;
  private live = 0;
  private readonly seedHi: number;
  private readonly seedLo: number;

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    seed = (Math.random() * 0x100000000) >>> 0,
  ) {
    const capacity = Math.min(INITIAL_SLOTS, tableSlotsFor(maxKeys));
    this.mask = capacity - 1;
    this.table = new Float64Array(capacity * SLOT);
    this.ringSize = Math.max(1, Math.min(maxKeys, INITIAL_SLOTS));
    this.ring = new Float64Array(this.ringSize * SLOT);
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
    return this.candidateOf(this.hash(key), nowMs);
  }

  /** {@link candidate} for a key whose {@link hash} the caller already has. */
  candidateOf(h: number, nowMs: number): number {
    const slot = this.find(homeOf(h), h);
    if (slot < 0 || nowMs - this.table[slot + TIME]! >= this.windowMs) return -1;
    return this.table[slot + SEQ]!;
  }

  /** Remembers `key` as carried by the event at `seq`, accepted at `nowMs`. */
  add(key: string, seq: number, nowMs: number): void {
    this.addHash(this.hash(key), seq, nowMs);
  }

  /** {@link add} for a key whose {@link hash} the caller already has. */
  addHash(h: number, seq: number, nowMs: number): void {
    if (this.ringCount === this.ringSize) {
      if (this.ringCount < this.maxKeys) this.growRing();
      else this.dropOldest();
    }
    if ((this.live + 1) * 2 * SLOT > this.table.length) this.growTable();
    const t = this.table;
    const mask = this.mask;
    let i = homeOf(h) & mask;
    while (t[i * SLOT + SEQ] !== 0 && t[i * SLOT] !== h) i = (i + 1) & mask;
    const at = i * SLOT;
    if (t[at + SEQ] === 0) {
      t[at] = h;
      this.live++;
    }
    t[at + SEQ] = seq;
    t[at + TIME] = nowMs;
    const r = ((this.ringHead + this.ringCount) % this.ringSize) * SLOT;
    this.ring[r] = h;
    this.ring[r + SEQ] = seq;
    this.ring[r + TIME] = nowMs;
    this.ringCount++;
  }

  /** Forgets the keys added a window or more before `nowMs`. */
  expire(nowMs: number): void {
    const cutoff = nowMs - this.windowMs;
    while (this.ringCount > 0 && this.ring[this.ringHead * SLOT + TIME]! <= cutoff) this.dropOldest();
  }

  /** Twice the slots (never past what maxKeys needs), every entry placed again. */
  private growTable(): void {
    const old = this.table;
    const capacity = (old.length / SLOT) * 2;
    const mask = capacity - 1;
    const t = new Float64Array(capacity * SLOT);
    for (let j = 0; j < old.length; j += SLOT) {
      if (old[j + SEQ] === 0) continue;
      let i = homeOf(old[j]!) & mask;
      while (t[i * SLOT + SEQ] !== 0) i = (i + 1) & mask;
      t.set(old.subarray(j, j + SLOT), i * SLOT);
    }
    this.table = t;
    this.mask = mask;
  }

  /** Twice the ring (at most maxKeys), its entries moved to the front in order. */
  private growRing(): void {
    const was = this.ringSize;
    const size = Math.min(this.maxKeys, was * 2);
    const next = new Float64Array(size * SLOT);
    for (let r = 0; r < this.ringCount; r++) {
      const from = ((this.ringHead + r) % was) * SLOT;
      next.set(this.ring.subarray(from, from + SLOT), r * SLOT);
    }
    this.ring = next;
    this.ringSize = size;
    this.ringHead = 0;
  }

  private dropOldest(): void {
    const r = this.ringHead * SLOT;
    this.ringHead = (this.ringHead + 1) % this.ringSize;
    this.ringCount--;
    const h = this.ring[r]!;
    const slot = this.find(homeOf(h), h);
    // A key added again since has a newer seq in the table: that later entry is the one that counts.
    if (slot >= 0 && this.table[slot + SEQ] === this.ring[r + SEQ]) this.remove(slot);
  }

  /** The offset in `table` of the slot holding hash `h` (home slot from `home`), or -1. */
  private find(home: number, h: number): number {
    const t = this.table;
    const mask = this.mask;
    for (let i = home & mask; t[i * SLOT + SEQ] !== 0; i = (i + 1) & mask) {
      if (t[i * SLOT] === h) return i * SLOT;
    }
    return -1;
  }

  /** Empties the slot at offset `at`, moving later entries of its probe run back so every lookup still finds them. */
  private remove(at: number): void {
    const t = this.table;
    const mask = this.mask;
    let gap = at / SLOT;
    for (let j = (gap + 1) & mask; t[j * SLOT + SEQ] !== 0; j = (j + 1) & mask) {
      const home = homeOf(t[j * SLOT]!) & mask;
      // Entry j may fill the gap unless its home lies cyclically in (gap, j].
      const stays = gap <= j ? gap < home && home <= j : gap < home || home <= j;
      if (stays) continue;
      t.copyWithin(gap * SLOT, j * SLOT, j * SLOT + SLOT);
      gap = j;
    }
    t[gap * SLOT + SEQ] = 0;
    this.live--;
  }

  /**
   * The key's 52-bit hash (exact in a double), as the table keeps it. An event's key is looked up
   * when it arrives and added once it is committed: hashed once, for both. Two 32-bit
   * murmur3-style hashes of the key's UTF-16 units, two units per round, with different seeds:
   * the home slot's (h1) in the high 32 bits.
   */
  hash(key: string): number {
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
    const h1 = fmix(a ^ n);
    const h2 = fmix(b ^ Math.imul(n, 0x9e3779b1));
    // 32 bits of one and 20 of the other: what a double holds exactly. A match is confirmed
    // against the stored key anyway (see the class comment), so 52 bits only make that rare.
    return (h1 >>> 0) * HIGH + (h2 >>> 12);
  }
}

const INITIAL_SLOTS = 1024;
/** Doubles per table slot and ring entry, and where each field sits in it (the hash at 0). */
const SLOT = 3;
const SEQ = 1;
const TIME = 2;
const HIGH = 2 ** 20;

/** The home-slot hash (h1) a 52-bit hash was made from. */
function homeOf(h52: number): number {
  return (h52 / HIGH) | 0;
}

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
