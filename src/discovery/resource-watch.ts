import { Counter, type Registry } from 'prom-client';
import type { TimerHandle, Timers } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import { Backoff } from '../resilience/backoff.js';
import { Informer } from './kube/informer.js';
import type { KubeApi, KubeList, KubeObject } from './kube/kube-api.js';

export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 } as const;

export interface ResourceWatchOptions<T extends KubeObject> {
  /** The API server (one per gateway, shared by its watches: one keep-alive agent). */
  api: KubeApi;
  /** The collection's API path, e.g. `/api/v1/namespaces/plugins/services`. */
  path: string;
  /** `services`, `endpointslices` or `pods`: the `resource` label and the name in logs. */
  resource: string;
  /** Lists the collection (with the selectors); its `metadata.resourceVersion` starts the watch. */
  list: () => Promise<KubeList<T>>;
  labelSelector?: string | undefined;
  /** Sent on every watch as `fieldSelector` (e.g. `spec.nodeName=node-1`); the list must apply it too. */
  fieldSelector?: string | undefined;
  /**
   * Applied to every listed and watched object before the informer caches it: keep only the
   * fields the caller reads (and `metadata.name`, `namespace`, `resourceVersion`), so the cache
   * does not hold whole objects. Default: objects kept as they arrive.
   */
  strip?: ((obj: T) => T) | undefined;
  /** The `component` of the log lines. Default `discovery`. */
  component?: string | undefined;
  timers: Timers;
  logger: Logger;
  registry: Registry;
  /** Delay before restarting after an error, and before a relist the server forced (410 Gone). */
  backoff?: { initialMs: number; maxMs: number };
  /** A 403 or 404 on the list turns the watch off for good instead of retrying (optional data). */
  optional?: boolean;
  /** Every add, update and delete, as the informer's cache saw it. */
  onChange(): void;
  /** Each restart after a failure (`error`) and each list after the first (`relist`). Optional. */
  onRestart?(why: 'error' | 'relist'): void;
}

/**
 * One {@link Informer} kept alive: it lists, then watches from the list's resourceVersion with
 * bookmarks. When the server ends a watch it resumes from the last version seen; 410 Gone
 * relists (the informer's own handling), after a backoff here.
 * Any other error stops the informer, and it is started again after a backoff doubling from
 * `initialMs` to `maxMs` (reset by a successful list or an event). Time comes from `timers`.
 */
export class ResourceWatch<T extends KubeObject> {
  readonly informer: Informer<T>;
  /** Restart and forced-relist waits: grows with each failure, back to the start on success. */
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly errors: Counter<'resource'>;
  private readonly relists: Counter<'resource'>;
  private lists = 0;
  /** Lists the current start() may make without a pause (its own first list). */
  private freeLists = 0;
  private retry: TimerHandle | null = null;
  private wait: { timer: TimerHandle; resolve: () => void } | null = null;
  private stopped = false;
  private syncedFlag = false;
  private disabledFlag = false;
  private readonly syncWaiters: Array<() => void> = [];

  constructor(private readonly o: ResourceWatchOptions<T>) {
    this.backoff = new Backoff(o.backoff ?? DEFAULT_BACKOFF);
    this.log = o.logger.child({ component: o.component ?? 'discovery', resource: o.resource, path: o.path });
    this.errors = family(
      o.registry,
      'polku_discovery_watch_errors_total',
      'Kubernetes list/watch failures (the informer restarts after a backoff)',
    );
    this.relists = family(
      o.registry,
      'polku_discovery_relists_total',
      'Kubernetes lists after the first: watch history expired (410 Gone) or a restart',
    );
    const query: Record<string, string> = {};
    if (o.labelSelector) query['labelSelector'] = o.labelSelector;
    if (o.fieldSelector) query['fieldSelector'] = o.fieldSelector;
    this.informer = new Informer<T>({ api: o.api, path: o.path, query, list: () => this.list(), transform: o.strip });
    const changed = () => {
      this.backoff.reset();
      o.onChange();
    };
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', changed);
    this.informer.on('error', (err: unknown) => this.failed(err));
  }

  /** True once a list went through and its objects were delivered (or the resource is off). */
  get synced(): boolean {
    return this.syncedFlag;
  }

  /** True when the resource turned out unreadable (403/404) and `optional`. */
  get disabled(): boolean {
    return this.disabledFlag;
  }

  /** Resolves at the first sync (never rejects; errors are retried). */
  whenSynced(): Promise<void> {
    return this.syncedFlag ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== null) this.o.timers.clearTimeout(this.retry);
    if (this.wait) {
      this.o.timers.clearTimeout(this.wait.timer);
      this.wait.resolve();
    }
    await this.informer.stop();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    // Without a resourceVersion (first start, or the last list failed) start() lists at once:
    // this run's backoff already passed. A relist the library starts later (410 Gone) waits.
    this.freeLists = this.informer.latestResourceVersion() === '' ? 1 : 0;
    await this.informer.start(); // resolves after the list (if any) and once the watch is open or failed
    if (this.lists > 0) this.markSynced(); // a list went through and its objects were delivered
  }

  private async list(): Promise<KubeList<T>> {
    const free = this.freeLists > 0;
    if (free) this.freeLists--;
    if (this.lists > 0) {
      this.relists.inc({ resource: this.o.resource });
      this.o.onRestart?.('relist');
    }
    if (!free) await this.pause(this.backoff.next());
    if (this.stopped) throw new Error('discovery stopped');
    const list = await this.o.list(); // the informer applies `strip` as it caches
    this.lists++;
    this.backoff.reset();
    return list;
  }

  private failed(err: unknown): void {
    if (this.stopped) return; // stop() aborts the watch, which reports an AbortError
    const code = (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode;
    if (this.o.optional && (code === 403 || code === 404)) {
      this.disabledFlag = true;
      this.log.warn({ status: code }, `cannot read ${this.o.resource} (RBAC?); going on without them`);
      this.markSynced();
      return;
    }
    this.errors.inc({ resource: this.o.resource });
    if (this.retry !== null) return;
    this.o.onRestart?.('error');
    const delay = this.backoff.next();
    this.log.warn(
      { err: { message: (err as Error)?.message ?? String(err), status: code }, retryInMs: delay },
      'Kubernetes watch failed; restarting after a backoff',
    );
    this.retry = this.o.timers.setTimeout(() => {
      this.retry = null;
      void this.run();
    }, delay);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.o.timers.setTimeout(() => {
        this.wait = null;
        resolve();
      }, ms);
      this.wait = { timer, resolve };
    });
  }

  private markSynced(): void {
    if (this.syncedFlag) return;
    this.syncedFlag = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }
}

function family(registry: Registry, name: string, help: string): Counter<'resource'> {
  return (
    (registry.getSingleMetric(name) as Counter<'resource'> | undefined) ??
    new Counter({ name, help, labelNames: ['resource'], registers: [registry] })
  );
}
