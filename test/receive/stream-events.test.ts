import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { hub } from '../../src/hub/builder.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { JsonIngestor } from '../../src/ingest/json.js';
import { PassthroughIngestor } from '../../src/ingest/passthrough.js';
import { filter } from '../../src/middleware/filter.js';
import { AckStream, events, startGateway, type RunningGateway } from '../helpers/gateway-harness.js';
import { grpcFrame } from '../helpers/raw-grpc.js';

describe('StreamEvents from a client that has only the proto files', () => {
  const memory = new InMemoryEmitter();
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(
      hub()
        .ingestor(new JsonIngestor())
        .ingestor(new PassthroughIngestor({ sources: ['proto-agent'] }))
        .middleware(filter((e) => e.eventType !== 'noise', { reason: 'noise is filtered' }))
        .emitter(memory),
      {
        limits: {
          ...DEFAULT_LIMITS,
          maxMessageBytes: 64 * 1024,
          maxBatchEvents: 50,
          maxPayloadBytes: 1024,
          maxMetadataBytes: 256,
          maxIdLength: 64,
        },
      },
    );
  });
  after(() => gw.stop());

  test('a client id is kept exactly and an empty id gets a ULID', async () => {
    const stream = new AckStream(gw.client);
    const ack = await stream.send({
      source: 'agent',
      events: {
        events: [
          { id: 'client-id-é/1', event_type: 'a' },
          { id: '', event_type: 'b' },
        ],
      },
    });
    assert.equal(ack.errors.length, 0);
    assert.equal(ack.event_ids[0], 'client-id-é/1');
    assert.match(ack.event_ids[1]!, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    await memory.waitForCount(2);
    const delivered = memory.events.slice(-2);
    assert.deepEqual(
      delivered.map((e) => e.id),
      ack.event_ids,
    );
    await stream.end();
  });

  test('a zero timestamp gets the receive time and int64 nanoseconds keep full precision', async () => {
    const before = BigInt(Date.now()) * 1_000_000n;
    const stream = new AckStream(gw.client);
    const exact = '1732000000123456789'; // above 2^53: a double would round it
    const ack = await stream.send({
      source: 'agent',
      events: { events: [{ id: 'ts-exact', timestamp_unix_ns: exact }, { id: 'ts-zero' }] },
    });
    assert.deepEqual(ack.event_ids, ['ts-exact', 'ts-zero']);
    await waitFor(memory, 'ts-zero');
    assert.equal(byId(memory, 'ts-exact').timestampUnixNs, 1732000000123456789n);
    const assigned = byId(memory, 'ts-zero').timestampUnixNs;
    assert.ok(assigned >= before && assigned <= BigInt(Date.now()) * 1_000_000n + 1_000_000n, `receive time ${assigned}`);
    await stream.end();
  });

  test('one Ack per batch, in order, listing only accepted events with an error for each refused one', async () => {
    const stream = new AckStream(gw.client);
    const big = Buffer.alloc(2048, 1);
    const pending = [
      stream.send({ source: 'agent', events: { events: events(3, (i) => ({ id: `o1-${i}` })) } }),
      stream.send({
        source: 'agent',
        events: {
          events: [
            { id: 'ok-1', event_type: 'x' },
            { id: 'too-big', payload: big },
            { id: 'noise-1', event_type: 'noise' },
            { id: 'meta', metadata: { k: 'v'.repeat(300) } },
            { id: 'x'.repeat(65) },
            { id: 'ok-2', event_type: 'y' },
          ],
        },
      }),
      stream.send({ source: 'agent', events: { events: events(2, (i) => ({ id: `o3-${i}` })) } }),
    ];
    const [a1, a2, a3] = await Promise.all(pending);
    assert.deepEqual(a1!.event_ids, ['o1-0', 'o1-1', 'o1-2']);
    assert.deepEqual(a2!.event_ids, ['ok-1', 'ok-2']);
    assert.deepEqual(
      a2!.errors.map((e) => [e.event_id, e.code]),
      [
        ['too-big', 'PAYLOAD_TOO_LARGE'],
        ['meta', 'METADATA_TOO_LARGE'],
        ['x'.repeat(65), 'INVALID_EVENT'],
        ['noise-1', 'FILTERED'],
      ],
    );
    assert.equal(a2!.middleware_stats['filtered_count'], '1');
    assert.equal(a2!.middleware_stats['total_received'], '6');
    assert.equal(a2!.middleware_stats['total_forwarded'], '2');
    assert.deepEqual(a3!.event_ids, ['o3-0', 'o3-1']);
    assert.equal(a3!.buffer_capacity, '10000');
    await stream.end();
  });

  test('a batch over the event limit is refused whole with BATCH_TOO_LARGE and the stream goes on', async () => {
    const stream = new AckStream(gw.client);
    const tooMany = await stream.send({ source: 'agent', events: { events: events(51) } });
    assert.deepEqual(tooMany.event_ids, []);
    assert.equal(tooMany.errors.length, 1);
    assert.equal(tooMany.errors[0]!.code, 'BATCH_TOO_LARGE');
    const next = await stream.send({ source: 'agent', events: { events: events(1, () => ({ id: 'after-big' })) } });
    assert.deepEqual(next.event_ids, ['after-big']);
    const status = await stream.end();
    assert.equal(status.code, 0);
  });

  test('raw bytes: by source, by format hint, and UNKNOWN_SOURCE without closing the stream', async () => {
    const stream = new AckStream(gw.client);
    const unknown = await stream.send({ source: 'mystery', raw: { data: Buffer.from('{"id":"m"}'), format: '' } });
    assert.deepEqual(unknown.event_ids, []);
    assert.equal(unknown.errors[0]!.code, 'UNKNOWN_SOURCE');
    assert.match(unknown.errors[0]!.message, /mystery/);
    const json = await stream.send({
      source: 'mystery',
      raw: { data: Buffer.from('{"id":"j1","event_type":"a"}\n{not json}\n{"id":"j2"}\n'), format: 'ndjson' },
    });
    assert.deepEqual(json.event_ids, ['j1', 'j2']);
    assert.equal(json.errors.length, 1);
    assert.equal(json.errors[0]!.code, 'PARSE_ERROR');
    assert.match(json.errors[0]!.message, /line 2/);
    const status = await stream.end();
    assert.equal(status.code, 0);
  });

  test('a batch with no payload is refused with INVALID_BATCH and the stream goes on', async () => {
    const stream = new AckStream(gw.client);
    const empty = await stream.send({ source: 'agent' });
    assert.equal(empty.errors[0]!.code, 'INVALID_BATCH');
    const next = await stream.send({ source: 'agent', events: { events: [{ id: 'after-empty' }] } });
    assert.deepEqual(next.event_ids, ['after-empty']);
    await stream.end();
  });

  test('malformed protobuf bytes inside a stream get an error Ack and the batches after it succeed', async () => {
    // Raw HTTP/2 so the stream can carry bytes no protobuf encoder would produce.
    const session = http2.connect(`http://127.0.0.1:${gw.grpcPort}`);
    const req = session.request({
      ':method': 'POST',
      ':path': '/polku.v1.Gateway/StreamEvents',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const frames: Buffer[] = [];
    let pending = Buffer.alloc(0);
    req.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const len = pending.readUInt32BE(1);
        frames.push(pending.subarray(5, 5 + len));
        pending = pending.subarray(5 + len);
      }
    });
    const { IngestBatch, Ack } = await import('../../src/gen/polku/v1/gateway.js');
    const good = (id: string) =>
      IngestBatch.encode(IngestBatch.fromPartial({ source: 'raw-h2', payload: { $case: 'events', value: { events: [{ id }] } } })).finish();
    req.write(grpcFrame(good('before-garbage')));
    req.write(grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]))); // field 1, length overruns
    req.write(grpcFrame(good('after-garbage-1')));
    req.write(grpcFrame(good('after-garbage-2')));
    req.end();
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.on('trailers', resolve));
    session.close();
    const acks = frames.map((f) => Ack.decode(f));
    assert.equal(acks.length, 4);
    assert.deepEqual(acks[0]!.eventIds, ['before-garbage']);
    assert.deepEqual(acks[1]!.eventIds, []);
    assert.equal(acks[1]!.errors[0]!.code, 'INVALID_BATCH');
    assert.deepEqual(acks[2]!.eventIds, ['after-garbage-1']);
    assert.deepEqual(acks[3]!.eventIds, ['after-garbage-2']);
    assert.equal(trailers['grpc-status'], '0');
  });

  test('a message over POLKU_MAX_MESSAGE_BYTES is answered BATCH_TOO_LARGE and the stream stays open', async () => {
    const stream = new AckStream(gw.client);
    const huge = await stream.send({ source: 'agent', raw: { data: Buffer.alloc(70 * 1024, 0x20), format: 'json' } });
    assert.equal(huge.errors[0]!.code, 'BATCH_TOO_LARGE');
    assert.match(huge.errors[0]!.message, /limit 65536/);
    const next = await stream.send({ source: 'agent', events: { events: [{ id: 'after-huge' }] } });
    assert.deepEqual(next.event_ids, ['after-huge']);
    await stream.end();
  });
});

function byId(memory: InMemoryEmitter, id: string) {
  const found = memory.events.find((e) => e.id === id);
  assert.ok(found, `event ${id} delivered`);
  return found;
}

async function waitFor(memory: InMemoryEmitter, id: string): Promise<void> {
  while (!memory.events.some((e) => e.id === id)) await memory.waitForCount(memory.count + 1);
}
