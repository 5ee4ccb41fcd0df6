import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import type { TimerHandle, Timers } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import { Backoff } from '../resilience/backoff.js';

export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 } as const;

export interface ResourceWatchOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The collection's API path, e.g. `/api/v1/namespaces/plugins/services`. */
  path: string;
  /** `services`, `endpointslices` or `pods`: the `resource` label and the name in logs. */
  resource: string;
  /** Lists the collection (with the selectors); its `metadata.resourceVersion` starts the watch. */
  list: () => Promise<KubernetesListObject<T>>;
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
 * One informer (client-node's ListWatch, what `makeInformer` builds) kept alive: it lists, then watches
 * from the list's resourceVersion with bookmarks. When the server ends a watch it resumes from
 * the last version seen; 410 Gone relists (the library's own handling), after a backoff here.
 * Any other error stops the informer, and it is started again after a backoff doubling from
 * `initialMs` to `maxMs` (reset by a successful list or an event). Time comes from `timers`.
 */
export class ResourceWatch<T extends KubernetesObject> {
  readonly informer: ListWatch<T>;
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
    // The library sends only resourceVersion and labelSelector; bookmarks ride on the path.
    const watch = o.strip ? new StrippingWatch(o.kubeConfig, o.strip) : new Watch(o.kubeConfig);
    this.informer = new ListWatch(`${o.path}?allowWatchBookmarks=true`, watch, () => this.list(), false, o.labelSelector, o.fieldSelector);
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

  private async list(): Promise<KubernetesListObject<T>> {
    const free = this.freeLists > 0;
    if (free) this.freeLists--;
    if (this.lists > 0) {
      this.relists.inc({ resource: this.o.resource });
      this.o.onRestart?.('relist');
    }
    if (!free) await this.pause(this.backoff.next());
    if (this.stopped) throw new Error('discovery stopped');
    const list = await this.o.list();
    if (this.o.strip) list.items = list.items.map(this.o.strip);
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

/** A Watch that hands the informer stripped objects (a Status in an ERROR event passes as it is). */
class StrippingWatch<T extends KubernetesObject> extends Watch {
  constructor(
    kubeConfig: KubeConfig,
    private readonly strip: (obj: T) => T,
  ) {
    super(kubeConfig);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void, // eslint-disable-line @typescript-eslint/no-explicit-any -- the library's signature
    done: (err: any) => void, // eslint-disable-line @typescript-eslint/no-explicit-any -- the library's signature
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, obj: T, watchObj) =>
        callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? this.strip(obj) : obj, watchObj),
      done,
    );
  }
}

function family(registry: Registry, name: string, help: string): Counter<'resource'> {
  return (
    (registry.getSingleMetric(name) as Counter<'resource'> | undefined) ??
    new Counter({ name, help, labelNames: ['resource'], registers: [registry] })
  );
}
