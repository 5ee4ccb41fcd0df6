import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, parseAddress, settingsFromEnv, ENV_VARIABLES } from '../../src/config/env.js';
import { PolkuError } from '../../src/errors.js';
import { unknownVariables } from '../../src/config/unknown-variables.js';
import { DEFAULT_BUFFER, DEFAULT_DELIVERY } from '../../src/hub/builder.js';
import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { DEFAULT_ALLOWLIST } from '../../src/registry/allowlist.js';
import { DEFAULT_CONNECTION_LIMITS } from '../../src/server/connection-guard.js';
import { DEFAULT_METRICS_MAX_CONNECTIONS } from '../../src/server/http-server.js';

const DEFAULT_REGISTRY = {
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
};

/** Asserts settingsFromEnv(env) throws POLKU_ERR_ENV_INVALID and returns its message. */
function envError(env: Record<string, string>): string {
  let caught: unknown;
  assert.throws(
    () => settingsFromEnv(env),
    (err: unknown) => {
      caught = err;
      return true;
    },
  );
  assert.ok(caught instanceof PolkuError, 'throws a PolkuError');
  assert.equal(caught.code, 'POLKU_ERR_ENV_INVALID');
  return caught.message;
}

test('an empty environment gives the defaults', () => {
  assert.deepEqual(settingsFromEnv({}), {
    grpcAddr: { host: '0.0.0.0', port: 50051 },
    metricsAddr: { host: '0.0.0.0', port: 9090 },
    logLevel: 'info',
    logFormat: 'json',
    forward: undefined,
    buffer: { ...DEFAULT_BUFFER },
    delivery: { ...DEFAULT_DELIVERY },
    limits: { ...DEFAULT_LIMITS },
    shutdownTimeoutMs: 10_000,
    connections: { ...DEFAULT_CONNECTION_LIMITS },
    metricsMaxConnections: DEFAULT_METRICS_MAX_CONNECTIONS,
    maxSourceLabels: 50,
    configPath: undefined,
    adminToken: undefined,
    tenantsFile: undefined,
    durable: undefined,
    registry: DEFAULT_REGISTRY,
    discovery: undefined,
    tls: undefined,
    pluginTls: undefined,
    otlp: {
      grpcAddr: { host: '0.0.0.0', port: 4317 },
      httpAddr: { host: '0.0.0.0', port: 4318 },
      grpcServer: 'http2',
      eventTypeAttribute: 'event.name',
      idAttribute: 'log.record.uid',
    },
    http: { addr: { host: '0.0.0.0', port: 8080 }, maxBodyBytes: 4194304, requestTimeoutMs: 30000 },
    emitOut: {},
  });
});

test('empty and blank values count as unset', () => {
  const s = settingsFromEnv({ POLKU_BATCH_SIZE: '', POLKU_GRPC_ADDR: '   ', POLKU_LOG_LEVEL: ' ', POLKU_CONFIG: ' ' });
  assert.equal(s.delivery.batchSize, DEFAULT_DELIVERY.batchSize);
  assert.deepEqual(s.grpcAddr, { host: '0.0.0.0', port: 50051 });
  assert.equal(s.logLevel, 'info');
  assert.equal(s.configPath, undefined);
});

