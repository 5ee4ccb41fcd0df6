// NatsEmitter against a real nats-server with JetStream (test/helpers/nats-server.ts), read back
// with the @nats-io clients: body and subject per event, Nats-Msg-Id dedupe, per-event refusals
// with the server's message, core NATS publish, and a server that is gone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { systemClock, systemTimers } from '../../src/clock.js';
import type { EventJson } from '../../src/emit/event-json.js';
import { NatsEmitter, natsRetryable, subjectToken, type NatsEmitterOptions } from '../../src/emit/nats.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { fullEvent } from '../helpers/full-event.js';
import { sample, until } from '../helpers/gateway-harness.js';
import { natsMissing, NatsServer } from '../helpers/nats-server.js';

const skip = natsMissing();
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
const emitters: NatsEmitter[] = [];

before(async () => {
  if (skip) return;
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});
after(async () => {
  for (const e of emitters) await e.shutdown();
  await nc?.close();
  await server?.close();
});

async function emitter(options: Partial<NatsEmitterOptions>, url = server.url) {
  const e = new NatsEmitter({ servers: url, ...options });
  const registry = createRegistry();
  e.init({ registry, logger: silentLogger(), clock: systemClock, timers: systemTimers });
  emitters.push(e);
  await until(() => e.health().healthy, 'the emitter connected');
  return { e, registry };
}

/** Every message of `stream`, in order: subject, body as EventJson, Nats-Msg-Id. */
async function messages(stream: string) {
  const js = jetstream(nc);
  const info = await jsm.streams.info(stream);
  const c = await js.consumers.get(stream);
  const out: Array<{ subject: string; event: EventJson; msgId: string | undefined }> = [];
  if (info.state.messages === 0) return out;
  const it = await c.fetch({ max_messages: info.state.messages, expires: 5_000 });
  for await (const m of it) {
    out.push({ subject: m.subject, event: m.json<EventJson>(), msgId: m.headers?.get('Nats-Msg-Id') });
    if (out.length === info.state.messages) break;
  }
  return out;
}

