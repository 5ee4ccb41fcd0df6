import type * as http from 'node:http';
import type { ProbeResult } from './emitter.js';

/*
 * Shared by the emitters' `probe` (polku validate --probe): results as values, the one timeout as
 * an AbortSignal, and a hint per common failure so the line printed says what to check.
 */

export const probeOk = (detail: string): ProbeResult => ({ ok: true, detail });

export const probeFail = (error: string, hint?: string): ProbeResult =>
  hint === undefined ? { ok: false, error } : { ok: false, error, hint };

/** Why a probe stopped when its signal aborted: the probe timeout. */
export class ProbeAborted extends Error {
  constructor() {
    super('no answer within the probe timeout');
  }
}

/**
 * `work`, or a rejection with {@link ProbeAborted} as soon as `signal` aborts: a client that does
 * not take a signal (pg, ioredis, nats) cannot hold the probe past its timeout.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(new ProbeAborted());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ProbeAborted());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** What to check, by the error code (Node's, or the server's where it is well known). */
const HINTS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'nothing listens there: is the server up, and the address and port right?',
  ENOTFOUND: 'the host name does not resolve: check the address (and the DNS of this pod)',
  EAI_AGAIN: 'the host name does not resolve yet: DNS did not answer',
  EHOSTUNREACH: 'no route to the host: a network policy or firewall?',
  ETIMEDOUT: 'no answer: a firewall dropping packets, or the wrong port?',
  ECONNRESET: 'the server closed the connection: TLS where plaintext is expected (or the reverse)?',
  EACCES: 'permission denied: the gateway runs as a user that cannot write there',
  EROFS: 'a read-only file system: mount a writable volume there',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed: give its CA in tls.caFile',
  SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate is not trusted: give its CA in tls.caFile',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate is not trusted: give its CA in tls.caFile',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate names another host: set tls.serverName',
};

export const TIMEOUT_HINT = 'the server did not answer in time: a firewall dropping packets, or raise --probe-timeout-ms';

/** A failed probe from what was thrown: `<target>: <reason>`, and the hint for its code. */
export function probeFailure(target: string, err: unknown, signal: AbortSignal): ProbeResult {
  if (err instanceof ProbeAborted || (signal.aborted && isAbortError(err)))
    return probeFail(`${target}: no answer within the probe timeout`, TIMEOUT_HINT);
  const code = codeOf(err);
  const message = messageOf(err);
  const reason = code && !message.includes(code) ? `${code} ${message}` : message;
  return probeFail(`${target}: ${reason || code || 'failed'}`, code ? HINTS[code] : undefined);
}

/** The error's code: Node's `code`, else the first code of an AggregateError (several addresses tried). */
export function codeOf(err: unknown): string | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const c = codeOf(inner);
      if (c) return c;
    }
  }
  return undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.message === '' && err.errors.length > 0) return messageOf(err.errors[0]);
  return err instanceof Error ? err.message : String(err);
}

function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** `host:port` of a URL, with the protocol's default port: never the user name or password. */
export function hostPort(url: URL, defaultPort: number): string {
  return `${url.hostname}:${url.port || defaultPort}`;
}

/**
 * One HTTP request with no body, to see that the server is there: resolves to its status (any
 * status: the server answered), rejects on a network failure or when `signal` aborts. The
 * response is read to the end and the socket given back.
 */
export function httpStatus(
  transport: { request: typeof http.request },
  url: URL,
  o: { method: string; headers: Readonly<Record<string, string>>; agent: http.Agent; signal: AbortSignal },
): Promise<number> {
  return new Promise((resolve, reject) => {
    try {
      const req = transport.request(url, { method: o.method, agent: o.agent, headers: { ...o.headers }, signal: o.signal }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

/** The verdict on an HTTP status: any answer is "reachable", but 401 and 403 refuse our credentials. */
export function httpVerdict(target: string, status: number, credentialsHint: string): ProbeResult {
  if (status === 401 || status === 403) return probeFail(`${target}: HTTP ${status}: credentials refused`, credentialsHint);
  return probeOk(`${target} reachable (HTTP ${status})`);
}
