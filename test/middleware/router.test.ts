import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import type { MiddlewareContext } from '../../src/middleware/middleware.js';
import { router, type RouteRule } from '../../src/middleware/router.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';

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

const ev = (fields: Partial<Event>): Event => ({ ...Event.create(), ...fields });

const rules: RouteRule[] = [
  { name: 'audit', eventTypePrefix: 'audit.', to: ['s3'] },
  { name: 'acme', metadata: { tenant: 'acme' }, to: ['kafka', 's3'] },
  { name: 'k8s', source: 'kube', to: ['loki'] },
];

test('first mode: the first matching rule decides', () => {
  const { ctx } = recorder();
  const r = router({ rules });
  const [a, b, c] = r.process(
    [
      ev({ id: 'a', eventType: 'audit.login', metadata: { tenant: 'acme' } }),
      ev({ id: 'b', eventType: 'user.signup', metadata: { tenant: 'acme' } }),
      ev({ id: 'c', source: 'kube' }),
    ],
    ctx,
  );
  assert.deepEqual(a!.routeTo, ['s3']);
  assert.deepEqual(b!.routeTo, ['kafka', 's3']);
  assert.deepEqual(c!.routeTo, ['loki']);
});

test('all mode: the union of every match, de-duplicated, in rule order', () => {
  const { ctx } = recorder();
  const r = router({ rules, mode: 'all' });
  const [a] = r.process([ev({ eventType: 'audit.login', source: 'kube', metadata: { tenant: 'acme' } })], ctx);
  assert.deepEqual(a!.routeTo, ['s3', 'kafka', 'loki']);
});

test('a rule with several conditions needs all of them', () => {
  const { ctx } = recorder();
  const r = router({ rules: [{ eventTypePrefix: 'audit.', source: 'kube', to: ['x'] }], defaultRoute: ['d'] });
  const [both, typeOnly] = r.process([ev({ eventType: 'audit.a', source: 'kube' }), ev({ eventType: 'audit.a', source: 'web' })], ctx);
  assert.deepEqual(both!.routeTo, ['x']);
  assert.deepEqual(typeOnly!.routeTo, ['d']);
});

test('metadata rules match a value, or presence with true, never inherited keys', () => {
  const { ctx } = recorder();
  const r = router({
    rules: [
      { metadata: { region: 'eu' }, to: ['eu'] },
      { metadata: { debug: true }, to: ['debug'] },
      { metadata: Object.fromEntries([['constructor', true as const]]), to: ['proto'] },
    ],
  });
  const out = r.process(
    [ev({ metadata: { region: 'us' } }), ev({ metadata: { region: 'eu' } }), ev({ metadata: { debug: '' } }), ev({ metadata: {} })],
    ctx,
  );
  assert.deepEqual(
    out.map((e) => e.routeTo),
    [[], ['eu'], ['debug'], []],
  );
});

test('a predicate rule routes by any function; one that throws refuses only its event', () => {
  const { ctx, drops } = recorder();
  const r = router({
    rules: [
      {
        when: (e) => {
          if (e.id === 'bad') throw new Error('boom');
          return e.payload.length > 2;
        },
        to: ['big'],
      },
    ],
  });
  const out = r.process(
    [ev({ id: 'small', payload: new Uint8Array(1) }), ev({ id: 'bad' }), ev({ id: 'large', payload: new Uint8Array(3) })],
    ctx,
  );
  assert.deepEqual(
    out.map((e) => [e.id, e.routeTo]),
    [
      ['small', []],
      ['large', ['big']],
    ],
  );
  assert.deepEqual(
    drops.map((d) => [d.id, d.code]),
    [['bad', 'MIDDLEWARE_ERROR']],
  );
  assert.match(drops[0]!.message, /boom/);
});

test('the default route applies to unmatched events; without one routeTo stays as it was', () => {
  const { ctx } = recorder();
  const withDefault = router({ rules, defaultRoute: ['stdout'] });
  const without = router({ rules });
  assert.deepEqual(withDefault.process([ev({ eventType: 'other' })], ctx)[0]!.routeTo, ['stdout']);
  assert.deepEqual(without.process([ev({ eventType: 'other' })], ctx)[0]!.routeTo, []);
});

