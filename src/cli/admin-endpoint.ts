import { formatAddress, parseAddress } from '../config/env-parsers.js';
import { DEFAULT_METRICS_ADDR } from '../config/env-table.js';
import { polkuError } from '../errors.js';

/** Where a command writes: the process's streams, or a test's arrays. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Aborted on Ctrl-C (the process's SIGINT); a command stops and exits 0. */
  signal?: AbortSignal;
}

/** The process's own stdout and stderr, and an AbortSignal tied to SIGINT. */
export function processIo(): CliIo {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    signal: stop.signal,
  };
}

/**
 * The gateway's admin base URL: `--admin`, else POLKU_ADMIN_ADDR, else the port POLKU_METRICS_ADDR
 * names on this host (the admin endpoints answer loopback callers only), else the default port.
 */
export function adminBase(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): URL {
  const given = flag ?? env['POLKU_ADMIN_ADDR'];
  if (given !== undefined && given !== '') {
    try {
      return new URL(given.includes('://') ? given : `http://${given}`);
    } catch {
      throw polkuError('POLKU_ERR_CLI_USAGE', `--admin must be host:port or a URL, got "${given}"`);
    }
  }
  const metrics = env['POLKU_METRICS_ADDR'] ? parseAddress(env['POLKU_METRICS_ADDR']) : DEFAULT_METRICS_ADDR;
  if (!metrics) throw polkuError('POLKU_ERR_CLI_USAGE', `POLKU_METRICS_ADDR must be host:port, got "${env['POLKU_METRICS_ADDR']}"`);
  const wildcard = metrics.host === '0.0.0.0' || metrics.host === '::' || metrics.host === '';
  return new URL(`http://${formatAddress({ host: wildcard ? '127.0.0.1' : metrics.host, port: metrics.port })}`);
}

/** `authorization` for the admin endpoints: `--token`, else POLKU_ADMIN_TOKEN. */
export function adminHeaders(token: string | undefined, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const t = token ?? env['POLKU_ADMIN_TOKEN'];
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** Calls the admin endpoint, turning "nothing listens there" into a sentence with a hint. */
export async function adminFetch(url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw polkuError(
      'POLKU_ERR_CLI_UNREACHABLE',
      `cannot reach the gateway's admin endpoint at ${url.origin} (${cause?.code ?? cause?.message ?? (err as Error).message}); ` +
        'is it running? Point at its metrics port with --admin host:port or POLKU_METRICS_ADDR',
    );
  }
}