test('every variable is parsed into its setting', () => {
  const s = settingsFromEnv({
    POLKU_GRPC_ADDR: '127.0.0.1:6000',
    POLKU_METRICS_ADDR: '[::1]:9100',
    POLKU_LOG_LEVEL: 'debug',
    POLKU_CONFIG: ' ./polku.config.ts ',
    POLKU_ADMIN_TOKEN: 'admin-secret',
    POLKU_TENANTS_FILE: '/etc/polku/tenants.json',
    POLKU_BUFFER_CAPACITY: '250',
    POLKU_BUFFER_MAX_BYTES: '65536',
    POLKU_OVERFLOW_POLICY: 'drop_oldest',
    POLKU_BATCH_SIZE: ' 20 ',
    POLKU_FLUSH_INTERVAL_MS: '0',
    POLKU_EMIT_MAX_ATTEMPTS: '7',
    POLKU_SHUTDOWN_TIMEOUT_MS: '2500',
    POLKU_MAX_CONNECTIONS: '300',
    POLKU_HANDSHAKE_TIMEOUT_MS: '2000',
    POLKU_IDLE_TIMEOUT_MS: '0',
    POLKU_MAX_STREAMS_PER_CONNECTION: '16',
    POLKU_METRICS_MAX_CONNECTIONS: '8',
    POLKU_MAX_MESSAGE_BYTES: '2048',
    POLKU_MAX_BATCH_EVENTS: '30',
    POLKU_MAX_PAYLOAD_BYTES: '512',
    POLKU_MAX_METADATA_BYTES: '128',
    POLKU_MAX_EVENT_BYTES: '4096',
    POLKU_MAX_JSON_DEPTH: '8',
    POLKU_METRICS_MAX_SOURCES: '5',
    POLKU_DURABLE: 'true',
    POLKU_DATA_DIR: '/data/polku',
    POLKU_DURABLE_MAX_BYTES: String(2 * 1024 * 1024),
    POLKU_IDEMPOTENCY_MAX_KEYS: '5000',
    POLKU_DURABLE_STREAM_WINDOW_BATCHES: '8',
    POLKU_DURABLE_STREAM_WINDOW_BYTES: '1048576',
    POLKU_REGISTRY: 'off',
    POLKU_REGISTRY_TOKEN: ' s3cret ',
    POLKU_REGISTRY_HEARTBEAT_MS: '1000',
    POLKU_REGISTRY_MISSED_BEATS: '2',
    POLKU_REGISTRY_HEALTH_INTERVAL_MS: '750',
    POLKU_REGISTRY_MAX_PLUGINS: '8',
    POLKU_REGISTRY_ALLOWLIST: '10.1.0.0/16, plugins.internal',
    POLKU_REGISTRY_REGISTER_RATE: '3',
    POLKU_REGISTRY_REGISTER_BURST: '4',
    POLKU_DISCOVERY: 'kubernetes',
    POLKU_DISCOVERY_NAMESPACES: 'polku, team-a,',
    POLKU_DISCOVERY_LABEL_SELECTOR: 'app.kubernetes.io/part-of=polku',
    NODE_NAME: 'node-7',
    POLKU_TLS_CERT_FILE: '/tls/tls.crt',
    POLKU_TLS_KEY_FILE: '/tls/tls.key',
    POLKU_TLS_CLIENT_CA_FILE: '/tls/ca.crt',
    POLKU_TLS_RELOAD_INTERVAL_MS: '2000',
    POLKU_PLUGIN_TLS_CA_FILE: '/plugin-tls/ca.crt',
    POLKU_PLUGIN_TLS_CERT_FILE: '/plugin-tls/tls.crt',
    POLKU_PLUGIN_TLS_KEY_FILE: '/plugin-tls/tls.key',
    POLKU_LOG_FORMAT: 'pretty',
    POLKU_EMIT_GRPC_ENDPOINTS: 'downstream:50051',
    POLKU_EMIT_GRPC_LAZY: 'true',
    POLKU_OTLP_GRPC_ADDR: '127.0.0.1:14317',
    POLKU_OTLP_HTTP_ADDR: 'off',
    POLKU_OTLP_EVENT_TYPE_ATTRIBUTE: 'log.kind',
    POLKU_OTLP_ID_ATTRIBUTE: 'uid',
    POLKU_OTLP_GRPC_SERVER: 'grpc-js',
    POLKU_HTTP_ADDR: 'off',
    POLKU_HTTP_MAX_BODY_BYTES: '65536',
    POLKU_HTTP_REQUEST_TIMEOUT_MS: '5000',
  });
  assert.deepEqual(s, {
    grpcAddr: { host: '127.0.0.1', port: 6000 },
    metricsAddr: { host: '::1', port: 9100 },
    logLevel: 'debug',
    logFormat: 'pretty',
    forward: { endpoints: ['downstream:50051'], lazy: true },
    buffer: { capacity: 250, maxBytes: 65536, overflow: 'drop_oldest' },
    delivery: { batchSize: 20, flushIntervalMs: 0, maxAttempts: 7 },
    limits: {
      maxMessageBytes: 2048,
      maxBatchEvents: 30,
      maxPayloadBytes: 512,
      maxMetadataBytes: 128,
      maxEventBytes: 4096,
      maxJsonDepth: 8,
      maxIdLength: DEFAULT_LIMITS.maxIdLength,
    },
    shutdownTimeoutMs: 2500,
    connections: { maxConnections: 300, handshakeTimeoutMs: 2000, idleTimeoutMs: 0, maxStreamsPerConnection: 16 },
    metricsMaxConnections: 8,
    maxSourceLabels: 5,
    configPath: './polku.config.ts',
    adminToken: 'admin-secret',
    tenantsFile: '/etc/polku/tenants.json',
    durable: {
      dir: '/data/polku',
      maxBytes: 2 * 1024 * 1024,
      idempotencyMaxKeys: 5000,
      streamWindowBatches: 8,
      streamWindowBytes: 1024 * 1024,
    },
    registry: {
      serve: false,
      decision: 'off (POLKU_REGISTRY=off)',
      token: 's3cret',
      identities: [],
      heartbeatIntervalMs: 1000,
      missedBeats: 2,
      healthIntervalMs: 750,
      maxPlugins: 8,
      allowlist: ['10.1.0.0/16', 'plugins.internal'],
      registerRatePerSecond: 3,
      registerBurst: 4,
    },
    discovery: { namespaces: ['polku', 'team-a'], labelSelector: 'app.kubernetes.io/part-of=polku', nodeName: 'node-7' },
    tls: { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key', clientCaFile: '/tls/ca.crt', reloadIntervalMs: 2000 },
    pluginTls: { caFile: '/plugin-tls/ca.crt', certFile: '/plugin-tls/tls.crt', keyFile: '/plugin-tls/tls.key' },
    otlp: {
      grpcAddr: { host: '127.0.0.1', port: 14317 },
      httpAddr: undefined,
      grpcServer: 'grpc-js',
      eventTypeAttribute: 'log.kind',
      idAttribute: 'uid',
    },
    http: { addr: undefined, maxBodyBytes: 65536, requestTimeoutMs: 5000 },
    emitOut: {},
  });
});

test('an OTLP address that is neither host:port nor off stops start-up, naming the variable', () => {
  const message = envError({ POLKU_OTLP_GRPC_ADDR: '4317', POLKU_OTLP_HTTP_ADDR: 'of' });
  assert.match(message, /POLKU_OTLP_GRPC_ADDR="4317": must be host:port \(e\.g\. 0\.0\.0\.0:4317\) or off/);
  assert.match(message, /POLKU_OTLP_HTTP_ADDR="of": must be host:port/);
  assert.match(envError({ POLKU_OTLP_GRPC_SERVER: 'grpcjs' }), /POLKU_OTLP_GRPC_SERVER="grpcjs": must be one of http2, grpc-js/);
});

test('TLS files set by halves are refused, each naming the variable', () => {
  assert.throws(
    () => settingsFromEnv({ POLKU_TLS_CERT_FILE: '/c' }),
    /invalid environment: POLKU_TLS_CERT_FILE is set without POLKU_TLS_KEY_FILE/,
  );
  assert.throws(() => settingsFromEnv({ POLKU_TLS_KEY_FILE: '/k' }), /POLKU_TLS_KEY_FILE is set without POLKU_TLS_CERT_FILE/);
  assert.throws(() => settingsFromEnv({ POLKU_TLS_CLIENT_CA_FILE: '/ca' }), /POLKU_TLS_CLIENT_CA_FILE is set without POLKU_TLS_CERT_FILE/);
  assert.throws(
    () => settingsFromEnv({ POLKU_PLUGIN_TLS_CERT_FILE: '/c' }),
    /POLKU_PLUGIN_TLS_CERT_FILE is set without POLKU_PLUGIN_TLS_KEY_FILE/,
  );
  assert.deepEqual(settingsFromEnv({ POLKU_PLUGIN_TLS_CA_FILE: '/ca' }).pluginTls, {
    caFile: '/ca',
    certFile: undefined,
    keyFile: undefined,
  });
});

test('every overflow policy and log level is accepted', () => {
  for (const policy of ['reject', 'drop_oldest', 'block']) {
    assert.equal(settingsFromEnv({ POLKU_OVERFLOW_POLICY: policy }).buffer.overflow, policy);
  }
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']) {
    assert.equal(settingsFromEnv({ POLKU_LOG_LEVEL: level }).logLevel, level);
  }
});

