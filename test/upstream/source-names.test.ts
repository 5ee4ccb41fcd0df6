// Upstream POLKU's clients name the format by the batch's source and send no format hint.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Event } from '../../src/gen/polku/v1/event.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { killAll } from '../helpers/line-process.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';

const protobufEvent = (id: string) =>
  Buffer.from(Event.encode(Event.fromPartial({ id, eventType: 'upstream.proto', payload: Buffer.from('p') })).finish());

describe("polku serve (embedded default): upstream's source names choose the ingestor when the format is empty", () => {
  let gw: PolkuProcess & { grpcPort: number };
  let client: ReturnType<typeof protoOnlyClient>;
  let stream: AckStream;

  before(async () => {
    gw = await servePolku([]);
    client = protoOnlyClient(gw.grpcPort);
    stream = new AckStream(client);
  });
  after(async () => {
    client?.close();
    await killAll();
  });

  const raw = (source: string, data: Buffer) => stream.send({ source, raw: { format: '', data } });
  const printed = async (id: string) => JSON.parse(await gw.line(new RegExp(`"id":"${id}"`))) as Record<string, unknown>;

  test('json: one JSON document', async () => {
    const ack = await raw('json', Buffer.from('{"id":"j1","event_type":"upstream.json"}'));
    assert.deepEqual(ack.event_ids, ['j1']);
    assert.deepEqual(ack.errors, []);
    assert.equal((await printed('j1'))['event_type'], 'upstream.json');
  });

  test('json-lines and ndjson: one event per line, a bad line refused alone', async () => {
    for (const source of ['json-lines', 'ndjson']) {
      const ack = await raw(source, Buffer.from(`{"id":"${source}-1"}\n{"id":"${source}-2"}\nnot json\n`));
      assert.deepEqual(ack.event_ids, [`${source}-1`, `${source}-2`]);
      assert.equal(ack.errors.length, 1);
      assert.equal(ack.errors[0]!.code, 'PARSE_ERROR');
      await printed(`${source}-2`);
    }
  });

  test('passthrough and polku: one protobuf polku.event.v1.Event', async () => {
    for (const source of ['passthrough', 'polku']) {
      const ack = await raw(source, protobufEvent(`${source}-p`));
      assert.deepEqual(ack.event_ids, [`${source}-p`]);
      assert.deepEqual(ack.errors, []);
      assert.equal((await printed(`${source}-p`))['event_type'], 'upstream.proto');
    }
  });

  test('any other source with no format: UNKNOWN_SOURCE, naming what works; the stream stays open', async () => {
    const ack = await raw('jsonl', Buffer.from('{"id":"x"}'));
    assert.deepEqual(ack.event_ids, []);
    assert.equal(ack.errors.length, 1);
    assert.equal(ack.errors[0]!.code, 'UNKNOWN_SOURCE');
    assert.match(ack.errors[0]!.message, /^no ingestor for source "jsonl" \(and no format hint\); these work: formats: json, /);
    assert.match(ack.errors[0]!.message, /upstream source names \(with no format\): json, json-lines, ndjson, passthrough, polku$/);
    const again = await raw('json', Buffer.from('{"id":"after"}'));
    assert.deepEqual(again.event_ids, ['after']);
  });
});
