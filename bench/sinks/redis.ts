/**
 * Redis Streams: a `polku serve` process with the RedisStreamEmitter (bench/sinks/redis.config.ts)
 * under bench/loadgen.ts at full speed, against a redis-server started here (no persistence); and
 * the ceiling in the same run: a raw ioredis loop sending the same 1,000-event batches the way the
 * emitter does (EVALSHAs of its XADD script with the events packed into one argument, 250 events
 * each, all sent before the first reply is awaited), as one EVALSHA of 1,000, and as the script
 * with 8 arguments per event that the emitter sent until 2026-12-03 evening, the best of the three
 * in the run taken as the ceiling; beside it a raw loop of
 * pipelined XADDs (one command per event) and redis-benchmark's own figure for a pipelined XADD.
 * Stored events are read from the server (`XINFO STREAM` entries-added), not from the gateway.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { packXadd } from '../../src/emit/redis-pack.js';
import { DEFAULT_REDIS_EVENTS_PER_COMMAND, XADD_SCRIPT } from '../../src/emit/redis-stream.js';
import { freePort, spawnCommand, stopChild } from '../lib/children.js';
import {
  eventBatches,
  fmt,
  loop,
  startGateway,
  stopGateway,
  storedPerSecUnderLoad,
  type SinkOptions,
  type SinkResult,
} from './bus-common.js';

const TARGET = 100_000;

/** The emitter's script until 2026-12-03 evening: KEYS one per event, ARGV[1] MAXLEN, then 8 values per event. */
const ARGS_SCRIPT = `local maxlen = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 8
  local r = redis.pcall('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', 'id', ARGV[b+1], 'time', ARGV[b+2], 'source', ARGV[b+3], 'event_type', ARGV[b+4], 'severity', ARGV[b+5], 'outcome', ARGV[b+6], 'metadata', ARGV[b+7], 'payload', ARGV[b+8])
  if type(r) == 'table' and r.err then out[i] = r.err else out[i] = 0 end
end
return out`;
const BATCH = 1000;

