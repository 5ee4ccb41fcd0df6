import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { Ack } from '../../src/gen/polku/v1/gateway.js';
import { hub } from '../../src/hub/builder.js';
import { AckStream, events, scrape, sample, startGateway, until } from '../helpers/gateway-harness.js';
import { GatedEmitter } from '../helpers/gated-emitter.js';

// Every test: an emitter held shut, a buffer of 10 events, batches flushed at 5 events.
const delivery = { batchSize: 5, flushIntervalMs: 1, maxAttempts: 3 };

describe('acks stay honest under each overflow policy', () => {
  test('reject: events past capacity are refused with BUFFER_FULL and listed nowhere else', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(hub().emitter(gate).buffer({ capacity: 10, overflow: 'reject' }).delivery(delivery));
    try {
      const stream = new AckStream(gw.client);
      const first = await stream.send({ source: 'a', events: { events: events(8, (i) => ({ id: `r${i}` })) } });
      assert.equal(first.event_ids.length, 8);
      const second = await stream.send({ source: 'a', events: { events: events(5, (i) => ({ id: `s${i}` })) } });
      assert.deepEqual(second.event_ids, ['s0', 's1']);
      assert.deepEqual(
        second.errors.map((e) => [e.event_id, e.code]),
        [
          ['s2', 'BUFFER_FULL'],
          ['s3', 'BUFFER_FULL'],
          ['s4', 'BUFFER_FULL'],
        ],
      );
      assert.equal(second.buffer_size, '10');
      assert.equal(second.buffer_capacity, '10');
      assert.equal(second.middleware_stats['buffer_overflow_count'], '3');
      gate.open();
      await until(() => gw.hub.stats().buffer.events === 0, 'buffer to drain');
      const delivered = gate.batches.flat().map((e) => e.id);
      assert.deepEqual(delivered, [...first.event_ids, ...second.event_ids]);
      const metrics = await scrape(gw.metricsPort);
      assert.equal(sample(metrics, 'polku_events_dropped_total{reason="buffer_full"}'), 3);
      await stream.end();
    } finally {
      gate.open();
      await gw.stop();
    }
  });

  test('drop_oldest: new events are accepted, the oldest undelivered ones are evicted and counted', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(hub().emitter(gate).buffer({ capacity: 10, overflow: 'drop_oldest' }).delivery(delivery));
    try {
      const stream = new AckStream(gw.client);
      // 5 go in flight at once (a full batch); the next 5 wait in the queue.
      const first = await stream.send({ source: 'a', events: { events: events(10, (i) => ({ id: `d${i}` })) } });
      assert.equal(first.event_ids.length, 10);
      await until(() => gate.calls === 1, 'first batch in flight');
      const second = await stream.send({ source: 'a', events: { events: events(3, (i) => ({ id: `n${i}` })) } });
      assert.deepEqual(second.event_ids, ['n0', 'n1', 'n2']);
      assert.equal(second.errors.length, 0);
      assert.equal(second.middleware_stats['buffer_overflow_count'], '3');
      assert.equal(second.buffer_size, '10');
      gate.open();
      await until(() => gw.hub.stats().buffer.events === 0, 'buffer to drain');
      // In-flight events cannot be evicted; the three oldest waiting ones were.
      assert.deepEqual(
        gate.batches.flat().map((e) => e.id),
        ['d0', 'd1', 'd2', 'd3', 'd4', 'd8', 'd9', 'n0', 'n1', 'n2'],
      );
      const metrics = await scrape(gw.metricsPort);
      assert.equal(sample(metrics, 'polku_events_dropped_total{reason="buffer_overflow_evicted"}'), 3);
      await stream.end();
    } finally {
      gate.open();
      await gw.stop();
    }
  });

  test('block: a batch that does not fit waits, unacked, until room frees; nothing is refused', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(hub().emitter(gate).buffer({ capacity: 10, overflow: 'block' }).delivery(delivery));
    try {
      const stream = new AckStream(gw.client);
      const first = await stream.send({ source: 'a', events: { events: events(10, (i) => ({ id: `b${i}` })) } });
      assert.equal(first.event_ids.length, 10);
      const blocked = stream.send({ source: 'a', events: { events: events(4, (i) => ({ id: `w${i}` })) } });
      const queuedBehind = stream.send({ source: 'a', events: { events: events(1, () => ({ id: 'behind' })) } });
      await until(() => gw.hub.stats().buffer.blockedWriters === 1, 'the batch to block');
      assert.equal(stream.acks.length, 1, 'no Ack while blocked');
      assert.equal(sample(await scrape(gw.metricsPort), 'polku_buffer_blocked_writers'), 1);
      gate.open();
      const [second, third] = await Promise.all([blocked, queuedBehind]);
      assert.deepEqual(second!.event_ids, ['w0', 'w1', 'w2', 'w3']);
      assert.deepEqual(second!.errors, []);
      assert.deepEqual(third!.event_ids, ['behind']);
      await until(() => gw.hub.stats().buffer.events === 0, 'buffer to drain');
      assert.equal(gate.batches.flat().length, 15);
      await stream.end();
    } finally {
      gate.open();
      await gw.stop();
    }
  });

  test('unary SendEvent on a full buffer fails RESOURCE_EXHAUSTED with the Ack in the trailers', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(hub().emitter(gate).buffer({ capacity: 2, overflow: 'block' }).delivery(delivery));
    try {
      const send = (id: string) =>
        new Promise<{ err: grpc.ServiceError | null; ack: any }>((resolve) =>
          gw.client['SendEvent']({ source: 'u', event: { id, event_type: 't' } }, (err: grpc.ServiceError | null, ack: any) =>
            resolve({ err, ack }),
          ),
        );
      assert.deepEqual((await send('u1')).ack.event_ids, ['u1']);
      assert.deepEqual((await send('u2')).ack.event_ids, ['u2']);
      const { err } = await send('u3');
      assert.ok(err);
      assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(err.details, /BUFFER_FULL: buffer full \(2\/2 events\)/);
      assert.deepEqual(err.metadata.get('polku-buffer-size'), ['2']);
      const ack = Ack.decode(err.metadata.get('polku-ack-bin')[0] as Buffer);
      assert.deepEqual(ack.eventIds, []);
      assert.equal(ack.errors[0]!.eventId, 'u3');
      assert.equal(ack.errors[0]!.code, 'BUFFER_FULL');
    } finally {
      gate.open();
      await gw.stop();
    }
  });
});

