// An in-process Kubernetes API server for Services and EndpointSlices that speaks the real
// list/watch protocol ("API concepts: efficient detection of changes"): lists carry
// metadata.resourceVersion; `?watch=true&resourceVersion=N` streams newline-delimited
// {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":…} from after N; history compacted
// away answers 410 Gone (an ERROR event with a Status, or HTTP 410); bookmarks go only to watches
// that asked with allowWatchBookmarks=true; label selectors filter both (objects leaving a selector
// arrive as DELETED). Lists are paged (`limit`, `continue`; {@link FakeApiServer.maxPage} makes
// pages smaller than asked). Pods too, with the field selector `spec.nodeName=<node>` (or any
// `path.to.field=value` / `!=`), filtering lists and watches the same way. Tests drop
// connections, compact history, end watches with an ERROR Status and inject failures.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ClusterAccess } from '../../src/discovery/kube/cluster-access.js';

export type Kind = 'services' | 'endpointslices' | 'pods';
type Obj = {
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};
interface Change {
  rv: number;
  kind: Kind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  obj: Obj;
  prev: Obj | undefined;
}
interface Watcher {
  kind: Kind;
  namespace: string;
  selector: string;
  fieldSelector: string;
  bookmarks: boolean;
  res: ServerResponse;
}
export interface RequestRecord {
  kind: Kind;
  watch: boolean;
  namespace: string;
  query: Record<string, string>;
  /** The Authorization header the request carried ('' without one). */
  authorization: string;
}

