import { KubeApiError, type KubeApi, type KubeList, type KubeObject, type WatchEvent } from './kube-api.js';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubeObject> {
  api: KubeApi;
  /** The collection, e.g. `/api/v1/namespaces/plugins/services`. */
  path: string;
  /** `labelSelector`, `fieldSelector`: sent on the watch (the list applies its own). */
  query: Record<string, string>;
  /** Lists the collection; may wait (a backoff) before asking. */
  list: () => Promise<KubeList<T>>;
  /** Applied to every object before it is cached and handed to listeners (not to ERROR Statuses). */
  transform?: ((obj: T) => T) | undefined;
  /** Monotonic milliseconds, for telling a short watch. Default `performance.now`. */
  nowMs?: () => number;
  /** Waits before a watch after short ones. Default: an unref'd timer. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A watch the server ends cleanly this soon after opening it, with nothing on it (not even a
 * bookmark), is short. After two in a row the informer waits before watching again, doubling
 * from the first wait up to the last, as client-go does for "very short watches": a proxy or
 * server that ends every watch at once would otherwise get a new one from every node in a loop.
 */
export const SHORT_WATCH_MS = 1_000;
export const SHORT_WATCH_FIRST_WAIT_MS = 100;
export const SHORT_WATCH_MAX_WAIT_MS = 10_000;

const unrefSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * A cache of one collection kept current by list + watch, as client-go's reflector does: it lists
 * (when it has no resourceVersion), then watches from the list's version with bookmarks. When the
 * server ends a watch, it watches again from the last version seen (an event's or a bookmark's);
 * after two short watches in a row, only after a wait (see {@link SHORT_WATCH_MS}).
 * 410 Gone (HTTP, or an ERROR event with a 410 Status) forgets the version and lists again,
 * reporting adds, updates and deletes against the cache. Any other failure (a refused request,
 * a broken connection) stops it and goes to the `error` listeners: the owner starts it again
 * after a backoff, from the version it had.
 */
export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly listeners: Record<InformerEvent, Array<(obj: T) => void>> = { add: [], update: [], delete: [] };
  private readonly errorListeners: Array<(err: unknown) => void> = [];
  private resourceVersion = '';
  /** Bumped by every start() and stop(): callbacks of an older run do nothing. */
  private run = 0;
  private abort: AbortController | null = null;
  /** The Status of an ERROR event: the server closes the watch after it, and this says why. */
  private closing: KubeApiError | null = null;
  /** When the open watch was opened, whether anything came on it, and short watches in a row. */
  private watchOpenedAt = 0;
  private watchHeard = false;
  private shortWatches = 0;
  private readonly nowMs: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: InformerOptions<T>) {
    this.nowMs = o.nowMs ?? (() => performance.now());
    this.sleep = o.sleep ?? unrefSleep;
  }

  on(event: InformerEvent, fn: (obj: T) => void): void;
  on(event: 'error', fn: (err: unknown) => void): void;
  on(event: InformerEvent | 'error', fn: ((obj: T) => void) | ((err: unknown) => void)): void {
    if (event === 'error') this.errorListeners.push(fn as (err: unknown) => void);
    else this.listeners[event].push(fn as (obj: T) => void);
  }

  /** The cached objects. */
  list(): IterableIterator<T> {
    return this.cache.values();
  }

  /** The version the next watch starts from; empty before the first list and after 410 Gone. */
  latestResourceVersion(): string {
    return this.resourceVersion;
  }

  /**
   * Lists if there is no version, then opens the watch. Resolves once the watch is open or the
   * attempt failed (the failure goes to the `error` listeners); never rejects.
   */
  start(): Promise<void> {
    const run = ++this.run;
    return this.cycle(run);
  }

  /** Ends the open watch (or list); nothing is reported after this. */
  stop(): Promise<void> {
    this.run++;
    // An ERROR event's Status belongs to the watch it came on; a later start() must not read it.
    this.closing = null;
    this.abort?.abort();
    this.abort = null;
    return Promise.resolve();
  }

  private async cycle(run: number): Promise<void> {
    try {
      if (this.resourceVersion === '') {
        const list = await this.o.list();
        if (run !== this.run) return;
        this.replace(list);
      }
      const abort = new AbortController();
      this.abort = abort;
      const { done } = await this.o.api.watch(
        this.o.path,
        { ...this.o.query, resourceVersion: this.resourceVersion },
        (e) => this.event(run, e),
        abort.signal,
      );
      if (run !== this.run) return;
      this.watchOpenedAt = this.nowMs();
      this.watchHeard = false;
      void done.then(
        () => this.ended(run, null),
        (err: unknown) => this.ended(run, err),
      );
    } catch (err) {
      this.ended(run, err);
    }
  }

  /** The watch (or the list before it) is over: watch again, list again, or report. */
  private ended(run: number, err: unknown): void {
    if (run !== this.run) return;
    if (err === null && this.closing !== null) err = this.closing;
    this.closing = null;
    if (err instanceof KubeApiError && err.code === 410) this.resourceVersion = '';
    else if (err !== null) {
      this.run++;
      for (const fn of this.errorListeners) fn(err);
      return;
    } else {
      const short = !this.watchHeard && this.nowMs() - this.watchOpenedAt < SHORT_WATCH_MS;
      this.shortWatches = short ? this.shortWatches + 1 : 0;
      if (this.shortWatches >= 2) {
        const wait = Math.min(SHORT_WATCH_FIRST_WAIT_MS * 2 ** (this.shortWatches - 2), SHORT_WATCH_MAX_WAIT_MS);
        void this.sleep(wait).then(() => {
          if (run === this.run) void this.cycle(run);
        });
        return;
      }
    }
    void this.cycle(run);
  }

  private event(run: number, e: WatchEvent): void {
    if (run !== this.run) return;
    this.watchHeard = true;
    if (e.type === 'ERROR') {
      const s = (e.object ?? {}) as { code?: number; message?: string; reason?: string };
      this.closing = new KubeApiError(s.code, `watch ${this.o.path}: ${s.message ?? 'ERROR event'}`, s.reason ?? '');
      return;
    }
    const raw = e.object as T;
    const rv = raw?.metadata?.resourceVersion;
    if (e.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return;
    const obj = this.o.transform ? this.o.transform(raw) : raw;
    const key = keyOf(obj);
    if (e.type === 'DELETED') {
      this.cache.delete(key);
      this.emit('delete', obj);
    } else {
      const had = this.cache.has(key);
      this.cache.set(key, obj);
      this.emit(had ? 'update' : 'add', obj);
    }
    if (rv) this.resourceVersion = rv;
  }

  /** A fresh list: the cache becomes it, each difference reported. */
  private replace(list: KubeList<T>): void {
    const rv = list.metadata?.resourceVersion ?? '';
    // Without a version the next watch would have nowhere to start and the informer would list in a loop.
    if (rv === '') throw new KubeApiError(undefined, `list ${this.o.path}: no metadata.resourceVersion`);
    const before = new Map(this.cache);
    this.cache.clear();
    const items = this.o.transform ? list.items.map(this.o.transform) : list.items;
    for (const obj of items) this.cache.set(keyOf(obj), obj);
    this.resourceVersion = rv;
    for (const [key, old] of before) if (!this.cache.has(key)) this.emit('delete', old);
    for (const [key, obj] of this.cache) {
      const old = before.get(key);
      if (!old) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj);
    }
  }

  private emit(event: InformerEvent, obj: T): void {
    for (const fn of this.listeners[event]) fn(obj);
  }
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
