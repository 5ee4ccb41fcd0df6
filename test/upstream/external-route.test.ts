// route_to "external:<name>", upstream POLKU's way to name a plugin emitter, with a real plugin
// process (the TypeScript SDK example) registered with a real `polku serve`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { protoOnlyClient, until } from '../helpers/gateway-harness.js';
import { killAll, startProcess } from '../helpers/line-process.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';

const TOKEN = 'external-route-token';

describe('route_to external:<name>', () => {
  let gw: PolkuProcess & { grpcPort: number; metricsPort: number };
  let client: ReturnType<typeof protoOnlyClient>;
  const send = (id: string, eventType: string, routeTo: string[]) =>
    new Promise<{ event_ids: string[]; errors: Array<{ code: string; message: string }> }>((resolve, reject) =>
      client['SendEvent'](
        { source: 'upstream-agent', event: { id, event_type: eventType, route_to: routeTo } },
        (err: Error | null, ack: never) => (err ? reject(err) : resolve(ack)),
      ),
    );

  before(async () => {
    gw = await servePolku([], { POLKU_REGISTRY_TOKEN: TOKEN });
    client = protoOnlyClient(gw.grpcPort);
  });
  after(async () => {
    client?.close();
    await killAll();
  });

  test('reaches the plugin registered under that route name, and only it', async () => {
    const plugin = startProcess(
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
        `127.0.0.1:${gw.grpcPort}`,
      ],
      { POLKU_PLUGIN_TOKEN: TOKEN },
    );
    await plugin.line(/registered with gateway/);
    await until(async () => {
      const body = (await (await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/plugins`)).json()) as {
        plugins: Array<{ name: string; state: string }>;
      };
      return body.plugins.some((p) => p.name === 'slack-like-emitter' && p.state === 'routing');
    }, 'the plugin routing');

    const ack = await send('ext-1', 'upstream.external', ['external:slack']);
    assert.deepEqual(ack.event_ids, ['ext-1']);
    assert.deepEqual(ack.errors, []);
    await plugin.line(/\*upstream\.external\* from `upstream-agent`/);
    assert.equal(
      gw.stdout.some((l) => l.includes('"id":"ext-1"')),
      false,
      'not printed by stdout, the default emitter',
    );

    const both = await send('ext-2', 'upstream.both', ['slack', 'external:slack']);
    assert.deepEqual(both.event_ids, ['ext-2']);
    await plugin.line(/\*upstream\.both\*/);
    assert.equal(plugin.stdout.filter((l) => l.includes('*upstream.both*')).length, 1, 'one plugin, named twice: delivered once');

    const nowhere = await send('ext-3', 'upstream.nowhere', ['external:nope']);
    assert.deepEqual(nowhere.event_ids, []);
    assert.equal(nowhere.errors[0]?.code, 'UNROUTABLE');
    assert.match(nowhere.errors[0]!.message, /external:nope/);
    await plugin.kill('SIGTERM');
  });
});
