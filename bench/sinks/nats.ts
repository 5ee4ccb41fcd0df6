/**
 * NATS JetStream: a `polku serve` process with the NatsEmitter (bench/sinks/nats.config.ts) under
 * bench/loadgen.ts at full speed, against a nats-server -js started here (file storage in a temp
 * dir); and the ceiling in the same run: a raw @nats-io loop putting the same 1,000-event batches
 * on the wire the way the emitter does (JSON bodies, Nats-Msg-Id, a reply subject per message on
 * one ack subscription), measured with one batch in flight (the emitter's contract, the earlier
 * ceiling) and with four; the ceiling is the better of the two in the run. Beside it the client's
 * own jetstream().publish.
 * (`nats bench` is not packaged in Debian.) Stored events are read from
 * the server (the stream's last sequence), not from the gateway.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, createInbox, headers } from '@nats-io/transport-node';
import { eventToJson } from '../../src/emit/event-json.js';
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

const TARGET = 50_000;
const BATCH = 1000;
/** Batches the raw client keeps in flight for its second figure. */
const RAW_IN_FLIGHT = 4;

export async function natsJetStream(opts: SinkOptions): Promise<SinkResult> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'polku-bench-nats-'));
  const server = spawnCommand('nats-server', 'nats-server', ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)]);
  const url = `nats://127.0.0.1:${port}`;
  const notes: string[] = [];
  const nc = await connect({ servers: url, waitOnFirstConnect: true, timeout: 10_000 });
  try {
    const jsm = await jetstreamManager(nc);
    // Bounded like the Redis stream; the duplicate window stays at its default (2 minutes).
    await jsm.streams.add({ name: 'RAW', subjects: ['raw.>'], max_msgs: 200_000 });
    await jsm.streams.add({ name: 'BENCH', subjects: ['polku.>'], max_msgs: 200_000 });
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    const batches = eventBatches(BATCH);
    let k = 0;
    let round = 0;
    // The ceiling: what the emitter puts on the wire, from the client alone. Core publishes with
    // Nats-Msg-Id and a reply subject on one inbox subscription; a batch ends at its last ack.
    // Measured twice: one batch in flight (the emitter's contract, and the ceiling up to
    // 2026-12-03 15:00) and RAW_IN_FLIGHT batches at once, the best this client does here and the
    // ceiling the ratio is taken against.
    const inbox = createInbox();
    const waiting = new Map<number, { left: number; done: () => void }>();
    const sub = nc.subscribe(`${inbox}.>`, {
      callback: (_err, m) => {
        if ((JSON.parse(m.string()) as { error?: unknown }).error) throw new Error(`raw publish refused: ${m.string()}`);
        const s = m.subject;
        const r = Number(s.slice(inbox.length + 1, s.indexOf('.', inbox.length + 1)));
        const w = waiting.get(r)!;
        if (--w.left === 0) {
          waiting.delete(r);
          w.done();
        }
      },
    });
    const rawRound = async (): Promise<void> => {
      const batch = batches[k++ % batches.length]!;
      const r = round++;
      const finished = new Promise<void>((done) => waiting.set(r, { left: batch.length, done }));
      const h = headers();
      for (let i = 0; i < batch.length; i++) {
        h.set('Nats-Msg-Id', `${r}-${i}`); // fresh ids: the pool repeats, the duplicate window would drop them
        nc.publish('raw.bench', encoder.encode(JSON.stringify(eventToJson(batch[i]!))), { reply: `${inbox}.${r}.${i}`, headers: h });
      }
      await finished;
    };
    const rawOne = await loop(opts.durationMs, opts.warmupMs, BATCH, rawRound);
    const rawMany = await loop(opts.durationMs, opts.warmupMs, BATCH, rawRound, RAW_IN_FLIGHT);
    // The ceiling is the better of the two in this run: neither wins every run on a loaded machine.
    const raw = Math.max(rawOne, rawMany);
    notes.push(
      `raw client: one batch in flight (the ceiling before 2026-12-03 15:00) ${fmt(rawOne)}/s, ${RAW_IN_FLIGHT} in flight ${fmt(rawMany)}/s; the ceiling is the better`,
    );
    sub.unsubscribe();
    // For reference: the client's own JetStream publish, a request per message.
    let r2 = 0;
    const viaClient = await loop(Math.min(opts.durationMs, 3_000), 500, BATCH, async () => {
      const batch = batches[k++ % batches.length]!;
      const r = r2++;
      await Promise.all(
        batch.map((e, i) => js.publish('raw.bench', encoder.encode(JSON.stringify(eventToJson(e))), { msgID: `c${r}-${i}` })),
      );
    });
    notes.push(`raw jetstream().publish (a request per message): ${fmt(viaClient)}/s`);

    const gw = await startGateway('bench/sinks/nats.config.ts', { POLKU_BENCH_NATS_URL: url });
    try {
      const { perSec, load, cpuUsPerEvent, cores } = await storedPerSecUnderLoad(
        gw,
        opts,
        async () => (await jsm.streams.info('BENCH')).state.last_seq,
        0,
        server.pid,
      );
      notes.push(`loadgen accepted ${fmt(load.acceptedPerSec)}/s, ack p50 ${load.ackLatencyMs.p50} ms`, cores);
      return {
        sink: 'NATS JetStream',
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
    await nc.close();
    await stopChild(server, 5_000);
    rmSync(dir, { recursive: true, force: true });
  }
}
