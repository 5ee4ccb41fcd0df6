import type { TimerHandle } from '../clock.js';
import { attach, buildComponent, closeComponent, detach, type LivePipeline, type PluginComponent } from './plugin-component.js';
import type { PluginProbe } from './plugin-probe.js';
import { RegistryError, type PluginSpec } from './plugin-spec.js';

/** How a plugin stands: taking traffic, or out of routing until its Health answers again. */
export type EntryState = 'routing' | 'unhealthy';

/** The last Health answer the gateway got (admission counts as one). */
export interface HealthNote {
  readonly healthy: boolean;
  readonly message: string;
  readonly atMs: number;
}

/**
 * One dynamic plugin in the live table: its spec, its probe (Info/Health line), its lease (when
 * registered) and, while it takes traffic, the component inside the pipeline.
 */
export class PluginEntry {
  spec: PluginSpec;
  health: HealthNote;
  /** Failed Health checks in a row. */
  failures = 0;
  /** Registered plugins: the last Register or Heartbeat (wall clock ms), and when the lease runs out. */
  lastHeartbeatMs: number | null = null;
  leaseExpiresMs: number | null = null;
  leaseTimer: TimerHandle | null = null;
  /** A Health check is in flight (the sweep never stacks them). */
  checking = false;
  /** Registered plugins: the identity that registered it (its owner), `anonymous` in an open registry. */
  owner = '';
  private component: PluginComponent | null = null;

  constructor(
    readonly id: string,
    readonly origin: 'registered' | 'kubernetes',
    spec: PluginSpec,
    readonly probe: PluginProbe,
    /** Kubernetes: the Service it came from, `namespace/name`. */
    readonly service: string | undefined,
    health: HealthNote,
  ) {
    this.spec = spec;
    this.health = health;
  }

  /** The grpc-js target the gateway dials (after the allowlist check). */
  get target(): string {
    return this.probe.target;
  }

  get state(): EntryState {
    return this.component ? 'routing' : 'unhealthy';
  }

  get routing(): boolean {
    return this.component !== null;
  }

  /** Puts the plugin into the pipeline; a name the pipeline already has is refused ALREADY_EXISTS. */
  enterRouting(pipeline: LivePipeline): void {
    if (this.component) return;
    const component = buildComponent(this.spec, this.target);
    try {
      attach(pipeline, component);
    } catch (err) {
      closeComponent(component); // the name is someone else's: remove nothing
      throw new RegistryError('POLKU_ERR_REGISTRY_NAME_TAKEN', `plugin "${this.spec.name}": ${(err as Error).message}`);
    }
    this.component = component;
  }

  /** Takes the plugin out of the pipeline (events named for it become UNROUTABLE). */
  leaveRouting(pipeline: LivePipeline): void {
    if (!this.component) return;
    detach(pipeline, this.component);
    this.component = null;
  }
}