describe('NatsEmitter against nats-server (JetStream)', { skip }, () => {
  test('one message per event on its subject; body is the event JSON; Nats-Msg-Id is the id', async () => {
    await jsm.streams.add({ name: 'T1', subjects: ['t1.>'] });
    const { e } = await emitter({ subject: 't1.{source}.{event_type}' });
    const events = [fullEvent({ id: 'a' }), fullEvent({ id: 'b', source: 'my.svc *x', eventType: 'order>placed' })];
    assert.deepEqual(await e.emit(events), { status: 'success' });
    const got = await messages('T1');
    assert.deepEqual(
      got.map((m) => [m.subject, m.event.id, m.msgId]),
      [
        ['t1.kubelet.pod_started', 'a', 'a'],
        ['t1.my_svc__x.order_placed', 'b', 'b'],
      ],
    );
    assert.equal(got[0]!.event.payload_base64, Buffer.from([0, 1, 2, 250, 255]).toString('base64'));
    assert.equal(got[0]!.event.timestamp_unix_ns, '1764560000123456789');
    assert.deepEqual(got[0]!.event.metadata, fullEvent().metadata);
  });

  test('a resend of the same ids is acked as duplicate and stored once (Nats-Msg-Id)', async () => {
    await jsm.streams.add({ name: 'T2', subjects: ['t2.>'] });
    const { e, registry } = await emitter({ name: 'n2', subject: 't2.{source}' });
    const events = Array.from({ length: 50 }, (_, i) => fullEvent({ id: `d${i}` }));
    assert.equal((await e.emit(events)).status, 'success');
    assert.equal((await e.emit(events)).status, 'success');
    assert.equal((await jsm.streams.info('T2')).state.messages, 50);
    assert.equal(sample(await registry.metrics(), 'polku_nats_emitter_duplicates_total{emitter="n2"}'), 50);
  });

  test('a message the stream refuses fails alone, permanent, with the server’s message; no stream bound is retryable', async () => {
    await jsm.streams.add({ name: 'T3', subjects: ['t3.>'], max_msg_size: 2000 });
    const { e, registry } = await emitter({ name: 'n3', subject: 't3.{source}' });
    const big = fullEvent({ id: 'big', payload: new Uint8Array(4000) });
    const events = [fullEvent({ id: 'k0' }), big, fullEvent({ id: 'k2' }), fullEvent({ id: 'k3', source: 'x' })];
    const r = await e.emit(events);
    assert.ok(r.status === 'partial', JSON.stringify(r));
    assert.equal(r.failures.length, 1);
    assert.equal(r.failures[0]!.index, 1);
    assert.equal(r.failures[0]!.retryable, false);
    assert.match(r.failures[0]!.error, /message size exceeds maximum allowed/);
    assert.deepEqual(
      (await messages('T3')).map((m) => m.event.id),
      ['k0', 'k2', 'k3'],
    );
    assert.equal(sample(await registry.metrics(), 'polku_nats_emitter_failed_events_total{emitter="n3",retryable="false"}'), 1);

    const { e: unbound } = await emitter({ name: 'n3b', subject: 'nowhere.{source}', timeoutMs: 2000 });
    const r2 = await unbound.emit([fullEvent({ id: 'u' })]);
    assert.equal(r2.status, 'retryable');
    assert.ok(r2.status === 'retryable');
    assert.match(r2.error, /no responders/);
  });

  test('failures mid-batch: a partial result naming exactly them; the batch sent again is stored once per event (Nats-Msg-Id)', async () => {
    // Events of source "b" go to a subject no stream binds yet: no responders, retryable. Those of
    // "a" are stored. Sending the whole batch again (as a durable-mode resend does) once "b" has a
    // stream stores the b's and gets the a's acked as duplicates.
    await jsm.streams.add({ name: 'T5A', subjects: ['t5.a'] });
    const { e, registry } = await emitter({ name: 'n5', subject: 't5.{source}', timeoutMs: 3000 });
    const events = Array.from({ length: 300 }, (_, i) => fullEvent({ id: `m${i}`, source: i >= 100 && i < 200 ? 'b' : 'a' }));
    const r = await e.emit(events);
    assert.ok(r.status === 'partial', JSON.stringify(r).slice(0, 200));
    assert.deepEqual(
      r.failures.map((f) => f.index),
      Array.from({ length: 100 }, (_, i) => 100 + i),
    );
    assert.ok(r.failures.every((f) => f.retryable && /no responders/.test(f.error)));
    assert.equal((await jsm.streams.info('T5A')).state.messages, 200);

    await jsm.streams.add({ name: 'T5B', subjects: ['t5.b'] });
    assert.deepEqual(await e.emit(events), { status: 'success' });
    const ids = [...(await messages('T5A')), ...(await messages('T5B'))].map((m) => m.event.id);
    assert.equal(ids.length, 300);
    assert.deepEqual([...new Set(ids)].sort(), events.map((ev) => ev.id).sort());
    const text = await registry.metrics();
    assert.equal(sample(text, 'polku_nats_emitter_duplicates_total{emitter="n5"}'), 200);
    assert.equal(sample(text, 'polku_nats_emitter_failed_events_total{emitter="n5",retryable="true"}'), 100);
  });

  test('subjects are capped: past maxSubjects events go to the overflow subject, counted', async () => {
    await jsm.streams.add({ name: 'T4', subjects: ['t4.>'] });
    const { e, registry } = await emitter({ name: 'n4', subject: 't4.{source}', maxSubjects: 2 });
    const events = ['a', 'b', 'c', 'a', 'd'].map((s, i) => fullEvent({ id: `o${i}`, source: s }));
    assert.deepEqual(await e.emit(events), { status: 'success' });
    assert.deepEqual(
      (await messages('T4')).map((m) => `${m.subject}:${m.event.id}`),
      ['t4.a:o0', 't4.b:o1', 't4._overflow:o2', 't4.a:o3', 't4._overflow:o4'],
    );
    const text = await registry.metrics();
    assert.equal(sample(text, 'polku_nats_emitter_overflow_events_total{emitter="n4"}'), 2);
    assert.equal(sample(text, 'polku_nats_emitter_subjects{emitter="n4"}'), 2);
  });

  test('core NATS (jetstream: false): a subscriber gets each event once', async () => {
    const sub = nc.subscribe('core.>');
    const got: string[] = [];
    const done = (async () => {
      for await (const m of sub) {
        got.push(m.json<EventJson>().id);
        if (got.length === 100) break;
      }
    })();
    await nc.flush();
    const { e } = await emitter({ subject: 'core.{source}', jetstream: false });
    assert.deepEqual(await e.emit(Array.from({ length: 100 }, (_, i) => fullEvent({ id: `c${i}` }))), { status: 'success' });
    await done;
    assert.deepEqual(
      got,
      Array.from({ length: 100 }, (_, i) => `c${i}`),
    );
  });

  test('bad options and tokens; the preferred batch is 1,000', () => {
    assert.equal(new NatsEmitter({ servers: 'nats://x' }).preferredBatchSize, 1_000);
    assert.throws(() => new NatsEmitter({ servers: [] }), /servers must name at least one server/);
    assert.throws(() => new NatsEmitter({ servers: 'nats://x', subject: 'a.*.{source}' }), /wildcard/);
    assert.throws(() => new NatsEmitter({ servers: 'nats://x', subject: 'a..{source}' }), /empty token/);
    assert.throws(() => new NatsEmitter({ servers: 'nats://x', subject: 'a.{nope}' }), /unknown placeholder \{nope\}/);
    assert.equal(subjectToken('a.b c*>\t'), 'a_b_c___');
    const api = (status: number) => Object.assign(new Error('x'), { name: 'JetStreamApiError', status });
    assert.equal(natsRetryable(api(503)), true);
    assert.equal(natsRetryable(api(400)), false);
    assert.equal(natsRetryable(Object.assign(new Error('max_payload'), { name: 'InvalidArgumentError' })), false);
    assert.equal(natsRetryable(Object.assign(new Error('t'), { name: 'TimeoutError' })), true);
  });

  test('server stopped: batches are retryable; after the restart they are delivered', { timeout: 40_000 }, async () => {
    const own = await NatsServer.start();
    try {
      const c = await connect({ servers: own.url });
      await (await jetstreamManager(c)).streams.add({ name: 'T5', subjects: ['t5.>'] });
      await c.close();
      const { e } = await emitter({ subject: 't5.{source}', timeoutMs: 1000 }, own.url);
      await own.stop();
      const r = await e.emit([fullEvent({ id: 'late' })]);
      assert.equal(r.status, 'retryable', JSON.stringify(r));
      await own.start();
      await until(async () => (await e.emit([fullEvent({ id: 'late' })])).status === 'success', 'delivered after restart', 20_000);
      const c2 = await connect({ servers: own.url });
      assert.equal((await (await jetstreamManager(c2)).streams.info('T5')).state.messages, 1, 'once, whatever was resent');
      await c2.close();
    } finally {
      await own.close();
    }
  });
});
