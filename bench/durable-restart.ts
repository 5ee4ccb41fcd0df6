/**
 * `npm run bench:durable-restart`: how long a durable gateway takes to be ready again with a
 * large log, which is what a DaemonSet pod restart costs.
 *
 *   node --import tsx bench/durable-restart.ts [events=1000000] [undelivered=1]
 *
 * 1. Fills a fresh data directory with `events` events of ~400 B through DurableStore (the same
 *    store the gateway uses; commits without fdatasync, since the fill is not what is measured),
 *    all routed to the pipeline's one emitter. With undelivered=1 the emitter's cursor stays at
 *    the start: after the restart every event is still to be delivered, the worst case.
 * 2. Starts `polku serve` on that directory (bench/bench-durable.config.ts) as its own process and
 *    measures from spawn to the first `GET /readyz` answering 200 (polled every 20 ms): Node
 *    start-up, module loading, log recovery (every segment indexed, the last one checksummed),
 *    cursors, the idempotency window rebuilt from every event still inside it.
 * 3. Prints what the gateway logged about the recovery, then stops it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DurableStore } from '../src/buffer/durable/durable-store.js';
import { systemClock } from '../src/clock.js';
import type { Event } from '../src/gen/polku/v1/event.js';
import { silentLogger } from '../src/observability/logger.js';
import { delay, freePort, installChildCleanup, spawnTsx, stopChild } from './lib/children.js';

const [events = 1_000_000, undelivered = 1] = process.argv.slice(2).map(Number);
const EMITTER = 'memory'; // bench/bench-durable.config.ts's one emitter
const dir = mkdtempSync(join(tmpdir(), 'polku-bench-restart-'));
installChildCleanup();

try {
  const fillStarted = performance.now();
  const store = await DurableStore.open({ dir, fsync: false, maxBytes: 8 * 1024 ** 3 }, systemClock, silentLogger());
  store.setCursor(EMITTER, store.nextSeq); // the emitter starts at the first event filled
  const payload = new Uint8Array(300).fill(7);
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  for (let done = 0; done < events;) {
    const n = Math.min(1000, events - done);
    const entries = Array.from({ length: n }, (_, i) => {
      const id = `restart-${done + i}`;
      const event: Event = {
        id,
        timestampUnixNs: nowNs,
        source: 'bench-restart',
        eventType: 'bench.synthetic',
        metadata: { cluster: 'bench', namespace: 'default' },
        payload,
        routeTo: [],
        severity: 2,
        outcome: 1,
      };
      return { event, targets: [EMITTER], key: id };
    });
    await store.commit(entries);
    done += n;
  }
  if (!undelivered) store.setCursor(EMITTER, store.nextSeq);
  await store.close();
  console.log(
    `fill: ${events.toLocaleString('en-US')} events (${(store.log.bytes / 1024 / 1024).toFixed(1)} MiB) in ${((performance.now() - fillStarted) / 1000).toFixed(1)} s; ${undelivered ? 'all undelivered' : 'all delivered'}`,
  );

  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const started = performance.now();
  const gw = spawnTsx('gateway', 'src/cli/main.ts', ['serve', '--config', 'bench/bench-durable.config.ts'], {
    env: {
      POLKU_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
      POLKU_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      POLKU_HTTP_ADDR: 'off',
      POLKU_LOG_LEVEL: 'info',
      POLKU_BENCH_DATA_DIR: dir,
    },
  });
  const lines: string[] = [];
  gw.onStderrLine((l) => lines.push(l)); // the gateway logs on stderr
  let readyMs: number | undefined;
  while (readyMs === undefined) {
    if (performance.now() - started > 60_000) throw new Error(`not ready after 60 s:\n${gw.tail()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      if (res.status === 200) readyMs = performance.now() - started;
    } catch {
      // not listening yet
    }
    if (readyMs === undefined) await delay(20);
  }
  const opened = lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => typeof l['msg'] === 'string' && String(l['msg']).startsWith('event log'));
  console.log(`restart: ready (GET /readyz 200) ${(readyMs / 1000).toFixed(2)} s after spawn`);
  const rebuilt = lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l['msg'] === 'idempotency window rebuilt from the log');
  const listening = lines.findIndex((l) => l.includes('"gateway listening"'));
  if (rebuilt)
    console.log(
      `  idempotency window: ${Number(rebuilt['keys']).toLocaleString('en-US')} keys rebuilt in ${String(rebuilt['durationMs'])} ms`,
    );
  if (listening < 0) console.log('  (no "gateway listening" line seen)');
  if (opened)
    console.log(
      `  log recovery as logged: ${opened['durationMs'] !== undefined ? `${Number(opened['durationMs']).toFixed(0)} ms, ` : ''}${opened['segments']} segments, ${Number(opened['records']).toLocaleString('en-US')} records, torn ${opened['tornTailBytes']} B, corrupt ${opened['corruptRecords']}`,
    );
  await stopChild(gw, 15_000);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