const LIST_META: Record<Kind, { kind: string; apiVersion: string; item: string }> = {
  services: { kind: 'ServiceList', apiVersion: 'v1', item: 'Service' },
  endpointslices: { kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', item: 'EndpointSlice' },
  pods: { kind: 'PodList', apiVersion: 'v1', item: 'Pod' },
};
const PATH = /^\/(?:api\/v1|apis\/discovery\.k8s\.io\/v1)(?:\/namespaces\/([^/]+))?\/(services|endpointslices|pods)$/;

export class FakeApiServer {
  private readonly server: Server;
  private readonly objects: Record<Kind, Map<string, Obj>> = { services: new Map(), endpointslices: new Map(), pods: new Map() };
  private history: Change[] = [];
  private rv = 100;
  /** Watches from a version at or below this one are answered 410 Gone. */
  private compactedRv = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly failures: Array<{ kind: Kind; watch: boolean | undefined; status: number; times: number }> = [];
  /** How an expired version is refused: an ERROR event in a 200 stream, or HTTP 410. */
  goneAs: 'event' | 'http' = 'event';
  readonly requests: RequestRecord[] = [];
  /** Most items a list page holds, whatever `limit` asked (the API server may send fewer). */
  maxPage = Infinity;
  /** Lists with pages still to fetch, by the id in their `continue` token. */
  private readonly snapshots = new Map<number, Snapshot>();
  private snapshotIds = 0;
  private readonly requestHooks = new Set<(r: RequestRecord) => void>();
  port = 0;

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** The URL clients reach this server at (plain http). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** How a gateway in this process reaches this server: plain http, no credentials. */
  cluster(): ClusterAccess {
    return { server: this.url, source: 'fake', user: 'nobody', tls: { rejectUnauthorized: true }, headers: () => ({}) };
  }

  /** A kubeconfig file's text pointing at this server (`user` and `cluster` add to those entries, e.g. a token). */
  kubeconfig(user: Record<string, unknown> = {}, cluster: Record<string, unknown> = {}): string {
    return `${JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: this.url, ...cluster } }],
        users: [{ name: 'nobody', user }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'nobody' } }],
        'current-context': 'fake',
      },
      null,
      2,
    )}\n`;
  }

  /** Creates or replaces an object (by namespace/name); returns its new resourceVersion. */
  apply(kind: Kind, obj: Obj): string {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const prev = this.objects[kind].get(key);
    const stored: Obj = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    stored.metadata.uid = prev?.metadata.uid ?? `uid-${this.rv}`;
    this.objects[kind].set(key, stored);
    this.publish({ rv: this.rv, kind, type: prev ? 'MODIFIED' : 'ADDED', obj: stored, prev });
    return stored.metadata.resourceVersion;
  }

  delete(kind: Kind, namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const prev = this.objects[kind].get(key);
    if (!prev) return;
    this.objects[kind].delete(key);
    const obj = { ...structuredClone(prev), metadata: { ...prev.metadata, resourceVersion: String(++this.rv) } };
    this.publish({ rv: this.rv, kind, type: 'DELETED', obj, prev });
  }

  /** Forgets the event history: watches from any version seen so far get 410 Gone. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
  }

  /** Sends a BOOKMARK with the current version to every watch that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const { apiVersion, item } = LIST_META[w.kind];
      write(w.res, { type: 'BOOKMARK', object: { kind: item, apiVersion, metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  /** Ends every open watch: gracefully (the response ends) or abruptly (the socket is destroyed). */
  dropWatches(abrupt = false): void {
    for (const w of this.watchers) {
      if (abrupt) w.res.socket?.destroy();
      else w.res.end();
    }
    this.watchers.clear();
  }

  /**
   * Ends every open watch with an ERROR event carrying a Status (`code`, e.g. 500 InternalError),
   * as the API server ends a watch it cannot go on with.
   */
  failWatches(code: number, reason: string, message: string): void {
    for (const w of this.watchers) {
      write(w.res, { type: 'ERROR', object: statusObject(code, reason, message) });
      w.res.end();
    }
    this.watchers.clear();
  }

  /** The next `times` requests for `kind` (lists, watches or both) are answered `status`. */
  fail(kind: Kind, status: number, times = 1, watch?: boolean): void {
    this.failures.push({ kind, watch, status, times });
  }

  /** Calls `fn` with each request as it arrives, before it is answered; returns the unhook. */
  onRequest(fn: (r: RequestRecord) => void): () => void {
    this.requestHooks.add(fn);
    return () => this.requestHooks.delete(fn);
  }

  /** The newest resourceVersion handed out. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Open watch connections for `kind`. */
  watching(kind: Kind): number {
    return [...this.watchers].filter((w) => w.kind === kind).length;
  }

  private publish(change: Change): void {
    this.history.push(change);
    for (const w of this.watchers) this.send(w, change);
  }

  private send(w: Watcher, c: Change): void {
    if (c.kind !== w.kind || (w.namespace && c.obj.metadata.namespace !== w.namespace)) return;
    const now = matches(c.type === 'DELETED' ? undefined : c.obj, w.selector) && fieldsMatch(c.obj, w.fieldSelector);
    const before = matches(c.prev, w.selector) && fieldsMatch(c.prev, w.fieldSelector);
    const type =
      c.type === 'DELETED' ? (before ? 'DELETED' : null) : now && before ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : null;
    if (type) write(w.res, { type, object: c.obj });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = PATH.exec(url.pathname);
    if (req.method !== 'GET' || !m) return status(res, 404, 'NotFound', `no route ${req.method} ${url.pathname}`);
    const kind = m[2] as Kind;
    const namespace = m[1] ?? '';
    const query = Object.fromEntries(url.searchParams);
    const watch = query['watch'] === 'true';
    const record: RequestRecord = { kind, watch, namespace, query, authorization: req.headers.authorization ?? '' };
    this.requests.push(record);
    for (const fn of this.requestHooks) fn(record);
    const failure = this.failures.find((f) => f.kind === kind && (f.watch === undefined || f.watch === watch) && f.times > 0);
    if (failure) {
      failure.times--;
      return status(res, failure.status, failure.status === 403 ? 'Forbidden' : 'InternalError', `injected failure ${failure.status}`);
    }
    const selector = query['labelSelector'] ?? '';
    const fieldSelector = query['fieldSelector'] ?? '';
    if (!watch) return this.list(res, kind, namespace, query);
    const from = query['resourceVersion'] ? Number(query['resourceVersion']) : undefined;
    if (from !== undefined && from < this.compactedRv) {
      const message = `too old resource version: ${from} (${this.compactedRv})`;
      if (this.goneAs === 'http') return status(res, 410, 'Expired', message);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      write(res, { type: 'ERROR', object: statusObject(410, 'Expired', message) });
      res.end(); // the API server closes a watch after its ERROR event
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { kind, namespace, selector, fieldSelector, bookmarks: query['allowWatchBookmarks'] === 'true', res };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
    if (from === undefined) {
      for (const o of this.objects[kind].values()) this.send(w, { rv: this.rv, kind, type: 'ADDED', obj: o, prev: undefined });
    } else {
      for (const c of this.history) if (c.rv > from) this.send(w, c);
    }
  }
  /**
   * A list, paged as the API server pages it: `limit` (capped by {@link maxPage}) items a page, a
   * `continue` token for the rest; every page of one list shows the snapshot taken at its first
   * page (its resourceVersion), and a token older than the compacted history is 410 Gone.
   */
  private list(res: ServerResponse, kind: Kind, namespace: string, query: Record<string, string>): void {
    let snapshot: Snapshot;
    let offset = 0;
    const token = query['continue'];
    if (token) {
      const t = parseContinue(token);
      const found = t && this.snapshots.get(t.id);
      if (!t || !found || found.kind !== kind) return status(res, 400, 'BadRequest', `continue token not recognised: ${token}`);
      if (found.rv < this.compactedRv) {
        this.snapshots.delete(t.id);
        return status(res, 410, 'Expired', `the provided continue parameter is too old (${found.rv} < ${this.compactedRv})`);
      }
      snapshot = found;
      offset = t.offset;
    } else {
      const selector = query['labelSelector'] ?? '';
      const fieldSelector = query['fieldSelector'] ?? '';
      const items = [...this.objects[kind].values()].filter(
        (o) => (!namespace || o.metadata.namespace === namespace) && matches(o, selector) && fieldsMatch(o, fieldSelector),
      );
      snapshot = { id: ++this.snapshotIds, kind, rv: this.rv, items: structuredClone(items) };
    }
    const limit = Number(query['limit']) > 0 ? Number(query['limit']) : Infinity;
    const end = Math.min(snapshot.items.length, offset + Math.min(limit, this.maxPage));
    const more = end < snapshot.items.length;
    if (more) this.snapshots.set(snapshot.id, snapshot);
    else this.snapshots.delete(snapshot.id);
    const metadata: Record<string, unknown> = { resourceVersion: String(snapshot.rv) };
    if (more) {
      metadata['continue'] = Buffer.from(JSON.stringify({ id: snapshot.id, offset: end })).toString('base64url');
      metadata['remainingItemCount'] = snapshot.items.length - end;
    }
    const { kind: listKind, apiVersion } = LIST_META[kind];
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ kind: listKind, apiVersion, metadata, items: snapshot.items.slice(offset, end) }));
  }
}

