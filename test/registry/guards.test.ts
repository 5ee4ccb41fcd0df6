// The registry's guards: token, address allowlist, Register rate and table size. Each refusal has
// its own gRPC status, and none of them dials the plugin.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { PluginType } from '../../src/gen/polku/v1/plugin.js';
import {
  codeOf,
  connectionCounter,
  detailsOf,
  emitterPlugin,
  metricValue,
  registryClient,
  startTestGateway,
  type TestEmitterPlugin,
  type TestGateway,
} from './helpers.js';

const EMITTER = PluginType.PLUGIN_TYPE_EMITTER;
const open: Array<{ stop(): Promise<void> } | { close(): unknown }> = [];
after(async () => {
  for (const o of open.reverse()) await ('stop' in o ? o.stop() : o.close());
});

async function gateway(options: Parameters<typeof startTestGateway>[0]): Promise<TestGateway> {
  const gw = await startTestGateway(options);
  open.push(gw);
  return gw;
}
async function plugin(name: string): Promise<TestEmitterPlugin> {
  const p = await emitterPlugin(name);
  open.push({ stop: () => p.server.close() });
  return p;
}
async function counter() {
  const c = await connectionCounter();
  open.push({ stop: c.close });
  return c;
}

describe('registration token (POLKU_REGISTRY_TOKEN)', () => {
  test('Register, Heartbeat and Unregister without the token, or with a wrong one, are UNAUTHENTICATED and dial nothing', async () => {
    const gw = await gateway({ token: 's3cret' });
    const c = await counter();
    const address = `127.0.0.1:${c.port}`;
    for (const client of [registryClient(gw.grpcPort), registryClient(gw.grpcPort, 'wrong')]) {
      open.push(client);
      assert.equal(await codeOf(client.register({ name: 'anon', type: EMITTER }, address)), 'UNAUTHENTICATED');
      assert.equal(await codeOf(client.heartbeat('any')), 'UNAUTHENTICATED');
      assert.equal(await codeOf(client.unregister('any')), 'UNAUTHENTICATED');
    }
    assert.match(await detailsOf(registryClient(gw.grpcPort).register({ name: 'anon', type: EMITTER }, address)), /authorization: Bearer/);
    assert.equal(c.connections(), 0);
    assert.equal(await metricValue(gw.registry, 'polku_registry_requests_total', { method: 'Register', code: 'UNAUTHENTICATED' }), 3);
  });

  test('with the right token the plugin registers, beats and leaves', async () => {
    const gw = await gateway({ token: 's3cret' });
    const p = await plugin('trusted');
    const client = registryClient(gw.grpcPort, 's3cret');
    open.push(client);
    const { pluginId } = await client.register({ name: 'trusted', type: EMITTER }, p.address);
    assert.deepEqual(await client.heartbeat(pluginId), { acknowledged: true });
    assert.equal(await codeOf(client.unregister(pluginId)), 'OK');
  });
});

describe('address allowlist (POLKU_REGISTRY_ALLOWLIST)', () => {
  test('an address outside the allowlist is PERMISSION_DENIED before dialling', async () => {
    const gw = await gateway({ allowlist: ['10.0.0.0/8'] });
    const c = await counter();
    const client = registryClient(gw.grpcPort);
    open.push(client);
    const call = client.register({ name: 'outsider', type: EMITTER }, `127.0.0.1:${c.port}`);
    assert.equal(await codeOf(call), 'PERMISSION_DENIED');
    assert.match(
      await detailsOf(client.register({ name: 'outsider', type: EMITTER }, `127.0.0.1:${c.port}`)),
      /^the address is not allowed \(POLKU_REGISTRY_ALLOWLIST\)$/,
    );
    assert.ok(
      gw.logs.some((l) => /127\.0\.0\.1 is outside the allowed ranges/.test(String(l['reason']))),
      'the details are logged',
    );
    assert.equal(c.connections(), 0);
  });

  test('a host name is resolved and refused if ANY of its addresses is outside; nothing is dialled', async () => {
    const resolver = async (host: string) => (host === 'mixed.example' ? ['127.0.0.1', '203.0.113.9'] : []);
    const gw = await gateway({ resolver });
    const c = await counter();
    const client = registryClient(gw.grpcPort);
    open.push(client);
    assert.match(
      await detailsOf(client.register({ name: 'mixed', type: EMITTER }, `mixed.example:${c.port}`)),
      /^the address is not allowed/,
    );
    assert.ok(
      gw.logs.some((l) => /resolves to 203\.0\.113\.9, outside/.test(String(l['reason']))),
      'the details are logged',
    );
    assert.equal(await codeOf(client.register({ name: 'ghost', type: EMITTER }, `ghost.example:${c.port}`)), 'UNAVAILABLE');
    assert.equal(c.connections(), 0);
  });

  test('a host name whose addresses are all allowed is dialled at the address that was checked', async () => {
    const p = await plugin('named');
    const gw = await gateway({ resolver: async (host) => (host === 'named.plugins.internal' ? ['127.0.0.1'] : []) });
    const client = registryClient(gw.grpcPort);
    open.push(client);
    await client.register({ name: 'named', type: EMITTER }, `named.plugins.internal:${p.server.port}`);
    const row = (await gw.plugins.rows()).find((r) => r.name === 'named')!;
    assert.equal(row.address, `named.plugins.internal:${p.server.port}`);
    assert.equal(row.target, `127.0.0.1:${p.server.port}`, 'pinned to the checked address: a later DNS answer cannot steer it');
  });
});