test('POLKU_BATCH_SIZE=abc is refused, naming the variable', () => {
  assert.match(envError({ POLKU_BATCH_SIZE: 'abc' }), /POLKU_BATCH_SIZE="abc": must be a whole number/);
});

test('POLKU_BUFFER_CAPACITY=0 is refused, naming the variable', () => {
  assert.match(envError({ POLKU_BUFFER_CAPACITY: '0' }), /POLKU_BUFFER_CAPACITY="0": must be a whole number \(1 or more\)/);
});

test('numbers that are negative, fractional or in exponent form are refused', () => {
  assert.match(envError({ POLKU_EMIT_MAX_ATTEMPTS: '-1' }), /POLKU_EMIT_MAX_ATTEMPTS/);
  assert.match(envError({ POLKU_FLUSH_INTERVAL_MS: '1.5' }), /POLKU_FLUSH_INTERVAL_MS/);
  assert.match(envError({ POLKU_BUFFER_MAX_BYTES: '1e6' }), /POLKU_BUFFER_MAX_BYTES/);
  assert.match(envError({ POLKU_SHUTDOWN_TIMEOUT_MS: '99999999999999999999' }), /POLKU_SHUTDOWN_TIMEOUT_MS/);
});

test('POLKU_MAX_MESSAGE_BYTES below 1024 is refused', () => {
  assert.match(envError({ POLKU_MAX_MESSAGE_BYTES: '1023' }), /POLKU_MAX_MESSAGE_BYTES="1023": .*1024 or more/);
  assert.equal(settingsFromEnv({ POLKU_MAX_MESSAGE_BYTES: '1024' }).limits.maxMessageBytes, 1024);
});

