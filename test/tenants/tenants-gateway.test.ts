// Buffer shares and the fair take through a real Gateway on loopback (gRPC, proto-loader client),
// with an emitter the test holds: a destination that is slow, under the test's control.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { hub } from '../../src/index.js';
import { hashKey } from '../../src/tenants/api-key.js';
import { GatedEmitter } from '../helpers/gated-emitter.js';
import { events, sample, scrape, startGateway, until, type WireAck } from '../helpers/gateway-harness.js';
import { AnswerStream } from '../receive/portti-clients.js';

test("a tenant's buffer share is honoured while the emitter is stuck, and the emitter then takes tenants in turn", async () => {
  const held = new GatedEmitter('held');
  const gw = await startGateway(
    hub()
      .emitter(held)
      .buffer({ capacity: 40 })
      .delivery({ batchSize: 4, flushIntervalMs: 60_000 })
      .tenants([
        { name: 'a', apiKeys: [hashKey('key-a')], sources: ['a'], rate: 1000, bufferShare: 0.25 },
        { name: 'b', apiKeys: [hashKey('key-b')], sources: ['b'], rate: 1000, bufferShare: 0.25 },
      ]),
  );
  const send = async (key: string, source: string, n: number): Promise<WireAck> => {
    const md = new grpc.Metadata();
    md.set('x-api-key', key);
    const s = new AnswerStream<WireAck>(gw.client['StreamEvents'](md));
    const ack = await s.send({ source, events: { events: events(n, (i) => ({ id: `${source}${i}` })) } });
    await s.end();
    return ack;
  };
  try {
    const a = await send('key-a', 'a', 15);
    assert.equal(a.event_ids.length, 10, '0.25 × 40');
    assert.equal(a.errors.length, 5);
    assert.ok(a.errors.every((e) => e.code === 'BUFFER_FULL'));
    assert.match(a.errors[0]!.message, /tenant "a" buffer share full \(10\/10 events/);
    const b = await send('key-b', 'b', 10);
    assert.equal(b.event_ids.length, 10, "b's share is untouched by a's");
    let text = await scrape(gw.metricsPort);
    assert.equal(sample(text, 'polku_tenant_buffer_events{tenant="a"}'), 10);
    assert.equal(sample(text, 'polku_tenant_buffer_share_events{tenant="a"}'), 10);
    assert.equal(sample(text, 'polku_tenant_events_total{tenant="a",outcome="buffer_full"}'), 5);
    // a's first batch went out before b sent anything; what waits behind it is taken in turn.
    assert.deepEqual(
      held.batches[0]!.map((e) => e.id),
      ['a0', 'a1', 'a2', 'a3'],
    );
    held.open();
    await until(() => held.delivered === 20, 'all 20 delivered');
    assert.deepEqual(
      held.batches[1]!.map((e) => e.id),
      ['a4', 'b0', 'a5', 'b1'],
    );
    text = await scrape(gw.metricsPort);
    assert.equal(sample(text, 'polku_tenant_buffer_events{tenant="a"}'), 0);
    assert.equal(sample(text, 'polku_tenant_delivery_lag_seconds{tenant="b"}'), 0);
  } finally {
    held.open();
    await gw.stop();
  }
});