describe('flood limits', () => {
  test('Register calls beyond the token bucket are RESOURCE_EXHAUSTED without dialling, until it refills', async () => {
    const gw = await gateway({ registerBurst: 3, registerRatePerSecond: 1 });
    const c = await counter();
    const client = registryClient(gw.grpcPort);
    open.push(client);
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push(await codeOf(client.register({ name: `flood-${i}`, type: EMITTER }, `127.0.0.1:${c.port}`)));
    assert.deepEqual(codes, ['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED']);
    const dialled = c.connections();
    assert.ok(dialled >= 3, 'the first three were dialled (and found mute)');
    assert.match(
      await detailsOf(client.register({ name: 'flood-x', type: EMITTER }, `127.0.0.1:${c.port}`)),
      /too many registrations; try again in \d+ ms/,
    );
    assert.equal(c.connections(), dialled, 'nothing dialled for the refused ones');
    gw.clock.advance(1_000);
    assert.equal(
      await codeOf(client.register({ name: 'flood-5', type: EMITTER }, `127.0.0.1:${c.port}`)),
      'UNAVAILABLE',
      'one token refilled',
    );
    assert.equal(await metricValue(gw.registry, 'polku_registry_requests_total', { method: 'Register', code: 'RESOURCE_EXHAUSTED' }), 3);
  });

  test('a full table (POLKU_REGISTRY_MAX_PLUGINS) refuses new names RESOURCE_EXHAUSTED; known ones still re-register', async () => {
    const gw = await gateway({ maxPlugins: 2, registerBurst: 100 });
    const [a, b, extra] = [await plugin('a'), await plugin('b'), await plugin('c')];
    const client = registryClient(gw.grpcPort);
    open.push(client);
    const first = await client.register({ name: 'a', type: EMITTER }, a.address);
    await client.register({ name: 'b', type: EMITTER }, b.address);
    assert.equal(await codeOf(client.register({ name: 'c', type: EMITTER }, extra.address)), 'RESOURCE_EXHAUSTED');
    assert.match(await detailsOf(client.register({ name: 'c', type: EMITTER }, extra.address)), /table is full \(2 plugins/);
    assert.equal((await client.register({ name: 'a', type: EMITTER }, a.address, first.pluginId)).pluginId, first.pluginId);
    assert.equal(gw.plugins.table.entries().length, 2);
  });
});

describe('registration off (POLKU_REGISTRY=off)', () => {
  test('the PluginRegistry service is not served: Register is UNIMPLEMENTED and nothing is dialled', async () => {
    const gw = await gateway({ serve: false });
    const c = await counter();
    const client = registryClient(gw.grpcPort);
    open.push(client);
    assert.equal(await codeOf(client.register({ name: 'nobody', type: EMITTER }, `127.0.0.1:${c.port}`)), 'UNIMPLEMENTED');
    assert.equal(c.connections(), 0);
    assert.equal(gw.plugins.service, null);
  });
});
