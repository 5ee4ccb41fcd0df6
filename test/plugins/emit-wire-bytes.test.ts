import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { externalEmitter } from '../../src/emit/external.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { Ack } from '../../src/gen/polku/v1/gateway.js';
import { EmitRequest, EmitterPluginService, type EmitResponse } from '../../src/gen/polku/v1/plugin.js';
import { hub } from '../../src/hub/builder.js';
import { wireBytesOf } from '../../src/ingest/event-wire-bytes.js';
import { transform } from '../../src/middleware/transform.js';
import { InMemoryEmitter } from '../../src/testing/index.js';
import { fullEvent } from '../helpers/full-event.js';
import { startGateway, type RunningGateway } from '../helpers/gateway-harness.js';
import { until } from '../fixtures/plugin-process.js';

/**
 * In memory mode the plugin emitter copies the bytes each event arrived in instead of encoding it
 * (src/ingest/event-wire-bytes.ts). These tests send hand-made bytes over a real StreamEvents call
 * and read what a real gRPC plugin server receives, byte for byte.
 */

/** An EmitterPlugin whose Emit keeps each request's raw bytes and answers every event delivered. */
async function rawPlugin(): Promise<{ address: string; requests: Buffer[]; close: () => void }> {
  const requests: Buffer[] = [];
  const server = new grpc.Server();
  const service = { ...EmitterPluginService, emit: { ...EmitterPluginService.emit, requestDeserialize: (b: Buffer) => b } };
  const unimplemented = (_call: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED });
  server.addService(service, {
    info: unimplemented,
    health: unimplemented,
    shutdown: unimplemented,
    emit: (call: grpc.ServerUnaryCall<Buffer, EmitResponse>, cb: grpc.sendUnaryData<EmitResponse>) => {
      requests.push(call.request);
      const n = EmitRequest.decode(call.request).events.length;
      cb(null, { successCount: BigInt(n), failedEventIds: [], errors: [] });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, requests, close: () => server.forceShutdown() };
}

/** Sends one IngestBatch of already-encoded events over StreamEvents, as an agent's bytes; resolves with its Ack. */
function sendRaw(gw: RunningGateway, source: string, events: Uint8Array[]): Promise<Ack> {
  const payload = new BinaryWriter();
  for (const e of events) payload.uint32(10).bytes(e);
  const message = Buffer.from(new BinaryWriter().uint32(10).string(source).uint32(34).bytes(payload.finish()).finish());
  const client = new grpc.Client(`127.0.0.1:${gw.grpcPort}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(
    '/polku.v1.Gateway/StreamEvents',
    (b: Buffer) => b,
    (b: Buffer) => Ack.decode(b),
  );
  return new Promise<Ack>((resolve, reject) => {
    call.once('data', (ack: Ack) => {
      call.end();
      client.close();
      resolve(ack);
    });
    call.once('error', reject);
    call.write(message);
  });
}

/** Each event's bytes in a raw EmitRequest (field 1, length-delimited, as the request is nothing else). */
function eventBytesIn(request: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(request);
  const out: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    assert.equal(reader.uint32(), 10);
    out.push(reader.bytes());
  }
  return out;
}

const canonical = Event.encode(fullEvent({ id: 'w-1', routeTo: [] })).finish();
/** No id, timestamp or source: intake fills them in. */
const bare = Event.encode(Event.fromPartial({ eventType: 't2', payload: new Uint8Array([1, 2]) })).finish();
/**
 * Valid, but not as any encoder here writes it: payload first, a field the contract does not
 * know (15), an id sent twice (the last wins), a metadata entry with its value before its key.
 * Source and timestamp are set, so intake adds nothing to it.
 */
const handMade = new BinaryWriter()
  .uint32(26)
  .string('hand')
  .uint32(50)
  .bytes(new Uint8Array([9, 9]))
  .uint32((15 << 3) | 0)
  .uint32(7)
  .uint32(10)
  .string('stale')
  .uint32(10)
  .string('w-3')
  .uint32(42)
  .bytes(new BinaryWriter().uint32(18).string('v').uint32(10).string('k').finish())
  .uint32(34)
  .string('t3')
  .uint32(16)
  .int64(1_764_000_000_000_000_000n)
  .finish();
/** An event type that is not UTF-8: refused at intake, never sent. */
const invalid = new BinaryWriter()
  .uint32(10)
  .string('w-4')
  .uint32(34)
  .bytes(new Uint8Array([0xff, 0xfe]))
  .finish();

describe('plugin emitter, memory mode: events go out as the bytes they came in', () => {
  const stops: Array<() => unknown> = [];
  after(async () => {
    for (const s of stops.reverse()) await s();
  });

  test('copied verbatim, with intake’s fill-ins appended; a refused event is not sent', async () => {
    const plugin = await rawPlugin();
    stops.push(plugin.close);
    const gw = await startGateway(hub().emitter(externalEmitter('raw', plugin.address)).delivery({ batchSize: 3, flushIntervalMs: 5 }));
    stops.push(gw.stop);

    const ack = await sendRaw(gw, 'agent-7', [canonical, bare, handMade, invalid]);
    assert.equal(ack.eventIds.length, 3);
    assert.deepEqual([ack.eventIds[0], ack.eventIds[2]], ['w-1', 'w-3']);
    assert.deepEqual(
      ack.errors.map((e) => [e.eventId, e.code]),
      [['w-4', 'INVALID_EVENT']],
    );
    await until(() => plugin.requests.length > 0, 'the plugin’s Emit call');
    assert.equal(plugin.requests.length, 1);
    const request = plugin.requests[0]!;
    const sent = eventBytesIn(request);
    assert.deepEqual(Buffer.from(sent[0]!), Buffer.from(canonical));
    assert.deepEqual(Buffer.from(sent[2]!), Buffer.from(handMade));
    // The id-less event: its own bytes, then the id, timestamp and source intake gave it.
    assert.deepEqual(Buffer.from(sent[1]!.subarray(0, bare.length)), Buffer.from(bare));
    const decoded = EmitRequest.decode(new Uint8Array(request)).events; // payloads as Uint8Arrays, as Event.decode gives them
    const filled = decoded[1]!;
    assert.equal(filled.id, ack.eventIds[1]);
    assert.equal(filled.source, 'agent-7');
    assert.ok(filled.timestampUnixNs > 0n);
    assert.deepEqual(decoded, [
      Event.decode(canonical),
      { ...Event.decode(bare), id: filled.id, source: 'agent-7', timestampUnixNs: filled.timestampUnixNs },
      Event.decode(handMade),
    ]);
    assert.equal(decoded[2]!.id, 'w-3');
    assert.deepEqual(decoded[2]!.metadata, { k: 'v' });
  });

  test('a middleware that changes events: they are encoded afresh, changes included', async () => {
    const plugin = await rawPlugin();
    stops.push(plugin.close);
    const gw = await startGateway(
      hub()
        .middleware(transform((e) => ((e.metadata['seen'] = 'yes'), e)))
        .emitter(externalEmitter('raw', plugin.address))
        .delivery({ batchSize: 1, flushIntervalMs: 5 }),
    );
    stops.push(gw.stop);
    const ack = await sendRaw(gw, 'agent', [handMade]);
    assert.deepEqual(ack.eventIds, ['w-3']);
    await until(() => plugin.requests.length > 0, 'the plugin’s Emit call');
    const [event] = EmitRequest.decode(plugin.requests[0]!).events;
    assert.deepEqual(event!.metadata, { k: 'v', seen: 'yes' });
    assert.deepEqual(Buffer.from(eventBytesIn(plugin.requests[0]!)[0]!), Buffer.from(Event.encode(event!).finish()));
  });

  test('a plugin emitter added while running gets the bytes; other emitters see plain events; none once it leaves', async () => {
    const plugin = await rawPlugin();
    stops.push(plugin.close);
    const memory = new InMemoryEmitter({ name: 'memory' });
    const gw = await startGateway(hub().emitter(memory).delivery({ batchSize: 1, flushIntervalMs: 5 }));
    stops.push(gw.stop);

    await sendRaw(gw, 'agent', [canonical]);
    await memory.waitForCount(1);
    assert.equal(wireBytesOf(memory.events[0]!), undefined, 'no emitter wants bytes: none kept');

    gw.hub.addEmitter(externalEmitter('raw', plugin.address));
    const ack = await sendRaw(gw, 'agent', [handMade]);
    assert.deepEqual(ack.eventIds, ['w-3']);
    await memory.waitForCount(2);
    await until(() => plugin.requests.length > 0, 'the plugin’s Emit call');
    assert.deepEqual(Buffer.from(eventBytesIn(plugin.requests[0]!)[0]!), Buffer.from(handMade));
    // The bytes ride on the event unseen: the memory emitter's copy is the decoded event, no more.
    assert.ok(wireBytesOf(memory.events[1]!));
    const kept = memory.events[1]!;
    assert.deepEqual(new Uint8Array(kept.payload), Event.decode(handMade).payload);
    assert.deepEqual(kept, { ...Event.decode(handMade), payload: kept.payload });
    assert.deepEqual(Object.keys(memory.events[1]!).sort(), Object.keys(Event.create()).sort());

    assert.equal(gw.hub.removeEmitter('raw'), true);
    await sendRaw(gw, 'agent', [canonical]);
    await memory.waitForCount(3);
    assert.equal(wireBytesOf(memory.events[2]!), undefined, 'the plugin emitter left: bytes no longer kept');
  });
});
