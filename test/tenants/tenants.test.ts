import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FairQueue } from '../../src/buffer/fair-queue.js';
import type { BufferedEvent } from '../../src/buffer/buffered-event.js';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/index.js';
import { TENANT } from '../../src/metadata-keys.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { hashKey } from '../../src/tenants/api-key.js';
import type { TenantShare } from '../../src/tenants/tenant.js';
import { checkTenants, type TenantSpec } from '../../src/tenants/tenant-spec.js';
import { parseTenantsFile } from '../../src/tenants/tenants-file.js';
import { FakeClock, FakeTimers, InMemoryEmitter } from '../../src/testing/index.js';
import type { Ack } from '../../src/gen/polku/v1/gateway.js';

const WEB_KEY = 'web-secret-1';
const web: TenantSpec = { name: 'web', apiKeys: [hashKey(WEB_KEY)], sources: ['web'], rate: 10, burst: 5 };

function event(i: number, extra: Partial<Event> = {}): Event {
  return {
    id: `e${i}`,
    timestampUnixNs: 1n,
    source: '',
    eventType: 't',
    metadata: {},
    payload: Buffer.from(`p${i}`),
    priority: 0,
    routeTo: [],
    severity: 0,
    outcome: 0,
    ...extra,
  } as Event;
}

function build(specs: TenantSpec[], clock = new FakeClock()) {
  const out = new InMemoryEmitter({ name: 'mem' });
  const registry = createRegistry();
  const h = hub()
    .emitter(out)
    .tenants(specs)
    .build({ clock, timers: new FakeTimers(clock), registry });
  const send = (apiKey: string | undefined, events: Event[], source = 'web'): Ack =>
    h.submit({ source, cluster: '', payload: { kind: 'events', events }, apiKey }) as Ack;
  return { h, out, send, registry };
}

describe('tenant specs', () => {
  test('a mistake names the place, the tenant and the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ ...web, rate: 0 }, /module: tenants\[0\] "web": rate must be a positive number \(events\/s\), got 0/],
      [{ ...web, burst: 0.5 }, /tenants\[0\] "web": burst must be a number of at least 1/],
      [{ ...web, bufferShare: 1.5 }, /tenants\[0\] "web": bufferShare must be a fraction of the buffer in \(0, 1\], got 1.5/],
      [{ ...web, apiKeys: [] }, /tenants\[0\] "web": apiKeys must not be empty/],
      [{ ...web, apiKeys: ['sha256:abc'] }, /tenants\[0\] "web": apiKeys\[0\] must be "sha256:" and 64 hex digits/],
      [{ ...web, sources: 'web' }, /tenants\[0\] "web": sources must be a non-empty array of strings, got string/],
      [{ ...web, name: '_other' }, /tenants\[0\] "_other": name must be 1-63 letters/],
      [{ ...web, rtae: 5 }, /tenants\[0\] "web": rtae is not a tenant field/],
    ];
    for (const [spec, message] of cases) {
      assert.throws(
        () => checkTenants([spec], 'module'),
        (err: Error & { code?: string }) => err.code === 'POLKU_ERR_TENANTS_INVALID' && message.test(err.message),
        String(message),
      );
    }
    assert.throws(
      () => checkTenants([web, { ...web, name: 'api' }], 'f.json'),
      /f.json: tenants\[1\] "api": apiKeys\[0\] is also a key of tenant "web"/,
    );
    assert.throws(() => checkTenants([], 'f.json'), /tenants is empty/);
  });

  test('defaults: burst = rate, an equal buffer share; "*" allows any source', () => {
    const [a, b] = checkTenants(
      [
        { name: 'a', apiKeys: ['k1'], sources: ['*'], rate: 200 },
        { name: 'b', apiKeys: ['k2'], sources: ['x'], rate: 0.5 },
      ],
      'm',
    );
    assert.equal(a!.burst, 200);
    assert.equal(a!.bufferShare, 0.5);
    assert.equal(a!.sources, null);
    assert.equal(b!.burst, 1);
    assert.equal(a!.keys[0]!.plain, true);
  });

  test('the file format: {"tenants":[...]}, problems name the file', () => {
    assert.equal(parseTenantsFile('t.json', JSON.stringify({ tenants: [web] }))[0]!.name, 'web');
    assert.throws(() => parseTenantsFile('t.json', '{"tenants":'), /t.json: not JSON/);
    assert.throws(() => parseTenantsFile('t.json', '[]'), /t.json: must be an object \{"tenants":\[...\]\}/);
    assert.throws(() => parseTenantsFile('t.json', '{"tenants":[],"x":1}'), /t.json: unknown field "x"/);
  });

  test('hash-key is the sha256 of the key in hex', () => {
    assert.equal(hashKey('s3cret'), 'sha256:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0');
  });
});

