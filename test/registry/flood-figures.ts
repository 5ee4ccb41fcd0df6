// Figures for docs/security.md: an unauthenticated Register flood from one peer
// against a gateway with a token, and the authenticated registration that follows it.
//   node --import tsx test/registry/flood-figures.ts
import { PluginType } from '../../src/gen/polku/v1/plugin.js';
import { codeOf, emitterPlugin, registryClient, startTestGateway } from './helpers.js';

const FLOOD = 2_000;
const gw = await startTestGateway({ token: 'good-token' });
const p = await emitterPlugin('legit');
const anonymous = registryClient(gw.grpcPort);
const started = performance.now();
const codes = await Promise.all(
  Array.from({ length: FLOOD }, (_, i) => codeOf(anonymous.register({ name: `f${i}`, type: PluginType.PLUGIN_TYPE_EMITTER }, p.address))),
);
const floodMs = performance.now() - started;
const counts: Record<string, number> = {};
for (const c of codes) counts[c] = (counts[c] ?? 0) + 1;
const t = performance.now();
const res = await registryClient(gw.grpcPort, 'good-token').register({ name: 'legit', type: PluginType.PLUGIN_TYPE_EMITTER }, p.address);
console.log(
  JSON.stringify({
    flood: FLOOD,
    floodMs: Math.round(floodMs),
    answers: counts,
    authenticatedAccepted: res.accepted,
    authenticatedMs: +(performance.now() - t).toFixed(1),
  }),
);
anonymous.close();
await gw.stop();
await p.server.close();
process.exit(0);
