import type { LevelWithSilent } from 'pino';
import type { DeliveryOptions } from '../buffer/emitter-queue.js';
import { OVERFLOW_POLICIES, type EventBufferOptions, type OverflowPolicy } from '../buffer/event-buffer.js';
import { polkuError } from '../errors.js';
import { DEFAULT_BUFFER, DEFAULT_DELIVERY } from '../hub/builder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../ingest/intake-rules.js';
import { LOG_LEVELS } from '../observability/logger.js';

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