test('an event that names its emitters keeps them unless override is set', () => {
  const { ctx } = recorder();
  const event = () => ev({ eventType: 'audit.x', routeTo: ['mine'] });
  assert.deepEqual(router({ rules }).process([event()], ctx)[0]!.routeTo, ['mine']);
  assert.deepEqual(router({ rules, override: true }).process([event()], ctx)[0]!.routeTo, ['s3']);
  // override with no match and no default route leaves the client's choice alone.
  assert.deepEqual(router({ rules, override: true }).process([ev({ routeTo: ['mine'] })], ctx)[0]!.routeTo, ['mine']);
});

test('each routed event gets its own routeTo array', () => {
  const { ctx } = recorder();
  const [a, b] = router({ rules }).process([ev({ eventType: 'audit.1' }), ev({ eventType: 'audit.2' })], ctx);
  a!.routeTo.push('extra');
  assert.deepEqual(b!.routeTo, ['s3']);
});

test('bad rules fail when the router is built', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof PolkuError && pattern.test(err.message);
  assert.throws(() => router({ rules: [{ to: ['x'] }] }), invalid(/rules\[0\] has no condition/));
  assert.throws(() => router({ rules: [{ source: 'a', to: [] }] }), invalid(/rules\[0\]\.to must be a non-empty list/));
  assert.throws(() => router({ rules, defaultRoute: [''] }), invalid(/defaultRoute/));
  assert.throws(() => router({ rules, mode: 'some' as 'all' }), invalid(/mode must be/));
});

test('polku_routed_events_total counts events by rule, default and none', async () => {
  const registry = new Registry();
  const clock = new FakeClock();
  const r = router({ rules, defaultRoute: ['d'], name: 'r1' });
  r.init({ registry, logger: silentLogger(), clock, timers: new FakeTimers(clock) });
  const { ctx } = recorder();
  r.process([ev({ eventType: 'audit.a' }), ev({ eventType: 'audit.b' }), ev({ eventType: 'x' }), ev({ routeTo: ['kept'] })], ctx);
  const metric = await registry.getSingleMetric('polku_routed_events_total')!.get();
  const byRoute = Object.fromEntries(metric.values.map((v) => [v.labels['route'], v.value]));
  assert.equal(byRoute['audit'], 2);
  assert.equal(byRoute['default'], 1);
  assert.equal(byRoute['none'], 1);
  assert.equal(byRoute['acme'], 0);
});

test('through a hub: routed events reach the named emitters; a misnamed route is UNROUTABLE', async () => {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const s3 = new InMemoryEmitter({ name: 's3' });
  const stdout = new InMemoryEmitter({ name: 'stdout' });
  const gateway = hub()
    .middleware(
      router({
        rules: [
          { eventTypePrefix: 'audit.', to: ['s3'] },
          { source: 'ghost', to: ['nowhere'] },
        ],
        defaultRoute: ['stdout'],
      }),
    )
    .emitter(s3)
    .emitter(stdout)
    .build({ clock, timers });
  const events = [ev({ id: 'a1', eventType: 'audit.x' }), ev({ id: 'u1', eventType: 'user.x' }), ev({ id: 'g1', source: 'ghost' })];
  const ack = await gateway.processBatch({ source: 's', cluster: '', payload: { $case: 'events', value: { events } } });
  assert.deepEqual(ack.eventIds, ['a1', 'u1']);
  assert.deepEqual(
    ack.errors.map((e) => [e.eventId, e.code]),
    [['g1', 'UNROUTABLE']],
  );
  timers.advance(1_000);
  await Promise.all([s3.waitForCount(1), stdout.waitForCount(1)]);
  assert.deepEqual(
    s3.events.map((e) => e.id),
    ['a1'],
  );
  assert.deepEqual(
    stdout.events.map((e) => e.id),
    ['u1'],
  );
  await gateway.drain(1_000);
});
