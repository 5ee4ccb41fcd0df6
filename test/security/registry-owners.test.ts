// Attacks on the plugin registry, through real gRPC on loopback: taking over a live name, claiming
// a source agents send on, probing addresses through Register's errors, starving a legitimate
// registration with a flood, and starting an open registry on every interface.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttp2Server } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PluginType } from '../../src/gen/polku/v1/plugin.js';
import { hub } from '../../src/hub/builder.js';
import { JsonIngestor } from '../../src/ingest/json.js';
import { loadIdentities } from '../../src/registry/registry-identity.js';
import { DIAL_REFUSAL } from '../../src/registry/registry-service.js';
import { until } from '../helpers/gateway-harness.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';
import {
  codeOf,
  connectionCounter,
  detailsOf,
  emitterPlugin,
  ingestorPlugin,
  registryClient,
  sendRouted,
  startTestGateway,
  type TestGateway,
} from '../registry/helpers.js';

const EMITTER = PluginType.PLUGIN_TYPE_EMITTER;
const INGESTOR = PluginType.PLUGIN_TYPE_INGESTOR;
const open: Array<() => unknown> = [];
after(async () => {
  for (const close of open.reverse()) await close();
});

async function gateway(options: Parameters<typeof startTestGateway>[0] = {}, withJson = false): Promise<TestGateway> {
  const builder = hub().emitter(new InMemoryEmitter({ name: 'memory' }));
  if (withJson) builder.ingestor(new JsonIngestor({ name: 'json', sources: ['static-src'] }));
  const gw = await startTestGateway({ registerBurst: 100, ...options }, builder);
  open.push(() => gw.stop());
  return gw;
}
async function plugin(name: string, emitterName = name) {
  const p = await emitterPlugin(name, emitterName);
  open.push(() => p.server.close());
  return p;
}
function client(port: number, token?: string) {
  const c = registryClient(port, token);
  open.push(() => c.close());
  return c;
}
const sha = (token: string) => `sha256:${createHash('sha256').update(token).digest('hex')}`;

/** Identities as POLKU_REGISTRY_IDENTITIES_FILE gives them: read from a real file. */
function identities(entries: Array<{ name: string; token: string; plugins: string[]; sources?: string[] }>) {
  const file = join(mkdtempSync(join(tmpdir(), 'polku-identities-')), 'identities.json');
  writeFileSync(file, JSON.stringify({ identities: entries.map((e) => ({ ...e, token: sha(e.token) })) }));
  return loadIdentities(file);
}

/** Sends raw JSON bytes on `source` as an agent would; resolves with the Ack. */
function agentSends(gw: TestGateway, source: string): Promise<{ event_ids: string[]; errors: Array<{ code: string }> }> {
  return new Promise((resolve, reject) =>
    gw.client['SendEvent']({ source, raw: Buffer.from('{"type":"x"}'), format: 'json' }, (err: Error | null, ack: never) =>
      err ? reject(err) : resolve(ack),
    ),
  );
}

