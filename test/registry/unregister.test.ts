// Unregister as upstream POLKU's: idempotent (a second one, or an id that never was, is OK), with
// ownership kept: another identity holding a live plugin's id cannot take it out.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PluginType } from '../../src/gen/polku/v1/plugin.js';
import { codeOf, detailsOf, emitterPlugin, registryClient, sendRouted, startTestGateway, type TestGateway } from './helpers.js';

const EMITTER = PluginType.PLUGIN_TYPE_EMITTER;
const identity = (name: string, token: string) => ({
  name,
  tokenDigest: createHash('sha256').update(token).digest(),
  plugins: ['*'],
  sources: ['*'],
});

describe('Unregister with identities', () => {
  let gw: TestGateway;
  const closers: Array<() => unknown> = [];
  before(async () => {
    gw = await startTestGateway({ identities: [identity('team-a', 'token-a'), identity('team-b', 'token-b')] });
  });
  after(async () => {
    for (const close of closers) await close();
    await gw.stop();
  });

  test("another identity with the plugin's id is PERMISSION_DENIED and the plugin keeps routing", async () => {
    const plugin = await emitterPlugin('owned');
    closers.push(() => plugin.server.close());
    const a = registryClient(gw.grpcPort, 'token-a');
    const b = registryClient(gw.grpcPort, 'token-b');
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    const { pluginId } = await a.register({ name: 'owned', type: EMITTER }, plugin.address);

    assert.equal(await codeOf(b.unregister(pluginId)), 'PERMISSION_DENIED');
    assert.match(await detailsOf(b.unregister(pluginId)), /plugin "owned" was registered by another identity.*identity "team-b"/);
    assert.ok(gw.hub.running.emitters.includes('owned'), 'still in the pipeline');
    assert.deepEqual((await sendRouted(gw.client, 'still-there', ['owned'])).event_ids, ['still-there']);

    assert.equal(await codeOf(a.unregister(pluginId)), 'OK');
    assert.equal(gw.hub.running.emitters.includes('owned'), false);
    assert.equal(await codeOf(a.unregister(pluginId)), 'OK', 'a second Unregister is a success');
    assert.equal(await codeOf(b.unregister(pluginId)), 'OK', "so is anyone's once it is gone: nothing is left to own");
    assert.equal(await codeOf(a.unregister('0'.repeat(32))), 'OK', 'an id that never was: a success, nothing told');
  });

  test('without a valid token Unregister is still UNAUTHENTICATED', async () => {
    const stranger = registryClient(gw.grpcPort, 'wrong');
    closers.push(() => stranger.close());
    assert.equal(await codeOf(stranger.unregister('0'.repeat(32))), 'UNAUTHENTICATED');
  });
});
