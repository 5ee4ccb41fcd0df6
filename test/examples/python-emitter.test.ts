// The Python example emitter plugin (examples/plugins/python/emitter.py), run the way its README
// says: apt's python3-grpcio under /usr/bin/python3, stubs from gen.sh. First the plugin alone
// over grpc-js (Info, Health, Emit, self-registration against a stand-in registry), then behind a
// real `polku serve` process whose pipeline (test/fixtures/examples-python.config.ts) sends every
// event to it, and which the plugin registers with (--register) as a second emitter.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { credentials, type Metadata, Server, ServerCredentials } from '@grpc/grpc-js';
import {
  EmitterPluginClient,
  PluginRegistryService,
  PluginType,
  type EmitRequest,
  type EmitResponse,
  type PluginHealthResponse,
  type PluginInfo,
} from '../../src/gen/polku/v1/plugin.js';
import { AckStream, events, protoOnlyClient, sample, scrape } from '../helpers/gateway-harness.js';
import { until } from '../fixtures/plugin-process.js';
import { killAll, startProcess, track } from '../helpers/line-process.js';
import { servePolku } from '../helpers/polku-process.js';
import { runSetupScript as script } from '../helpers/setup-script.js';
import { jsonLines, LISTENING, unary } from './example-helpers.js';

const PYTHON = '/usr/bin/python3';
const EMITTER = 'examples/plugins/python/emitter.py';
const dir = mkdtempSync(join(tmpdir(), 'polku-example-python-'));

/** Starts the emitter on a free loopback port writing to `out`; resolves with its address. */
async function startEmitter(out: string, extra: string[] = [], env: Record<string, string> = {}) {
  const p = startProcess(PYTHON, [EMITTER, '--host', '127.0.0.1', '--port', '0', '--out', out, ...extra], env);
  const m = await p.line(LISTENING);
  return Object.assign(p, { address: `127.0.0.1:${m[1]}`, port: Number(m[1]) });
}

/** `polku serve --config <config>` on free loopback ports, killed by `after` if a test fails. */
const serve = async (config: string, env: Record<string, string>) => track(await servePolku(['--config', config], env));

before(
  async () => {
    // Installs apt's python3-grpcio and python3-grpc-tools when missing (a failure names them).
    await script('scripts/install-plugin-toolchains.sh', ['python']);
    await script('examples/plugins/python/gen.sh');
  },
  { timeout: 600_000 },
);

after(killAll);

