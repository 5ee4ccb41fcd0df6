import { DURABLE_DEFAULTS } from '../buffer/durable/durable-store.js';
import { OVERFLOW_POLICIES } from '../buffer/event-buffer.js';
import { DEFAULT_LABEL_SELECTOR } from '../discovery/service-plugin.js';
import { DEFAULT_BUFFER, DEFAULT_DELIVERY } from '../hub/builder.js';
import { DEFAULT_MAX_SOURCE_LABELS } from '../hub/hub-metrics.js';
import { DEFAULT_LIMITS } from '../ingest/intake-rules.js';
import { DEFAULT_DELETE_GRACE_MS, DEFAULT_MAX_PODS } from '../middleware/kubernetes/pod-index.js';
import { DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, LOG_FORMATS } from '../observability/logger.js';
import { DEFAULT_CONNECTION_LIMITS } from '../server/connection-guard.js';
import { DEFAULT_METRICS_MAX_CONNECTIONS } from '../server/http-server.js';
import { DEFAULT_ALLOWLIST } from '../registry/allowlist.js';
import { DEFAULT_REGISTER_BURST, DEFAULT_REGISTER_RATE } from '../registry/registry-service.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_MAX_PLUGINS, DEFAULT_MISSED_BEATS } from '../registry/table-options.js';
import { DEFAULT_TLS_RELOAD_INTERVAL_MS } from '../security/tls.js';
import { headerList } from '../emit/env-emitters.js';
import {
  DEFAULT_EVENT_TYPE_ATTRIBUTE,
  DEFAULT_ID_ATTRIBUTE,
  DEFAULT_OTLP_GRPC_ADDR,
  DEFAULT_OTLP_HTTP_ADDR,
  DEFAULT_OTLP_GRPC_SERVER,
  OTLP_GRPC_SERVERS,
} from '../receive/otlp/otlp-settings.js';
import { DEFAULT_HTTP_ADDR, DEFAULT_HTTP_MAX_BODY_BYTES, DEFAULT_HTTP_REQUEST_TIMEOUT_MS } from '../receive/http/http-settings.js';
import {
  allowlist,
  flag,
  grpcEndpoints,
  list,
  listenAddress,
  listenAddressOrOff,
  logLevel,
  oneOf,
  optionalText,
  text,
  wholeNumber,
  type EnvParser,
  type ListenAddress,
} from './env-parsers.js';

// Defaults that only the environment has: the code that uses the others owns them.
export const DEFAULT_GRPC_ADDR: ListenAddress = Object.freeze({ host: '0.0.0.0', port: 50051 });
export const DEFAULT_METRICS_ADDR: ListenAddress = Object.freeze({ host: '0.0.0.0', port: 9090 });
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export const DEFAULT_DATA_DIR = '/var/lib/polku';

/** One environment variable: everything the reader, `polku --help` and the README need. */
export interface EnvVariableSpec<T> {
  readonly name: string;
  /** The value when the variable is unset or blank. */
  readonly default: T;
  readonly parser: EnvParser<T>;
  readonly description: string;
  /** The default as the help shows it: the parser's rendering, or words for no value (`(none)`). */
  readonly shownDefault: string;
}

const variable = <T>(name: string, fallback: T, parser: EnvParser<T>, description: string, shownDefault?: string): EnvVariableSpec<T> => ({
  name,
  default: fallback,
  parser,
  description,
  shownDefault: shownDefault ?? parser.show(fallback),
});

/**
 * Every variable the gateway reads, once, in the order the help lists them. `settingsFromEnv`
 * reads them by key; `ENV_VARIABLES` (the help and the README's tables) is this table printed.
 */
