// RedisStreamEmitter against a real redis-server (test/helpers/redis-server.ts), read back with
// ioredis: the fields of each entry, per-event results from the pipeline's replies, the stream
// template's cap, and a server that is gone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { systemClock, systemTimers } from '../../src/clock.js';
import { RedisStreamEmitter, redisRetryable, type RedisBatchCommand, type RedisStreamEmitterOptions } from '../../src/emit/redis-stream.js';
import { Severity } from '../../src/gen/polku/v1/event.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { sample } from '../helpers/gateway-harness.js';
import { fullEvent } from '../helpers/full-event.js';
import { redisMissing, RedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/gateway-harness.js';

const skip = redisMissing();
let server: RedisServer;
let client: Redis;
const emitters: RedisStreamEmitter[] = [];

before(async () => {
  if (skip) return;
  server = await RedisServer.start();
  client = new Redis(server.url);
});
after(async () => {
  for (const e of emitters) await e.shutdown();
  client?.disconnect();
  await server?.close();
});

let batchCommand: RedisBatchCommand = 'script';

async function emitter(options: Partial<RedisStreamEmitterOptions>) {
  const e = new RedisStreamEmitter({ url: server.url, batchCommand, ...options });
  const registry = createRegistry();
  e.init({ registry, logger: silentLogger(), clock: systemClock, timers: systemTimers });
  emitters.push(e);
  await until(() => e.health().healthy, 'the emitter connected');
  return { e, registry };
}

/** Field list → object; `payload` stays bytes. */
async function entries(stream: string) {
  const rows = await client.xrangeBuffer(stream, '-', '+');
  return rows.map(([, fields]) => {
    const o: Record<string, Buffer> = {};
    for (let i = 0; i < fields.length; i += 2) o[fields[i]!.toString()] = fields[i + 1]!;
    return o;
  });
}

for (const mode of ['script', 'pipeline'] as const) {
  describe(`RedisStreamEmitter against redis-server (batchCommand: ${mode})`, { skip }, () => {
    before(async () => {
      batchCommand = mode;
      await client.flushall();
    });

    test('one entry per event with the documented fields; payload bytes binary-safe', async () => {
      const { e } = await emitter({ stream: 't1' });
      const events = [
        fullEvent({ id: 'a' }),
        fullEvent({ id: 'b', payload: new TextEncoder().encode('{"x":1}'), severity: Severity.SEVERITY_ERROR }),
      ];
      assert.deepEqual(await e.emit(events), { status: 'success' });
      const got = await entries('t1');
      assert.equal(got.length, 2);
      const a = got[0]!;
      assert.deepEqual(Object.keys(a), ['id', 'time', 'source', 'event_type', 'severity', 'outcome', 'metadata', 'payload']);
      assert.equal(a['id']!.toString(), 'a');
      assert.equal(a['time']!.toString(), '1764560000123456789');
      assert.equal(a['source']!.toString(), 'kubelet');
      assert.equal(a['event_type']!.toString(), 'pod.started');
      assert.equal(a['severity']!.toString(), 'SEVERITY_WARNING');
      assert.equal(a['outcome']!.toString(), 'OUTCOME_FAILURE');
      assert.deepEqual(JSON.parse(a['metadata']!.toString()), fullEvent().metadata);
      assert.deepEqual([...a['payload']!], [0, 1, 2, 250, 255]);
      assert.equal(got[1]!['payload']!.toString(), '{"x":1}');
      assert.equal(got[1]!['severity']!.toString(), 'SEVERITY_ERROR');
    });

    test('a key of another type fails only its events (WRONGTYPE, permanent, the server’s message); neighbours land', async () => {
      await client.set('t2:bad', 'a string');
      const { e, registry } = await emitter({ name: 'r2', stream: 't2:{source}' });
      const events = [fullEvent({ id: 'x0', source: 'ok' }), fullEvent({ id: 'x1', source: 'bad' }), fullEvent({ id: 'x2', source: 'ok' })];
      const result = await e.emit(events);
      assert.equal(result.status, 'partial');
      assert.ok(result.status === 'partial');
      assert.equal(result.failures.length, 1);
      assert.equal(result.failures[0]!.index, 1);
      assert.equal(result.failures[0]!.retryable, false);
      assert.match(result.failures[0]!.error, /WRONGTYPE/);
      assert.deepEqual(
        (await entries('t2:ok')).map((f) => f['id']!.toString()),
        ['x0', 'x2'],
      );
      const text = await registry.metrics();
      assert.equal(sample(text, 'polku_redis_emitter_failed_events_total{emitter="r2",retryable="false"}'), 1);
      assert.equal(sample(text, 'polku_redis_emitter_batches_total{emitter="r2",outcome="partial"}'), 1);
    });

    test('a batch over eventsPerCommand goes as several commands: entries in batch order; a refusal in the third fails alone at its index', async () => {
      await client.set('t6:bad', 'a string');
      const { e, registry } = await emitter({ name: 'r6', stream: 't6:{source}', eventsPerCommand: 100 });
      const events = Array.from({ length: 350 }, (_, i) => fullEvent({ id: `c${i}`, source: i === 237 ? 'bad' : 'ok' }));
      const result = await e.emit(events);
      assert.ok(result.status === 'partial', JSON.stringify(result));
      assert.deepEqual(
        result.failures.map((f) => [f.index, f.retryable]),
        [[237, false]],
      );
      assert.match(result.failures[0]!.error, /^redis XADD: WRONGTYPE/);
      assert.deepEqual(
        (await entries('t6:ok')).map((f) => f['id']!.toString()),
        events.filter((_, i) => i !== 237).map((ev) => ev.id),
      );
      assert.equal(sample(await registry.metrics(), 'polku_redis_emitter_batches_total{emitter="r6",outcome="partial"}'), 1);
    });

    test('stream names are capped: past maxStreams, events go to the overflow stream, counted', async () => {
      const { e, registry } = await emitter({ name: 'r3', stream: 't3:{source}', maxStreams: 2 });
      const events = ['a', 'b', 'c', 'a', 'd'].map((s, i) => fullEvent({ id: `o${i}`, source: s }));
      assert.deepEqual(await e.emit(events), { status: 'success' });
      assert.deepEqual(
        (await entries('t3:a')).map((f) => f['id']!.toString()),
        ['o0', 'o3'],
      );
      assert.deepEqual(
        (await entries('t3:b')).map((f) => f['id']!.toString()),
        ['o1'],
      );
      assert.deepEqual(
        (await entries('t3:_overflow')).map((f) => f['id']!.toString()),
        ['o2', 'o4'],
      );
      const text = await registry.metrics();
      assert.equal(sample(text, 'polku_redis_emitter_overflow_events_total{emitter="r3"}'), 2);
      assert.equal(sample(text, 'polku_redis_emitter_streams{emitter="r3"}'), 2);
    });

    test('MAXLEN ~ trims each stream near maxLen', async () => {
      const { e } = await emitter({ stream: 't4', maxLen: 100 });
      for (let b = 0; b < 10; b++) {
        const r = await e.emit(Array.from({ length: 100 }, (_, i) => fullEvent({ id: `m${b}-${i}` })));
        assert.equal(r.status, 'success');
      }
      const len = await client.xlen('t4');
      assert.ok(len >= 100 && len < 1000, `about 100 entries kept, got ${len}`);
    });

    test('its preferred batch is four commands of eventsPerCommand', () => {
      assert.equal(new RedisStreamEmitter({ url: 'redis://x', batchCommand }).preferredBatchSize, 1_000);
      assert.equal(new RedisStreamEmitter({ url: 'redis://x', batchCommand, eventsPerCommand: 100 }).preferredBatchSize, 400);
    });

    test('bad options are refused with the option named', () => {
      assert.throws(() => new RedisStreamEmitter({ url: 'http://x' }), /url must start with redis:\/\/ or rediss:\/\//);
      assert.throws(() => new RedisStreamEmitter({ url: 'redis://x', maxLen: -1 }), /maxLen must be/);
      assert.throws(() => new RedisStreamEmitter({ url: 'redis://x', stream: 'a:{nope}' }), /unknown placeholder \{nope\}/);
      assert.throws(() => new RedisStreamEmitter({ url: 'redis://x', maxStreams: 0 }), /maxNames must be a positive integer/);
      assert.throws(
        () => new RedisStreamEmitter({ url: 'redis://x', batchCommand: 'multi' as never }),
        /batchCommand must be script or pipeline/,
      );
      assert.throws(
        () => new RedisStreamEmitter({ url: 'redis://x', eventsPerCommand: 0 }),
        /eventsPerCommand must be a positive whole number, got 0/,
      );
    });

    test('which replies are retryable', () => {
      const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
      for (const m of [
        'LOADING Redis is loading',
        'BUSY Redis is busy',
        'OOM command not allowed',
        'READONLY You can’t write',
        'NOAUTH Authentication required.',
      ]) {
        assert.equal(redisRetryable(reply(m)), true, m);
      }
      for (const m of ['WRONGTYPE Operation against a key', 'ERR syntax error']) assert.equal(redisRetryable(reply(m)), false, m);
      assert.equal(redisRetryable(new Error('Connection is closed.')), true);
    });

    test('server stopped: the batch is retryable at once, and delivered after the restart', { timeout: 30_000 }, async () => {
      const own = await RedisServer.start();
      try {
        const e = new RedisStreamEmitter({ url: own.url, stream: 't5', timeoutMs: 1000, batchCommand });
        e.init({ registry: createRegistry(), logger: silentLogger(), clock: systemClock, timers: systemTimers });
        emitters.push(e);
        await until(() => e.health().healthy, 'connected');
        await own.stop();
        const r = await e.emit([fullEvent({ id: 'late' })]);
        assert.equal(r.status, 'retryable');
        assert.equal(e.health().healthy, false);
        await own.start();
        await until(async () => (await e.emit([fullEvent({ id: 'late' })])).status === 'success', 'delivered after restart', 15_000);
        const c = new Redis(own.url);
        assert.equal(await c.xlen('t5'), 1);
        c.disconnect();
      } finally {
        await own.close();
      }
    });
  });
}
