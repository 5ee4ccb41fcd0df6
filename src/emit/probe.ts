import type * as http from 'node:http';
import {
  connectivityState,
  Metadata,
  status as grpcStatus,
  type CallOptions,
  type Client,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import type { Empty } from '../gen/google/protobuf/empty.js';
import type { PluginHealthResponse } from '../gen/polku/v1/plugin.js';
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
  GRPC_UNREACHABLE: 'nothing answers gRPC there: is it running, the address right, and TLS set as the server expects?',
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
  // Clients that drop the code keep it in the message (nats: "connection refused").
  const hint = (code ? HINTS[code] : undefined) ?? (/connection refused|ECONNREFUSED/i.test(message) ? HINTS['ECONNREFUSED'] : undefined);
  return probeFail(`${target}: ${reason || code || 'failed'}`, hint);
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

/**
 * Resolves once a gRPC client's channel is READY; rejects at TRANSIENT_FAILURE (the connection
 * was refused, reset or failed its TLS handshake: grpc-js does not say which) or when `signal`
 * aborts. The channel is asked to connect; closing the client later ends the watch.
 */
export function grpcReady(client: Client, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ProbeAborted());
    const channel = client.getChannel();
    const onAbort = (): void => reject(new ProbeAborted());
    signal.addEventListener('abort', onAbort, { once: true });
    const done = (err?: Error): void => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const check = (): void => {
      if (signal.aborted) return;
      const state = channel.getConnectivityState(true);
      if (state === connectivityState.READY) return done();
      if (state === connectivityState.TRANSIENT_FAILURE) {
        return done(Object.assign(new Error('cannot connect (refused, reset, or the TLS handshake failed)'), { code: 'GRPC_UNREACHABLE' }));
      }
      if (state === connectivityState.SHUTDOWN) return done(new Error('the client is closed'));
      // The deadline only bounds one wait; aborting rejects at once, and closing the client ends it.
      channel.watchConnectivityState(state, Date.now() + 1000, () => check());
    };
    check();
  });
}

/** A gRPC status error as a probe failure: UNAUTHENTICATED / PERMISSION_DENIED are the credentials. */
export function grpcCallFailure(target: string, err: unknown, signal: AbortSignal, credentialsHint: string): ProbeResult {
  const code = (err as { code?: unknown }).code;
  if (code === grpcStatus.UNAUTHENTICATED || code === grpcStatus.PERMISSION_DENIED) {
    return probeFail(`${target}: credentials refused (${(err as Error).message})`, credentialsHint);
  }
  if (code === grpcStatus.UNIMPLEMENTED) {
    return probeFail(`${target}: ${(err as Error).message}`, 'another kind of server answers there: is the address the one this expects?');
  }
  return probeFailure(target, err, signal);
}

/** A plugin's client: its channel, and the Health rpc every plugin serves. */
export interface PluginHealthClient extends Client {
  health(
    request: Empty,
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: (error: ServiceError | null, response: PluginHealthResponse) => void,
  ): ClientUnaryCall;
}

/**
 * A plugin dialled by address: the channel connects, then its Health rpc answers healthy. The
 * call is cancelled when `signal` aborts.
 */
export async function pluginProbe(client: PluginHealthClient, address: string, signal: AbortSignal): Promise<ProbeResult> {
  const target = `plugin at ${address}`;
  try {
    await grpcReady(client, signal);
    const answer = await new Promise<PluginHealthResponse>((resolve, reject) => {
      const call = client.health({}, new Metadata(), {}, (err, response) => (err ? reject(err) : resolve(response)));
      signal.addEventListener('abort', () => call.cancel(), { once: true });
    });
    if (!answer.healthy)
      return probeFail(`${target}: reports unhealthy: ${answer.message || '(no message)'}`, "the plugin's own Health says why");
    return probeOk(`${target} healthy${answer.message ? ` (${answer.message})` : ''}`);
  } catch (err) {
    return grpcCallFailure(target, err, signal, 'check the TLS client certificate the gateway presents (POLKU_PLUGIN_TLS_*)');
  }
}

/**
 * A gRPC destination: its channel connects (plaintext or TLS as configured), then `call` (a
 * unary rpc the service has, such as Health) answers, when there is one. `call` is cancelled
 * when `signal` aborts.
 */
export async function grpcProbe(
  client: Client,
  target: string,
  signal: AbortSignal,
  call?: (done: (err: ServiceError | null) => void) => ClientUnaryCall,
): Promise<ProbeResult> {
  try {
    await grpcReady(client, signal);
    if (!call) return probeOk(`${target} connected`);
    await new Promise<void>((resolve, reject) => {
      const running = call((err) => (err ? reject(err) : resolve()));
      signal.addEventListener('abort', () => running.cancel(), { once: true });
    });
    return probeOk(`${target} answered Health`);
  } catch (err) {
    return grpcCallFailure(target, err, signal, 'check the authorization headers or the client certificate (tls)');
  }
}
