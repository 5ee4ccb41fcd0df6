// The public surface, entry point by entry point. Each list below is what users may rely on: a
// name added or removed here is an API change, made on purpose.
// Values are checked through the package name, as users import them (after the build); values
// and types together through the compiler, from the sources.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT } from '../helpers/line-process.js';
import { ensureBuilt } from './built.js';

interface Surface {
  readonly source: string;
  /** Names that exist at run time. */
  readonly values: readonly string[];
  /** Names that are types only. */
  readonly types: readonly string[];
}

const SURFACES: Record<string, Surface> = {
  polku: {
    source: 'src/index.ts',
    values: [
      'AckCodes',
      'AhtiEmitter',
      'ElavaIngestor',
      'EmitResults',
      'EmitterWrapper',
      'Event',
      'ExternalEmitter',
      'ExternalIngestor',
      'FileEmitter',
      'GrpcEmitter',
      'JsonIngestor',
      'NatsEmitter',
      'OtlpEmitter',
      'Outcome',
      'PassthroughIngestor',
      'PorttiIngestor',
      'PostgresEmitter',
      'S3Emitter',
      'RedisStreamEmitter',
      'Severity',
      'StdoutEmitter',
      'TapioIngestor',
      'WebhookEmitter',
      'deduplicator',
      'enricher',
      'eventToJson',
      'filter',
      'hasClientId',
      'hub',
      'kubernetesEnricher',
      'rateLimiter',
      'router',
      'sampler',
      'transform',
      'validator',
      'withCircuitBreaker',
      'withRetry',
      'withTimeout',
    ],
    types: [
      'AckCode',
      'AhtiEmitterOptions',
      'AgentIngestorOptions',
      'BucketLimit',
      'CircuitBreakerEmitter',
      'CircuitBreakerOptions',
      'CircuitState',
      'Clock',
      'ClusterAccess',
      'ClusterTls',
      'ComponentContext',
      'Deduplicator',
      'DeduplicatorOptions',
      'DeliveryOptions',
      'DurableOptions',
      'EmitResult',
      'Emitter',
      'EmitterHealth',
      'EmitterRegistration',
      'EnrichFn',
      'Enricher',
      'EnricherOptions',
      'EventBufferOptions',
      'EventFailure',
      'EventJson',
      'EventRouter',
      'ExternalEmitterConfig',
      'ExternalEmitterOptions',
      'ExternalIngestorConfig',
      'ExternalIngestorOptions',
      'FileEmitterOptions',
      'FilterOptions',
      'GrpcEmitterOptions',
      'HubBuilder',
      'IngestContext',
      'IngestProblem',
      'IngestResult',
      'Ingestor',
      'IntakeLimits',
      'JsonIngestorOptions',
      'KeyedLimit',
      'KubernetesEnricher',
      'KubernetesEnricherOptions',
      'KubernetesLookup',
      'Middleware',
      'MiddlewareContext',
      'NatsEmitterOptions',
      'OtlpEmitterOptions',
      'OverflowPolicy',
      'PassthroughIngestorOptions',
      'PostgresColumns',
      'PostgresEmitterOptions',
      'PostgresField',
      'ProbeResult',
      'RateLimiter',
      'RateLimiterOptions',
      'RedisBatchCommand',
      'RedisStreamEmitterOptions',
      'RetryEmitter',
      'RetryOptions',
      'RouteRule',
      'RouterOptions',
      'S3EmitterOptions',
      'Sampler',
      'SamplerOptions',
      'StdoutEmitterOptions',
      'TimeoutEmitter',
      'TimeoutOptions',
      'TimerHandle',
      'Timers',
      'TransformOptions',
      'ValidationRule',
      'Validator',
      'ValidatorOptions',
      'WebhookEmitterOptions',
    ],
  },
  'polku/server': {
    source: 'src/server/index.ts',
    values: [
      'Ack',
      'AckCodes',
      'DEFAULT_ALLOWLIST',
      'DEFAULT_BUFFER',
      'DEFAULT_DELIVERY',
      'DEFAULT_LIMITS',
      'ENV_VARIABLES',
      'Gateway',
      'IngestBatch',
      'IngestEvent',
      'PluginRegistry',
      'PolkuError',
      'createLogger',
      'createRegistry',
      'isPolkuError',
      'kubernetesDiscovery',
      'refusalOf',
      'settingsFromEnv',
    ],
    types: [
      'AckCode',
      'AddressAllowlist',
      'ClusterAccess',
      'ClusterTls',
      'DiscoverySettings',
      'DrainReport',
      'EnvVariable',
      'ErrorCode',
      'GatewayOptions',
      'GatewaySettings',
      'GrpcServiceBinding',
      'Hub',
      'HubHealth',
      'HubOptions',
      'HubStats',
      'IntakePayload',
      'IntakePort',
      'IntakeRequest',
      'KubernetesDiscovery',
      'KubernetesDiscoveryOptions',
      'ListenAddress',
      'ListeningPorts',
      'LivePipeline',
      'Logger',
      'PipelineDefinition',
      'PluginKind',
      'PluginOrigin',
      'PluginRegistryOptions',
      'PluginRow',
      'PluginSource',
      'PluginSpec',
      'PluginTable',
      'PluginTableOptions',
      'Receiver',
      'ReceiverContext',
      'RegistrySettings',
      'Resolver',
    ],
  },
  'polku/testing': {
    source: 'src/testing/index.ts',
    values: ['FAKE_EPOCH_MS', 'FakeClock', 'FakeTimers', 'InMemoryEmitter', 'flushPromises'],
    types: ['FakeTimerHandle', 'InMemoryEmitterOptions', 'WaitOptions'],
  },
  // The plugin SDK, unchanged by the split; listed so it too changes only on purpose.
  'polku/plugin': {
    source: 'src/plugin/index.ts',
    values: [
      'DEFAULT_HEARTBEAT_INTERVAL_MS',
      'DEFAULT_PLUGIN_TLS_REFRESH_MS',
      'Event',
      'Outcome',
      'PluginInfo',
      'PluginType',
      'Severity',
      'commandLineOptions',
      'serveEmitter',
      'serveIngestor',
      'silentLogger',
      'systemTimers',
      'toEmitResponse',
      'toIngestResponse',
    ],
    types: [
      'CommandLineOptions',
      'EmitFailure',
      'EmitOutcome',
      'EmitterPluginOptions',
      'EventInit',
      'IngestContext',
      'IngestOutcome',
      'IngestProblem',
      'IngestorPluginOptions',
      'PluginDialTls',
      'PluginHealth',
      'PluginLogger',
      'PluginOptions',
      'PluginServeTls',
      'PluginServer',
      'PluginTimers',
      'RegisterOptions',
    ],
  },
};

