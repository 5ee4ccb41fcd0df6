import { parseArgs } from 'node:util';
import { polkuError } from '../errors.js';
import { ownArgsCommand, type Command } from './command.js';
import type { TapControl } from '../hub/taps.js';
import { adminBase, adminFetch, adminHeaders, processIo, type CliIo } from './admin-endpoint.js';

export const TAP_USAGE = `polku tap [--at ingest|middleware|emitter:NAME] [--source S] [--type PREFIX] [--meta KEY=VALUE]
          [--limit N] [--admin HOST:PORT] [--token T]
  A live sample of a running gateway's events as NDJSON on stdout, until --limit or Ctrl-C.
  --at      where: after ingest, after middleware (default), or as emitter NAME delivered them
  --source  only this source; --type: event types starting with PREFIX; --meta: this metadata value
  A slow reader never slows the gateway: samples it cannot take are dropped and reported on stderr.`;

/**
 * `polku tap`: reads `GET /admin/tap` and prints each event line to stdout; the gateway's notices
 * (opened, samples dropped, ended) go to stderr, so stdout stays NDJSON for jq.
 */
export async function runTap(args: string[], io: CliIo = processIo()): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      at: { type: 'string', default: 'middleware' },
      source: { type: 'string' },
      type: { type: 'string' },
      meta: { type: 'string' },
      limit: { type: 'string', default: '0' },
      admin: { type: 'string' },
      token: { type: 'string' },
    },
  });
  if (!/^\d+$/.test(values.limit!)) throw polkuError('POLKU_ERR_CLI_USAGE', `--limit must be a whole number, got "${values.limit}"`);
  const url = new URL('/admin/tap', adminBase(values.admin));
  url.searchParams.set('at', values.at!);
  if (values.source !== undefined) url.searchParams.set('source', values.source);
  if (values.type !== undefined) url.searchParams.set('type', values.type);
  if (values.meta !== undefined) url.searchParams.set('meta', values.meta);
  url.searchParams.set('limit', values.limit!);
  let res: Response;
  try {
    res = await adminFetch(url, { headers: adminHeaders(values.token), ...(io.signal ? { signal: io.signal } : {}) });
  } catch (err) {
    if (io.signal?.aborted) return 0;
    throw err;
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    io.err(`polku tap: the gateway answered ${res.status}: ${errorOf(text)}`);
    return 1;
  }
  let rest = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      rest += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line.startsWith('{"polku_tap"')) io.err(notice(line));
        else if (line !== '') io.out(line);
      }
    }
  } catch (err) {
    if (io.signal?.aborted) return 0;
    throw polkuError('POLKU_ERR_CLI_UNREACHABLE', `the tap broke off: ${(err as Error).message}`);
  }
  return 0;
}

/** A control line, as a sentence for stderr. */
function notice(line: string): string {
  const c = (JSON.parse(line) as TapControl).polku_tap;
  if ('open' in c) {
    const o = c.open;
    const filters = (['source', 'type', 'meta'] as const).filter((k) => o[k] !== undefined).map((k) => `${k}=${o[k]}`);
    return `polku tap: sampling at ${o.at}${filters.length ? ` (${filters.join(', ')})` : ''}${o.limit ? `, ${o.limit} events` : ''}`;
  }
  if ('end' in c) return `polku tap: ended (${c.end}): ${c.sampled} sampled, ${c.dropped} dropped`;
  return `polku tap: ${c.dropped} samples dropped (reading too slowly)`;
}

function errorOf(text: string): string {
  try {
    return (JSON.parse(text) as { error: string }).error;
  } catch {
    return text.trim();
  }
}

/** `polku tap` in the command table (it reads its own arguments). */
export const tapCommand: Command = ownArgsCommand(
  'tap',
  'a live sample of events as NDJSON (never slows the gateway)',
  '[--at ingest|middleware|emitter:NAME] [--source S] [--type PREFIX] [--meta K=V] [--limit N]',
  (args) => runTap(args),
  TAP_USAGE,
);
