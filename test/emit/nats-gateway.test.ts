// A real `polku serve` process with the NatsEmitter in its pipeline module
// (test/fixtures/nats.config.ts), fed over gRPC, read back from a real nats-server with a
// JetStream consumer: every event once; a message the stream refuses is dropped alone and counted;
// in durable mode an outage of 20 s under load loses nothing and duplicates nothing (Nats-Msg-Id).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { EventJson } from '../../src/emit/event-json.js';
import { AckStream, protoOnlyClient, sample, scrape, until } from '../helpers/gateway-harness.js';
import { killAll, track } from '../helpers/line-process.js';
import { natsMissing, NatsServer } from '../helpers/nats-server.js';
import { servePolku } from '../helpers/polku-process.js';
import { sendEvents, steadyLoad } from './helpers/bus-load.js';

const skip = natsMissing();
const servers: NatsServer[] = [];
const connections: NatsConnection[] = [];
after(async () => {
  await killAll();
  for (const c of connections) await c.close();
  for (const s of servers) await s.close();
});

/** A server with stream POLKU on `polku.>` (duplicate window: the default 2 minutes), and a client of its own. */
async function nats(config: { max_msg_size?: number } = {}) {
  const server = await NatsServer.start();
  servers.push(server);
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  connections.push(nc);
  await (await jetstreamManager(nc)).streams.add({ name: 'POLKU', subjects: ['polku.>'], ...config });
  return { server, nc };
}

const gateway = async (url: string, durable: boolean) =>
  track(
    await servePolku(['--config', 'test/fixtures/nats.config.ts'], {
      POLKU_TEST_NATS_URL: url,
      ...(durable ? { POLKU_DURABLE: 'true', POLKU_DATA_DIR: mkdtempSync(join(tmpdir(), 'polku-nats-durable-')) } : {}),
    }),
  );

const stored = async (nc: NatsConnection) => (await (await jetstreamManager(nc)).streams.info('POLKU')).state.messages;

/** Every message of stream POLKU through an ordered consumer: subject and body. */
async function readAll(nc: NatsConnection): Promise<Array<{ subject: string; event: EventJson }>> {
  const total = await stored(nc);
  const out: Array<{ subject: string; event: EventJson }> = [];
  if (total === 0) return out;
  const consumer = await jetstream(nc).consumers.get('POLKU');
  const messages = await consumer.consume({ max_messages: 5_000 });
  for await (const m of messages) {
    out.push({ subject: m.subject, event: m.json<EventJson>() });
    if (out.length === total) break;
  }
  await messages.close();
  return out;
}

describe('gateway → NatsEmitter → nats-server (JetStream)', { skip }, () => {
  test('2,000 events over gRPC are stored each exactly once, in order, on their subjects', { timeout: 60_000 }, async () => {
    const { server, nc } = await nats();
    const gw = await gateway(server.url, false);
    const acked = await sendEvents(gw.grpcPort, 'm', 2_000);
    assert.equal(acked.length, 2_000);
    await until(async () => (await stored(nc)) >= 2_000, '2,000 messages', 30_000);
    const got = await readAll(nc);
    assert.equal(got.length, 2_000, 'no message twice');
    assert.deepEqual(
      got.map((m) => m.event.id),
      acked,
    );
    assert.ok(got.every((m) => m.subject === 'polku.svc-a.bus_test'));
    assert.equal(got[0]!.event.payload, '{"n":"m-0"}');
    assert.equal(got[0]!.event.metadata['k8s.namespace.name'], 'shop');
    const metrics = await scrape(gw.metricsPort);
    assert.equal(sample(metrics, 'polku_nats_emitter_duplicates_total{emitter="nats"}'), 0);
    assert.equal(sample(metrics, 'polku_nats_emitter_subjects{emitter="nats"}'), 1);
  });

  test(
    'a message the stream refuses (over max_msg_size) is dropped alone, counted, with the server’s message; neighbours stored',
    { timeout: 60_000 },
    async () => {
      const { server, nc } = await nats({ max_msg_size: 4_096 });
      const gw = await gateway(server.url, false);
      const client = protoOnlyClient(gw.grpcPort);
      const stream = new AckStream(client);
      const batch = Array.from({ length: 50 }, (_, i) => ({
        id: `p-${i}`,
        event_type: 'bus.test',
        payload: Buffer.alloc(i === 17 || i === 33 ? 8_000 : 100, 'x'),
      }));
      const ack = await stream.send({ source: 'svc-b', events: { events: batch } });
      assert.equal(ack.event_ids.length, 50, 'accepted: the refusal comes from the stream');
      await stream.end();
      client.close();
      await until(
        async () => sample(await scrape(gw.metricsPort), 'polku_events_dropped_total{reason="emit_failed"}') === 2,
        'two drops',
        30_000,
      );
      await until(async () => (await stored(nc)) >= 48, 'the neighbours', 30_000);
      const ids = (await readAll(nc)).map((m) => m.event.id);
      assert.deepEqual(
        ids,
        batch.map((e) => e.id).filter((id) => id !== 'p-17' && id !== 'p-33'),
      );
      const metrics = await scrape(gw.metricsPort);
      assert.equal(sample(metrics, 'polku_nats_emitter_failed_events_total{emitter="nats",retryable="false"}'), 2);
      await gw.line(/message size exceeds maximum allowed/);
    },
  );

  test(
    'durable: nats-server stopped for 20 s under load, then started: every acked event stored exactly once',
    { timeout: 180_000 },
    async (t) => {
      const { server, nc } = await nats();
      const gw = await gateway(server.url, true);
      const load = steadyLoad(gw.grpcPort, 'o');
      await until(async () => (await stored(nc)) >= 1_000, 'delivery under way', 30_000);
      await server.stop();
      const ackedAtStop = load.acked.length;
      // The outage the test is about: 20 s of load with nowhere to deliver it.
      await new Promise((r) => setTimeout(r, 20_000));
      assert.ok(load.acked.length > ackedAtStop + 10_000, `acks went on while NATS was down (${load.acked.length - ackedAtStop})`);
      await server.start();
      const ackedAtStart = load.acked.length;
      await until(() => load.acked.length >= ackedAtStart + 1_000, 'load after the restart', 20_000);
      await load.stop();
      const acked = load.acked;
      await until(
        async () => {
          try {
            return (await stored(nc)) >= acked.length;
          } catch {
            return false; // our own client may still be reconnecting
          }
        },
        `${acked.length} messages`,
        90_000,
      );
      const got = (await readAll(nc)).map((m) => m.event.id);
      assert.equal(got.length, acked.length, 'no duplicates: resends within the duplicate window were dropped by Nats-Msg-Id');
      assert.deepEqual(new Set(got), new Set(acked), 'every acked event, nothing else');
      const metrics = await scrape(gw.metricsPort);
      t.diagnostic(
        `${acked.length} acked and stored; ${sample(metrics, 'polku_nats_emitter_duplicates_total{emitter="nats"}')} resends acked as duplicates`,
      );
      assert.ok(sample(metrics, 'polku_nats_emitter_failed_events_total{emitter="nats",retryable="true"}')! > 0, 'the outage was seen');
    },
  );
});
