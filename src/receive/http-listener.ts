import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { formatAddress, type ListenAddress } from '../config/env-parsers.js';
import { polkuError } from '../errors.js';
import type { ListenerTls } from '../security/tls.js';

/** The headers of a request must arrive within this (slowloris), and within the request timeout. */
const HEADERS_TIMEOUT_MS = 10_000;

export interface HttpListenerOptions {
  addr: ListenAddress;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The gateway's listener TLS (POLKU_TLS_*): served here too, reloaded when its files change. */
  tls?: ListenerTls | undefined;
  maxConnections: number;
  /** The whole request must arrive within this; node answers 408 past it. */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** The variable naming the address, for the error when it cannot be bound (`POLKU_HTTP_ADDR`). */
  addrVariable: string;
  /** What the listener serves, for that error (`OTLP/HTTP server`). */
  what: string;
}

/** A bound HTTP(S) listener of a receiver's own. */
export interface HttpListener {
  server: Server | HttpsServer;
  port: number;
  /** Stops following the TLS files (call on close). */
  stopWatching: (() => void) | undefined;
}

/**
 * Binds an HTTP listener for a receiver with a port of its own (OTLP/HTTP, the HTTP front door):
 * HTTPS when the gateway serves TLS, bounded connections and timeouts, keep-alive on. Rejects with
 * POLKU_ERR_LISTEN naming the variable when the address cannot be bound.
 */
export function listenHttp(o: HttpListenerOptions): Promise<HttpListener> {
  return bindHttp(createHttpListener(o), o);
}

/** The server `listenHttp` binds, not yet listening (for a framework that wants it before its routes are ready). */
export function createHttpListener(o: HttpListenerOptions): Omit<HttpListener, 'port'> {
  const tls = o.tls;
  let server: Server | HttpsServer;
  let stopWatching: (() => void) | undefined;
  if (tls) {
    const https = createHttpsServer(tls.httpsOptions(), o.handler);
    stopWatching = tls.files.onChange(() => https.setSecureContext(tls.httpsOptions()));
    server = https;
  } else {
    server = createServer(o.handler);
  }
  server.maxConnections = o.maxConnections;
  server.headersTimeout = Math.min(HEADERS_TIMEOUT_MS, o.requestTimeoutMs);
  server.requestTimeout = o.requestTimeoutMs;
  server.keepAliveTimeout = o.keepAliveTimeoutMs;
  return { server, stopWatching };
}

/** Binds a server made by `createHttpListener`. */
export function bindHttp(
  listener: Omit<HttpListener, 'port'>,
  o: Pick<HttpListenerOptions, 'addr' | 'addrVariable' | 'what'>,
): Promise<HttpListener> {
  const { server, stopWatching } = listener;
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      stopWatching?.();
      reject(
        polkuError('POLKU_ERR_LISTEN', `${o.what} could not listen on ${formatAddress(o.addr)} (${o.addrVariable}): ${err.message}`, err),
      );
    });
    server.listen(o.addr.port, o.addr.host, () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : o.addr.port, stopWatching });
    });
  });
}
