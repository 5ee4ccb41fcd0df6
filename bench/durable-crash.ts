/**
 * `npm run bench:durable-crash`: how much a durable gateway sends again after `kill -9`.
 *
 *   node --import tsx bench/durable-crash.ts [--kills 10] [--rate 20000] [--seed 1]
 *                                            [--persist-ms N] [--baseline-ms 1000]
 *
 * A receiver in its own process (test/fixtures/receiver.ts) records every event id it gets; it
 * survives the gateway. A gateway (bench/durable-crash.config.ts, the log in a fresh directory)
 * takes load from one gRPC stream (batches of 100, four in flight, at about --rate events/s) and
 * is killed with SIGKILL after a random 1–3 s (seeded), `--kills` times, each time restarted on
 * the same directory. A last start takes no load and delivers what is left. Then:
 *
 * - acked: events whose Ack said accepted; lost: acked but never received (must be 0);
 * - duplicates per kill: ids the restarted gateway delivered that an earlier one had delivered,
 *   and the same as seconds of delivery (÷ the receiver's rate while the gateway was up).
 *
 * The same loop runs twice, with the default cursor cadence (or --persist-ms) and with
 * --baseline-ms (1000: cursors persisted once a second, as before the positions file), so the
 * two figures come from the same machine at the same time. --baseline-ms 0 skips the baseline.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AckStream, protoOnlyClient } from '../test/helpers/gateway-harness.js';
import { servePolku } from '../test/helpers/polku-process.js';
import { freePort, startReceiver } from '../test/helpers/receiver-process.js';
import { mulberry32 } from '../test/helpers/seeded-random.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '10' },
    rate: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '1' },
    'persist-ms': { type: 'string', default: '0' },
    'baseline-ms': { type: 'string', default: '1000' },
  },
  strict: true,
});
const KILLS = Number(values.kills);
const RATE = Number(values.rate);
const BATCH = 100;
const IN_FLIGHT = 4;

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (msg: string): void => void process.stderr.write(`[durable-crash] ${msg}\n`);

function lines(sink: string): string[] {
  return existsSync(sink) ? readFileSync(sink, 'utf8').split('\n').filter(Boolean) : [];
}

interface RunResult {
  persistMs: number | 'default';
  acked: number;
  received: number;
  lost: number;
  duplicatesPerKill: number[];
  deliveryPerSec: number;
}

async function run(persistMs: number, seed: number): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'polku-bench-crash-'));
  const sink = join(dir, 'received.txt');
  const port = await freePort();
  const receiver = await startReceiver(port, sink, children);
  const env = {
    POLKU_DURABLE: 'true',
    POLKU_DATA_DIR: join(dir, 'data'),
    BENCH_RECEIVER_URL: `http://127.0.0.1:${port}/events`,
    ...(persistMs > 0 ? { BENCH_CURSOR_PERSIST_MS: String(persistMs) } : {}),
  };
  const next = mulberry32(seed);
  const acked = new Set<string>();
  /** The sink's line count when each incarnation of the gateway was up (its lines start there). */
  const starts: number[] = [];
  let upMs = 0;
  let n = 0;
  for (let k = 0; k <= KILLS; k++) {
    const gw = await servePolku(['--config', 'bench/durable-crash.config.ts'], env);
    children.push(gw.child);
    starts.push(lines(sink).length);
    const upAt = Date.now();
    if (k === KILLS) {
      // The last start: no load, deliver what is left.
      const deadline = Date.now() + 120_000;
      const got = (): Set<string> => new Set(lines(sink).map((l) => l.split(' ')[1]!));
      while (Date.now() < deadline) {
        const have = got();
        let missing = 0;
        for (const id of acked) if (!have.has(id)) missing++;
        if (missing === 0) break;
        await sleep(100);
      }
      gw.child.kill('SIGTERM');
      await gw.exited;
      break;
    }
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    stream.status.catch(() => undefined);
    const killAt = upAt + 1_000 + Math.floor(next() * 2_000);
    const inFlight = new Set<Promise<unknown>>();
    let stop = false;
    // Sends written after the kill never settle: the loop waits on this as well, never on them alone.
    let stopNow = (): void => undefined;
    const stopped = new Promise<void>((r) => (stopNow = r));
    const sending = (async () => {
      const started = Date.now();
      let sent = 0;
      while (!stop) {
        // Paced to --rate: never ahead of the schedule.
        const due = started + (sent / RATE) * 1000;
        if (due > Date.now()) await Promise.race([sleep(due - Date.now()), stopped]);
        if (stop) break;
        const events = Array.from({ length: BATCH }, () => ({ id: `e${n++}`, event_type: 'bench.crash', payload: Buffer.alloc(300, 7) }));
        sent += BATCH;
        const p = stream.send({ source: 'bench', events: { events } }).then((ack) => {
          for (const id of ack.event_ids) acked.add(id);
        });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p)).catch(() => undefined);
        if (inFlight.size >= IN_FLIGHT) await Promise.race([...inFlight, stopped]).catch(() => undefined);
      }
    })();
    await sleep(Math.max(0, killAt - Date.now()));
    gw.child.kill('SIGKILL');
    await gw.exited;
    upMs += Date.now() - upAt;
    stop = true;
    stopNow();
    await sending.catch(() => undefined);
    client.close();
    log(`kill ${k + 1}/${KILLS}: ${acked.size} acked so far`);
  }
  receiver.kill('SIGTERM');
  const all = lines(sink).map((l) => l.split(' ')[1]!);
  rmSync(dir, { recursive: true, force: true });
  // Duplicates a restart caused: ids in incarnation k's lines that earlier ones had delivered.
  const seen = new Set<string>();
  const duplicatesPerKill: number[] = [];
  for (let k = 0; k < starts.length; k++) {
    const end = k + 1 < starts.length ? starts[k + 1]! : all.length;
    let dups = 0;
    for (let i = starts[k]!; i < end; i++) {
      const id = all[i]!;
      if (seen.has(id)) dups++;
      seen.add(id);
    }
    if (k > 0) duplicatesPerKill.push(dups);
  }
  let lost = 0;
  for (const id of acked) if (!seen.has(id)) lost++;
  const deliveredWhileUp = starts.length > 1 ? starts[starts.length - 1]! : all.length;
  return {
    persistMs: persistMs > 0 ? persistMs : 'default',
    acked: acked.size,
    received: all.length,
    lost,
    duplicatesPerKill,
    deliveryPerSec: deliveredWhileUp / (upMs / 1000),
  };
}

