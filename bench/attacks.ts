/**
 * The attack bench: a gateway at the chart's heap (--max-old-space-size=160), a normal agent
 * (bench/loadgen.ts, its own process) measured alone, then under each attack in turn, each attack
 * run by this file in a third process (`--attacker <kind>`). Per attack it reports: the gateway
 * still up, the agent's throughput as a ratio of its throughput alone (target ≥ 0.5), the
 * gateway's peak RSS against the chart's 320 MiB limit, and whether /healthz answered every probe.
 *
 *   npm run bench:attacks                          # 5 s windows
 *   npm run bench:attacks -- --duration-ms 3000 --only silent-connections
 *
 * Loopback only. The silent-connection attack stays well inside this machine's descriptor limit.
 */
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { IngestBatch } from '../src/gen/polku/v1/gateway.js';
import { delay, freePort, hasExited, installChildCleanup, spawnTsx, stopChild, type Child } from './lib/children.js';
import type { LoadgenMessage, LoadResult } from './lib/load-result.js';
import { readStatusKb } from './lib/procfs.js';

const GATEWAY_ENTRY = 'src/cli/main.ts';
const GATEWAY_CONFIG = 'bench/bench.config.ts';
const CHART_NODE_ARGS = ['--max-old-space-size=160'];
const CHART_MEMORY_LIMIT_MIB = 320;
const TARGET_RATIO = 0.5;
const HEALTH_POLL_MS = 250;
const HEALTH_TIMEOUT_MS = 1_000;
const READY_TIMEOUT_MS = 60_000;

const ATTACKS = ['non-reading-streams', 'silent-connections', 'amplification', 'malformed-frames'] as const;
type Attack = (typeof ATTACKS)[number];
/**
 * When the attack has taken hold (a series of the gateway's /metrics and its least value), so
 * the agent is measured against the attack's steady state, not its ramp.
 */
const SETTLED: Partial<Record<Attack, { series: string; atLeast: number }>> = {
  'non-reading-streams': { series: 'polku_grpc_paused_streams', atLeast: 10 },
  'silent-connections': { series: 'polku_grpc_connections_open', atLeast: 1000 },
};
const SETTLE_TIMEOUT_MS = 60_000;

const DESCRIPTIONS: Record<Attack, string> = {
  'non-reading-streams': '10 HTTP/2 streams that send ~3.6 MiB batches and never read their Acks',
  'silent-connections': '5,000 TCP connections that never send the HTTP/2 preface',
  amplification: '1 MiB batches: empty events (0a 00)*, NDJSON {} lines, protobuf-delimited 2-byte messages',
  'malformed-frames': '100,000 malformed protobuf frames on one stream',
};

// ---------------------------------------------------------------------------
// Attackers (run in their own process: `node --import tsx bench/attacks.ts --attacker <kind>`)

