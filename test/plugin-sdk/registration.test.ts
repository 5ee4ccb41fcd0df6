import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { credentials, Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import {
  EmitterPluginClient,
  PluginRegistryService,
  PluginType,
  type HeartbeatResponse,
  type PluginInfo,
  type PluginRegistryServer,
  type RegisterRequest,
  type RegisterResponse,
} from '../../src/gen/polku/v1/plugin.js';
import { serveEmitter, type PluginLogger, type RegisterOptions } from '../../src/plugin/index.js';
import { FakeTimers } from '../../src/testing/index.js';

type TestContext = { after(fn: () => unknown): void };
type Method = 'register' | 'heartbeat' | 'unregister';
interface RecordedCall {
  method: Method;
  request: Record<string, unknown>;
  authorization: string | undefined;
  /** The `polku-plugin-id` metadata: the previous id a re-registering plugin proves ownership with. */
  previousId: string | undefined;
}

/** A gateway's PluginRegistry as a real grpc-js server: records every call; answers as told. */
class FakeRegistry {
  readonly calls: RecordedCall[] = [];
  /** What Heartbeat answers: acknowledged true/false, or a gRPC error status. */
  heartbeat: { acknowledged: boolean } | { code: status } = { acknowledged: true };
  /** What Register answers besides the id. */
  register: { accepted: boolean; message: string } = { accepted: true, message: '' };
  private ids = 0;
  private readonly server = new Server();

  private constructor() {
    const record =
      <Req, Res>(method: Method, answer: (req: Req) => Res | { code: status }) =>
      (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
        const auth = call.metadata.get('authorization')[0];
        const previousId = call.metadata.get('polku-plugin-id')[0]?.toString();
        this.calls.push({ method, request: call.request as Record<string, unknown>, authorization: auth?.toString(), previousId });
        const res = answer(call.request);
        if (res && typeof res === 'object' && 'code' in res) cb({ code: res.code, details: 'told to fail' });
        else cb(null, res as Res);
      };
    const impl: PluginRegistryServer = {
      register: record('register', (): RegisterResponse => ({
        ...this.register,
        pluginId: this.register.accepted ? `plugin-${++this.ids}` : '',
      })),
      heartbeat: record('heartbeat', (): HeartbeatResponse | { code: status } => this.heartbeat),
      unregister: record('unregister', () => ({})),
    };
    this.server.addService(PluginRegistryService, impl);
  }

  static async start(t: TestContext, port = 0): Promise<FakeRegistry & { port: number }> {
    const registry = new FakeRegistry();
    const bound = await new Promise<number>((resolve, reject) =>
      registry.server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    t.after(() => registry.server.forceShutdown());
    return Object.assign(registry, { port: bound });
  }

  of(method: Method): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }
}

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as { port: number };
  await new Promise((r) => probe.close(r));
  return port;
}

