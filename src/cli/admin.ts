import { DEFAULT_METRICS_ADDR } from '../config/env-table.js';
import { polkuError } from '../errors.js';
import { flag, printResult, type CliResult, type Command } from './command.js';

/** Where the admin commands call without --admin: POLKU_ADMIN_ADDR, else this host's metrics port. */
export function adminAddr(): string {
  return process.env['POLKU_ADMIN_ADDR'] ?? `127.0.0.1:${DEFAULT_METRICS_ADDR.port}`;
}

/**
 * `polku dlq list|inspect|replay|purge` and `polku replay`: calls the running gateway's /admin endpoints
 * (on its metrics port, loopback only) and prints the JSON answer.
 */
export async function adminCall(base: string, method: string, path: string): Promise<CliResult> {
  const url = new URL(path, base.includes('://') ? base : `http://${base}`);
  let res: Response;
  try {
    // The gateway may want a token besides a loopback caller; the CLI sends the same variable's.
    const token = process.env['POLKU_ADMIN_TOKEN'];
    res = await fetch(url, { method, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return {
      ok: false,
      output: '',
      error:
        `no gateway admin endpoint at ${url.origin}: is \`polku serve\` running? (its POLKU_METRICS_ADDR; --admin or POLKU_ADMIN_ADDR)` +
        `\n  ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    };
  }
  const text = await res.text();
  return { ok: res.ok, output: text.trimEnd() };
}

export function dlqRequest(action: string | undefined, limit: string, id?: string): { method: string; path: string } {
  switch (action) {
    case 'list':
      return { method: 'GET', path: `/admin/dead-letters?limit=${encodeURIComponent(limit)}` };
    case 'inspect':
      if (!id || !/^\d+$/.test(id))
        throw polkuError(
          'POLKU_ERR_CLI_USAGE',
          `polku dlq inspect wants a dead letter's id (a number, from polku dlq list), got ${id ? `"${id}"` : 'nothing'}`,
        );
      return { method: 'GET', path: `/admin/dead-letters/${id}` };
    case 'replay':
      return { method: 'POST', path: '/admin/dead-letters/replay' };
    case 'purge':
      return { method: 'DELETE', path: '/admin/dead-letters' };
    default:
      throw polkuError(
        'POLKU_ERR_CLI_USAGE',
        `polku dlq wants list, inspect ID, replay or purge, got ${action ? `"${action}"` : 'nothing'}`,
      );
  }
}

export function replayRequest(
  from: string | undefined,
  to: string | undefined,
  emitter: string | undefined,
): { method: string; path: string } {
  if (!from || !to) throw polkuError('POLKU_ERR_CLI_USAGE', 'polku replay needs --from and --to (RFC 3339 or epoch milliseconds)');
  const q = new URLSearchParams({ from, to, ...(emitter ? { emitter } : {}) });
  return { method: 'POST', path: `/admin/replay?${q}` };
}

const ADMIN_FLAG = {
  type: 'string',
  arg: 'ADDR',
  help: "the gateway's metrics port, loopback only [POLKU_ADMIN_ADDR or 127.0.0.1:9090]",
} as const;

/** `polku dlq`. */
export const dlqCommand: Command = {
  name: 'dlq',
  summary: 'durable mode: list, inspect, replay or purge the dead letters of a running gateway',
  usage: 'list [--limit N] | inspect ID | replay | purge [--admin ADDR]',
  flags: {
    admin: ADMIN_FLAG,
    limit: { type: 'string', default: '100', arg: 'N', help: 'list: at most this many' },
  },
  positionals: true,
  async run({ values, positionals }) {
    const request = dlqRequest(positionals[0], flag(values, 'limit')!, positionals[1]);
    return printResult(await adminCall(flag(values, 'admin') ?? adminAddr(), request.method, request.path));
  },
};

/** `polku replay`. */
export const replayCommand: Command = {
  name: 'replay',
  summary: 'durable mode: re-send the events received between two times',
  usage: '--from T --to T [--emitter NAME] [--admin ADDR]',
  flags: {
    admin: ADMIN_FLAG,
    from: { type: 'string', arg: 'T', help: 'RFC 3339 or epoch milliseconds' },
    to: { type: 'string', arg: 'T', help: 'RFC 3339 or epoch milliseconds' },
    emitter: { type: 'string', arg: 'NAME', help: 'only to this emitter' },
  },
  async run({ values }) {
    const request = replayRequest(flag(values, 'from'), flag(values, 'to'), flag(values, 'emitter'));
    return printResult(await adminCall(flag(values, 'admin') ?? adminAddr(), request.method, request.path));
  },
};
