import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { Clock, Timers } from '../../src/clock.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import type { MiddlewareContext } from '../../src/middleware/middleware.js';
import { rateLimiter, type RateLimiterOptions } from '../../src/middleware/rate-limiter.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FakeClock, FakeTimers, flushPromises } from '../../src/testing/index.js';

/** A MiddlewareContext that records what the middleware drops. */
function recorder() {
  const drops: Array<{ id: string; code: string; message: string }> = [];
  const ctx: MiddlewareContext = {
    source: 's',
    cluster: '',
    receivedAtNs: 0n,
    drop: (e, code, message) => drops.push({ id: e.id, code, message }),
  };
  return { ctx, drops };
}

/** A monotonic clock a test can set anywhere, backwards included (FakeClock only moves forward). */
class SettableClock implements Clock {
  mono = 0;
  nowMs = (): number => 1_700_000_000_000 + this.mono;
  nowNs = (): bigint => BigInt(this.nowMs()) * 1_000_000n;
  monotonicMs = (): number => this.mono;
}

const ev = (fields: Partial<Event>): Event => ({ ...Event.create(), ...fields });
const batch = (n: number, fields: Partial<Event> = {}, prefix = 'e') =>
  Array.from({ length: n }, (_, i) => ev({ id: `${prefix}${i}`, ...fields }));

/** A limiter initialised with the given clock (and timers), plus its registry. */
function limiter(options: RateLimiterOptions, clock: Clock = new SettableClock(), timers: Timers = new FakeTimers()) {
  const registry = new Registry();
  const rl = rateLimiter(options);
  rl.init({ registry, logger: silentLogger(), clock, timers });
  return { rl, registry };
}

/** Runs a batch that must be decided synchronously and returns the ids kept. */
function run(rl: ReturnType<typeof rateLimiter>, events: Event[], ctx: MiddlewareContext): string[] {
  const out = rl.process(events, ctx);
  assert.ok(Array.isArray(out), 'refuse mode decides without a promise');
  return out.map((e) => e.id);
}

test('global bucket: a burst passes, the rest is refused RATE_LIMITED naming the bucket and retry-after', () => {
  const { ctx, drops } = recorder();
  const { rl } = limiter({ global: { rate: 10, burst: 5 } });
  assert.deepEqual(run(rl, batch(7), ctx), ['e0', 'e1', 'e2', 'e3', 'e4']);
  assert.deepEqual(
    drops.map((d) => [d.id, d.code]),
    [
      ['e5', 'RATE_LIMITED'],
      ['e6', 'RATE_LIMITED'],
    ],
  );
  assert.equal(drops[0]!.message, 'rate limit exceeded: global bucket (10/s, burst 5); retry after 100 ms');
});

test('tokens refill at the rate, and a jump forward refills at most burst', () => {
  const { ctx } = recorder();
  const clock = new SettableClock();
  const { rl } = limiter({ global: { rate: 10, burst: 5 } }, clock);
  run(rl, batch(5), ctx);
  clock.mono += 100;
  assert.deepEqual(run(rl, batch(2), ctx), ['e0'], 'one token per 100 ms at 10/s');
  clock.mono += 3_600_000;
  assert.equal(run(rl, batch(20), ctx).length, 5, 'an hour later the bucket holds burst, no more');
});

test('a clock that goes backwards mints no tokens and does not crash', () => {
  const { ctx, drops } = recorder();
  const clock = new SettableClock();
  clock.mono = 50_000;
  const { rl } = limiter({ global: { rate: 10, burst: 2 }, perKey: { rate: 10, burst: 2 } }, clock);
  assert.equal(run(rl, batch(2), ctx).length, 2);
  clock.mono = 10_000; // 40 s back
  assert.deepEqual(run(rl, batch(3), ctx), []);
  assert.equal(drops.length, 3);
  clock.mono = 10_100; // 100 ms after the new reading: exactly one token, not 40 s worth
  assert.deepEqual(run(rl, batch(3), ctx), ['e0']);
});

test('per-key buckets by source: one source exhausting its bucket does not limit another', () => {
  const { ctx, drops } = recorder();
  const { rl } = limiter({ perKey: { rate: 1, burst: 2 } });
  const events = [...batch(3, { source: 'a' }, 'a'), ...batch(2, { source: 'b' }, 'b')];
  assert.deepEqual(run(rl, events, ctx), ['a0', 'a1', 'b0', 'b1']);
  assert.equal(drops[0]!.message, 'rate limit exceeded: per-key bucket for source "a" (1/s, burst 2); retry after 1000 ms');
});

