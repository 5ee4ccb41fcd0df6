import { randomFillSync } from 'node:crypto';

/**
 * Monotonic ULID generator (https://github.com/ulid/spec).
 *
 * Events without a client id get one of these. Within one millisecond the random part is
 * incremented instead of redrawn, so ids sort in the order they were assigned and the hot path
 * costs a few string operations per event instead of 16 calls into the CSPRNG.
 */
const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
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
  let lastTime = -1;
  let timePart = '';

  const redraw = (): void => {
    randomFillSync(pool);
    for (let i = 0; i < RANDOM_LEN; i++) random[i] = pool[i]! & 31;
  };

  const increment = (): boolean => {
    for (let i = RANDOM_LEN - 1; i >= 0; i--) {
      if (random[i] !== 31) {
        random[i]! += 1;
        return true;
      }
      random[i] = 0;
    }
    return false; // 80 bits exhausted within one millisecond
  };

  return () => {
    let t = now();
    if (t > lastTime) {
      lastTime = t;
      timePart = encodeTime(t);
      redraw();
    } else if (!increment()) {
      // Overflow is astronomically unlikely; move to the next millisecond rather than repeat.
      lastTime += 1;
      t = lastTime;
      timePart = encodeTime(t);
      redraw();
    }
    let out = timePart;
    for (let i = 0; i < RANDOM_LEN; i++) out += ENCODING[random[i]!];
    return out;
  };
}

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < TIME_LEN; i++) {
    out = ENCODING[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}