/** Resolves once `condition` holds, checking once per event-loop turn (no fixed sleeps). */
async function until(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const giveUp = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A logger that keeps what it is told. */
function recordingLogger() {
  const lines: Array<{ level: string; message: string; details: Record<string, unknown> }> = [];
  const at = (level: string) => (message: string, details?: unknown) =>
    void lines.push({ level, message, details: (details ?? {}) as Record<string, unknown> });
  const logger: PluginLogger = { info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

/** An emitter plugin registering with `gateway` on fake timers. */
async function plugin(t: TestContext, register: Partial<RegisterOptions> & { gateway: string }) {
  const timers = new FakeTimers();
  const { logger, lines } = recordingLogger();
  const server = await serveEmitter({
    name: 'slack-emitter',
    emitterName: 'slack',
    version: '1.0.0',
    host: '127.0.0.1',
    emit: () => {},
    register,
    timers,
    logger,
  });
  t.after(() => server.close());
  return { server, timers, lines };
}

test('registers once listening: its info, the advertised address, and the token as Bearer authorization', async (t) => {
  const registry = await FakeRegistry.start(t);
  const p = await plugin(t, { gateway: `127.0.0.1:${registry.port}`, token: 's3cret' });

  await until(() => p.server.pluginId === 'plugin-1', 'registration');
  const [call] = registry.of('register');
  assert.equal(call!.authorization, 'Bearer s3cret');
  const request = call!.request as unknown as RegisterRequest;
  assert.equal(request.address, `127.0.0.1:${p.server.port}`);
  assert.deepEqual(request.info, {
    name: 'slack-emitter',
    version: '1.0.0',
    type: PluginType.PLUGIN_TYPE_EMITTER,
    description: '',
    sources: [],
    emitterName: 'slack',
    capabilities: [],
  });
});

test('registers the advertise address when given one, and sends no authorization without a token', async (t) => {
  const registry = await FakeRegistry.start(t);
  const p = await plugin(t, { gateway: `http://127.0.0.1:${registry.port}`, advertise: 'slack-plugin.polku.svc:9001' });
  await until(() => p.server.pluginId !== undefined, 'registration');
  assert.equal((registry.of('register')[0]!.request as unknown as RegisterRequest).address, 'slack-plugin.polku.svc:9001');
  assert.equal(registry.of('register')[0]!.authorization, undefined);
});

test('heartbeats with its plugin id every heartbeatIntervalMs, with the token', async (t) => {
  const registry = await FakeRegistry.start(t);
  const p = await plugin(t, { gateway: `127.0.0.1:${registry.port}`, token: 't', heartbeatIntervalMs: 1_000 });
  await until(() => p.server.pluginId !== undefined && p.timers.pending === 1, 'registration and a heartbeat timer');

  p.timers.advance(999);
  assert.equal(p.timers.pending, 1, 'no heartbeat before the interval');
  p.timers.advance(1);
  await until(() => registry.of('heartbeat').length === 1 && p.timers.pending === 1, 'the first heartbeat');
  p.timers.advance(1_000);
  await until(() => registry.of('heartbeat').length === 2, 'the second heartbeat');

  for (const hb of registry.of('heartbeat')) assert.deepEqual([hb.request['pluginId'], hb.authorization], ['plugin-1', 'Bearer t']);
  assert.equal(registry.of('register').length, 1);
});

test('uses the heartbeat interval the gateway sends in RegisterResponse.message', async (t) => {
  const registry = await FakeRegistry.start(t);
  registry.register = { accepted: true, message: 'welcome; heartbeat_interval_ms=250' };
  const p = await plugin(t, { gateway: `127.0.0.1:${registry.port}` });
  await until(() => p.server.pluginId !== undefined && p.timers.pending === 1, 'registration');

  p.timers.advance(249);
  assert.equal(p.timers.pending, 1, 'not yet');
  p.timers.advance(1);
  await until(() => registry.of('heartbeat').length === 1, 'a heartbeat at 250 ms');
});

for (const [label, answer] of [
  ['acknowledged:false', { acknowledged: false }],
  ['NOT_FOUND', { code: status.NOT_FOUND }],
] as const) {
  test(`registers again when Heartbeat answers ${label} (the lease is gone), then beats with the new id`, async (t) => {
    const registry = await FakeRegistry.start(t);
    const p = await plugin(t, { gateway: `127.0.0.1:${registry.port}`, heartbeatIntervalMs: 1_000 });
    await until(() => p.server.pluginId === 'plugin-1' && p.timers.pending === 1, 'registration');

    registry.heartbeat = answer;
    p.timers.advance(1_000);
    await until(() => p.server.pluginId === 'plugin-2' && p.timers.pending === 1, 'the second registration');
    assert.equal(registry.of('register').length, 2);
    assert.deepEqual(
      registry.of('register').map((r) => r.previousId),
      [undefined, 'plugin-1'],
      'the second Register carries the previous id as polku-plugin-id (proof of owning the name)',
    );

    registry.heartbeat = { acknowledged: true };
    p.timers.advance(1_000);
    await until(() => registry.of('heartbeat').length === 2, 'a heartbeat after re-registering');
    assert.equal(registry.of('heartbeat')[1]!.request['pluginId'], 'plugin-2');
  });
}

test('a Heartbeat failing UNAVAILABLE keeps beating at the interval without registering again', async (t) => {
  const registry = await FakeRegistry.start(t);
  const p = await plugin(t, { gateway: `127.0.0.1:${registry.port}`, heartbeatIntervalMs: 1_000 });
  await until(() => p.server.pluginId !== undefined && p.timers.pending === 1, 'registration');

  registry.heartbeat = { code: status.UNAVAILABLE };
  p.timers.advance(1_000);
  await until(() => registry.of('heartbeat').length === 1 && p.timers.pending === 1, 'a failed heartbeat and the next one scheduled');
  registry.heartbeat = { acknowledged: true };
  p.timers.advance(1_000);
  await until(() => registry.of('heartbeat').length === 2, 'the next heartbeat');
  assert.equal(registry.of('register').length, 1);
  assert.equal(p.server.pluginId, 'plugin-1');
  assert.ok(p.lines.some((l) => l.level === 'warn' && l.message === 'heartbeat failed'));
});

test('retries with doubling backoff while the registry is unreachable, keeps serving, and registers once it starts', async (t) => {
  const port = await freePort();
  const p = await plugin(t, { gateway: `127.0.0.1:${port}`, retryInitialMs: 100, retryMaxMs: 400 });
  const retries = () => p.lines.filter((l) => l.message === 'registration failed; retrying').map((l) => l.details['retryInMs']);

  for (const [n, wait] of [
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 400],
  ] as const) {
    await until(() => retries().length === n && p.timers.pending === 1, `failed attempt ${n}`);
    assert.equal(retries()[n - 1], wait);
    p.timers.advance(wait - 1);
    assert.equal(p.timers.pending, 1, `attempt ${n + 1} waits the full ${wait} ms`);
    if (n < 4) p.timers.advance(1);
  }
  assert.equal(p.server.pluginId, undefined);
  const client = new EmitterPluginClient(`127.0.0.1:${p.server.port}`, credentials.createInsecure());
  t.after(() => client.close());
  const info = await new Promise<PluginInfo>((resolve, reject) =>
    client.info({}, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (err, res) => (err ? reject(err) : resolve(res))),
  );
  assert.equal(info.emitterName, 'slack', 'the plugin serves while it cannot register');

  const registry = await FakeRegistry.start(t, port);
  p.timers.advance(1);
  await until(() => p.server.pluginId === 'plugin-1', 'registration once the registry is up');
  assert.equal(registry.of('register').length, 1);
});

test('a refused registration (accepted:false) is retried, and logged with the gateway reason', async (t) => {
  const registry = await FakeRegistry.start(t);
  registry.register = { accepted: false, message: 'address not allowed' };
  const p = await plugin(t, { gateway: `127.0.0.1:${registry.port}`, retryInitialMs: 50 });
  await until(() => registry.of('register').length === 1 && p.timers.pending === 1, 'the refused attempt');
  assert.match(String(p.lines.find((l) => l.level === 'warn')?.details['error']), /address not allowed/);

  registry.register = { accepted: true, message: '' };
  p.timers.advance(50);
  await until(() => p.server.pluginId === 'plugin-1', 'the accepted attempt');
});

test('close() unregisters with the plugin id and the token, and leaves no timer behind', async (t) => {
  const registry = await FakeRegistry.start(t);
  const p = await plugin(t, { gateway: `127.0.0.1:${registry.port}`, token: 't' });
  await until(() => p.server.pluginId !== undefined && p.timers.pending === 1, 'registration');

  await p.server.close();
  assert.deepEqual(
    registry.of('unregister').map((c) => [c.request['pluginId'], c.authorization]),
    [['plugin-1', 'Bearer t']],
  );
  assert.equal(p.server.pluginId, undefined);
  assert.equal(p.timers.pending, 0);
});

test('close() while the registry is unreachable stops retrying and resolves without an Unregister', async (t) => {
  const p = await plugin(t, { gateway: `127.0.0.1:${await freePort()}` });
  await until(() => p.timers.pending === 1, 'a retry scheduled');
  await p.server.close();
  assert.equal(p.timers.pending, 0);
  assert.ok(!p.lines.some((l) => l.message.startsWith('unregister')));
});