test('POLKU_GRPC_ADDR=nonsense is refused, naming the variable', () => {
  assert.match(envError({ POLKU_GRPC_ADDR: 'nonsense' }), /POLKU_GRPC_ADDR="nonsense": must be host:port/);
});

test('POLKU_OVERFLOW_POLICY=maybe is refused, naming the variable and the choices', () => {
  assert.match(envError({ POLKU_OVERFLOW_POLICY: 'maybe' }), /POLKU_OVERFLOW_POLICY="maybe": must be one of reject, drop_oldest, block/);
});

test('POLKU_LOG_LEVEL=loud is refused, naming the variable', () => {
  assert.match(envError({ POLKU_LOG_LEVEL: 'loud' }), /POLKU_LOG_LEVEL="loud": must be one of trace/);
});

test('two bad variables are both named in one error', () => {
  const message = envError({ POLKU_BATCH_SIZE: 'abc', POLKU_METRICS_ADDR: 'host:70000', POLKU_BUFFER_CAPACITY: '10' });
  assert.match(message, /POLKU_BATCH_SIZE/);
  assert.match(message, /POLKU_METRICS_ADDR/);
  assert.doesNotMatch(message, /POLKU_BUFFER_CAPACITY/, 'a good variable is not blamed');
});

test('the documented defaults match the defaults in effect', () => {
  const documented = Object.fromEntries(ENV_VARIABLES.map(([name, def]) => [name, def]));
  const s = settingsFromEnv({});
  assert.equal(documented['POLKU_GRPC_ADDR'], formatAddress(s.grpcAddr));
  assert.equal(documented['POLKU_METRICS_ADDR'], formatAddress(s.metricsAddr));
  assert.equal(documented['POLKU_BUFFER_CAPACITY'], String(s.buffer.capacity));
  assert.equal(documented['POLKU_BATCH_SIZE'], String(s.delivery.batchSize));
  assert.equal(documented['POLKU_SHUTDOWN_TIMEOUT_MS'], String(s.shutdownTimeoutMs));
  assert.equal(documented['POLKU_METRICS_MAX_SOURCES'], String(s.maxSourceLabels));
});