test('tenantKey: events without the tenant share the single "" bucket rather than going unlimited', () => {
  const { ctx, drops } = recorder();
  const { rl } = limiter({ perKey: { tenantKey: 'tenant', rate: 1, burst: 1 } });
  const events = [
    ev({ id: 'x1', metadata: { tenant: 'x' } }),
    ev({ id: 'none1' }),
    ev({ id: 'none2', metadata: { other: 'y' } }),
    ev({ id: 'x2', metadata: { tenant: 'x' } }),
  ];
  assert.deepEqual(run(rl, events, ctx), ['x1', 'none1']);
  assert.deepEqual(
    drops.map((d) => d.id),
    ['none2', 'x2'],
  );
  assert.match(drops[0]!.message, /per-key bucket for metadata "tenant" "" /);
  assert.equal(rl.keyCount, 2);
});

test('a key function chooses the bucket; one that throws refuses only its event', () => {
  const { ctx, drops } = recorder();
  const { rl } = limiter({
    perKey: {
      rate: 1,
      burst: 1,
      key: (e) => {
        if (e.id === 'bad') throw new Error('no key');
        return e.eventType.split('.')[0]!;
      },
    },
  });
  const events = [
    ev({ id: 'u1', eventType: 'user.a' }),
    ev({ id: 'bad' }),
    ev({ id: 'u2', eventType: 'user.b' }),
    ev({ id: 'o1', eventType: 'order.a' }),
  ];
  assert.deepEqual(run(rl, events, ctx), ['u1', 'o1']);
  assert.deepEqual(
    drops.map((d) => [d.id, d.code]),
    [
      ['bad', 'MIDDLEWARE_ERROR'],
      ['u2', 'RATE_LIMITED'],
    ],
  );
});

test('with global and per-key buckets an event needs both, and a refused event costs neither', () => {
  const { ctx, drops } = recorder();
  const clock = new SettableClock();
  const { rl } = limiter({ global: { rate: 10, burst: 2 }, perKey: { rate: 10, burst: 2 } }, clock);
  // a takes both of its key's tokens and both global ones; b is refused by the global bucket alone.
  assert.deepEqual(run(rl, [ev({ id: 'a1', source: 'a' }), ev({ id: 'a2', source: 'a' }), ev({ id: 'b1', source: 'b' })], ctx), [
    'a1',
    'a2',
  ]);
  assert.match(drops[0]!.message, /^rate limit exceeded: global bucket/);
  clock.mono += 200; // two global tokens back; b's bucket was never charged, a's is full again too
  assert.deepEqual(run(rl, [ev({ id: 'b2', source: 'b' }), ev({ id: 'b3', source: 'b' }), ev({ id: 'a3', source: 'a' })], ctx), [
    'b2',
    'b3',
  ]);
  assert.match(drops[1]!.message, /^rate limit exceeded: global bucket/);
});

test('a full key table evicts the least recently used key, which comes back with a full bucket', async () => {
  const { ctx } = recorder();
  const { rl, registry } = limiter({ perKey: { rate: 1, burst: 1, maxKeys: 3 } });
  run(rl, [ev({ source: 'a' }), ev({ source: 'b' }), ev({ source: 'c' })], ctx);
  assert.deepEqual(run(rl, [ev({ id: 'a-again', source: 'a' })], ctx), [], 'a is exhausted and touched: now most recent');
  run(rl, [ev({ source: 'd' })], ctx); // evicts b, the least recently used
  assert.deepEqual(run(rl, [ev({ id: 'a3', source: 'a' }), ev({ id: 'b2', source: 'b' })], ctx), ['b2'], 'b starts over full; a was kept');
  for (let i = 0; i < 1_000; i++) run(rl, [ev({ source: `k${i}` })], ctx);
  assert.equal(rl.keyCount, 3, 'the table never grows past maxKeys');
  const gauge = await registry.getSingleMetric('polku_rate_limiter_keys')!.get();
  assert.equal(gauge.values[0]!.value, 3, 'the gauge reports the table size');
});

