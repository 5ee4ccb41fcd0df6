import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ack } from '../../src/gen/polku/v1/gateway.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';

/**
 * A pipeline module loaded through tsx (`--config x.ts`) runs the hub from its own copy of the
 * modules while the receivers decode with the CLI's. A refusal decided while decoding (here an id
 * that is not UTF-8) must still reach intake: it once arrived as an empty event and was accepted
 * under a fresh ULID.
 */
describe('polku serve --config x.ts: refusals decided while decoding reach the hub', () => {
  let gw: PolkuProcess & { grpcPort: number };
  let client: grpc.Client;

  before(async () => {
    gw = await servePolku(['--config', 'test/fixtures/stdout.config.ts']);
    client = new grpc.Client(`127.0.0.1:${gw.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    gw.child.kill('SIGTERM');
    await gw.exited;
  });

  const sendRaw = (body: Buffer): Promise<Ack> =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        '/polku.v1.Gateway/SendEvent',
        (b: Buffer) => b,
        (b: Buffer) => Ack.decode(b),
        body,
        (err, ack) => (err || !ack ? reject(err ?? new Error('no answer')) : resolve(ack)),
      );
    });

  test('an event whose id is not UTF-8 is refused INVALID_EVENT, not accepted as an empty event', async () => {
    // IngestEvent{source: "t", event: Event{id: 0xff}}, written by hand: no encoder writes invalid UTF-8.
    const event = Buffer.from([0x0a, 0x01, 0xff]);
    const body = Buffer.concat([Buffer.from([0x0a, 0x01, 0x74, 0x22, event.length]), event]);
    const ack = await sendRaw(body);
    assert.deepEqual(ack.eventIds, []);
    assert.equal(ack.errors.length, 1);
    assert.equal(ack.errors[0]!.code, 'INVALID_EVENT');
    assert.match(ack.errors[0]!.message, /UTF-8/);
  });

  test('a valid event through the same module is accepted and emitted', async () => {
    const id = Buffer.from('ok-1');
    const event = Buffer.concat([Buffer.from([0x0a, id.length]), id]);
    const ack = await sendRaw(Buffer.concat([Buffer.from([0x0a, 0x01, 0x74, 0x22, event.length]), event]));
    assert.deepEqual(ack.eventIds, ['ok-1']);
    await gw.line(/"id":"ok-1"/);
  });
});