describe('Python example emitter plugin, called directly', () => {
  let plugin: Awaited<ReturnType<typeof startEmitter>>;
  let client: EmitterPluginClient;
  const out = join(dir, 'direct.jsonl');

  before(async () => {
    plugin = await startEmitter(out, ['--emitter-name', 'py-out']);
    client = new EmitterPluginClient(plugin.address, credentials.createInsecure());
  });
  after(() => client.close());

  test('Info says PLUGIN_TYPE_EMITTER with its emitter_name; Health is healthy', async () => {
    const info = await unary<object, PluginInfo>((r, cb) => client.info(r, cb), {});
    assert.equal(info.type, PluginType.PLUGIN_TYPE_EMITTER);
    assert.equal(info.emitterName, 'py-out');
    assert.equal(info.name, 'python-jsonl-emitter');
    const health = await unary<object, PluginHealthResponse>((r, cb) => client.health(r, cb), {});
    assert.equal(health.healthy, true);
    assert.deepEqual(health.components, { output: true });
  });

  test('Emit writes one JSON line per event and reports fail=retryable/permanent with that retryable flag', async () => {
    const request: EmitRequest = {
      events: [
        {
          id: 'a',
          timestampUnixNs: 1_700_000_000_123_456_789n,
          source: 'web',
          eventType: 'user.signup',
          metadata: { plan: 'pro' },
          payload: Buffer.from('héllo'),
          routeTo: ['py-out'],
          severity: 2,
          outcome: 1,
        },
        {
          id: 'b',
          timestampUnixNs: 0n,
          source: '',
          eventType: 't',
          metadata: { fail: 'retryable' },
          payload: new Uint8Array(),
          routeTo: [],
          severity: 0,
          outcome: 0,
        },
        {
          id: 'c',
          timestampUnixNs: 0n,
          source: '',
          eventType: 't',
          metadata: { fail: 'permanent' },
          payload: new Uint8Array(),
          routeTo: [],
          severity: 0,
          outcome: 0,
        },
        {
          id: 'd',
          timestampUnixNs: 0n,
          source: '',
          eventType: 't',
          metadata: {},
          payload: Uint8Array.of(0xff, 0x00),
          routeTo: [],
          severity: 0,
          outcome: 0,
        },
      ],
    };
    const res = await unary<EmitRequest, EmitResponse>((r, cb) => client.emit(r, cb), request);
    assert.equal(res.successCount, 2n);
    assert.deepEqual(res.failedEventIds, ['b', 'c']);
    assert.deepEqual(
      res.errors.map((e) => [e.eventId, e.retryable]),
      [
        ['b', true],
        ['c', false],
      ],
    );
    assert.deepEqual(jsonLines(out), [
      {
        id: 'a',
        timestamp_unix_ns: '1700000000123456789',
        source: 'web',
        event_type: 'user.signup',
        metadata: { plan: 'pro' },
        payload: 'héllo',
        route_to: ['py-out'],
        severity: 'SEVERITY_INFO',
        outcome: 'OUTCOME_SUCCESS',
      },
      {
        id: 'd',
        timestamp_unix_ns: '0',
        source: '',
        event_type: 't',
        metadata: {},
        payload_base64: '/wA=',
        route_to: [],
        severity: 'SEVERITY_UNSPECIFIED',
        outcome: 'OUTCOME_UNSPECIFIED',
      },
    ]);
    // Each refusal is logged on stderr (which may reach us after the answer).
    await until(() => plugin.stderr.includes('emitter: event c not delivered (permanent)'), 'the log line for c');
    assert.ok(plugin.stderr.includes('emitter: event b not delivered (retryable)'));
  });

  test('self-registration: Register (info, address, token), Heartbeat at the period asked for, Register again when not acknowledged, Unregister on SIGTERM', async () => {
    const calls: Array<{ method: string; auth: unknown; request: any }> = [];
    let registrations = 0;
    let heartbeats = 0;
    const registry = new Server();
    const note = (method: string, call: { metadata: Metadata; request: unknown }) =>
      calls.push({ method, auth: call.metadata.get('authorization')[0], request: call.request });
    registry.addService(PluginRegistryService, {
      register: (call: any, cb: any) => {
        note('Register', call);
        cb(null, { accepted: true, message: 'heartbeat_interval_ms=20', pluginId: `p${++registrations}` });
      },
      // The second heartbeat is refused, as after a gateway restart.
      heartbeat: (call: any, cb: any) => {
        note('Heartbeat', call);
        cb(null, { acknowledged: ++heartbeats !== 2 });
      },
      unregister: (call: any, cb: any) => {
        note('Unregister', call);
        cb(null, {});
      },
    });
    const registryPort = await new Promise<number>((resolve, reject) =>
      registry.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    try {
      const p = await startEmitter(
        join(dir, 'registered.jsonl'),
        ['--emitter-name', 'reg-test', '--register', `127.0.0.1:${registryPort}`],
        {
          POLKU_PLUGIN_TOKEN: 's3cret',
        },
      );
      await until(() => calls.filter((c) => c.method === 'Heartbeat').length >= 3, 'three heartbeats');
      p.child.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
      const sequence = calls.map((c) => `${c.method}${c.request.pluginId ? ' ' + c.request.pluginId : ''}`);
      assert.deepEqual(sequence.slice(0, 5), ['Register', 'Heartbeat p1', 'Heartbeat p1', 'Register', 'Heartbeat p2']);
      assert.equal(sequence.at(-1), 'Unregister p2');
      assert.ok(calls.every((c) => c.auth === 'Bearer s3cret'));
      const first = calls[0]!.request;
      assert.equal(first.address, `127.0.0.1:${p.port}`);
      assert.equal(first.info.type, PluginType.PLUGIN_TYPE_EMITTER);
      assert.equal(first.info.emitterName, 'reg-test');
    } finally {
      registry.forceShutdown();
    }
  });
});

describe('Python example emitter plugin behind a real gateway process', () => {
  let plugin: Awaited<ReturnType<typeof startEmitter>>;
  let gateway: Awaited<ReturnType<typeof serve>>;
  let client: ReturnType<typeof protoOnlyClient>;
  const out = join(dir, 'gateway.jsonl');
  const MAX_ATTEMPTS = 3;
  const TOKEN = 'example-registry-token';

  before(async () => {
    plugin = await startEmitter(out, ['--emitter-name', 'py-out']);
    gateway = await serve('test/fixtures/examples-python.config.ts', {
      POLKU_TEST_PLUGIN_ADDR: plugin.address,
      POLKU_EMIT_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      POLKU_REGISTRY_TOKEN: TOKEN,
    });
    client = protoOnlyClient(gateway.grpcPort);
  });
  after(() => client.close());

  const dropped = async (reason: string) =>
    sample(await scrape(gateway.metricsPort), `polku_events_dropped_total{reason="${reason}"}`) ?? 0;

  test('events sent with StreamEvents arrive in the plugin’s output file: ids, payload text, metadata', async () => {
    const stream = new AckStream(client);
    const ids = Array.from({ length: 25 }, (_, i) => `gw-${i}`);
    const batch = events(25, (i) => ({ id: ids[i], source: 'agent-1', metadata: { n: String(i), team: 'core' } }));
    const ack = await stream.send({ source: 'agent-1', events: { events: batch } });
    assert.deepEqual(ack.errors, []);
    assert.deepEqual(ack.event_ids, ids);
    await until(() => jsonLines(out).length >= 25, 'the 25 events in the plugin’s output');
    await stream.end();
    const lines = jsonLines(out);
    assert.deepEqual(
      lines.map((l) => [l['id'], l['payload'], l['event_type'], l['metadata']]),
      ids.map((id, i) => [id, `payload ${i}`, 'test.event', { n: String(i), team: 'core' }]),
    );
    assert.ok(
      lines.every((l) => l['source'] === 'agent-1' && BigInt(l['timestamp_unix_ns']) > 0n),
      'the gateway stamped the receive time',
    );
  });

  test('fail=permanent is dropped (emit_failed), fail=retryable is sent POLKU_EMIT_MAX_ATTEMPTS times, the rest delivered once', async () => {
    const failedBefore = await dropped('emit_failed');
    const exhaustedBefore = await dropped('emit_retries_exhausted');
    const stream = new AckStream(client);
    const batch = [
      { id: 'fine-1', event_type: 'x', payload: Buffer.from('one') },
      { id: 'perm-1', event_type: 'x', metadata: { fail: 'permanent' } },
      { id: 'retry-1', event_type: 'x', metadata: { fail: 'retryable' } },
      { id: 'fine-2', event_type: 'x', payload: Buffer.from('two') },
    ];
    const ack = await stream.send({ source: 'agent-2', events: { events: batch } });
    assert.deepEqual(ack.event_ids, ['fine-1', 'perm-1', 'retry-1', 'fine-2'], 'the gateway accepts them all; delivery fails later');
    await stream.end();
    await until(async () => (await dropped('emit_retries_exhausted')) === exhaustedBefore + 1, 'retry-1 to run out of attempts');
    assert.equal(await dropped('emit_failed'), failedBefore + 1, 'perm-1 is dropped as emit_failed');
    const attempts = (id: string, mode: string) => plugin.stderr.filter((l) => l === `emitter: event ${id} not delivered (${mode})`).length;
    // The plugin logs each refusal on stderr, which may reach us after the gateway heard the answer.
    await until(() => attempts('retry-1', 'retryable') >= MAX_ATTEMPTS, 'the log line of every attempt');
    assert.equal(attempts('retry-1', 'retryable'), MAX_ATTEMPTS);
    assert.equal(attempts('perm-1', 'permanent'), 1, 'a permanent failure is not retried');
    const ids = jsonLines(out).map((l) => l['id']);
    assert.deepEqual(
      ids.filter((id) => !id.startsWith('gw-')),
      ['fine-1', 'fine-2'],
    );
  });

  test('--register: the plugin registers with the gateway (token), events routed to its emitter_name reach it, SIGTERM unregisters', async () => {
    const regOut = join(dir, 'registered-gateway.jsonl');
    const p = await startEmitter(regOut, ['--emitter-name', 'py-reg', '--register', `127.0.0.1:${gateway.grpcPort}`], {
      POLKU_PLUGIN_TOKEN: TOKEN,
    });
    await until(
      () => p.stderr.some((l) => l.startsWith(`emitter: registered with 127.0.0.1:${gateway.grpcPort} as `)),
      'the plugin to register',
    );
    const stream = new AckStream(client);
    const ack = await stream.send({
      source: 'agent-3',
      events: { events: [{ id: 'reg-1', event_type: 'x', payload: Buffer.from('to py-reg'), route_to: ['py-reg'] }] },
    });
    await stream.end();
    assert.deepEqual(ack.errors, []);
    await until(() => jsonLines(regOut).length >= 1, 'reg-1 at the registered plugin');
    assert.deepEqual(
      jsonLines(regOut).map((l) => [l['id'], l['payload'], l['route_to']]),
      [['reg-1', 'to py-reg', ['py-reg']]],
    );
    assert.ok(!jsonLines(out).some((l) => l['id'] === 'reg-1'), 'not sent to the static py-out');
    p.child.kill('SIGTERM');
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    assert.ok(p.stderr.includes(`emitter: unregistered from 127.0.0.1:${gateway.grpcPort}`));
  });

  test('SIGTERM to the gateway: it drains, calls the plugin’s Shutdown, and both exit 0', async () => {
    gateway.child.kill('SIGTERM');
    assert.deepEqual(await gateway.exited, { code: 0, signal: null });
    assert.deepEqual(await plugin.exited, { code: 0, signal: null });
    assert.ok(plugin.stderr.includes('emitter: gateway asked to shut down'));
  });
});
