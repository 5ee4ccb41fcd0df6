import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Registry } from 'prom-client';
import { systemClock, systemTimers, type Clock, type Timers } from '../../src/clock.js';
import type { ComponentContext } from '../../src/component-context.js';
import type { EmitResult, Emitter } from '../../src/emit/emitter.js';
import { eventToJson } from '../../src/emit/event-json.js';
import { ackToEmitResult, GrpcEmitter } from '../../src/emit/grpc.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { Event, Severity } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import { filter } from '../../src/middleware/filter.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';
import { GatedEmitter } from '../helpers/gated-emitter.js';
import { AckStream, events as wireEvents, sample, scrape, startGateway, until } from '../helpers/gateway-harness.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';

const FIXTURE = 'test/fixtures/grpc-downstream.config.ts';
const processes: PolkuProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'polku-grpc-emitter-'));

after(async () => {
  for (const p of processes) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});

/** A downstream POLKU process recording what it receives in `sink` (see the fixture). */
async function downstream(sink: string, env: Record<string, string> = {}) {
  const p = await servePolku(['--config', FIXTURE], { POLKU_TEST_SINK: sink, ...env });
  processes.push(p);
  return p;
}

/** Ids the downstream recorded, in arrival order. */
function received(sink: string): string[] {
  return existsSync(sink)
    ? readFileSync(sink, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).id)
    : [];
}

function context(timers: Timers = systemTimers, clock: Clock = systemClock): ComponentContext & { registry: Registry } {
  return { registry: createRegistry(), logger: silentLogger(), clock, timers };
}

function batch(tag: string, n: number, type = () => 'test.event'): Event[] {
  return Array.from({ length: n }, (_, i) =>
    Event.fromPartial({ id: `${tag}-${i}`, eventType: type(), payload: Buffer.from(`${tag} ${i}`) }),
  );
}

