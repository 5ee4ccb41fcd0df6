import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata, Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import { Event } from '../../src/gen/polku/v1/event.js';
import {
  EmitterPluginClient,
  IngestorPluginClient,
  PluginRegistryService,
  PluginType,
  type EmitResponse,
  type IngestResponse,
  type PluginInfo,
  type RegisterRequest,
} from '../../src/gen/polku/v1/plugin.js';

type TestContext = { after(fn: () => unknown): void };
type Callback<T> = (err: ServiceError | null, res: T) => void;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLES = 'examples/plugins/typescript';

/** Runs an example as its own process, the way its README says; stopped after the test. */
function runExample(t: TestContext, file: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', `${EXAMPLES}/${file}`, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  /** Resolves with the first match of `pattern` in stdout, already printed or yet to come. */
  const output = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = stdout.match(pattern);
        if (m) {
          child.stdout.off('data', check);
          resolve(m);
        }
      };
      child.stdout.on('data', check);
      void exited.then((code) => reject(new Error(`${file} exited (${code}) before printing ${pattern}; stderr: ${stderr}`)));
      check();
    });
  return { child, exited, output };
}

function unary<T>(invoke: (md: Metadata, opts: { deadline: Date }, cb: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    invoke(new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** A registry that only records Register and Unregister, enough to see an example self-register. */
async function recordingRegistry(t: TestContext) {
  const registered: RegisterRequest[] = [];
  const authorization: string[] = [];
  const unregistered: string[] = [];
  const server = new Server();
  server.addService(PluginRegistryService, {
    register: (call: { request: RegisterRequest; metadata: Metadata }, cb: Callback<unknown>) => {
      registered.push(call.request);
      authorization.push(String(call.metadata.get('authorization')[0]));
      cb(null, { accepted: true, message: '', pluginId: 'csv-1' });
    },
    heartbeat: (_: unknown, cb: Callback<unknown>) => cb(null, { acknowledged: true }),
    unregister: (call: { request: { pluginId: string } }, cb: Callback<unknown>) => {
      unregistered.push(call.request.pluginId);
      cb(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.after(() => server.forceShutdown());
  return { port, registered, authorization, unregistered };
}

async function until(condition: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const giveUp = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

test('slack-like-emitter: answers Info as emitter "slack", prints delivered events, reports the bad one, exits 0 on SIGTERM', async (t) => {
  const ex = runExample(t, 'slack-like-emitter.ts', ['--port', '0', '--host', '127.0.0.1']);
  const [, address] = await ex.output(/slack-like emitter listening on (\S+)/);
  const client = new EmitterPluginClient(address!, credentials.createInsecure());
  t.after(() => client.close());

  const info = await unary<PluginInfo>((md, o, cb) => client.info({}, md, o, cb));
  assert.deepEqual([info.name, info.type, info.emitterName], ['slack-like-emitter', PluginType.PLUGIN_TYPE_EMITTER, 'slack']);

  const events = [
    Event.fromPartial({ id: 'e1', eventType: 'deploy.failed', source: 'ci', severity: 4 }),
    Event.fromPartial({ id: 'e2', eventType: '', source: 'ci' }),
  ];
  const res = await unary<EmitResponse>((md, o, cb) => client.emit({ events }, md, o, cb));
  assert.equal(res.successCount, 1n);
  assert.deepEqual(res.errors, [{ eventId: 'e2', message: 'event_type is empty: nothing to post', retryable: false }]);
  await ex.output(/:x: \*deploy\.failed\* from `ci`/);

  ex.child.kill('SIGTERM');
  assert.equal(await ex.exited, 0);
});

test('csv-ingestor: answers Info for source "csv", turns rows into events with columns as metadata, and self-registers with --register', async (t) => {
  const registry = await recordingRegistry(t);
  const ex = runExample(t, 'csv-ingestor.ts', ['--port', '0', '--host', '127.0.0.1', '--register', `127.0.0.1:${registry.port}`], {
    POLKU_PLUGIN_TOKEN: 'tok',
  });
  const [, address] = await ex.output(/csv ingestor listening on (\S+)/);
  const client = new IngestorPluginClient(address!, credentials.createInsecure());
  t.after(() => client.close());

  const info = await unary<PluginInfo>((md, o, cb) => client.info({}, md, o, cb));
  assert.deepEqual([info.name, info.type, info.sources], ['csv-ingestor', PluginType.PLUGIN_TYPE_INGESTOR, ['csv']]);

  const csv = 'user,action\nada,"signup, via web"\nbob\ngrace,login\n';
  const res = await unary<IngestResponse>((md, o, cb) =>
    client.ingest({ source: 'csv', cluster: '', format: 'csv', data: new TextEncoder().encode(csv) }, md, o, cb),
  );
  assert.deepEqual(
    res.events.map((e) => [e.eventType, e.source, e.metadata]),
    [
      ['csv.row', 'csv', { user: 'ada', action: 'signup, via web' }],
      ['csv.row', 'csv', { user: 'grace', action: 'login' }],
    ],
  );
  assert.deepEqual(res.errors, [{ message: 'row has 1 columns, header has 2', details: 'bob', offset: BigInt(csv.indexOf('bob')) }]);

  await until(() => registry.registered.length === 1, 'the example to register');
  assert.equal(registry.registered[0]!.address, address);
  assert.deepEqual(registry.registered[0]!.info?.sources, ['csv']);
  assert.deepEqual(registry.authorization, ['Bearer tok'], 'the token comes from POLKU_PLUGIN_TOKEN');

  ex.child.kill('SIGTERM');
  assert.equal(await ex.exited, 0);
  assert.deepEqual(registry.unregistered, ['csv-1']);
});
