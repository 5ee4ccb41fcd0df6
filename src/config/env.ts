import type { LevelWithSilent } from 'pino';
import type { DeliveryOptions } from '../delivery/emitter-queue.js';
import type { EventBufferOptions } from '../buffer/event-buffer.js';
import { polkuError } from '../errors.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../ingest/intake-rules.js';
import type { ConnectionLimits } from '../server/connection-guard.js';
import { EnvProblem, type ListenAddress } from './env-parsers.js';
import { ENV_TABLE, type EnvVariableSpec } from './env-table.js';

export { formatAddress, parseAddress, type ListenAddress } from './env-parsers.js';

/** The gateway's settings from the environment. */
export interface GatewaySettings {
  grpcAddr: ListenAddress;
  metricsAddr: ListenAddress;
  logLevel: LevelWithSilent;
  buffer: EventBufferOptions;
  delivery: DeliveryOptions;
  limits: IntakeLimits;
  shutdownTimeoutMs: number;
  /** The gRPC port's connection budget. */
  connections: ConnectionLimits;
  /** Most connections on the metrics and probes port. */
  metricsMaxConnections: number;
  maxSourceLabels: number;
  /** Path of the pipeline module, when POLKU_CONFIG names one. */
  configPath: string | undefined;
  /** Durable mode's settings when POLKU_DURABLE=true. */
  durable: { dir: string; maxBytes: number; idempotencyMaxKeys: number } | undefined;
  /** The live plugin table and its PluginRegistry service (POLKU_REGISTRY_*). */
  registry: RegistrySettings;
  /** Kubernetes Service discovery when POLKU_DISCOVERY=kubernetes. */
  discovery: DiscoverySettings | undefined;
}

/** The live plugin table's settings (POLKU_REGISTRY_*). */
export interface RegistrySettings {
  /** Serve polku.v1.PluginRegistry (POLKU_REGISTRY=on). */
  serve: boolean;
  token: string | undefined;
  heartbeatIntervalMs: number;
  missedBeats: number;
  healthIntervalMs: number;
  maxPlugins: number;
  allowlist: string[];
  registerRatePerSecond: number;
  registerBurst: number;
}

/** Kubernetes Service discovery's settings (POLKU_DISCOVERY_*, NODE_NAME). */
export interface DiscoverySettings {
  /** Empty: every namespace. */
  namespaces: string[];
  labelSelector: string;
  /** This gateway's node (NODE_NAME, from the downward API): its endpoints are preferred. */
  nodeName: string | undefined;
}

/** One variable as the help prints it: name, default, meaning. */
export type EnvVariable = readonly [name: string, shownDefault: string, description: string];

/**
 * Every variable the gateway reads, with its default and meaning, from {@link ENV_TABLE}.
 * `polku serve --help` prints it; the README's tables must agree with it (a test checks).
 */
export const ENV_VARIABLES: readonly EnvVariable[] = Object.values(ENV_TABLE).map((v) => [v.name, v.shownDefault, v.description] as const);

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads the settings from `env`. Every bad value is reported at once, each naming its variable,
 * in one POLKU_ERR_ENV_INVALID error; start-up stops there. A variable is read only when its
 * setting is used (the durable ones only with POLKU_DURABLE=true), so an unused one never fails.
 */
export function settingsFromEnv(env: Env = process.env): GatewaySettings {
  const problems: string[] = [];
  const get = <K extends keyof typeof ENV_TABLE>(key: K): (typeof ENV_TABLE)[K]['default'] => {
    const spec: EnvVariableSpec<(typeof ENV_TABLE)[K]['default']> = ENV_TABLE[key];
    const raw = env[spec.name];
    if (raw === undefined || raw.trim() === '') return spec.default;
    const parsed = spec.parser.parse(raw.trim());
    if (!(parsed instanceof EnvProblem)) return parsed;
    problems.push(`${spec.name}=${JSON.stringify(raw)}: ${parsed.message}`);
    return spec.default;
  };

  const settings: GatewaySettings = {
    grpcAddr: { ...get('grpcAddr') },
    metricsAddr: { ...get('metricsAddr') },
    logLevel: get('logLevel'),
    buffer: { capacity: get('bufferCapacity'), maxBytes: get('bufferMaxBytes'), overflow: get('overflow') },
    delivery: { batchSize: get('batchSize'), flushIntervalMs: get('flushIntervalMs'), maxAttempts: get('emitMaxAttempts') },
    limits: {
      maxMessageBytes: get('maxMessageBytes'),
      maxBatchEvents: get('maxBatchEvents'),
      maxPayloadBytes: get('maxPayloadBytes'),
      maxMetadataBytes: get('maxMetadataBytes'),
      maxEventBytes: get('maxEventBytes'),
      maxJsonDepth: get('maxJsonDepth'),
      maxIdLength: DEFAULT_LIMITS.maxIdLength,
    },
    shutdownTimeoutMs: get('shutdownTimeoutMs'),
    connections: {
      maxConnections: get('maxConnections'),
      handshakeTimeoutMs: get('handshakeTimeoutMs'),
      idleTimeoutMs: get('idleTimeoutMs'),
      maxStreamsPerConnection: get('maxStreamsPerConnection'),
    },
    metricsMaxConnections: get('metricsMaxConnections'),
    maxSourceLabels: get('maxSourceLabels'),
    configPath: get('configPath'),
    durable: get('durable')
      ? { dir: get('dataDir'), maxBytes: get('durableMaxBytes'), idempotencyMaxKeys: get('idempotencyMaxKeys') }
      : undefined,
    registry: {
      serve: get('registry'),
      token: get('registryToken'),
      heartbeatIntervalMs: get('heartbeatIntervalMs'),
      missedBeats: get('missedBeats'),
      healthIntervalMs: get('healthIntervalMs'),
      maxPlugins: get('maxPlugins'),
      allowlist: [...get('allowlist')],
      registerRatePerSecond: get('registerRate'),
      registerBurst: get('registerBurst'),
    },
    discovery:
      get('discovery') === 'kubernetes'
        ? { namespaces: [...get('namespaces')], labelSelector: get('labelSelector'), nodeName: get('nodeName') }
        : undefined,
  };
  if (problems.length > 0) {
    throw polkuError('POLKU_ERR_ENV_INVALID', `invalid environment: ${problems.join('; ')}`);
  }
  return settings;
}
