import type { LevelWithSilent } from 'pino';
import type { DeliveryOptions } from '../delivery/emitter-queue.js';
import { OVERFLOW_POLICIES, type EventBufferOptions, type OverflowPolicy } from '../buffer/event-buffer.js';
import { polkuError } from '../errors.js';
import { DEFAULT_BUFFER, DEFAULT_DELIVERY } from '../hub/builder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../ingest/intake-rules.js';
import { LOG_LEVELS } from '../observability/logger.js';
import { DURABLE_DEFAULTS } from '../buffer/durable/durable-store.js';
import { allowlistProblems, DEFAULT_ALLOWLIST } from '../registry/allowlist.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The gateway's settings from the environment. */
export interface GatewaySettings {
  grpcAddr: ListenAddress;
  metricsAddr: ListenAddress;
  logLevel: LevelWithSilent;
  buffer: EventBufferOptions;
  delivery: DeliveryOptions;
  limits: IntakeLimits;
  shutdownTimeoutMs: number;
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

export interface DiscoverySettings {
  /** Empty: every namespace. */
  namespaces: string[];
  labelSelector: string;
  /** This gateway's node (NODE_NAME, from the downward API): its endpoints are preferred. */
  nodeName: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Every variable the gateway reads, with its default and meaning. The README's table is this
 * list; `polku serve --help` prints it.
 */
export const ENV_VARIABLES = [
  ['POLKU_GRPC_ADDR', '0.0.0.0:50051', 'gRPC listen address (Gateway, health, reflection)'],
  ['POLKU_METRICS_ADDR', '0.0.0.0:9090', 'HTTP listen address for /metrics, /healthz, /readyz'],
  ['POLKU_LOG_LEVEL', 'info', `log level: ${LOG_LEVELS.join(', ')}`],
  ['POLKU_CONFIG', '(embedded default)', 'pipeline module (.ts/.js); --config wins over it'],
  ['POLKU_BUFFER_CAPACITY', String(DEFAULT_BUFFER.capacity), 'most events buffered'],
  ['POLKU_BUFFER_MAX_BYTES', String(DEFAULT_BUFFER.maxBytes), 'most bytes buffered (approximate event sizes)'],
  ['POLKU_OVERFLOW_POLICY', DEFAULT_BUFFER.overflow, `when the buffer is full: ${OVERFLOW_POLICIES.join(', ')}`],
  ['POLKU_BATCH_SIZE', String(DEFAULT_DELIVERY.batchSize), 'events per emitter batch'],
  ['POLKU_FLUSH_INTERVAL_MS', String(DEFAULT_DELIVERY.flushIntervalMs), 'longest wait before a partial batch is sent'],
  ['POLKU_EMIT_MAX_ATTEMPTS', String(DEFAULT_DELIVERY.maxAttempts), 'attempts per event on retryable emit failures'],
  ['POLKU_SHUTDOWN_TIMEOUT_MS', '10000', 'how long SIGTERM waits for the buffer to drain'],
  ['POLKU_MAX_MESSAGE_BYTES', String(DEFAULT_LIMITS.maxMessageBytes), 'largest gRPC message accepted'],
  ['POLKU_MAX_BATCH_EVENTS', String(DEFAULT_LIMITS.maxBatchEvents), 'most events in one batch'],
  ['POLKU_MAX_PAYLOAD_BYTES', String(DEFAULT_LIMITS.maxPayloadBytes), 'largest event payload'],
  ['POLKU_MAX_METADATA_BYTES', String(DEFAULT_LIMITS.maxMetadataBytes), 'largest event metadata (keys + values)'],
  ['POLKU_METRICS_MAX_SOURCES', '50', 'distinct sources with their own metric series; the rest are "other"'],
  ['POLKU_DURABLE', 'false', 'true: commit events to a log on disk before acking (at-least-once across restarts)'],
  ['POLKU_DATA_DIR', '/var/lib/polku', 'durable mode: where the log, cursors and dead letters live'],
  ['POLKU_DURABLE_MAX_BYTES', String(1024 * 1024 * 1024), 'durable mode: log size bound; full of undelivered events → STORAGE_FULL'],
  [
    'POLKU_IDEMPOTENCY_MAX_KEYS',
    String(DURABLE_DEFAULTS.idempotencyMaxKeys),
    'durable mode: idempotency keys remembered (~90 B each, outside the JS heap); resends of older ones are stored again',
  ],
  ['POLKU_REGISTRY', 'on', 'on: serve polku.v1.PluginRegistry (plugins register themselves); off: static and discovered plugins only'],
  ['POLKU_REGISTRY_TOKEN', '(none)', 'token plugins must send (authorization: Bearer) to register, heartbeat, unregister'],
  ['POLKU_REGISTRY_HEARTBEAT_MS', '5000', 'heartbeat period plugins are told to keep'],
  ['POLKU_REGISTRY_MISSED_BEATS', '3', 'heartbeats missed in a row before a plugin leaves the table'],
  ['POLKU_REGISTRY_HEALTH_INTERVAL_MS', '5000', "how often each plugin's Health is checked (2 failures in a row: out of routing)"],
  ['POLKU_REGISTRY_MAX_PLUGINS', '64', 'registered + discovered plugins at most'],
  ['POLKU_REGISTRY_ALLOWLIST', DEFAULT_ALLOWLIST.join(','), 'addresses the gateway may dial: CIDRs, IPs, host names, *.suffix'],
  ['POLKU_REGISTRY_REGISTER_RATE', '10', 'Register calls per second (token bucket); more: RESOURCE_EXHAUSTED'],
  ['POLKU_REGISTRY_REGISTER_BURST', '20', 'Register calls at once (token bucket size)'],
  ['POLKU_DISCOVERY', 'off', 'kubernetes: discover plugins from labelled Services (the chart turns it on)'],
  ['POLKU_DISCOVERY_NAMESPACES', '(all)', 'discovery: comma-separated namespaces to watch'],
  ['POLKU_DISCOVERY_LABEL_SELECTOR', 'polku.io/plugin', 'discovery: label selector for plugin Services'],
  ['NODE_NAME', '(none)', 'discovery: this node; a plugin endpoint on it is dialled directly'],
] as const;

/**
 * Reads the settings from `env`. Every bad value is reported at once, each naming its variable,
 * in one POLKU_ERR_ENV_INVALID error; start-up stops there.
 */
export function settingsFromEnv(env: Env = process.env): GatewaySettings {
  const problems: string[] = [];
  const read = <T>(name: string, fallback: T, parse: (raw: string) => T | string): T => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const parsed = parse(raw.trim());
    if (typeof parsed === 'string' && typeof fallback !== 'string') {
      problems.push(`${name}=${JSON.stringify(raw)}: ${parsed}`);
      return fallback;
    }
    return parsed as T;
  };
  const int = (min: number) => (raw: string) => {
    if (!/^\d+$/.test(raw)) return `must be a whole number (${min} or more)`;
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= min ? n : `must be a whole number (${min} or more)`;
  };
  const address = (name: string, fallback: ListenAddress) =>
    read<ListenAddress>(name, fallback, (raw) => parseAddress(raw) ?? 'must be host:port, e.g. 0.0.0.0:50051');
  const oneOf = <T extends string>(name: string, fallback: T, allowed: readonly T[]): T => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name}=${JSON.stringify(raw)}: must be one of ${allowed.join(', ')}`);
    return fallback;
  };

  const settings: GatewaySettings = {
    grpcAddr: address('POLKU_GRPC_ADDR', { host: '0.0.0.0', port: 50051 }),
    metricsAddr: address('POLKU_METRICS_ADDR', { host: '0.0.0.0', port: 9090 }),
    logLevel: oneOf('POLKU_LOG_LEVEL', 'info', LOG_LEVELS),
    buffer: {
      capacity: read('POLKU_BUFFER_CAPACITY', DEFAULT_BUFFER.capacity, int(1)),
      maxBytes: read('POLKU_BUFFER_MAX_BYTES', DEFAULT_BUFFER.maxBytes, int(1)),
      overflow: oneOf<OverflowPolicy>('POLKU_OVERFLOW_POLICY', DEFAULT_BUFFER.overflow, OVERFLOW_POLICIES),
    },
    delivery: {
      batchSize: read('POLKU_BATCH_SIZE', DEFAULT_DELIVERY.batchSize, int(1)),
      flushIntervalMs: read('POLKU_FLUSH_INTERVAL_MS', DEFAULT_DELIVERY.flushIntervalMs, int(0)),
      maxAttempts: read('POLKU_EMIT_MAX_ATTEMPTS', DEFAULT_DELIVERY.maxAttempts, int(1)),
    },
    limits: {
      maxMessageBytes: read('POLKU_MAX_MESSAGE_BYTES', DEFAULT_LIMITS.maxMessageBytes, int(1024)),
      maxBatchEvents: read('POLKU_MAX_BATCH_EVENTS', DEFAULT_LIMITS.maxBatchEvents, int(1)),
      maxPayloadBytes: read('POLKU_MAX_PAYLOAD_BYTES', DEFAULT_LIMITS.maxPayloadBytes, int(1)),
      maxMetadataBytes: read('POLKU_MAX_METADATA_BYTES', DEFAULT_LIMITS.maxMetadataBytes, int(1)),
      maxIdLength: DEFAULT_LIMITS.maxIdLength,
    },
    shutdownTimeoutMs: read('POLKU_SHUTDOWN_TIMEOUT_MS', 10_000, int(0)),
    maxSourceLabels: read('POLKU_METRICS_MAX_SOURCES', 50, int(1)),
    configPath: env['POLKU_CONFIG']?.trim() || undefined,
    durable:
      oneOf('POLKU_DURABLE', 'false', ['true', 'false']) === 'true'
        ? {
            dir: env['POLKU_DATA_DIR']?.trim() || '/var/lib/polku',
            maxBytes: read('POLKU_DURABLE_MAX_BYTES', 1024 * 1024 * 1024, int(1024 * 1024)),
            idempotencyMaxKeys: read('POLKU_IDEMPOTENCY_MAX_KEYS', DURABLE_DEFAULTS.idempotencyMaxKeys, int(1)),
          }
        : undefined,
    registry: {
      serve: oneOf('POLKU_REGISTRY', 'on', ['on', 'off']) === 'on',
      token: env['POLKU_REGISTRY_TOKEN']?.trim() || undefined,
      heartbeatIntervalMs: read('POLKU_REGISTRY_HEARTBEAT_MS', 5_000, int(10)),
      missedBeats: read('POLKU_REGISTRY_MISSED_BEATS', 3, int(1)),
      healthIntervalMs: read('POLKU_REGISTRY_HEALTH_INTERVAL_MS', 5_000, int(10)),
      maxPlugins: read('POLKU_REGISTRY_MAX_PLUGINS', 64, int(1)),
      allowlist: read('POLKU_REGISTRY_ALLOWLIST', [...DEFAULT_ALLOWLIST], (raw) => {
        const entries = raw
          .split(',')
          .map((e) => e.trim())
          .filter((e) => e !== '');
        const bad = allowlistProblems(entries);
        if (entries.length === 0) return 'must list at least one CIDR, IP address or host name';
        return bad.length === 0 ? entries : `${bad.map((b) => JSON.stringify(b)).join(', ')} is not a CIDR, an IP address or a host name`;
      }),
      registerRatePerSecond: read('POLKU_REGISTRY_REGISTER_RATE', 10, int(1)),
      registerBurst: read('POLKU_REGISTRY_REGISTER_BURST', 20, int(1)),
    },
    discovery:
      oneOf('POLKU_DISCOVERY', 'off', ['off', 'kubernetes']) === 'kubernetes'
        ? {
            namespaces: (env['POLKU_DISCOVERY_NAMESPACES'] ?? '')
              .split(',')
              .map((n) => n.trim())
              .filter((n) => n !== ''),
            labelSelector: env['POLKU_DISCOVERY_LABEL_SELECTOR']?.trim() || 'polku.io/plugin',
            nodeName: env['NODE_NAME']?.trim() || undefined,
          }
        : undefined,
  };
  if (problems.length > 0) {
    throw polkuError('POLKU_ERR_ENV_INVALID', `invalid environment: ${problems.join('; ')}`);
  }
  return settings;
}

/** Parses `host:port`, `[v6]:port` or `:port`; undefined when it is none of them. */
export function parseAddress(raw: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(raw);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Formats an address for grpc-js and logs (`[::1]:50051` for IPv6). */
export function formatAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