test('parseAddress reads host:port', () => {
  assert.deepEqual(parseAddress('localhost:50051'), { host: 'localhost', port: 50051 });
  assert.deepEqual(parseAddress('10.0.0.1:0'), { host: '10.0.0.1', port: 0 });
});

test('parseAddress reads a bracketed IPv6 host', () => {
  assert.deepEqual(parseAddress('[::1]:50051'), { host: '::1', port: 50051 });
  assert.deepEqual(parseAddress('[::]:9090'), { host: '::', port: 9090 });
});

test('parseAddress reads :port as every interface', () => {
  assert.deepEqual(parseAddress(':9090'), { host: '0.0.0.0', port: 9090 });
});

test('parseAddress rejects port 70000 and malformed addresses', () => {
  assert.equal(parseAddress('localhost:70000'), undefined);
  assert.equal(parseAddress('localhost:65536'), undefined);
  assert.deepEqual(parseAddress('localhost:65535'), { host: 'localhost', port: 65535 });
  for (const bad of ['nonsense', 'localhost:', '::1:50051', 'host:port', 'a b:80', '[zz]:80']) {
    assert.equal(parseAddress(bad), undefined, bad);
  }
});

test('formatAddress brackets IPv6 hosts', () => {
  assert.equal(formatAddress({ host: '::1', port: 1 }), '[::1]:1');
  assert.equal(formatAddress({ host: '0.0.0.0', port: 2 }), '0.0.0.0:2');
});

test("POLKU_LOG_LEVEL takes upstream's forms: any case, warning, off/none, RUST_LOG-style filters", () => {
  const cases: Array<[string, string]> = [
    ['INFO', 'info'],
    ['Debug', 'debug'],
    ['trace', 'trace'],
    ['WARNING', 'warn'],
    ['warn', 'warn'],
    ['off', 'silent'],
    ['None', 'silent'],
    ['silent', 'silent'],
    ['info,module=debug', 'info'],
    ['h2=warn, debug', 'debug'],
    ['polku=debug,h2=warn', 'debug'],
    ['h2=warn,polku_gateway::hub=TRACE', 'trace'],
    ['tonic=error', 'info'],
  ];
  for (const [raw, level] of cases) assert.equal(settingsFromEnv({ POLKU_LOG_LEVEL: raw }).logLevel, level, raw);
});

test('an unparseable POLKU_LOG_LEVEL is refused, naming the variable and the accepted forms', () => {
  for (const raw of ['loud', 'info,polku=loud', 'polku[span]=debug', '=debug', 'info,,h2']) {
    const message = envError({ POLKU_LOG_LEVEL: raw });
    assert.ok(message.includes(`POLKU_LOG_LEVEL=${JSON.stringify(raw)}: must be one of trace, debug, info, warn (or warning)`), message);
    assert.match(message, /or a filter like info,module=debug or polku=debug,h2=warn/);
  }
});

