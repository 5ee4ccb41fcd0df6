import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { Event, Severity } from '../../src/gen/polku/v1/event.js';
import {
  EmitterPluginClient,
  PluginType,
  type EmitResponse,
  type PluginHealthResponse,
  type PluginInfo,
  type ShutdownResponse,
} from '../../src/gen/polku/v1/plugin.js';
import { serveEmitter, toEmitResponse, type EmitterPluginOptions } from '../../src/plugin/index.js';
import { FakeTimers } from '../../src/testing/index.js';

type TestContext = { after(fn: () => unknown): void };
type Callback<T> = (err: ServiceError | null, res: T) => void;

/** A unary call as a promise. The deadline only guards against a broken server hanging the run. */
function unary<T>(invoke: (md: Metadata, opts: { deadline: Date }, cb: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    invoke(new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** The generated client's calls as promises. */
function connect(t: TestContext, port: number) {
  const client = new EmitterPluginClient(`127.0.0.1:${port}`, credentials.createInsecure());
  t.after(() => client.close());
  return {
    info: () => unary<PluginInfo>((md, o, cb) => client.info({}, md, o, cb)),
    health: () => unary<PluginHealthResponse>((md, o, cb) => client.health({}, md, o, cb)),
    emit: (events: Event[]) => unary<EmitResponse>((md, o, cb) => client.emit({ events }, md, o, cb)),
    shutdown: () => unary<ShutdownResponse>((md, o, cb) => client.shutdown({}, md, o, cb)),
  };
}

/** An emitter on a free port plus a real client; both cleaned up after the test. */
async function start(t: TestContext, options: Partial<EmitterPluginOptions> = {}) {
  const server = await serveEmitter({ name: 'test-emitter', host: '127.0.0.1', emit: () => {}, ...options });
  t.after(() => server.close());
  return { server, ...connect(t, server.port) };
}

/** Resolves once `condition` holds, checking once per event-loop turn (no fixed sleeps). */
async function until(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const giveUp = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const batch = (...ids: string[]) =>
  ids.map((id, i) =>
    Event.fromPartial({ id, eventType: 'user.signup', source: 'web', timestampUnixNs: 1_700_000_000_123_456_789n + BigInt(i) }),
  );

test('Info reports an EMITTER whose emitter_name defaults to the plugin name', async (t) => {
  const plain = await start(t, { name: 'audit-emitter', version: '1.2.3', description: 'audit log', capabilities: ['batch'] });
  assert.deepEqual(await plain.info(), {
    name: 'audit-emitter',
    version: '1.2.3',
    type: PluginType.PLUGIN_TYPE_EMITTER,
    description: 'audit log',
    sources: [],
    emitterName: 'audit-emitter',
    capabilities: ['batch'],
  });
  const named = await start(t, { name: 'slack-emitter', emitterName: 'slack' });
  assert.equal((await named.info()).emitterName, 'slack');
});

test('Health is healthy by default, relays the author health(), and reports a throwing health() as unhealthy', async (t) => {
  const byDefault = await start(t);
  assert.deepEqual(await byDefault.health(), { healthy: true, message: 'ok', components: {} });

  let answer: unknown = { healthy: false, message: 'slack down', components: { slack: false, cache: true } };
  const custom = await start(t, { health: async () => answer as boolean });
  assert.deepEqual(await custom.health(), { healthy: false, message: 'slack down', components: { slack: false, cache: true } });
  answer = true;
  assert.equal((await custom.health()).healthy, true);

  const throwing = await start(t, {
    health: () => {
      throw new Error('probe exploded');
    },
  });
  const h = await throwing.health();
  assert.equal(h.healthy, false);
  assert.match(h.message, /probe exploded/);
});

test('Emit hands the author the events intact (bigint timestamps too) and counts them all delivered when emit returns nothing', async (t) => {
  const received: Event[][] = [];
  const p = await start(t, { emit: (events) => void received.push(events) });
  const sent = batch('a', 'b', 'c');
  sent[0]!.metadata = { team: 'growth' };
  sent[0]!.payload = Buffer.from([1, 2, 3]); // grpc-js decodes bytes as Buffer
  sent[0]!.severity = Severity.SEVERITY_WARNING;
  sent[0]!.routeTo = ['slack'];

  const res = await p.emit(sent);

  assert.deepEqual(res, { successCount: 3n, failedEventIds: [], errors: [] });
  assert.equal(received.length, 1);
  assert.deepEqual(received[0], sent);
  assert.equal(received[0]![0]!.timestampUnixNs, 1_700_000_000_123_456_789n);
  assert.equal(typeof received[0]![0]!.timestampUnixNs, 'bigint');
});

test('Emit maps per-event failures to failed_event_ids and errors, retryable by default and false when said', async (t) => {
  const p = await start(t, {
    emit: async () => ({
      failed: [
        { id: 'b', error: 'HTTP 503' },
        { id: 'c', error: 'HTTP 400 bad channel', retryable: false },
        { id: 'b', error: 'listed twice: the first error wins' },
      ],
    }),
  });
  const res = await p.emit(batch('a', 'b', 'c', 'd'));
  assert.equal(res.successCount, 2n);
  assert.deepEqual(res.failedEventIds, ['b', 'c']);
  assert.deepEqual(res.errors, [
    { eventId: 'b', message: 'HTTP 503', retryable: true },
    { eventId: 'c', message: 'HTTP 400 bad channel', retryable: false },
  ]);
});

test('toEmitResponse does not count an id outside the batch against success_count but still reports it', () => {
  const res = toEmitResponse(batch('a', 'b'), { failed: [{ id: 'zzz', error: 'unknown', retryable: false }] });
  assert.deepEqual(res, { successCount: 2n, failedEventIds: ['zzz'], errors: [{ eventId: 'zzz', message: 'unknown', retryable: false }] });
  assert.deepEqual(toEmitResponse(batch('a'), { failed: [] }), { successCount: 1n, failedEventIds: [], errors: [] });
});

test('a throwing emit fails every event of the batch as retryable with its message, and the plugin keeps serving', async (t) => {
  let calls = 0;
  const p = await start(t, {
    emit: () => {
      calls++;
      if (calls === 1) throw new Error('slack webhook timed out');
    },
  });
  const failed = await p.emit(batch('a', 'b'));
  assert.equal(failed.successCount, 0n);
  assert.deepEqual(failed.failedEventIds, ['a', 'b']);
  assert.deepEqual(failed.errors, [
    { eventId: 'a', message: 'slack webhook timed out', retryable: true },
    { eventId: 'b', message: 'slack webhook timed out', retryable: true },
  ]);
  assert.deepEqual(await p.emit(batch('c')), { successCount: 1n, failedEventIds: [], errors: [] });
});

test('the Shutdown RPC runs onShutdown, answers success, then stops the server', async (t) => {
  let shutdowns = 0;
  const p = await start(t, { onShutdown: () => void shutdowns++ });

  assert.deepEqual(await p.shutdown(), { success: true, message: 'shutting down' });
  assert.equal(shutdowns, 1);
  await p.server.closed;

  const fresh = connect(t, p.server.port);
  await assert.rejects(fresh.info(), (err: ServiceError) => err.code === status.UNAVAILABLE);
  await p.server.close(); // a later close() is a no-op
  assert.equal(shutdowns, 1, 'onShutdown ran once');
});

test('the Shutdown RPC answers success:false with the reason when onShutdown throws, and still stops', async (t) => {
  const p = await start(t, {
    onShutdown: () => {
      throw new Error('flush failed');
    },
  });
  const res = await p.shutdown();
  assert.equal(res.success, false);
  assert.match(res.message, /flush failed/);
  await p.server.closed;
});

test('close() while an Emit is in flight stops taking new calls, lets the Emit finish, then runs onShutdown', async (t) => {
  const order: string[] = [];
  let entered = false;
  let release = (): void => {};
  const gate = new Promise<void>((r) => (release = r));
  const p = await start(t, {
    emit: async () => {
      entered = true;
      await gate;
      order.push('emit finished');
    },
    onShutdown: () => void order.push('onShutdown'),
  });

  const inFlight = p.emit(batch('a', 'b'));
  await until(() => entered, 'the emit to start');
  let closeDone = false;
  const closing = p.server.close().then(() => (closeDone = true));

  // New connections are refused while the old call is still running.
  const fresh = connect(t, p.server.port);
  await assert.rejects(fresh.info(), (err: ServiceError) => err.code === status.UNAVAILABLE);
  assert.equal(closeDone, false, 'close waits for the in-flight Emit');

  release();
  assert.deepEqual(await inFlight, { successCount: 2n, failedEventIds: [], errors: [] });
  await closing;
  assert.deepEqual(order, ['emit finished', 'onShutdown']);
});

test('close() cuts off a call still running at shutdownTimeoutMs and resolves', async (t) => {
  const timers = new FakeTimers();
  let entered = false;
  const p = await start(t, {
    timers,
    shutdownTimeoutMs: 3_000,
    emit: () => {
      entered = true;
      return new Promise<void>(() => {}); // never finishes
    },
  });
  const stuck = p.emit(batch('a'));
  await until(() => entered, 'the emit to start');
  let closeDone = false;
  const closing = p.server.close().then(() => (closeDone = true));
  await until(() => timers.pending === 1, 'the shutdown deadline to be set');

  timers.advance(2_999);
  await new Promise((r) => setImmediate(r));
  assert.equal(closeDone, false, 'still waiting before the deadline');
  timers.advance(1);
  await closing;
  await assert.rejects(stuck, (err: ServiceError) => err.code !== status.OK);
});

test('serveEmitter refuses options without a name or an emit function', async () => {
  await assert.rejects(serveEmitter({ name: '', emit: () => {} }), /non-empty name/);
  await assert.rejects(serveEmitter({ name: 'x' } as EmitterPluginOptions), /emit\(events\)/);
  await assert.rejects(serveEmitter({ name: 'x', emit: () => {}, port: 70_000 }), /port/);
});