function describe(r: RunResult): string {
  const total = r.duplicatesPerKill.reduce((a, b) => a + b, 0);
  const mean = total / Math.max(1, r.duplicatesPerKill.length);
  const max = Math.max(0, ...r.duplicatesPerKill);
  const s = (d: number): string => (d / r.deliveryPerSec).toFixed(3);
  return [
    `cursor persist ${r.persistMs === 'default' ? 'default (10 ms)' : `${r.persistMs} ms`}:`,
    `  acked ${r.acked.toLocaleString('en-US')}, received ${r.received.toLocaleString('en-US')}, lost ${r.lost}, duplicates ${total.toLocaleString('en-US')}`,
    `  delivery while up ${Math.round(r.deliveryPerSec).toLocaleString('en-US')} events/s`,
    `  duplicates per kill: mean ${Math.round(mean)} (${s(mean)} s of delivery), max ${max} (${s(max)} s)`,
    `  per kill: ${r.duplicatesPerKill.join(' ')}`,
  ].join('\n');
}

const seed = Number(values.seed);
const results = [await run(Number(values['persist-ms']), seed)];
if (Number(values['baseline-ms']) > 0) results.push(await run(Number(values['baseline-ms']), seed));
process.stdout.write(`\nPOLKU durable crash bench: ${KILLS} kill -9 under ~${RATE.toLocaleString('en-US')} events/s\n`);
for (const r of results) process.stdout.write(`${describe(r)}\n`);
const failed = results.some((r) => r.lost > 0);
const worst = results[0]!;
const perKill = worst.duplicatesPerKill.reduce((a, b) => a + b, 0) / Math.max(1, worst.duplicatesPerKill.length) / worst.deliveryPerSec;
process.stdout.write(`target: duplicates per kill <= 0.1 s of delivery, 0 lost: ${perKill <= 0.1 && !failed ? 'PASS' : 'MISS'}\n`);
process.exit(failed ? 1 : 0);
