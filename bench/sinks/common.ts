/**
 * What every sink benchmark shares: the gateway as its own `polku serve` process with the sink's
 * pipeline module, bench/loadgen.ts as another process at full speed, and the emitter's own
 * delivered-events counter sampled at the start and end of the load generator's measured window
 * (the tail's rate, not intake's). The load is paced a little above the raw client's figure: at
 * full speed the generator would only take CPU from the gateway and the server on a small machine
 * and have the excess dropped.
 */
import { readFileSync } from 'node:fs';
import { spawnTsx } from '../lib/children.js';
import type { LoadgenMessage, LoadResult } from '../lib/load-result.js';
import { servePolku } from '../../test/helpers/polku-process.js';

export interface SinkBenchOptions {
  /** The load generator's measured window. */
  durationMs: number;
  warmupMs: number;
  streams: number;
  /** Events per IngestBatch the load generator sends. */
  batch: number;
}

/** One sink's figures, as the runner prints and docs/benchmarks.md records them. */
export interface SinkFigures {
  sink: string;
  /** Events/s the emitter delivered while the gateway was under load. */
  gatewayPerSec: number;
  /** Events/s the load generator had acknowledged (intake), for comparison. */
  acceptedPerSec: number;
  /** The same server driven by its own client with no gateway: the ceiling. */
  rawPerSec: number;
  rawLabel: string;
  /** Events/s the issue asks of the gateway, or 0 for none. */
  target: number;
  /** CPU time (user + system) of the gateway process per delivered event over the measured window, in µs. */
  gatewayCpuUsPerEvent: number;
  notes: string[];
}

/**
 * User + system CPU seconds a process has used so far (Linux /proc/<pid>/stat, fields 14 and 15,
 * in clock ticks of 1/100 s): the gateway's CPU per delivered event is the figure a loaded machine
 * changes least.
 */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A counter's value over the series whose labels include `labels`. */
export async function counter(metricsUrl: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Load offered to the gateway, as a multiple of the raw client's figure. */
export const OFFERED_LOAD = 1.2;

/**
 * Runs the gateway with `config` (and `env`), loads it at `rate` events/s, and returns the delivered events/s
 * (`delivered` read from its /metrics) over the measured window, and intake's figure.
 */
export async function gatewayDelivery(
  o: SinkBenchOptions,
  config: string,
  env: Record<string, string>,
  delivered: { name: string; labels: Record<string, string> },
  rate: number,
): Promise<{ deliveredPerSec: number; acceptedPerSec: number; dropped: number; cpuUsPerEvent: number }> {
  const gw = await servePolku(['--config', config], { POLKU_LOG_LEVEL: 'info', ...env });
  const metricsUrl = `http://127.0.0.1:${gw.metricsPort}/metrics`;
  try {
    const gen = spawnTsx(
      'loadgen',
      'bench/loadgen.ts',
      [
        '--target',
        `127.0.0.1:${gw.grpcPort}`,
        '--streams',
        String(o.streams),
        '--batch',
        String(o.batch),
        '--duration-ms',
        String(o.durationMs),
        '--warmup-ms',
        String(o.warmupMs),
        '--rate',
        String(Math.round(rate)),
        '--unique-ids', // every event a new row / line: nothing is skipped as a resend
      ],
      { ipc: true },
    );
    const samples: Array<Promise<{ at: number; value: number; cpu: number }>> = [];
    gen.proc.on('message', (msg: LoadgenMessage) => {
      if (msg.phase === 'measure-start' || msg.phase === 'measure-end') {
        const cpu = cpuSeconds(gw.child.pid!);
        samples.push(counter(metricsUrl, delivered.name, delivered.labels).then((value) => ({ at: performance.now(), value, cpu })));
      }
    });
    let last = '';
    gen.onStdoutLine((line) => {
      if (line.trim() !== '') last = line;
    });
    const status = await gen.exited;
    if (status !== 0) throw new Error(`load generator exited with ${status}:\n${gen.tail()}`);
    const result = JSON.parse(last) as LoadResult;
    const [start, end] = await Promise.all(samples);
    if (start === undefined || end === undefined) throw new Error('the load generator reported no measured window');
    const dropped = await counter(metricsUrl, 'polku_events_dropped_total', {});
    return {
      deliveredPerSec: ((end.value - start.value) / (end.at - start.at)) * 1000,
      acceptedPerSec: result.acceptedPerSec,
      dropped,
      cpuUsPerEvent: ((end.cpu - start.cpu) / Math.max(1, end.value - start.value)) * 1e6,
    };
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
}

/** Calls `step` back to back for `durationMs` after `warmupMs`; returns units/s (step returns units done). */
export async function rawLoop(durationMs: number, warmupMs: number, step: (i: number) => Promise<number>): Promise<number> {
  let i = 0;
  const warmEnd = performance.now() + warmupMs;
  while (performance.now() < warmEnd) await step(i++);
  let done = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) done += await step(i++);
  return (done / (performance.now() - start)) * 1000;
}
