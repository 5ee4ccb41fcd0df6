// The pipeline of `npm run bench:durable-crash`: durable mode (POLKU_DURABLE, POLKU_DATA_DIR from
// the environment) delivering every event to a webhook receiver in its own process, which
// survives the gateway's kills and records every id it gets.
// BENCH_CURSOR_PERSIST_MS sets durable cursorPersistMs (the bench's baseline run uses 1000,
// the cadence cursors had before the positions file).
import { hub, WebhookEmitter } from '../src/index.js';

const persist = Number(process.env['BENCH_CURSOR_PERSIST_MS'] ?? 0);

export default hub()
  .emitter(new WebhookEmitter({ name: 'receiver', url: process.env['BENCH_RECEIVER_URL']!, timeoutMs: 5_000 }))
  .durable({ dir: process.env['POLKU_DATA_DIR']!, ...(persist > 0 ? { cursorPersistMs: persist } : {}) });
