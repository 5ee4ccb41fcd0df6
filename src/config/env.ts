import type { LevelWithSilent } from 'pino';
import type { DeliveryOptions } from '../delivery/emitter-queue.js';
import type { EventBufferOptions } from '../buffer/event-buffer.js';
import { polkuError } from '../errors.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../ingest/intake-rules.js';
import type { LogFormat } from '../observability/logger.js';
import type { ConnectionLimits } from '../server/connection-guard.js';
import { EnvProblem, type ListenAddress } from './env-parsers.js';
import { ENV_TABLE, type EnvVariableSpec } from './env-table.js';
import { loadIdentities, type ConfiguredIdentity } from '../registry/registry-identity.js';
import type { DialTlsOptions, ListenerTlsSettings } from '../security/tls.js';
import type { HttpSettings } from '../receive/http/http-settings.js';
import type { OtlpSettings } from '../receive/otlp/otlp-settings.js';
import { envEmitterSettings, type EnvEmitterSettings } from '../emit/env-emitters.js';

export { formatAddress, parseAddress, type ListenAddress } from './env-parsers.js';

/** The gateway's settings from the environment. */
export interface GatewaySettings {
  grpcAddr: ListenAddress;
  metricsAddr: ListenAddress;
  logLevel: LevelWithSilent;
  /** POLKU_LOG_FORMAT: JSON lines or readable ones. */
  logFormat: LogFormat;
  /** POLKU_EMIT_GRPC_*: forward every event to these gateways (upstream's settings); absent: no forwarding. */
  forward: ForwardSettings | undefined;
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
  /** The admin surfaces' token (POLKU_ADMIN_TOKEN), wanted besides a loopback caller. */
  adminToken: string | undefined;
  /** POLKU_TENANTS_FILE: the tenant table's file, read at start and again when it changes. */
  tenantsFile: string | undefined;
  /** Durable mode's settings when POLKU_DURABLE=true. */
  durable:
    | {
        dir: string;
        maxBytes: number;
        idempotencyMaxKeys: number;
        streamWindowBatches: number;
        streamWindowBytes: number;
      }
    | undefined;
  /** The live plugin table and its PluginRegistry service (POLKU_REGISTRY_*). */
  registry: RegistrySettings;
  /** Kubernetes Service discovery when POLKU_DISCOVERY=kubernetes. */
  discovery: DiscoverySettings | undefined;
  /** The Kubernetes enricher, present when POLKU_K8S_ENRICH=true. */
  kubernetesEnricher?: KubernetesEnricherSettings;
  /** TLS on the gRPC and metrics ports (POLKU_TLS_*); absent: plaintext. */
  tls: ListenerTlsSettings | undefined;
  /** TLS for dialling plugins (POLKU_PLUGIN_TLS_*); absent: plaintext. */
  pluginTls: DialTlsOptions | undefined;
  /** OpenTelemetry logs in (POLKU_OTLP_*): its ports (undefined: off) and mapping. */
  otlp: OtlpSettings;
  /** The HTTP front door (POLKU_HTTP_*): its address (undefined: off) and bounds. */
  http: HttpSettings;
  /** Emitters the environment adds to the pipeline (POLKU_EMIT_OTLP_*, POLKU_EMIT_AHTI_ENDPOINT). */
  emitOut: EnvEmitterSettings;
}

/** Upstream POLKU's forwarding settings: a gRPC emitter to other gateways. */
export interface ForwardSettings {
  /** POLKU_EMIT_GRPC_ENDPOINTS: `host:port`, `http://host:port` or `https://host:port`, at least one. */
  endpoints: string[];
  /** POLKU_EMIT_GRPC_LAZY: contact them on the first event rather than at start. */
  lazy: boolean;
}

/** The live plugin table's settings (POLKU_REGISTRY_*). */
export interface RegistrySettings {
  /** Serve polku.v1.PluginRegistry (POLKU_REGISTRY, decided with the listen address and the identities). */
  serve: boolean;
  /** Why the registry is served or not, for the start-up log. */
  decision: string;
  token: string | undefined;
  /** POLKU_REGISTRY_IDENTITIES_FILE's identities (token digests and allowances). */
  identities: ConfiguredIdentity[];
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

/** The Kubernetes enricher's settings (POLKU_K8S_ENRICH_*, NODE_NAME). */
export interface KubernetesEnricherSettings {
  nodeName: string;
  /** `all`, or the label keys to copy. */
  labels: 'all' | string[];
  maxPods: number;
  deleteGraceMs: number;
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