before(ensureBuilt, { timeout: 180_000 });

/** Every name a module exports, values and types, as the compiler sees them. */
function compiledExports(): Map<string, string[]> {
  const files = Object.values(SURFACES).map((s) => join(ROOT, s.source));
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const names = new Map<string, string[]>();
  for (const file of files) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
    names.set(
      file,
      checker.getExportsOfModule(module).map((s) => s.name),
    );
  }
  return names;
}

const sorted = (names: Iterable<string>): string[] => [...names].sort();

for (const [entry, surface] of Object.entries(SURFACES)) {
  test(`import('${entry}') gives exactly its values`, async () => {
    const module = (await import(entry)) as Record<string, unknown>;
    assert.deepEqual(sorted(Object.keys(module)), sorted(surface.values));
  });
}

test('each entry point exports exactly its values and types', () => {
  const compiled = compiledExports();
  for (const [entry, surface] of Object.entries(SURFACES)) {
    const names = compiled.get(join(ROOT, surface.source));
    assert.deepEqual(sorted(names ?? []), sorted([...surface.values, ...surface.types]), entry);
  }
});

test('polku makes each part one way: no class is exported next to its own factory', async () => {
  const polku = (await import('polku')) as Record<string, unknown>;
  for (const name of Object.keys(polku)) {
    const factory = name.charAt(0).toLowerCase() + name.slice(1);
    assert.ok(!(name !== factory && factory in polku), `${name} and ${factory}: pick one`);
    assert.ok(!(name.startsWith('with') && `${name.slice(4)}Emitter` in polku), `${name} and its class`);
  }
});

test('every entry point in package.json resolves to built JavaScript and types', async () => {
  const { readFile } = await import('node:fs/promises');
  const { existsSync } = await import('node:fs');
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, { types: string; default: string }>;
  };
  assert.deepEqual(Object.keys(pkg.exports).sort(), ['.', './plugin', './server', './testing']);
  for (const [entry, target] of Object.entries(pkg.exports)) {
    assert.ok(existsSync(join(ROOT, target.default)), `${entry}: ${target.default}`);
    assert.ok(existsSync(join(ROOT, target.types)), `${entry}: ${target.types}`);
  }
});