describe('a live name belongs to its first registrant', () => {
  test('open registry: another Register of a live name is ALREADY_EXISTS, at another address or the same; the traffic stays with the owner', async () => {
    const gw = await gateway();
    const owner = await plugin('slack');
    const thief = await plugin('slack');
    const reg = client(gw.grpcPort);
    const first = await reg.register({ name: 'slack', type: EMITTER }, owner.address);
    assert.equal(await codeOf(reg.register({ name: 'slack', type: EMITTER }, thief.address)), 'ALREADY_EXISTS');
    const same = reg.register({ name: 'slack', type: EMITTER }, owner.address);
    assert.equal(await codeOf(same), 'ALREADY_EXISTS', 'the same address does not hand out the id either');
    assert.equal(await codeOf(reg.register({ name: 'slack', type: EMITTER }, thief.address, 'f'.repeat(32))), 'ALREADY_EXISTS');
    assert.equal(gw.plugins.table.named('slack')!.id, first.pluginId);
    assert.deepEqual((await sendRouted(gw.client, 'ev-1', ['slack'])).event_ids, ['ev-1']);
    await until(() => owner.received.length === 1, 'the event at the owner');
    assert.equal(thief.received.length, 0);
  });

  test('once the lease runs out the name is free again', async () => {
    const gw = await gateway({ heartbeatIntervalMs: 1_000, missedBeats: 3, healthIntervalMs: 3_600_000 });
    const owner = await plugin('audit');
    const next = await plugin('audit');
    const reg = client(gw.grpcPort);
    await reg.register({ name: 'audit', type: EMITTER }, owner.address);
    gw.timers.advance(2_999);
    assert.equal(await codeOf(reg.register({ name: 'audit', type: EMITTER }, next.address)), 'ALREADY_EXISTS');
    assert.match(await detailsOf(reg.register({ name: 'audit', type: EMITTER }, next.address)), /lease runs out \(in 1 s\)/);
    gw.timers.advance(1);
    assert.equal(await codeOf(reg.register({ name: 'audit', type: EMITTER }, next.address)), 'OK');
  });

  test('the owner re-registers with its plugin_id (polku-plugin-id), unregisters, and a second Unregister is a success', async () => {
    const gw = await gateway();
    const p = await plugin('owned');
    const moved = await plugin('owned');
    const reg = client(gw.grpcPort);
    const first = await reg.register({ name: 'owned', type: EMITTER }, p.address);
    const again = await reg.register({ name: 'owned', type: EMITTER }, moved.address, first.pluginId);
    assert.notEqual(again.pluginId, first.pluginId, 'a new address: a new entry and id');
    assert.equal(gw.plugins.table.named('owned')!.target, moved.address);
    assert.deepEqual(await reg.heartbeat(first.pluginId), { acknowledged: false }, 'the old id is spent');
    assert.equal(await codeOf(reg.unregister('0'.repeat(32))), 'OK', 'an id nobody holds removes nothing');
    assert.ok(gw.plugins.table.named('owned'));
    assert.equal(await codeOf(reg.unregister(again.pluginId)), 'OK');
    assert.equal(gw.plugins.table.named('owned'), undefined);
    assert.equal(await codeOf(reg.unregister(again.pluginId)), 'OK', 'idempotent');
  });

  test('with tokens: no other identity takes a live name, POLKU_REGISTRY_TOKEN included; the same identity re-registers', async () => {
    const gw = await gateway({
      token: 'admin-token',
      identities: identities([
        { name: 'team-a', token: 'a-token', plugins: ['slack', 'audit-*'] },
        { name: 'team-b', token: 'b-token', plugins: ['*'] },
      ]),
    });
    const a = client(gw.grpcPort, 'a-token');
    const b = client(gw.grpcPort, 'b-token');
    const admin = client(gw.grpcPort, 'admin-token');
    const owner = await plugin('slack');
    const thief = await plugin('slack');
    const first = await a.register({ name: 'slack', type: EMITTER }, owner.address);
    assert.equal(await codeOf(b.register({ name: 'slack', type: EMITTER }, thief.address)), 'ALREADY_EXISTS');
    assert.equal(await codeOf(admin.register({ name: 'slack', type: EMITTER }, thief.address)), 'ALREADY_EXISTS');
    assert.equal(gw.plugins.table.named('slack')!.target, owner.address);
    assert.equal((await a.register({ name: 'slack', type: EMITTER }, owner.address)).pluginId, first.pluginId, 'the same identity');
    assert.equal(gw.plugins.table.named('slack')!.owner, 'team-a');
  });

  test('a name or route name outside an identity allowance is PERMISSION_DENIED before anything is dialled', async () => {
    const gw = await gateway({ identities: identities([{ name: 'team-a', token: 'a-token', plugins: ['audit-*'] }]) });
    const counter = await connectionCounter();
    open.push(() => counter.close());
    const a = client(gw.grpcPort, 'a-token');
    const at = `127.0.0.1:${counter.port}`;
    assert.equal(await codeOf(a.register({ name: 'slack', type: EMITTER }, at)), 'PERMISSION_DENIED');
    assert.match(
      await detailsOf(a.register({ name: 'audit-1', type: EMITTER, emitterName: 'slack' }, at)),
      /the name "slack" is not among the plugins this identity may register \(identity "team-a"\)/,
    );
    assert.equal(counter.connections(), 0);
  });
});