function grpcFrame(body: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** An IngestBatch with `events` (field 4) holding `body` as is: bytes no encoder would build. */
function eventsBatchOf(body: Buffer): Buffer {
  const source = Buffer.concat([Buffer.from([0x0a]), varint(6), Buffer.from('attack')]);
  return Buffer.concat([source, Buffer.from([0x22]), varint(body.length), body]);
}

function rawBatch(data: Buffer, format: string): Buffer {
  return Buffer.from(
    IngestBatch.encode(IngestBatch.fromPartial({ source: 'attack', payload: { $case: 'raw', value: { data, format } } })).finish(),
  );
}

function openStream(target: string): http2.ClientHttp2Stream {
  const session = http2.connect(`http://${target}`);
  session.on('error', () => undefined);
  const req = session.request({
    ':method': 'POST',
    ':path': '/polku.v1.Gateway/StreamEvents',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  req.on('error', () => undefined);
  return req;
}

/** Writes `next()` frames as fast as the stream takes them, until `next` returns null. */
function pump(req: http2.ClientHttp2Stream, next: () => Buffer | null): void {
  const go = (): void => {
    for (;;) {
      const frame = next();
      if (frame === null) return;
      if (!req.write(frame)) {
        req.once('drain', go);
        return;
      }
    }
  };
  go();
}

async function runAttacker(kind: Attack, target: string): Promise<void> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  switch (kind) {
    case 'non-reading-streams': {
      // Small batches whose unread Acks fill the window back to the gateway, then big ones.
      const small = grpcFrame(
        IngestBatch.encode(
          IngestBatch.fromPartial({ source: 'attack', payload: { $case: 'events', value: { events: [{ id: 'x', eventType: 't' }] } } }),
        ).finish(),
      );
      const payload = Buffer.alloc(900 * 1024, 0x61);
      const events = [0, 1, 2, 3].map((i) => ({ id: `big-${i}`, eventType: 't', payload }));
      const big = grpcFrame(
        IngestBatch.encode(IngestBatch.fromPartial({ source: 'attack', payload: { $case: 'events', value: { events } } })).finish(),
      );
      for (let s = 0; s < 10; s++) {
        const req = openStream(target);
        req.pause(); // never reads its Acks
        let n = 0;
        pump(req, () => (++n <= 3_320 ? small : big));
      }
      break;
    }
    case 'silent-connections': {
      const sockets: Socket[] = [];
      for (let i = 0; i < 5_000; i++) {
        const s = connect(port, host);
        s.on('error', () => undefined);
        sockets.push(s);
        if (i % 100 === 99) await delay(1);
      }
      break;
    }
    case 'amplification': {
      const MiB1 = 1024 * 1024;
      const frames = [
        grpcFrame(eventsBatchOf(Buffer.alloc(MiB1, Buffer.from([0x0a, 0x00])))),
        grpcFrame(rawBatch(Buffer.alloc(MiB1, '{}\n'), 'ndjson')),
        grpcFrame(rawBatch(Buffer.alloc(MiB1 - (MiB1 % 3), Buffer.from([0x02, 0x0a, 0x00])), 'protobuf-delimited')),
      ];
      for (let s = 0; s < 3; s++) {
        const req = openStream(target);
        req.resume(); // reads (and drops) its Acks
        let n = 0;
        pump(req, () => frames[n++ % frames.length]!);
      }
      break;
    }
    case 'malformed-frames': {
      const bad = grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])); // a length that overruns
      const req = openStream(target);
      req.resume();
      let n = 0;
      pump(req, () => (n++ < 100_000 ? bad : null));
      break;
    }
  }
  process.stdout.write('ATTACKING\n');
  // Held until the parent stops this process.
  await new Promise(() => undefined);
}

// ---------------------------------------------------------------------------
// The bench

interface Gateway {
  child: Child;
  grpc: string;
  metrics: string;
}

async function startGateway(): Promise<Gateway> {
  const grpc = `127.0.0.1:${await freePort()}`;
  const metrics = `127.0.0.1:${await freePort()}`;
  const child = spawnTsx('gateway', GATEWAY_ENTRY, ['serve', '--config', GATEWAY_CONFIG], {
    env: { POLKU_GRPC_ADDR: grpc, POLKU_METRICS_ADDR: metrics, POLKU_HTTP_ADDR: 'off', POLKU_LOG_LEVEL: 'warn' },
    nodeArgs: CHART_NODE_ARGS,
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await probe(`http://${metrics}/readyz`))) {
    if (hasExited(child)) throw new Error(`the gateway exited before it was ready:\n${child.tail()}`);
    if (Date.now() > deadline) throw new Error(`the gateway was not ready in ${READY_TIMEOUT_MS / 1000} s:\n${child.tail()}`);
    await delay(100);
  }
  return { child, grpc, metrics };
}

async function settle(gw: Gateway, attack: Attack): Promise<void> {
  const want = SETTLED[attack];
  if (!want) {
    await delay(1_000); // let the attack take hold before the agent starts
    return;
  }
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const value = await metricValue(`http://${gw.metrics}/metrics`, want.series);
    if (value !== undefined && value >= want.atLeast) return;
    if (hasExited(gw.child) || Date.now() > deadline) {
      process.stderr.write(`${attack}: ${want.series} did not reach ${want.atLeast} (last ${value}); measuring anyway\n`);
      return;
    }
    await delay(100);
  }
}

async function metricValue(url: string, series: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  } catch {
    return undefined;
  }
}

async function probe(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })).status === 200;
  } catch {
    return false;
  }
}

/** One normal agent (bench/loadgen.ts, 1 stream, full speed) for `durationMs`. */
async function normalAgent(target: string, durationMs: number): Promise<LoadResult> {
  const args = ['--target', target, '--streams', '1', '--duration-ms', String(durationMs), '--warmup-ms', '1000', '--rate', '0'];
  const gen = spawnTsx('loadgen', 'bench/loadgen.ts', args, { ipc: true });
  gen.proc.on('message', (_: LoadgenMessage) => undefined);
  let last = '';
  gen.onStdoutLine((line) => {
    if (line.trim() !== '') last = line;
  });
  const status = await gen.exited;
  if (status !== 0 && status !== 2) throw new Error(`load generator exited with ${status}:\n${gen.tail()}`);
  return JSON.parse(last) as LoadResult;
}

