/**
 * `npm run bench:durable-cursor-sync`: what persisting cursors does to the log's commit latency.
 *
 *   node --import tsx bench/durable-cursor-sync.ts [--duration-ms 6000] [--rate 50000] [--rounds 2]
 *
 * Four producers append batches of 100 records of 400 B (fdatasync before each append resolves,
 * as before an Ack) at --rate records/s in all, while a cursor moves after every append (as
 * delivery moves it). Three ways to persist the cursor, each run --rounds times in turn:
 *
 * - `json-1s`: cursors.json rewritten every second (temp file, fdatasync, rename, directory
 *   fsync), as the gateway did before the positions file;
 * - `positions`: the positions file written 10 ms after a move (one pwrite) and fdatasynced
 *   every second (CursorStore.checkpoint), as the gateway does now;
 * - `none`: the cursor never persisted, the floor.
 *
 * Prints append latency p50 / p99 / p99.9 / max per way. The log and cursors live in a fresh
 * directory under the OS temp dir (TMPDIR picks the disk), removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CursorStore } from '../src/buffer/durable/cursor-store.js';
import { SegmentLog } from '../src/buffer/durable/segment-log.js';

const { values } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '6000' },
    rate: { type: 'string', default: '50000' },
    rounds: { type: 'string', default: '2' },
  },
  strict: true,
});
const DURATION_MS = Number(values['duration-ms']);
const RATE = Number(values.rate);
const ROUNDS = Number(values.rounds);
const PRODUCERS = 4;
const BATCH = 100;
type Way = 'json-1s' | 'positions' | 'none';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure(way: Way): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'polku-bench-cursor-sync-'));
  try {
    const { log } = await SegmentLog.open({ dir: join(dir, 'events') });
    const cursors = await CursorStore.open(join(dir, 'cursors.json'), { persistEveryMs: way === 'positions' ? 10 : 1e9 });
    cursors.set('emitter', 1);
    await cursors.flush();
    const maintenance = setInterval(() => {
      if (way === 'json-1s') void cursors.flush();
      if (way === 'positions') void cursors.checkpoint();
    }, 1000);
    const payload = new Uint8Array(400).fill(7);
    const batch = Array.from({ length: BATCH }, () => payload);
    const latencies: number[] = [];
    const end = performance.now() + DURATION_MS;
    const perProducerMs = (BATCH / (RATE / PRODUCERS)) * 1000;
    await Promise.all(
      Array.from({ length: PRODUCERS }, async (_, p) => {
        let due = performance.now() + (p * perProducerMs) / PRODUCERS;
        while (due < end) {
          if (due > performance.now()) await sleep(due - performance.now());
          const started = performance.now();
          const first = await log.append(batch);
          latencies.push(performance.now() - started);
          if (way !== 'none') cursors.set('emitter', first + BATCH); // delivered: the cursor moves
          due += perProducerMs;
        }
      }),
    );
    clearInterval(maintenance);
    await cursors.close();
    await log.close();
    return latencies.sort((a, b) => a - b);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const q = (sorted: number[], p: number): string => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(2);
console.log(
  `cursor persistence vs commit latency: ${PRODUCERS} producers × ${BATCH} records/append at ${RATE.toLocaleString('en-US')} records/s, ${DURATION_MS} ms per run`,
);
console.log('way        appends  p50 ms  p99 ms  p99.9 ms  max ms');
for (let round = 0; round < ROUNDS; round++) {
  for (const way of ['json-1s', 'positions', 'none'] as const) {
    const l = await measure(way);
    console.log(
      `${way.padEnd(10)} ${String(l.length).padStart(7)} ${q(l, 0.5).padStart(7)} ${q(l, 0.99).padStart(7)} ${q(l, 0.999).padStart(9)} ${q(l, 1).padStart(7)}`,
    );
  }
}
