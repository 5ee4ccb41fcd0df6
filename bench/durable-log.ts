/**
 * The durable log's storage engine alone: commit-before-ack append throughput, restart (recovery)
 * time and read-back rate.
 *
 *   node --import tsx bench/durable-log.ts [records=1000000] [producers=4] [batch=100] [payloadBytes=400] [fsync=1]
 *
 * Each producer appends `batch` records and awaits the append (fdatasync included) before the
 * next, like a gRPC stream waiting for its Ack. The log lives in a fresh directory under the OS
 * temp dir (set TMPDIR to bench another disk) and is removed at the end.
 *
 * The log is opened twice: warm (its pages still cached, as after a process crash) and cold (its
 * own files evicted from the page cache with `dd iflag=nocache`, as after a node reboot).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SegmentLog } from '../src/buffer/durable/segment-log.js';

const [records = 1_000_000, producers = 4, batch = 100, payloadBytes = 400, fsyncFlag = 1] = process.argv.slice(2).map(Number);
const fsync = fsyncFlag !== 0;
const dir = mkdtempSync(join(tmpdir(), 'polku-bench-log-'));
const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000).toLocaleString('en-US')}/s`;
const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

/** Payloads that differ per record (so nothing compresses or dedupes away), reused across batches. */
function payloads(producer: number): Uint8Array[] {
  return Array.from({ length: batch }, (_, i) => {
    const p = new Uint8Array(payloadBytes);
    for (let b = 0; b < p.length; b++) p[b] = (producer * 31 + i * 7 + b) & 0xff;
    return p;
  });
}

try {
  console.log(
    `durable log: ${records.toLocaleString('en-US')} records of ${payloadBytes} B, ${producers} producers × ${batch}/append, fsync ${fsync ? 'on' : 'off'}, dir ${dir}`,
  );
  const { log } = await SegmentLog.open({ dir, fsync });
  const perProducer = Math.ceil(records / producers / batch);
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: producers }, async (_, p) => {
      const mine = payloads(p);
      for (let i = 0; i < perProducer; i++) {
        const s = performance.now();
        await log.append(mine);
        lat.push(performance.now() - s);
      }
    }),
  );
  const appendMs = performance.now() - t0;
  const appended = perProducer * producers * batch;
  lat.sort((a, b) => a - b);
  const pct = (q: number): string => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!.toFixed(2);
  console.log(
    `append:   ${appended.toLocaleString('en-US')} records in ${(appendMs / 1000).toFixed(2)} s = ${rate(appended, appendMs)} (${mib(log.bytes)}, ${log.flushCount} group commits, ${(appended / log.flushCount).toFixed(0)} records/commit, ${rate(log.flushCount, appendMs)} fdatasyncs)`,
  );
  console.log(`          append latency ms p50 ${pct(0.5)} p99 ${pct(0.99)} max ${pct(1)}`);
  await log.close();

  /** The longest the event loop was held while `fn` ran: what other work (gRPC, timers) would wait. */
  const loopStall = async <T>(fn: () => Promise<T>): Promise<[T, string]> => {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const result = await fn();
    h.disable();
    return [result, `longest event-loop stall ${(h.max / 1e6).toFixed(1)} ms`];
  };
  const timedOpen = async (label: string) => {
    const started = performance.now();
    const [opened, stall] = await loopStall(() => SegmentLog.open({ dir, fsync }));
    const ms = performance.now() - started;
    const r = opened.recovery;
    console.log(
      `${label} ${ms.toFixed(0)} ms: ${r.segments} segments, ${r.records.toLocaleString('en-US')} records, ${mib(r.bytes)}, torn ${r.tornTailBytes} B, corrupt ${r.corruptRecords}; ${stall}`,
    );
    return opened;
  };
  await (await timedOpen('open warm:')).log.close();
  let evicted = true;
  try {
    for (const f of readdirSync(dir)) execFileSync('dd', [`if=${join(dir, f)}`, 'iflag=nocache', 'count=0', 'status=none']);
  } catch {
    evicted = false;
  }
  const reopened = await timedOpen(evicted ? 'open cold:' : 'open (could not evict the page cache):');

  const t2 = performance.now();
  let read = 0;
  let bytes = 0;
  const [, readStall] = await loopStall(async () => {
    let seq = reopened.log.firstSeq;
    for (;;) {
      const got = await reopened.log.read(seq, 1000);
      if (got.length === 0) break;
      read += got.length;
      for (const rec of got) bytes += rec.payload.length;
      seq = got[got.length - 1]!.seq + 1;
    }
  });
  const readMs = performance.now() - t2;
  console.log(
    `read:     ${read.toLocaleString('en-US')} records in ${(readMs / 1000).toFixed(2)} s = ${rate(read, readMs)} (${mib(bytes)} of payload, ${reopened.log.corruptRecordsRead} corrupt; ${readStall})`,
  );
  if (read !== appended) throw new Error(`read back ${read} records, appended ${appended}`);
  await reopened.log.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