interface Snapshot {
  id: number;
  kind: Kind;
  rv: number;
  items: Obj[];
}

function parseContinue(token: string): { id: number; offset: number } | undefined {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { id?: unknown; offset?: unknown };
    return typeof t.id === 'number' && typeof t.offset === 'number' ? { id: t.id, offset: t.offset } : undefined;
  } catch {
    return undefined;
  }
}

function write(res: ServerResponse, event: unknown): void {
  if (!res.writableEnded) res.write(`${JSON.stringify(event)}\n`);
}

function statusObject(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(statusObject(code, reason, message)));
}

/** Field selector: `a.b=v`, `a.b==v`, `a.b!=v`, comma-separated (all must hold); a missing field is "". */
export function fieldsMatch(obj: Obj | undefined, selector: string): boolean {
  if (!obj) return false;
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .every((term) => {
      const m = /^([^!=]+)(!=|==?)(.*)$/.exec(term);
      if (!m) throw new Error(`bad field selector term ${term}`);
      let v: unknown = obj;
      for (const part of m[1]!.trim().split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
      const value = typeof v === 'string' ? v : '';
      return m[2] === '!=' ? value !== m[3]!.trim() : value === m[3]!.trim();
    });
}

/** Label selector: `k`, `!k`, `k=v`, `k==v`, `k!=v`, comma-separated (all must hold). */
export function matches(obj: Obj | undefined, selector: string): boolean {
  if (!obj) return false;
  const labels = obj.metadata.labels ?? {};
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .every((term) => {
      const ne = /^([^!=]+)!=(.*)$/.exec(term);
      if (ne) return labels[ne[1]!.trim()] !== ne[2]!.trim();
      const eq = /^([^!=]+)==?(.*)$/.exec(term);
      if (eq) return labels[eq[1]!.trim()] === eq[2]!.trim();
      if (term.startsWith('!')) return !(term.slice(1) in labels);
      return term in labels;
    });
}
