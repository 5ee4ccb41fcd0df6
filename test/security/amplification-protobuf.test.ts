import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Event } from '../../src/gen/polku/v1/event.js';
import { Ack, IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { sample, scrape } from '../helpers/gateway-harness.js';
import { killAll, track } from '../helpers/line-process.js';
import { servePolku } from '../helpers/polku-process.js';
import { procStatusMiB } from '../helpers/raw-grpc.js';

// The amplification attack of the security review, against a real `polku serve` at the chart's
// heap: one message of a few MiB used to decode into millions of events before the batch limit
// was looked at (4-10 s of blocked event loop, 2.9 GB RSS; one 1 MiB message killed a 160 MB pod).

after(() => killAll());

/** Just under the gRPC message limit. */
const SIZE = DEFAULT_LIMITS.maxMessageBytes - 64;

/** An IngestBatch of `0x0a 0x00` repeated: ~2M empty events. */
function emptyEventsBatch(): Buffer {
  const body = Buffer.alloc(SIZE - 16);
  for (let i = 0; i + 1 < body.length; i += 2) body[i] = 0x0a;
  return Buffer.concat([Buffer.from(new BinaryWriter().uint32(10).string('attacker').uint32(34).uint32(body.length).finish()), body]);
}

/** A raw `protobuf-delimited` payload of 3-byte records (`02 10 01`: an event with timestamp 1). */
function delimitedTinyBatch(): Buffer {
  const data = Buffer.alloc(Math.floor((SIZE - 64) / 3) * 3);
  for (let i = 0; i < data.length; i += 3) data.set([0x02, 0x10, 0x01], i);
  return Buffer.from(
    IngestBatch.encode({
      source: 'attacker',
      cluster: '',
      payload: { $case: 'raw', value: { data, format: 'protobuf-delimited' } },
    }).finish(),
  );
}

const normalBatch = (n: number) =>
  Buffer.from(
    IngestBatch.encode({
      source: 'agent',
      cluster: '',
      payload: {
        $case: 'events',
        value: {
          events: Array.from({ length: n }, (_, i) =>
            Event.fromPartial({ id: `normal-${i}`, eventType: 'ok', payload: Buffer.from('hi'), timestampUnixNs: 1n }),
          ),
        },
      },
    }).finish(),
  );

/** StreamEvents with our own bytes on the wire (no encoder in the way), Acks decoded. */
class RawStream {
  private readonly call: grpc.ClientDuplexStream<Buffer, Ack>;
  private readonly waiting: Array<(a: Ack) => void> = [];
  readonly status: Promise<grpc.StatusObject>;
  ended = false;

  constructor(client: grpc.Client) {
    this.call = client.makeBidiStreamRequest(
      '/polku.v1.Gateway/StreamEvents',
      (b: Buffer) => b,
      (b: Buffer) => Ack.decode(b),
    );
    this.call.on('data', (ack: Ack) => this.waiting.shift()?.(ack));
    this.status = new Promise((resolve) =>
      this.call.on('status', (s: grpc.StatusObject) => {
        this.ended = true;
        resolve(s);
      }),
    );
    this.call.on('error', () => {});
  }

  send(bytes: Buffer): Promise<Ack> {
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.call.write(bytes);
      void this.status.then((s) => reject(new Error(`stream ended: ${s.code} ${s.details}`)));
    });
  }

  end(): Promise<grpc.StatusObject> {
    this.call.end();
    return this.status;
  }
}

test('amplification messages at the chart heap: refused BATCH_TOO_LARGE naming the limit, stream open, process up, RSS < 300 MiB', async () => {
  const p = track(await servePolku([], { NODE_OPTIONS: '--max-old-space-size=160' }));
  const pid = p.child.pid!;
  const client = new grpc.Client(`127.0.0.1:${p.grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': -1,
  });
  const stream = new RawStream(client);
  const empty = emptyEventsBatch();
  const delimited = delimitedTinyBatch();
  assert.ok(empty.length <= DEFAULT_LIMITS.maxMessageBytes && delimited.length <= DEFAULT_LIMITS.maxMessageBytes);

  const rounds = 5;
  let peakRss = 0;
  for (let round = 0; round < rounds; round++) {
    const a = await stream.send(empty);
    assert.deepEqual(a.eventIds, []);
    assert.equal(a.errors.length, 1);
    assert.equal(a.errors[0]!.code, 'BATCH_TOO_LARGE');
    assert.match(a.errors[0]!.message, new RegExp(`limit ${DEFAULT_LIMITS.maxBatchEvents} \\(POLKU_MAX_BATCH_EVENTS\\)`));

    const b = await stream.send(delimited);
    assert.deepEqual(b.eventIds, []);
    assert.equal(b.errors.length, 1);
    assert.equal(b.errors[0]!.code, 'BATCH_TOO_LARGE');
    assert.match(b.errors[0]!.message, new RegExp(`limit ${DEFAULT_LIMITS.maxBatchEvents} \\(POLKU_MAX_BATCH_EVENTS\\)`));

    // A normal batch right after, on the same stream, is accepted whole.
    const c = await stream.send(normalBatch(3));
    assert.deepEqual(c.eventIds, ['normal-0', 'normal-1', 'normal-2']);
    assert.deepEqual(c.errors, []);
    peakRss = Math.max(peakRss, procStatusMiB(pid, 'VmRSS'));
  }
  assert.equal(stream.ended, false, 'the stream stays open');
  assert.equal(p.child.exitCode, null, 'the process is still up');
  assert.ok(peakRss < 300, `RSS peaked at ${peakRss.toFixed(0)} MiB`);

  const metrics = await scrape(p.metricsPort);
  assert.equal(sample(metrics, 'polku_events_dropped_total{reason="batch_too_large"}'), 2 * rounds);
  assert.equal(sample(metrics, 'polku_events_accepted_total{source="agent"}'), 3 * rounds);

  const status = await stream.end();
  assert.equal(status.code, grpc.status.OK);
  client.close();
  console.log(`amplification: ${2 * rounds} hostile messages of ~4 MiB refused; peak VmRSS ${peakRss.toFixed(0)} MiB`);
});
