// The address allowlist and the registry's environment variables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { settingsFromEnv } from '../../src/config/env.js';
import { isPolkuError } from '../../src/errors.js';
import { AddressAllowlist, allowlistProblems, DEFAULT_ALLOWLIST } from '../../src/registry/allowlist.js';
import { RegistryError } from '../../src/registry/plugin-spec.js';

const refusal = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'allowed';
  } catch (err) {
    assert.ok(err instanceof RegistryError);
    return err.grpcStatus; // the status a registering plugin sees
  }
};

test('the default allows loopback and the private ranges, and nothing public or link-local', () => {
  const list = new AddressAllowlist();
  for (const ok of [
    '127.0.0.1',
    '127.9.9.9',
    '::1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    'fd00::1',
    'fc12::9',
    '::ffff:10.0.0.7',
  ]) {
    assert.equal(list.allowsIp(ok), true, ok);
  }
  for (const no of [
    '8.8.8.8',
    '172.32.0.1',
    '169.254.169.254',
    '0.0.0.0',
    '::',
    'fe80::1',
    '2001:db8::1',
    '::ffff:8.8.8.8',
    '100.64.0.1',
  ]) {
    assert.equal(list.allowsIp(no), false, no);
  }
  assert.deepEqual([...DEFAULT_ALLOWLIST], ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']);
});

test('an IP target is checked as is; a listed host name is dialled by name; others resolve and every address must be allowed', async () => {
  const resolved: string[] = [];
  const resolver = async (name: string) => {
    resolved.push(name);
    return (
      ({ 'one.internal': ['10.0.0.5'], 'two.internal': ['10.0.0.6', '8.8.4.4'], 'v6.internal': ['fd00::5'] } as Record<string, string[]>)[
        name
      ] ?? []
    );
  };
  const list = new AddressAllowlist(['10.0.0.0/8', 'fd00::/8', 'audit.plugins.svc', '*.trusted.example'], resolver);
  assert.equal(await list.check('10.9.9.9:9000'), '10.9.9.9:9000');
  assert.equal(await refusal(list.check('192.168.0.1:9000')), 'PERMISSION_DENIED');
  assert.equal(await list.check('audit.plugins.svc:9000'), 'audit.plugins.svc:9000');
  assert.equal(await list.check('x.trusted.example:9000'), 'x.trusted.example:9000');
  assert.deepEqual(resolved, [], 'listed names are not resolved');
  assert.equal(await list.check('one.internal:9000'), '10.0.0.5:9000');
  assert.equal(await list.check('v6.internal:9000'), '[fd00::5]:9000');
  assert.equal(await refusal(list.check('two.internal:9000')), 'PERMISSION_DENIED');
  assert.equal(await refusal(list.check('nothing.internal:9000')), 'UNAVAILABLE');
  assert.equal(await refusal(list.check('[2001:db8::1]:9000')), 'PERMISSION_DENIED');
});

test('entries that are not CIDRs, addresses or host names are named', () => {
  assert.deepEqual(allowlistProblems(['10.0.0.0/8', '10.0.0.0/33', 'fd00::/200', 'bad host', '1.2.3.4', 'ok.example', '*.ok.example']), [
    '10.0.0.0/33',
    'fd00::/200',
    'bad host',
  ]);
  assert.throws(() => new AddressAllowlist(['nope nope']), /not a CIDR/);
});

test('the registry and discovery variables: defaults, parsing, and bad values naming the variable', () => {
  const d = settingsFromEnv({});
  assert.deepEqual(d.registry, {
    serve: false,
    decision: 'off: no POLKU_REGISTRY_TOKEN or POLKU_REGISTRY_IDENTITIES_FILE, and POLKU_GRPC_ADDR (0.0.0.0) is not loopback',
    token: undefined,
    identities: [],
    heartbeatIntervalMs: 5_000,
    missedBeats: 3,
    healthIntervalMs: 5_000,
    maxPlugins: 64,
    allowlist: [...DEFAULT_ALLOWLIST],
    registerRatePerSecond: 10,
    registerBurst: 20,
  });
  assert.equal(d.discovery, undefined, 'discovery is off unless asked for');
  const s = settingsFromEnv({
    POLKU_REGISTRY: 'off',
    POLKU_REGISTRY_TOKEN: ' tok ',
    POLKU_REGISTRY_HEARTBEAT_MS: '200',
    POLKU_REGISTRY_MISSED_BEATS: '2',
    POLKU_REGISTRY_HEALTH_INTERVAL_MS: '300',
    POLKU_REGISTRY_MAX_PLUGINS: '5',
    POLKU_REGISTRY_ALLOWLIST: '10.0.0.0/8, plugins.svc ,',
    POLKU_REGISTRY_REGISTER_RATE: '2',
    POLKU_REGISTRY_REGISTER_BURST: '4',
    POLKU_DISCOVERY: 'kubernetes',
    POLKU_DISCOVERY_NAMESPACES: 'a, b',
    NODE_NAME: 'node-1',
  });
  assert.deepEqual(s.registry, {
    serve: false,
    decision: 'off (POLKU_REGISTRY=off)',
    token: 'tok',
    identities: [],
    heartbeatIntervalMs: 200,
    missedBeats: 2,
    healthIntervalMs: 300,
    maxPlugins: 5,
    allowlist: ['10.0.0.0/8', 'plugins.svc'],
    registerRatePerSecond: 2,
    registerBurst: 4,
  });
  assert.deepEqual(s.discovery, { namespaces: ['a', 'b'], labelSelector: 'polku.io/plugin', nodeName: 'node-1' });
  let message = '';
  try {
    settingsFromEnv({ POLKU_REGISTRY_ALLOWLIST: '10.0.0.0/8,not a host', POLKU_DISCOVERY: 'consul', POLKU_REGISTRY_MISSED_BEATS: '0' });
  } catch (err) {
    assert.ok(isPolkuError(err));
    message = err.message;
  }
  assert.match(message, /POLKU_REGISTRY_ALLOWLIST=.*"not a host" is not a CIDR/);
  assert.match(message, /POLKU_DISCOVERY="consul": must be one of off, kubernetes/);
  assert.match(message, /POLKU_REGISTRY_MISSED_BEATS="0"/);
});
