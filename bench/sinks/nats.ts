/**
 * NATS JetStream: a `polku serve` process with the NatsEmitter (bench/sinks/nats.config.ts) under
 * bench/loadgen.ts at full speed, against a nats-server -js started here (file storage in a temp
 * dir); and the ceiling in the same run: a raw @nats-io loop publishing the same 1,000-event
 * batches (JSON bodies, Nats-Msg-Id) as async JetStream publishes awaited together, one batch in
 * flight like the emitter. (`nats bench` is not packaged in Debian.) Stored events are read from
 * the server (the stream's last sequence), not from the gateway.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
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
    const raw = await loop(opts.durationMs, opts.warmupMs, BATCH, async () => {
      const batch = batches[k++ % batches.length]!;
      const r = round++;
      // A fresh msgID per publish (the pool repeats), or the duplicate window would drop them.
      await Promise.all(
        batch.map((e, i) => js.publish('raw.bench', encoder.encode(JSON.stringify(eventToJson(e))), { msgID: `${r}-${i}` })),
      );
    });

    const gw = await startGateway('bench/sinks/nats.config.ts', { POLKU_BENCH_NATS_URL: url });
    try {
      const { perSec, load } = await storedPerSecUnderLoad(gw, opts, async () => (await jsm.streams.info('BENCH')).state.last_seq);
      notes.push(`loadgen accepted ${fmt(load.acceptedPerSec)}/s, ack p50 ${load.ackLatencyMs.p50} ms`);
      return { sink: 'NATS JetStream', gatewayPerSec: perSec, rawPerSec: raw, ratio: perSec / raw, target: TARGET, notes };
    } finally {
      await stopGateway(gw);
    }
  } finally {
    await nc.close();
    await stopChild(server, 5_000);
    rmSync(dir, { recursive: true, force: true });
  }
}
