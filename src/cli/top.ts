import { parseArgs } from 'node:util';
import { polkuError } from '../errors.js';
import { ownArgsCommand, type Command } from './command.js';
import type { TopSnapshot } from '../server/top-snapshot.js';
import { adminBase, adminFetch, adminHeaders, processIo, type CliIo } from './admin-endpoint.js';

export const TOP_USAGE = `polku top [--interval MS] [--once] [--admin HOST:PORT] [--token T]
  Live rates of a running gateway per ingestor, middleware and emitter, buffer fill, lag and drops,
  refreshed every --interval (default 2000 ms). --once prints one table (two snapshots --interval
  apart, for the rates) and exits: for scripts.`;

const DEFAULT_INTERVAL_MS = 2_000;
const CLEAR = '\x1b[2J\x1b[H';

/**
 * `polku top`: polls `GET /admin/top` and prints rates computed from consecutive snapshots (the
 * gateway keeps counters only; the division is done here).
 */
export async function runTop(args: string[], io: CliIo = processIo(), tty = process.stdout.isTTY === true): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      interval: { type: 'string', default: String(DEFAULT_INTERVAL_MS) },
      once: { type: 'boolean', default: false },
      admin: { type: 'string' },
      token: { type: 'string' },
    },
  });
  const intervalMs = Number(values.interval);
  if (!Number.isInteger(intervalMs) || intervalMs < 100)
    throw polkuError('POLKU_ERR_CLI_USAGE', `--interval must be a whole number of milliseconds, at least 100, got "${values.interval}"`);
  const base = adminBase(values.admin);
  const url = new URL('/admin/top', base);
  const headers = adminHeaders(values.token);
  const take = async (): Promise<TopSnapshot | string> => {
    const res = await adminFetch(url, { headers });
    const text = await res.text();
    if (!res.ok) return `polku top: the gateway answered ${res.status}: ${text.trim()}`;
    return JSON.parse(text) as TopSnapshot;
  };
  let previous = await take();
  if (typeof previous === 'string') {
    io.err(previous);
    return 1;
  }
  for (;;) {
    if (!(await pause(intervalMs, io.signal))) return 0;
    const current = await take();
    if (typeof current === 'string') {
      io.err(current);
      return 1;
    }
    const table = formatTop(previous, current, base.host);
    if (values.once) {
      io.out(table);
      return 0;
    }
    io.out(tty ? CLEAR + table : `${table}\n`);
    previous = current;
  }
}

/** Waits `ms`; false when Ctrl-C came first. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve(true);
    }, ms);
    const stop = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

const COLUMNS = ['STAGE', 'NAME', 'EVENTS/S', 'TOTAL', 'DETAIL'] as const;

/** The table of rates between two snapshots (rates per second of the gateway's own clock). */
export function formatTop(a: TopSnapshot, b: TopSnapshot, where: string): string {
  const seconds = Math.max(0.001, (b.uptimeMs - a.uptimeMs) / 1000);
  const rate = (x: number, y: number): string => ((y - x) / seconds).toFixed(1);
  const rows: string[][] = [];
  for (const i of b.ingestors) {
    const before = a.ingestors.find((x) => x.name === i.name);
    rows.push(['ingest', i.name, rate(before?.events ?? 0, i.events), String(i.events), `problems ${i.problems}`]);
  }
  for (const m of b.middleware) {
    const before = a.middleware.find((x) => x.name === m.name);
    rows.push([
      'middleware',
      m.name,
      rate(before?.kept ?? 0, m.kept),
      String(m.kept),
      `in ${rate(before?.given ?? 0, m.given)}/s, dropped ${m.dropped}`,
    ]);
  }
  for (const e of b.emitters) {
    const before = a.emitters.find((x) => x.name === e.name);
    const lag = e.lagSeconds === null ? '' : `, lag ${e.lagSeconds.toFixed(1)}s/${e.lagEvents ?? 0} events`;
    rows.push([
      'emitter',
      e.name,
      rate(before?.forwarded ?? 0, e.forwarded),
      String(e.forwarded),
      `queued ${e.queued}, in flight ${e.inFlight}, retried ${e.retried}${lag}${e.healthy ? '' : ', UNHEALTHY'}`,
    ]);
  }
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const buf = b.buffer;
  const drops = Object.entries(b.dropped).map(([reason, n]) => `${reason} ${n} (${rate(a.dropped[reason] ?? 0, n)}/s)`);
  const out = [
    `polku top  ${where}  ${b.time}  up ${Math.round(b.uptimeMs / 1000)}s`,
    `intake     received ${rate(a.intake.received, b.intake.received)}/s (${b.intake.received}), accepted ${rate(a.intake.accepted, b.intake.accepted)}/s (${b.intake.accepted})`,
    `buffer     ${buf.events}/${buf.capacity} events, ${buf.bytes}/${buf.maxBytes} bytes (${(buf.fill * 100).toFixed(1)}% full)`,
  ];
  if (b.durable) {
    const d = b.durable;
    out.push(`log        ${d.nextSeq - d.firstSeq} records, ${d.bytes}/${d.maxBytes} bytes${d.full ? ', FULL' : ''}`);
  }
  out.push(`dropped    ${drops.length ? drops.join(', ') : 'none'}`, '', line(COLUMNS), ...rows.map(line));
  return out.join('\n');
}

/** `polku top` in the command table (it reads its own arguments). */
export const topCommand: Command = ownArgsCommand(
  'top',
  'live rates per ingestor, middleware and emitter; buffer, lag, drops',
  '[--interval MS] [--once] [--admin HOST:PORT] [--token T]',
  (args) => runTop(args),
  TOP_USAGE,
);