describe('a queue per emitter', () => {
  test('a slow emitter does not slow another: the fast one receives everything while the slow one is held', async () => {
    const slow = new GatedEmitter('slow');
    const fast = new InMemoryEmitter({ name: 'fast' });
    const gw = await startGateway(hub().emitter(slow).emitter(fast).buffer({ capacity: 1000 }).delivery(delivery));
    try {
      const stream = new AckStream(gw.client);
      for (let b = 0; b < 10; b++) {
        const ack = await stream.send({ source: 'a', events: { events: events(20, (i) => ({ id: `f${b}-${i}` })) } });
        assert.equal(ack.event_ids.length, 20);
      }
      await fast.waitForCount(200);
      assert.equal(slow.calls, 1, 'the slow emitter is still on its first batch');
      assert.deepEqual(fast.events.map((e) => e.id).slice(0, 3), ['f0-0', 'f0-1', 'f0-2']);
      // Every event stays buffered until the slow emitter has it too.
      assert.equal(gw.hub.stats().buffer.events, 200);
      slow.open();
      await until(() => gw.hub.stats().buffer.events === 0, 'slow emitter to catch up');
      assert.deepEqual(
        slow.batches.flat().map((e) => e.id),
        fast.events.map((e) => e.id),
      );
      await stream.end();
    } finally {
      slow.open();
      await gw.stop();
    }
  });

  test('route_to reaches only the named emitter; an unknown name is refused UNROUTABLE', async () => {
    const a = new InMemoryEmitter({ name: 'a' });
    const b = new InMemoryEmitter({ name: 'b' });
    const audit = new InMemoryEmitter({ name: 'audit' });
    const gw = await startGateway(hub().emitter(a).emitter(b).emitter(audit, { default: false }).delivery(delivery));
    try {
      const stream = new AckStream(gw.client);
      const ack = await stream.send({
        source: 's',
        events: {
          events: [
            { id: 'all' },
            { id: 'only-b', route_to: ['b'] },
            { id: 'audit-and-a', route_to: ['audit', 'a', 'audit'] },
            { id: 'nowhere', route_to: ['missing'] },
          ],
        },
      });
      assert.deepEqual(ack.event_ids, ['all', 'only-b', 'audit-and-a']);
      assert.deepEqual(
        ack.errors.map((e) => [e.event_id, e.code]),
        [['nowhere', 'UNROUTABLE']],
      );
      await until(() => gw.hub.stats().buffer.events === 0, 'delivery');
      assert.deepEqual(
        a.events.map((e) => e.id),
        ['all', 'audit-and-a'],
      );
      assert.deepEqual(
        b.events.map((e) => e.id),
        ['all', 'only-b'],
      );
      assert.deepEqual(
        audit.events.map((e) => e.id),
        ['audit-and-a'],
      );
      await stream.end();
    } finally {
      await gw.stop();
    }
  });
});