  let identities: ConfiguredIdentity[] = [];
  const identitiesFile = get('registryIdentities');
  if (identitiesFile !== undefined) {
    try {
      identities = loadIdentities(identitiesFile);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const settings: GatewaySettings = {
    grpcAddr: { ...get('grpcAddr') },
    metricsAddr: { ...get('metricsAddr') },
    logLevel: get('logLevel'),
    logFormat: get('logFormat'),
    forward: get('emitGrpcEndpoints').length > 0 ? { endpoints: [...get('emitGrpcEndpoints')], lazy: get('emitGrpcLazy') } : undefined,
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
    adminToken: get('adminToken'),
    tenantsFile: get('tenantsFile'),
    durable: get('durable')
      ? {
          dir: get('dataDir'),
          maxBytes: get('durableMaxBytes'),
          idempotencyMaxKeys: get('idempotencyMaxKeys'),
          streamWindowBatches: get('durableStreamWindowBatches'),
          streamWindowBytes: get('durableStreamWindowBytes'),
        }
      : undefined,
    registry: {
      ...registryExposure(get('registry'), get('registryToken'), identities, get('registryAllowOpen'), get('grpcAddr')),
      token: get('registryToken'),
      identities,
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
    tls: undefined,
    pluginTls: undefined,
    otlp: {
      grpcAddr: get('otlpGrpcAddr'),
      httpAddr: get('otlpHttpAddr'),
      grpcServer: get('otlpGrpcServer'),
      eventTypeAttribute: get('otlpEventTypeAttribute'),
      idAttribute: get('otlpIdAttribute'),
    },
    http: { addr: get('httpAddr'), maxBodyBytes: get('httpMaxBodyBytes'), requestTimeoutMs: get('httpRequestTimeoutMs') },
    emitOut: envEmitterSettings(
      {
        otlpEndpoint: get('emitOtlpEndpoint'),
        otlpProtocol: get('emitOtlpProtocol'),
        otlpCompression: get('emitOtlpCompression'),
        otlpHeaders: get('emitOtlpHeaders'),
        ahtiEndpoint: get('emitAhtiEndpoint'),
      },
      problems,
    ),
  };
  if (get('k8sEnrich')) {
    const nodeName = get('nodeName');
    const labels = get('k8sEnrichLabels');
    if (nodeName === undefined)
      problems.push('POLKU_K8S_ENRICH=true needs NODE_NAME (the node whose pods to watch; the chart sets it from spec.nodeName)');
    else {
      settings.kubernetesEnricher = {
        nodeName,
        labels: labels.length > 0 ? [...labels] : 'all',
        maxPods: get('k8sEnrichMaxPods'),
        deleteGraceMs: get('k8sEnrichDeleteGraceMs'),
      };
    }
  }
  settings.tls = listenerTls(get('tlsCertFile'), get('tlsKeyFile'), get('tlsClientCaFile'), get('tlsReloadIntervalMs'), problems);
  settings.pluginTls = pluginTls(get('pluginTlsCaFile'), get('pluginTlsCertFile'), get('pluginTlsKeyFile'), problems);
  if (problems.length > 0) {
    throw polkuError('POLKU_ERR_ENV_INVALID', `invalid environment: ${problems.join('; ')}`);
  }
  return settings;
}

/** Whether a listen host is loopback only. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Whether to serve the PluginRegistry. An open registry (no token, no identities) lets whoever
 * reaches the port register plugins, so it is served beyond loopback only when asked for twice:
 * POLKU_REGISTRY=on and POLKU_REGISTRY_ALLOW_OPEN=true. `auto` (the default) serves it when it is
 * guarded or loopback-only, and otherwise leaves it off (the quick start still starts).
 */
export function registryExposure(
  mode: 'auto' | 'on' | 'off',
  token: string | undefined,
  identities: readonly ConfiguredIdentity[],
  allowOpen: boolean,
  grpcAddr: ListenAddress,
): { serve: boolean; decision: string } {
  if (mode === 'off') return { serve: false, decision: 'off (POLKU_REGISTRY=off)' };
  const guarded = token !== undefined || identities.length > 0;
  const loopback = isLoopbackHost(grpcAddr.host);
  if (guarded) return { serve: true, decision: 'on: every call needs a token (POLKU_REGISTRY_TOKEN / POLKU_REGISTRY_IDENTITIES_FILE)' };
  if (loopback) return { serve: true, decision: `on, open: the gRPC port listens on loopback only (${grpcAddr.host})` };
  if (allowOpen && mode === 'on')
    return { serve: true, decision: 'on, OPEN to whoever reaches the gRPC port (POLKU_REGISTRY_ALLOW_OPEN=true)' };
  if (mode === 'auto') {
    return {
      serve: false,
      decision: `off: no POLKU_REGISTRY_TOKEN or POLKU_REGISTRY_IDENTITIES_FILE, and POLKU_GRPC_ADDR (${grpcAddr.host}) is not loopback`,
    };
  }
  throw polkuError(
    'POLKU_ERR_REGISTRY_OPEN',
    `POLKU_REGISTRY=on with neither POLKU_REGISTRY_TOKEN nor POLKU_REGISTRY_IDENTITIES_FILE would let anyone who reaches ` +
      `POLKU_GRPC_ADDR (${grpcAddr.host}) register plugins: set a token, listen on loopback, or set POLKU_REGISTRY_ALLOW_OPEN=true`,
  );
}

/** POLKU_TLS_*: a certificate and key make TLS, a client CA beside them mTLS; anything else half-set is a problem. */
function listenerTls(
  certFile: string | undefined,
  keyFile: string | undefined,
  clientCaFile: string | undefined,
  reloadIntervalMs: number,
  problems: string[],
): ListenerTlsSettings | undefined {
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) problems.push('POLKU_TLS_CLIENT_CA_FILE is set without POLKU_TLS_CERT_FILE and POLKU_TLS_KEY_FILE');
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    problems.push(
      `${certFile === undefined ? 'POLKU_TLS_KEY_FILE' : 'POLKU_TLS_CERT_FILE'} is set without ${certFile === undefined ? 'POLKU_TLS_CERT_FILE' : 'POLKU_TLS_KEY_FILE'}`,
    );
    return undefined;
  }
  return { certFile, keyFile, clientCaFile, reloadIntervalMs };
}

/** POLKU_PLUGIN_TLS_*: any of them set dials plugins with TLS; a certificate needs its key. */
function pluginTls(
  caFile: string | undefined,
  certFile: string | undefined,
  keyFile: string | undefined,
  problems: string[],
): DialTlsOptions | undefined {
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push(
      `${certFile === undefined ? 'POLKU_PLUGIN_TLS_KEY_FILE' : 'POLKU_PLUGIN_TLS_CERT_FILE'} is set without ${certFile === undefined ? 'POLKU_PLUGIN_TLS_CERT_FILE' : 'POLKU_PLUGIN_TLS_KEY_FILE'}`,
    );
    return undefined;
  }
  return { caFile, certFile, keyFile };
}
