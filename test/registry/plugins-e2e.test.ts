// End to end with real processes: `polku serve` with a short heartbeat; the TypeScript SDK example
// (slack-like-emitter.ts --register) and the Python example (emitter.py --register) register,
// heartbeat and receive events; SIGKILL takes them out of the table within the lease plus a
// little; a restart brings events back. `polku plugins` shows the table.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { PluginRow } from '../../src/registry/plugin-view.js';
import { until } from '../fixtures/plugin-process.js';
import { killAll, ROOT, startProcess, type LineProcess } from '../helpers/line-process.js';
import { protoOnlyClient } from '../helpers/gateway-harness.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';
import { sendRouted } from './helpers.js';

const HEARTBEAT_MS = 200;
const MISSED_BEATS = 3;
const LEASE_MS = HEARTBEAT_MS * MISSED_BEATS;
/** Process scheduling, the last beat's timing and the poll: well under a second here. */
const SLACK_MS = 1_500;
const TOKEN = 'e2e-registry-token';
const dir = mkdtempSync(join(tmpdir(), 'polku-registry-e2e-'));

describe('registered plugins as real processes', () => {
  let gateway: Awaited<ReturnType<typeof servePolku>>;
  let client: ReturnType<typeof protoOnlyClient>;
  const rows = async (): Promise<PluginRow[]> =>
    ((await (await fetch(`http://127.0.0.1:${gateway.metricsPort}/admin/plugins`)).json()) as { plugins: PluginRow[] }).plugins;
  const row = async (name: string) => (await rows()).find((r) => r.name === name);

  const typescriptPlugin = (): LineProcess =>
    startProcess(
      process.execPath,
      [
        '--import',
        'tsx',
        'examples/plugins/typescript/slack-like-emitter.ts',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--register',
        `127.0.0.1:${gateway.grpcPort}`,
      ],
      {
        POLKU_PLUGIN_TOKEN: TOKEN,
      },
    );

  before(async () => {
    gateway = await servePolku([], {
      POLKU_REGISTRY_TOKEN: TOKEN,
      POLKU_REGISTRY_HEARTBEAT_MS: String(HEARTBEAT_MS),
      POLKU_REGISTRY_MISSED_BEATS: String(MISSED_BEATS),
      POLKU_REGISTRY_HEALTH_INTERVAL_MS: String(HEARTBEAT_MS),
    });
    client = protoOnlyClient(gateway.grpcPort);
  });
  after(async () => {
    client?.close();
    await killAll();
    if (gateway && gateway.child.exitCode === null) {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
  });

  test('the TypeScript SDK example registers with the token, beats at the period it is told, and receives its events', async () => {
    const plugin = typescriptPlugin();
    await plugin.line(/registered with gateway/);
    await until(async () => (await row('slack-like-emitter'))?.state === 'routing', 'the plugin in the table');
    const r = (await row('slack-like-emitter'))!;
    assert.deepEqual([r.type, r.origin, r.routeName, r.health], ['emitter', 'registered', 'slack', 'healthy']);
    const firstBeat = r.lastHeartbeat;
    await until(async () => (await row('slack-like-emitter'))?.lastHeartbeat !== firstBeat, 'a heartbeat renewing the lease');
    assert.ok((await row('slack-like-emitter'))!.leaseLeftMs! <= LEASE_MS);
    const ack = await sendRouted(client, 'e2e-1', ['slack']);
    assert.deepEqual(ack.event_ids, ['e2e-1']);
    await plugin.line(/\*test\.event\* from `test`/);
    await plugin.kill();
    // SIGTERM: the SDK unregisters on its way out. The next test must not find this entry.
    await until(async () => (await row('slack-like-emitter')) === undefined, 'the plugin unregistered');
  });

  test('SIGKILL: the plugin leaves the table within its lease plus a little; events for it are UNROUTABLE; a restart brings them back', async () => {
    const plugin = typescriptPlugin();
    await plugin.line(/registered with gateway/); // this process's registration, not an earlier one's
    await until(async () => (await row('slack-like-emitter'))?.state === 'routing', 'the plugin in the table');
    const killedAt = Date.now();
    await plugin.kill('SIGKILL');
    await until(async () => (await row('slack-like-emitter')) === undefined, 'the plugin out of the table', LEASE_MS + SLACK_MS);
    const gone = Date.now() - killedAt;
    assert.ok(gone <= LEASE_MS + SLACK_MS, `left after ${gone} ms`);
    assert.ok(
      gateway.stderr.some((l) => l.includes('"msg":"plugin missed its heartbeats; removed from the table"')),
      'logged',
    );
    const refused = await sendRouted(client, 'e2e-while-down', ['slack']);
    assert.equal(refused.errors[0]?.code, 'UNROUTABLE');

    const again = typescriptPlugin();
    await again.line(/registered with gateway/);
    await until(async () => (await row('slack-like-emitter'))?.state === 'routing', 'the restarted plugin in the table');
    assert.deepEqual((await sendRouted(client, 'e2e-2', ['slack'])).event_ids, ['e2e-2']);
    await again.line(/\*test\.event\* from `test`/);
  });

  test('polku plugins prints the table (and --json), static and registered rows alike', async () => {
    const admin = `127.0.0.1:${gateway.metricsPort}`;
    const table = runPolku(['plugins', '--admin', admin]);
    assert.deepEqual(await table.exited, { code: 0, signal: null });
    assert.match(table.stdout[0]!, /^NAME\s+TYPE\s+ORIGIN\s+ADDRESS/);
    assert.ok(
      table.stdout.some((l) => /^stdout\s+emitter\s+static\s/.test(l)),
      table.stdout.join('\n'),
    );
    assert.ok(
      table.stdout.some((l) =>
        /^slack-like-emitter\s+emitter\s+registered\s+127\.0\.0\.1:\d+\s+slack\s+routing\s+healthy\s+\d+\.\ds ago\s+\d+\.\ds$/.test(l),
      ),
      table.stdout.join('\n'),
    );
    const json = runPolku(['plugins', '--json', '--admin', admin]);
    assert.deepEqual(await json.exited, { code: 0, signal: null });
    const parsed = JSON.parse(json.stdout.join('\n')) as { plugins: PluginRow[] };
    // Static: the default pipeline's five ingestors (tapio, elava, portti, json, passthrough) and stdout.
    assert.deepEqual(parsed.plugins.map((p) => `${p.origin}:${p.name}`).sort(), [
      'registered:slack-like-emitter',
      'static:elava',
      'static:json',
      'static:passthrough',
      'static:portti',
      'static:stdout',
      'static:tapio',
    ]);
  });

  test('the Python example (examples/plugins/python/emitter.py) registers, receives events, and leaves when killed', async () => {
    await promisify(execFile)(join(ROOT, 'scripts/install-plugin-toolchains.sh'), ['python'], { cwd: ROOT, timeout: 600_000 });
    const gen = join(ROOT, 'examples/plugins/python/gen/polku/v1/plugin_pb2_grpc.py');
    if (!existsSync(gen)) await promisify(execFile)(join(ROOT, 'examples/plugins/python/gen.sh'), { cwd: ROOT, timeout: 600_000 });
    // A private copy, so another test regenerating the stubs at the same moment cannot disturb it.
    const copy = mkdtempSync(join(dir, 'python-'));
    await until(() => {
      cpSync(join(ROOT, 'examples/plugins/python/emitter.py'), join(copy, 'emitter.py'));
      cpSync(join(ROOT, 'examples/plugins/python/gen'), join(copy, 'gen'), { recursive: true });
      return existsSync(join(copy, 'gen/polku/v1/plugin_pb2_grpc.py')) && existsSync(join(copy, 'gen/polku/v1/event_pb2.py'));
    }, 'a complete copy of the stubs');
    const out = join(dir, 'python-events.jsonl');
    const py = startProcess(
      '/usr/bin/python3',
      [
        join(copy, 'emitter.py'),
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--out',
        out,
        '--emitter-name',
        'py-e2e',
        '--register',
        `127.0.0.1:${gateway.grpcPort}`,
      ],
      {
        POLKU_PLUGIN_TOKEN: TOKEN,
      },
    );
    await py.line(/registered with/);
    await until(async () => (await row('python-jsonl-emitter'))?.state === 'routing', 'the Python plugin in the table');
    assert.equal((await row('python-jsonl-emitter'))!.routeName, 'py-e2e');
    assert.deepEqual((await sendRouted(client, 'py-1', ['py-e2e'])).event_ids, ['py-1']);
    await until(() => existsSync(out) && readFileSync(out, 'utf8').includes('"id": "py-1"'), "the event in the Python plugin's file");
    await py.kill('SIGKILL');
    await until(async () => (await row('python-jsonl-emitter')) === undefined, 'the Python plugin out of the table', LEASE_MS + SLACK_MS);
  });
});