/** Polls an async condition (no fixed sleeps). */
async function waitFor(condition: () => boolean | Promise<boolean>, what: string, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const series = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('GrpcEmitter against real gateways', () => {
  test('forwards a batch end to end: ids, payload, metadata and exact timestamps arrive in another process', async () => {
    const sink = join(dir, 'forward.jsonl');
    const p = await downstream(sink);
    const emitter = new GrpcEmitter({ endpoints: [`http://127.0.0.1:${p.grpcPort}`], source: 'edge-1' });
    const ctx = context();
    emitter.init(ctx);
    try {
      const sent = [
        Event.fromPartial({
          id: 'fwd-1',
          timestampUnixNs: 1_700_000_000_123_456_789n,
          source: 'agent-a',
          eventType: 'user.signup',
          metadata: { region: 'eu-north-1', tenant: 'äö' },
          payload: Uint8Array.from([0, 255, 7, 128]),
          severity: Severity.SEVERITY_WARNING,
        }),
        Event.fromPartial({
          id: 'fwd-2',
          timestampUnixNs: 9_223_372_036_854_775_807n,
          source: 'agent-b',
          eventType: 'user.login',
          payload: Buffer.from('{"ok":true}'),
        }),
      ];
      assert.deepEqual(await emitter.emit(sent), { status: 'success' });
      // The fixture records before it acks, so the file is complete once emit resolved.
      const got = readFileSync(sink, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.deepEqual(got, sent.map(eventToJson));
      assert.equal(BigInt(got[1]!.timestamp_unix_ns), 9_223_372_036_854_775_807n);
      const endpoint = `http://127.0.0.1:${p.grpcPort}`;
      const text = await ctx.registry.metrics();
      assert.equal(sample(text, series('polku_grpc_emitter_batches_total', { emitter: 'grpc', endpoint, outcome: 'success' })), 1);
      assert.equal(sample(text, series('polku_grpc_emitter_endpoint_up', { emitter: 'grpc', endpoint })), 1);
      assert.equal(sample(text, 'polku_grpc_emitter_ack_seconds_count{emitter="grpc"}'), 1);
    } finally {
      await emitter.shutdown();
    }
  });

  test('Ack errors become failed events: FILTERED final, BUFFER_FULL retryable with a pause, repeated ids each get an index', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(
      hub()
        .middleware(filter((e) => e.eventType !== 'noise'))
        .emitter(gate)
        .buffer({ capacity: 3, overflow: 'reject' }),
    );
    const emitter = new GrpcEmitter({ endpoints: [`127.0.0.1:${gw.grpcPort}`] });
    try {
      const spec: Array<[string, string]> = [
        ['k1', 'keep'],
        ['dup', 'noise'],
        ['k2', 'keep'],
        ['dup', 'noise'],
        ['k3', 'keep'],
        ['k4', 'keep'],
      ];
      const result = await emitter.emit(spec.map(([id, eventType]) => Event.fromPartial({ id, eventType })));
      assert.deepEqual(result, {
        status: 'partial',
        failures: [
          { index: 1, retryable: false, error: 'FILTERED: dropped by filter' },
          { index: 3, retryable: false, error: 'FILTERED: dropped by filter' },
          { index: 5, retryable: true, error: 'BUFFER_FULL: buffer full (3/3 events)' },
        ],
        retryAfterMs: 200, // the receiver's buffer is 3/3 full
      });
    } finally {
      await emitter.shutdown();
      gate.open();
      await gw.stop();
    }
  });

  test('ackToEmitResult: batch-level errors cover unnamed events, unknown codes are final, unnamed events retryable', () => {
    const evs = batch('x', 4);
    const ack = (eventIds: string[], errors: Array<[string, string]>, size = 0n) => ({
      eventIds,
      errors: errors.map(([eventId, code]) => ({ eventId, code, message: 'm' })),
      bufferSize: size,
      bufferCapacity: 10n,
      middlewareStats: undefined,
    });
    assert.deepEqual(
      ackToEmitResult(
        evs,
        ack(
          ['x-0'],
          [
            ['x-1', 'FROM_THE_FUTURE'],
            ['', 'SHUTTING_DOWN'],
          ],
        ),
      ),
      {
        status: 'partial',
        failures: [
          { index: 1, retryable: false, error: 'FROM_THE_FUTURE: m' },
          { index: 2, retryable: true, error: 'SHUTTING_DOWN: m' },
          { index: 3, retryable: true, error: 'SHUTTING_DOWN: m' },
        ],
      },
    );
    const unnamed = ackToEmitResult(evs, ack(['x-0', 'x-2'], []));
    assert.deepEqual(unnamed.status === 'partial' && unnamed.failures.map((f) => [f.index, f.retryable]), [
      [1, true],
      [3, true],
    ]);
    assert.deepEqual(ackToEmitResult(evs, ack([], [['', 'INVALID_BATCH']])), { status: 'failed', error: 'INVALID_BATCH: m' });
    const full = ackToEmitResult(
      evs,
      ack(
        [],
        evs.map((e) => [e.id, 'BUFFER_FULL']),
        9n,
      ),
    );
    assert.deepEqual(full, { status: 'retryable', error: 'BUFFER_FULL: m', retryAfterMs: 200 });
    const idless = [Event.fromPartial({ id: 'a' }), Event.fromPartial({ id: '' })];
    assert.deepEqual(ackToEmitResult(idless, ack(['a', '01HRECEIVERGAVEIT'], [])), { status: 'success' });
  });

  test('two endpoints: once one reports a full buffer, batches go to the less loaded one', async () => {
    const held = new GatedEmitter('held');
    const full = await startGateway(hub().emitter(held).buffer({ capacity: 10, overflow: 'reject' }));
    const memory = new InMemoryEmitter();
    const free = await startGateway(hub().emitter(memory).buffer({ capacity: 1_000 }));
    const [a, b] = [`127.0.0.1:${full.grpcPort}`, `127.0.0.1:${free.grpcPort}`];
    const emitter = new GrpcEmitter({ endpoints: [a, b] });
    try {
      // Nothing known yet: round robin starts with the first endpoint, whose Ack says 10/10.
      assert.deepEqual(await emitter.emit(batch('fill', 10)), { status: 'success' });
      assert.equal(full.hub.stats().buffer.events, 10);
      assert.match(emitter.health().message!, new RegExp(`${a} up \\(buffer 10/10, `));
      for (let i = 0; i < 4; i++) assert.deepEqual(await emitter.emit(batch(`b${i}`, 5)), { status: 'success' });
      await memory.waitForCount(20);
      assert.deepEqual(
        memory.events.map((e) => e.id),
        [0, 1, 2, 3].flatMap((i) => batch(`b${i}`, 5).map((e) => e.id)),
      );
      assert.equal((await full.hub.health()).eventsProcessed, 10n, 'the full gateway got nothing more');
      assert.match(emitter.health().message!, new RegExp(`${b} up \\(buffer \\d+/1000, `));
    } finally {
      await emitter.shutdown();
      held.open();
      await Promise.all([full.stop(), free.stop()]);
    }
  });

  test('fail-over: a batch whose endpoint refuses the connection goes to the next one within the same emit', async () => {
    const memory = new InMemoryEmitter();
    const gw = await startGateway(hub().emitter(memory));
    const [dead, live] = [`127.0.0.1:${await deadPort()}`, `127.0.0.1:${gw.grpcPort}`];
    const emitter = new GrpcEmitter({ endpoints: [dead, live] });
    const ctx = context(new FakeTimers()); // the dead endpoint's reconnect never fires here
    emitter.init(ctx);
    try {
      assert.deepEqual(await emitter.emit(batch('fo', 3)), { status: 'success' });
      await memory.waitForCount(3);
      assert.deepEqual(
        memory.events.map((e) => e.id),
        ['fo-0', 'fo-1', 'fo-2'],
      );
      const health = emitter.health();
      assert.equal(health.healthy, true);
      assert.match(health.message!, new RegExp(`${dead} down: stream failed: UNAVAILABLE`));
      const text = await ctx.registry.metrics();
      const batches = (endpoint: string, outcome: string) =>
        sample(text, series('polku_grpc_emitter_batches_total', { emitter: 'grpc', endpoint, outcome }));
      assert.equal(batches(dead, 'stream_error'), 1);
      assert.equal(batches(live, 'success'), 1);
      assert.equal(sample(text, series('polku_grpc_emitter_endpoint_up', { emitter: 'grpc', endpoint: dead })), 0);
    } finally {
      await emitter.shutdown();
      await gw.stop();
    }
  });

  test('no Ack in time: retryable "timed out", the stream is reset, and a late Ack is never matched to a later batch', async () => {
    const gate = new GatedEmitter('held');
    const gw = await startGateway(hub().emitter(gate).buffer({ capacity: 2, overflow: 'block' }));
    const clock = new FakeClock();
    const timers = new FakeTimers(clock);
    const emitter = new GrpcEmitter({ endpoints: [`127.0.0.1:${gw.grpcPort}`], timeoutMs: 1_000, reconnect: { initialMs: 50, maxMs: 50 } });
    emitter.init(context(timers, clock));
    try {
      const blocked = emitter.emit(batch('slow', 3)); // the third event waits for room: no Ack
      await until(() => gw.hub.stats().buffer.blockedWriters === 1, 'the batch to block downstream');
      timers.advance(999);
      assert.equal(emitter.health().healthy, true);
      timers.advance(1);
      const result = await blocked;
      assert.equal(result.status, 'retryable');
      assert.match(result.status === 'retryable' ? result.error : '', /^timed out: no Ack from .* within 1000 ms$/);
      assert.match(emitter.health().message!, /down: no Ack within 1000 ms; stream reset/);
      gate.open(); // the downstream now answers the old batch, on the stream that was reset
      await until(() => gw.hub.stats().buffer.events === 0, 'the downstream to drain');
      await waitFor(() => (timers.advance(50), emitter.health().healthy), 'the endpoint to come back');
      assert.deepEqual(await emitter.emit(batch('next', 2)), { status: 'success' });
    } finally {
      await emitter.shutdown();
      await gw.stop();
    }
  });

  test('SIGKILL mid-stream: retryable and unhealthy while down; a new process on the same port is reconnected and receives the batch', async () => {
    const [sink1, sink2] = [join(dir, 'kill-1.jsonl'), join(dir, 'kill-2.jsonl')];
    // The first downstream never delivers, so its 4-event buffer fills and a batch waits for room.
    const p1 = await downstream(sink1, { POLKU_TEST_HOLD: 'forever', POLKU_BUFFER_CAPACITY: '4', POLKU_OVERFLOW_POLICY: 'block' });
    const address = `127.0.0.1:${p1.grpcPort}`;
    const clock = new FakeClock();
    const timers = new FakeTimers(clock);
    const emitter = new GrpcEmitter({ endpoints: [address], reconnect: { initialMs: 50, maxMs: 50 } });
    const ctx = context(timers, clock);
    emitter.init(ctx);
    try {
      assert.deepEqual(await emitter.emit(batch('a', 3)), { status: 'success' });
      const inFlight = emitter.emit(batch('b', 3));
      await waitFor(async () => sample(await scrape(p1.metricsPort), 'polku_buffer_blocked_writers') === 1, 'batch b to block');
      p1.child.kill('SIGKILL');
      await p1.exited;
      const lost = await inFlight;
      assert.equal(lost.status, 'retryable', 'a batch without an Ack is never reported delivered');
      assert.match(lost.status === 'retryable' ? lost.error : '', /stream/);
      const health = emitter.health();
      assert.equal(health.healthy, false);
      assert.match(health.message!, new RegExp(`^${address} down: `));
      const up = series('polku_grpc_emitter_endpoint_up', { emitter: 'grpc', endpoint: address });
      assert.equal(sample(await ctx.registry.metrics(), up), 0);
      const whileDown = await emitter.emit(batch('b', 3));
      assert.deepEqual(whileDown.status === 'retryable' && [whileDown.retryAfterMs, /no grpc endpoint available/.test(whileDown.error)], [
        50,
        true,
      ]);

      await downstream(sink2, { POLKU_GRPC_ADDR: address });
      await waitFor(() => (timers.advance(50), emitter.health().healthy), 'the emitter to reconnect');
      assert.equal(sample(await ctx.registry.metrics(), up), 1);
      assert.deepEqual(await emitter.emit(batch('b', 3)), { status: 'success' });
      assert.deepEqual(received(sink2), ['b-0', 'b-1', 'b-2']);
    } finally {
      await emitter.shutdown();
    }
  });

  test("through a hub with the queue's retry: every accepted event reaches downstream at least once across kill and restart, none reported delivered while it was dead", async () => {
    const [sink1, sink2] = [join(dir, 'hub-1.jsonl'), join(dir, 'hub-2.jsonl')];
    const p1 = await downstream(sink1);
    const grpc = new GrpcEmitter({ name: 'forward', endpoints: [`127.0.0.1:${p1.grpcPort}`], reconnect: { initialMs: 20, maxMs: 100 } });
    let dead = false;
    const resultsWhileDead: EmitResult[] = [];
    const recorder: Emitter = {
      name: 'forward',
      init: (ctx) => grpc.init(ctx),
      health: () => grpc.health(),
      shutdown: () => grpc.shutdown(),
      emit: async (evs) => {
        const r = await grpc.emit(evs);
        if (dead) resultsWhileDead.push(r);
        return r;
      },
    };
    const upstream = await startGateway(hub().emitter(recorder).delivery({ batchSize: 10, flushIntervalMs: 1, maxAttempts: 10_000 }));
    const agent = new AckStream(upstream.client);
    const accepted: string[] = [];
    const send = async (tag: string) => {
      for (let b = 0; b < 3; b++) {
        const ack = await agent.send({ source: 'agent', events: { events: wireEvents(10, (i) => ({ id: `${tag}-${b}-${i}` })) } });
        accepted.push(...ack.event_ids);
      }
    };
    try {
      await send('before');
      await until(() => upstream.hub.stats().buffer.events === 0, 'the first events to be forwarded');
      // Nothing in flight (the queue is idle); the stream to the downstream is open.
      p1.child.kill('SIGKILL');
      await p1.exited;
      dead = true;
      await send('dead');
      await waitFor(() => resultsWhileDead.length >= 3, 'emits while the downstream is dead');
      dead = false;
      await downstream(sink2, { POLKU_GRPC_ADDR: `127.0.0.1:${p1.grpcPort}` });
      await send('after');
      await waitFor(() => upstream.hub.stats().buffer.events === 0, 'everything to be forwarded after the restart');
      assert.deepEqual(
        resultsWhileDead.filter((r) => r.status !== 'retryable'),
        [],
        'nothing reported delivered while dead',
      );
      assert.equal(accepted.length, 90);
      const got = new Set([...received(sink1), ...received(sink2)]);
      assert.deepEqual([...got].sort(), [...accepted].sort());
      await agent.end();
    } finally {
      await upstream.stop();
    }
  });
});
