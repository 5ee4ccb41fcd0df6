import { polkuError } from '../errors.js';

/**
 * `polku dlq list|inspect|replay|purge` and `polku replay`: calls the running gateway's /admin endpoints
 * (on its metrics port, loopback only) and prints the JSON answer.
 */
export async function adminCall(base: string, method: string, path: string): Promise<{ ok: boolean; output: string }> {
  const url = new URL(path, base.includes('://') ? base : `http://${base}`);
  let res: Response;
  try {
    // The gateway may want a token besides a loopback caller; the CLI sends the same variable's.
    const token = process.env['POLKU_ADMIN_TOKEN'];
    res = await fetch(url, { method, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  } catch (err) {
    throw polkuError('POLKU_ERR_CLI_USAGE', `cannot reach the gateway's admin endpoint at ${url.origin}: ${(err as Error).message}`);
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
