import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import type { MiddlewareContext } from '../../src/middleware/middleware.js';
import { hash32, sampler } from '../../src/middleware/sampler.js';
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
/** Sequential ids: the hardest case for a hash, since they differ only in their last characters. */
const ids = (n: number, prefix = 'evt-') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const keptIds = (s: ReturnType<typeof sampler>, events: Event[]) => s.process(events, recorder().ctx).map((e) => e.id);

test('rate 1 keeps every event and rate 0 drops every one as SAMPLED_OUT', () => {
  const events = ids(500).map((id) => ev({ id }));
  assert.equal(keptIds(sampler({ rate: 1 }), events).length, 500);
  const { ctx, drops } = recorder();
  assert.deepEqual(sampler({ rate: 0 }).process(events, ctx), []);
  assert.equal(drops.length, 500);
  assert.ok(drops.every((d) => d.code === 'SAMPLED_OUT'));
  assert.equal(drops[0]!.message, 'sampled out by "sampler" (rate 0)');
});

test('the same id gets the same decision every time, in every sampler instance', () => {
  const events = ids(2_000).map((id) => ev({ id }));
  const first = keptIds(sampler({ rate: 0.3 }), events);
  const again = keptIds(sampler({ rate: 0.3, name: 'another' }), events);
  const sameInstance = sampler({ rate: 0.3 });
  assert.deepEqual(again, first);
  assert.deepEqual(keptIds(sameInstance, events), keptIds(sameInstance, events));
  assert.ok(first.length > 0 && first.length < events.length, 'the test means something only if both decisions occur');
});

test('the hash is pinned: a change would flip decisions between gateway versions', () => {
  assert.equal(hash32(''), 2872998923);
  assert.equal(hash32('polku'), 1459484566);
  assert.equal(hash32('01HZX3K5V7Q8R9S0T1U2V3W4X5'), 3383640183);
});

test('about rate × 10,000 of 10,000 sequential ids are kept', () => {
  // The hash is deterministic, so this cannot flake: it checks the hash spreads sequential ids
  // the way a fair coin would. Kept counts from a coin are binomial, σ = √(n·p·(1−p)); allowing
  // ±5σ (p=0.01: ±50, p=0.1: ±150, p=0.5: ±250) fails only a hash that clusters similar ids.
  const events = ids(10_000).map((id) => ev({ id }));
  for (const rate of [0.01, 0.1, 0.5]) {
    const kept = keptIds(sampler({ rate }), events).length;
    const tolerance = 5 * Math.sqrt(10_000 * rate * (1 - rate));
    assert.ok(Math.abs(kept - rate * 10_000) <= tolerance, `rate ${rate}: kept ${kept}, expected ${rate * 10_000} ± ${tolerance}`);
  }
});

test('a lower rate keeps a subset of what a higher rate keeps', () => {
  const events = ids(5_000).map((id) => ev({ id }));
  const high = new Set(keptIds(sampler({ rate: 0.5 }), events));
  const low = keptIds(sampler({ rate: 0.1 }), events);
  assert.ok(low.length > 0);
  assert.ok(low.every((id) => high.has(id)));
});

test('a metadata key keeps or drops related events together; events without it fall back to their id', () => {
  const s = sampler({ rate: 0.5, key: 'trace_id' });
  const traces = ids(200, 'trace-');
  const events = traces.flatMap((trace, t) =>
    Array.from({ length: 5 }, (_, i) => ev({ id: `t${t}-e${i}`, metadata: { trace_id: trace } })),
  );
  const kept = new Set(keptIds(s, events));
  let keptTraces = 0;
  for (let t = 0; t < traces.length; t++) {
    const decisions = new Set(Array.from({ length: 5 }, (_, i) => kept.has(`t${t}-e${i}`)));
    assert.equal(decisions.size, 1, `trace ${t} was split`);
    if (kept.has(`t${t}-e0`)) keptTraces++;
  }
  assert.ok(keptTraces > 0 && keptTraces < traces.length);

  const untraced = ids(200).map((id) => ev({ id }));
  const keptUntraced = keptIds(s, untraced).length;
  assert.ok(keptUntraced > 0 && keptUntraced < 200, 'events without trace_id are sampled one by one, not as one group');
  assert.deepEqual(keptIds(s, untraced), keptIds(sampler({ rate: 0.5 }), untraced), 'the fallback is exactly the id');
});

test('a key function decides the key; one that throws refuses only its event', () => {
  const s = sampler({
    rate: 0.5,
    key: (e) => {
      if (e.id === 'bad') throw new Error('no key');
      return e.source;
    },
  });
  const { ctx, drops } = recorder();
  const events = ids(100).map((id, i) => ev({ id, source: `src-${i % 10}` }));
  const kept = s.process([...events, ev({ id: 'bad' })], ctx);
  const keptSources = new Set(kept.map((e) => e.source));
  for (const e of events) assert.equal(kept.includes(e), keptSources.has(e.source), 'one decision per source');
  assert.deepEqual(
    drops.filter((d) => d.code === 'MIDDLEWARE_ERROR').map((d) => d.id),
    ['bad'],
  );
});

test('per-type rates: the longest matching prefix wins, other types use rate', () => {
  const s = sampler({ rate: 1, rates: { 'debug.': 0, 'debug.keep.': 1 } });
  const { ctx, drops } = recorder();
  const kept = s.process(
    [ev({ id: 'a', eventType: 'debug.noise' }), ev({ id: 'b', eventType: 'debug.keep.this' }), ev({ id: 'c', eventType: 'user.x' })],
    ctx,
  );
  assert.deepEqual(
    kept.map((e) => e.id),
    ['b', 'c'],
  );
  assert.equal(drops[0]!.message, 'sampled out by "sampler" (rate 0 for event types "debug."*)');
});

test('rates outside 0..1 and empty keys fail when the sampler is built', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof PolkuError && pattern.test(err.message);
  assert.throws(() => sampler({ rate: 1.5 }), invalid(/rate must be between 0 and 1, got 1.5/));
  assert.throws(() => sampler({ rates: { 'x.': -0.1 } }), invalid(/rates\["x\."\] must be between 0 and 1/));
  assert.throws(() => sampler({ rate: Number.NaN }), invalid(/rate must be between 0 and 1/));
  assert.throws(() => sampler({ key: '' }), invalid(/key must be/));
});

test('through a hub: sampled-out events count in sampledOutCount', async () => {
  const clock = new FakeClock();
  const s = sampler({ rate: 0.5 });
  const gateway = hub()
    .middleware(s)
    .emitter(new InMemoryEmitter())
    .build({ clock, timers: new FakeTimers(clock) });
  const events = ids(100).map((id) => ev({ id }));
  const expectedKept = events.filter((e) => s.keeps(e.id)).map((e) => e.id);
  const ack = await gateway.processBatch({ source: 's', cluster: '', payload: { $case: 'events', value: { events } } });
  assert.deepEqual(ack.eventIds, expectedKept);
  assert.equal(ack.middlewareStats!.sampledOutCount, BigInt(100 - expectedKept.length));
  assert.ok(ack.errors.every((e) => e.code === 'SAMPLED_OUT'));
});