describe('sources agents send on cannot be claimed', () => {
  test('a source outside the identity allowance is refused; one agents sent on needs an identity that names it', async () => {
    const gw = await gateway(
      {
        token: 'admin-token',
        identities: identities([
          { name: 'csv-team', token: 'csv-token', plugins: ['csv-*'], sources: ['csv-*'] },
          { name: 'named', token: 'named-token', plugins: ['*'], sources: ['agent-src'] },
        ]),
      },
      true,
    );
    const csv = client(gw.grpcPort, 'csv-token');
    const admin = client(gw.grpcPort, 'admin-token');
    const named = client(gw.grpcPort, 'named-token');
    const lines = await ingestorPlugin('csv-lines', ['agent-src']);
    open.push(() => lines.server.close());
    const info = { name: 'csv-lines', type: INGESTOR, sources: ['agent-src'] };
    assert.equal(await codeOf(csv.register(info, lines.address)), 'PERMISSION_DENIED', 'not among csv-*');

    assert.deepEqual((await agentSends(gw, 'agent-src')).errors, [], 'an agent sends on agent-src (parsed by json by format)');
    assert.equal(await codeOf(admin.register(info, lines.address)), 'PERMISSION_DENIED', 'the token identity allows *, not this one');
    assert.match(await detailsOf(admin.register(info, lines.address)), /agents send on source "agent-src"/);
    assert.equal(
      await codeOf(admin.register({ ...info, sources: ['static-src'] }, lines.address)),
      'ALREADY_EXISTS',
      'a static ingestor claims it',
    );
    assert.equal(await codeOf(named.register(info, lines.address)), 'OK', 'an identity listing it by name may');
    const ack = await agentSends(gw, 'agent-src');
    assert.equal(ack.event_ids.length, 1, 'now parsed by the plugin');
  });

  test('open registry: a source agents sent on is PERMISSION_DENIED; the plugin that parsed it may claim it again', async () => {
    const gw = await gateway({}, true);
    const reg = client(gw.grpcPort);
    const lines = await ingestorPlugin('lines', ['fresh-src']);
    open.push(() => lines.server.close());
    assert.equal((await agentSends(gw, 'seen-src')).errors.length, 0);
    assert.equal(await codeOf(reg.register({ name: 'lines', type: INGESTOR, sources: ['seen-src'] }, lines.address)), 'PERMISSION_DENIED');
    const { pluginId } = await reg.register({ name: 'lines', type: INGESTOR, sources: ['fresh-src'] }, lines.address);
    await agentSends(gw, 'fresh-src'); // parsed by the plugin
    await reg.unregister(pluginId);
    assert.equal(await codeOf(reg.register({ name: 'lines', type: INGESTOR, sources: ['fresh-src'] }, lines.address)), 'OK');
    const other = await ingestorPlugin('other', ['fresh-src']);
    open.push(() => other.server.close());
    const row = (await gw.plugins.rows()).find((r) => r.name === 'lines')!;
    assert.equal(row.id, `${gw.plugins.table.named('lines')!.id.slice(0, 8)}…`, 'the table never shows the whole id');
    await reg.unregister(gw.plugins.table.named('lines')!.id);
    assert.equal(
      await codeOf(reg.register({ name: 'other', type: INGESTOR, sources: ['fresh-src'] }, other.address)),
      'PERMISSION_DENIED',
      'another plugin may not take what agents send to lines',
    );
  });
});

describe("Register's answers reveal nothing about the address dialled", () => {
  test('nothing listening, a TCP listener, an HTTP/2 server, a plugin of another name, an unhealthy plugin: one status, one text', async () => {
    const gw = await gateway({ probeTimeoutMs: 300 });
    const reg = client(gw.grpcPort);
    const closed = await connectionCounter();
    const closedPort = closed.port;
    await closed.close();
    const tcp = await connectionCounter();
    open.push(() => tcp.close());
    const h2 = createHttp2Server((_req, res) => res.end('hello'));
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    open.push(() => new Promise((r) => h2.close(r)));
    const other = await plugin('someone-else');
    const sick = await plugin('sick');
    sick.healthy = false;
    const targets: Array<[string, string]> = [
      ['closed port', `127.0.0.1:${closedPort}`],
      ['TCP listener', `127.0.0.1:${tcp.port}`],
      ['HTTP/2 server', `127.0.0.1:${(h2.address() as { port: number }).port}`],
      ['another plugin', other.address],
      ['unhealthy plugin', sick.address],
    ];
    const answers: string[] = [];
    for (const [what, address] of targets) {
      const name = what === 'unhealthy plugin' ? 'sick' : 'probe';
      const call = reg.register({ name, type: EMITTER }, address);
      answers.push(`${await codeOf(call)} ${await detailsOf(reg.register({ name, type: EMITTER }, address))}`);
    }
    assert.deepEqual(answers, Array(targets.length).fill(`UNAVAILABLE ${DIAL_REFUSAL}`));
    assert.ok(
      gw.logs.some((l) => /calls itself "someone-else"/.test(String(l['reason']))),
      'the log has the details',
    );
  });
});

