import type { GatewaySettings as Settings } from '../config/env.js';
import { defaultPipeline } from '../config/default-pipeline.js';
import { addForwarding } from '../config/forwarding.js';
import { loadPipeline } from '../config/load-pipeline.js';
import { envEmitters } from '../emit/env-emitters.js';
import type { HubBuilder } from '../hub/builder.js';
import { kubernetesEnricher } from '../middleware/kubernetes-enricher.js';

export interface AssembleOptions {
  /** The module (`--config`, else POLKU_CONFIG); undefined: the embedded default pipeline. */
  configPath: string | undefined;
  /** Load the module afresh, not from the module cache (a reload). */
  fresh?: boolean;
  /** Forwarding endpoints are dialled on first use, not at start (validate never dials). */
  lazyForwarding?: boolean;
}

/**
 * The pipeline `polku serve` runs, built the same way at start, on SIGHUP and by `polku
 * validate`: the module (or the embedded default), then what the environment adds to it:
 * POLKU_EMIT_GRPC_* forwarding, the Kubernetes enricher (last in the middleware chain), and the
 * POLKU_EMIT_OTLP_* / POLKU_EMIT_AHTI_* emitters.
 */
export async function assemblePipeline(settings: Settings, o: AssembleOptions): Promise<HubBuilder> {
  const builder = o.configPath ? await loadPipeline(o.configPath, process.cwd(), { fresh: o.fresh ?? false }) : defaultPipeline();
  const forward = settings.forward && o.lazyForwarding ? { ...settings.forward, lazy: true } : settings.forward;
  addForwarding(builder, forward, o.configPath ?? '(embedded default)');
  if (settings.kubernetesEnricher) {
    // The API server (in-cluster or kubeconfig) is found when the enricher starts.
    builder.middleware(kubernetesEnricher({ ...settings.kubernetesEnricher, maxMetadataBytes: settings.limits.maxMetadataBytes }));
  }
  for (const emitter of envEmitters(settings.emitOut)) builder.emitter(emitter);
  return builder;
}
