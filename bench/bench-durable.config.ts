// The bench pipeline in durable mode: every accepted event is committed (fdatasync) to the log in
// POLKU_BENCH_DATA_DIR before its Ack, then counted by the in-memory emitter.
//   npm run bench:durable    (bench/run.ts --durable makes that directory and removes it after)
// Run by hand without POLKU_BENCH_DATA_DIR, it makes a temp directory and leaves it behind.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hub, PassthroughIngestor } from '../src/index.js';
import { InMemoryEmitter } from '../src/testing/index.js';

const dir = process.env['POLKU_BENCH_DATA_DIR'] ?? mkdtempSync(join(tmpdir(), 'polku-bench-durable-'));
// A/B of the per-stream window: POLKU_BENCH_STREAM_WINDOW_BATCHES=1 is one batch per stream at a
// time, as before the window (the default is DURABLE_DEFAULTS.streamWindowBatches).
const windowBatches = process.env['POLKU_BENCH_STREAM_WINDOW_BATCHES'];

export default hub()
  .ingestor(new PassthroughIngestor())
  .emitter(new InMemoryEmitter({ name: 'memory', maxRetained: 0 }))
  .durable({
    dir,
    maxBytes: 8 * 1024 * 1024 * 1024,
    maxAgeMs: 60_000,
    ...(windowBatches ? { streamWindowBatches: Number(windowBatches) } : {}),
  });