test('delay mode: over-limit events wait on the injected timers, keep their order, and past maxDelayMs are refused', async () => {
  const { ctx, drops } = recorder();
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const { rl, registry } = limiter({ global: { rate: 10, burst: 1 }, onLimit: 'delay', maxDelayMs: 250 }, clock, timers);
  const result = rl.process(batch(4), ctx);
  assert.ok(result instanceof Promise, 'a batch that must wait returns a promise');
  let out: Event[] | undefined;
  void result.then((events) => (out = events));
  assert.deepEqual(
    drops.map((d) => [d.id, d.code]),
    [['e3', 'RATE_LIMITED']],
    'e3 would wait 300 ms > 250',
  );
  assert.match(drops[0]!.message, /retry after 300 ms/);
  timers.advance(199);
  await flushPromises();
  assert.equal(out, undefined, 'e2 needs 200 ms');
  timers.advance(1);
  await flushPromises();
  assert.deepEqual(
    out!.map((e) => e.id),
    ['e0', 'e1', 'e2'],
  );
  const delayed = await registry.getSingleMetric('polku_rate_limiter_delayed_total')!.get();
  assert.equal(delayed.values[0]!.value, 2);
});

test('delay mode: a later batch queues behind the tokens an earlier one reserved', async () => {
  const { ctx } = recorder();
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const { rl } = limiter({ global: { rate: 10, burst: 1 }, onLimit: 'delay', maxDelayMs: 1_000 }, clock, timers);
  const done: string[] = [];
  void (rl.process(batch(2, {}, 'first'), ctx) as Promise<Event[]>).then(() => done.push('first'));
  void (rl.process(batch(1, {}, 'second'), ctx) as Promise<Event[]>).then(() => done.push('second'));
  timers.advance(100);
  await flushPromises();
  assert.deepEqual(done, ['first']);
  timers.advance(100);
  await flushPromises();
  assert.deepEqual(done, ['first', 'second']);
  // With no wait needed the answer is synchronous again.
  timers.advance(1_000);
  assert.ok(Array.isArray(rl.process(batch(1), ctx)));
});

test('bad options fail when the limiter is built', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof PolkuError && pattern.test(err.message);
  assert.throws(() => rateLimiter({}), invalid(/give global and\/or perKey/));
  assert.throws(() => rateLimiter({ global: { rate: 0 } }), invalid(/global\.rate must be a positive number/));
  assert.throws(() => rateLimiter({ global: { rate: 5, burst: 0.5 } }), invalid(/global\.burst must be at least 1/));
  assert.throws(() => rateLimiter({ perKey: { rate: 5, maxKeys: 0 } }), invalid(/maxKeys/));
  assert.throws(() => rateLimiter({ perKey: { rate: 5, tenantKey: 't', key: () => '' } }), invalid(/key or tenantKey/));
});

test('through a hub: refused events count in rateLimitedCount; delayed ones are all accepted', async () => {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const send = (gateway: ReturnType<ReturnType<typeof hub>['build']>, events: Event[]) =>
    gateway.processBatch({ source: 's', cluster: '', payload: { $case: 'events', value: { events } } });

  const refusing = hub()
    .middleware(rateLimiter({ perKey: { rate: 1, burst: 2 } }))
    .emitter(new InMemoryEmitter())
    .build({ clock, timers });
  const ack = await send(refusing, batch(4));
  assert.deepEqual(ack.eventIds, ['e0', 'e1']);
  assert.deepEqual(
    ack.errors.map((e) => [e.eventId, e.code]),
    [
      ['e2', 'RATE_LIMITED'],
      ['e3', 'RATE_LIMITED'],
    ],
  );
  assert.equal(ack.middlewareStats!.rateLimitedCount, 2n);

  const delaying = hub()
    .middleware(rateLimiter({ global: { rate: 10, burst: 1 }, onLimit: 'delay' }))
    .emitter(new InMemoryEmitter())
    .build({ clock, timers });
  const pending = send(delaying, batch(3));
  assert.ok(pending instanceof Promise);
  timers.advance(200);
  const delayedAck = await pending;
  assert.deepEqual(delayedAck.eventIds, ['e0', 'e1', 'e2']);
  assert.equal(delayedAck.middlewareStats!.rateLimitedCount, 0n);
});