export const ENV_TABLE = {
  grpcAddr: variable('POLKU_GRPC_ADDR', DEFAULT_GRPC_ADDR, listenAddress, 'gRPC listen address (Gateway, health, reflection)'),
  metricsAddr: variable('POLKU_METRICS_ADDR', DEFAULT_METRICS_ADDR, listenAddress, 'HTTP listen address for /metrics, /healthz, /readyz'),
  // The HTTP front door (README, "HTTP ingest").
  httpAddr: variable(
    'POLKU_HTTP_ADDR',
    DEFAULT_HTTP_ADDR,
    listenAddressOrOff,
    'HTTP front door listen address (POST /v1/events); off: not served',
  ),
  httpMaxBodyBytes: variable(
    'POLKU_HTTP_MAX_BODY_BYTES',
    DEFAULT_HTTP_MAX_BODY_BYTES,
    wholeNumber(1024),
    'HTTP front door: largest request body, as sent and once gzip is inflated (413 past it)',
  ),
  httpRequestTimeoutMs: variable(
    'POLKU_HTTP_REQUEST_TIMEOUT_MS',
    DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
    wholeNumber(1000),
    'HTTP front door: a whole request (headers and body) must arrive within this (408 past it)',
  ),
  // OpenTelemetry logs in (README, "OpenTelemetry (OTLP) in").
  otlpGrpcAddr: variable(
    'POLKU_OTLP_GRPC_ADDR',
    DEFAULT_OTLP_GRPC_ADDR,
    listenAddressOrOff,
    'OTLP/gRPC listen address (LogsService/Export); off: not served',
  ),
  otlpHttpAddr: variable(
    'POLKU_OTLP_HTTP_ADDR',
    DEFAULT_OTLP_HTTP_ADDR,
    listenAddressOrOff,
    'OTLP/HTTP listen address (POST /v1/logs); off: not served',
  ),
  otlpGrpcServer: variable(
    'POLKU_OTLP_GRPC_SERVER',
    DEFAULT_OTLP_GRPC_SERVER,
    oneOf(OTLP_GRPC_SERVERS),
    'OTLP/gRPC: what serves the port: http2 (Export and health on node:http2, half the CPU per call) or grpc-js (with reflection)',
  ),
  otlpEventTypeAttribute: variable(
    'POLKU_OTLP_EVENT_TYPE_ATTRIBUTE',
    DEFAULT_EVENT_TYPE_ATTRIBUTE,
    text,
    "OTLP: the log record attribute whose string value is the event's event_type when the record has no event_name",
  ),
  otlpIdAttribute: variable(
    'POLKU_OTLP_ID_ATTRIBUTE',
    DEFAULT_ID_ATTRIBUTE,
    text,
    "OTLP: the log record attribute whose string value is the event's id (absent: a ULID)",
  ),
  tlsCertFile: variable(
    'POLKU_TLS_CERT_FILE',
    undefined,
    optionalText,
    'TLS: server certificate (PEM) for the gRPC and metrics ports; with the key, both serve TLS',
    '(none: plaintext)',
  ),
  tlsKeyFile: variable('POLKU_TLS_KEY_FILE', undefined, optionalText, 'TLS: private key (PEM) of POLKU_TLS_CERT_FILE', '(none)'),
  tlsClientCaFile: variable(
    'POLKU_TLS_CLIENT_CA_FILE',
    undefined,
    optionalText,
    'TLS: CA bundle (PEM); set, gRPC clients must present a certificate it verifies (mTLS)',
    '(none)',
  ),
  tlsReloadIntervalMs: variable(
    'POLKU_TLS_RELOAD_INTERVAL_MS',
    DEFAULT_TLS_RELOAD_INTERVAL_MS,
    wholeNumber(100),
    'TLS: how often the certificate files are read again; rotated ones serve new connections',
  ),
  pluginTlsCaFile: variable(
    'POLKU_PLUGIN_TLS_CA_FILE',
    undefined,
    optionalText,
    'TLS to plugins: CA bundle verifying plugins; set, plugins are dialled with TLS',
    '(none: plaintext)',
  ),
  pluginTlsCertFile: variable(
    'POLKU_PLUGIN_TLS_CERT_FILE',
    undefined,
    optionalText,
    'TLS to plugins: client certificate (PEM) the gateway presents',
    '(none)',
  ),
  pluginTlsKeyFile: variable(
    'POLKU_PLUGIN_TLS_KEY_FILE',
    undefined,
    optionalText,
    'TLS to plugins: private key of POLKU_PLUGIN_TLS_CERT_FILE',
    '(none)',
  ),
  logLevel: variable(
    'POLKU_LOG_LEVEL',
    DEFAULT_LOG_LEVEL,
    logLevel,
    'log level: trace, debug, info, warn, error, fatal, silent in any case, also warning, off, none, or a filter like info,polku=debug',
  ),
  logFormat: variable(
    'POLKU_LOG_FORMAT',
    DEFAULT_LOG_FORMAT,
    oneOf(LOG_FORMATS),
    'log lines: json (one object a line) or pretty (readable, for people)',
  ),
  configPath: variable('POLKU_CONFIG', undefined, optionalText, 'pipeline module (.ts/.js); --config wins over it', '(embedded default)'),
  bufferCapacity: variable('POLKU_BUFFER_CAPACITY', DEFAULT_BUFFER.capacity, wholeNumber(1), 'most events buffered'),
  bufferMaxBytes: variable(
    'POLKU_BUFFER_MAX_BYTES',
    DEFAULT_BUFFER.maxBytes,
    wholeNumber(1),
    'most bytes buffered (approximate event sizes)',
  ),
  overflow: variable(
    'POLKU_OVERFLOW_POLICY',
    DEFAULT_BUFFER.overflow,
    oneOf(OVERFLOW_POLICIES),
    `when the buffer is full: ${OVERFLOW_POLICIES.join(', ')}`,
  ),
  batchSize: variable('POLKU_BATCH_SIZE', DEFAULT_DELIVERY.batchSize, wholeNumber(1), 'events per emitter batch'),
  flushIntervalMs: variable(
    'POLKU_FLUSH_INTERVAL_MS',
    DEFAULT_DELIVERY.flushIntervalMs,
    wholeNumber(0),
    'longest wait before a partial batch is sent',
  ),
  emitMaxAttempts: variable(
    'POLKU_EMIT_MAX_ATTEMPTS',
    DEFAULT_DELIVERY.maxAttempts,
    wholeNumber(1),
    'attempts per event on retryable emit failures',
  ),
  // Upstream POLKU's forwarding settings: a gRPC emitter named "grpc" added to the pipeline.
  emitGrpcEndpoints: variable(
    'POLKU_EMIT_GRPC_ENDPOINTS',
    [],
    grpcEndpoints,
    'forward every event to these gateways (comma-separated host:port or http://host:port): adds the emitter "grpc"',
    '(none: no forwarding)',
  ),
  emitGrpcLazy: variable(
    'POLKU_EMIT_GRPC_LAZY',
    false,
    flag('true', 'false'),
    'true: contact POLKU_EMIT_GRPC_ENDPOINTS on the first event; false: at start (an unreachable one is logged and retried)',
  ),
  // OpenTelemetry and AHTI out (README, "OpenTelemetry (OTLP) out" and "AHTI out"): emitters added to the pipeline.
  emitOtlpEndpoint: variable(
    'POLKU_EMIT_OTLP_ENDPOINT',
    undefined,
    optionalText,
    'adds the OtlpEmitter `otlp`: gRPC host:port (https:// for TLS) or the HTTP base URL (/v1/logs is appended)',
    '(none)',
  ),
  emitOtlpProtocol: variable(
    'POLKU_EMIT_OTLP_PROTOCOL',
    'grpc' as const,
    oneOf(['grpc', 'http'] as const),
    'OtlpEmitter protocol: grpc or http',
  ),
  emitOtlpCompression: variable(
    'POLKU_EMIT_OTLP_COMPRESSION',
    'none' as const,
    oneOf(['none', 'gzip'] as const),
    'OtlpEmitter request compression: none or gzip',
  ),
  emitOtlpHeaders: variable(
    'POLKU_EMIT_OTLP_HEADERS',
    {},
    headerList,
    'OtlpEmitter headers as key=value,key=value (URL-encoded values), e.g. authorization=Bearer%20t',
  ),
  emitAhtiEndpoint: variable(
    'POLKU_EMIT_AHTI_ENDPOINT',
    undefined,
    optionalText,
    'adds the AhtiEmitter `ahti`: AHTI host:port (https:// for TLS)',
    '(none)',
  ),
  shutdownTimeoutMs: variable(
    'POLKU_SHUTDOWN_TIMEOUT_MS',
    DEFAULT_SHUTDOWN_TIMEOUT_MS,
    wholeNumber(0),
    'how long SIGTERM waits for the buffer to drain',
  ),
  // Connection budgets: the gRPC port's and the metrics port's (docs/security.md, "Budgets").
  maxConnections: variable(
    'POLKU_MAX_CONNECTIONS',
    DEFAULT_CONNECTION_LIMITS.maxConnections,
    wholeNumber(1),
    'most TCP connections open on the gRPC port; beyond it the oldest without a preface, then the longest idle, is closed',
  ),
  handshakeTimeoutMs: variable(
    'POLKU_HANDSHAKE_TIMEOUT_MS',
    DEFAULT_CONNECTION_LIMITS.handshakeTimeoutMs,
    wholeNumber(100),
    'a gRPC connection that has not sent the HTTP/2 preface by then is closed',
  ),
  idleTimeoutMs: variable(
    'POLKU_IDLE_TIMEOUT_MS',
    DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
    wholeNumber(0),
    'a gRPC connection that sends nothing (or holds no call) this long is closed; 0: never',
  ),
  maxStreamsPerConnection: variable(
    'POLKU_MAX_STREAMS_PER_CONNECTION',
    DEFAULT_CONNECTION_LIMITS.maxStreamsPerConnection,
    wholeNumber(1),
    'calls open at once on one gRPC connection (HTTP/2 max concurrent streams)',
  ),
  metricsMaxConnections: variable(
    'POLKU_METRICS_MAX_CONNECTIONS',
    DEFAULT_METRICS_MAX_CONNECTIONS,
    wholeNumber(1),
    "most connections open on the metrics and probes port, apart from the gRPC port's",
  ),
  // Below 1 KiB not even a batch's envelope fits.
  maxMessageBytes: variable('POLKU_MAX_MESSAGE_BYTES', DEFAULT_LIMITS.maxMessageBytes, wholeNumber(1024), 'largest gRPC message accepted'),
  maxBatchEvents: variable('POLKU_MAX_BATCH_EVENTS', DEFAULT_LIMITS.maxBatchEvents, wholeNumber(1), 'most events in one batch'),
  maxPayloadBytes: variable('POLKU_MAX_PAYLOAD_BYTES', DEFAULT_LIMITS.maxPayloadBytes, wholeNumber(1), 'largest event payload'),
  maxMetadataBytes: variable(
    'POLKU_MAX_METADATA_BYTES',
    DEFAULT_LIMITS.maxMetadataBytes,
    wholeNumber(1),
    'largest event metadata (keys + values)',
  ),
  maxEventBytes: variable(
    'POLKU_MAX_EVENT_BYTES',
    DEFAULT_LIMITS.maxEventBytes,
    wholeNumber(64),
    'largest single event as sent, checked while decoding',
  ),
  maxJsonDepth: variable('POLKU_MAX_JSON_DEPTH', DEFAULT_LIMITS.maxJsonDepth, wholeNumber(1), 'deepest nesting of one JSON event'),
  maxSourceLabels: variable(
    'POLKU_METRICS_MAX_SOURCES',
    DEFAULT_MAX_SOURCE_LABELS,
    wholeNumber(1),
    'distinct sources with their own metric series; the rest are "other"',
  ),
  durable: variable(
    'POLKU_DURABLE',
    false,
    flag('true', 'false'),
    'true: commit events to a log on disk before acking (at-least-once across restarts)',
  ),
  dataDir: variable('POLKU_DATA_DIR', DEFAULT_DATA_DIR, text, 'durable mode: where the log, cursors and dead letters live'),
  // A log smaller than 1 MiB could not hold one batch of large events.
  durableMaxBytes: variable(
    'POLKU_DURABLE_MAX_BYTES',
    DURABLE_DEFAULTS.maxBytes,
    wholeNumber(1024 * 1024),
    'durable mode: log size bound; full of undelivered events → STORAGE_FULL',
  ),
  idempotencyMaxKeys: variable(
    'POLKU_IDEMPOTENCY_MAX_KEYS',
    DURABLE_DEFAULTS.idempotencyMaxKeys,
    wholeNumber(1),
    'durable mode: idempotency keys remembered (~90 B each, outside the JS heap); resends of older ones are stored again',
  ),
  durableStreamWindowBatches: variable(
    'POLKU_DURABLE_STREAM_WINDOW_BATCHES',
    DURABLE_DEFAULTS.streamWindowBatches,
    wholeNumber(1),
    "durable mode: a stream's batches waiting for their commit at once (read ahead into the next group commit; Acks stay in order)",
  ),
  durableStreamWindowBytes: variable(
    'POLKU_DURABLE_STREAM_WINDOW_BYTES',
    DURABLE_DEFAULTS.streamWindowBytes,
    wholeNumber(1),
    "durable mode: bytes of a stream's batches waiting for their commit, at most (one batch always fits)",
  ),
  // Tenants (README, "Tenants"): API keys, quotas, buffer shares.
  tenantsFile: variable(
    'POLKU_TENANTS_FILE',
    undefined,
    optionalText,
    'JSON file of tenants ({"tenants":[...]}: API key digests, sources, rate, burst, bufferShare); set, every caller needs a key; reloaded when it changes; replaces the module\'s .tenants()',
    '(none: one implicit tenant, no key needed)',
  ),
  adminToken: variable(
    'POLKU_ADMIN_TOKEN',
    undefined,
    optionalText,
    'token the admin endpoints (/admin, polku.v1.Admin) want besides a loopback caller; the CLI sends it from the same variable',
    '(none)',
  ),
  registry: variable(
    'POLKU_REGISTRY',
    'auto',
    oneOf(['auto', 'on', 'off'] as const),
    'serve polku.v1.PluginRegistry: on; off; auto: on when a token or identities are set or gRPC listens on loopback',
  ),
  registryToken: variable(
    'POLKU_REGISTRY_TOKEN',
    undefined,
    optionalText,
    'token plugins must send (authorization: Bearer) to register, heartbeat, unregister',
    '(none)',
  ),
  registryIdentities: variable(
    'POLKU_REGISTRY_IDENTITIES_FILE',
    undefined,
    optionalText,
    'JSON file of registry identities: token digests and the plugin names and sources each may claim',
    '(none)',
  ),
  registryAllowOpen: variable(
    'POLKU_REGISTRY_ALLOW_OPEN',
    false,
    flag('true', 'false'),
    'true: serve the registry without a token or identities on a non-loopback address',
  ),
  heartbeatIntervalMs: variable(
    'POLKU_REGISTRY_HEARTBEAT_MS',
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    wholeNumber(10),
    'heartbeat period plugins are told to keep',
  ),
  missedBeats: variable(
    'POLKU_REGISTRY_MISSED_BEATS',
    DEFAULT_MISSED_BEATS,
    wholeNumber(1),
    'heartbeats missed in a row before a plugin leaves the table',
  ),
  // The table's own default is the heartbeat interval; the environment's is that interval's default.
  healthIntervalMs: variable(
    'POLKU_REGISTRY_HEALTH_INTERVAL_MS',
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    wholeNumber(10),
    "how often each plugin's Health is checked (2 failures in a row: out of routing)",
  ),
  maxPlugins: variable('POLKU_REGISTRY_MAX_PLUGINS', DEFAULT_MAX_PLUGINS, wholeNumber(1), 'registered + discovered plugins at most'),
  allowlist: variable(
    'POLKU_REGISTRY_ALLOWLIST',
    DEFAULT_ALLOWLIST,
    allowlist,
    'addresses the gateway may dial: CIDRs, IPs, host names, *.suffix',
  ),
  registerRate: variable(
    'POLKU_REGISTRY_REGISTER_RATE',
    DEFAULT_REGISTER_RATE,
    wholeNumber(1),
    'Register calls per second (token bucket); more: RESOURCE_EXHAUSTED',
  ),
  registerBurst: variable(
    'POLKU_REGISTRY_REGISTER_BURST',
    DEFAULT_REGISTER_BURST,
    wholeNumber(1),
    'Register calls at once (token bucket size)',
  ),
  discovery: variable(
    'POLKU_DISCOVERY',
    'off',
    oneOf(['off', 'kubernetes'] as const),
    'kubernetes: discover plugins from labelled Services (the chart turns it on)',
  ),
  namespaces: variable('POLKU_DISCOVERY_NAMESPACES', [], list, 'discovery: comma-separated namespaces to watch', '(all)'),
  labelSelector: variable('POLKU_DISCOVERY_LABEL_SELECTOR', DEFAULT_LABEL_SELECTOR, text, 'discovery: label selector for plugin Services'),
  nodeName: variable(
    'NODE_NAME',
    undefined,
    optionalText,
    'this node (downward API): discovery dials plugin endpoints on it directly; the Kubernetes enricher watches its pods',
    '(none)',
  ),
  // The Kubernetes enricher (pod context for events from the node).
  k8sEnrich: variable(
    'POLKU_K8S_ENRICH',
    false,
    flag('true', 'false'),
    'true: add pod labels, owner, node and namespace to events naming a pod (needs NODE_NAME)',
  ),
  k8sEnrichLabels: variable('POLKU_K8S_ENRICH_LABELS', [], list, 'Kubernetes enricher: pod label keys to copy, comma-separated', '(all)'),
  k8sEnrichMaxPods: variable('POLKU_K8S_ENRICH_MAX_PODS', DEFAULT_MAX_PODS, wholeNumber(1), 'Kubernetes enricher: most pods cached'),
  k8sEnrichDeleteGraceMs: variable(
    'POLKU_K8S_ENRICH_DELETE_GRACE_MS',
    DEFAULT_DELETE_GRACE_MS,
    wholeNumber(0),
    'Kubernetes enricher: how long a deleted pod is still found',
  ),
} as const;
