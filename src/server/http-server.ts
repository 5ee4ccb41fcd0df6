import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Registry } from 'prom-client';
import { polkuError } from '../errors.js';
import type { DurableAdmin } from '../delivery/durable-admin.js';
import type { HubHealth } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import { AdminAccess } from './admin-access.js';
import type { ListenerTls } from '../security/tls.js';
import { adminRoute } from './admin-routes.js';
import type { Taps } from '../hub/taps.js';
import { serveTap } from './tap-route.js';
import type { TopSnapshot } from './top-snapshot.js';

/**
 * The metrics and probes port's own budget, apart from the gRPC port's: Prometheus and the kubelet
 * need a few connections, and their requests are small and quick.
 */
export const DEFAULT_METRICS_MAX_CONNECTIONS = 64;
/** A request's headers must arrive within this; the whole request within the next. */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** A connection that sends nothing for this long is closed (longer than the keep-alive below). */
const SOCKET_IDLE_TIMEOUT_MS = 70_000;
const LOOPBACK_ONLY = new AdminAccess(undefined);

export interface HttpServerOptions {
  /** Most connections open at once; more are closed on accept (default {@link DEFAULT_METRICS_MAX_CONNECTIONS}). */
  maxConnections?: number;
  registry: Registry;
  /** Whether the gateway takes traffic; /readyz answers 503 with the reason otherwise. */
  readiness: () => { ready: boolean; reason: string };
  logger: Logger;
  /** Durable mode's operations, served under /admin (null when off). */
  admin?: () => DurableAdmin | null;
  /** The live plugin table's rows, served at GET /admin/plugins (absent: 404). */
  plugins?: () => Promise<unknown>;
  /** The hub's health, served at GET /health (absent: 404). */
  health?: () => Promise<HubHealth>;
  /** The running pipeline, served at GET /pipeline (absent: 404); guarded like /admin when a token is set. */
  pipeline?: () => unknown;
  /** Who may call /admin (default: loopback callers). */
  adminAccess?: AdminAccess;
  /** The hub's tap points and running emitters, served at GET /admin/tap (absent: 404). */
  tap?: { readonly taps: Taps; readonly emitters: () => readonly string[] };
  /** The per-stage snapshot served at GET /admin/top (absent: 404). */
  top?: () => Promise<TopSnapshot>;
  /**
   * Serve HTTPS with the listeners' certificate, taking a rotated one for new connections
   * (`setSecureContext`). Client certificates are not asked for: kubelet probes present none.
   */
  tls?: ListenerTls | undefined;
}

/**
 * `/metrics` (Prometheus text), `/healthz` (the process is alive), `/readyz`, and upstream POLKU's
 * `/health` (the hub's health as JSON) and `/pipeline` (the running pipeline as JSON).
 */
export class HttpServer {
  private readonly server: Server | HttpsServer;
  private readonly log: Logger;
  private stopWatching: (() => void) | undefined;

  constructor(private readonly o: HttpServerOptions) {
    this.log = o.logger.child({ component: 'http' });
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.route(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'request failed');
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      });
    };
    const tls = o.tls;
    if (tls) {
      const server = createHttpsServer(tls.httpsOptions(), handler);
      // Watching lasts as long as this listener; the gRPC listener watches through its credentials.
      this.stopWatching = tls.files.onChange(() => {
        server.setSecureContext(tls.httpsOptions());
        this.log.info({ reloads: tls.files.reloadCount }, 'certificate files changed: new connections get the new certificate');
      });
      this.server = server;
    } else {
      this.server = createServer(handler);
    }
    this.server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval
    this.server.maxConnections = o.maxConnections ?? DEFAULT_METRICS_MAX_CONNECTIONS;
    this.server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.server.setTimeout(SOCKET_IDLE_TIMEOUT_MS, (socket) => socket.destroy());
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (err) =>
        reject(polkuError('POLKU_ERR_LISTEN', `metrics server could not listen on ${host}:${port}: ${err.message}`, err)),
      );
      this.server.listen(port, host, () => {
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  close(): Promise<void> {
    // Open taps get their last line before their connections are closed.
    this.o.tap?.taps.closeAll('gateway_stopping');
    this.stopWatching?.();
    this.stopWatching = undefined;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path === '/admin/tap' && this.o.tap) {
      serveTap(req, res, url, this.o.tap.taps, this.o.tap.emitters(), this.o.adminAccess ?? LOOPBACK_ONLY);
      return;
    }
    if (path === '/admin/top' && this.o.top && req.method === 'GET') {
      const refused = this.o.adminAccess?.check(req.socket.remoteAddress, req.headers.authorization, 'admin endpoints');
      if (refused) sendJson(res, refused.httpStatus, { error: refused.message });
      else sendJson(res, 200, await this.o.top());
      return;
    }
    if (path.startsWith('/admin/')) {
      const answer = await adminRoute(req, url, this.o.admin?.() ?? null, this.o.plugins, this.o.adminAccess);
      send(res, answer.status, 'application/json', `${JSON.stringify(answer.body, null, 2)}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics':
        send(res, 200, this.o.registry.contentType, await this.o.registry.metrics());
        return;
      case '/healthz':
        send(res, 200, 'text/plain', 'ok\n');
        return;
      case '/readyz': {
        const { ready, reason } = this.o.readiness();
        send(res, ready ? 200 : 503, 'text/plain', `${reason}\n`);
        return;
      }
      case '/health':
        if (this.o.health) {
          // The fields of polku.v1.Gateway/Health in proto3's JSON mapping (64-bit integers as strings).
          const h = await this.o.health();
          const body = {
            healthy: h.healthy,
            components: h.components,
            uptimeSeconds: String(h.uptimeSeconds),
            eventsProcessed: String(h.eventsProcessed),
          };
          sendJson(res, h.healthy ? 200 : 503, body);
          return;
        }
        break;
      case '/pipeline':
        if (this.o.pipeline) {
          // It shows configuration: with POLKU_ADMIN_TOKEN set, only for whoever may use /admin.
          const refused = this.o.adminAccess?.tokenRequired
            ? this.o.adminAccess.check(req.socket.remoteAddress, req.headers.authorization, '/pipeline')
            : undefined;
          if (refused) sendJson(res, refused.httpStatus, { error: refused.message });
          else sendJson(res, 200, this.o.pipeline());
          return;
        }
        break;
    }
    send(
      res,
      404,
      'text/plain',
      `not found: try /metrics, /healthz, /readyz${this.o.health ? ', /health' : ''}${this.o.pipeline ? ', /pipeline' : ''}\n`,
    );
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(body, null, 2)}\n`);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