export async function redisStreams(opts: SinkOptions): Promise<SinkResult> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'polku-bench-redis-'));
  const server = spawnCommand('redis-server', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { maxRetriesPerRequest: 3, retryStrategy: (n) => (n > 50 ? null : 100) });
  client.on('error', () => undefined); // refused until redis-server listens; ping() below retries
  const notes: string[] = [];
  try {
    await client.ping();
    const entriesAdded = async (stream: string): Promise<number> => {
      const info = (await client.call('XINFO', 'STREAM', stream).catch(() => null)) as unknown[] | null;
      if (info === null) return 0;
      return Number(info[info.indexOf('entries-added') + 1]);
    };

    // The ceiling: what the emitter does, minus the gateway: the same Lua through ioredis, one
    // batch at a time. And the plain way, one pipelined XADD per event, for comparison.
    const batches = eventBatches(BATCH);
    const sha = (await client.script('LOAD', XADD_SCRIPT)) as string;
    const shaArgs = (await client.script('LOAD', ARGS_SCRIPT)) as string;
    let k = 0;
    // One batch as EVALSHAs of `per` events each, all sent before the first reply is awaited:
    // the emitter's script and packing (one packed argument per command).
    const scriptRound = (per: number) => async (): Promise<void> => {
      const batch = batches[k++ % batches.length]!;
      const calls: Array<Promise<unknown>> = [];
      for (let lo = 0; lo < batch.length; lo += per) {
        const hi = Math.min(batch.length, lo + per);
        const { keys, data } = packXadd(batch, lo, hi, () => 'raw');
        calls.push(client.call('EVALSHA', sha, keys.length, ...keys, '200000', hi - lo, data));
      }
      for (const reply of (await Promise.all(calls)) as unknown[][]) {
        if (reply.some((r) => r !== 0)) throw new Error(`raw script XADD failed: ${String(reply.find((r) => r !== 0))}`);
      }
    };
    // The same with 8 arguments per event (the emitter's script until 2026-12-03 evening).
    const argsRound = (per: number) => async (): Promise<void> => {
      const batch = batches[k++ % batches.length]!;
      const calls: Array<Promise<unknown>> = [];
      for (let lo = 0; lo < batch.length; lo += per) {
        const part = batch.slice(lo, lo + per);
        const args: Array<string | number | Buffer> = [shaArgs, part.length];
        for (let i = 0; i < part.length; i++) args.push('raw');
        args.push('200000');
        for (const e of part) {
          args.push(
            e.id,
            e.timestampUnixNs.toString(),
            e.source,
            e.eventType,
            'SEVERITY_INFO',
            'OUTCOME_UNSPECIFIED',
            JSON.stringify(e.metadata),
            Buffer.from(e.payload),
          );
        }
        calls.push(client.call('EVALSHA', ...args));
      }
      for (const reply of (await Promise.all(calls)) as unknown[][]) {
        if (reply.some((r) => r !== 0)) throw new Error(`raw script XADD failed: ${String(reply.find((r) => r !== 0))}`);
      }
    };
    const rawOne = await loop(opts.durationMs, opts.warmupMs, BATCH, scriptRound(BATCH));
    await client.del('raw');
    const rawSplit = await loop(opts.durationMs, opts.warmupMs, BATCH, scriptRound(DEFAULT_REDIS_EVENTS_PER_COMMAND));
    await client.del('raw');
    const rawArgs = await loop(opts.durationMs, opts.warmupMs, BATCH, argsRound(DEFAULT_REDIS_EVENTS_PER_COMMAND));
    await client.del('raw');
    // The ceiling is the best of the three in this run: none wins every run on a loaded machine.
    const raw = Math.max(rawOne, rawSplit, rawArgs);
    notes.push(
      `raw ioredis, the emitter's packed script: one EVALSHA of 1,000 per batch ${fmt(rawOne)}/s, EVALSHAs of ${DEFAULT_REDIS_EVENTS_PER_COMMAND} all sent at once ${fmt(rawSplit)}/s; 8 arguments per event (the ceiling before 2026-12-03 evening), EVALSHAs of ${DEFAULT_REDIS_EVENTS_PER_COMMAND} ${fmt(rawArgs)}/s; the ceiling is the best`,
    );
    await client.del('raw');
    const pipelined = await loop(opts.durationMs, opts.warmupMs, BATCH, async () => {
      const p = client.pipeline();
      for (const e of batches[k++ % batches.length]!) {
        p.xadd(
          'raw',
          'MAXLEN',
          '~',
          '200000',
          '*',
          'id',
          e.id,
          'time',
          e.timestampUnixNs.toString(),
          'source',
          e.source,
          'event_type',
          e.eventType,
          'severity',
          'SEVERITY_INFO',
          'outcome',
          'OUTCOME_UNSPECIFIED',
          'metadata',
          JSON.stringify(e.metadata),
          'payload',
          Buffer.from(e.payload),
        );
      }
      const replies = await p.exec();
      if (replies?.some(([err]) => err)) throw new Error(`raw XADD failed: ${String(replies.find(([err]) => err)![0])}`);
    });
    await client.del('raw');
    notes.push(`raw ioredis pipelined XADD (one command per event): ${fmt(pipelined)}/s`);

    const bench = spawnSync(
      'redis-benchmark',
      [
        '-p',
        String(port),
        '-n',
        '1000000',
        '-P',
        '1000',
        '-c',
        '1',
        '--csv',
        'XADD',
        'rb',
        'MAXLEN',
        '~',
        '200000',
        '*',
        'id',
        '01JBENCH000000001',
        'payload',
        'x'.repeat(300),
      ],
      { encoding: 'utf8' },
    );
    const rb = /"XADD[^"]*","([\d.]+)"/.exec(bench.stdout ?? '');
    notes.push(
      rb
        ? `redis-benchmark -P 1000 -c 1 XADD (2 fields): ${fmt(Number(rb[1]))}/s`
        : `redis-benchmark: ${bench.error?.message ?? bench.stderr}`,
    );
    await client.del('rb');

    const gw = await startGateway('bench/sinks/redis.config.ts', { POLKU_BENCH_REDIS_URL: url });
    try {
      const { perSec, load, cpuUsPerEvent, cores } = await storedPerSecUnderLoad(
        gw,
        opts,
        () => entriesAdded('bench:bench-loadgen'),
        0,
        server.pid,
      );
      notes.push(`loadgen accepted ${fmt(load.acceptedPerSec)}/s, ack p50 ${load.ackLatencyMs.p50} ms`, cores);
      return {
        sink: 'Redis Streams',
        gatewayPerSec: perSec,
        rawPerSec: raw,
        ratio: perSec / raw,
        target: TARGET,
        gatewayCpuUsPerEvent: cpuUsPerEvent,
        notes,
      };
    } finally {
      await stopGateway(gw);
    }
  } finally {
    client.disconnect();
    await stopChild(server, 5_000);
    rmSync(dir, { recursive: true, force: true });
  }
}