interface Row {
  attack: string;
  up: boolean;
  perSec: number;
  ratio: number | null;
  peakRssMiB: number;
  health: string;
  /** How the gateway ended when it did not survive (its exit code or signal). */
  exit: string;
}

async function measure(attack: Attack | null, durationMs: number, baseline: number | null): Promise<Row> {
  const gw = await startGateway();
  let attacker: Child | null = null;
  try {
    if (attack !== null) {
      attacker = spawnTsx(`attacker ${attack}`, 'bench/attacks.ts', ['--attacker', attack, '--target', gw.grpc]);
      await new Promise<void>((resolve, reject) => {
        attacker!.onStdoutLine((line) => line === 'ATTACKING' && resolve());
        void attacker!.exited.then((s) => reject(new Error(`attacker exited (${s}):\n${attacker!.tail()}`)));
      });
      await settle(gw, attack);
    }
    let probes = 0;
    let answered = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        probes++;
        if (await probe(`http://${gw.metrics}/healthz`)) answered++;
        await delay(HEALTH_POLL_MS);
      }
    })();
    let perSec = 0;
    try {
      perSec = (await normalAgent(gw.grpc, durationMs)).acceptedPerSec;
    } catch (err) {
      process.stderr.write(`agent failed under ${attack}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    polling = false;
    await poller;
    const peakKb = readStatusKb(gw.child.pid, 'VmHWM') ?? 0;
    const up = !hasExited(gw.child);
    return {
      exit: up ? '' : String(await gw.child.exited),
      attack: attack ?? '(none: agent alone)',
      up,
      perSec,
      ratio: baseline === null ? null : perSec / baseline,
      peakRssMiB: peakKb / 1024,
      health: `${answered}/${probes}`,
    };
  } finally {
    if (attacker) await stopChild(attacker, 2_000);
    await stopChild(gw.child, 5_000);
  }
}

function report(rows: Row[], durationMs: number): string {
  const header = [
    'attack',
    'gateway up',
    'agent events/s',
    `ratio (≥ ${TARGET_RATIO})`,
    `peak RSS (limit ${CHART_MEMORY_LIMIT_MIB} MiB)`,
    '/healthz answered',
  ];
  const lines = rows.map((r) => [
    r.attack,
    r.up ? 'yes' : 'NO',
    Math.round(r.perSec).toLocaleString('en-US'),
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}${r.ratio >= TARGET_RATIO ? '' : ' (below target)'}`,
    r.up ? `${r.peakRssMiB.toFixed(0)} MiB${r.peakRssMiB > CHART_MEMORY_LIMIT_MIB ? ' (OVER)' : ''}` : `gateway exited: ${r.exit}`,
    r.health,
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i]!.length)));
  const fmt = (l: string[]): string => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    `gateway: polku serve --config ${GATEWAY_CONFIG}, node ${CHART_NODE_ARGS.join(' ')}; agent: bench/loadgen.ts, 1 stream, ${durationMs} ms window`,
    fmt(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...lines.map(fmt),
    '',
    ...ATTACKS.map((a) => `${a}: ${DESCRIPTIONS[a]}`),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      attacker: { type: 'string' },
      target: { type: 'string' },
      'duration-ms': { type: 'string', default: '5000' },
      only: { type: 'string' },
    },
  });
  if (values.attacker !== undefined) {
    if (!(ATTACKS as readonly string[]).includes(values.attacker) || values.target === undefined) {
      throw new Error(`--attacker must be one of ${ATTACKS.join(', ')}, with --target host:port`);
    }
    await runAttacker(values.attacker as Attack, values.target);
    return;
  }
  installChildCleanup();
  const durationMs = Number(values['duration-ms']);
  const attacks = values.only === undefined ? ATTACKS : ATTACKS.filter((a) => values.only!.split(',').includes(a));
  const rows: Row[] = [];
  const alone = await measure(null, durationMs, null);
  rows.push(alone);
  process.stderr.write(`agent alone: ${Math.round(alone.perSec)} events/s\n`);
  for (const attack of attacks) {
    const row = await measure(attack, durationMs, alone.perSec);
    process.stderr.write(`${attack}: ratio ${row.ratio?.toFixed(2)}, peak ${row.peakRssMiB.toFixed(0)} MiB\n`);
    rows.push(row);
  }
  process.stdout.write(`${report(rows, durationMs)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
