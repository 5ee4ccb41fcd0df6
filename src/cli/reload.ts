import { Counter, type Registry } from 'prom-client';
import type { GatewaySettings } from '../config/env.js';
import { isPolkuError, polkuError } from '../errors.js';
import type { PipelineOverrides } from '../hub/builder.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import { assemblePipeline } from './assemble.js';

/**
 * Something `polku serve` reloads on SIGHUP: the pipeline module, and whatever else registers
 * (a tenants or credentials file). `reload` throws to say it failed; the running state must then
 * be left as it was.
 */
export interface Reloadable {
  readonly name: string;
  reload(): Promise<void>;
}

/** `polku_reloads_total{what, result}`: SIGHUP reloads by what was reloaded, ok or failed. */
export class ReloadMetrics {
  private static readonly byRegistry = new WeakMap<Registry, ReloadMetrics>();
  private readonly reloads: Counter<'what' | 'result'>;

  static in(registry: Registry): ReloadMetrics {
    let m = ReloadMetrics.byRegistry.get(registry);
    if (!m) ReloadMetrics.byRegistry.set(registry, (m = new ReloadMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    this.reloads = new Counter({
      name: 'polku_reloads_total',
      help: 'Reloads on SIGHUP, by what was reloaded (pipeline, or a registered file) and result (ok, failed)',
      labelNames: ['what', 'result'],
      registers: [registry],
    });
  }

  count(what: string, result: 'ok' | 'failed'): void {
    this.reloads.inc({ what, result });
  }
}

/**
 * Runs every reloadable in turn on each SIGHUP, one reload at a time: a SIGHUP during a reload
 * runs one more after it (never more, however many arrive). A failure is logged with its error
 * code and counted; the others still run.
 */
export class Reloader {
  private running: Promise<void> | null = null;
  private again = false;
  private readonly log: Logger;
  private readonly metrics: ReloadMetrics;

  constructor(
    private readonly reloadables: readonly Reloadable[],
    logger: Logger,
    registry: Registry,
  ) {
    this.log = logger.child({ component: 'reload' });
    this.metrics = ReloadMetrics.in(registry);
  }

  /** Starts a reload (or asks for one more after the running one); resolves when that is done. */
  request(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.runAll().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        void this.request();
      }
    });
    return this.running;
  }

  private async runAll(): Promise<void> {
    for (const r of this.reloadables) {
      try {
        await r.reload();
        this.metrics.count(r.name, 'ok');
      } catch (err) {
        this.metrics.count(r.name, 'failed');
        const code = isPolkuError(err) ? err.code : 'POLKU_ERR_CONFIG_INVALID';
        const message = err instanceof Error ? err.message : String(err);
        this.log.error({ what: r.name, code, err }, `reload of ${r.name} failed; still running the previous one: ${code}: ${message}`);
      }
    }
  }
}

export interface PipelineReloadOptions {
  hub: Hub;
  settings: GatewaySettings;
  configPath: string | undefined;
  /** What the running pipeline's module set on itself (compared: changes need a restart). */
  overrides: PipelineOverrides;
  /** How long retired emitters may take to deliver what they hold. */
  timeoutMs: number;
  logger: Logger;
}

/**
 * The pipeline module as a {@link Reloadable}: loads it afresh and builds it as start-up did
 * (the environment's additions included), then swaps its ingestors, middleware and emitters
 * into the running hub. Settings that need a restart (buffer, delivery, limits, durable) are
 * compared and each change is named in a warning; they keep their running values.
 */
export function pipelineReloadable(o: PipelineReloadOptions): Reloadable {
  const log = o.logger.child({ component: 'reload' });
  const running = o.overrides; // restart-only settings never change while running
  return {
    name: 'pipeline',
    async reload() {
      const pipeline = o.configPath ?? '(embedded default)';
      log.info({ pipeline }, 'SIGHUP: reloading the pipeline module');
      const builder = await assemblePipeline(o.settings, { configPath: o.configPath, fresh: true });
      const definition = builder.definition(); // checks: no emitter, duplicate names
      const next = typeof builder.overrides === 'function' ? builder.overrides() : running;
      const needRestart = changedSettings(running, next);
      let swap;
      try {
        swap = o.hub.reload(definition, o.timeoutMs);
      } catch (err) {
        if (isPolkuError(err)) throw err;
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `the new pipeline failed to initialise: ${(err as Error).message}`, err);
      }
      log.info({ pipeline, ...swap.report }, 'pipeline reloaded');
      if (needRestart.length > 0) {
        log.warn(
          { settings: needRestart },
          `the new module changes ${needRestart.join(', ')}; these keep their running values until a restart`,
        );
      }
      void swap.retired.then((r) => {
        const abandoned = r.retired.reduce((n, x) => n + x.abandoned, 0);
        const keptInLog = r.retired.reduce((n, x) => n + x.keptInLog, 0);
        log.info({ retired: r.retired.map((x) => x.name), abandoned, keptInLog }, 'old pipeline drained');
      });
    },
  };
}

/** Names (`buffer.capacity`, `durable.dir`) of the settings that differ between two modules. */
export function changedSettings(running: PipelineOverrides, next: PipelineOverrides): string[] {
  const changed: string[] = [];
  for (const group of ['buffer', 'delivery', 'limits', 'durable'] as const) {
    const a = (running[group] ?? {}) as Record<string, unknown>;
    const b = (next[group] ?? {}) as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) changed.push(`${group}.${key}`);
    }
  }
  return changed;
}