test('POLKU_LOG_FORMAT is json (default) or pretty; anything else names the variable', () => {
  assert.equal(settingsFromEnv({}).logFormat, 'json');
  assert.equal(settingsFromEnv({ POLKU_LOG_FORMAT: 'pretty' }).logFormat, 'pretty');
  assert.match(envError({ POLKU_LOG_FORMAT: 'text' }), /POLKU_LOG_FORMAT="text": must be one of json, pretty/);
});

test('POLKU_EMIT_GRPC_ENDPOINTS and POLKU_EMIT_GRPC_LAZY: forwarding settings, off when unset', () => {
  assert.equal(settingsFromEnv({}).forward, undefined);
  assert.equal(settingsFromEnv({ POLKU_EMIT_GRPC_LAZY: 'true' }).forward, undefined, 'LAZY alone forwards nowhere');
  assert.deepEqual(settingsFromEnv({ POLKU_EMIT_GRPC_ENDPOINTS: 'gw-a:50051, http://gw-b:50051,https://gw-c:443' }).forward, {
    endpoints: ['gw-a:50051', 'http://gw-b:50051', 'https://gw-c:443'],
    lazy: false,
  });
  assert.equal(settingsFromEnv({ POLKU_EMIT_GRPC_ENDPOINTS: '10.0.0.1:50051', POLKU_EMIT_GRPC_LAZY: 'true' }).forward?.lazy, true);
});

test('bad POLKU_EMIT_GRPC_* values are refused, naming the variable and the bad entry', () => {
  assert.match(
    envError({ POLKU_EMIT_GRPC_ENDPOINTS: 'gw-a:50051,gw-b,tcp://gw-c:1' }),
    /POLKU_EMIT_GRPC_ENDPOINTS="gw-a:50051,gw-b,tcp:\/\/gw-c:1": "gw-b", "tcp:\/\/gw-c:1" is not host:port, http:\/\/host:port or https:\/\/host:port/,
  );
  assert.match(envError({ POLKU_EMIT_GRPC_ENDPOINTS: 'gw:70000' }), /"gw:70000" is not host:port.*\(port 1-65535\)/);
  assert.match(envError({ POLKU_EMIT_GRPC_ENDPOINTS: 'gw:1,gw:1' }), /POLKU_EMIT_GRPC_ENDPOINTS="gw:1,gw:1": "gw:1" is listed twice/);
  assert.match(
    envError({ POLKU_EMIT_GRPC_ENDPOINTS: 'gw:1', POLKU_EMIT_GRPC_LAZY: 'yes' }),
    /POLKU_EMIT_GRPC_LAZY="yes": must be one of true, false/,
  );
});

test('unknownVariables: POLKU_* names no part of POLKU reads, with the known name a typo away', () => {
  const unknown = unknownVariables({
    POLKU_BUFER_CAPACITY: '5',
    POLKU_BUFFER_CAPACITY: '5',
    POLKU_LOG_LEVL: 'info',
    POLKU_ADMIN_ADDR: '127.0.0.1:9090',
    POLKU_PLUGIN_TOKEN: 't',
    POLKU_EMIT_GRPC_ENDPOINTS: 'a:1',
    POLKU_SOMETHING_ELSE: '1',
    POLKU_REGISTRY_HEARTBEAT_INTERVAL_MS: '5000',
    OTHER_BUFFER_CAPACITY: '1',
    NODE_NAME: 'n1',
  });
  assert.deepEqual(unknown, [
    { name: 'POLKU_BUFER_CAPACITY', didYouMean: 'POLKU_BUFFER_CAPACITY' },
    { name: 'POLKU_LOG_LEVL', didYouMean: 'POLKU_LOG_LEVEL' },
    { name: 'POLKU_REGISTRY_HEARTBEAT_INTERVAL_MS', didYouMean: undefined },
    { name: 'POLKU_SOMETHING_ELSE', didYouMean: undefined },
  ]);
  assert.deepEqual(unknownVariables({}), []);
});
