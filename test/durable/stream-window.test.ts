import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeEventRecord } from '../../src/buffer/durable/event-record.js';
import { SegmentLog } from '../../src/buffer/durable/segment-log.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { Ack, IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { hub } from '../../src/hub/builder.js';
import { scrape, sample, startGateway, until } from '../helpers/gateway-harness.js';
import { grpcFrame } from '../helpers/raw-grpc.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const freshDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'polku-stream-window-'));
  dirs.push(d);
  return d;
};

const EVENTS_PER_BATCH = 10;
const idsOf = (b: number): string[] => Array.from({ length: EVENTS_PER_BATCH }, (_, i) => `b${b}-e${i}`);
const frameOf = (b: number): Buffer =>
  grpcFrame(
    IngestBatch.encode(
      IngestBatch.fromPartial({
        source: 'agent',
        payload: { $case: 'events', value: { events: idsOf(b).map((id) => ({ id, eventType: 't', payload: Buffer.alloc(200, b) })) } },
      }),
    ).finish(),
  );

/**
 * A StreamEvents call over raw HTTP/2 that writes its batches all at once, as agents on gRPC C-core
 * or grpc-go do (a grpc-js client puts its next message on the wire only after the server's next
 * frame), and collects the Acks.
 */
function rawStream(port: number): { req: http2.ClientHttp2Stream; acks: Ack[]; session: http2.ClientHttp2Session } {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const req = session.request({
    ':method': 'POST',
    ':path': '/polku.v1.Gateway/StreamEvents',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const acks: Ack[] = [];
  let pending = Buffer.alloc(0);
  req.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const len = pending.readUInt32BE(1);
      acks.push(Ack.decode(pending.subarray(5, 5 + len)));
      pending = pending.subarray(5 + len);
    }
  });
  req.on('error', () => undefined); // a reset the test made itself
  return { req, acks, session };
}

describe('durable mode reads a stream on while its batches wait for their commit', () => {
  test('batches written at once share group commits, and each gets its Ack, in order, after its commit', async () => {
    const memory = new InMemoryEmitter();
    // fsync on: every group is a real O_DSYNC write, so batches arrive while one is under way.
    const gw = await startGateway(hub().emitter(memory).durable({ dir: freshDir(), streamWindowBatches: 16 }));
    try {
      const store = gw.hub.admin!.store;
      const commitsBefore = store.log.flushCount;
      const batches = 40;
      const { req, acks, session } = rawStream(gw.grpcPort);
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => req.on('trailers', resolve));
      for (let b = 0; b < batches; b++) req.write(frameOf(b));
      req.end();
      assert.equal((await trailers)['grpc-status'], '0');
      session.close();
      assert.equal(acks.length, batches);
      for (let b = 0; b < batches; b++) {
        assert.deepEqual(acks[b]!.eventIds, idsOf(b), `Ack ${b} answers batch ${b}, and lists all of it`);
        assert.deepEqual(acks[b]!.errors, []);
      }
      // Every acknowledged event is in the log, in the order sent.
      const stored = await store.read(1, batches * EVENTS_PER_BATCH + 1);
      assert.deepEqual(
        stored.map((s) => s.event.id),
        acks.flatMap((a) => a.eventIds),
      );
      const commits = store.log.flushCount - commitsBefore;
      assert.ok(commits < batches, `one stream's ${batches} batches took ${commits} group commits: several went into one`);
      // The commit histograms count every group and every event in them.
      const text = await scrape(gw.metricsPort);
      assert.equal(sample(text, 'polku_log_commit_records_count'), store.log.flushCount);
      assert.equal(sample(text, 'polku_log_commit_records_sum'), batches * EVENTS_PER_BATCH);
      assert.equal(sample(text, 'polku_log_commit_write_seconds_count'), store.log.flushCount);
      await memory.waitForCount(batches * EVENTS_PER_BATCH);
      assert.equal(memory.events.length, batches * EVENTS_PER_BATCH);
    } finally {
      await gw.stop();
    }
  });

  test('a stream reset with batches waiting: every event it was acknowledged for is in the log, none counted twice', async () => {
    const memory = new InMemoryEmitter();
    const dir = freshDir();
    const gw = await startGateway(hub().emitter(memory).durable({ dir, streamWindowBatches: 64 }));
    const batches = 60;
    let got: number;
    let acked: string[];
    let unanswered: number;
    try {
      const { req, acks, session } = rawStream(gw.grpcPort);
      for (let b = 0; b < batches; b++) req.write(frameOf(b));
      await until(() => acks.length > 0, 'the first Ack');
      req.close(http2.constants.NGHTTP2_CANCEL);
      await until(async () => (sample(await scrape(gw.metricsPort), 'polku_grpc_active_streams') ?? 1) === 0, 'the stream to end');
      unanswered = sample(await scrape(gw.metricsPort), 'polku_grpc_unanswered_batches_total') ?? 0;
      session.close();
      got = acks.length;
      acked = acks.flatMap((a) => a.eventIds);
      for (let b = 0; b < got; b++) assert.deepEqual(acks[b]!.eventIds, idsOf(b), `Ack ${b} answers batch ${b}`);
    } finally {
      // Shutdown writes what is queued for the log before closing it.
      await gw.stop();
    }
    // How many were still waiting when the reset came depends on the disk (test/receive/
    // stream-window.test.ts counts them exactly); what must hold whatever it is:
    const { log } = await SegmentLog.open({ dir: join(dir, 'events') });
    const inLog = new Set((await log.read(1, batches * EVENTS_PER_BATCH + 1)).map((r) => decodeEventRecord(r.payload).event.id));
    await log.close();
    for (const id of acked) assert.ok(inLog.has(id), `${id} was acknowledged, so it is on disk`);
    // Taken in = answered (some Acks may have been lost with the reset) + counted unanswered.
    assert.ok(
      got + unanswered <= inLog.size / EVENTS_PER_BATCH,
      `${got} answered + ${unanswered} unanswered <= ${inLog.size / EVENTS_PER_BATCH} stored`,
    );
  });
});
