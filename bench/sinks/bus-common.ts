/**
 * What the Redis Streams and NATS JetStream sink benchmarks share: the result shape, a gateway
 * process with a pipeline module, the load generator in its own process with the sink sampled at
 * the start and end of its measured window, and the ~400 B events the raw client loops send.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Event, Severity } from '../../src/gen/polku/v1/event.js';
import type { LoadgenMessage, LoadResult } from '../lib/load-result.js';
import { delay, freePort, hasExited, spawnTsx, stopChild, type Child } from '../lib/children.js';
import { cpuSeconds } from './common.js';

export interface SinkOptions {
  /** The load generator's measured window, and each raw loop's length. */
  durationMs: number;
  warmupMs: number;
}

export interface SinkResult {
  sink: string;
  /** Events/s stored by the server, sent through a `polku serve` process. */
  gatewayPerSec: number;
  /** Events/s stored by the server from a raw client loop in this process (the ceiling). */
  rawPerSec: number;
  /** gateway / raw. */
  ratio: number;
  target: number;
  /** The gateway process's CPU seconds over the measured window per event stored, in µs. */
  gatewayCpuUsPerEvent: number;
  /** How the ceiling was measured, and anything else worth a line. */
  notes: string[];
}

export interface Gateway {
  readonly child: Child;
  readonly grpcAddr: string;
  readonly metricsUrl: string;
}

/** `polku serve --config <config>` on free ports, ready (readyz 200) before it resolves. */
export async function startGateway(config: string, env: Record<string, string>): Promise<Gateway> {
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const metricsAddr = `127.0.0.1:${await freePort()}`;
  // POLKU_BENCH_GATEWAY_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof': where the gateway's CPU goes.
  const nodeArgs = process.env['POLKU_BENCH_GATEWAY_NODE_ARGS']?.split(' ').filter((a) => a !== '') ?? [];
  const child = spawnTsx('gateway', 'src/cli/main.ts', ['serve', '--config', config], {
    nodeArgs,
    env: {
      POLKU_GRPC_ADDR: grpcAddr,
      POLKU_METRICS_ADDR: metricsAddr,
      POLKU_OTLP_GRPC_ADDR: 'off',
      POLKU_OTLP_HTTP_ADDR: 'off',
      POLKU_LOG_LEVEL: 'warn',
      ...env,
    },
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (hasExited(child)) throw new Error(`the gateway exited before it was ready:\n${child.tail()}`);
    try {
      if ((await fetch(`http://${metricsAddr}/readyz`, { signal: AbortSignal.timeout(1_000) })).status === 200) {
        return { child, grpcAddr, metricsUrl: `http://${metricsAddr}/metrics` };
      }
    } catch {
      // not listening yet
    }
    await delay(100);
  }
  throw new Error(`the gateway was not ready in 30 s:\n${child.tail()}`);
}

export async function stopGateway(gw: Gateway): Promise<void> {
  await stopChild(gw.child, 10_000);
}

/**
 * Runs bench/loadgen.ts at full speed (or paced at `rate` events/s) against the gateway and returns
 * how many events the sink stored per second during the generator's measured window (`stored()`
 * read at its start and end).
 */
export async function storedPerSecUnderLoad(
  gw: Gateway,
  opts: SinkOptions,
  stored: () => Promise<number>,
  rate = 0,
  serverPid?: number,
): Promise<{ perSec: number; load: LoadResult; cpuUsPerEvent: number; cores: string }> {
  const gen = spawnTsx(
    'loadgen',
    'bench/loadgen.ts',
    // --unique-ids: the pool's ids would repeat, and JetStream's duplicate window would drop them.
    [
      '--target',
      gw.grpcAddr,
      '--duration-ms',
      String(opts.durationMs),
      '--warmup-ms',
      String(opts.warmupMs),
      '--batch',
      '100',
      '--rate',
      String(rate),
      '--unique-ids',
    ],
    { ipc: true },
  );
  type Sample = { at: number; count: number; cpu: number; loadgenCpu: number; serverCpu: number };
  let start: Sample | undefined;
  let end: Sample | undefined;
  const samples: Promise<void>[] = [];
  gen.proc.on('message', (msg: LoadgenMessage) => {
    const cpu = cpuSeconds(gw.child.pid);
    const loadgenCpu = cpuSeconds(gen.pid);
    const serverCpu = serverPid === undefined ? 0 : cpuSeconds(serverPid);
    samples.push(
      stored().then((count) => {
        const at = performance.now();
        if (msg.phase === 'measure-start') start = { at, count, cpu, loadgenCpu, serverCpu };
        else end = { at, count, cpu, loadgenCpu, serverCpu };
      }),
    );
  });
  let lastLine = '';
  gen.onStdoutLine((line) => {
    if (line.trim() !== '') lastLine = line;
  });
  const status = await gen.exited;
  await Promise.all(samples);
  if (status !== 0) throw new Error(`load generator exited with ${status}:\n${gen.tail()}`);
  if (!start || !end) throw new Error('the load generator never reported its measured window');
  const load = JSON.parse(lastLine) as LoadResult;
  const seconds = (end.at - start.at) / 1000;
  const core = (a: number, b: number) => ((b - a) / seconds).toFixed(2);
  return {
    perSec: ((end.count - start.count) / (end.at - start.at)) * 1000,
    load,
    cpuUsPerEvent: ((end.cpu - start.cpu) / Math.max(1, end.count - start.count)) * 1e6,
    // Where the machine's cores went over the window: what bounds the figure on a small machine.
    cores: `cores used over the window: gateway ${core(start.cpu, end.cpu)}, load generator ${core(start.loadgenCpu, end.loadgenCpu)}${serverPid === undefined ? '' : `, server ${core(start.serverCpu, end.serverCpu)}`} (of ${availableParallelism()})`,
  };
}

/**
 * 20 distinct batches of `size` events of about 400 B (metadata as an agent sends it), reused
 * round-robin. The payload is 290 random bytes, as bench/loadgen.ts sends (an event of ~400 B
 * encoded): binary, so the JSON emitters write it as `payload_base64`, the same work the gateway
 * does for the load generator's events.
 */
export function eventBatches(size: number): Event[][] {
  const payload = randomBytes(290);
  return Array.from({ length: 20 }, (_, b) =>
    Array.from({ length: size }, (_, i) =>
      Event.fromPartial({
        id: `01JBENCH${String(b).padStart(3, '0')}${String(i).padStart(6, '0')}`,
        timestampUnixNs: 1_764_560_000_000_000_000n + BigInt(b * size + i),
        source: 'bench-loadgen',
        eventType: 'bench.synthetic',
        severity: Severity.SEVERITY_INFO,
        metadata: { cluster: 'bench', namespace: 'default', pod: 'bench-loadgen-7d9f8c6b5-x2k4q' },
        payload,
      }),
    ),
  );
}

/**
 * Calls `round()` (one batch, awaited) for `ms` after a warm-up; events per second. With
 * `inFlight` > 1 that many rounds run at once, each starting the next when it ends.
 */
export async function loop(ms: number, warmupMs: number, batch: number, round: () => Promise<void>, inFlight = 1): Promise<number> {
  const workers = async (until: number, count: boolean): Promise<number> => {
    let sent = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < until) {
          await round();
          if (count) sent += batch;
        }
      }),
    );
    return sent;
  };
  await workers(performance.now() + warmupMs, false);
  const start = performance.now();
  const sent = await workers(start + ms, true);
  return (sent / (performance.now() - start)) * 1000;
}

export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
