import { Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import type { Empty } from '../gen/google/protobuf/empty.js';
import type { PluginHealthResponse, PluginInfo } from '../gen/polku/v1/plugin.js';
import { emitterPluginClient, ingestorPluginClient } from '../plugin-client/client.js';
import { kindOf, RegistryError, type PluginKind } from './plugin-spec.js';

type Unary<Res> = (req: Empty, md: Metadata, opts: { deadline: Date }, cb: (err: ServiceError | null, res: Res) => void) => unknown;

interface InfoHealthClient extends Client {
  info: Unary<PluginInfo>;
  health: Unary<PluginHealthResponse>;
}

/** What a probe learnt: the plugin's own Info answer and that it reported healthy. */
export interface ProbeResult {
  readonly info: PluginInfo;
  readonly healthMessage: string;
}

const SERVICES: Record<PluginKind, string> = { emitter: 'polku.v1.EmitterPlugin', ingestor: 'polku.v1.IngestorPlugin' };

/**
 * The gateway's own line to one plugin for `Info` and `Health`, apart from the component that
 * carries its traffic: admission asks both before a plugin enters the table, the health sweep
 * asks `Health` after. Connection is lazy; grpc-js reconnects with a short backoff.
 */
export class PluginProbe {
  private readonly client: InfoHealthClient;
  private closed = false;

  constructor(
    readonly kind: PluginKind,
    /** The grpc-js target dialled (`host:port`), after the allowlist check. */
    readonly target: string,
  ) {
    this.client = (kind === 'emitter' ? emitterPluginClient(target) : ingestorPluginClient(target)) as unknown as InfoHealthClient;
  }

  /**
   * `Info` then `Health`, each within `timeoutMs`. Refuses with UNAVAILABLE (no answer) or
   * FAILED_PRECONDITION (the wrong service or type, or unhealthy).
   */
  async admit(timeoutMs: number): Promise<ProbeResult> {
    const info = await this.call<PluginInfo>('Info', this.client.info.bind(this.client), timeoutMs);
    const kind = kindOf(info.type);
    if (kind !== this.kind) {
      throw new RegistryError(
        'POLKU_ERR_PLUGIN_MISMATCH',
        `the plugin at ${this.target} says it is ${kind ?? 'of no known type'}, not ${this.kind}`,
      );
    }
    const health = await this.health(timeoutMs);
    if (!health.healthy)
      throw new RegistryError('POLKU_ERR_PLUGIN_MISMATCH', `the plugin at ${this.target} reports unhealthy: ${health.message}`);
    return { info, healthMessage: health.message };
  }

  /** `Health` within `timeoutMs`; never throws: a failed call is an unhealthy answer. */
  async health(timeoutMs: number): Promise<{ healthy: boolean; message: string }> {
    try {
      const h = await this.call<PluginHealthResponse>('Health', this.client.health.bind(this.client), timeoutMs);
      return { healthy: h.healthy, message: h.message || (h.healthy ? 'ok' : 'plugin reports unhealthy') };
    } catch (err) {
      return { healthy: false, message: (err as Error).message };
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }

  private call<Res>(method: 'Info' | 'Health', invoke: Unary<Res>, timeoutMs: number): Promise<Res> {
    if (this.closed) return Promise.reject(new RegistryError('POLKU_ERR_PLUGIN_UNREACHABLE', 'probe closed'));
    return new Promise((resolve, reject) => {
      // grpc-js deadlines are wall-clock dates.
      invoke({}, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => {
        if (!err) return resolve(res);
        if (err.code === status.UNIMPLEMENTED) {
          reject(
            new RegistryError('POLKU_ERR_PLUGIN_MISMATCH', `the plugin at ${this.target} does not serve ${SERVICES[this.kind]}/${method}`),
          );
        } else {
          const why =
            err.code === status.DEADLINE_EXCEEDED
              ? `no answer within ${timeoutMs} ms`
              : `${status[err.code] ?? err.code}: ${err.details || err.message}`;
          reject(new RegistryError('POLKU_ERR_PLUGIN_UNREACHABLE', `the plugin at ${this.target} did not answer ${method}: ${why}`));
        }
      });
    });
  }
}
