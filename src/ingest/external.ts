import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import { type IngestorPluginClient, type IngestRequest, type IngestResponse } from '../gen/polku/v1/plugin.js';
import { CIRCUIT_BREAKER_OPTION_KEYS, type CircuitBreakerOptions } from '../resilience/circuit-breaker.js';
import { checkPositive, pluginTarget } from '../plugin-client/address.js';
import { ingestorPluginClient } from '../plugin-client/client.js';
import { PluginCaller } from '../plugin-client/plugin-caller.js';
import type { IngestContext, IngestProblem, IngestResult, Ingestor } from './ingestor.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';
import type { ProbeResult } from '../emit/emitter.js';
import { pluginProbe } from '../emit/probe.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_CALL_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_CONCURRENCY = 16;

export interface ExternalIngestorOptions {
  /** Name in logs, metrics (`plugin` label) and Acks. Default `external:<first source>`. */
  name?: string;
  /** Longest wait for the plugin's channel to be ready before a call. Default 5 s. */
  connectTimeoutMs?: number;
  /** Longest a batch waits for the plugin: call slot, connecting and the call. Default 30 s. */
  callTimeoutMs?: number;
  /** Ingest calls in flight at most; more wait their turn (first come, first served). Default 16. */
  maxConcurrency?: number;
  /** When to stop calling a failing plugin for a while. Default: open after 5 failures, for 30 s. */
  breaker?: CircuitBreakerOptions;
}

export interface ExternalIngestorConfig extends ExternalIngestorOptions {
  /** Batch sources this plugin parses. */
  sources: string | readonly string[];
  /** `host:port` or `http://host:port` (plaintext). */
  address: string;
}

/** Every key of {@link ExternalIngestorConfig}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const EXTERNAL_INGESTOR_OPTION_KEYS = optionKeys<ExternalIngestorConfig>({
  name: true,
  sources: true,
  address: true,
  connectTimeoutMs: true,
  callTimeoutMs: true,
  maxConcurrency: true,
  breaker: true,
});

/**
 * An ingestor implemented by a plugin process speaking `polku.v1.IngestorPlugin` over gRPC, in any
 * language. Each raw batch of its sources becomes one `Ingest` call; the events the plugin returns
 * are accepted and each `IngestError` becomes a `PARSE_ERROR` for that part of the input.
 *
 * It never throws and never blocks the event loop. When the plugin cannot be used (not listening,
 * too slow, circuit open, every call slot busy, an answer that does not decode) the batch is
 * refused `INGESTOR_UNAVAILABLE`, which agents retry; the gateway and the agent's stream go on.
 * Connection is lazy and heals itself: a plugin that starts late or restarts is picked up again.
 */
export class ExternalIngestor implements Ingestor {
  readonly name: string;
  readonly sources: readonly string[];
  readonly address: string;
  private readonly callTimeoutMs: number;
  private readonly caller: PluginCaller;
  private readonly client: IngestorPluginClient;

  constructor(config: ExternalIngestorConfig) {
    const sources = typeof config.sources === 'string' ? [config.sources] : [...(config.sources ?? [])];
    this.name = config.name ?? `external:${sources[0] ?? ''}`;
    checkOptionKeys(`ExternalIngestor "${this.name}"`, config, EXTERNAL_INGESTOR_OPTION_KEYS);
    checkOptionKeys(`ExternalIngestor "${this.name}"`, config.breaker, CIRCUIT_BREAKER_OPTION_KEYS, 'breaker.');
    if (sources.length === 0 || sources.some((s) => typeof s !== 'string' || s === '')) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `plugin "${this.name}": sources must be one or more non-empty strings`);
    }
    const target = pluginTarget(this.name, config.address);
    const connectTimeoutMs = config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.callTimeoutMs = config.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const maxConcurrency = config.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    checkPositive(this.name, 'connectTimeoutMs', connectTimeoutMs);
    checkPositive(this.name, 'callTimeoutMs', this.callTimeoutMs);
    checkPositive(this.name, 'maxConcurrency', maxConcurrency, true);
    this.sources = sources;
    this.address = config.address;
    this.client = ingestorPluginClient(target);
    this.caller = new PluginCaller({
      plugin: this.name,
      address: config.address,
      client: this.client,
      connectTimeoutMs,
      maxConcurrency,
      mainMethod: 'Ingest',
      ...(config.breaker ? { breaker: config.breaker } : {}),
    });
  }

  init(ctx: ComponentContext): void {
    this.caller.init(ctx, 'external-ingestor');
  }

  async ingest(ctx: IngestContext, data: Uint8Array): Promise<IngestResult> {
    const request: IngestRequest = { source: ctx.source, cluster: ctx.cluster, format: ctx.format, data };
    const result = await this.caller.guarded<IngestRequest, IngestResponse>(
      'Ingest',
      (req, md, opts, cb) => this.client.ingest(req, md, opts, cb),
      request,
      this.callTimeoutMs,
    );
    if (!result.ok) return { events: [], problems: [], unavailable: `plugin at ${this.address}: ${result.reason}` };
    const response = result.value;
    if (!Array.isArray(response?.events) || !Array.isArray(response.errors)) {
      return { events: [], problems: [], unavailable: `plugin at ${this.address} sent an answer that is not an IngestResponse` };
    }
    return { events: response.events, problems: response.errors.map(toProblem) };
  }

  /** The plugin's channel connects and its Health rpc answers healthy (polku validate --probe). */
  probe(signal: AbortSignal): Promise<ProbeResult> {
    return pluginProbe(this.client, this.address, signal);
  }

  /** The plugin as the last calls saw it; for logs and a future ingestor health hook. */
  status(): { healthy: boolean; message: string } {
    return this.caller.status();
  }

  /** The gateway's health view of this plugin (from the last call or Health answer). */
  health(): { healthy: boolean; message: string } {
    return this.status();
  }

  /** Gateway shutdown: close the connection. */
  shutdown(): void {
    this.close();
  }

  /** Closes the client; later batches are refused `INGESTOR_UNAVAILABLE`. */
  close(): void {
    this.caller.close();
  }
}

/** `message (details)` at the plugin's offset; a negative offset means the plugin did not know it. */
function toProblem(e: IngestResponse['errors'][number]): IngestProblem {
  const message = e.details ? `${e.message || 'plugin could not parse'} (${e.details})` : e.message || 'plugin could not parse';
  return e.offset >= 0n ? { message, offset: Number(e.offset) } : { message };
}

/** `externalIngestor('csv', 'localhost:9001')`: raw batches of source `csv` are parsed by the plugin there. */
export const externalIngestor = (
  sources: string | readonly string[],
  address: string,
  options: ExternalIngestorOptions = {},
): ExternalIngestor => new ExternalIngestor({ ...options, sources, address });