describe('floods', () => {
  test('an unauthenticated flood from one peer does not stop an authenticated registration', async () => {
    const gw = await gateway({ token: 'good-token', registerBurst: 3, registerRatePerSecond: 1 });
    const counter = await connectionCounter();
    open.push(() => counter.close());
    const anonymous = client(gw.grpcPort);
    const wrong = client(gw.grpcPort, 'guess');
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) codes.push(await codeOf(anonymous.register({ name: `f${i}`, type: EMITTER }, `127.0.0.1:${counter.port}`)));
    for (let i = 0; i < 2; i++) codes.push(await codeOf(wrong.register({ name: `g${i}`, type: EMITTER }, `127.0.0.1:${counter.port}`)));
    assert.deepEqual(codes, [
      'UNAUTHENTICATED',
      'UNAUTHENTICATED',
      'UNAUTHENTICATED',
      'RESOURCE_EXHAUSTED',
      'RESOURCE_EXHAUSTED',
      'RESOURCE_EXHAUSTED',
    ]);
    const p = await plugin('legit');
    const res = await client(gw.grpcPort, 'good-token').register({ name: 'legit', type: EMITTER }, p.address);
    assert.equal(res.accepted, true, 'the same peer, authenticated: its own bucket');
    assert.equal(counter.connections(), 0);
  });

  test('open registry: one peer spends only its own bucket (peers are told apart by address)', async () => {
    const gw = await gateway({ registerBurst: 2, registerRatePerSecond: 1 });
    const counter = await connectionCounter();
    open.push(() => counter.close());
    const reg = client(gw.grpcPort);
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) codes.push(await codeOf(reg.register({ name: `o${i}`, type: EMITTER }, `127.0.0.1:${counter.port}`)));
    assert.deepEqual(codes, ['UNAVAILABLE', 'UNAVAILABLE', 'RESOURCE_EXHAUSTED']);
  });
});

describe('start-up: an open registry on a non-loopback address', () => {
  test('POLKU_REGISTRY=on without a token on 0.0.0.0 refuses to start, naming the variables', async () => {
    const p = runPolku(['serve'], {
      POLKU_REGISTRY: 'on',
      POLKU_GRPC_ADDR: '0.0.0.0:0',
      POLKU_METRICS_ADDR: '127.0.0.1:0',
      POLKU_REGISTRY_TOKEN: '',
    });
    const { code } = await p.exited;
    assert.equal(code, 1);
    const err = p.stderr.join('\n');
    assert.match(err, /POLKU_ERR_REGISTRY_OPEN/);
    for (const name of ['POLKU_REGISTRY_TOKEN', 'POLKU_REGISTRY_IDENTITIES_FILE', 'POLKU_GRPC_ADDR', 'POLKU_REGISTRY_ALLOW_OPEN']) {
      assert.ok(err.includes(name), `names ${name}`);
    }
  });

  test('the default (auto) on 0.0.0.0 starts with the registry off; POLKU_REGISTRY_ALLOW_OPEN=true serves it open', async () => {
    const auto = await servePolku([], { POLKU_GRPC_ADDR: '0.0.0.0:0' });
    open.push(() => (auto.child.kill('SIGTERM'), auto.exited));
    assert.match(await auto.line(/"plugin registry"/), /off: no POLKU_REGISTRY_TOKEN/);
    const reg = client(auto.grpcPort);
    assert.equal(await codeOf(reg.register({ name: 'x', type: EMITTER }, '127.0.0.1:1')), 'UNIMPLEMENTED');
    const allowed = await servePolku([], { POLKU_GRPC_ADDR: '0.0.0.0:0', POLKU_REGISTRY: 'on', POLKU_REGISTRY_ALLOW_OPEN: 'true' });
    open.push(() => (allowed.child.kill('SIGTERM'), allowed.exited));
    assert.match(await allowed.line(/"plugin registry"/), /OPEN to whoever reaches/);
  });
});
