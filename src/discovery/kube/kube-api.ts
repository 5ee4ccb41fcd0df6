import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ClusterAccess } from './cluster-access.js';

/** Objects as the API server sends them: what the informer reads of each. */
export interface KubeObject {
  metadata?:
    | { readonly name?: string | undefined; readonly namespace?: string | undefined; readonly resourceVersion?: string | undefined }
    | undefined;
}

/** A list response: its resourceVersion starts the watch. */
export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string } | undefined;
  items: T[];
}

/** One line of a watch stream ("API concepts: efficient detection of changes"). */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR' | string;
  object: unknown;
}

/** Objects per list page; the API server hands a `continue` token for the rest. */
export const LIST_PAGE = 500;
/**
 * The API server ends each watch after this many seconds (client-go picks 5 to 10 minutes), and
 * the informer resumes from the last version: a watch never outlives a load balancer's idea of
 * an idle connection for long.
 */
export const WATCH_TIMEOUT_S = 300;
/** A list page whose connection says nothing for this long has failed (the informer retries). */
export const LIST_IDLE_MS = 60_000;
/** A watch that says nothing (not even a bookmark) for this long past its timeout is dead. */
const WATCH_IDLE_GRACE_MS = 60_000;
/** Longest Status or error body read from a refused request. */
const MAX_ERROR_BODY = 64 * 1024;

/** A refused request or a watch's ERROR event: `code` is the HTTP status (410 Gone, 403…). */
export class KubeApiError extends Error {
  constructor(
    readonly code: number | undefined,
    message: string,
    readonly reason = '',
  ) {
    super(message);
    this.name = 'KubeApiError';
  }

  /** Client-node's errors carry the status as `statusCode`; callers may read either. */
  get statusCode(): number | undefined {
    return this.code;
  }
}

/**
 * The two requests an informer makes, over node:http(s) with one keep-alive agent holding the
 * cluster's TLS: a (paged) list, and a watch whose newline-delimited JSON events are handed over
 * one by one as they arrive.
 */
export class KubeApi {
  private readonly base: URL;
  private readonly agent: HttpAgent;
  private readonly request: typeof httpRequest;

  constructor(readonly access: ClusterAccess) {
    this.base = new URL(access.server);
    const tls = this.base.protocol === 'https:';
    this.request = tls ? httpsRequest : httpRequest;
    this.agent = tls ? new HttpsAgent({ keepAlive: true, ...access.tls }) : new HttpAgent({ keepAlive: true });
  }

  /** Lists a collection, every page; the first page's resourceVersion is the list's. */
  async list<T>(path: string, query: Record<string, string>, signal?: AbortSignal): Promise<KubeList<T>> {
    const items: T[] = [];
    let resourceVersion = '';
    let cont = '';
    do {
      const res = await this.send(path, { ...query, limit: String(LIST_PAGE), ...(cont ? { continue: cont } : {}) }, signal, LIST_IDLE_MS);
      const page = JSON.parse(await readAll(res, Infinity)) as KubeList<T>;
      if (!resourceVersion) resourceVersion = page.metadata?.resourceVersion ?? '';
      for (const item of page.items ?? []) items.push(item);
      cont = page.metadata?.continue ?? '';
    } while (cont);
    return { metadata: { resourceVersion }, items };
  }

  /**
   * Opens a watch; resolves with the stream once the server accepted it (status 200), or rejects
   * with a {@link KubeApiError} (410 Gone when `resourceVersion` is too old). `done` of the
   * returned handle settles when the stream ends: resolves when the server ended it, rejects when
   * the connection broke, a line was not JSON, or nothing arrived for too long.
   */
  async watch(
    path: string,
    query: Record<string, string>,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<{ done: Promise<void> }> {
    const res = await this.send(
      path,
      { ...query, watch: 'true', allowWatchBookmarks: 'true', timeoutSeconds: String(WATCH_TIMEOUT_S) },
      signal,
      WATCH_TIMEOUT_S * 1000 + WATCH_IDLE_GRACE_MS,
    );
    const done = new Promise<void>((resolve, reject) => {
      let rest = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        rest += chunk;
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl).trim();
          rest = rest.slice(nl + 1);
          if (line === '') continue;
          let event: WatchEvent;
          try {
            event = JSON.parse(line) as WatchEvent;
          } catch {
            res.destroy(new Error(`watch ${path}: a line that is not JSON (${line.slice(0, 80)})`));
            return;
          }
          onEvent(event);
        }
      });
      res.on('error', reject);
      res.on('close', () => (res.complete ? resolve() : reject(res.errored ?? new Error(`watch ${path}: connection closed mid-stream`))));
    });
    done.catch(() => undefined); // the caller awaits it; an early failure is not unhandled meanwhile
    return { done };
  }

  /** Closes idle keep-alive connections (stop). */
  close(): void {
    this.agent.destroy();
  }

  private async send(path: string, query: Record<string, string>, signal?: AbortSignal, idleMs?: number): Promise<IncomingMessage> {
    const url = new URL(this.base.href.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(query)) if (v !== '') url.searchParams.set(k, v);
    const headers = { accept: 'application/json', ...(await this.access.headers()) };
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.request(url, { agent: this.agent, headers, ...(signal ? { signal } : {}) }, resolve);
      req.on('error', reject);
      if (idleMs !== undefined) req.setTimeout(idleMs, () => req.destroy(new Error(`${url.pathname}: nothing received for ${idleMs} ms`)));
      req.end();
    });
    if (res.statusCode === 200) return res;
    const body = await readAll(res, MAX_ERROR_BODY).catch(() => '');
    let status: { message?: string; reason?: string } = {};
    try {
      status = JSON.parse(body) as typeof status;
    } catch {
      // not a Status object: the body's start says what it is
    }
    throw new KubeApiError(
      res.statusCode,
      `${url.pathname}: HTTP ${res.statusCode}${status.message ? ` ${status.message}` : body ? ` ${body.slice(0, 200)}` : ''}`,
      status.reason ?? '',
    );
  }
}

function readAll(res: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}
