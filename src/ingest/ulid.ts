import { randomFillSync } from 'node:crypto';

/**
 * Monotonic ULID generator (https://github.com/ulid/spec).
 *
 * Events without a client id get one of these. Within one millisecond the random part is
 * incremented instead of redrawn, so ids sort in the order they were assigned and the hot path
 * costs a few string operations per event instead of 16 calls into the CSPRNG.
 */
const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** The alphabet's character codes, digit → code. */
const CODES = Uint8Array.from(ENCODING, (c) => c.charCodeAt(0));
const RANDOM_LEN = 16;
const TIME_LEN = 10;

export interface UlidFactoryOptions {
  /** Wall clock in milliseconds. Injectable for tests. */
  now?: () => number;
}

export type UlidFactory = () => string;

export function createUlidFactory(options: UlidFactoryOptions = {}): UlidFactory {
  const now = options.now ?? Date.now;
  const random = new Uint8Array(RANDOM_LEN); // one base32 digit (0..31) per byte
  const pool = new Uint8Array(RANDOM_LEN);
  // The id's 26 character codes: the time part (rewritten each millisecond), then the random part.
  const c = new Uint16Array(TIME_LEN + RANDOM_LEN);
  let lastTime = -1;

  const redraw = (): void => {
    randomFillSync(pool);
    for (let i = 0; i < RANDOM_LEN; i++) {
      random[i] = pool[i]! & 31;
      c[TIME_LEN + i] = CODES[random[i]!]!;
    }
  };

  const increment = (): boolean => {
    for (let i = RANDOM_LEN - 1; i >= 0; i--) {
      if (random[i] !== 31) {
        random[i]! += 1;
        c[TIME_LEN + i] = CODES[random[i]!]!;
        return true;
      }
      random[i] = 0;
      c[TIME_LEN + i] = CODES[0]!;
    }
    return false; // 80 bits exhausted within one millisecond
  };

  return () => {
    let t = now();
    if (t > lastTime) {
      lastTime = t;
      encodeTime(t, c);
      redraw();
    } else if (!increment()) {
      // Overflow is astronomically unlikely; move to the next millisecond rather than repeat.
      lastTime += 1;
      t = lastTime;
      encodeTime(t, c);
      redraw();
    }
    // One flat string from the 26 codes. Appending character by character (as this did before)
    // builds a chain of ~14 cons strings per id, which every event without a client id (most OTLP
    // log records) carries into the buffer: ~7x the CPU and ~10x the heap of one flat string.
    // prettier-ignore
    return String.fromCharCode(
      c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!, c[9]!, c[10]!, c[11]!, c[12]!,
      c[13]!, c[14]!, c[15]!, c[16]!, c[17]!, c[18]!, c[19]!, c[20]!, c[21]!, c[22]!, c[23]!, c[24]!, c[25]!,
    );
  };
}

/** The time part's 10 digits, most significant first, into `out[0..9]`. */
function encodeTime(ms: number, out: Uint16Array): void {
  let t = ms;
  for (let i = TIME_LEN - 1; i >= 0; i--) {
    out[i] = CODES[t % 32]!;
    t = Math.floor(t / 32);
  }
}
