import type { Registry } from 'prom-client';
import type { EmitterRegistration } from '../delivery/emitter-registration.js';
import type { Emitter } from '../emit/emitter.js';
import { ExternalEmitter } from '../emit/external.js';
import { EmitterWrapper } from '../emit/resilience/wrap.js';
import type { Event } from '../gen/polku/v1/event.js';
import { ExternalIngestor } from '../ingest/external.js';
import type { Ingestor } from '../ingest/ingestor.js';
import type { PluginSpec } from './plugin-spec.js';

/**
 * What the table needs of the running pipeline (the Hub): its live emitter and ingestor tables.
 * Routing reads them per batch, so a change here is seen by the next batch.
 */
export interface LivePipeline {
  /** `registration.default` is true when omitted, as in the builder. */
  addEmitter(emitter: Emitter, registration?: EmitterRegistration): void;
  removeEmitter(name: string): boolean;
  addIngestor(ingestor: Ingestor): void;
  removeIngestor(name: string): boolean;
  readonly running: { readonly emitters: readonly string[]; readonly ingestors: readonly string[] };
  /** The running emitter of that name, for the static rows of the table (its address). */
  emitter?(name: string): Emitter | undefined;
  /** Sources agents sent on lately, and which ingestor last parsed each (the hub's intake record). */
  readonly seenSources?: { lookup(source: string): { parsedBy: string } | undefined };
  /** The sources a running ingestor claims (read at start for the static ones). */
  ingestorSources?(name: string): readonly string[];
  /** Component health, for the static rows (`emitter:<name>`, `ingestor:<name>`). */
  health?(): Promise<{ components: Record<string, { healthy: boolean; message: string }> }>;
}

/**
 * An emitter plugin the gateway found (registered or discovered) rather than was configured with.
 * It is an {@link ExternalEmitter} in every way but one: the gateway does not own the plugin, so
 * leaving the table or shutting the gateway down closes the connection and never sends the
 * plugin's `Shutdown` RPC (which would stop a process that other gateways may use).
 */
export class PluginEmitter extends EmitterWrapper {
  constructor(private readonly external: ExternalEmitter) {
    super(external);
  }

  emit(events: readonly Event[]) {
    return this.external.emit(events); // never throws
  }

  override async shutdown(): Promise<void> {
    this.close();
  }

  /** Closes the channel without the plugin's Shutdown RPC. */
  close(): void {
    this.external.close();
  }
}

/** The component a plugin runs as inside the pipeline. */
export type PluginComponent =
  { readonly kind: 'emitter'; readonly emitter: PluginEmitter } | { readonly kind: 'ingestor'; readonly ingestor: ExternalIngestor };

/** Builds the component for `spec`, dialling `target`. Nothing connects until the first call. */
export function buildComponent(spec: PluginSpec, target: string): PluginComponent {
  if (spec.kind === 'emitter') {
    return { kind: 'emitter', emitter: new PluginEmitter(new ExternalEmitter({ name: spec.emitterName, address: target })) };
  }
  return { kind: 'ingestor', ingestor: new ExternalIngestor({ name: spec.name, sources: spec.sources, address: target }) };
}

/** Puts a component into the pipeline (an emitter never becomes a default one). Throws on a name clash. */
export function attach(pipeline: LivePipeline, c: PluginComponent): void {
  if (c.kind === 'emitter') pipeline.addEmitter(c.emitter, { default: false });
  else pipeline.addIngestor(c.ingestor);
}

/** Takes a component out of the pipeline and closes its connection. */
export function detach(pipeline: LivePipeline, c: PluginComponent): void {
  if (c.kind === 'emitter') pipeline.removeEmitter(c.emitter.name);
  else pipeline.removeIngestor(c.ingestor.name);
  closeComponent(c);
}

/** Closes a component's connection (without the plugin's Shutdown RPC). */
export function closeComponent(c: PluginComponent): void {
  if (c.kind === 'emitter') c.emitter.close();
  else c.ingestor.close();
}

const PLUGIN_FAMILIES = ['polku_plugin_call_seconds', 'polku_plugin_calls_total', 'polku_plugin_healthy'];

/**
 * Drops a departed plugin's series from the shared `polku_plugin_*` families, so the `plugin`
 * label holds at most the plugins in the table (bounded by POLKU_REGISTRY_MAX_PLUGINS) plus the
 * static ones. `stillGone` is asked after the asynchronous read: a plugin back by then keeps them.
 */
export async function forgetPluginSeries(registry: Registry, plugin: string, stillGone: () => boolean): Promise<void> {
  for (const family of PLUGIN_FAMILIES) {
    const metric = registry.getSingleMetric(family);
    if (!metric) continue;
    const data = await metric.get();
    if (!stillGone()) return;
    const seen = new Set<string>();
    for (const v of data.values) {
      if (v.labels['plugin'] !== plugin) continue;
      const { le: _bucket, ...labels } = v.labels;
      const key = JSON.stringify(labels);
      if (seen.has(key)) continue;
      seen.add(key);
      metric.remove(labels);
    }
  }
}