describe('the hub with tenants', () => {
  test('no key and an unknown key are refused UNAUTHENTICATED, whole message', () => {
    const { send, out } = build([web]);
    for (const key of [undefined, '', 'wrong']) {
      const ack = send(key, [event(1), event(2)]);
      assert.equal(ack.eventIds.length, 0);
      assert.equal(ack.errors.length, 1);
      assert.equal(ack.errors[0]!.code, 'UNAUTHENTICATED');
      assert.equal(ack.middlewareStats!.totalReceived, 1n);
    }
    assert.equal(out.events.length, 0);
  });

  test("accepted events carry the tenant's name, whatever the caller wrote; a forbidden source is refused alone", () => {
    const { h, send } = build([web]);
    const ack = send(WEB_KEY, [event(1, { metadata: { [TENANT]: 'admin' } }), event(2, { source: 'db' }), event(3)]);
    assert.deepEqual(ack.eventIds, ['e1', 'e3']);
    assert.equal(ack.errors.length, 1);
    assert.equal(ack.errors[0]!.code, 'PERMISSION_DENIED');
    assert.match(ack.errors[0]!.message, /events\[1\]: tenant "web" may not send source "db" \(allowed: web\)/);
    const raw = h.submit({
      source: 'db',
      cluster: '',
      payload: { kind: 'raw', data: Buffer.from('{}'), format: 'json' },
      apiKey: WEB_KEY,
    }) as Ack;
    assert.equal(raw.errors[0]!.code, 'PERMISSION_DENIED');
  });

  test('the token bucket: burst at once, then the rate, with the retry-after in the refusal (FakeClock)', async () => {
    const clock = new FakeClock();
    const { h, send, out } = build([web], clock);
    const first = send(
      WEB_KEY,
      Array.from({ length: 8 }, (_, i) => event(i)),
    );
    assert.equal(first.eventIds.length, 5, 'burst 5');
    assert.equal(first.errors.length, 3);
    assert.ok(first.errors.every((e) => e.code === 'RATE_LIMITED'));
    assert.match(first.errors[0]!.message, /tenant "web" is over its quota \(10\/s, burst 5\); retry after 100 ms/);
    clock.advance(100);
    assert.equal(send(WEB_KEY, [event(10), event(11)]).eventIds.length, 1, 'one token per 100 ms at 10/s');
    clock.advance(1000);
    assert.equal(
      send(
        WEB_KEY,
        Array.from({ length: 8 }, (_, i) => event(20 + i)),
      ).eventIds.length,
      5,
      'refilled to burst, not beyond',
    );
    await h.drain(1000);
    assert.equal(out.events.length, 11);
    assert.ok(out.events.every((e) => e.metadata[TENANT] === 'web'));
  });

  test('refused before reading: a key alone, then the tokens the last message needed, capped at the burst (FakeClock)', async () => {
    const clock = new FakeClock();
    const { h, send, out, registry } = build([{ ...web, rate: 10, burst: 5 }], clock);
    const ask = (apiKey: string | undefined) => h.refuseBeforeReading({ source: 'web', apiKey, unary: true });
    assert.equal(ask(undefined)?.errors[0]?.code, 'UNAUTHENTICATED');
    assert.equal(ask('not-a-key')?.errors[0]?.code, 'UNAUTHENTICATED');
    assert.equal(ask(WEB_KEY), undefined, 'a full bucket, no message yet: read it');
    assert.equal(send(WEB_KEY, [event(0), event(1), event(2)]).eventIds.length, 3);
    // Two tokens left, the last message carried three: the next is refused unread.
    const early = ask(WEB_KEY);
    assert.equal(early?.eventIds.length, 0);
    assert.equal(early?.errors.length, 1);
    assert.equal(early?.errors[0]?.code, 'RATE_LIMITED');
    assert.match(early!.errors[0]!.message, /^tenant "web" is over its quota \(10\/s, burst 5\); retry after 100 ms$/);
    clock.advance(100);
    assert.equal(ask(WEB_KEY), undefined, 'three tokens again: read it');
    // A message larger than the burst needs the burst, not its size: it is never refused for good.
    assert.equal(
      send(
        WEB_KEY,
        Array.from({ length: 8 }, (_, i) => event(10 + i)),
      ).eventIds.length,
      3,
    );
    assert.equal(ask(WEB_KEY)?.errors[0]?.code, 'RATE_LIMITED');
    clock.advance(499);
    assert.equal(ask(WEB_KEY)?.errors[0]?.code, 'RATE_LIMITED', '4.99 tokens of the 5 needed');
    clock.advance(1);
    assert.equal(ask(WEB_KEY), undefined, 'the burst is back');
    const text = await registry.metrics();
    assert.match(
      text,
      /polku_tenant_quota_refusals_total\{tenant="web"\} 8\n/,
      '5 events refused in the batch + 3 messages refused unread',
    );
    assert.match(text, /polku_tenant_requests_total\{tenant="_other"\} 2\n/);
    await h.drain(1000);
    assert.equal(out.events.length, 6, 'nothing refused before reading reached the emitter');
  });

  test("a tenant's buffer share is its own: BUFFER_FULL for it, room for the other", () => {
    const other: TenantSpec = { name: 'api', apiKeys: [hashKey('api-key')], sources: ['*'], rate: 1000, burst: 1000, bufferShare: 0.5 };
    const clock = new FakeClock();
    const out = new InMemoryEmitter({ name: 'mem' });
    // A batch size over the buffer and no flush timer firing (FakeTimers): events stay buffered.
    const h = hub()
      .emitter(out)
      .buffer({ capacity: 20 })
      .delivery({ batchSize: 1000, flushIntervalMs: 60_000 })
      .tenants([{ ...web, rate: 1000, burst: 1000, bufferShare: 0.25 }, other])
      .build({ clock, timers: new FakeTimers(clock) });
    const send = (key: string, n: number, from: number) =>
      h.submit({
        source: 'web',
        cluster: '',
        apiKey: key,
        payload: { kind: 'events', events: Array.from({ length: n }, (_, i) => event(from + i)) },
      }) as Ack;
    const a = send(WEB_KEY, 8, 0);
    assert.equal(a.eventIds.length, 5, '0.25 × 20');
    assert.equal(a.errors.length, 3);
    assert.match(a.errors[0]!.message, /tenant "web" buffer share full \(5\/5 events/);
    assert.equal(send('api-key', 12, 100).eventIds.length, 10, '0.5 × 20, untouched by web');
    assert.equal(h.stats().buffer.events, 15);
  });
});

describe('durable mode with tenants', () => {
  test("keys, sources and the bucket hold; the log stores each event with the tenant's polku.tenant", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-tenants-durable-'));
    try {
      const out = new InMemoryEmitter({ name: 'mem' });
      const h = hub().emitter(out).durable({ dir, fsync: false }).tenants([web]).build();
      await h.start();
      const refused = await h.submit({ source: 'web', cluster: '', payload: { kind: 'events', events: [event(0)] } });
      assert.equal(refused.errors[0]!.code, 'UNAUTHENTICATED');
      const ack = await h.submit({
        source: 'web',
        cluster: '',
        apiKey: WEB_KEY,
        payload: {
          kind: 'events',
          events: [
            event(1, { metadata: { [TENANT]: 'x' } }),
            event(2, { source: 'db' }),
            ...Array.from({ length: 6 }, (_, i) => event(10 + i)),
          ],
        },
      });
      assert.equal(ack.eventIds.length, 5, 'burst 5: e1 and four more');
      assert.deepEqual(
        ack.errors.map((e) => e.code),
        ['PERMISSION_DENIED', 'RATE_LIMITED', 'RATE_LIMITED'],
      );
      const stored = await h.admin!.store.read(1, 10);
      assert.deepEqual(
        stored.map((r) => r.event.id),
        ack.eventIds,
      );
      assert.ok(stored.every((r) => r.event.metadata[TENANT] === 'web'));
      await h.drain(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('FairQueue (deficit round robin)', () => {
  const share = (name: string, lane: number, quantum: number): TenantShare => ({
    name,
    lane,
    quantum,
    events: 0,
    bytes: 0,
    maxEvents: 1e9,
    maxBytes: 1e9,
  });
  let seq = 0;
  const item = (s: TenantShare | undefined, id: string): BufferedEvent => ({
    event: event(0, { id }),
    bytes: 1,
    seq: seq++,
    refs: 1,
    released: false,
    share: s,
    atMs: 0,
  });

  test('a backlog of one tenant does not hold back another: each round takes its quantum from each', () => {
    const noisy = share('noisy', 1, 1);
    const quiet = share('quiet', 2, 1);
    const q = new FairQueue();
    for (let i = 0; i < 100; i++) q.push(item(noisy, `n${i}`));
    q.push(item(quiet, 'q0'));
    q.push(item(quiet, 'q1'));
    const batch = q.take(6).map((b) => b.event.id);
    assert.deepEqual(batch, ['n0', 'q0', 'n1', 'q1', 'n2', 'n3']);
    assert.equal(q.length, 96);
  });

  test('quanta weight the take (by rate); order within a tenant is kept', () => {
    const big = share('big', 1, 3);
    const small = share('small', 2, 1);
    const q = new FairQueue();
    for (let i = 0; i < 10; i++) q.push(item(big, `b${i}`));
    for (let i = 0; i < 10; i++) q.push(item(small, `s${i}`));
    assert.deepEqual(
      q.take(8).map((b) => b.event.id),
      ['b0', 'b1', 'b2', 's0', 'b3', 'b4', 'b5', 's1'],
    );
    // A take ending mid-turn continues the same lane first next time.
    assert.deepEqual(
      q.take(2).map((b) => b.event.id),
      ['b6', 'b7'],
    );
  });

  test('without tenants it is a FIFO; drop_oldest takes the oldest over all lanes', () => {
    const q = new FairQueue();
    for (let i = 0; i < 5; i++) q.push(item(undefined, `u${i}`));
    assert.deepEqual(
      q.take(3).map((b) => b.event.id),
      ['u0', 'u1', 'u2'],
    );
    const t = share('t', 1, 1);
    q.push(item(t, 't0'));
    assert.equal(q.peekOldest()!.event.id, 'u3');
    q.shiftOldest();
    q.shiftOldest();
    assert.equal(q.peekOldest()!.event.id, 't0');
    assert.equal(q.length, 1);
  });
});
